using System.ComponentModel.DataAnnotations;

namespace Neraca.Events;

/// <summary>Settings of the event log, the outbox relay, webhooks and RabbitMQ publishing (section <c>Events</c>,
/// environment <c>NERACA_EVENTS__...</c>).</summary>
public sealed class EventsOptions
{
    public const string Section = "Events";

    /// <summary>AMQP URL (<c>amqp://user:pass@host:5672/vhost</c>) of a RabbitMQ broker to publish every event to.
    /// Absent (default): no broker publishing. When set, an event counts as relayed only after the broker confirmed it.</summary>
    public string? RabbitMqUrl { get; set; }

    /// <summary>Topic exchange events are published to (routing key = event type). Default <c>neraca.events</c>.</summary>
    [Required, RegularExpression("^[A-Za-z0-9_.:-]{1,127}$")]
    public string RabbitMqExchange { get; set; } = "neraca.events";

    /// <summary>How long the relay waits for the broker's confirms of one batch, in milliseconds. Default 10 s.</summary>
    [Range(100, 600_000)]
    public int RabbitMqConfirmTimeoutMs { get; set; } = 10_000;

    /// <summary>Events the relay moves per transaction. Default 500. The events of one posting commit share one outbox
    /// row and move together, so one transaction may carry more (a batch of 8,000 transfers moves in one).</summary>
    [Range(1, 10_000)]
    public int RelayBatchSizeMax { get; set; } = 500;

    /// <summary>After relaying a partial batch, the relay waits this long (milliseconds) before claiming again, so under
    /// steady posting each relay transaction carries many events instead of one posting commit's worth. 0 relays at
    /// once. Default 10: webhooks and the broker see events up to 10 ms later; the feed and SSE do not wait.</summary>
    [Range(0, 1_000)]
    public int RelayGatherMs { get; set; } = 10;

    /// <summary>Polling interval of the relay, in milliseconds: the only trigger on SQLite, the fallback behind
    /// LISTEN/NOTIFY on PostgreSQL. Default 1 s.</summary>
    [Range(10, 60_000)]
    public int RelayPollIntervalMs { get; set; } = 1_000;

    /// <summary>Longest pause after a failed relay attempt (broker down, database error), in milliseconds. Default 5 s.</summary>
    [Range(10, 600_000)]
    public int RelayRetryDelayMaxMs { get; set; } = 5_000;

    /// <summary>Accept webhook URLs that point at loopback, private, link-local or other non-public addresses.
    /// Off by default (SSRF protection); tests and closed networks turn it on.</summary>
    public bool AllowPrivateWebhookTargets { get; set; }

    /// <summary>Attempts of one delivery before it goes to the dead-letter queue. Default 12 (about 11 hours with the default backoff).</summary>
    [Range(1, 100)]
    public int WebhookAttemptsMax { get; set; } = 12;

    /// <summary>Delay before the first retry, in milliseconds; it doubles per attempt (with jitter). Default 10 s.</summary>
    [Range(1, 86_400_000)]
    public int WebhookRetryBaseDelayMs { get; set; } = 10_000;

    /// <summary>Longest delay between two attempts, in milliseconds. Default 6 h.</summary>
    [Range(1, 86_400_000)]
    public int WebhookRetryDelayMaxMs { get; set; } = 6 * 3600 * 1000;

    /// <summary>Time a receiver has to answer one delivery, in milliseconds. Default 10 s.</summary>
    [Range(100, 120_000)]
    public int WebhookTimeoutMs { get; set; } = 10_000;

    /// <summary>How long a worker owns a claimed delivery, in milliseconds; a worker that dies while sending loses it after
    /// this and another worker sends it again. Must exceed <see cref="WebhookTimeoutMs"/>. Default 60 s.</summary>
    [Range(200, 3_600_000)]
    public int WebhookLeaseMs { get; set; } = 60_000;

    /// <summary>Consecutive failed attempts (across deliveries) after which an endpoint is disabled and the tenant gets a
    /// <c>webhook.endpoint.disabled</c> event. Default 100.</summary>
    [Range(1, 100_000)]
    public int WebhookDisableAfterFailures { get; set; } = 100;

    /// <summary>Deliveries sent at the same time by one worker. Default 16.</summary>
    [Range(1, 1_000)]
    public int WebhookConcurrencyMax { get; set; } = 16;

    /// <summary>Polling interval of the webhook dispatcher, in milliseconds (it also wakes when the relay adds deliveries). Default 1 s.</summary>
    [Range(10, 60_000)]
    public int WebhookPollIntervalMs { get; set; } = 1_000;

    /// <summary>Webhook endpoints one tenant may register. Default 50.</summary>
    [Range(1, 10_000)]
    public int WebhookEndpointsPerTenantMax { get; set; } = 50;

    /// <summary>Dead letters one bulk replay call puts back in the queue. Default 10,000.</summary>
    [Range(1, 1_000_000)]
    public int WebhookReplayMax { get; set; } = 10_000;

    /// <summary>Largest page of <c>GET /v1/events</c> and of delivery lists. Default 1,000.</summary>
    [Range(1, 10_000)]
    public int PageSizeMax { get; set; } = 1_000;

    /// <summary>Open <c>GET /v1/events/stream</c> connections per process; more get 503. Default 1,000.</summary>
    [Range(1, 100_000)]
    public int StreamConnectionsMax { get; set; } = 1_000;

    /// <summary>Open <c>GET /v1/events/stream</c> connections of one tenant per process; more get 503, so one tenant
    /// cannot take every slot of <see cref="StreamConnectionsMax"/>. Default 100.</summary>
    [Range(1, 100_000)]
    public int StreamConnectionsPerTenantMax { get; set; } = 100;

    /// <summary>Seconds between SSE keep-alive comments on an idle stream. Default 15.</summary>
    [Range(1, 3_600)]
    public int StreamHeartbeatSeconds { get; set; } = 15;

    /// <summary>Polling interval of an SSE stream waiting for new events, in milliseconds (PostgreSQL also wakes it on NOTIFY). Default 1 s.</summary>
    [Range(10, 60_000)]
    public int StreamPollIntervalMs { get; set; } = 1_000;

    /// <summary>How often the worker refreshes the outbox-lag and dead-letter gauges, in milliseconds. Default 5 s.</summary>
    [Range(10, 600_000)]
    public int MetricsRefreshMs { get; set; } = 5_000;
}
