using System.Security.Cryptography;
using System.Text;

namespace Neraca.Tenancy;

/// <summary>API keys look like <c>nrc_</c> + 40 base62 characters. Only their SHA-256 is stored.</summary>
public static class ApiKey
{
    public const string Prefix = "nrc_";
    const int RandomLength = 40;
    const int LengthMax = 200;

    public static string Generate() => SecretToken.New(Prefix, RandomLength);

    /// <summary>Whether the text has the shape of a key; says nothing about whether it exists.</summary>
    public static bool IsWellFormed(string? key) =>
        key is { Length: > 12 and <= LengthMax } && key.StartsWith(Prefix, StringComparison.Ordinal)
        && key.AsSpan(Prefix.Length).IndexOfAnyExcept(SecretToken.Alphabet) < 0;

    public static byte[] Hash(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));

    /// <summary>The first characters, enough for an operator to recognise a key in a list.</summary>
    public static string DisplayPrefix(string key) => key[..Math.Min(key.Length, Prefix.Length + 6)];
}

/// <summary>Secrets shown once (API keys, refresh tokens, webhook secrets): a type prefix and base62 characters from
/// the OS's cryptographic random source.</summary>
public static class SecretToken
{
    public const string Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    public static string New(string prefix, int randomLength) => prefix + RandomNumberGenerator.GetString(Alphabet, randomLength);
}

/// <summary>Closed set of permissions an API key can hold.</summary>
public static class Scopes
{
    public const string LedgerRead = "ledger:read";
    public const string LedgerWrite = "ledger:write";
    public const string EventsRead = "events:read";
    public const string WebhooksWrite = "webhooks:write";

    /// <summary>Operators: verify audit hash chains on demand (<c>GET /v1/ledgers/{id}/audit</c>). Server keys only;
    /// end-user tokens never get it.</summary>
    public const string AuditRead = "audit:read";
    public const string Admin = "admin";

    // The capabilities built on the ledger. End users hold the product scopes too: each product shows a subject only
    // what it owns (its people are mapped to subjects), as the ledger does.
    public const string PayoutsRead = "payouts:read";
    public const string PayoutsWrite = "payouts:write";
    public const string EwaRead = "ewa:read";
    public const string EwaWrite = "ewa:write";
    public const string SplitRead = "split:read";
    public const string SplitWrite = "split:write";
    public const string BankingRead = "banking:read";
    public const string BankingWrite = "banking:write";
    public const string SettlementRead = "settlement:read";
    public const string SettlementWrite = "settlement:write";

    public static readonly IReadOnlyList<string> All = [LedgerRead, LedgerWrite, EventsRead, WebhooksWrite, AuditRead, Admin,
        PayoutsRead, PayoutsWrite, EwaRead, EwaWrite, SplitRead, SplitWrite, BankingRead, BankingWrite, SettlementRead, SettlementWrite];

    /// <summary>What an end-user token may carry: the ledger, which filters by owner. Never <see cref="Admin"/> or
    /// <see cref="AuditRead"/>, and not <see cref="EventsRead"/> or <see cref="WebhooksWrite"/>: the event feed and webhooks
    /// carry every event of the tenant, not only the subject's. Payouts and settlement are server work (a product asks for
    /// an end user's payout), so their scopes are not here either.</summary>
    public static readonly IReadOnlyList<string> EndUser = [LedgerRead, LedgerWrite, EwaRead, EwaWrite, SplitRead, SplitWrite, BankingRead, BankingWrite];
}
