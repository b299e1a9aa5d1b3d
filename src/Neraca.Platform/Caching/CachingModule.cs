using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Caching.StackExchangeRedis;
using Microsoft.Extensions.Options;
using System.Text.Json;
using StackExchange.Redis;
using ZiggyCreatures.Caching.Fusion;
using ZiggyCreatures.Caching.Fusion.Backplane.StackExchangeRedis;
using ZiggyCreatures.Caching.Fusion.Serialization.SystemTextJson;

namespace Neraca.Caching;

public static class CachingModule
{
    /// <summary>Redis (optional), the two-level cache and its version tokens.</summary>
    public static WebApplicationBuilder AddCaching(this WebApplicationBuilder builder)
    {
        builder.Services.AddMetrics();
        builder.Services.AddOptions<RedisOptions>().Bind(builder.Configuration.GetSection("Redis")).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddOptions<CacheOptions>().Bind(builder.Configuration.GetSection("Cache")).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<RedisConnection>();
        builder.Services.AddSingleton<CacheVersions>();
        builder.Services.AddSingleton<IFusionCache>(CreateFusionCache);
        builder.Services.AddSingleton<NeracaCache>();
        builder.Services.AddHealthChecks().AddCheck<RedisHealthCheck>("redis", tags: ["ready"]);
        return builder;
    }

    static FusionCache CreateFusionCache(IServiceProvider sp)
    {
        var o = sp.GetRequiredService<IOptions<CacheOptions>>().Value;
        var redis = sp.GetRequiredService<RedisConnection>();
        var breaker = TimeSpan.FromMilliseconds(o.RedisCircuitBreakerMs);
        var options = new FusionCacheOptions
        {
            CacheName = "neraca",
            CacheKeyPrefix = "c:",
            // Channels carry Redis:KeyPrefix like every key, so deployments sharing a Redis do not hear each other.
            BackplaneChannelPrefix = redis.KeyPrefix + "neraca",
            DistributedCacheCircuitBreakerDuration = breaker,
            BackplaneCircuitBreakerDuration = breaker,
            // Redis errors are expected during an outage; the connection logs the outage once.
            DistributedCacheErrorsLogLevel = LogLevel.Debug,
            BackplaneErrorsLogLevel = LogLevel.Debug,
            DistributedCacheSyntheticTimeoutsLogLevel = LogLevel.Debug,
            BackplaneSyntheticTimeoutsLogLevel = LogLevel.Debug,
            WaitForInitialBackplaneSubscribe = false,
        };
        var memory = new MemoryCache(new MemoryCacheOptions { SizeLimit = o.L1EntriesMax });
        // FusionCache disposes only a memory cache it created itself; this one is bounded, so it is ours to dispose.
        sp.GetRequiredService<IHostApplicationLifetime>().ApplicationStopped.Register(memory.Dispose);
        var cache = new FusionCache(options, memory, sp.GetRequiredService<ILogger<FusionCache>>());
        if (redis.IsConfigured)
        {
            var l2 = new RedisCache(Options.Create(new RedisCacheOptions
            {
                InstanceName = redis.KeyPrefix,
                ConnectionMultiplexerFactory = () => Task.FromResult<IConnectionMultiplexer>(redis.Multiplexer!),
            }));
            // Fields too: cached pages are value tuples. Default options otherwise: entries are internal records, not the
            // HTTP contract.
            cache.SetupDistributedCache(l2, new FusionCacheSystemTextJsonSerializer(new JsonSerializerOptions(JsonSerializerDefaults.General) { IncludeFields = true }));
            // Its own connection: the backplane disposes the multiplexer it gets when FusionCache unsubscribes it.
            cache.SetupBackplane(new RedisBackplane(Options.Create(new RedisBackplaneOptions
            {
                ConnectionMultiplexerFactory = () => Task.FromResult(redis.ConnectOwned()),
            }), sp.GetRequiredService<ILogger<RedisBackplane>>()));
        }
        return cache;
    }
}
