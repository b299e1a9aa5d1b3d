namespace Neraca.Jobs;

/// <summary>Where a job is. Values are stored: never renumber.</summary>
public enum JobState
{
    Queued = 1,
    Running = 2,
    Succeeded = 3,
    /// <summary>Dead-lettered: attempts exhausted or a permanent failure. Counted in <c>neraca.job.failures</c>.</summary>
    Dead = 4,
}

/// <summary>How one attempt ended. Values are stored: never renumber.</summary>
public enum JobRunResult
{
    Succeeded = 1,
    Failed = 2,
    /// <summary>The worker stopped renewing its lease (it crashed, hung or lost the database); another took over.</summary>
    Abandoned = 3,
}

/// <summary>A job to enqueue. <paramref name="Key"/> makes enqueueing idempotent: the same tenant, type and key is
/// the same job, enqueued once however often it is asked for.</summary>
public sealed record JobRequest(string TenantId, string Type, string Payload = "{}", string? Key = null, DateTimeOffset? RunAt = null)
{
    public const int KeyLengthMax = 200;
    public const int PayloadLengthMax = 64 * 1024;

    /// <summary>Set by the scheduler for jobs it enqueues for a recurring slot.</summary>
    public string? Schedule { get; init; }
    public long? SlotUs { get; init; }
}

/// <summary>The result of an enqueue: the job's id, and whether this call created it (false: the key existed).</summary>
public readonly record struct Enqueued(string JobId, bool Created);

/// <summary>Implements one job type. Handlers are singletons; one <see cref="ExecuteAsync"/> call is one attempt.
/// Throwing retries the job with backoff (<see cref="PermanentJobFailureException"/> dead-letters it at once).</summary>
public interface IJobHandler
{
    /// <summary>Stable name stored with each job, e.g. <c>idempotency.prune</c>.</summary>
    string Type { get; }

    /// <summary>Concurrency, attempts, chunk size and throughput this type asks for; configuration overrides them.</summary>
    JobTypeDefaults Defaults => new();

    Task ExecuteAsync(JobExecution job, CancellationToken ct);
}

/// <summary>A failure that retrying cannot fix (bad payload, a verification that found tampering): the job goes to
/// the dead-letter state without further attempts.</summary>
public sealed class PermanentJobFailureException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>This worker's claim on the job ended (its lease expired and another worker took over): it must stop
/// without writing anything more.</summary>
public sealed class JobLeaseLostException(string jobId) : Exception($"The lease on job {jobId} was lost to another worker.");

/// <summary>One chunk's outcome: where to resume, how many items it handled, and whether the job is done.</summary>
public readonly record struct ChunkResult(string? Checkpoint, long Processed, bool Done);
