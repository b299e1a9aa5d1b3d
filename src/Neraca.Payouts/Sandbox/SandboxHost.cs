using System.Globalization;
using Microsoft.Extensions.Options;

namespace Neraca.Payouts.Sandbox;

/// <summary><c>neraca sandbox payouts --port N</c>: the sandbox provider as its own process, for tests, the benchmark
/// and demos that want the provider across a network (timeouts and 5xx as a client really sees them).</summary>
public static class SandboxHost
{
    static readonly Dictionary<string, string> Switches = new(StringComparer.OrdinalIgnoreCase)
    {
        ["--latency-ms"] = "Sandbox:LatencyMs",
        ["--invalid-account-share"] = "Sandbox:InvalidAccountShare",
        ["--insufficient-balance-share"] = "Sandbox:InsufficientBalanceShare",
        ["--timeout-share"] = "Sandbox:TimeoutShare",
        ["--server-error-share"] = "Sandbox:ServerErrorShare",
        ["--timeout-hang-ms"] = "Sandbox:TimeoutHangMs",
        ["--callback-url"] = "Sandbox:CallbackUrl",
        ["--callback-secret"] = "Sandbox:CallbackSecret",
        ["--api-key"] = "Sandbox:ApiKey",
        ["--callback-attempts-max"] = "Sandbox:CallbackAttemptsMax",
        ["--seed"] = "Sandbox:Seed",
        ["--port"] = "port",
        ["--host"] = "host",
    };

    public const string Usage = """
        Usage: neraca sandbox payouts --port N [--host 127.0.0.1] [--latency-ms 1000] [--callback-url URL --callback-secret S]
                 [--api-key K] [--invalid-account-share 0.1] [--insufficient-balance-share 0.05] [--timeout-share 0.1]
                 [--server-error-share 0.05] [--timeout-hang-ms 30000] [--callback-attempts-max 5] [--seed N]
        (or environment variables NERACA_SANDBOX__LATENCYMS=200, NERACA_SANDBOX__CALLBACKSECRET=...; docs/payouts.md)
        """;

    /// <summary>Runs until SIGTERM/Ctrl+C. <paramref name="args"/> start with the sandbox's kind (<c>payouts</c>).</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length == 0 || args[0] != "payouts")
        {
            await Console.Error.WriteLineAsync(Usage);
            return 64;
        }
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args[1..], ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.AddEnvironmentVariables("NERACA_"); // NERACA_SANDBOX__LATENCYMS=200
        builder.Configuration.AddCommandLine(args[1..], Switches);
        var port = builder.Configuration["port"];
        if (string.IsNullOrEmpty(port) || !int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var p) || p is < 1 or > 65535)
        {
            await Console.Error.WriteLineAsync("--port N (1-65535) is required.\n" + Usage);
            return 64;
        }
        builder.WebHost.UseUrls($"http://{builder.Configuration["host"] ?? "127.0.0.1"}:{p}");
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddOptions<SandboxOptions>().Bind(builder.Configuration.GetSection("Sandbox")).ValidateDataAnnotations()
            .Validate(o => o.CallbackUrl is null || Uri.TryCreate(o.CallbackUrl, UriKind.Absolute, out _), "Sandbox:CallbackUrl must be an absolute URL.")
            .Validate(o => o.CallbackUrl is null || !string.IsNullOrEmpty(o.CallbackSecret), "Sandbox:CallbackSecret is required with a callback URL.");
        builder.Services.AddHttpClient("sandbox-callbacks", c => c.Timeout = TimeSpan.FromSeconds(10));
        builder.Services.AddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<SandboxOptions>>().Value;
            var clients = sp.GetRequiredService<IHttpClientFactory>();
            return new SandboxProvider(o, TimeProvider.System, o.CallbackUrl is null ? null : async (body, signature, ct) =>
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, o.CallbackUrl) { Content = new ByteArrayContent(body) };
                request.Content.Headers.ContentType = new("application/json");
                request.Headers.Add(Provider.CallbackSignature.Header, signature);
                using var response = await clients.CreateClient("sandbox-callbacks").SendAsync(request, ct);
                return response.IsSuccessStatusCode;
            });
        });

        SandboxProvider provider;
        await using var app = builder.Build();
        try
        {
            provider = app.Services.GetRequiredService<SandboxProvider>();
        }
        catch (OptionsValidationException e)
        {
            await Console.Error.WriteLineAsync("Invalid configuration: " + string.Join(" ", e.Failures));
            return 2;
        }
        app.MapGet("/health", () => Results.Ok(new { status = "ok" }));
        app.Map("/{**path}", async (HttpContext context) =>
        {
            var request = context.Request;
            if (request.ContentLength > SandboxRouter.BodyBytesMax) return Results.StatusCode(413);
            using var buffer = new MemoryStream();
            await request.Body.CopyToAsync(buffer, context.RequestAborted);
            var reply = SandboxRouter.Route(provider, request.Method, request.Path.Value ?? "/", request.Headers.Authorization.FirstOrDefault(),
                request.Headers["Idempotency-Key"].FirstOrDefault(), buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
            if (reply.Hold > TimeSpan.Zero)
            {
                try { await Task.Delay(reply.Hold, context.RequestAborted); }
                catch (OperationCanceledException) { return Results.Empty; } // the client gave up waiting: the point of a timeout
            }
            return Results.Json(reply.Body, Provider.ProviderJson.Options, statusCode: reply.Status);
        });
        app.Lifetime.ApplicationStopping.Register(provider.Stop);
        app.Lifetime.ApplicationStarted.Register(() => Console.WriteLine(
            $"Payout sandbox on http://{builder.Configuration["host"] ?? "127.0.0.1"}:{p} (latency {provider.Options.LatencyMs} ms, callbacks to {provider.Options.CallbackUrl ?? "nowhere"})"));
        await app.RunAsync();
        return 0;
    }
}
