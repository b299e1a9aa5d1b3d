using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Hosting;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Ledger;
using Npgsql;

namespace Neraca.Tests.Topology;

/// <summary>The server connected through PgBouncer in transaction pooling mode with <c>DatabasePooler=transaction</c>:
/// consecutive transactions of one Npgsql connection land on different server connections, so anything that leaked
/// session state (an automatically prepared statement, a session <c>SET</c>, a session advisory lock, LISTEN) would
/// break the suite. Migrations run straight against PostgreSQL, as the migration Job does.</summary>
public sealed class PgBouncerServerFixture() : ServerFixture(StoreKind.Postgres), IAsyncLifetime
{
    PgBouncer? _bouncer;

    protected override async Task<(NeracaServer Server, string AdminDatabase)> StartAsync()
    {
        var pg = await PostgresServer.SharedAsync();
        var direct = await pg.CreateDatabaseAsync("bouncer");
        await using (var migrate = NeracaApp.Create(["--database", direct, "--bootstrap-api-key", NeracaServer.BootstrapKey, "--Logging:LogLevel:Default=Warning"]))
            await migrate.Services.GetRequiredService<StorageStartup>().MigrateAsync(CancellationToken.None);
        // Small pool: the server's many client connections share a few server connections, as in production.
        _bouncer = await PgBouncer.StartAsync([$"* = host=127.0.0.1 port={pg.Port} user=postgres pool_size=4"], "auth_type = any");
        var viaBouncer = new NpgsqlConnectionStringBuilder(direct) { Port = _bouncer.Port }.ConnectionString;
        return (await NeracaServer.StartAsync(viaBouncer, Clock.Time, "--DatabasePooler=transaction", "--MigrateOnStart=false"), direct);
    }

    async ValueTask IAsyncDisposable.DisposeAsync()
    {
        await DisposeAsync();
        if (_bouncer is not null) await _bouncer.DisposeAsync();
    }
}

public sealed class PgBouncerLedgerContractTests(PgBouncerServerFixture fixture) : LedgerContract(fixture), IClassFixture<PgBouncerServerFixture>
{
    [Fact]
    public async Task Migrations_take_their_lock_safely_through_the_pooler_and_twice_in_a_row()
    {
        // The migration lock is a transaction-scoped advisory lock held on its own connection: through a transaction
        // pooler a session lock would stay behind on whichever server connection took it and block the next run.
        var setting = new NpgsqlConnectionStringBuilder(((Npgsql.NpgsqlDataSource)fixture.Server.Services.GetRequiredService<Database>().Postgres!).ConnectionString);
        for (var i = 0; i < 2; i++)
        {
            await using var app = NeracaApp.Create(["--database", setting.ConnectionString, "--DatabasePooler=transaction", "--Logging:LogLevel:Default=Warning"]);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            Assert.Empty(await app.Services.GetRequiredService<StorageStartup>().MigrateAsync(cts.Token));
        }
    }

    [Fact]
    public async Task Tenant_confinement_holds_when_two_tenants_statements_share_the_poolers_server_connections()
    {
        // 16 clients on 4 server connections: a tenant set for a session instead of a transaction would be seen by the
        // next client's statement on that server connection.
        var database = fixture.Server.Services.GetRequiredService<Database>();
        var tenants = new List<string>();
        for (var i = 0; i < 2; i++)
        {
            var tenant = await fixture.Server.NewTenantAsync();
            var l = new LedgerClient(tenant.Http);
            await l.LedgerAsync();
            await l.AccountAsync("alice");
            tenants.Add(tenant.Id);
        }
        var ct = TestContext.Current.CancellationToken;
        await Task.WhenAll(tenants.SelectMany(tenant => Enumerable.Range(0, 8).Select(async _ =>
        {
            using var scope = TenantScope.Enter(tenant);
            for (var i = 0; i < 25; i++)
            {
                await using var c = await database.OpenAsync(ct);
                Assert.Equal(new[] { tenant }, await c.QueryAsync<string>("SELECT DISTINCT tenant_id FROM accounts"));
            }
        })).Append(Task.Run(async () =>
        {
            for (var i = 0; i < 50; i++)
            {
                await using var c = await database.OpenAsync(ct);
                Assert.Equal(2, (await c.QueryAsync<string>("SELECT DISTINCT tenant_id FROM accounts WHERE tenant_id = ANY(@tenants)", new { tenants })).Count());
            }
        }, ct)));
    }
}
