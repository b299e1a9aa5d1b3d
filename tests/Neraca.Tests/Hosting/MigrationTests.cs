using Dapper;
using Microsoft.Extensions.Logging.Abstractions;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Hosting;

public sealed class MigrationTests
{
    static readonly string ServerDll = Path.Combine(AppContext.BaseDirectory, "Neraca.Server.dll");

    // A data-writing migration: if it ran twice the table would hold two rows. This is the rolling-restart bug
    // (a re-run migration duplicating money movements) that the advisory lock prevents.
    static IReadOnlyList<Migration> WithSeed(StoreKind kind) =>
    [
        .. TestMigrations.All(kind),
        new Migration(9001, "seed", "CREATE TABLE seed_rows (n integer NOT NULL); INSERT INTO seed_rows (n) VALUES (1);"),
        new Migration(9002, "seed_more", "INSERT INTO seed_rows (n) VALUES (2);"),
    ];

    [Theory]
    [InlineData(StoreKind.Sqlite)]
    [InlineData(StoreKind.Postgres)]
    public async Task Concurrent_runners_apply_each_migration_exactly_once(StoreKind kind)
    {
        var setting = await TestStores.NewDatabaseAsync(kind);
        var runners = Enumerable.Range(0, 6).Select(async _ =>
        {
            await using var db = Database.Create(setting, "unused");
            return await new MigrationRunner(db, SqlDialect.For(db), WithSeed(kind), NullLogger<MigrationRunner>.Instance).ApplyAsync(CancellationToken.None);
        }).ToList();
        var applied = await Task.WhenAll(runners);

        Assert.Equal(WithSeed(kind).Count, applied.Sum(a => a.Count));
        await using var check = Database.Create(setting, "unused");
        await using var connection = await check.OpenAsync(CancellationToken.None);
        Assert.Equal(3L, await connection.ExecuteScalarAsync<long>("SELECT sum(n) FROM seed_rows"));
        Assert.Equal(2L, await connection.ExecuteScalarAsync<long>("SELECT count(*) FROM seed_rows"));
    }

    [Theory]
    [InlineData(StoreKind.Sqlite)]
    [InlineData(StoreKind.Postgres)]
    public async Task Two_migrate_processes_started_together_apply_each_migration_once(StoreKind kind)
    {
        var setting = await TestStores.NewDatabaseAsync(kind);
        var outputs = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ =>
            ProcessRunner.RunAsync("dotnet", [ServerDll, "migrate", "--database", setting])));

        await using var db = Database.Create(setting, "unused");
        await using var connection = await db.OpenAsync(CancellationToken.None);
        var versions = (await connection.QueryAsync<int>("SELECT version FROM schema_migrations")).ToList();
        Assert.Equal(TestMigrations.All(kind).Select(m => m.Version), versions.Order());
        Assert.Single(outputs, o => o.Contains("applied", StringComparison.Ordinal));
        Assert.Single(outputs, o => o.Contains("up to date", StringComparison.Ordinal));
        Assert.Equal(1L, await connection.ExecuteScalarAsync<long>("SELECT count(*) FROM tenants WHERE id = 'default'"));
    }

    [Theory]
    [InlineData(StoreKind.Sqlite)]
    [InlineData(StoreKind.Postgres)]
    public async Task Rerunning_migrations_is_a_no_op(StoreKind kind)
    {
        var setting = await TestStores.NewDatabaseAsync(kind);
        await using var db = Database.Create(setting, "unused");
        var runner = new MigrationRunner(db, SqlDialect.For(db), WithSeed(kind), NullLogger<MigrationRunner>.Instance);
        Assert.NotEmpty(await runner.ApplyAsync(CancellationToken.None));
        Assert.Empty(await runner.ApplyAsync(CancellationToken.None));
        Assert.Empty(await runner.PendingAsync(CancellationToken.None));
    }

    [Theory]
    [InlineData(StoreKind.Sqlite)]
    [InlineData(StoreKind.Postgres)]
    public async Task An_applied_migration_that_was_edited_stops_start_up(StoreKind kind)
    {
        var setting = await TestStores.NewDatabaseAsync(kind);
        await using var db = Database.Create(setting, "unused");
        await new MigrationRunner(db, SqlDialect.For(db), WithSeed(kind), NullLogger<MigrationRunner>.Instance).ApplyAsync(CancellationToken.None);

        var edited = WithSeed(kind).Select(m => m.Version == 9002 ? m with { Sql = "INSERT INTO seed_rows (n) VALUES (20);" } : m).ToList();
        var error = await Assert.ThrowsAsync<MigrationException>(() =>
            new MigrationRunner(db, SqlDialect.For(db), edited, NullLogger<MigrationRunner>.Instance).ApplyAsync(CancellationToken.None));
        Assert.Contains("9002_seed_more was edited", error.Message, StringComparison.Ordinal);

        await using var connection = await db.OpenAsync(CancellationToken.None);
        Assert.Equal(3L, await connection.ExecuteScalarAsync<long>("SELECT sum(n) FROM seed_rows"));
    }

    [Fact]
    public async Task Server_process_refuses_to_start_on_an_invalid_database_setting()
    {
        var output = await ProcessRunner.RunAsync("dotnet", [ServerDll, "migrate", "--database", "Hots=nowhere"], check: false);
        Assert.Contains("Invalid configuration", output, StringComparison.Ordinal);
        Assert.Contains("Database", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Server_process_refuses_an_unknown_role()
    {
        var output = await ProcessRunner.RunAsync("dotnet", [ServerDll, "migrate", "--role", "api,cook"], check: false);
        Assert.Contains("Role must be", output, StringComparison.Ordinal);
    }
}
