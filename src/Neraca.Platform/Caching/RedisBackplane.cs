using StackExchange.Redis;
using ZiggyCreatures.Caching.Fusion;
using ZiggyCreatures.Caching.Fusion.Backplane;

namespace Neraca.Caching;

/// <summary>FusionCache backplane over Redis pub/sub on the process's shared connection: a write on one replica evicts
/// the entry from the in-process L1 of every other replica. The package mirror we build from lacks FusionCache's own
/// Redis backplane package, so this is the same small protocol (FusionCache's binary <see cref="BackplaneMessage"/> on
/// one channel per cache). Delivery is asynchronous: entries that need read-your-writes use <see cref="CacheVersions"/>.</summary>
public sealed partial class RedisBackplane(RedisConnection redis, ILogger<RedisBackplane> logger) : IFusionCacheBackplane
{
    BackplaneSubscriptionOptions? _subscription;
    RedisChannel _channel;

    public void Subscribe(BackplaneSubscriptionOptions options) => SubscribeAsync(options).AsTask().GetAwaiter().GetResult();

    public async ValueTask SubscribeAsync(BackplaneSubscriptionOptions options)
    {
        _subscription = options;
        _channel = RedisChannel.Literal(redis.KeyPrefix + options.ChannelName);
        var subscriber = redis.Multiplexer!.GetSubscriber();
        try
        {
            // StackExchange.Redis remembers the subscription and restores it after every reconnect.
            await subscriber.SubscribeAsync(_channel, (_, value) => OnMessage(value));
        }
        catch (Exception e) when (RedisConnection.IsUnavailable(e))
        {
            LogSubscribeFailed(logger, e.Message);
            redis.Restored += RetrySubscribe;
        }
        redis.Restored += OnRestored;
    }

    void RetrySubscribe()
    {
        redis.Restored -= RetrySubscribe;
        _ = redis.Multiplexer!.GetSubscriber().SubscribeAsync(_channel, (_, value) => OnMessage(value));
    }

    // Tells FusionCache the backplane is back so its auto-recovery re-sends notifications that failed meanwhile.
    void OnRestored() => _subscription?.ConnectHandler?.Invoke(new BackplaneConnectionInfo(isReconnection: true));

    void OnMessage(RedisValue value)
    {
        var handler = _subscription?.IncomingMessageHandlerAsync;
        if (handler is null || value.IsNullOrEmpty) return;
        BackplaneMessage message;
        try
        {
            message = BackplaneMessage.FromByteArray((byte[])value!);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or IndexOutOfRangeException)
        {
            LogBadMessage(logger, e.Message);
            return;
        }
        _ = Task.Run(async () => await handler(message));
    }

    public void Unsubscribe() => UnsubscribeAsync().AsTask().GetAwaiter().GetResult();

    public async ValueTask UnsubscribeAsync()
    {
        redis.Restored -= OnRestored;
        redis.Restored -= RetrySubscribe;
        _subscription = null;
        try
        {
            await redis.Multiplexer!.GetSubscriber().UnsubscribeAsync(_channel);
        }
        catch (Exception e) when (RedisConnection.IsUnavailable(e))
        {
            // Nothing to undo on a server we cannot reach.
        }
    }

    public async ValueTask PublishAsync(BackplaneMessage message, FusionCacheEntryOptions options, CancellationToken token = default)
    {
        // Throws when Redis is down: FusionCache counts it, opens its circuit breaker and re-sends on recovery.
        await redis.Multiplexer!.GetSubscriber().PublishAsync(_channel, BackplaneMessage.ToByteArray(message));
    }

    public void Publish(BackplaneMessage message, FusionCacheEntryOptions options, CancellationToken token = default) =>
        PublishAsync(message, options, token).AsTask().GetAwaiter().GetResult();

    [LoggerMessage(1, LogLevel.Warning, "Cache backplane could not subscribe yet ({Reason}); it will once Redis is reachable")]
    static partial void LogSubscribeFailed(ILogger logger, string reason);

    [LoggerMessage(2, LogLevel.Warning, "Ignored a malformed cache backplane message: {Reason}")]
    static partial void LogBadMessage(ILogger logger, string reason);
}
