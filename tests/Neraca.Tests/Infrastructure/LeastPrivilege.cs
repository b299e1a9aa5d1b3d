using Microsoft.Extensions.DependencyInjection;
using Neraca.Hosting;
using Neraca.Storage;
using Neraca.Tests.Observability;

namespace Neraca.Tests.Infrastructure;

/// <summary>Connection strings of one database set up as <c>deploy/postgres-roles.sql</c> says: the server's
/// (application role), the migrations' (owner role) and a superuser's.</summary>
public sealed record LeastPrivilegeDatabase(string App, string Owner, string Admin);

/// <summary>Databases prepared the way docs/operations.md tells operators to: the roles script, <c>migrate</c> as the
/// owner, the roles script again, then the server as the application role with <c>MigrateOnStart=false</c>.</summary>
public static class LeastPrivilege
{
    public const string OwnerRole = "neraca_owner";
    public const string AppRole = "neraca_app";

    /// <summary>What a server connected as the application role needs: it may not migrate.</summary>
    public static readonly string[] AppServerArgs = ["--MigrateOnStart=false"];

    public static string ScriptPath => Path.Combine(DeployArtefacts.RepoRoot, "deploy", "postgres-roles.sql");

    // Roles are cluster-wide: two classes creating them at once would race on CREATE ROLE.
    static readonly SemaphoreSlim Gate = new(1, 1);

    /// <summary>Runs the roles script with psql as the superuser, as an operator would.</summary>
    public static async Task ApplyRolesScriptAsync(string database)
    {
        var pg = await PostgresServer.SharedAsync();
        await Gate.WaitAsync();
        try
        {
            await ProcessRunner.RunAsync(pg.Psql, ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", pg.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "-U", "postgres", "-d", database, "-f", ScriptPath]);
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <summary>A new database: roles script, migrations (and the bootstrap key) as the owner, roles script again.</summary>
    public static async Task<LeastPrivilegeDatabase> CreateMigratedDatabaseAsync()
    {
        var pg = await PostgresServer.SharedAsync();
        var admin = new Npgsql.NpgsqlConnectionStringBuilder(await pg.CreateDatabaseAsync("lp"));
        var name = admin.Database!;
        await ApplyRolesScriptAsync(name);
        var owner = pg.ConnectionString(name, OwnerRole);
        await using (var migrate = NeracaApp.Create(["--database", owner, "--bootstrap-api-key", NeracaServer.BootstrapKey, "--Logging:LogLevel:Default=Warning"]))
            await migrate.Services.GetRequiredService<StorageStartup>().MigrateAsync(CancellationToken.None);
        await ApplyRolesScriptAsync(name);
        return new LeastPrivilegeDatabase(pg.ConnectionString(name, AppRole), owner, admin.ConnectionString);
    }
}
