using System.ComponentModel.DataAnnotations;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Options;
using ZiggyCreatures.Caching.Fusion;

namespace Neraca.Caching;

/// <summary>Cache settings (section <c>Cache</c>; <c>NERACA_CACHE__ENABLED=false</c> turns caching off).</summary>
public sealed class CacheOptions
{
    /// <summary>Cache reads at all. Default true; false sends every read to the database (benchmark baseline).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Most entries the in-process L1 holds. Default 100,000.</summary>
    [Range(100, 10_000_000)]
    public int L1EntriesMax { get; set; } = 100_000;

    /// <summary>Life of versioned entries (balances, first pages of history, API keys) in L1 and L2, in seconds.
    /// Default 60. Correctness does not depend on it: a write retires them at once (see <see cref="CacheVersions"/>);
    /// it bounds the memory that retired entries hold until they expire.</summary>
    [Range(1, 86_400)]
    public int VersionedDurationSeconds { get; set; } = 60;

    /// <summary>After a Redis error, how long the cache skips L2 and the backplane before trying again, in milliseconds.
    /// Default 2000.</summary>
    [Range(0, 600_000)]
    public int RedisCircuitBreakerMs { get; set; } = 2000;
}

/// <summary>The cache capabilities use: FusionCache (L1 in process, L2 in Redis, Redis backplane) plus version tokens
/// for read-your-writes. Every key and scope comes from <see cref="CacheScopes"/>. Records <c>neraca.cache.requests</c> (tags <c>result</c> = hit|miss, <c>entry</c>).</summary>
public sealed class NeracaCache
{
    readonly IFusionCache _cache;
    readonly CacheVersions _versions;
    readonly bool _enabled;
    readonly FusionCacheEntryOptions _versioned;
    readonly Counter<long> _requests;

    public NeracaCache(IFusionCache cache, CacheVersions versions, IOptions<CacheOptions> options, IOptions<RedisOptions> redis, IMeterFactory meters)
    {
        _cache = cache;
        _versions = versions;
        var o = options.Value;
        _enabled = o.Enabled;
        var redisTimeout = TimeSpan.FromMilliseconds(redis.Value.OperationTimeoutMs);
        _versioned = new FusionCacheEntryOptions(TimeSpan.FromSeconds(o.VersionedDurationSeconds))
        {
            Size = 1,
            IsFailSafeEnabled = false,
            // A versioned key is never overwritten with other data, so other replicas have nothing to evict.
            SkipBackplaneNotifications = true,
            AllowBackgroundDistributedCacheOperations = true,
            DistributedCacheSoftTimeout = redisTimeout,
            DistributedCacheHardTimeout = redisTimeout,
        };
        _requests = meters.Create("Neraca").CreateCounter<long>("neraca.cache.requests", "{request}",
            "Cache lookups by result (hit or miss); the hit ratio is hit / (hit + miss).");
    }

    /// <summary>A value that a write may change and whose readers must see that write at once (balances, history pages,
    /// API keys). <paramref name="scope"/> names what a write retires (e.g. <see cref="CacheScopes.Account"/>); <paramref name="key"/>
    /// names this entry within it (e.g. <see cref="CacheScopes.History"/>). A null result ("not found") is trusted from
    /// the cache only with <paramref name="trustNull"/>: things that can be created later (accounts) must not stay
    /// missing; things that never come into existence under the same key (a random API key) may.</summary>
    public async ValueTask<T?> GetOrLoadAsync<T>(string entry, string scope, string key, Func<CancellationToken, Task<T?>> load, CancellationToken ct,
        bool trustNull = false)
    {
        if (!_enabled) return await load(ct);
        var version = await _versions.ReadAsync(scope);
        if (version is null)
        {
            Record(entry, hit: false);
            return await load(ct);
        }
        var loaded = false;
        var versionedKey = key + "@" + version;
        var value = await _cache.GetOrSetAsync<T?>(versionedKey, async (_, token) =>
        {
            loaded = true;
            return await load(token);
        }, _versioned, ct);
        if (value is null && !loaded && !trustNull)
        {
            value = await load(ct);
            loaded = true;
            if (value is not null) await _cache.SetAsync(versionedKey, value, _versioned, ct);
        }
        Record(entry, hit: !loaded);
        return value;
    }

    /// <summary>Retires the entries of <paramref name="scopes"/> on every replica. Await it after the commit and before
    /// acknowledging the write.</summary>
    public ValueTask InvalidateAsync(IEnumerable<string> scopes) => _enabled ? _versions.BumpAsync(scopes) : ValueTask.CompletedTask;

    void Record(string entry, bool hit) =>
        _requests.Add(1, new KeyValuePair<string, object?>("result", hit ? "hit" : "miss"), new KeyValuePair<string, object?>("entry", entry));
}
