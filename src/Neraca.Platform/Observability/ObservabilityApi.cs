using Microsoft.Extensions.Options;

namespace Neraca.Observability;

public static class ObservabilityApi
{
    /// <summary>Observability serves its scrape endpoint from the front of the pipeline (see
    /// <see cref="MetricsEndpointStartupFilter"/>); the only route here is the TEST-ONLY <c>GET /_test/fail</c>, mapped
    /// when <see cref="ObservabilityOptions.TestEndpoints"/> is set, which throws so tests can drive real unhandled
    /// exceptions through the error path (log, problem+json, chat alert).</summary>
    public static IEndpointRouteBuilder MapObservabilityApi(this IEndpointRouteBuilder app)
    {
        var options = app.ServiceProvider.GetRequiredService<IOptions<ObservabilityOptions>>().Value;
        if (options.TestEndpoints)
            app.MapGet("/_test/fail", Fail).AllowAnonymous().ExcludeFromDescription();
        return app;
    }

    static IResult Fail(string? kind) => kind switch
    {
        "argument" => throw new ArgumentException("Test failure (argument) from /_test/fail."),
        _ => throw new InvalidOperationException("Test failure from /_test/fail."),
    };
}
