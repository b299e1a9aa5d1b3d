using System.Text.RegularExpressions;
using Dapper;
using Neraca.Tests.Auth;
using Neraca.Tests.Events;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Jobs;
using Neraca.Tests.Ledger;
using Npgsql;

namespace Neraca.Tests.Hosting;

/// <summary>What <c>deploy/postgres-roles.sql</c> grants, checked on a migrated database.</summary>
public sealed partial class LeastPrivilegeTests
{
    static readonly string[] Journal = ["transfers", "transfer_resolutions", "entries", "entries_v1", "chain_links", "events"];

    [Fact]
    public async Task Roles_script_covers_every_table_and_keeps_the_journal_append_only_for_the_server()
    {
        var database = await LeastPrivilege.CreateMigratedDatabaseAsync();
        await using var admin = new NpgsqlConnection(database.Admin);
        await admin.OpenAsync();

        var relations = (await admin.QueryAsync<string>(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'p')")).ToHashSet();
        var listed = GrantLine().Matches(await File.ReadAllTextAsync(LeastPrivilege.ScriptPath)).Select(m => m.Groups[1].Value).ToHashSet();
        // A migration that adds a table adds it to the script in the same change.
        Assert.Empty(relations.Except(listed));
        Assert.Empty(listed.Except(relations));

        foreach (var table in relations)
        {
            Assert.True(await admin.ExecuteScalarAsync<bool>("SELECT has_table_privilege(@role, @t, 'SELECT')", new { role = LeastPrivilege.AppRole, t = table }), table);
            Assert.Equal(LeastPrivilege.OwnerRole, await admin.ExecuteScalarAsync<string>(
                "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = to_regclass(@t)", new { t = "public." + table }));
        }
        foreach (var table in Journal)
            foreach (var privilege in new[] { "UPDATE", "DELETE", "TRUNCATE" })
                Assert.False(await admin.ExecuteScalarAsync<bool>("SELECT has_table_privilege(@role, @t, @privilege)",
                    new { role = LeastPrivilege.AppRole, t = table, privilege }), $"{LeastPrivilege.AppRole} may {privilege} {table}");
        Assert.False(await admin.ExecuteScalarAsync<bool>("SELECT has_schema_privilege(@role, 'public', 'CREATE')", new { role = LeastPrivilege.AppRole }));
        Assert.False(await admin.ExecuteScalarAsync<bool>("SELECT has_table_privilege(@role, 'schema_migrations', 'INSERT')", new { role = LeastPrivilege.AppRole }));
    }

    [Fact]
    public async Task Server_connected_as_the_application_role_refuses_to_migrate_and_cannot_rewrite_the_journal()
    {
        var database = await LeastPrivilege.CreateMigratedDatabaseAsync();
        await using var app = new NpgsqlConnection(database.App);
        await app.OpenAsync();
        await Assert.ThrowsAsync<PostgresException>(() => app.ExecuteAsync("CREATE TABLE sneaky (n int)"));
        await Assert.ThrowsAsync<PostgresException>(() => app.ExecuteAsync("TRUNCATE transfers"));
        await Assert.ThrowsAsync<PostgresException>(() => app.ExecuteAsync("DELETE FROM schema_migrations"));
    }

    [GeneratedRegex(@"^\s*'(\w+)',\s+'SELECT", RegexOptions.Multiline)]
    private static partial Regex GrantLine();
}

// The suites below run unchanged with the server connected as the application role, migrations run as the owner.

public sealed class AppRoleLedgerContractTests(PostgresAppRoleServerFixture fixture) : LedgerContract(fixture), IClassFixture<PostgresAppRoleServerFixture>;

public sealed class AppRoleJobsServerTests(PostgresAppRoleServerFixture fixture) : JobsServerTests(fixture), IClassFixture<PostgresAppRoleServerFixture>;

public sealed class AppRoleApiKeysApiTests(PostgresAppRoleServerFixture fixture) : ApiKeysApiTests(fixture), IClassFixture<PostgresAppRoleServerFixture>;

public sealed class AppRoleEventFeedTests(PostgresAppRoleEventsServerFixture fixture) : EventFeedTests(fixture), IClassFixture<PostgresAppRoleEventsServerFixture>;

public sealed class AppRoleWebhookDeliveryTests(PostgresAppRoleEventsServerFixture fixture)
    : WebhookDeliveryTests(fixture), IClassFixture<PostgresAppRoleEventsServerFixture>;
