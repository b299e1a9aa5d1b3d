using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace Neraca.Events;

/// <summary>The broker did not confirm a batch (down, unreachable, nacked, or too slow). The relay keeps the events in
/// the outbox and tries again.</summary>
public sealed class BrokerUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Publishes events to a durable topic exchange with publisher confirms: one persistent message per event,
/// routing key = event type, <c>message_id</c> = event id. Owns one connection and one confirming channel and rebuilds
/// them after any failure, so publishing resumes by itself when the broker is back.</summary>
public sealed partial class RabbitMqPublisher(IOptions<EventsOptions> options, ILogger<RabbitMqPublisher> logger) : IAsyncDisposable
{
    readonly SemaphoreSlim _gate = new(1, 1);
    IConnection? _connection;
    IChannel? _channel;

    /// <summary>Returns once the broker confirmed every message of the batch; throws <see cref="BrokerUnavailableException"/> otherwise.</summary>
    public async Task PublishAsync(IReadOnlyList<EventRow> events, CancellationToken ct)
    {
        if (events.Count == 0) return;
        var o = options.Value;
        await _gate.WaitAsync(ct);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(o.RabbitMqConfirmTimeoutMs);
            try
            {
                var channel = await ChannelAsync(o, timeout.Token);
                var confirms = new List<Task>(events.Count);
                foreach (var e in events)
                {
                    var properties = new BasicProperties
                    {
                        MessageId = e.Id,
                        Type = e.Type,
                        ContentType = "application/json",
                        DeliveryMode = DeliveryModes.Persistent,
                        Timestamp = new AmqpTimestamp(e.CreatedAtUs / 1_000_000),
                        Headers = new Dictionary<string, object?> { ["tenant_id"] = e.TenantId, ["subject"] = e.Subject },
                    };
                    // With confirmation tracking on, each task completes when the broker acks (throws on nack):
                    // publishing them all first pipelines the batch, awaiting them all makes it count.
                    confirms.Add(channel.BasicPublishAsync(o.RabbitMqExchange, e.Type, mandatory: false, properties,
                        EventEnvelope.ToJsonBytes(e), timeout.Token).AsTask());
                }
                await Task.WhenAll(confirms);
            }
            catch (Exception e) when (e is BrokerUnreachableException or AlreadyClosedException or OperationInterruptedException
                                          or PublishException or IOException or System.Net.Sockets.SocketException
                                          or OperationCanceledException && !ct.IsCancellationRequested)
            {
                await ResetAsync();
                throw new BrokerUnavailableException("RabbitMQ did not confirm the batch: " + e.Message, e);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    async Task<IChannel> ChannelAsync(EventsOptions o, CancellationToken ct)
    {
        if (_channel is { IsOpen: true } open) return open;
        await ResetAsync();
        var factory = new ConnectionFactory
        {
            Uri = new Uri(o.RabbitMqUrl!),
            ClientProvidedName = "neraca-relay",
            // The relay rebuilds connections itself: an event is relayed only after a confirm on a live channel.
            AutomaticRecoveryEnabled = false,
            RequestedConnectionTimeout = TimeSpan.FromMilliseconds(Math.Min(o.RabbitMqConfirmTimeoutMs, 30_000)),
        };
        _connection = await factory.CreateConnectionAsync(ct);
        _channel = await _connection.CreateChannelAsync(
            new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true), ct);
        await _channel.ExchangeDeclareAsync(o.RabbitMqExchange, ExchangeType.Topic, durable: true, autoDelete: false, cancellationToken: ct);
        LogConnected(logger, o.RabbitMqExchange);
        return _channel;
    }

    async Task ResetAsync()
    {
        var channel = _channel;
        var connection = _connection;
        _channel = null;
        _connection = null;
        try
        {
            if (channel is not null) await channel.DisposeAsync();
            if (connection is not null) await connection.DisposeAsync();
        }
        catch (Exception e) when (e is AlreadyClosedException or OperationInterruptedException or IOException or ObjectDisposedException)
        {
            // The broker is gone already; nothing left to close.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _gate.WaitAsync();
        try { await ResetAsync(); }
        finally { _gate.Release(); }
        _gate.Dispose();
    }

    [LoggerMessage(1, LogLevel.Information, "Connected to RabbitMQ; publishing events to exchange {Exchange}")]
    static partial void LogConnected(ILogger logger, string exchange);
}
