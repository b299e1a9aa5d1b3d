namespace Neraca.Ledger;

/// <summary>Which side of an account grows its balance: credit for wallets and other liabilities, debit for assets.</summary>
internal enum NormalBalance
{
    Debit = 1,
    Credit = 2,
}

/// <summary>Balance constraints. Values are persisted: never renumber.</summary>
[Flags]
internal enum AccountFlags
{
    None = 0,
    DebitsMustNotExceedCredits = 1,
    CreditsMustNotExceedDebits = 2,
}

/// <summary>Lifecycle of a transfer as the API shows it.</summary>
internal enum TransferStatus
{
    Posted,
    Pending,
    Voided,
    Expired,
}

/// <summary>How a pending transfer ended. Values are persisted: never renumber.</summary>
internal enum ResolutionKind
{
    Posted = 1,
    Voided = 2,
    Expired = 3,
}

/// <summary>Direction of an entry on an account. Values are persisted: never renumber.</summary>
internal enum EntryDirection
{
    Debit = 1,
    Credit = 2,
}

internal sealed record LedgerRecord(string Id, string Code, string Asset, int Scale, string? Name, string? Metadata, long CreatedAtUs);

/// <summary>An account row: definition plus balances (minor units).</summary>
internal sealed class AccountState
{
    public required string Id { get; init; }
    public required string LedgerId { get; init; }
    public NormalBalance NormalBalance { get; init; }
    public int Code { get; init; }
    public string? Name { get; init; }
    public AccountFlags Flags { get; init; }
    public long OverdraftLimit { get; init; }
    public string? Metadata { get; init; }
    /// <summary>The end user's subject that owns the account, or null. Immutable. Read by <see cref="LedgerStore"/> only:
    /// the posting pipeline's reads leave it null (ownership is checked before an operation reaches the pipeline).</summary>
    public string? Owner { get; init; }
    public long CreatedAtUs { get; init; }
    public long DebitsPosted { get; set; }
    public long CreditsPosted { get; set; }
    public long DebitsPending { get; set; }
    public long CreditsPending { get; set; }
    public long EntryCount { get; set; }

    public AccountState Clone() => (AccountState)MemberwiseClone();
}

/// <summary>A stored transfer (the journal row) plus how it ended, if it was pending.</summary>
internal sealed record TransferRecord
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
