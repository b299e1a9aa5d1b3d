using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Ledger;
using Npgsql;

namespace Neraca.Tests.Security;

/// <summary>PostgreSQL's row-level security, the second wall between tenants (Storage/RowLevelSecurity.cs), with the
/// server connected as a superuser (development) and as the application role of deploy/postgres-roles.sql (production).</summary>
public abstract class RowLevelSecurityTests(ServerFixture fixture)
{
    NeracaServer Server => fixture.Server;
    Database Db => Server.Services.GetRequiredService<Database>();
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    async Task<TestTenant> TenantWithBooksAsync()
    {
        var tenant = await Server.NewTenantAsync();
        var l = new LedgerClient(tenant.Http);
        await l.LedgerAsync();
        await l.AccountAsync("bank", normal: "debit");
        await l.AccountAsync("alice");
        var (response, body) = await l.TransferAsync("t1", "bank", "alice", 500);
        Assert.True(response.IsSuccessStatusCode, body?.ToJsonString());
        return tenant;
    }

    [Fact]
    public async Task Every_tenant_owned_table_forces_row_level_security_with_the_tenant_policy()
    {
        await using var c = new NpgsqlConnection(fixture.AdminDatabase);
        await c.OpenAsync(Ct);
        var tables = (await c.QueryAsync<(string Name, bool Enabled, bool Forced, bool Policy, string Owner)>("""
            SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity,
                   EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'neraca_tenant_rows'),
                   pg_get_userbyid(c.relowner)::text
            FROM pg_class c
            WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
              AND (c.relname = 'webhook_attempts' OR EXISTS (SELECT 1 FROM pg_attribute a
                   WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped))
            """)).ToList();
        Assert.True(tables.Count >= 50, $"only {tables.Count} tenant-owned tables found");
        foreach (var t in new[] { "transfers", "accounts", "events", "idempotency_keys", "ewa_withdrawals", "split_groups", "banking_accounts", "recon_lines", "payouts", "webhook_attempts" })
            Assert.Contains(tables, x => x.Name == t);
        Assert.Empty(tables.Where(t => !t.Enabled || !t.Forced || !t.Policy).Select(t => t.Name));

        // The role the server's statements run as is not the owner of any of them.
        var app = new NpgsqlConnectionStringBuilder(((NpgsqlDataSource)Db.Postgres!).ConnectionString).Username!;
        var runsAs = app == "postgres" ? RowLevelSecurity.Role : app; // a superuser connection switches to neraca_tenant
        Assert.DoesNotContain(tables, t => t.Owner == runsAs);
        Assert.False(await c.ExecuteScalarAsync<bool>("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = @runsAs", new { runsAs }));
    }

    [Fact]
    public async Task A_query_that_forgets_its_tenant_filter_sees_nothing_of_another_tenant()
    {
        var a = await TenantWithBooksAsync();
        var b = await TenantWithBooksAsync();
        using (TenantScope.Enter(a.Id))
        {
            await using var c = await Db.OpenAsync(Ct);
            // No tenant filter: only the scope's tenant comes back, from the tables and through the journal view.
            Assert.Equal(new[] { a.Id }, await c.QueryAsync<string>("SELECT DISTINCT tenant_id FROM accounts"));
            Assert.Equal(new[] { a.Id }, await c.QueryAsync<string>("SELECT DISTINCT tenant_id FROM transfers"));
            Assert.Equal(new[] { a.Id }, await c.QueryAsync<string>("SELECT DISTINCT tenant_id FROM entries"));
            Assert.Equal(1L, await c.ExecuteScalarAsync<long>("SELECT count(*) FROM accounts WHERE id = 'alice'"));
            // Another tenant's ids, asked for by name, are not there.
            Assert.Empty(await c.QueryAsync<string>("SELECT id FROM transfers WHERE tenant_id = @b", new { b = b.Id }));
            // Its rows cannot be changed, and none can be written in its name.
            Assert.Equal(0, await c.ExecuteAsync("UPDATE accounts SET tenant_id = tenant_id WHERE tenant_id = @b", new { b = b.Id }));
            var refused = await Assert.ThrowsAsync<PostgresException>(() => c.ExecuteAsync("""
                INSERT INTO idempotency_keys (tenant_id, key, fingerprint, state, created_at_us, expires_at_us)
                VALUES (@b, 'planted', '\x00', 1, 0, 0)
                """, new { b = b.Id }));
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, refused.SqlState);
            // The same inside an explicit transaction, through a plain command too.
            await using (var tx = await c.BeginTransactionAsync(Ct))
            {
                Assert.Equal(new[] { a.Id }, await c.QueryAsync<string>("SELECT DISTINCT tenant_id FROM accounts", transaction: tx));
                await using var command = c.CreateCommand();
                command.Transaction = tx;
                command.CommandText = "SELECT count(*) FROM transfers WHERE tenant_id = @b";
                command.Parameters.Add(new NpgsqlParameter("b", b.Id));
                Assert.Equal(0L, (long)(await command.ExecuteScalarAsync(Ct))!);
                // Positional placeholders keep Npgsql from splitting statements, so the tenant cannot go in front: refused.
                await using var positional = c.CreateCommand();
                positional.CommandText = "SELECT count(*) FROM transfers WHERE tenant_id = $1";
                positional.Parameters.Add(new NpgsqlParameter { Value = b.Id });
                await Assert.ThrowsAsync<NotSupportedException>(() => positional.ExecuteScalarAsync(Ct));
            }
        }
        // Outside a tenant's scope (migrations, the relay, jobs) every tenant is visible, as before.
        await using var system = await Db.OpenAsync(Ct);
        Assert.Equal(2, (await system.QueryAsync<string>("SELECT DISTINCT tenant_id FROM accounts WHERE tenant_id = ANY(@ids)",
            new { ids = new[] { a.Id, b.Id } })).Count());
        Assert.Equal(0L, await system.ExecuteScalarAsync<long>("SELECT count(*) FROM idempotency_keys WHERE key = 'planted'"));
    }

    [Fact]
    public async Task Requests_run_their_statements_confined_to_the_callers_tenant()
    {
        // A restrictive policy that hides one webhook from tenant-scoped statements only: if the request's statements ran
        // outside the tenant's scope, the list would still show it.
        var tenant = await Server.NewTenantAsync();
        foreach (var name in new[] { "visible", "hidden" })
        {
            var created = await tenant.Http.PostJsonAsync("/v1/webhooks", new { url = $"https://93.184.216.34/{name}", event_types = new[] { "*" } });
            Assert.True(created.Response.IsSuccessStatusCode, created.Body?.ToJsonString());
        }
        await using var admin = new NpgsqlConnection(fixture.AdminDatabase);
        await admin.OpenAsync(Ct);
        await admin.ExecuteAsync("""
            CREATE POLICY test_hide_from_tenants ON webhook_endpoints AS RESTRICTIVE FOR SELECT
            USING (COALESCE(current_setting('neraca.tenant', true), '') = '' OR url NOT LIKE '%/hidden')
            """);
        try
        {
            var list = await tenant.Http.GetJsonAsync("/v1/webhooks");
            Assert.True(list.Response.IsSuccessStatusCode, list.Body?.ToJsonString());
            var text = list.Body!.ToJsonString();
            Assert.Contains("/visible", text);
            Assert.DoesNotContain("/hidden", text);
        }
        finally
        {
            await admin.ExecuteAsync("DROP POLICY test_hide_from_tenants ON webhook_endpoints");
        }
        Assert.Contains("/hidden", (await tenant.Http.GetJsonAsync("/v1/webhooks")).Body!.ToJsonString());
    }

    [Fact]
    public async Task The_posting_path_writes_as_the_ledgers_tenant()
    {
        // Transfers of two tenants post concurrently; each batch enters its tenant, so any row written in another's name
        // would be refused. Afterwards each tenant's journal holds exactly its own transfers.
        var a = await TenantWithBooksAsync();
        var b = await TenantWithBooksAsync();
        var la = new LedgerClient(a.Http);
        var lb = new LedgerClient(b.Http);
        await Task.WhenAll(Enumerable.Range(0, 40).Select(async i =>
        {
            var l = i % 2 == 0 ? la : lb;
            var (response, body) = await l.TransferAsync($"p{i}", "bank", "alice", 1);
            Assert.True(response.IsSuccessStatusCode, body?.ToJsonString());
        }));
        Assert.Equal(520L, await la.PostedAsync("alice"));
        Assert.Equal(520L, await lb.PostedAsync("alice"));
        using (TenantScope.Enter(b.Id))
        {
            await using var c = await Db.OpenAsync(Ct);
            Assert.Equal(21L, await c.ExecuteScalarAsync<long>("SELECT count(*) FROM transfers"));
        }
    }
}

public sealed class SuperuserRowLevelSecurityTests(PostgresServerFixture fixture) : RowLevelSecurityTests(fixture), IClassFixture<PostgresServerFixture>;

public sealed class AppRoleRowLevelSecurityTests(PostgresAppRoleServerFixture fixture) : RowLevelSecurityTests(fixture), IClassFixture<PostgresAppRoleServerFixture>;
