namespace Neraca.Ledger;

internal enum OpKind
{
    Create,
    Post,
    Void,
    Expire,
}

/// <summary>One operation submitted to the posting pipeline. Account ids are known before enqueueing (a transfer's
/// accounts never change), so a batch can read and lock every account it touches in one statement.</summary>
internal sealed class PostingOp
{
    public OpKind Kind { get; init; }
    /// <summary>The new transfer's id (Create) or the pending transfer's id (Post, Void, Expire).</summary>
    public required string TransferId { get; init; }
    public required string DebitAccountId { get; init; }
    public required string CreditAccountId { get; init; }
    /// <summary>Create: the amount. Post: the amount to post, 0 = all of it.</summary>
    public long Amount { get; init; }
    public bool Pending { get; init; }
    public long? TimeoutSeconds { get; init; }
    public int Code { get; init; }
    public string? Description { get; init; }
    public string? Metadata { get; init; }
    public string? Reverses { get; init; }
    public long? EffectiveAtUs { get; init; }
    /// <summary>Chains with the next operation: the chain succeeds or fails as a whole.</summary>
    public bool Linked { get; set; }
    /// <summary>Set by the pipeline before enqueueing when the op cannot even be attempted (unknown account...).</summary>
    public OpResult? Rejected { get; init; }
}

internal enum OpStatus
{
    Created,
    Exists,
    Failed,
}

/// <summary>The outcome of one operation. <see cref="Field"/> names the differing field of an id conflict.</summary>
internal sealed record OpResult(OpStatus Status, string? Code = null, string? Detail = null, TransferRecord? Transfer = null, string? Field = null)
{
    public static OpResult Fail(string code, string? detail = null, string? field = null) => new(OpStatus.Failed, code, detail, null, field);

    public bool Succeeded => Status != OpStatus.Failed;
}
