using Neraca.Jobs;
using Dapper;
using Neraca.Storage;

namespace Neraca.Ledger;

/// <summary>Hourly, per tenant: records each ledger's audit-chain head (link number, hash, last sequence) in
/// <c>audit_checkpoints</c>. Verification can start from a checkpoint, and a chain rewritten after it (hashes
/// recomputed to hide an edit) no longer matches it. Chunked by ledger id; re-recording a head is a no-op.</summary>
internal sealed class AuditCheckpointJob : IJobHandler
{
    public const string TypeName = "audit.checkpoint";

    public string Type => TypeName;

    public JobTypeDefaults Defaults => new() { ConcurrencyMax = 4, ChunkSize = 500 };

    public Task ExecuteAsync(JobExecution job, CancellationToken ct) => job.RunChunksAsync(async (chunk, token) =>
    {
        var after = chunk.Checkpoint ?? "";
        var last = await chunk.Connection.ExecuteScalarAsync<string?>(new CommandDefinition("""
            SELECT max(ledger_id) FROM (
                SELECT ledger_id FROM ledger_heads WHERE tenant_id = @tenant AND ledger_id > @after ORDER BY ledger_id LIMIT @limit) page
            """, new { tenant = chunk.TenantId, after, limit = chunk.ChunkSize }, chunk.Transaction, cancellationToken: token));
        if (last is null) return new ChunkResult(chunk.Checkpoint, 0, Done: true);
        var recorded = await chunk.Connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO audit_checkpoints (tenant_id, ledger_id, link, head, last_seq, recorded_at_us)
            SELECT tenant_id, ledger_id, last_link, head, last_seq, @now FROM ledger_heads
            WHERE tenant_id = @tenant AND ledger_id > @after AND ledger_id <= @last AND last_link > 0
            ON CONFLICT DO NOTHING
            """, new { tenant = chunk.TenantId, after, last, now = DbTime.ToMicros(chunk.Now) }, chunk.Transaction, cancellationToken: token));
        return new ChunkResult(last, recorded, Done: false);
    }, ct);
}
