using System.Diagnostics.Metrics;
using System.Net;
using System.Text.Json.Nodes;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Jobs;
using Neraca.Ledger;
using Neraca.Storage;
using Neraca.Tenancy;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Ledger;

namespace Neraca.Tests.Jobs;

/// <summary>The job system inside a real server (worker and scheduler roles on): the HTTP surface and the first jobs
/// against the real ledger.</summary>
public abstract class JobsServerTests(ServerFixture fixture)
{
    NeracaServer Server => fixture.Server;
    JobStore Jobs => Server.Services.GetRequiredService<JobStore>();
    Database Database => Server.Services.GetRequiredService<Database>();

    [Fact]
    public async Task Jobs_api_lists_and_shows_a_tenants_jobs_with_runs_and_progress()
    {
        var tenant = await Server.NewTenantAsync();
        // Job types no built-in schedule enqueues for a tenant, so the server's own hourly jobs cannot mix in.
        var done = await Jobs.EnqueueAsync(new JobRequest(tenant.Id, PruneIdempotencyKeysJob.TypeName), CancellationToken.None);
        var job = await WaitFinishedAsync(tenant.Http, done.JobId);
        Assert.Equal("succeeded", (string?)job["state"]);
        Assert.Equal(PruneIdempotencyKeysJob.TypeName, (string?)job["type"]);
        Assert.True((long)job["progress"]!["processed"]! >= 0);
        var run = job["runs"]!.AsArray().Single()!;
        Assert.Equal("succeeded", (string?)run["result"]);
        Assert.Equal(1, (int)run["attempt"]!);
        Assert.False(string.IsNullOrEmpty((string?)run["worker"]));

        var later = DateTimeOffset.UtcNow.AddDays(1);
        var waiting = new[]
        {
            await Jobs.EnqueueAsync(new JobRequest(tenant.Id, "report.monthly", Key: "2026-02", RunAt: later), CancellationToken.None),
            await Jobs.EnqueueAsync(new JobRequest(tenant.Id, "report.monthly", Key: "2026-03", RunAt: later), CancellationToken.None),
        }.Select(e => e.JobId).ToList();
        var page = await tenant.Http.GetJsonAsync("/v1/jobs?type=report.monthly&limit=1");
        Assert.Equal(HttpStatusCode.OK, page.Response.StatusCode);
        var first = page.Body!["data"]!.AsArray().Single()!;
        Assert.Equal("queued", (string?)first["state"]);
        Assert.Equal(later.ToUnixTimeSeconds(), DateTimeOffset.Parse((string)first["run_at"]!, System.Globalization.CultureInfo.InvariantCulture).ToUnixTimeSeconds());
        Assert.Null(first["runs"]);
        Assert.Equal((string?)first["id"], (string?)page.Body!["next_cursor"]);
        var next = await tenant.Http.GetJsonAsync($"/v1/jobs?type=report.monthly&limit=1&after={(string?)page.Body!["next_cursor"]}");
        var second = next.Body!["data"]!.AsArray().Single()!;
        Assert.Null(next.Body!["next_cursor"]);
        Assert.Equal(waiting.Order(StringComparer.Ordinal), new[] { (string)first["id"]!, (string)second["id"]! }.Order(StringComparer.Ordinal));
        Assert.True(string.CompareOrdinal((string)first["id"]!, (string)second["id"]!) > 0); // newest (greatest id) first

        Assert.Equal(2, (await tenant.Http.GetJsonAsync("/v1/jobs?state=queued&type=report.monthly")).Body!["data"]!.AsArray().Count);
        Assert.Empty((await tenant.Http.GetJsonAsync("/v1/jobs?state=succeeded&type=report.monthly")).Body!["data"]!.AsArray());
        Assert.Equal([done.JobId], (await tenant.Http.GetJsonAsync($"/v1/jobs?type={PruneIdempotencyKeysJob.TypeName}")).Body!["data"]!
            .AsArray().Select(j => (string?)j!["id"]));
    }

    [Fact]
    public async Task Jobs_api_needs_the_admin_scope_and_hides_other_tenants_jobs()
    {
        var owner = await Server.NewTenantAsync();
        var other = await Server.NewTenantAsync();
        var reader = await Server.NewTenantAsync(Scopes.LedgerRead);
        var job = await Jobs.EnqueueAsync(new JobRequest(owner.Id, "report.monthly", RunAt: DateTimeOffset.UtcNow.AddDays(1)), CancellationToken.None);

        (await other.Http.GetJsonAsync($"/v1/jobs/{job.JobId}")).AssertProblem(404, "job_not_found");
        Assert.Empty((await other.Http.GetJsonAsync("/v1/jobs?type=report.monthly")).Body!["data"]!.AsArray());
        (await reader.Http.GetJsonAsync("/v1/jobs")).AssertProblem(403, "insufficient_scope");
        (await owner.Http.GetJsonAsync("/v1/jobs?state=sleeping")).AssertProblem(400, "validation_failed");
        (await owner.Http.GetJsonAsync("/v1/jobs?limit=5000")).AssertProblem(400, "validation_failed");
    }

    [Fact]
    public async Task Checkpoint_records_each_ledgers_chain_head_and_verification_passes_on_intact_books()
    {
        var (tenant, ledgerId) = await BooksAsync();
        var checkpoint = await WaitFinishedAsync(tenant.Http, (await Jobs.EnqueueAsync(new JobRequest(tenant.Id, AuditCheckpointJob.TypeName), CancellationToken.None)).JobId);
        Assert.Equal("succeeded", (string?)checkpoint["state"]);

        await using var c = await Database.OpenAsync(CancellationToken.None);
        var head = await c.QuerySingleAsync<(long Link, byte[] Head)>(
            "SELECT last_link, head FROM ledger_heads WHERE tenant_id = @t AND ledger_id = @l", new { t = tenant.Id, l = ledgerId });
        var recorded = await c.QuerySingleAsync<(long Link, byte[] Head)>(
            "SELECT link, head FROM audit_checkpoints WHERE tenant_id = @t AND ledger_id = @l", new { t = tenant.Id, l = ledgerId });
        Assert.Equal(3, head.Link);
        Assert.Equal(head.Link, recorded.Link);
        Assert.Equal(head.Head, recorded.Head);

        var verify = await WaitFinishedAsync(tenant.Http, (await Jobs.EnqueueAsync(new JobRequest(tenant.Id, VerifyLedgersJob.TypeName), CancellationToken.None)).JobId);
        Assert.Equal("succeeded", (string?)verify["state"]);
        Assert.Equal(1L, (long)verify["progress"]!["processed"]!);
    }

    [Fact]
    public async Task Verification_of_tampered_books_raises_the_alert_and_dead_letters_the_job()
    {
        using var alerts = new VerificationAlerts();
        var (tenant, ledgerId) = await BooksAsync();
        await TamperAsync("UPDATE transfers SET credit_balance_after = credit_balance_after + 1 WHERE tenant_id = @t AND id = 't2'", tenant.Id);

        var job = await WaitFinishedAsync(tenant.Http, (await Jobs.EnqueueAsync(new JobRequest(tenant.Id, VerifyLedgersJob.TypeName), CancellationToken.None)).JobId);
        Assert.Equal("dead", (string?)job["state"]);
        Assert.Contains($"{ledgerId}: chain breaks at link 2", (string?)job["last_error"], StringComparison.Ordinal);
        Assert.Single(job["runs"]!.AsArray()); // tampering is not retried
        Assert.True(alerts.Count >= 1);
    }

    [Fact]
    public async Task History_cut_short_after_a_checkpoint_fails_verification_though_the_chain_is_consistent()
    {
        using var alerts = new VerificationAlerts();
        var (tenant, ledgerId) = await BooksAsync();
        await WaitFinishedAsync(tenant.Http, (await Jobs.EnqueueAsync(new JobRequest(tenant.Id, AuditCheckpointJob.TypeName), CancellationToken.None)).JobId);

        // Remove the last transfer (its entries go with it) and its chain link: the shorter chain is internally consistent.
        await TamperAsync("""
            DELETE FROM transfers WHERE tenant_id = @t AND link = 3;
            DELETE FROM chain_links WHERE tenant_id = @t AND link = 3;
            UPDATE ledger_heads SET last_link = 2, head = (SELECT hash FROM chain_links WHERE tenant_id = @t AND link = 2) WHERE tenant_id = @t;
            """, tenant.Id);
        // The on-demand endpoint starts from the checkpoint, so it sees the cut too (a full recomputation alone would not).
        Assert.False((bool)(await tenant.Http.GetJsonAsync("/v1/ledgers/wallets/audit")).Body!["verified"]!);

        var job = await WaitFinishedAsync(tenant.Http, (await Jobs.EnqueueAsync(new JobRequest(tenant.Id, VerifyLedgersJob.TypeName), CancellationToken.None)).JobId);
        Assert.Equal("dead", (string?)job["state"]);
        Assert.Contains($"{ledgerId}: link 3 recorded in an audit checkpoint is gone", (string?)job["last_error"], StringComparison.Ordinal);
        Assert.True(alerts.Count >= 1);
    }

    [Fact]
    public async Task Prune_deletes_idempotency_records_past_retention_only()
    {
        var tenant = await Server.NewTenantAsync();
        var now = DbTime.ToMicros(DateTimeOffset.UtcNow);
        await using (var c = await Database.OpenAsync(CancellationToken.None))
        {
            foreach (var (key, expires) in new[] { ("old-1", now - 1_000_000), ("old-2", now - 3_600_000_000), ("live", now + 3_600_000_000) })
                await c.ExecuteAsync("""
                    INSERT INTO idempotency_keys (tenant_id, key, fingerprint, state, created_at_us, expires_at_us)
                    VALUES (@t, @key, @fp, 2, @created, @expires)
                    """, new { t = tenant.Id, key, fp = new byte[32], created = now - 86_400_000_000, expires });
        }
        var job = await WaitFinishedAsync(tenant.Http, (await Jobs.EnqueueAsync(new JobRequest(tenant.Id, PruneIdempotencyKeysJob.TypeName), CancellationToken.None)).JobId);
        Assert.Equal("succeeded", (string?)job["state"]);
        Assert.True((long)job["progress"]!["processed"]! >= 2);
        await using var check = await Database.OpenAsync(CancellationToken.None);
        Assert.Equal(["live"], await check.QueryAsync<string>("SELECT key FROM idempotency_keys WHERE tenant_id = @t", new { t = tenant.Id }));
    }

    [Fact]
    public async Task Expiry_job_voids_pending_transfers_past_their_timeout()
    {
        var tenant = await Server.NewTenantAsync();
        var l = new LedgerClient(tenant.Http);
        await l.LedgerAsync();
        await l.AccountAsync("bank", normal: "debit");
        await l.AccountAsync("alice");
        var pending = await l.TransferAsync("hold-1", "bank", "alice", 500, new { pending = true, timeout_seconds = 1 });
        Assert.Equal(HttpStatusCode.Created, pending.Response.StatusCode);
        fixture.Clock.Jump(TimeSpan.FromSeconds(2)); // past the hold's timeout on the server's clock

        var job = await WaitFinishedAsync(tenant.Http, (await Jobs.EnqueueAsync(new JobRequest(tenant.Id, ExpirePendingTransfersJob.TypeName), CancellationToken.None)).JobId);
        Assert.Equal("succeeded", (string?)job["state"]);
        // The ledger's own one-second sweep may have won the race; either way the hold is expired.
        Assert.Equal("expired", (string?)(await tenant.Http.GetJsonAsync("/v1/transfers/hold-1")).Body!["status"]);
    }

    async Task<(TestTenant Tenant, string LedgerId)> BooksAsync()
    {
        var tenant = await Server.NewTenantAsync();
        var l = new LedgerClient(tenant.Http);
        await l.LedgerAsync();
        await l.AccountAsync("bank", normal: "debit");
        await l.AccountAsync("alice");
        await l.AccountAsync("bob");
        foreach (var (id, debit, credit, amount) in new[] { ("t1", "bank", "alice", 1000L), ("t2", "alice", "bob", 10L), ("t3", "alice", "bob", 20L) })
            Assert.Equal(HttpStatusCode.Created, (await l.TransferAsync(id, debit, credit, amount)).Response.StatusCode);
        await using var c = await Database.OpenAsync(CancellationToken.None);
        return (tenant, await c.QuerySingleAsync<string>("SELECT id FROM ledgers WHERE tenant_id = @t", new { t = tenant.Id }));
    }

    /// <summary>What an attacker with owner rights would do: switch the append-only guard off and rewrite history.</summary>
    async Task TamperAsync(string sql, string tenantId)
    {
        await using var admin = Database.Create(fixture.AdminDatabase, "unused"); // the server's role may not do this at all
        await using var c = await admin.OpenAsync(CancellationToken.None);
        if (admin.Kind == StoreKind.Postgres)
        {
            await c.ExecuteAsync("SET session_replication_role = replica");
            await c.ExecuteAsync(sql, new { t = tenantId });
            await c.ExecuteAsync("SET session_replication_role = origin");
            return;
        }
        await using var tx = await c.BeginTransactionAsync();
        var triggers = (await c.QueryAsync<(string Name, string Sql)>("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'", transaction: tx)).ToList();
        foreach (var t in triggers) await c.ExecuteAsync($"DROP TRIGGER {t.Name}", transaction: tx);
        await c.ExecuteAsync(sql, new { t = tenantId }, tx);
        foreach (var t in triggers) await c.ExecuteAsync(t.Sql, transaction: tx);
        await tx.CommitAsync();
    }

    static async Task<JsonNode> WaitFinishedAsync(HttpClient http, string jobId) => (await Polling.Eventually(async () =>
    {
        var r = await http.GetJsonAsync($"/v1/jobs/{jobId}");
        Assert.Equal(HttpStatusCode.OK, r.Response.StatusCode);
        return r.Body!;
    }, job => (string?)job["state"] is "succeeded" or "dead", $"job {jobId} finishes"));

    sealed class VerificationAlerts : IDisposable
    {
        readonly MeterListener _listener = new();
        long _count;

        public VerificationAlerts()
        {
            _listener.InstrumentPublished = (i, l) =>
            {
                if (i.Meter.Name == JobMetrics.MeterName && i.Name == "neraca.audit.verification.failures") l.EnableMeasurementEvents(i);
            };
            _listener.SetMeasurementEventCallback<long>((_, v, _, _) => Interlocked.Add(ref _count, v));
            _listener.Start();
        }

        public long Count => Interlocked.Read(ref _count);

        public void Dispose() => _listener.Dispose();
    }
}

public sealed class SqliteJobsServerTests(SqliteServerFixture fixture) : JobsServerTests(fixture), IClassFixture<SqliteServerFixture>;

public sealed class PostgresJobsServerTests(PostgresServerFixture fixture) : JobsServerTests(fixture), IClassFixture<PostgresServerFixture>;
