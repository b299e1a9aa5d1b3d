using System.Net;
using System.Text.Json;
using Neraca.Payouts.Provider;

namespace Neraca.Payouts.Sandbox;

/// <summary>The sandbox's HTTP API, one routing for both ways it is reached: over the network
/// (<see cref="SandboxHost"/>) and in process (<see cref="SandboxHandler"/>, the server's built-in sandbox).</summary>
public static class SandboxRouter
{
    /// <summary>Largest request body read, in bytes.</summary>
    public const int BodyBytesMax = 64 * 1024;

    public static SandboxProvider.Reply Route(SandboxProvider provider, string method, string path, string? authorization, string? idempotencyKey,
        ReadOnlySpan<byte> body)
    {
        path = path.TrimEnd('/');
        if (method == "GET" && path == "/sandbox/paid") return new SandboxProvider.Reply(200, new { data = provider.Paid() });
        if (!provider.Authorized(authorization)) return new SandboxProvider.Reply(401, new ProviderError(ProviderErrorCodes.Unauthorized, "Bad or missing API key."));
        const string disbursements = "/v1/disbursements";
        if (method == "POST" && path == disbursements)
            return Parse<CreateDisbursement>(body, out var create) ? provider.Create(idempotencyKey, create) : Invalid();
        if (method == "GET" && path.StartsWith(disbursements + "/", StringComparison.Ordinal))
            return provider.Get(Uri.UnescapeDataString(path[(disbursements.Length + 1)..]));
        if (method == "POST" && path == "/v1/account-inquiries")
            return Parse<AccountInquiry>(body, out var inquiry) ? provider.Inquire(inquiry) : Invalid();
        return new SandboxProvider.Reply(404, new ProviderError("ROUTE_NOT_FOUND", $"No route {method} {path}."));
    }

    static bool Parse<T>(ReadOnlySpan<byte> body, out T? value) where T : class
    {
        try
        {
            value = JsonSerializer.Deserialize<T>(body, ProviderJson.Options);
            return value is not null;
        }
        catch (JsonException)
        {
            value = null;
            return false;
        }
    }

    static SandboxProvider.Reply Invalid() => new(400, new ProviderError(ProviderErrorCodes.ValidationError, "The body is not the expected JSON."));
}

/// <summary>The built-in sandbox as the provider client's primary handler: the adapter's requests, resilience pipeline
/// and answer parsing run exactly as against a remote provider, without a socket.</summary>
public sealed class SandboxHandler(SandboxProvider provider, TimeProvider time) : HttpMessageHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
    {
        var body = request.Content is null ? [] : await request.Content.ReadAsByteArrayAsync(ct);
        var reply = SandboxRouter.Route(provider, request.Method.Method, request.RequestUri!.AbsolutePath,
            request.Headers.Authorization?.ToString(), request.Headers.TryGetValues("Idempotency-Key", out var keys) ? keys.FirstOrDefault() : null, body);
        if (reply.Hold > TimeSpan.Zero) await Task.Delay(reply.Hold, time, ct);
        return new HttpResponseMessage((HttpStatusCode)reply.Status)
        {
            Content = JsonContent.Create(reply.Body, reply.Body.GetType(), options: ProviderJson.Options),
            RequestMessage = request,
        };
    }
}
