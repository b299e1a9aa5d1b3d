namespace Neraca.Payouts;

/// <summary>Where the money goes: <c>bank</c> or <c>ewallet</c>, a provider code (<c>BCA</c>, <c>BNI</c>, <c>BRI</c>,
/// <c>MANDIRI</c>, <c>GOPAY</c>, <c>OVO</c>, <c>DANA</c>, ...) and the account number (stored encrypted, shown masked).</summary>
public sealed record PayoutDestination(string Type, string Code, string AccountNumber, string? AccountName = null);

/// <summary>A payout asked for in process. <paramref name="Id"/> is the idempotency anchor (derive it from your own key,
/// e.g. <c>ewa:wd_123</c>): the same id and body return the first payout; a different body is a conflict.
/// <paramref name="NotifyJobType"/>, when set, is a job type enqueued (durably, in the transaction that ends the payout)
/// with payload <c>{"payout_id": "...", "status": "succeeded"|"failed"}</c> when the payout succeeds or fails, so the
/// product that asked can finish its own saga.</summary>
public sealed record PayoutRequest(string Id, string SourceAccount, long Amount, PayoutDestination Destination, string Reference,
    string? Description = null, string? NotifyJobType = null);

/// <summary>The destination as responses show it: the account number masked.</summary>
public sealed record PayoutDestinationView(string Type, string Code, string AccountNumberMasked, string? AccountName);

/// <summary>A payout as the API shows it.</summary>
public sealed record PayoutView(string Id, string Status, string SourceAccount, long Amount, PayoutDestinationView Destination,
    string Reference, string? Description, string? FailureCode, string? FailureReason, string? ProviderReference,
    DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

/// <summary>States of a payout (stored; part of the API).</summary>
public static class PayoutStatuses
{
    public const string Requested = "requested";
    public const string Reserved = "reserved";
    public const string Submitted = "submitted";
    /// <summary>The provider's answer is not known (a timeout): resolved by its status query, never by sending again.</summary>
    public const string Unknown = "unknown";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
}

/// <summary>How a payout request ended: the payout (created now, or the earlier one with the same id), or an error
/// with a stable code (<c>validation_failed</c>, <c>account_not_found</c>, <c>insufficient_funds</c>,
/// <c>payout_conflict</c>, ...). <paramref name="Errors"/>: for <c>validation_failed</c>, every field's messages keyed by
/// JSON path (<c>destination.account_number</c>).</summary>
public sealed record PayoutResult(PayoutView? Payout, bool Created, string? ErrorCode = null, string? ErrorDetail = null,
    IReadOnlyDictionary<string, string[]>? Errors = null)
{
    public bool Succeeded => Payout is not null;
}
