using Microsoft.Extensions.Time.Testing;
using Neraca.Jobs;
using Neraca.Storage;

namespace Neraca.Tests.Jobs;

public sealed class ChunkedJobTests
{
    const int Items = 1000; // ten chunks of 100
    static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData(StoreKind.Sqlite)]
    [InlineData(StoreKind.Postgres)]
    public async Task Replica_killed_in_the_middle_of_a_chunk_is_finished_by_another_and_no_chunk_is_applied_twice(StoreKind kind)
    {
        await using var rig = await JobRig.CreateAsync(kind);
        await rig.ExecuteAsync(ChunkWriterJob.CreateTable);
        var time = new FakeTimeProvider(JobRig.Start);
        var handlerA = new ChunkWriterJob();
        var handlerB = new ChunkWriterJob();
        var a = rig.Replica(time, [handlerA]);
        var b = rig.Replica(time, [handlerB]);
        var job = await a.Store.EnqueueAsync(new JobRequest("t1", ChunkWriterJob.TypeName, Items.ToString(System.Globalization.CultureInfo.InvariantCulture)), CancellationToken.None);

        // Replica A runs its real worker loop and is killed while chunk 3's rows are written but not committed.
        var insideChunk3 = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        handlerA.InsideChunk = async (n, ct) =>
        {
            if (n != 3) return;
            insideChunk3.SetResult();
            await Task.Delay(Timeout.Infinite, ct);
        };
        using var kill = new CancellationTokenSource();
        var loopA = a.Worker.RunAsync(kill.Token);
        await insideChunk3.Task.WaitAsync(Wait);
        await kill.CancelAsync();
        await loopA.WaitAsync(Wait);

        Assert.Equal(300L, await rig.ScalarAsync<long>("SELECT count(*) FROM chunk_items"));
        var stranded = await rig.Admin.GetJobAsync(job.JobId);
        Assert.Equal(JobState.Running, stranded.State);
        Assert.Equal("3", stranded.Checkpoint);

        // B cannot take it while A's lease lasts; once it expires, B resumes at chunk 3.
        Assert.False(await b.Worker.TryRunNextAsync(CancellationToken.None));
        time.Advance(TimeSpan.FromSeconds(31));
        Assert.True(await b.Worker.TryRunNextAsync(CancellationToken.None));

        Assert.Equal((long)Items, await rig.ScalarAsync<long>("SELECT count(*) FROM chunk_items"));
        Assert.Equal((long)Items, await rig.ScalarAsync<long>("SELECT count(DISTINCT item) FROM chunk_items"));
        var perChunk = await rig.QueryAsync<long>("SELECT count(*) FROM chunk_items GROUP BY chunk ORDER BY chunk");
        Assert.Equal(Enumerable.Repeat(100L, 10), perChunk);

        var done = await b.Store.GetAsync("t1", job.JobId, CancellationToken.None);
        Assert.NotNull(done);
        Assert.Equal(JobState.Succeeded, done.State);
        Assert.Equal(Items, done.Processed);
        Assert.Collection(done.Runs!,
            r => { Assert.Equal(JobRunResult.Abandoned, r.Result); Assert.Equal(a.Worker.Name, r.Worker); Assert.Equal(300, r.Processed); },
            r => { Assert.Equal(JobRunResult.Succeeded, r.Result); Assert.Equal(b.Worker.Name, r.Worker); Assert.Equal(700, r.Processed); });
    }

    [Theory]
    [InlineData(StoreKind.Sqlite)]
    [InlineData(StoreKind.Postgres)]
    public async Task Worker_that_lost_its_lease_cannot_apply_another_chunk(StoreKind kind)
    {
        await using var rig = await JobRig.CreateAsync(kind);
        await rig.ExecuteAsync(ChunkWriterJob.CreateTable);
        // A is paused (think: a long GC pause or a frozen VM): its clock stands still, so it sends no heartbeat,
        // while B's clock moves past A's lease.
        var timeA = new FakeTimeProvider(JobRig.Start);
        var timeB = new FakeTimeProvider(JobRig.Start);
        var handlerA = new ChunkWriterJob();
        var a = rig.Replica(timeA, [handlerA]);
        var b = rig.Replica(timeB, [new ChunkWriterJob()]);
        var job = await a.Store.EnqueueAsync(new JobRequest("t1", ChunkWriterJob.TypeName, "1000"), CancellationToken.None);

        var paused = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var resume = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        handlerA.AfterChunk = async (n, ct) =>
        {
            if (n != 1) return;
            paused.SetResult();
            await resume.Task.WaitAsync(ct);
        };
        var stepsAfterResume = 0;
        handlerA.InsideChunk = (_, _) =>
        {
            if (resume.Task.IsCompleted) Interlocked.Increment(ref stepsAfterResume);
            return Task.CompletedTask;
        };
        var runA = a.Worker.TryRunNextAsync(CancellationToken.None);
        await paused.Task.WaitAsync(Wait);

        timeB.Advance(TimeSpan.FromSeconds(31));
        Assert.True(await b.Worker.TryRunNextAsync(CancellationToken.None));
        resume.SetResult();
        Assert.True(await runA.WaitAsync(Wait));
        Assert.Equal(0, stepsAfterResume); // fenced off before its step ran: the lease token no longer matched

        Assert.Equal(1000L, await rig.ScalarAsync<long>("SELECT count(*) FROM chunk_items"));
        Assert.Equal(1000L, await rig.ScalarAsync<long>("SELECT count(DISTINCT item) FROM chunk_items"));
        var done = await b.Store.GetAsync("t1", job.JobId, CancellationToken.None);
        Assert.Equal(JobState.Succeeded, done!.State);
        Assert.Equal(1000, done.Processed);
        Assert.Equal([JobRunResult.Abandoned, JobRunResult.Succeeded], done.Runs!.Select(r => r.Result!.Value));
        Assert.Equal([200L, 800L], done.Runs!.Select(r => r.Processed));
    }

    [Theory]
    [InlineData(StoreKind.Sqlite)]
    [InlineData(StoreKind.Postgres)]
    public async Task Graceful_stop_gives_the_job_back_at_its_checkpoint_at_once(StoreKind kind)
    {
        await using var rig = await JobRig.CreateAsync(kind);
        await rig.ExecuteAsync(ChunkWriterJob.CreateTable);
        var time = new FakeTimeProvider(JobRig.Start);
        var handlerA = new ChunkWriterJob();
        var a = rig.Replica(time, [handlerA]);
        var b = rig.Replica(time, [new ChunkWriterJob()]);
        var job = await a.Store.EnqueueAsync(new JobRequest("t1", ChunkWriterJob.TypeName, "1000"), CancellationToken.None);

        var inside = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        handlerA.InsideChunk = async (n, ct) =>
        {
            if (n != 5) return;
            inside.SetResult();
            await Task.Delay(Timeout.Infinite, ct);
        };
        await a.Worker.StartAsync(CancellationToken.None);
        await inside.Task.WaitAsync(Wait);
        await a.Worker.StopAsync(CancellationToken.None);

        // No waiting for the lease: B takes over on its first try, from chunk 5.
        Assert.True(await b.Worker.TryRunNextAsync(CancellationToken.None));
        Assert.Equal(1000L, await rig.ScalarAsync<long>("SELECT count(*) FROM chunk_items"));
        var done = await b.Store.GetAsync("t1", job.JobId, CancellationToken.None);
        Assert.Equal(JobState.Succeeded, done!.State);
        Assert.Equal([500L, 500L], done.Runs!.Select(r => r.Processed));
    }
}

static class JobQueries
{
    public static async Task<JobView> GetJobAsync(this Database database, string id)
    {
        await using var connection = await database.OpenAsync(CancellationToken.None);
        var tenant = await Dapper.SqlMapper.ExecuteScalarAsync<string>(connection, "SELECT tenant_id FROM jobs WHERE id = @id", new { id });
        var store = new JobStore(database, SqlDialect.For(database), new JobTypes([], Microsoft.Extensions.Options.Options.Create(new JobsOptions())), TimeProvider.System);
        return await store.GetAsync(tenant!, id, CancellationToken.None) ?? throw new InvalidOperationException("no job " + id);
    }
}
