using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Options;
using Polly;

namespace Neraca.Observability;

/// <summary>One error as logged: what, where, and which trace and request it belonged to.</summary>
public sealed record ErrorOccurrence(string Category, string ExceptionType, string ExceptionMessage, string Site,
    string? Route, string? TraceId, string? RequestId, DateTimeOffset At);

/// <summary>A chat message ready to send: identical errors folded into one with their count.</summary>
public sealed record ErrorAlertMessage(string Fingerprint, long Count, ErrorOccurrence First, ErrorOccurrence Last);

/// <summary>Folds errors by fingerprint (category, exception type, throwing method, route): the first occurrence
/// opens a window of <see cref="ErrorAlertOptions.WindowSeconds"/>, later ones only count, and when the window
/// closes one message carries the count. A storm of a thousand identical errors is one message.</summary>
public sealed class ErrorAlerts(IOptions<ObservabilityOptions> options, TimeProvider clock)
{
    const string OtherFingerprint = "other";
    const int ExceptionMessageLengthMax = 300;

    readonly ErrorAlertOptions _options = options.Value.ErrorAlerts;
    readonly Lock _gate = new();
    readonly Dictionary<string, Window> _open = new(StringComparer.Ordinal);
    readonly Queue<DateTimeOffset> _sentAt = new();

    sealed class Window(ErrorOccurrence first, DateTimeOffset opened)
    {
        public DateTimeOffset Opened { get; } = opened;
        public ErrorOccurrence First { get; } = first;
        public ErrorOccurrence Last { get; set; } = first;
        public long Count { get; set; } = 1;
    }

    /// <summary>Windows still open (errors counted, message not yet sent).</summary>
    public int OpenWindows
    {
        get { lock (_gate) return _open.Count; }
    }

    /// <summary>Records an error logged with an exception. Cheap and non-blocking: it runs on the failing request.</summary>
    public void Record(string category, Exception exception, string? route, string? requestId)
    {
        // A database outage fails every route at once: one incident, one message.
        if (exception is Storage.DatabaseUnavailableException) route = null;
        var site = exception.TargetSite is { } method ? $"{method.DeclaringType?.FullName}.{method.Name}" : "unknown";
        var text = exception.Message.Length > ExceptionMessageLengthMax ? exception.Message[..ExceptionMessageLengthMax] + "…" : exception.Message;
        var occurrence = new ErrorOccurrence(category, exception.GetType().FullName ?? exception.GetType().Name, text, site, route,
            Activity.Current?.TraceId.ToString(), requestId, clock.GetUtcNow());
        var fingerprint = Fingerprint(occurrence);
        lock (_gate)
        {
            if (_open.TryGetValue(fingerprint, out var window) || _open.TryGetValue(OtherFingerprint, out window) && _open.Count >= _options.FingerprintsMax)
            {
                window.Count++;
                window.Last = occurrence;
                return;
            }
            _open[_open.Count >= _options.FingerprintsMax ? OtherFingerprint : fingerprint] = new Window(occurrence, occurrence.At);
        }
    }

    /// <summary>Messages whose window has closed (all of them when <paramref name="flush"/>), within the per-minute limit.</summary>
    public IReadOnlyList<ErrorAlertMessage> TakeDue(bool flush = false)
    {
        var now = clock.GetUtcNow();
        var windowLength = TimeSpan.FromSeconds(_options.WindowSeconds);
        var due = new List<ErrorAlertMessage>();
        lock (_gate)
        {
            while (_sentAt.Count > 0 && now - _sentAt.Peek() >= TimeSpan.FromMinutes(1)) _sentAt.Dequeue();
            foreach (var (fingerprint, window) in _open.OrderBy(w => w.Value.Opened))
            {
                if (!flush && now - window.Opened < windowLength) continue;
                if (!flush && _sentAt.Count >= _options.MessagesPerMinuteMax) break;
                due.Add(new ErrorAlertMessage(fingerprint, window.Count, window.First, window.Last));
                _sentAt.Enqueue(now);
            }
            foreach (var message in due) _open.Remove(message.Fingerprint);
        }
        return due;
    }

    internal static string Fingerprint(ErrorOccurrence e)
    {
        var key = string.Join('\n', e.Category, e.ExceptionType, e.Site, e.Route ?? "");
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..16];
    }

    /// <summary>The human text of a message (both chat formats carry the same text).</summary>
    public static string Text(ErrorAlertMessage m, string service, string replica)
    {
        var e = m.First;
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"🚨 {service}: {e.ExceptionType}: {e.ExceptionMessage}\n");
        text.Append(CultureInfo.InvariantCulture, $"occurrences: {m.Count} between {e.At:yyyy-MM-ddTHH:mm:ssZ} and {m.Last.At:yyyy-MM-ddTHH:mm:ssZ}\n");
        text.Append(CultureInfo.InvariantCulture, $"where: {e.Route ?? "(no request)"} in {e.Site} (log category {e.Category})\n");
        text.Append(CultureInfo.InvariantCulture, $"trace id: {e.TraceId ?? "-"} request id: {e.RequestId ?? "-"}");
        if (m.Count > 1) text.Append(CultureInfo.InvariantCulture, $" (latest: trace id {m.Last.TraceId ?? "-"} request id {m.Last.RequestId ?? "-"})");
        text.Append(CultureInfo.InvariantCulture, $"\nreplica: {replica} fingerprint: {m.Fingerprint}");
        return text.ToString();
    }

    /// <summary>The webhook body: Slack's <c>{"text"}</c> or Discord's <c>{"content"}</c> (2,000 characters at most,
    /// mentions disabled so an exception message cannot ping a channel).</summary>
    public static object Payload(string format, string text) => format switch
    {
        "discord" => new DiscordPayload(text.Length > 2000 ? text[..1999] + "…" : text, new DiscordMentions([])),
        _ => new SlackPayload(text),
    };

    /// <summary><c>auto</c> resolved from the URL.</summary>
    public static string ResolveFormat(string format, string url)
    {
        if (format != "auto") return format;
        var host = Uri.TryCreate(url, UriKind.Absolute, out var uri) ? uri.Host : "";
        return host.EndsWith("discord.com", StringComparison.OrdinalIgnoreCase) || host.EndsWith("discordapp.com", StringComparison.OrdinalIgnoreCase)
            ? "discord" : "slack";
    }

    sealed record SlackPayload(string Text);

    sealed record DiscordPayload(string Content, DiscordMentions AllowedMentions);

    sealed record DiscordMentions(string[] Parse);
}

/// <summary>Feeds <see cref="ErrorAlerts"/> from the logging pipeline: every entry at the configured level that
/// carries an exception (unhandled request exceptions, failed background work) counts.</summary>
internal sealed class ErrorAlertLoggerProvider(ErrorAlerts alerts, IOptions<ObservabilityOptions> options, IHttpContextAccessor http) : ILoggerProvider
{
    readonly ErrorAlerts _alerts = alerts;
    readonly LogLevel _minimumLevel = options.Value.ErrorAlerts.MinimumLevel;
    readonly IHttpContextAccessor _http = http;

    public ILogger CreateLogger(string categoryName) => new AlertLogger(this, categoryName);

    public void Dispose()
    {
    }

    sealed class AlertLogger(ErrorAlertLoggerProvider provider, string category) : ILogger
    {
        // The sender's own failures must not feed the alerts they failed to deliver.
        readonly bool _own = category.StartsWith(typeof(ErrorAlertSender).FullName!, StringComparison.Ordinal);

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => !_own && logLevel != LogLevel.None && logLevel >= provider._minimumLevel;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (exception is null || !IsEnabled(logLevel)) return;
            var context = provider._http.HttpContext;
            string? route = null;
            if (context is not null)
            {
                var pattern = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? context.Request.Path.Value;
                route = context.Request.Method + " " + pattern;
            }
            provider._alerts.Record(category, exception, route, context?.TraceIdentifier);
        }
    }
}

/// <summary>Posts closed windows to the chat webhook. Failures are logged (as warnings) and counted, not retried:
/// the next storm will be reported anyway, and a chat outage must not grow a queue.</summary>
internal sealed partial class ErrorAlertSender(ErrorAlerts alerts, IOptions<ObservabilityOptions> options, TimeProvider clock,
    IHttpClientFactory httpClients, ILogger<ErrorAlertSender> logger) : BackgroundService
{
    /// <summary>Name of the <see cref="IHttpClientFactory"/> client (configured by <see cref="AddHttpClient"/>).</summary>
    internal const string HttpClientName = "neraca-error-alerts";

    static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(200);
    static readonly TimeSpan SendTimeout = TimeSpan.FromSeconds(10);
    static readonly Counter<long> Messages = NeracaTelemetry.Meter.CreateCounter<long>("neraca.error_alerts.messages",
        description: "Error alert messages posted to the chat webhook, by result (sent, failed).");

    /// <summary>The chat client: a 10 s timeout per message and a circuit breaker that, once the chat service failed
    /// half of at least 3 messages within a minute, fails alerts at once for 30 s instead of waiting on a dead service
    /// (they are counted as failed). No retries, for the reasons above, and because a retried post can show twice.</summary>
    internal static void AddHttpClient(IServiceCollection services) =>
        services.AddHttpClient(HttpClientName, client => client.Timeout = Timeout.InfiniteTimeSpan)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
            .AddResilienceHandler("error-alerts", pipeline => pipeline
                .AddTimeout(SendTimeout)
                .AddCircuitBreaker(new HttpCircuitBreakerStrategyOptions
                {
                    FailureRatio = 0.5,
                    MinimumThroughput = 3,
                    SamplingDuration = TimeSpan.FromMinutes(1),
                    BreakDuration = TimeSpan.FromSeconds(30),
                }));

    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await Task.Delay(PollInterval, clock, ct);
                foreach (var message in alerts.TakeDue()) await SendAsync(message, ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        // Errors of the last window would otherwise die with the process.
        foreach (var message in alerts.TakeDue(flush: true)) await SendAsync(message, cancellationToken);
    }

    async Task SendAsync(ErrorAlertMessage message, CancellationToken ct)
    {
        var o = options.Value;
        var url = o.ErrorAlerts.WebhookUrl!;
        var text = ErrorAlerts.Text(message, o.ServiceName, ObservabilityModule.ReplicaIdOf(o));
        var payload = ErrorAlerts.Payload(ErrorAlerts.ResolveFormat(o.ErrorAlerts.Format, url), text);
        try
        {
            using var response = await httpClients.CreateClient(HttpClientName).PostAsJsonAsync(url, payload, ObservabilityModule.WebhookJson, ct);
            if (response.IsSuccessStatusCode)
            {
                Messages.Add(1, new KeyValuePair<string, object?>("result", "sent"));
                return;
            }
            LogRejected(logger, (int)response.StatusCode, message.Fingerprint, message.Count);
        }
        // ExecutionRejectedException: the timeout elapsed or the circuit is open.
        catch (Exception e) when (e is HttpRequestException or ExecutionRejectedException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            LogUnreachable(logger, e.Message, message.Fingerprint, message.Count);
        }
        Messages.Add(1, new KeyValuePair<string, object?>("result", "failed"));
    }

    [LoggerMessage(1, LogLevel.Warning, "Chat webhook answered {Status}; error alert {Fingerprint} ({Count} occurrences) not delivered")]
    static partial void LogRejected(ILogger logger, int status, string fingerprint, long count);

    [LoggerMessage(2, LogLevel.Warning, "Chat webhook unreachable ({Reason}); error alert {Fingerprint} ({Count} occurrences) not delivered")]
    static partial void LogUnreachable(ILogger logger, string reason, string fingerprint, long count);
}
