using System.Diagnostics.Metrics;
using System.Reflection;
using System.Security.Claims;
using System.Text.Json;
using Neraca.Caching;
using Neraca.Hosting;
using Neraca.Tenancy;
using Npgsql;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Neraca.Observability;

/// <summary>OpenTelemetry traces and metrics (ASP.NET Core, HttpClient, Npgsql, Redis, Neraca's own source and
/// meter), the Prometheus scrape endpoint, OTLP export, trace ids in logs, and error alerts to chat and Sentry.</summary>
public static class ObservabilityModule
{
    /// <summary>Meters exported besides <see cref="NeracaTelemetry.Name"/>: ASP.NET Core's (HTTP server metrics by route
    /// and status, Kestrel connections, exceptions, rate limiting), the runtime's, and StackExchange.Redis's own
    /// meter (present in its newer releases).</summary>
    static readonly string[] Meters =
    [
        NeracaTelemetry.Name,
        "Microsoft.AspNetCore.Hosting",
        "Microsoft.AspNetCore.Server.Kestrel",
        "Microsoft.AspNetCore.Diagnostics",
        "Microsoft.AspNetCore.RateLimiting",
        "System.Runtime",
        "StackExchange.Redis",
    ];

    /// <summary>The only attributes outgoing HTTP and DNS metrics keep. Webhook URLs are tenant data: the host name
    /// (<c>server.address</c>, <c>dns.question.name</c>) as a label would leak one tenant's endpoints to whoever sees
    /// the metrics and give every tenant a way to blow up the series count.</summary>
    internal static readonly string[] OutboundTagKeys =
        ["http.request.method", "http.response.status_code", "network.protocol.version", "url.scheme", "error.type", "http.connection.state"];

    static MetricStreamConfiguration? OutboundView(Instrument instrument)
    {
        if (instrument.Meter.Name is not ("System.Net.Http" or "System.Net.NameResolution")) return null;
        var histogram = instrument.GetType() is { IsGenericType: true } t && t.GetGenericTypeDefinition() == typeof(Histogram<>);
        return histogram ? new ExplicitBucketHistogramConfiguration { TagKeys = OutboundTagKeys } : new MetricStreamConfiguration { TagKeys = OutboundTagKeys };
    }

    /// <summary>Request latency buckets, pinned so the posting latency SLO's 250 ms threshold (<c>le="0.25"</c>) is
    /// always a bucket boundary. Same values as ASP.NET Core's advice.</summary>
    internal static readonly double[] HttpDurationBucketsSeconds = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

    /// <summary>Job durations span seconds to an hour; the SDK's default buckets are made for milliseconds. (The ledger's
    /// histograms bring their own buckets as instrument advice.)</summary>
    static readonly double[] JobDurationBucketsSeconds = [0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

    internal static readonly JsonSerializerOptions WebhookJson = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static WebApplicationBuilder AddObservability(this WebApplicationBuilder builder)
    {
        var section = builder.Configuration.GetSection(ObservabilityOptions.Section);
        builder.Services.AddOptions<ObservabilityOptions>()
            .Bind(section)
            .ValidateDataAnnotations()
            .Validate(o => o.ErrorAlerts.WebhookUrl is null or "" || Uri.TryCreate(o.ErrorAlerts.WebhookUrl, UriKind.Absolute, out var u) && u.Scheme is "http" or "https",
                "Observability:ErrorAlerts:WebhookUrl must be an absolute http(s) URL.")
            .Validate(o => o.Metrics.BearerToken is null or "" || o.Metrics.BearerToken.Length >= 16,
                "Observability:Metrics:BearerToken must be at least 16 characters (a random secret).")
            .Validate(o => o.OtlpEndpoint is null or "" || Uri.TryCreate(o.OtlpEndpoint, UriKind.Absolute, out _),
                "Observability:OtlpEndpoint must be an absolute URL such as http://collector:4317.")
            .ValidateOnStart();
        var options = section.Get<ObservabilityOptions>() ?? new ObservabilityOptions();

        // Every log line written inside a request or a span carries its TraceId and SpanId (in the JSON "Scopes").
        builder.Logging.Configure(o => o.ActivityTrackingOptions = ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId | ActivityTrackingOptions.ParentId);

        var otel = builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r
                .AddService(options.ServiceName, serviceVersion: Version, serviceInstanceId: ReplicaIdOf(options))
                .AddAttributes([
                    new("neraca.role", builder.Configuration[nameof(NeracaOptions.Role)] ?? new NeracaOptions().Role),
                    new("deployment.environment.name", builder.Environment.EnvironmentName),
                ]))
            .WithMetrics(m =>
            {
                m.AddMeter(Meters)
                    .AddHttpClientInstrumentation()
                    .AddNpgsqlInstrumentation()
                    .AddView(OutboundView)
                    .AddView("http.server.request.duration", new ExplicitBucketHistogramConfiguration { Boundaries = HttpDurationBucketsSeconds })
                    .AddView("neraca.job.duration", new ExplicitBucketHistogramConfiguration { Boundaries = JobDurationBucketsSeconds });
                if (options.Metrics.Enabled)
                {
                    m.AddPrometheusExporter(o =>
                    {
                        o.ScrapeEndpointPath = options.Metrics.Path;
                        // Pinned: dots to underscores, unit and _total suffixes. deploy/ rules and dashboards depend on it.
                        o.TranslationStrategy = PrometheusAspNetCoreTranslationStrategy.UnderscoreEscapingWithSuffixes;
                        o.DisableTotalNameSuffixForCounters = false;
                        o.ScrapeResponseCacheDurationMilliseconds = 0;
                    });
                }
            });
        if (OtlpEnabled(options))
        {
            // Spans are recorded only when something exports them: without a collector they would cost every request
            // and every database command for nothing (ASP.NET Core still gives each request a trace id for the logs).
            otel.WithTracing(t => t
                    .SetSampler(new ParentBasedSampler(new TraceIdRatioBasedSampler(options.TraceSampleRatio)))
                    .AddSource(NeracaTelemetry.Name)
                    .AddAspNetCoreInstrumentation(o =>
                    {
                        o.Filter = context => !IsInfrastructurePath(context.Request.Path, options.Metrics.Path);
                        o.RecordException = true;
                        o.EnrichWithHttpResponse = EnrichWithTenant;
                    })
                    .AddHttpClientInstrumentation(o => o.RecordException = true)
                    .AddNpgsql()
                    // Spans of the shared Redis connection (cache L2, version tokens, rate limits); none without Redis.
                    .AddRedisInstrumentation()
                    .ConfigureRedisInstrumentation((sp, redis) =>
                    {
                        if (sp.GetRequiredService<RedisConnection>().Multiplexer is { } multiplexer) redis.AddConnection(multiplexer);
                    }));
            var protocol = options.OtlpProtocol == "http/protobuf" ? OtlpExportProtocol.HttpProtobuf : OtlpExportProtocol.Grpc;
            if (string.IsNullOrWhiteSpace(options.OtlpEndpoint)) otel.UseOtlpExporter(); // the standard OTEL_EXPORTER_OTLP_* variables
            else otel.UseOtlpExporter(protocol, new Uri(options.OtlpEndpoint));
        }

        if (options.Metrics.Enabled && options.Metrics.Port != 0)
        {
            var urls = builder.WebHost.GetSetting(WebHostDefaults.ServerUrlsKey);
            var metricsUrl = $"http://{options.Metrics.Host}:{options.Metrics.Port}";
            builder.WebHost.UseUrls(string.IsNullOrEmpty(urls) ? metricsUrl : urls + ";" + metricsUrl);
        }
        builder.Services.AddSingleton<IStartupFilter, MetricsEndpointStartupFilter>();

        builder.Services.AddSingleton<ErrorAlerts>();
        if (!string.IsNullOrWhiteSpace(options.ErrorAlerts.WebhookUrl))
        {
            builder.Services.AddSingleton<ILoggerProvider, ErrorAlertLoggerProvider>();
            builder.Services.AddHostedService<ErrorAlertSender>();
            ErrorAlertSender.AddHttpClient(builder.Services);
        }

        if (!string.IsNullOrWhiteSpace(options.SentryDsn))
        {
            builder.WebHost.UseSentry(o =>
            {
                o.Dsn = options.SentryDsn;
                o.Release = Version;
                o.ServerName = ReplicaIdOf(options);
                o.SendDefaultPii = false;
                o.MinimumEventLevel = LogLevel.Error;
            });
        }
        return builder;
    }

    /// <summary><c>service.instance.id</c>: the configured replica id, else machine name and process id.</summary>
    public static string ReplicaIdOf(ObservabilityOptions options) =>
        string.IsNullOrWhiteSpace(options.ReplicaId) ? $"{Environment.MachineName}-{Environment.ProcessId}" : options.ReplicaId;

    static string Version { get; } =
        typeof(ObservabilityModule).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";

    static bool OtlpEnabled(ObservabilityOptions options) =>
        !string.IsNullOrWhiteSpace(options.OtlpEndpoint)
        || !string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT"));

    static bool IsInfrastructurePath(PathString path, string metricsPath) =>
        path.StartsWithSegments("/health") || path.Equals(metricsPath, StringComparison.Ordinal);

    /// <summary>The tenant is known only after authentication, so it is added when the response starts.</summary>
    static void EnrichWithTenant(System.Diagnostics.Activity activity, HttpResponse response)
    {
        if (response.HttpContext.User.FindFirstValue(NeracaClaims.TenantId) is { } tenant)
            activity.SetTag(NeracaTelemetry.TenantIdTag, tenant);
    }
}
