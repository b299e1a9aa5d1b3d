using Microsoft.Extensions.Options;
using Neraca.Hosting;

namespace Neraca.Events;

public static class EventsModule
{
    /// <summary>The event feed and webhook API (api role), the outbox relay, webhook dispatcher and gauges (worker role),
    /// and optional RabbitMQ publishing (<see cref="EventsOptions.RabbitMqUrl"/>).</summary>
    public static WebApplicationBuilder AddEvents(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<EventsOptions>()
            .Bind(builder.Configuration.GetSection(EventsOptions.Section))
            .ValidateDataAnnotations()
            .Validate(o => o.WebhookLeaseMs > o.WebhookTimeoutMs, "Events:WebhookLeaseMs must exceed Events:WebhookTimeoutMs.")
            .Validate(o => o.WebhookRetryDelayMaxMs >= o.WebhookRetryBaseDelayMs, "Events:WebhookRetryDelayMaxMs must be at least Events:WebhookRetryBaseDelayMs.")
            .Validate(o => string.IsNullOrWhiteSpace(o.RabbitMqUrl) || IsAmqpUrl(o.RabbitMqUrl),
                "Events:RabbitMqUrl must be an amqp:// or amqps:// URL.")
            .ValidateOnStart();

        builder.Services.AddSingleton<EventSignals>();
        builder.Services.AddSingleton<OutboxNotifier>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<OutboxNotifier>());
        builder.Services.AddSingleton<EventData>();
        builder.Services.AddSingleton<EventFeed>();
        builder.Services.AddSingleton<FeedCursorCodec>();
        builder.Services.AddSingleton<WebhookStore>();
        builder.Services.AddSingleton<EventsMetrics>();
        // Absent by default; OutboxRelay takes it as an optional dependency.
        if (!string.IsNullOrWhiteSpace(builder.Configuration.GetSection(EventsOptions.Section)[nameof(EventsOptions.RabbitMqUrl)]))
            builder.Services.AddSingleton<RabbitMqPublisher>();
        builder.Services.AddSingleton<OutboxRelay>();
        builder.Services.AddSingleton<WebhookDispatcher>();
        WebhookDispatcher.AddWebhookHttpClient(builder.Services);

        var role = builder.Configuration[nameof(NeracaOptions.Role)] ?? new NeracaOptions().Role;
        if (!NeracaRolesParser.TryParse(role, out var roles)) return builder; // options validation names the bad setting
        if ((roles & (NeracaRoles.Api | NeracaRoles.Worker)) != 0) builder.Services.AddHostedService<PostgresEventListener>();
        if (roles.HasFlag(NeracaRoles.Worker)) builder.Services.AddHostedService<EventsWorker>();
        return builder;
    }

    static bool IsAmqpUrl(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) && (uri.Scheme == "amqp" || uri.Scheme == "amqps") && uri.Host.Length > 0;
}

/// <summary>The worker role's event loops: relay, webhook dispatch, gauges. Stopping ends them where they are; anything
/// half done is redone by the next worker (outbox rows stay until relayed, delivery leases expire).</summary>
public sealed partial class EventsWorker(OutboxRelay relay, WebhookDispatcher dispatcher, EventsMetrics metrics,
    IOptions<EventsOptions> options, TimeProvider clock, ILogger<EventsWorker> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        await Task.WhenAll(Task.Run(() => relay.RunAsync(ct), ct), Task.Run(() => dispatcher.RunAsync(ct), ct), Task.Run(() => RefreshMetricsAsync(ct), ct));
    }

    async Task RefreshMetricsAsync(CancellationToken ct)
    {
        var interval = TimeSpan.FromMilliseconds(options.Value.MetricsRefreshMs);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await metrics.RefreshAsync(ct);
                await Task.Delay(interval, clock, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is System.Data.Common.DbException or TimeoutException or IOException)
            {
                LogRefreshFailed(logger, e);
                try { await Task.Delay(interval, clock, ct); } catch (OperationCanceledException) { return; }
            }
        }
    }

    [LoggerMessage(1, LogLevel.Warning, "Refreshing event metrics failed")]
    static partial void LogRefreshFailed(ILogger logger, Exception exception);
}
