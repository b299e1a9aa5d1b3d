using System.ComponentModel.DataAnnotations;

namespace Neraca.Observability;

/// <summary>Traces, metrics and error alerts, bound from the <c>Observability</c> section
/// (<c>NERACA_OBSERVABILITY__OTLP_ENDPOINT</c>, <c>--Observability:Metrics:Port=9464</c>...).</summary>
public sealed class ObservabilityOptions
{
    public const string Section = "Observability";

    /// <summary>The <c>service.name</c> resource attribute of traces, metrics and logs. Default <c>neraca</c>.</summary>
    [Required, RegularExpression("^[A-Za-z0-9._-]{1,64}$")]
    public string ServiceName { get; set; } = "neraca";

    /// <summary>The <c>service.instance.id</c> resource attribute: which replica emitted the telemetry. Default
    /// <c>{machine name}-{process id}</c> (on Kubernetes the machine name is the pod name).</summary>
    [RegularExpression("^[A-Za-z0-9._:-]{1,128}$")]
    public string? ReplicaId { get; set; }

    /// <summary>OTLP collector endpoint (<c>http://collector:4317</c> for gRPC, <c>http://collector:4318</c> for
    /// HTTP/protobuf). Empty (default) exports nothing over OTLP, unless the standard
    /// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> environment variable is set.</summary>
    public string? OtlpEndpoint { get; set; }

    /// <summary><c>grpc</c> (default) or <c>http/protobuf</c>.</summary>
    [RegularExpression("^(grpc|http/protobuf)$")]
    public string OtlpProtocol { get; set; } = "grpc";

    /// <summary>Fraction of new traces recorded (a caller's sampling decision in <c>traceparent</c> is kept). Default 1.</summary>
    [Range(0.0, 1.0)]
    public double TraceSampleRatio { get; set; } = 1.0;

    /// <summary>Where Prometheus scrapes.</summary>
    public MetricsEndpointOptions Metrics { get; set; } = new();

    /// <summary>Chat messages for unhandled exceptions.</summary>
    public ErrorAlertOptions ErrorAlerts { get; set; } = new();

    /// <summary>Optional Sentry DSN; when set, errors are also reported to Sentry. Default none.</summary>
    public string? SentryDsn { get; set; }

    /// <summary>TEST ONLY. Maps <c>GET /_test/fail</c>, which throws an unhandled exception, so tests can drive the
    /// error path through a real request. Never enable in production. Default false.</summary>
    public bool TestEndpoints { get; set; }
}

/// <summary>The Prometheus scrape endpoint. By default it is served on the main port to loopback callers only
/// (a sidecar or node agent); set <see cref="Port"/> to serve it on a separate port instead, or
/// <see cref="BearerToken"/> to let remote scrapers in with <c>Authorization: Bearer TOKEN</c>.</summary>
public sealed class MetricsEndpointOptions
{
    /// <summary>Serve metrics at all. Default true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Path of the scrape endpoint. Default <c>/metrics</c>.</summary>
    [Required, RegularExpression("^/[A-Za-z0-9/_.-]{1,64}$")]
    public string Path { get; set; } = "/metrics";

    /// <summary>A separate port that serves only the metrics path (on the same interfaces as the main URL unless
    /// <see cref="Host"/> says otherwise); the main port then does not serve metrics. 0 (default) = main port.</summary>
    [Range(0, 65535)]
    public int Port { get; set; }

    /// <summary>Interface of the separate metrics port. Default <c>0.0.0.0</c> (every interface: a scraper on
    /// another machine can reach it; keep the port off the public load balancer).</summary>
    [Required]
    public string Host { get; set; } = "0.0.0.0";

    /// <summary>On the main port: a scraper that sends <c>Authorization: Bearer</c> with this token is let in from
    /// anywhere. Empty (default) = loopback callers only. At least 16 characters; set it from a secret, never in a committed
    /// file.</summary>
    public string? BearerToken { get; set; }
}

/// <summary>Unhandled exceptions (any log entry at <see cref="MinimumLevel"/> with an exception) posted to a chat
/// webhook, one message per fingerprint per window carrying how many times it happened.</summary>
public sealed class ErrorAlertOptions
{
    /// <summary>Incoming-webhook URL of a Slack channel or a Discord channel. Empty (default) = no chat alerts.</summary>
    public string? WebhookUrl { get; set; }

    /// <summary><c>auto</c> (default: Discord payload for discord.com/discordapp.com URLs, Slack payload otherwise),
    /// <c>slack</c> (<c>{"text": ...}</c>) or <c>discord</c> (<c>{"content": ...}</c>).</summary>
    [RegularExpression("^(auto|slack|discord)$")]
    public string Format { get; set; } = "auto";

    /// <summary>Identical errors (same fingerprint) seen within this many seconds of the first become one message
    /// with their count, sent when the window closes. Default 60.</summary>
    [Range(1, 3600)]
    public int WindowSeconds { get; set; } = 60;

    /// <summary>Most messages sent per minute over all fingerprints; the rest wait for the next minute, still
    /// counting. Default 20.</summary>
    [Range(1, 1000)]
    public int MessagesPerMinuteMax { get; set; } = 20;

    /// <summary>Most distinct fingerprints held at once; beyond it errors fold into one "other errors" message.
    /// Default 200.</summary>
    [Range(1, 10_000)]
    public int FingerprintsMax { get; set; } = 200;

    /// <summary>Lowest log level that alerts. Default Error.</summary>
    public LogLevel MinimumLevel { get; set; } = LogLevel.Error;
}
