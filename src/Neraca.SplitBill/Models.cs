using System.Text.Json;
using Neraca.Hosting;

namespace Neraca.SplitBill;

// The HTTP contract of /v1/split (snake_case JSON). Request fields are nullable: the handlers validate them and name
// every missing or wrong field, instead of the serializer failing on the first.

public sealed record MemberInput(string? Id = null, string? Name = null, string? Account = null, string? Subject = null);

public sealed record CreateGroupRequest(string? Id = null, string? Name = null, string? Currency = null, bool? SimplifyDebts = null, MemberInput[]? Members = null);

public sealed record UpdateGroupRequest(string? Name = null, bool? SimplifyDebts = null);

/// <summary><c>active: false</c> deactivates (kept in balances, not in new expenses); <c>true</c> reactivates.</summary>
public sealed record UpdateMemberRequest(string? Name = null, string? Account = null, string? Subject = null, bool? Active = null);

public sealed record JoinGroupRequest(string? InviteCode = null, string? Name = null);

public sealed record MemberResponse(string Id, string Name, string? Account, string? Subject, string Status);

public sealed record GroupResponse(string Id, string Name, string Currency, bool SimplifyDebts, string InviteCode, IReadOnlyList<MemberResponse> Members,
    DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

public sealed record ShareInput(string? Member = null, long? Amount = null, long? Bps = null, long? Weight = null);

public sealed record ItemInput(string? Description = null, long? Amount = null, SplitInput? Split = null);

/// <summary>One of <c>equal</c> (<c>members</c>, default all active), <c>exact</c>, <c>percent</c>, <c>shares</c>
/// (<c>shares</c>), <c>itemized</c> (<c>items</c>, <c>tax</c>, <c>tip</c>).</summary>
public sealed record SplitInput(string? Mode = null, string[]? Members = null, ShareInput[]? Shares = null, ItemInput[]? Items = null,
    long? Tax = null, long? Tip = null);

public sealed record PayerInput(string? Member = null, long? Amount = null);

public sealed record ExpenseInput(string? Id = null, string? Description = null, long? Amount = null, string? Currency = null, string? ExchangeRate = null,
    DateOnly? Date = null, PayerInput[]? PaidBy = null, SplitInput? Split = null);

public sealed record MemberAmount(string Member, long Amount);

public sealed record ReceiptView(string Status, string? Reason, string? ContentType, int? Width, int? Height);

public sealed record ExpenseResponse(string Id, string GroupId, string Description, long Amount, string Currency, string? ExchangeRate, long GroupAmount,
    string GroupCurrency, DateOnly Date, IReadOnlyList<MemberAmount> PaidBy, IReadOnlyList<MemberAmount> Paid, IReadOnlyList<MemberAmount> Shares,
    SplitInput Split, string? RecurringId, ReceiptView? Receipt, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt, DateTimeOffset? DeletedAt);

public sealed record MemberBalance(string Member, long Paid, long Owed, long Sent, long Received, long Net);

public sealed record BalancesResponse(string GroupId, string Currency, IReadOnlyList<MemberBalance> Balances);

public sealed record SuggestedTransfer(string From, string To, long Amount, IReadOnlyList<string> Expenses, string Explanation);

public sealed record SettleUpResponse(string GroupId, string Currency, bool Simplified, IReadOnlyList<SuggestedTransfer> Transfers);

public sealed record CreateSettlementRequest(string? Id = null, string? From = null, string? To = null, long? Amount = null, string? Method = null);

public sealed record SettlementResponse(string Id, string GroupId, string From, string To, long Amount, string Method, string Status, string? TransferId,
    string? FailureCode, string? FailureDetail, DateTimeOffset CreatedAt, DateTimeOffset? CompletedAt);

public sealed record ActivityResponse(string Id, string Target, string TargetId, string Action, string Actor, DateTimeOffset At, JsonElement? Before, JsonElement? After);

public sealed record CreateRecurringRequest(string? Id = null, string? Frequency = null, DateOnly? StartDate = null, DateOnly? EndDate = null, ExpenseInput? Expense = null);

public sealed record RecurringResponse(string Id, string GroupId, string Frequency, DateOnly StartDate, DateOnly? EndDate, DateOnly? NextDate, bool Active,
    ExpenseInput Expense, DateTimeOffset CreatedAt);

public sealed record ImportLineError(int Line, string Message);

public sealed record ImportResponse(int Expenses, int Settlements, int Skipped, IReadOnlyList<string> MembersCreated, IReadOnlyList<ImportLineError> Errors);

/// <summary>A failure as problem+json: status, stable code, detail, and per-field errors or extra fields.</summary>
public sealed record SplitError(int Status, string Code, string? Detail, IDictionary<string, string[]>? Errors = null, IDictionary<string, object?>? Extra = null)
{
    public static SplitError Validation(IDictionary<string, string[]> errors) => new(400, "validation_failed", "One or more fields are invalid.", errors);
    public static SplitError Validation(string field, string message) => Validation(new Dictionary<string, string[]> { [field] = [message] });
    public static SplitError NotFound(string code, string detail) => new(404, code, detail);
    public static SplitError Unprocessable(string code, string detail, IDictionary<string, object?>? extra = null) => new(422, code, detail, null, extra);

    public IResult ToResult()
    {
        if (Code == "validation_failed" && Errors is not null) return Problems.Validation(Errors);
        var extra = new Dictionary<string, object?>(Extra ?? new Dictionary<string, object?>());
        if (Errors is not null) extra["errors"] = Errors;
        return Problems.Of(Status, Code, char.ToUpperInvariant(Code[0]) + Code[1..].Replace('_', ' '), Detail, extra);
    }
}

/// <summary>A value (created, replayed or plain) or an error.</summary>
public sealed record SplitResult<T>(T? Value, SplitError? Error, bool Created = false, bool Replayed = false)
{
    public static implicit operator SplitResult<T>(SplitError error) => new(default, error);
    public static SplitResult<T> Ok(T value) => new(value, null);
    public static SplitResult<T> New(T value) => new(value, null, Created: true);
    public static SplitResult<T> Again(T value) => new(value, null, Replayed: true);
}

/// <summary>Who is calling: the tenant, the end user's subject (null for a server key), and the name the activity log
/// records (<c>key:{id}</c> or <c>user:{subject}</c>).</summary>
public sealed record SplitCaller(string TenantId, string? Subject, string Actor)
{
    public bool IsEndUser => Subject is not null;
}

/// <summary>Field errors collected while validating, keyed by JSON path.</summary>
public sealed class FieldErrors
{
    readonly Dictionary<string, List<string>> _errors = new(StringComparer.Ordinal);

    public bool Any => _errors.Count > 0;

    public void Add(string field, string message)
    {
        if (!_errors.TryGetValue(field, out var list)) _errors[field] = list = [];
        list.Add(message);
    }

    public SplitError ToError() => SplitError.Validation(_errors.ToDictionary(x => x.Key, x => x.Value.ToArray()));
}
