using System.Diagnostics.Metrics;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;
using Neraca.Caching;
using RedisRateLimiting;

namespace Neraca.RateLimiting;

/// <summary>A decision on one request.</summary>
public readonly record struct RateDecision(bool Allowed, int Remaining, int RetryAfterSeconds, int ResetSeconds, bool Shared);

/// <summary>Token buckets and write-concurrency leases. In Redis through RedisRateLimiting (one atomic script per
/// request, so replicas share one bucket) when configured and reachable; otherwise in this process with each limit divided
/// by <see cref="RateLimitOptions.ReplicasWhenRedisDown"/>. A Redis error never fails a request: that request is decided
/// locally and the next one tries Redis again.</summary>
/// <remarks>What stays ours: the library's limiters throw when Redis is unreachable and have no fallback, so the choice
/// between Redis and the local limiter per request is here; and their leases report the tokens left but not when the
/// bucket is full again, so the <c>RateLimit</c> header's <c>t</c> is computed from the policy.</remarks>
public sealed class DistributedRateLimiter : IDisposable
{
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

    /// <summary>Takes one token from the bucket of <paramref name="partition"/> (a <see cref="CompositeKey"/>).</summary>
    public async ValueTask<RateDecision> TakeAsync(string partition, BucketPolicy policy)
    {
        var key = new BucketKey(partition, policy);
        if (_redis.IsConnected)
        {
            try
            {
                using var limiter = RedisBucket(partition, policy);
                using var lease = await limiter.AcquireAsync();
                var remaining = lease.TryGetMetadata(RateLimitMetadataName.Remaining, out var left) ? (int)Math.Clamp(left, 0, policy.Burst) : 0;
                var decision = new RateDecision(lease.IsAcquired, remaining, RetryAfterSeconds(lease, policy),
                    SecondsUntilFull(policy.Burst, remaining, policy.PerMinute), Shared: true);
                Record(decision);
                return decision;
            }
            catch (Exception e) when (RedisConnection.IsUnavailable(e))
            {
                // Decided locally below.
            }
        }
        using var local = _localBuckets.AttemptAcquire(key);
        var stats = _localBuckets.GetStatistics(key);
        var localRemaining = (int)(stats?.CurrentAvailablePermits ?? 0);
        var perMinute = Math.Max(1, policy.PerMinute / _options.ReplicasWhenRedisDown);
        var result = new RateDecision(local.IsAcquired, localRemaining, local.IsAcquired ? 0 : Math.Max(1, (int)Math.Ceiling(60.0 / perMinute)),
            SecondsUntilFull(Math.Max(1, policy.Burst / _options.ReplicasWhenRedisDown), localRemaining, perMinute), Shared: false);
        Record(result);
        return result;
    }

    /// <summary>Acquires one of <paramref name="limit"/> concurrent write slots; null when all are taken. Dispose the
    /// result when the request ends. A Redis slot expires by itself after 60 s if its replica dies holding it.</summary>
    public async ValueTask<IAsyncDisposable?> AcquireWriteAsync(string partition, int limit)
    {
        var key = new LeaseKey(partition, limit);
        if (_redis.IsConnected)
        {
            var limiter = RedisSlots(partition, limit);
            try
            {
                var shared = await limiter.AcquireAsync();
                if (shared.IsAcquired) return new Lease(shared, limiter);
                shared.Dispose();
                limiter.Dispose();
                return null;
            }
            catch (Exception e) when (RedisConnection.IsUnavailable(e))
            {
                limiter.Dispose();
                // Decided locally below.
            }
        }
        var lease = _localLeases.AttemptAcquire(key);
        if (lease.IsAcquired) return new Lease(lease, null);
        lease.Dispose();
        return null;
    }

    // A limiter per call rather than a partitioned limiter: RedisRateLimiting's limiters report themselves never idle, so
    // a partitioned limiter would keep one per client address forever. They hold no state of their own (it is in Redis)
    // and cost a few small allocations. Redis keys are rl:tb:{PREFIX + bucket name} and rl:cc:{...} (the library adds
    // rl:xx:), so Redis:KeyPrefix still separates deployments; bucket names are CompositeKeys, so callers never share one.
    RedisTokenBucketRateLimiter<string> RedisBucket(string partition, BucketPolicy policy) => new(_redis.KeyPrefix + partition,
        new RedisTokenBucketRateLimiterOptions
        {
            ConnectionMultiplexerFactory = () => _redis.Multiplexer!,
            TokenLimit = policy.Burst,
            // One token at a time, every 60/perMinute seconds: the bucket refills continuously, as documented.
            TokensPerPeriod = 1,
            ReplenishmentPeriod = policy.TokenInterval,
        });

    RedisConcurrencyRateLimiter<string> RedisSlots(string partition, int limit) => new(_redis.KeyPrefix + partition,
        new RedisConcurrencyRateLimiterOptions
        {
            ConnectionMultiplexerFactory = () => _redis.Multiplexer!,
            PermitLimit = limit,
            // A write over its limit is refused at once (429), never queued.
            QueueLimit = 0,
        });

    void Record(RateDecision d) => _decisions.Add(1, new KeyValuePair<string, object?>("result", d.Allowed ? "allowed" : "rejected"),
        new KeyValuePair<string, object?>("store", d.Shared ? "redis" : "local"));

    /// <summary>The library reports whole seconds rounded down (or nothing): round up, and never past the next token.</summary>
    static int RetryAfterSeconds(RateLimitLease lease, BucketPolicy policy)
    {
        if (lease.IsAcquired) return 0;
        var nextTokenSeconds = Math.Max(1, (int)Math.Ceiling(policy.TokenInterval.TotalSeconds));
        return lease.TryGetMetadata(RateLimitMetadataName.RetryAfter, out var seconds) ? Math.Clamp(seconds + 1, 1, nextTokenSeconds) : nextTokenSeconds;
    }

    static int SecondsUntilFull(int burst, int remaining, int perMinute) => (int)Math.Ceiling(Math.Max(0, burst - remaining) * 60.0 / perMinute);

    public void Dispose()
    {
        _localBuckets.Dispose();
        _localLeases.Dispose();
    }

    readonly record struct BucketKey(string Partition, BucketPolicy Policy);

    readonly record struct LeaseKey(string Partition, int Limit);

    sealed class Lease(RateLimitLease lease, RateLimiter? limiter) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            try
            {
                // A Redis lease is released by a (synchronous) command within Redis:OperationTimeoutMs.
                lease.Dispose();
            }
            catch (Exception e) when (RedisConnection.IsUnavailable(e))
            {
                // The Redis slot expires by itself.
            }
            finally
            {
                limiter?.Dispose();
            }
            return ValueTask.CompletedTask;
        }
    }
}
