using Dapper;
using Neraca.Storage;

namespace Neraca.Jobs;

/// <summary>Deletes <c>Idempotency-Key</c> records past their retention, oldest first, in bounded chunks under a
/// throughput cap (a cluster-wide job: the records of every tenant).</summary>
public sealed class PruneIdempotencyKeysJob : IJobHandler
{
    public const string TypeName = "idempotency.prune";

    public string Type => TypeName;

    public JobTypeDefaults Defaults => new() { ConcurrencyMax = 1, ChunkSize = 2000, ItemsPerSecondMax = 20_000 };

    public Task ExecuteAsync(JobExecution job, CancellationToken ct) => job.RunChunksAsync(async (chunk, token) =>
    {
        // By primary key through the expiry index: each chunk touches at most ChunkSize rows.
        var deleted = await chunk.Connection.ExecuteAsync(new CommandDefinition("""
            DELETE FROM idempotency_keys WHERE (tenant_id, key) IN (
                SELECT tenant_id, key FROM idempotency_keys WHERE expires_at_us < @now ORDER BY expires_at_us LIMIT @limit)
            """, new { now = DbTime.ToMicros(chunk.Now), limit = chunk.ChunkSize }, chunk.Transaction, cancellationToken: token));
        return new ChunkResult(null, deleted, deleted < chunk.ChunkSize);
    }, ct);
}
