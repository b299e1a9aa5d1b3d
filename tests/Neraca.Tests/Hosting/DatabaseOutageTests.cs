using System.Net;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Ledger;

namespace Neraca.Tests.Hosting;

/// <summary>Found by a new user: PostgreSQL crashed (<c>pg_ctl stop -m immediate</c>) and restarted under load lost no
/// acknowledged transfer, but bare 500s answered the requests in between. An outage answers 503
/// <c>database_unavailable</c> with <c>Retry-After</c>, readiness reports it, and the same request retried after the
/// restart applies once.</summary>
[Collection(ServerProcesses.Name)]
public sealed class DatabaseOutageTests
{
    [Fact]
    public async Task Postgres_crash_answers_503_database_unavailable_and_a_retry_after_restart_applies_once()
    {
        await using var postgres = await PostgresServer.StartOwnAsync();
        await using var server = await NeracaServer.StartAsync(await postgres.CreateDatabaseAsync());
        var tenant = await server.NewTenantAsync();
        var ledger = new LedgerClient(tenant.Http);
        await ledger.LedgerAsync();
        await ledger.AccountAsync("cash", normal: "debit");
        await ledger.AccountAsync("wallet");
        Assert.Equal(HttpStatusCode.Created, (await ledger.TransferAsync("before", "cash", "wallet", 1_000)).Response.StatusCode);

        await postgres.CrashAsync();
        var during = await ledger.TransferAsync("during", "cash", "wallet", 2_500);
        during.AssertProblem(503, "database_unavailable");
        Assert.Equal("3", during.Response.Headers.RetryAfter?.ToString());
        (await tenant.Http.GetJsonAsync("/v1/accounts/wallet")).AssertProblem(503, "database_unavailable");
        using (var probe = server.CreateClient())
            Assert.Equal(HttpStatusCode.ServiceUnavailable, (await probe.GetAsync("/health/ready")).StatusCode);

        await postgres.RestartAsync();
        // The pool's broken connections are found and replaced by the next requests; the server needs no restart.
        var retried = await Polling.Eventually(() => ledger.TransferAsync("during", "cash", "wallet", 2_500),
            r => r.Response.StatusCode != HttpStatusCode.ServiceUnavailable, "a retry after the restart is answered");
        Assert.Equal(HttpStatusCode.Created, retried.Response.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await ledger.TransferAsync("during", "cash", "wallet", 2_500)).Response.StatusCode);
        Assert.Equal(3_500, await ledger.PostedAsync("wallet"));
        using (var probe = server.CreateClient())
            Assert.Equal(HttpStatusCode.OK, (await probe.GetAsync("/health/ready")).StatusCode);
        await Conservation.AssertAsync(server, tenant.Id);
    }

    /// <summary>Found by the fault-injection suite: a replica (re)started while PostgreSQL was restarting exited with an
    /// unhandled connection error. It waits for the database instead, up to <c>DatabaseStartupWaitSeconds</c>.</summary>
    [Fact]
    public async Task Server_started_while_postgres_is_down_waits_for_it_instead_of_crashing()
    {
        await using var postgres = await PostgresServer.StartOwnAsync();
        var database = await postgres.CreateDatabaseAsync();
        await postgres.CrashAsync();

        // With no patience configured it gives up at once, with the driver's error.
        var impatient = await Assert.ThrowsAnyAsync<Exception>(() => NeracaServer.StartAsync(database, "--DatabaseStartupWaitSeconds=0"));
        Assert.True(Neraca.Storage.Database.IsUnavailable(impatient), impatient.ToString());

        var starting = NeracaServer.StartAsync(database);
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.False(starting.IsCompleted, starting.Exception?.ToString() ?? "started without a database");
        await postgres.RestartAsync();
        await using var server = await starting;
        var tenant = await server.NewTenantAsync();
        var ledger = new LedgerClient(tenant.Http);
        await ledger.LedgerAsync();
        await ledger.AccountAsync("cash", normal: "debit");
        await ledger.AccountAsync("wallet");
        Assert.Equal(HttpStatusCode.Created, (await ledger.TransferAsync("after", "cash", "wallet", 1_000)).Response.StatusCode);
    }
}
