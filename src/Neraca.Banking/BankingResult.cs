using Neraca.Hosting;
using Neraca.Ledger;

namespace Neraca.Banking;

public enum BankOutcome
{
    Ok,
    Created,
    Replayed,
    Failed,
}

/// <summary>Why a banking call failed: the HTTP status, a stable <see cref="Code"/> (<see cref="BankingCodes"/> or a
/// ledger code), a human detail, extra members of the problem (<c>limit</c>, <c>remaining</c>...) and for
/// <c>validation_failed</c> the messages per field.</summary>
public sealed record BankError(int Status, string Code, string Detail, IReadOnlyDictionary<string, object?>? Extra = null,
    IReadOnlyDictionary<string, string[]>? Errors = null)
{
    public static BankError Invalid(string field, string message) =>
        new(400, LedgerCodes.ValidationFailed, "One or more fields are invalid.", Errors: new Dictionary<string, string[]> { [field] = [message] });

    public static BankError Invalid(IReadOnlyDictionary<string, string[]> errors) => new(400, LedgerCodes.ValidationFailed, "One or more fields are invalid.", Errors: errors);

    public static BankError NotFound(string code, string detail) => new(404, code, detail);

    public static BankError Unprocessable(string code, string detail, IReadOnlyDictionary<string, object?>? extra = null) => new(422, code, detail, extra);

    public static BankError Conflict(string code, string detail) => new(409, code, detail);

    public static BankError ServerOnly(string what) => new(403, LedgerCodes.ServerKeyRequired, $"Only a server API key can {what}.");

    /// <summary>A ledger failure as the banking API answers it (same code and status as the ledger's HTTP API).</summary>
    public static BankError FromLedger(LedgerError e) => new(e.Kind switch
    {
        LedgerErrorKind.Invalid => 400,
        LedgerErrorKind.NotFound => 404,
        LedgerErrorKind.Conflict => 409,
        LedgerErrorKind.Forbidden => 403,
        _ => 422,
    }, e.Code, e.Detail ?? e.Code, e.Field is null ? null : new Dictionary<string, object?> { ["field"] = e.Field }, e.Errors);
}

/// <summary>A value or an error, never both.</summary>
public sealed record BankResult<T>(BankOutcome Outcome, T? Value, BankError? Error)
{
    public bool Succeeded => Outcome != BankOutcome.Failed;

    public static BankResult<T> Ok(T value) => new(BankOutcome.Ok, value, null);
    public static BankResult<T> Created(T value) => new(BankOutcome.Created, value, null);
    public static BankResult<T> Replayed(T value) => new(BankOutcome.Replayed, value, null);

    public static implicit operator BankResult<T>(BankError error) => new(BankOutcome.Failed, default, error);
}

/// <summary>Who acts: the tenant, the end user (null for a server key) and how the audit log names them.</summary>
public sealed record BankCaller(string TenantId, string? Subject, string Actor)
{
    public bool IsEndUser => Subject is not null;

    /// <summary>Background work (jobs) of the tenant.</summary>
    public static BankCaller System(string tenantId) => new(tenantId, null, "system");
}

/// <summary>Stable error codes of the banking API (docs/errors.md). Ledger codes (<c>insufficient_funds</c>,
/// <c>validation_failed</c>, <c>server_key_required</c>...) pass through unchanged.</summary>
public static class BankingCodes
{
    public const string CustomerNotFound = "customer_not_found";
    public const string CustomerExists = "customer_exists_with_different_fields";
    public const string SubjectTaken = "subject_taken";
    public const string CustomerNotActive = "customer_not_active";
    public const string AccountNotFound = "account_not_found";
    public const string AccountExists = "account_exists_with_different_fields";
    public const string AccountBlocked = "account_blocked";
    public const string AccountFrozen = "account_frozen";
    public const string AccountClosed = "account_closed";
    public const string AccountNotEmpty = "account_not_empty";
    public const string UnsupportedCurrency = "unsupported_currency";
    public const string LimitExceeded = "limit_exceeded";
    public const string PaymentNotFound = "payment_not_found";
    public const string PaymentExists = "payment_exists_with_different_fields";
    public const string HoldNotFound = "hold_not_found";
    public const string HoldNotActive = "hold_not_active";
    public const string HoldExists = "hold_exists_with_different_fields";
    public const string BlockNotFound = "block_not_found";
    public const string StatementNotFound = "statement_not_found";
    public const string StatementNotReady = "statement_not_ready";
    public const string StatementPeriodOpen = "statement_period_open";
    public const string LedgerCurrencyMismatch = "ledger_currency_mismatch";
    public const string WithdrawalNotFound = "withdrawal_not_found";
    public const string WithdrawalExists = "withdrawal_exists_with_different_fields";
}

/// <summary>Ids the API fills in when the client names none, and the ledger ids derived from banking ids.</summary>
public static class BankIds
{
    /// <summary>Client ids are shorter than ledger ids (64) so that <c>bank:pay:</c> + id still fits.</summary>
    public const int LengthMax = 48;

    public static bool IsValid(string? id) => id is { Length: > 0 and <= LengthMax } && Neraca.Storage.Ids.IsValid(id);

    public static string PaymentTransfer(string paymentId) => "bank:pay:" + paymentId;

    public static string HoldTransfer(string holdId) => "bank:hold:" + holdId;

    public static string Ledger(string currency) => "bank-" + currency.ToLowerInvariant();

    /// <summary>Per ledger: where captured holds go (what the tenant owes card networks or merchants).</summary>
    public static string HoldsAccount(string currency) => "bank:holds:" + currency.ToLowerInvariant();

    public static string Json(IEnumerable<KeyValuePair<string, object?>> fields) =>
        System.Text.Json.JsonSerializer.Serialize(fields.ToDictionary(kv => kv.Key, kv => kv.Value));

    internal static string CursorKey(long a, string b) => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{a}|{b}");

    internal static (long, string) ParseCursorKey(string? key, string parameter = "after")
    {
        var bar = key?.IndexOf('|', StringComparison.Ordinal) ?? -1;
        if (key is null || bar < 0 || !long.TryParse(key.AsSpan(0, bar), System.Globalization.NumberStyles.AllowLeadingSign,
                System.Globalization.CultureInfo.InvariantCulture, out var n))
            throw new InvalidCursorException(parameter);
        return (n, key[(bar + 1)..]);
    }
}
