namespace Neraca.Ledger;

/// <summary>Splits a batch request into per-ledger sub-batches (every write transaction touches one ledger) without
/// breaking linked chains: a chain goes whole to the ledger of its first routable item, and an item of that chain on
/// another ledger fails it with <c>ledger_mismatch</c>.</summary>
internal static class BatchRouter
{
    public static async Task<OpResult[]> SubmitAsync(PostingPipeline pipeline, string tenantId, PostingOp[] ops, LedgerRecord?[] ledgers, CancellationToken ct)
    {
        var results = new OpResult[ops.Length];
        var perLedger = new Dictionary<string, (LedgerRecord Ledger, List<int> Indexes)>(StringComparer.Ordinal);
        var start = 0;
        while (start < ops.Length)
        {
            var end = start;
            while (end < ops.Length - 1 && ops[end].Linked) end++;
            var ledger = Enumerable.Range(start, end - start + 1).Select(i => ledgers[i]).FirstOrDefault(l => l is not null);
            if (ledger is null)
            {
                FailUnroutable(ops, start, end, results);
            }
            else
            {
                for (var i = start; i <= end; i++)
                {
                    if (ledgers[i] is { } other && other.Id != ledger.Id && ops[i].Rejected is null)
                        ops[i] = Reject(ops[i], OpResult.Fail(LedgerCodes.LedgerMismatch, "A linked chain must stay within one ledger."));
                }
                if (!perLedger.TryGetValue(ledger.Id, out var group)) perLedger[ledger.Id] = group = (ledger, []);
                for (var i = start; i <= end; i++) group.Indexes.Add(i);
            }
            start = end + 1;
        }

        await Task.WhenAll(perLedger.Values.Select(async group =>
        {
            var sub = group.Indexes.Select(i => ops[i]).ToArray();
            var subResults = await pipeline.SubmitAsync(tenantId, group.Ledger, sub, ct);
            for (var k = 0; k < sub.Length; k++) results[group.Indexes[k]] = subResults[k];
        }));
        return results;
    }

    /// <summary>A chain none of whose items could be routed: every item failed before reaching the engine.</summary>
    static void FailUnroutable(PostingOp[] ops, int start, int end, OpResult[] results)
    {
        var failedAt = -1;
        for (var i = start; i <= end; i++)
        {
            if (i == end && ops[i].Linked)
            {
                results[i] = OpResult.Fail(LedgerCodes.LinkedChainOpen, "The batch ends inside a linked chain (the last item has linked = true).");
                failedAt = failedAt < 0 ? i : failedAt;
            }
            else if (failedAt < 0)
            {
                results[i] = ops[i].Rejected!;
                failedAt = i;
            }
        }
        for (var i = start; i <= end; i++)
            if (i != failedAt) results[i] = OpResult.Fail(LedgerCodes.LinkedEventFailed, $"Item {failedAt - start} of its linked chain failed.");
    }

    static PostingOp Reject(PostingOp op, OpResult why) => new()
    {
        Kind = op.Kind, TransferId = op.TransferId, DebitAccountId = op.DebitAccountId, CreditAccountId = op.CreditAccountId, Amount = op.Amount,
        Linked = op.Linked, Rejected = why,
    };
}
