using System.Text.Json.Nodes;

namespace Neraca.Ledger;

/// <summary>Which side of an account grows its balance: credit for wallets and other liabilities, debit for assets.</summary>
public enum NormalBalance
{
    Debit = 1,
    Credit = 2,
}

/// <summary>Balance constraints. Values are persisted: never renumber.</summary>
[Flags]
public enum AccountFlags
{
    None = 0,
    DebitsMustNotExceedCredits = 1,
    CreditsMustNotExceedDebits = 2,
}

/// <summary>Lifecycle of a transfer as the API shows it.</summary>
public enum TransferStatus
{
    Posted,
    Pending,
    Voided,
    Expired,
}

/// <summary>How a pending transfer ended. Values are persisted: never renumber.</summary>
public enum ResolutionKind
{
    Posted = 1,
    Voided = 2,
    Expired = 3,
}

/// <summary>Direction of an entry on an account. Values are persisted: never renumber.</summary>
public enum EntryDirection
{
    Debit = 1,
    Credit = 2,
}

public sealed record LedgerRecord(string Id, string Code, string Asset, int Scale, string? Name, string? Metadata, long CreatedAtUs);

/// <summary>An account row: definition plus balances (minor units).</summary>
public sealed class AccountState
{
    public required string Id { get; init; }
    public required string LedgerId { get; init; }
    public NormalBalance NormalBalance { get; init; }
    public int Code { get; init; }
    public string? Name { get; init; }
    public AccountFlags Flags { get; init; }
    public long OverdraftLimit { get; init; }
    public string? Metadata { get; init; }
    public long CreatedAtUs { get; init; }
    public long DebitsPosted { get; set; }
    public long CreditsPosted { get; set; }
    public long DebitsPending { get; set; }
    public long CreditsPending { get; set; }
    public long EntryCount { get; set; }

    public AccountState Clone() => (AccountState)MemberwiseClone();
}

/// <summary>A stored transfer (the journal row) plus how it ended, if it was pending.</summary>
public sealed record TransferRecord
{
    public required string Id { get; init; }
    public required string LedgerId { get; init; }
    public long Seq { get; init; }
    public required string DebitAccountId { get; init; }
    public required string CreditAccountId { get; init; }
    public long Amount { get; init; }
    public bool Pending { get; init; }
    public long? TimeoutAtUs { get; init; }
    public int Code { get; init; }
    public string? Description { get; init; }
    public string? Metadata { get; init; }
    public string? Reverses { get; init; }
    public long EffectiveAtUs { get; init; }
    public long CreatedAtUs { get; init; }
    public ResolutionKind? Resolution { get; init; }
    public long ResolvedAmount { get; init; }
    public long? ResolvedAtUs { get; init; }

    public TransferStatus Status => !Pending ? TransferStatus.Posted : Resolution switch
    {
        null => TransferStatus.Pending,
        ResolutionKind.Posted => TransferStatus.Posted,
        ResolutionKind.Voided => TransferStatus.Voided,
        _ => TransferStatus.Expired,
    };

    /// <summary>What actually moved on the posted balances.</summary>
    public long PostedAmount => !Pending ? Amount : Resolution == ResolutionKind.Posted ? ResolvedAmount : 0;
}

// ---- HTTP contract (snake_case JSON) ----

public sealed record CreateLedgerRequest(string? Code, string? Asset, int? Scale, string? Name, JsonObject? Metadata);

public sealed record LedgerResponse(string Id, string Code, string Asset, int Scale, string? Name, JsonNode? Metadata, DateTimeOffset CreatedAt);

public sealed record CreateAccountRequest(
    string? Id, string? Ledger, string? NormalBalance, int? Code, string? Name, string[]? Flags, long? OverdraftLimit, JsonObject? Metadata);

public sealed record BalanceResponse(long DebitsPosted, long CreditsPosted, long DebitsPending, long CreditsPending, long Posted, long Available);

public sealed record AccountResponse(
    string Id, string Ledger, string NormalBalance, int Code, string? Name, string[] Flags, long OverdraftLimit,
    JsonNode? Metadata, BalanceResponse Balance, DateTimeOffset CreatedAt);

public sealed record CreateTransferRequest(
    string? Id, string? DebitAccount, string? CreditAccount, long? Amount, int? Code, string? Description, JsonObject? Metadata,
    bool? Pending, long? TimeoutSeconds, DateTimeOffset? EffectiveAt, bool? Linked);

public sealed record BatchRequest(CreateTransferRequest[]? Transfers, bool? Atomic);

public sealed record PostPendingRequest(long? Amount);

public sealed record ReverseRequest(string? Id, long? Amount, string? Description, JsonObject? Metadata);

public sealed record TransferResponse(
    string Id, string Ledger, string DebitAccount, string CreditAccount, long Amount, string Status, long PostedAmount,
    int Code, string? Description, JsonNode? Metadata, bool Pending, DateTimeOffset? TimeoutAt, string? Reverses,
    DateTimeOffset CreatedAt, DateTimeOffset EffectiveAt);

public sealed record BatchItemResult(int Index, string Status, string? Code, string? Detail, TransferResponse? Transfer);

public sealed record BatchResponse(IReadOnlyList<BatchItemResult> Results);

public sealed record EntryResponse(string TransferId, string Direction, long Amount, long BalanceAfter, DateTimeOffset PostedAt, DateTimeOffset EffectiveAt);

public sealed record PointBalanceResponse(string Account, DateTimeOffset At, string Basis, long Balance);

public sealed record Page<T>(IReadOnlyList<T> Data, string? NextCursor);

public sealed record AuditResponse(bool Verified, long Links, string Head, long? FirstBadLink, string? Problem);
