using System.Text.Json.Nodes;

namespace Neraca.Ledger;

// The ledger's contract: what the HTTP API accepts and returns (snake_case JSON) and what in-process callers pass to
// and get from ILedger. One shape for both, so the HTTP API stays a thin mapping.

public sealed record CreateLedgerRequest(string? Code = null, string? Asset = null, int? Scale = null, string? Name = null, JsonObject? Metadata = null);

public sealed record LedgerResponse(string Id, string Code, string Asset, int Scale, string? Name, JsonNode? Metadata, DateTimeOffset CreatedAt);

/// <summary>A new account. <c>Owner</c> is the subject (<c>sub</c>) of the end user who owns it: their tokens see it and
/// may debit it; null: no end user owns it (funding, fee, settlement accounts). Set by servers only; immutable.</summary>
public sealed record CreateAccountRequest(string? Id = null, string? Ledger = null, string? NormalBalance = null, int? Code = null, string? Name = null, string[]? Flags = null, long? OverdraftLimit = null, JsonObject? Metadata = null, string? Owner = null);

public sealed record BalanceResponse(long DebitsPosted, long CreditsPosted, long DebitsPending, long CreditsPending, long Posted, long Available);

public sealed record AccountResponse(
    string Id, string Ledger, string NormalBalance, int Code, string? Name, string[] Flags, long OverdraftLimit,
    JsonNode? Metadata, BalanceResponse Balance, DateTimeOffset CreatedAt, string? Owner = null);

public sealed record CreateTransferRequest(string? Id = null, string? DebitAccount = null, string? CreditAccount = null, long? Amount = null, int? Code = null, string? Description = null, JsonObject? Metadata = null, bool? Pending = null, long? TimeoutSeconds = null, DateTimeOffset? EffectiveAt = null, bool? Linked = null);

public sealed record BatchRequest(CreateTransferRequest[]? Transfers = null, bool? Atomic = null);

public sealed record PostPendingRequest(long? Amount = null);

public sealed record ReverseRequest(string? Id = null, long? Amount = null, string? Description = null, JsonObject? Metadata = null);

public sealed record TransferResponse(
    string Id, string Ledger, string DebitAccount, string CreditAccount, long Amount, string Status, long PostedAmount,
    int Code, string? Description, JsonNode? Metadata, bool Pending, DateTimeOffset? TimeoutAt, string? Reverses,
    DateTimeOffset CreatedAt, DateTimeOffset EffectiveAt);

public sealed record BatchItemResult(int Index, string Status, string? Code, string? Detail, TransferResponse? Transfer);

public sealed record BatchResponse(IReadOnlyList<BatchItemResult> Results);

public sealed record EntryResponse(string TransferId, string Direction, long Amount, long BalanceAfter, DateTimeOffset PostedAt, DateTimeOffset EffectiveAt);

public sealed record PointBalanceResponse(string Account, DateTimeOffset At, string Basis, long Balance);

/// <summary>One page of a list and the cursor of the next (null on the last page).</summary>
public sealed record Page<T>(IReadOnlyList<T> Data, string? NextCursor);

public sealed record AuditResponse(bool Verified, long Links, string Head, long? FirstBadLink, string? Problem);

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
    public const string LedgerNotFound = "ledger_not_found";
    public const string LedgerExists = "ledger_exists";
    public const string AccountExistsWithDifferentFields = "account_exists_with_different_fields";
    public const string ValidationFailed = "validation_failed";
    /// <summary>An end user asked for what only a server may do (create a ledger or an account, resolve a pending
    /// transfer or reverse a transfer in a direction that takes money from someone else).</summary>
    public const string ServerKeyRequired = "server_key_required";
}

// ---------------- set-based reads for settlement and reconciliation (issue #17) ----------------

/// <summary>Accounts and a business-time window [<c>From</c>, <c>To</c>) for <see cref="ILedger.GetAccountActivityAsync"/>.</summary>
public sealed record AccountActivityQuery(IReadOnlyList<string> Accounts, DateTimeOffset From, DateTimeOffset To)
{
    public const int AccountsMax = 1_000;
}

/// <summary>An account's posted movements in a window: totals in minor units and entry counts per side.</summary>
public sealed record AccountActivityResponse(string Account, long Debits, long Credits, long DebitCount, long CreditCount);

/// <summary>One account's transfers effective in [<c>From</c>, <c>To</c>) for <see cref="ILedger.ListAccountTransfersAsync"/>.</summary>
public sealed record AccountTransferQuery(string Account, DateTimeOffset From, DateTimeOffset To, int? Limit = null, string? After = null);

// ---- banking reads (issue #16) ----

/// <summary>The transfers whose entries on one account are wanted (<see cref="ILedger.ListEntriesOfTransfersAsync"/>).</summary>
public sealed record EntriesOfTransfersQuery(IReadOnlyList<string> TransferIds)
{
    /// <summary>Ids per call: a page of a product's list.</summary>
    public const int TransferIdsMax = 1_000;
}
