using System.Globalization;

namespace Neraca.Caching;

/// <summary>Names of cache entries and of what a write retires in the cache (see <see cref="CacheVersions"/>). One
/// place, so writers and readers cannot disagree, and every name is a <see cref="CompositeKey"/> so that ids containing
/// <c>:</c> cannot make two tenants' entries share a key.</summary>
public static class CacheScopes
{
    /// <summary>An account's balance, metadata and first history pages (the scope, and the key of the account entry).</summary>
    public static string Account(string tenantId, string accountId) => CompositeKey.Of("acct", tenantId, accountId);

    /// <summary>The first page of an account's history with <paramref name="limit"/> entries (retired with <see cref="Account"/>).</summary>
    public static string History(string tenantId, string accountId, int limit) =>
        CompositeKey.Of("hist", tenantId, accountId, limit.ToString(CultureInfo.InvariantCulture));

    /// <summary>An end-user session's revocation state (the scope and the key).</summary>
    public static string Session(string tenantId, string sessionId) => CompositeKey.Of("ses", tenantId, sessionId);

    /// <summary>The lookup of the API key with this SHA-256 (hex) (the scope and the key).</summary>
    public static string ApiKey(string keyHashHex) => CompositeKey.Of("apikey", keyHashHex);
}
