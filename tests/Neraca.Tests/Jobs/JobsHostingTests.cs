using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Neraca.Hosting;
using Neraca.Jobs;
using Neraca.Ledger;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Jobs;

public sealed class JobsHostingTests
{
    [Fact]
    public async Task Api_only_replica_serves_the_jobs_api_but_runs_no_worker_or_scheduler()
    {
        await using var server = await NeracaServer.StartAsync(await TestStores.NewDatabaseAsync(StoreKind.Sqlite), "--role", "api");
        Assert.Null(server.Services.GetService<JobWorker>());
        Assert.Null(server.Services.GetService<JobScheduler>());
        var tenant = await server.NewTenantAsync();
        var job = await server.Services.GetRequiredService<JobStore>().EnqueueAsync(new JobRequest(tenant.Id, AuditCheckpointJob.TypeName), CancellationToken.None);
        var shown = await tenant.Http.GetJsonAsync($"/v1/jobs/{job.JobId}");
        Assert.Equal("queued", (string?)shown.Body!["state"]); // nobody here runs it
    }

    [Fact]
    public void Scheduler_replica_knows_the_built_in_schedules_with_configured_overrides()
    {
        using var app = NeracaApp.Create(["--database", "sqlite:" + Path.Combine(ProcessRunner.NewTempDirectory("sqlite"), "n.db"), "--role", "scheduler",
            "--Jobs:Recurring:audit.verify:Cron=0 2 * * *", "--Jobs:Recurring:audit.verify:TimeZone=Asia/Jakarta",
            "--Jobs:Recurring:idempotency.prune:Enabled=false"]);
        var schedules = app.Services.GetRequiredService<JobScheduler>().Schedules.ToDictionary(s => s.Name);
        Assert.DoesNotContain("idempotency.prune", schedules.Keys);
        // The platform's and the ledger's own (the products add theirs).
        Assert.Superset(new HashSet<string> { "audit.checkpoint", "audit.verify", "jobs.prune", "ledger.expire_pending", "encryption.reencrypt" },
            schedules.Keys.ToHashSet());
        var verify = schedules["audit.verify"];
        Assert.Equal("0 2 * * *", verify.Job.Cron);
        Assert.Equal(RecurringScope.PerTenant, verify.Job.Scope);
        // 02:00 in Jakarta is 19:00 UTC the day before.
        Assert.Equal(new DateTimeOffset(2026, 3, 1, 19, 0, 0, TimeSpan.Zero),
            verify.Expression.GetNextOccurrence(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero), verify.Zone));
    }

    [Theory]
    [InlineData("--Jobs:Recurring:audit.verify:Cron=every night", "Jobs:Recurring:audit.verify")]
    [InlineData("--Jobs:Recurring:audit.verify:TimeZone=Mars/Olympus", "Mars/Olympus")]
    [InlineData("--Jobs:Types:audit.verify:ConcurrencyMax=0", "Jobs:Types:audit.verify:ConcurrencyMax")]
    [InlineData("--Jobs:LeaseSeconds=1", "LeaseSeconds")]
    public void Invalid_job_settings_stop_start_up_naming_the_setting(string setting, string named)
    {
        using var app = NeracaApp.Create(["--database", "sqlite:" + Path.Combine(ProcessRunner.NewTempDirectory("sqlite"), "n.db"), setting]);
        var error = Assert.Throws<OptionsValidationException>(() => app.Services.GetRequiredService<IOptions<JobsOptions>>().Value);
        Assert.Contains(named, error.Message, StringComparison.Ordinal);
    }
}
