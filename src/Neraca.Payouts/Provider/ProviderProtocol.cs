using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Neraca.Payouts.Provider;

// The provider API Neraca speaks (docs/payouts.md, "Provider API"): the shape of Xendit/Flip-style disbursement APIs.
// The sandbox serves it; a real provider is plugged in by a small bridge that speaks it, or by changing ProviderClient.

/// <summary>Where the money goes, as sent to the provider (the account number in clear: only on this wire, over TLS).</summary>
public sealed record ProviderDestination(string Type, string Code, string AccountNumber, string? AccountName);

/// <summary><c>POST /v1/disbursements</c> with header <c>Idempotency-Key</c> (= <paramref name="ExternalId"/>): the same
/// key is the same disbursement, paid at most once however often it is sent.</summary>
public sealed record CreateDisbursement(string ExternalId, long Amount, string Currency, ProviderDestination Destination, string? Description);

/// <summary>A disbursement as the provider reports it. <c>status</c>: <c>pending</c>, <c>succeeded</c> or <c>failed</c>
/// (then <c>failure_code</c>: <c>INVALID_DESTINATION</c>, <c>INSUFFICIENT_BALANCE</c>, <c>REJECTED</c>, ...).</summary>
public sealed record Disbursement(string Id, string ExternalId, long Amount, string Currency, string Status, string? FailureCode,
    string? FailureMessage, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

/// <summary>An error answer: <c>{"error_code": "...", "message": "..."}</c>.</summary>
public sealed record ProviderError(string ErrorCode, string? Message);

/// <summary><c>POST /v1/account-inquiries</c>: does the account exist, and whose is it.</summary>
public sealed record AccountInquiry(string Type, string Code, string AccountNumber);

public sealed record AccountInquiryResult(bool Valid, string? AccountName, string? FailureCode);

/// <summary>The body of a callback: <c>event</c> = <c>disbursement.updated</c>, and the disbursement as it stands.</summary>
public sealed record ProviderCallback(string Id, string Event, Disbursement Disbursement);

public static class ProviderStatuses
{
    public const string Pending = "pending";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
}

public static class ProviderErrorCodes
{
    public const string InvalidDestination = "INVALID_DESTINATION";
    public const string InsufficientBalance = "INSUFFICIENT_BALANCE";
    public const string NotFound = "NOT_FOUND";
    public const string IdempotencyConflict = "IDEMPOTENCY_CONFLICT";
    public const string ValidationError = "VALIDATION_ERROR";
    public const string Unauthorized = "UNAUTHORIZED";
}

/// <summary>JSON of the provider API: snake_case; unknown fields of answers are ignored (providers add fields).</summary>
public static class ProviderJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        NumberHandling = JsonNumberHandling.Strict,
    };
}

/// <summary>Callback signatures: header <c>X-Callback-Signature: t=&lt;unix seconds&gt;,v1=&lt;hex HMAC-SHA256(secret,
/// t + "." + raw body)&gt;</c>, the scheme of Neraca's own webhooks. The timestamp bounds replays.</summary>
public static class CallbackSignature
{
    public const string Header = "X-Callback-Signature";

    public static string Sign(string secret, long unixSeconds, ReadOnlySpan<byte> body)
    {
        var t = unixSeconds.ToString(CultureInfo.InvariantCulture);
        return $"t={t},v1={Compute(secret, t, body)}";
    }

    /// <summary>True when <paramref name="header"/> is a signature of <paramref name="body"/> by <paramref name="secret"/>
    /// made within <paramref name="tolerance"/> of <paramref name="now"/>. Compared in constant time.</summary>
    public static bool Verify(string secret, string? header, ReadOnlySpan<byte> body, DateTimeOffset now, TimeSpan tolerance)
    {
        if (string.IsNullOrEmpty(header) || header.Length > 512) return false;
        string? t = null, v1 = null;
        foreach (var part in header.Split(','))
        {
            var kv = part.Trim().Split('=', 2);
            if (kv.Length != 2) return false;
            if (kv[0] == "t") t = kv[1];
            else if (kv[0] == "v1") v1 = kv[1];
        }
        if (t is null || v1 is null || !long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)) return false;
        if (Math.Abs(now.ToUnixTimeSeconds() - seconds) > tolerance.TotalSeconds) return false;
        var expected = Compute(secret, t, body);
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(v1));
    }

    static string Compute(string secret, string t, ReadOnlySpan<byte> body)
    {
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, Encoding.UTF8.GetBytes(secret));
        hmac.AppendData(Encoding.ASCII.GetBytes(t + "."));
        hmac.AppendData(body);
        return Convert.ToHexStringLower(hmac.GetHashAndReset());
    }
}
