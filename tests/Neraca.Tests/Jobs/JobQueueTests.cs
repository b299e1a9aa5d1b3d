using System.Diagnostics.Metrics;
using Microsoft.Extensions.Time.Testing;
using Neraca.Jobs;
using Neraca.Storage;

namespace Neraca.Tests.Jobs;

public sealed class JobQueueTests
{
    [Theory]
    [InlineData(StoreKind.Sqlite)]
    [InlineData(StoreKind.Postgres)]
    public async Task Enqueueing_the_same_key_twice_creates_one_job(StoreKind kind)
    {
        await using var rig = await JobRig.CreateAsync(kind);
        var a = rig.Replica(TimeProvider.System, []);
        var b = rig.Replica(TimeProvider.System, []);
        var request = new JobRequest("t1", "test.anything", Key: "payroll-2026-03");
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => (i % 2 == 0 ? a : b).Store.EnqueueAsync(request, CancellationToken.None)));

        Assert.Single(results, r => r.Created);
        Assert.Single(results.Select(r => r.JobId).Distinct());
        Assert.Equal(1L, await rig.ScalarAsync<long>("SELECT count(*) FROM jobs"));
        // The key is per tenant and per type.
        Assert.True((await a.Store.EnqueueAsync(request with { TenantId = "t2" }, CancellationToken.None)).Created);
        Assert.True((await a.Store.EnqueueAsync(request with { Type = "test.other" }, CancellationToken.None)).Created);
        Assert.True((await a.Store.EnqueueAsync(request with { Key = null }, CancellationToken.None)).Created);
        Assert.True((await a.Store.EnqueueAsync(request with { Key = null }, CancellationToken.None)).Created);
    }

    [Theory]
    [InlineData(StoreKind.Sqlite)]
    [InlineData(StoreKind.Postgres)]
    public async Task Failing_job_is_retried_with_exponential_backoff_then_dead_lettered(StoreKind kind)
    {
        await using var rig = await JobRig.CreateAsync(kind);
        var type = "test.failing." + kind.ToString().ToLowerInvariant();
        using var metrics = new JobMetricsProbe(type);
        var time = new FakeTimeProvider(JobRig.Start);
        var handler = new RecorderJob(rig.Admin, type) { AttemptsMax = 3, Failure = () => new InvalidOperationException("bank file is malformed") };
        var replica = rig.Replica(time, [handler], o => { o.BackoffBaseMs = 10_000; o.BackoffMaxMs = 15_000; });
        var job = await replica.Store.EnqueueAsync(new JobRequest("t1", type), CancellationToken.None);

        Assert.True(await replica.Worker.TryRunNextAsync(CancellationToken.None));
        var afterFirst = await replica.Store.GetAsync("t1", job.JobId, CancellationToken.None);
        Assert.Equal(JobState.Queued, afterFirst!.State);
        Assert.InRange(afterFirst.RunAt!.Value - time.GetUtcNow(), TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(12));
        Assert.Contains("bank file is malformed", afterFirst.LastError, StringComparison.Ordinal);

        time.Advance(TimeSpan.FromSeconds(9));
        Assert.False(await replica.Worker.TryRunNextAsync(CancellationToken.None)); // still backing off
        time.Advance(TimeSpan.FromSeconds(3));
        Assert.True(await replica.Worker.TryRunNextAsync(CancellationToken.None));
        var afterSecond = await replica.Store.GetAsync("t1", job.JobId, CancellationToken.None);
        // Doubled (20 s) but capped at BackoffMaxMs (15 s) plus jitter.
        Assert.InRange(afterSecond!.RunAt!.Value - time.GetUtcNow(), TimeSpan.FromSeconds(15), TimeSpan.FromSeconds(18));

        time.Advance(TimeSpan.FromSeconds(18));
        Assert.True(await replica.Worker.TryRunNextAsync(CancellationToken.None));
        var dead = await replica.Store.GetAsync("t1", job.JobId, CancellationToken.None);
        Assert.Equal(JobState.Dead, dead!.State);
        Assert.NotNull(dead.FinishedAt);
        Assert.Equal(3, dead.Attempts);
        Assert.All(dead.Runs!, r => Assert.Equal(JobRunResult.Failed, r.Result));
        Assert.Equal([1, 2, 3], dead.Runs!.Select(r => r.Attempt));

        time.Advance(TimeSpan.FromHours(1));
        Assert.False(await replica.Worker.TryRunNextAsync(CancellationToken.None)); // dead stays dead
        Assert.Equal(3, metrics.Failures);
        Assert.Equal(1, metrics.Runs("dead"));
        Assert.Equal(2, metrics.Runs("retrying"));
    }

    [Theory]
    [InlineData(StoreKind.Sqlite)]
    public async Task Permanent_failure_is_dead_lettered_without_retry(StoreKind kind)
    {
        await using var rig = await JobRig.CreateAsync(kind);
        var handler = new RecorderJob(rig.Admin) { Failure = () => new PermanentJobFailureException("payload names no ledger") };
        var replica = rig.Replica(TimeProvider.System, [handler]);
        var job = await replica.Store.EnqueueAsync(new JobRequest("t1", RecorderJob.TypeName), CancellationToken.None);
        Assert.True(await replica.Worker.TryRunNextAsync(CancellationToken.None));
        var dead = await replica.Store.GetAsync("t1", job.JobId, CancellationToken.None);
        Assert.Equal(JobState.Dead, dead!.State);
        Assert.Equal("payload names no ledger", dead.LastError);
        Assert.Single(dead.Runs!);
    }

    [Theory]
    [InlineData(StoreKind.Sqlite)]
    [InlineData(StoreKind.Postgres)]
    public async Task Concurrency_limit_of_a_job_type_holds_across_replicas(StoreKind kind)
    {
        await using var rig = await JobRig.CreateAsync(kind);
        await rig.ExecuteAsync(RecorderJob.CreateTable);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var a = rig.Replica(TimeProvider.System, [new RecorderJob(rig.Admin) { Gate = async ct => { started.TrySetResult(); await gate.Task.WaitAsync(ct); } }]);
        var b = rig.Replica(TimeProvider.System, [new RecorderJob(rig.Admin)]);
        await a.Store.EnqueueAsync(new JobRequest("t1", RecorderJob.TypeName), CancellationToken.None);
        await a.Store.EnqueueAsync(new JobRequest("t1", RecorderJob.TypeName), CancellationToken.None);

        var runA = a.Worker.TryRunNextAsync(CancellationToken.None);
        await started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.False(await b.Worker.TryRunNextAsync(CancellationToken.None)); // a job is due, but the type's one slot is taken
        gate.SetResult();
        Assert.True(await runA);
        Assert.True(await b.Worker.TryRunNextAsync(CancellationToken.None));
        Assert.Equal(2L, await rig.ScalarAsync<long>("SELECT count(*) FROM recorded_runs"));
    }

    [Theory]
    [InlineData(StoreKind.Sqlite)]
    [InlineData(StoreKind.Postgres)]
    public async Task History_past_retention_is_pruned_with_its_runs(StoreKind kind)
    {
        await using var rig = await JobRig.CreateAsync(kind);
        await rig.ExecuteAsync(RecorderJob.CreateTable);
        var time = new FakeTimeProvider(JobRig.Start);
        var replica = rig.Replica(time, [new RecorderJob(rig.Admin), new PruneJobHistoryJob(Microsoft.Extensions.Options.Options.Create(new JobsOptions()))]);
        var old = await replica.Store.EnqueueAsync(new JobRequest("t1", RecorderJob.TypeName), CancellationToken.None);
        Assert.True(await replica.Worker.TryRunNextAsync(CancellationToken.None));
        var waiting = await replica.Store.EnqueueAsync(new JobRequest("t1", RecorderJob.TypeName, RunAt: JobRig.Start.AddYears(1)), CancellationToken.None);
        time.Advance(TimeSpan.FromDays(31));
        var recent = await replica.Store.EnqueueAsync(new JobRequest("t1", RecorderJob.TypeName), CancellationToken.None);
        Assert.True(await replica.Worker.TryRunNextAsync(CancellationToken.None));

        var prune = await replica.Store.EnqueueAsync(new JobRequest("t1", PruneJobHistoryJob.TypeName), CancellationToken.None);
        Assert.True(await replica.Worker.TryRunNextAsync(CancellationToken.None));

        Assert.Null(await replica.Store.GetAsync("t1", old.JobId, CancellationToken.None));
        Assert.Equal(0L, await rig.ScalarAsync<long>("SELECT count(*) FROM job_runs WHERE job_id = @id", new { id = old.JobId }));
        Assert.Equal(JobState.Queued, (await replica.Store.GetAsync("t1", waiting.JobId, CancellationToken.None))!.State);
        Assert.Equal(JobState.Succeeded, (await replica.Store.GetAsync("t1", recent.JobId, CancellationToken.None))!.State);
        Assert.Equal(1, (await replica.Store.GetAsync("t1", prune.JobId, CancellationToken.None))!.Processed);
    }

    [Fact]
    public void Stored_enum_values_never_change()
    {
        Assert.Equal([1, 2, 3, 4], Enum.GetValues<JobState>().Select(s => (int)s));
        Assert.Equal(["Queued", "Running", "Succeeded", "Dead"], Enum.GetNames<JobState>());
        Assert.Equal([1, 2, 3], Enum.GetValues<JobRunResult>().Select(s => (int)s));
        Assert.Equal(["Succeeded", "Failed", "Abandoned"], Enum.GetNames<JobRunResult>());
        Assert.Equal([1, 2], Enum.GetValues<RecurringScope>().Select(s => (int)s));
    }
}

/// <summary>Listens to the job instruments of one job type (types are unique per test, so parallel tests do not mix).</summary>
sealed class JobMetricsProbe : IDisposable
{
    readonly MeterListener _listener = new();
    readonly string _type;
    readonly Dictionary<string, long> _runs = new(StringComparer.Ordinal);
    long _failures;

    public JobMetricsProbe(string type)
    {
        _type = type;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == JobMetrics.MeterName && instrument.Name is "neraca.job.runs" or "neraca.job.failures")
                listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            string? job = null, result = null;
            foreach (var tag in tags)
            {
                if (tag.Key == "job") job = tag.Value as string;
                if (tag.Key == "result") result = tag.Value as string;
            }
            if (job != _type) return;
            lock (_runs)
            {
                if (instrument.Name == "neraca.job.failures") _failures += value;
                else _runs[result!] = _runs.GetValueOrDefault(result!) + value;
            }
        });
        _listener.Start();
    }

    public long Failures { get { lock (_runs) return _failures; } }

    public long Runs(string result) { lock (_runs) return _runs.GetValueOrDefault(result); }

    public void Dispose() => _listener.Dispose();
}
