using Neraca.Jobs;

namespace Neraca.Ledger;

/// <summary>Voids pending transfers past their timeout, through the ledger (<see cref="PendingExpiry"/>) so expiry is
/// batched, chained and audited like any posting. The worker role's one-second sweep does this continuously; this
/// scheduled job is the cluster-wide backstop that shows up, with its counts, in <c>GET /v1/jobs</c>.</summary>
internal sealed class ExpirePendingTransfersJob(PendingExpiry expiry) : IJobHandler
{
    public const string TypeName = "ledger.expire_pending";

    /// <summary>Batches per run: a backlog larger than this is finished by the next run, not by one endless one.</summary>
    const int RoundsMax = 100;

    public string Type => TypeName;

    public JobTypeDefaults Defaults => new() { ConcurrencyMax = 1, ChunkSize = 5000, AttemptsMax = 3 };

    public async Task ExecuteAsync(JobExecution job, CancellationToken ct)
    {
        // Not a checkpointed chunk: expiry commits in the ledger's own transactions and is idempotent (expiring an
        // expired transfer is a no-op), so a repeated batch after a crash changes nothing.
        for (var round = 0; round < RoundsMax; round++)
        {
            var expired = await expiry.ExpireDueAsync(job.Settings.ChunkSize, ct);
            if (expired < job.Settings.ChunkSize) return;
        }
    }
}
