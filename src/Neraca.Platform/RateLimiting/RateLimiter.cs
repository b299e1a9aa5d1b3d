using System.Diagnostics.Metrics;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;
using Neraca.Caching;
using StackExchange.Redis;

namespace Neraca.RateLimiting;

/// <summary>A decision on one request.</summary>
public readonly record struct RateDecision(bool Allowed, int Remaining, int RetryAfterSeconds, int ResetSeconds, bool Shared);

/// <summary>Token buckets and write-concurrency leases. In Redis (one atomic script per request, Redis's own clock, so
/// replicas agree) when configured and reachable; otherwise in this process with each limit divided by
/// <see cref="RateLimitOptions.ReplicasWhenRedisDown"/>. A Redis error never fails a request: that request is decided
/// locally and the next one tries Redis again.</summary>
public sealed class DistributedRateLimiter : IDisposable
{
    /// <summary>A write lease expires after this long even if its replica died without releasing it.</summary>
    static readonly TimeSpan LeaseTtl = TimeSpan.FromSeconds(60);

    // KEYS[1] bucket; ARGV[1] capacity, ARGV[2] refill per ms. Returns {allowed, remaining, retry_ms, full_ms}.
    const string BucketScript = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local cap = tonumber(ARGV[1])
        local rate = tonumber(ARGV[2])
        local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
        local tokens = tonumber(b[1]) or cap
        local ts = tonumber(b[2]) or now
        tokens = math.min(cap, tokens + math.max(0, now - ts) * rate)
        local allowed = 0
        local retry = 0
        if tokens >= 1 then
          tokens = tokens - 1
          allowed = 1
        else
          retry = math.ceil((1 - tokens) / rate)
        end
        local full = math.ceil((cap - tokens) / rate)
        redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
        redis.call('PEXPIRE', KEYS[1], full + 1000)
        return {allowed, math.floor(tokens), retry, full}
        """;

    // KEYS[1] lease set; ARGV[1] limit, ARGV[2] lease id, ARGV[3] lease ttl ms.
    const string AcquireScript = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
        if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
          redis.call('ZADD', KEYS[1], now, ARGV[2])
          redis.call('PEXPIRE', KEYS[1], ARGV[3])
          return 1
        end
        return 0
        """;

    readonly RedisConnection _redis;
    readonly RateLimitOptions _options;
    readonly PartitionedRateLimiter<BucketKey> _localBuckets;
    readonly PartitionedRateLimiter<LeaseKey> _localLeases;
    readonly Counter<long> _decisions;

    public DistributedRateLimiter(RedisConnection redis, IOptions<RateLimitOptions> options, IMeterFactory meters)
    {
        _redis = redis;
        _options = options.Value;
        var divisor = _options.ReplicasWhenRedisDown;
        _localBuckets = PartitionedRateLimiter.Create<BucketKey, BucketKey>(key => RateLimitPartition.GetTokenBucketLimiter(key, k =>
        {
            var perMinute = Math.Max(1, k.Policy.PerMinute / divisor);
            // Refilled by the partitioned limiter's own 100 ms heartbeat (no timer per partition): per second when the
            // rate allows, else one token per 60/perMinute seconds.
            return new TokenBucketRateLimiterOptions
            {
                TokenLimit = Math.Max(1, k.Policy.Burst / divisor),
                TokensPerPeriod = perMinute >= 60 ? perMinute / 60 : 1,
                ReplenishmentPeriod = perMinute >= 60 ? TimeSpan.FromSeconds(1) : TimeSpan.FromMinutes(1) / perMinute,
                QueueLimit = 0,
                AutoReplenishment = false,
            };
        }));
        _localLeases = PartitionedRateLimiter.Create<LeaseKey, LeaseKey>(key => RateLimitPartition.GetConcurrencyLimiter(key,
            k => new ConcurrencyLimiterOptions { PermitLimit = Math.Max(1, k.Limit / divisor), QueueLimit = 0 }));
        _decisions = meters.Create("Neraca").CreateCounter<long>("neraca.rate_limit.decisions", "{request}",
            "Rate-limit decisions by result (allowed, rejected) and store (redis, local).");
    }

    /// <summary>Takes one token from the bucket of <paramref name="partition"/>.</summary>
    public async ValueTask<RateDecision> TakeAsync(string partition, BucketPolicy policy)
    {
        var db = _redis.DatabaseIfConnected;
        if (db is not null)
        {
            try
            {
                var r = (RedisResult[])(await db.ScriptEvaluateAsync(BucketScript, [_redis.KeyPrefix + "rl:" + partition],
                    [policy.Burst, policy.PerMillisecond.ToString("R", System.Globalization.CultureInfo.InvariantCulture)]))!;
                var decision = new RateDecision((int)r[0] == 1, (int)r[1], SecondsCeiling((long)r[2]), SecondsCeiling((long)r[3]), Shared: true);
                Record(decision);
                return decision;
            }
            catch (Exception e) when (RedisConnection.IsUnavailable(e))
            {
                // Decided locally below.
            }
        }
        using var lease = _localBuckets.AttemptAcquire(new BucketKey(partition, policy));
        var stats = _localBuckets.GetStatistics(new BucketKey(partition, policy));
        var remaining = (int)(stats?.CurrentAvailablePermits ?? 0);
        var perMinute = Math.Max(1, policy.PerMinute / _options.ReplicasWhenRedisDown);
        var local = new RateDecision(lease.IsAcquired, remaining, lease.IsAcquired ? 0 : Math.Max(1, (int)Math.Ceiling(60.0 / perMinute)),
            (int)Math.Ceiling((Math.Max(1, policy.Burst / _options.ReplicasWhenRedisDown) - remaining) * 60.0 / perMinute), Shared: false);
        Record(local);
        return local;
    }

    /// <summary>Acquires one of <paramref name="limit"/> concurrent write slots; null when all are taken. Dispose the
    /// result when the request ends.</summary>
    public async ValueTask<IAsyncDisposable?> AcquireWriteAsync(string partition, int limit)
    {
        var db = _redis.DatabaseIfConnected;
        if (db is not null)
        {
            var key = (RedisKey)(_redis.KeyPrefix + "wc:" + partition);
            var id = Guid.NewGuid().ToString("N");
            try
            {
                var ok = (int)await db.ScriptEvaluateAsync(AcquireScript, [key], [limit, id, (long)LeaseTtl.TotalMilliseconds]) == 1;
                return ok ? new RedisLease(db, key, id) : null;
            }
            catch (Exception e) when (RedisConnection.IsUnavailable(e))
            {
                // Decided locally below.
            }
        }
        var lease = _localLeases.AttemptAcquire(new LeaseKey(partition, limit));
        if (lease.IsAcquired) return new LocalLease(lease);
        lease.Dispose();
        return null;
    }

    void Record(RateDecision d) => _decisions.Add(1, new KeyValuePair<string, object?>("result", d.Allowed ? "allowed" : "rejected"),
        new KeyValuePair<string, object?>("store", d.Shared ? "redis" : "local"));

    static int SecondsCeiling(long ms) => (int)Math.Max(0, (ms + 999) / 1000);

    public void Dispose()
    {
        _localBuckets.Dispose();
        _localLeases.Dispose();
    }

    readonly record struct BucketKey(string Partition, BucketPolicy Policy);

    readonly record struct LeaseKey(string Partition, int Limit);

    sealed class RedisLease(IDatabase db, RedisKey key, string id) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            try
            {
                await db.SortedSetRemoveAsync(key, id, CommandFlags.FireAndForget);
            }
            catch (Exception e) when (RedisConnection.IsUnavailable(e))
            {
                // The lease expires by itself.
            }
        }
    }

    sealed class LocalLease(RateLimitLease lease) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            lease.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
