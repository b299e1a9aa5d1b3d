using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Options;
using Polly;
using Polly.Timeout;

namespace Neraca.Payouts.Provider;

/// <summary>How a provider call ended. <see cref="Unknown"/> is the one that matters: the call may or may not have
/// reached the provider (a timeout, a dropped connection, a 5xx), so the payout's fate is asked for, never assumed.</summary>
public enum ProviderAnswerKind
{
    /// <summary>The provider has the disbursement (<see cref="ProviderAnswer.Disbursement"/>: pending or final).</summary>
    Found = 1,
    /// <summary>The provider refused it for good (a 4xx with an error code): nothing was or will be paid.</summary>
    Rejected = 2,
    /// <summary>A status query: the provider has no disbursement with this key.</summary>
    NotFound = 3,
    Unknown = 4,
}

public sealed record ProviderAnswer(ProviderAnswerKind Kind, Disbursement? Disbursement = null, string? Code = null, string? Message = null);

/// <summary>The provider adapter: a typed <see cref="HttpClient"/> with a resilience pipeline (per-attempt timeout,
/// retries with exponential backoff and jitter on timeouts, connection failures, 408/429/5xx).</summary>
/// <remarks>Every call is retried, the create too, and only because it carries the provider's idempotency key
/// (<c>Idempotency-Key</c>, derived from tenant and payout id): a create repeated after a lost answer returns the first
/// disbursement instead of paying again. A provider without such a key must not get retried creates; its bridge should
/// answer a duplicate <c>external_id</c> with the existing disbursement instead.</remarks>
public sealed class ProviderClient(HttpClient http, PayoutMetrics metrics)
{
    public const string PipelineName = "payouts-provider";

    public async Task<ProviderAnswer> CreateAsync(CreateDisbursement request, CancellationToken ct)
    {
        using var message = new HttpRequestMessage(HttpMethod.Post, "v1/disbursements")
        {
            Content = JsonContent.Create(request, options: ProviderJson.Options),
        };
        message.Headers.Add("Idempotency-Key", request.ExternalId);
        return await SendAsync("create", message, ct);
    }

    public async Task<ProviderAnswer> GetAsync(string externalId, CancellationToken ct)
    {
        using var message = new HttpRequestMessage(HttpMethod.Get, "v1/disbursements/" + Uri.EscapeDataString(externalId));
        return await SendAsync("status", message, ct);
    }

    public async Task<AccountInquiryResult?> InquireAsync(AccountInquiry inquiry, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        var outcome = "unknown";
        try
        {
            using var response = await http.PostAsJsonAsync("v1/account-inquiries", inquiry, ProviderJson.Options, ct);
            outcome = ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (!response.IsSuccessStatusCode) return null;
            return await response.Content.ReadFromJsonAsync<AccountInquiryResult>(ProviderJson.Options, ct);
        }
        catch (Exception e) when (IsUnreachable(e, ct))
        {
            return null;
        }
        finally
        {
            metrics.ProviderCall("inquiry", outcome, Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
    }

    async Task<ProviderAnswer> SendAsync(string operation, HttpRequestMessage message, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        var outcome = "unknown";
        try
        {
            using var response = await http.SendAsync(message, ct);
            outcome = ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
            return await ReadAsync(response, ct);
        }
        catch (Exception e) when (IsUnreachable(e, ct))
        {
            outcome = e is TimeoutRejectedException or TaskCanceledException ? "timeout" : "network";
            return new ProviderAnswer(ProviderAnswerKind.Unknown, Message: $"{operation}: {e.GetType().Name}: {e.Message}");
        }
        finally
        {
            metrics.ProviderCall(operation, outcome, Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
    }

    static async Task<ProviderAnswer> ReadAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var status = (int)response.StatusCode;
        if (response.IsSuccessStatusCode)
        {
            var d = await ReadJsonAsync<Disbursement>(response, ct);
            return d is null || string.IsNullOrEmpty(d.ExternalId)
                ? new ProviderAnswer(ProviderAnswerKind.Unknown, Message: $"provider answered {status} without a disbursement")
                : new ProviderAnswer(ProviderAnswerKind.Found, d);
        }
        var error = await ReadJsonAsync<ProviderError>(response, ct);
        if (response.StatusCode == HttpStatusCode.NotFound && error?.ErrorCode == ProviderErrorCodes.NotFound)
            return new ProviderAnswer(ProviderAnswerKind.NotFound, Code: error.ErrorCode, Message: error.Message);
        // A definite refusal is a 4xx with an error code. 401/403 (our credentials), 408, 409 (in progress), 429 and 5xx
        // say nothing about the disbursement: it may exist.
        var definite = status is >= 400 and < 500 and not (401 or 403 or 408 or 409 or 429) && error?.ErrorCode is { Length: > 0 };
        return definite
            ? new ProviderAnswer(ProviderAnswerKind.Rejected, Code: error!.ErrorCode, Message: error.Message)
            : new ProviderAnswer(ProviderAnswerKind.Unknown, Code: error?.ErrorCode, Message: $"provider answered {status}: {error?.Message}");
    }

    static async Task<T?> ReadJsonAsync<T>(HttpResponseMessage response, CancellationToken ct) where T : class
    {
        try
        {
            return await response.Content.ReadFromJsonAsync<T>(ProviderJson.Options, ct);
        }
        catch (JsonException)
        {
            return null;
        }
        catch (NotSupportedException)
        {
            return null; // not JSON at all (an HTML error page of a proxy)
        }
    }

    static bool IsUnreachable(Exception e, CancellationToken ct) =>
        !ct.IsCancellationRequested && e is HttpRequestException or TimeoutRejectedException or TaskCanceledException or IOException;

    /// <summary>Registers the typed client: base address and key from <see cref="ProviderOptions"/>, the resilience
    /// pipeline (retries outside, the per-attempt timeout inside), and the built-in sandbox as the primary handler when
    /// no provider URL is configured.</summary>
    internal static void Register(IServiceCollection services, bool builtInSandbox)
    {
        var client = services.AddHttpClient<ProviderClient>((sp, c) =>
        {
            var o = sp.GetRequiredService<IOptions<PayoutsOptions>>().Value.Provider;
            c.BaseAddress = new Uri(builtInSandbox ? "http://builtin-sandbox.invalid/" : o.Url!.TrimEnd('/') + "/");
            c.Timeout = Timeout.InfiniteTimeSpan; // the pipeline's timeouts
            if (!string.IsNullOrEmpty(o.ApiKey)) c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", o.ApiKey);
            c.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("Neraca-Payouts", "1"));
        });
        if (builtInSandbox)
            client.ConfigurePrimaryHttpMessageHandler(sp =>
            {
                var sandbox = sp.GetRequiredService<Sandbox.BuiltInSandbox>();
                return new Sandbox.SandboxHandler(sandbox.Provider, sandbox.Time);
            });
        else
            client.ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(2), AllowAutoRedirect = false });
        client.AddResilienceHandler(PipelineName, (pipeline, context) =>
        {
            var o = context.ServiceProvider.GetRequiredService<IOptions<PayoutsOptions>>().Value.Provider;
            if (o.RetriesMax > 0)
                pipeline.AddRetry(new HttpRetryStrategyOptions
            {
                MaxRetryAttempts = o.RetriesMax,
                Delay = TimeSpan.FromMilliseconds(o.RetryDelayMs),
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                ShouldRetryAfterHeader = true,
            });
            pipeline.AddTimeout(TimeSpan.FromMilliseconds(o.AttemptTimeoutMs));
        });
    }
}
