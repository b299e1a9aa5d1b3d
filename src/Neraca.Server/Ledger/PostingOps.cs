namespace Neraca.Ledger;

public enum OpKind
{
    Create,
    Post,
    Void,
    Expire,
}

/// <summary>One operation submitted to the posting pipeline. Account ids are known before enqueueing (a transfer's
/// accounts never change), so a batch can read and lock every account it touches in one statement.</summary>
public sealed class PostingOp
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

public enum OpStatus
{
    Created,
    Exists,
    Failed,
}

/// <summary>The outcome of one operation. <see cref="Field"/> names the differing field of an id conflict.</summary>
public sealed record OpResult(OpStatus Status, string? Code = null, string? Detail = null, TransferRecord? Transfer = null, string? Field = null)
{
    public static OpResult Fail(string code, string? detail = null, string? field = null) => new(OpStatus.Failed, code, detail, null, field);

    public bool Succeeded => Status != OpStatus.Failed;
}

/// <summary>Stable result codes of the ledger (part of the API contract).</summary>
public static class LedgerCodes
{
    public const string AccountNotFound = "account_not_found";
    public const string AccountsMustBeDifferent = "accounts_must_be_different";
    public const string LedgerMismatch = "ledger_mismatch";
    public const string InsufficientFunds = "insufficient_funds";
    public const string ExceedsCreditLimit = "exceeds_credit_limit";
    public const string Overflow = "overflow";
    public const string PendingTransferNotFound = "pending_transfer_not_found";
    public const string PendingTransferNotPending = "pending_transfer_not_pending";
    public const string PendingTransferExpired = "pending_transfer_expired";
    public const string AmountExceedsPending = "amount_exceeds_pending";
    public const string LinkedEventFailed = "linked_event_failed";
    public const string LinkedChainOpen = "linked_chain_open";
    public const string TransferExistsWithDifferentFields = "transfer_exists_with_different_fields";
    public const string TransferNotFound = "transfer_not_found";
    public const string ReversalExceedsOriginal = "reversal_exceeds_original";
    public const string ReversalOfUnpostedTransfer = "reversal_of_unposted_transfer";
}
