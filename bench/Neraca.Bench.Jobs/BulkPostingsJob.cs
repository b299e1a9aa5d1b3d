using System.Globalization;
using Neraca.Jobs;
using Neraca.Ledger;

namespace Neraca.Bench.Jobs;

/// <summary>A large chunked job: <c>total</c> one-unit transfers among a ledger's accounts, <c>ChunkSize</c> per
/// pipeline batch. Transfer ids are derived from the item number, so a chunk redone after a crash replays instead
/// of posting twice (the ledger's idempotency anchor); the posting happens in the ledger's own transaction, and the
/// checkpoint commits right after it.</summary>
public sealed class BulkPostingsJob(PostingPipeline pipeline, string tenantId, LedgerRecord ledger, IReadOnlyList<string> accounts, long total, int itemsPerSecondMax)
    : IJobHandler
{
    public const string TypeName = "bench.bulk_postings";

    public string Type => TypeName;

    public JobTypeDefaults Defaults => new() { ConcurrencyMax = 1, ChunkSize = 2000, ItemsPerSecondMax = itemsPerSecondMax };

    public async Task ExecuteAsync(JobExecution job, CancellationToken ct)
    {
        var more = true;
        while (more)
        {
            var from = job.Checkpoint is null ? 0 : long.Parse(job.Checkpoint, CultureInfo.InvariantCulture);
            if (from >= total) return; // the last chunk committed but the attempt did not record success
            var count = (int)Math.Min(job.Settings.ChunkSize, total - from);
            var ops = new PostingOp[count];
            for (var i = 0; i < count; i++)
            {
                var n = from + i;
                ops[i] = new PostingOp
                {
                    Kind = OpKind.Create,
                    TransferId = "bulk-" + n.ToString(CultureInfo.InvariantCulture),
                    DebitAccountId = accounts[(int)(n % accounts.Count)],
                    CreditAccountId = accounts[(int)((n + 1) % accounts.Count)],
                    Amount = 1,
                };
            }
            var results = await pipeline.SubmitAsync(tenantId, ledger, ops, ct);
            var failed = results.FirstOrDefault(r => !r.Succeeded);
            if (failed is not null) throw new InvalidOperationException($"bulk posting failed: {failed.Code} {failed.Detail}");
            var next = from + count;
            more = next < total;
            await job.RunChunkAsync((_, _) => Task.FromResult(new ChunkResult(next.ToString(CultureInfo.InvariantCulture), count, !more)), ct);
        }
    }
}
