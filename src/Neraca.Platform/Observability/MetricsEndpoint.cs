using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using Neraca.Tenancy;

namespace Neraca.Observability;

/// <summary>Puts the Prometheus scrape endpoint at the very front of the pipeline, before request ids, exception
/// handling and authentication, so that a scrape is cheap, is not itself measured, and never reaches the API.
/// Who may scrape is decided here (see <see cref="MetricsEndpointOptions"/>).</summary>
internal sealed class MetricsEndpointStartupFilter(IOptions<ObservabilityOptions> options) : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        var metrics = options.Value.Metrics;
        if (metrics.Enabled)
        {
            app.UseOpenTelemetryPrometheusScrapingEndpoint(meterProvider: null,
                predicate: context => IsScrape(context, metrics),
                path: null,
                configureBranchedPipeline: branch => branch.Use((context, nextInBranch) => GuardAsync(context, nextInBranch, metrics)),
                optionsName: null);
            // The metrics port serves nothing else.
            if (metrics.Port != 0)
                app.MapWhen(context => context.Connection.LocalPort == metrics.Port, other => other.Run(NotFoundAsync));
        }
        next(app);
    };

    static bool IsScrape(HttpContext context, MetricsEndpointOptions metrics) =>
        context.Request.Path.Equals(metrics.Path, StringComparison.Ordinal)
        && (metrics.Port == 0 || context.Connection.LocalPort == metrics.Port);

    static Task GuardAsync(HttpContext context, Func<Task> next, MetricsEndpointOptions metrics)
    {
        // A scrape is not traffic: keep it out of http.server.request.duration and so out of the SLOs.
        if (context.Features.Get<IHttpMetricsTagsFeature>() is { } tags) tags.MetricsDisabled = true;
        return Allows(context, metrics) switch
        {
            Access.Allowed => next(),
            Access.NeedsToken => ApiKeyAuthenticationHandler.WriteProblemAsync(context, 401, "unauthorized", "Unauthorized",
                "Send the metrics bearer token as 'Authorization: Bearer ...'."),
            _ => NotFoundAsync(context),
        };
    }

    internal enum Access { Allowed, NeedsToken, Hidden }

    internal static Access Allows(HttpContext context, MetricsEndpointOptions metrics)
    {
        if (metrics.Port != 0) return Access.Allowed; // a separate port is protected by the network, not by us
        if (!string.IsNullOrEmpty(metrics.BearerToken) && HasToken(context.Request, metrics.BearerToken)) return Access.Allowed;
        if (IsDirectLoopbackCaller(context)) return Access.Allowed;
        return string.IsNullOrEmpty(metrics.BearerToken) ? Access.Hidden : Access.NeedsToken;
    }

    /// <summary>Loopback, and not relayed: a reverse proxy on the same machine makes every caller look local, but it
    /// says so with a forwarding header.</summary>
    static bool IsDirectLoopbackCaller(HttpContext context)
    {
        var remote = context.Connection.RemoteIpAddress;
        if (remote is null || !IPAddress.IsLoopback(remote)) return false;
        var headers = context.Request.Headers;
        return !headers.ContainsKey("X-Forwarded-For") && !headers.ContainsKey("Forwarded") && !headers.ContainsKey("X-Real-IP");
    }

    static bool HasToken(HttpRequest request, string token)
    {
        var header = request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return false;
        var given = Encoding.UTF8.GetBytes(header["Bearer ".Length..].Trim());
        return CryptographicOperations.FixedTimeEquals(given, Encoding.UTF8.GetBytes(token));
    }

    static Task NotFoundAsync(HttpContext context) =>
        ApiKeyAuthenticationHandler.WriteProblemAsync(context, 404, "not_found", "Not found", "No such resource.");
}
