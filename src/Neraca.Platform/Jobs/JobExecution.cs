using System.Data.Common;
using Neraca.Storage;

namespace Neraca.Jobs;

/// <summary>What a chunk step works with: the open transaction its effect must use (the checkpoint commits in it
/// too), the committed checkpoint to resume from, and the most items it may handle.</summary>
public sealed record ChunkContext(DbConnection Connection, DbTransaction Transaction, string? Checkpoint, int ChunkSize,
    string TenantId, DateTimeOffset Now);

/// <summary>One attempt of one job, handed to its <see cref="IJobHandler"/>.</summary>
public sealed class JobExecution
{
    readonly JobStore _store;
    readonly TimeSpan _leaseDuration;
    readonly JobMetrics _metrics;

    internal JobExecution(JobLease lease, JobTypeSettings settings, JobStore store, TimeProvider time, TimeSpan leaseDuration, JobMetrics metrics)
    {
        Lease = lease;
        Settings = settings;
        Time = time;
        _store = store;
        _leaseDuration = leaseDuration;
        _metrics = metrics;
        Checkpoint = lease.Checkpoint;
        Processed = lease.Processed;
    }

    internal JobLease Lease { get; }

    public string JobId => Lease.JobId;
    public string TenantId => Lease.TenantId;
    public string Type => Lease.Type;
    public string Payload => Lease.Payload;

    /// <summary>1 on the first attempt.</summary>
    public int Attempt => Lease.Attempt;

    /// <summary>The recurring slot this job was enqueued for, if any.</summary>
    public DateTimeOffset? Slot => Lease.SlotUs is { } slot ? DbTime.FromMicros(slot) : null;

    public JobTypeSettings Settings { get; }
    public TimeProvider Time { get; }

    /// <summary>The last committed checkpoint (null before the first chunk).</summary>
    public string? Checkpoint { get; private set; }

    /// <summary>Items handled by all committed chunks of all attempts.</summary>
    public long Processed { get; private set; }

    /// <summary>Runs chunks until one reports <see cref="ChunkResult.Done"/>.</summary>
    public async Task RunChunksAsync(Func<ChunkContext, CancellationToken, Task<ChunkResult>> step, CancellationToken ct)
    {
        while (await RunChunkAsync(step, ct)) { }
    }

    /// <summary>Runs one chunk in one transaction: checks the lease, reads the committed checkpoint, applies the step,
    /// stores the new checkpoint, commits; then waits as long as the throughput cap requires. Returns whether more
    /// chunks remain. A crash anywhere before the commit leaves neither the effect nor the checkpoint, so the next
    /// attempt redoes exactly this chunk; a worker that lost its lease fails the first statement and applies nothing.</summary>
    public async Task<bool> RunChunkAsync(Func<ChunkContext, CancellationToken, Task<ChunkResult>> step, CancellationToken ct)
    {
        var started = Time.GetTimestamp();
        ChunkResult result;
        await using (var connection = await _store.Database.OpenAsync(ct))
        {
            await using var tx = await connection.BeginTransactionAsync(ct);
            var (checkpoint, processed) = await _store.BeginChunkAsync(connection, tx, Lease, _leaseDuration, ct);
            result = await step(new ChunkContext(connection, tx, checkpoint, Settings.ChunkSize, TenantId, Time.GetUtcNow()), ct);
            if (result.Processed < 0) throw new InvalidOperationException("A chunk cannot process a negative number of items.");
            await _store.SaveChunkAsync(connection, tx, Lease, result.Checkpoint, result.Processed, ct);
            await tx.CommitAsync(ct);
            Checkpoint = result.Checkpoint;
            Processed = processed + result.Processed;
        }
        _metrics.Chunk(Type, result.Processed);
        await ThrottleAsync(result.Processed, started, ct);
        return !result.Done;
    }

    /// <summary>Keeps one job at or below <see cref="JobTypeSettings.ItemsPerSecondMax"/> so a large backlog cannot
    /// starve the API of database time.</summary>
    async Task ThrottleAsync(long items, long startedTimestamp, CancellationToken ct)
    {
        if (Settings.ItemsPerSecondMax <= 0 || items == 0) return;
        var minimum = TimeSpan.FromSeconds((double)items / Settings.ItemsPerSecondMax);
        var wait = minimum - Time.GetElapsedTime(startedTimestamp);
        if (wait > TimeSpan.Zero) await Task.Delay(wait, Time, ct);
    }
}
