using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Neraca.Caching;

/// <summary>Settings of the optional Redis shared by the cache (L2 and backplane) and the rate limits
/// (section <c>Redis</c>; <c>NERACA_REDIS__URL</c>).</summary>
public sealed class RedisOptions
{
    /// <summary>StackExchange.Redis configuration, e.g. <c>127.0.0.1:6379</c> or <c>redis.internal:6379,password=...,ssl=true</c>.
    /// Empty (default): no Redis; the cache is in-process only and rate limits hold per replica.</summary>
    public string? Url { get; set; }

    /// <summary>Prefix of every key and channel Neraca uses, so one Redis can serve several deployments. Default <c>neraca:</c>.</summary>
    [Required]
    public string KeyPrefix { get; set; } = "neraca:";

    /// <summary>How long a connection attempt may take, in milliseconds. Default 1000.</summary>
    [Range(100, 60_000)]
    public int ConnectTimeoutMs { get; set; } = 1000;

    /// <summary>How long one Redis command may take before the request falls back to the database or to local limits,
    /// in milliseconds. Default 250: Redis on the same network answers in well under a millisecond.</summary>
    [Range(10, 60_000)]
    public int OperationTimeoutMs { get; set; } = 250;
}

/// <summary>The process's one connection to Redis, or none. It never blocks start-up and never throws for an unreachable
/// server: commands fail fast while it is down (callers fall back) and StackExchange.Redis reconnects by itself.</summary>
public sealed partial class RedisConnection : IDisposable
{
    readonly ConnectionMultiplexer? _multiplexer;
    readonly ConfigurationOptions? _configuration;
    readonly ILogger<RedisConnection> _logger;

    public RedisConnection(IOptions<RedisOptions> options, ILogger<RedisConnection> logger)
    {
        _logger = logger;
        var o = options.Value;
        KeyPrefix = o.KeyPrefix;
        if (string.IsNullOrWhiteSpace(o.Url)) return;
        var configuration = ConfigurationOptions.Parse(o.Url);
        configuration.AbortOnConnectFail = false;
        configuration.ConnectTimeout = o.ConnectTimeoutMs;
        configuration.SyncTimeout = o.OperationTimeoutMs;
        configuration.AsyncTimeout = o.OperationTimeoutMs;
        // While disconnected, fail at once instead of queueing: the caller has a fallback and must not wait.
        configuration.BacklogPolicy = BacklogPolicy.FailFast;
        configuration.ReconnectRetryPolicy = new ExponentialRetry(250, 5000);
        configuration.ClientName = "neraca-" + Environment.MachineName;
        _configuration = configuration;
        _multiplexer = ConnectionMultiplexer.Connect(configuration);
        _multiplexer.ConnectionFailed += (_, e) => { if (e.ConnectionType == ConnectionType.Interactive) LogDown(_logger, e.FailureType.ToString()); };
        _multiplexer.ConnectionRestored += (_, e) =>
        {
            if (e.ConnectionType != ConnectionType.Interactive) return;
            LogRestored(_logger);
            Restored?.Invoke();
        };
    }

    /// <summary>Whether a Redis is configured at all (it may still be down).</summary>
    public bool IsConfigured => _multiplexer is not null;

    /// <summary>Whether commands can be sent right now.</summary>
    public bool IsConnected => _multiplexer?.IsConnected == true;

    public string KeyPrefix { get; }

    /// <summary>The multiplexer (null without Redis). Shared by the L2 cache, the version tokens and the rate limits.</summary>
    public IConnectionMultiplexer? Multiplexer => _multiplexer;

    /// <summary>A second connection with the same settings (fail fast, reconnects by itself), owned by the caller. For a
    /// component that disposes the connection it is given (FusionCache's backplane does on unsubscribe).</summary>
    public IConnectionMultiplexer ConnectOwned() =>
        ConnectionMultiplexer.Connect((_configuration ?? throw new InvalidOperationException("Redis is not configured")).Clone());

    /// <summary>The database when connected, otherwise null: the caller takes its fallback path without waiting.</summary>
    public IDatabase? DatabaseIfConnected => IsConnected ? _multiplexer!.GetDatabase() : null;

    /// <summary>Raised (on a thread-pool thread) when the interactive connection comes back after a failure.</summary>
    public event Action? Restored;

    public void Dispose() => _multiplexer?.Dispose();

    /// <summary>Whether an exception means Redis is unavailable (then the caller falls back) rather than a bug.</summary>
    /// <remarks>StackExchange.Redis surfaces a connection torn down mid-read as InvalidOperationException from its pipe,
    /// and a command dropped by a reconnect as a cancelled task (Neraca passes no token to Redis calls, so a cancellation
    /// can only come from there).</remarks>
    public static bool IsUnavailable(Exception e) =>
        e is RedisException or TimeoutException or ObjectDisposedException or InvalidOperationException or OperationCanceledException;

    [LoggerMessage(1, LogLevel.Warning, "Redis unreachable ({Failure}): cache falls back to the database, rate limits to this replica")]
    static partial void LogDown(ILogger logger, string failure);

    [LoggerMessage(2, LogLevel.Information, "Redis connection restored")]
    static partial void LogRestored(ILogger logger);
}

/// <summary>Readiness reports Redis as degraded, never unhealthy: replicas keep serving from the database without it.</summary>
public sealed class RedisHealthCheck(RedisConnection redis) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(
        HealthCheckContext context, CancellationToken ct = default) =>
        Task.FromResult(!redis.IsConfigured
            ? HealthCheckResult.Healthy("not configured: in-process cache, per-replica limits")
            : redis.IsConnected
                ? HealthCheckResult.Healthy("connected")
                : HealthCheckResult.Degraded("unreachable: reads from the database, per-replica limits"));
}
