using System.Text.Json;
using Dapper;
using Neraca.Jobs;
using Neraca.Storage;

namespace Neraca.Ledger;

/// <summary>Nightly, per tenant: recomputes the audit chain of every ledger (<see cref="AuditChain.VerifyAsync"/>) and
/// checks that the chain still contains the head recorded by the latest <see cref="AuditCheckpointJob"/> checkpoint
/// (a chain cut short or rewritten since then verifies on its own, but no longer matches). Every failing ledger raises
/// the alert: <c>neraca.audit.verification.failures</c> and an error log naming it; the job then ends dead-lettered,
/// listing the ledgers. Progress (ledgers done, failures so far) is checkpointed, so a crash resumes, not restarts.</summary>
internal sealed partial class VerifyLedgersJob(AuditChain audit, Database database, JobMetrics metrics, ILogger<VerifyLedgersJob> logger) : IJobHandler
{
    public const string TypeName = "audit.verify";

    /// <summary>Failures kept in the job's progress and error text; the count is always exact.</summary>
    const int FailuresListedMax = 50;

    static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public string Type => TypeName;

    public JobTypeDefaults Defaults => new() { ConcurrencyMax = 2, ChunkSize = 20, AttemptsMax = 3 };

    public async Task ExecuteAsync(JobExecution job, CancellationToken ct)
    {
        var progress = job.Checkpoint is null ? new Progress("", 0, 0, []) : JsonSerializer.Deserialize<Progress>(job.Checkpoint, Json)!;
        var more = true;
        while (more)
        {
            // Verification reads whole chains: it runs outside the chunk transaction (which only records the outcome),
            // so no lock is held while it reads. It is read-only, so redoing a page after a crash is harmless.
            List<string> page;
            await using (var connection = await database.OpenReadAsync(ct))
            {
                page = (await connection.QueryAsync<string>(new CommandDefinition(
                    "SELECT id FROM ledgers WHERE tenant_id = @tenant AND id > @after ORDER BY id LIMIT @limit",
                    new { tenant = job.TenantId, after = progress.After, limit = job.Settings.ChunkSize }, cancellationToken: ct))).ToList();
            }
            if (page.Count == 0) break;
            var failed = new List<string>(progress.Failed);
            var failures = progress.Failures;
            foreach (var ledgerId in page)
            {
                var problem = await ProblemAsync(job.TenantId, ledgerId, ct);
                if (problem is null) continue;
                failures++;
                metrics.VerificationFailure();
                LogVerificationFailed(logger, job.TenantId, ledgerId, problem);
                if (failed.Count < FailuresListedMax) failed.Add($"{ledgerId}: {problem}");
            }
            var next = new Progress(page[^1], progress.Verified + page.Count - (failures - progress.Failures), failures, failed);
            more = page.Count == job.Settings.ChunkSize;
            await job.RunChunkAsync((_, _) => Task.FromResult(new ChunkResult(JsonSerializer.Serialize(next, Json), page.Count, !more)), ct);
            progress = next;
        }
        if (progress.Failures > 0)
            throw new PermanentJobFailureException($"Audit verification failed for {progress.Failures} ledger(s): {string.Join("; ", progress.Failed)}");
    }

    async Task<string?> ProblemAsync(string tenantId, string ledgerId, CancellationToken ct)
    {
        var result = await audit.VerifyAsync(tenantId, ledgerId, ct);
        if (!result.Verified) return $"chain breaks at link {result.FirstBadLink}: {result.Problem}";
        await using var connection = await database.OpenReadAsync(ct);
        var anchor = await connection.QuerySingleOrDefaultAsync<AnchorRow>(new CommandDefinition("""
            SELECT c.link, c.head, l.hash FROM audit_checkpoints c
            LEFT JOIN chain_links l ON l.tenant_id = c.tenant_id AND l.ledger_id = c.ledger_id AND l.link = c.link
            WHERE c.tenant_id = @tenantId AND c.ledger_id = @ledgerId ORDER BY c.link DESC LIMIT 1
            """, new { tenantId, ledgerId }, cancellationToken: ct));
        if (anchor is null || (anchor.hash is not null && anchor.hash.AsSpan().SequenceEqual(anchor.head))) return null;
        return anchor.hash is null
            ? $"link {anchor.link} recorded in an audit checkpoint is gone (history was cut short)"
            : $"link {anchor.link} no longer has the hash recorded in an audit checkpoint (history was rewritten)";
    }

    /// <summary>Where verification resumes: the last ledger id done, counts, and the failures found so far.</summary>
    sealed record Progress(string After, long Verified, long Failures, List<string> Failed);

#pragma warning disable IDE1006 // Dapper maps snake_case columns onto these names.
    sealed class AnchorRow
    {
        public long link { get; set; }
        public byte[] head { get; set; } = [];
        public byte[]? hash { get; set; }
    }
#pragma warning restore IDE1006

    [LoggerMessage(1, LogLevel.Error, "Audit verification failed for tenant {TenantId} ledger {LedgerId}: {Problem}")]
    static partial void LogVerificationFailed(ILogger logger, string tenantId, string ledgerId, string problem);
}
