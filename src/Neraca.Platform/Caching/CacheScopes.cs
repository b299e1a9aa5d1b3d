namespace Neraca.Caching;

/// <summary>Names of what a write retires in the cache (see <see cref="CacheVersions"/>). One place, so writers and
/// readers cannot disagree.</summary>
public static class CacheScopes
{
    /// <summary>An account's balance, metadata and first history pages.</summary>
    public static string Account(string tenantId, string accountId) => "acct:" + tenantId + ":" + accountId;
}
