using System.Security.Cryptography;
using StackExchange.Redis;

namespace Neraca.Caching;

/// <summary>Version tokens that make cached reads safe across replicas without waiting for the backplane.
/// <para>
/// Entries that must never be served stale after a write was acknowledged (balances, first pages of history, API keys)
/// are stored under <c>key@version</c>. A writer replaces the version token <em>after</em> its commit and
/// <em>before</em> it acknowledges; a reader fetches the current token first and only ever looks up entries of that
/// token. Whatever a reader loads from the database after fetching token V is at least as new as every write
/// acknowledged before V was fetched, so an entry under V can be old only for reads that raced the write itself. A
/// reader that fetches the token after an acknowledgement gets the new token, misses, and reads the database. This
/// closes the classic race of a slow reader putting an old value back after the writer's eviction, which
/// eviction-based invalidation (and the backplane's asynchronous delivery) cannot close.
/// </para>
/// <para>
/// With Redis the tokens live in Redis (one round trip per read, <c>EVAL</c> of a tiny script) under a cluster-wide
/// epoch. When Redis is unreachable, <see cref="ReadAsync"/> returns null and callers read the database directly.
/// A write that could not replace its token replaces the epoch instead, which retires every versioned entry at once:
/// before it is acknowledged when Redis answers that, else as soon as Redis is back (replicas that could still reach
/// Redis meanwhile may serve what it should have retired: see docs/replicas.md). A restarted, empty Redis gets a fresh
/// random epoch by itself. Without Redis the tokens are per-process counters in a fixed array of stripes (bounded
/// memory; a collision only costs an extra miss).
/// </para>
/// </summary>
public sealed partial class CacheVersions : IDisposable
{
    const int StripeCount = 4096;

    /// <summary>How long a version token lives in Redis without writes; an expired token is simply replaced by a new one.</summary>
    static readonly TimeSpan TokenTtl = TimeSpan.FromHours(24);

    // KEYS[1] = epoch, KEYS[2] = version; ARGV[1] = a fresh random token, ARGV[2] = token TTL in seconds.
    // Missing keys (first use, expiry, a restarted Redis) get the fresh token, never a reused one.
    const string ReadScript = """
        local e = redis.call('GET', KEYS[1])
        if not e then redis.call('SET', KEYS[1], ARGV[1]); e = ARGV[1] end
        local v = redis.call('GET', KEYS[2])
        if not v then redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2]); v = ARGV[1] end
        return e .. '.' .. v
        """;

    readonly RedisConnection _redis;
    readonly long[] _stripes = new long[StripeCount];
    readonly RedisKey _epochKey;
    readonly ILogger<CacheVersions> _logger;
    int _bumpsLost;

    public CacheVersions(RedisConnection redis, ILogger<CacheVersions> logger)
    {
        _redis = redis;
        _logger = logger;
        _epochKey = redis.KeyPrefix + "v:epoch";
        redis.Restored += OnRedisRestored;
    }

    /// <summary>The current token of <paramref name="scope"/> (a <see cref="CacheScopes"/> name), or null when the shared
    /// tokens cannot be read right now (Redis down): then the caller must bypass the cache.</summary>
    public async ValueTask<string?> ReadAsync(string scope)
    {
        if (!_redis.IsConfigured) return Volatile.Read(ref _stripes[Stripe(scope)]).ToString(System.Globalization.CultureInfo.InvariantCulture);
        // Writes lost while Redis was down are not yet retired by a new epoch: do not trust any shared entry.
        if (Volatile.Read(ref _bumpsLost) != 0) return null;
        var db = _redis.DatabaseIfConnected;
        if (db is null) return null;
        try
        {
            var result = await db.ScriptEvaluateAsync(ReadScript, [_epochKey, VersionKey(scope)],
                [NewToken(), (long)TokenTtl.TotalSeconds]);
            return (string?)result;
        }
        catch (Exception e) when (RedisConnection.IsUnavailable(e))
        {
            return null;
        }
    }

    /// <summary>Retires every entry cached under the current tokens of <paramref name="scopes"/>. Call after the write
    /// committed and before it is acknowledged. Never throws (see the class remarks for what a failure does).</summary>
    public async ValueTask BumpAsync(IEnumerable<string> scopes)
    {
        if (!_redis.IsConfigured)
        {
            foreach (var scope in scopes) Interlocked.Increment(ref _stripes[Stripe(scope)]);
            return;
        }
        var db = _redis.DatabaseIfConnected;
        if (db is null)
        {
            RecordLostBump();
            return;
        }
        try
        {
            var token = NewToken();
            var batch = db.CreateBatch();
            var sets = scopes.Select(s => batch.StringSetAsync(VersionKey(s), token, TokenTtl)).ToList();
            batch.Execute();
            await Task.WhenAll(sets);
        }
        catch (Exception e)
        {
            // Deliberately everything: the caller has committed and must still acknowledge. Whatever went wrong, the
            // token may not have been replaced, so the shared cache is bypassed here until the epoch is retired.
            if (!RedisConnection.IsUnavailable(e)) LogBumpFailed(_logger, e);
            CountLostBump();
            // Other replicas may still reach Redis (a timeout, a reconnect racing this write) and would keep serving
            // what this write should have retired: retire the epoch before the write is acknowledged.
            await RetireEpochAsync();
        }
    }

    void RecordLostBump()
    {
        CountLostBump();
        // The connection may have come back since it was checked (its restore then found nothing to retire).
        if (_redis.IsConnected) OnRedisRestored();
    }

    void CountLostBump()
    {
        if (Interlocked.Increment(ref _bumpsLost) == 1) LogBumpLost(_logger);
    }

    void OnRedisRestored()
    {
        if (Volatile.Read(ref _bumpsLost) == 0) return;
        _ = RetireEpochAsync();
    }

    async Task RetireEpochAsync()
    {
        var db = _redis.DatabaseIfConnected;
        if (db is null) return;
        var lost = Volatile.Read(ref _bumpsLost);
        try
        {
            await db.StringSetAsync(_epochKey, NewToken());
        }
        catch (Exception e)
        {
            // Never throws (a write awaiting this has committed): the flag stays up and the next restore retries.
            if (!RedisConnection.IsUnavailable(e)) LogBumpFailed(_logger, e);
            return;
        }
        // Only writes counted before the new epoch are covered by it; one lost meanwhile keeps the flag up.
        if (Interlocked.CompareExchange(ref _bumpsLost, 0, lost) == lost) LogEpochRetired(_logger);
        else OnRedisRestored();
    }

    RedisKey VersionKey(string scope) => _redis.KeyPrefix + "v:" + scope;

    static int Stripe(string scope) => (int)((uint)StringComparer.Ordinal.GetHashCode(scope) % StripeCount);

    static string NewToken() => Convert.ToHexString(RandomNumberGenerator.GetBytes(8));

    public void Dispose() => _redis.Restored -= OnRedisRestored;

    [LoggerMessage(1, LogLevel.Warning, "A write could not retire its cached reads in Redis; shared cache entries are bypassed until Redis is back")]
    static partial void LogBumpLost(ILogger logger);

    [LoggerMessage(3, LogLevel.Error, "Replacing cache version tokens failed unexpectedly; shared cache entries are bypassed until the epoch is retired")]
    static partial void LogBumpFailed(ILogger logger, Exception exception);

    [LoggerMessage(2, LogLevel.Information, "Redis is back: retired every versioned cache entry written before the outage")]
    static partial void LogEpochRetired(ILogger logger);
}
