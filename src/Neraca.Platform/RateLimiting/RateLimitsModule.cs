using System.Globalization;
using System.Security.Claims;
using Microsoft.Extensions.Options;
using Neraca.Auth;
using Neraca.Caching;
using Neraca.Tenancy;

namespace Neraca.RateLimiting;

public static class RateLimitsModule
{
    public static WebApplicationBuilder AddRateLimits(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<RateLimitOptions>().Bind(builder.Configuration.GetSection("RateLimits")).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<DistributedRateLimiter>();
        return builder;
    }

    /// <summary>Limits every <c>/v1</c> request after authentication: per API key, per end user, or per IP without valid
    /// credentials (anonymous routes, and failed authentication so that guessing keys is throttled);
    /// writes also take a concurrency slot. Rejections are 429 <c>rate_limited</c> problems with <c>Retry-After</c>,
    /// <c>RateLimit</c> and <c>RateLimit-Policy</c> headers; allowed responses carry the two RateLimit headers too.</summary>
    public static WebApplication UseRateLimits(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<IOptions<RateLimitOptions>>().Value;
        if (!options.Enabled) return app;
        app.UseWhen(c => c.Request.Path.StartsWithSegments("/v1"), v1 => v1.Use(LimitAsync));
        return app;
    }

    static async Task LimitAsync(HttpContext context, RequestDelegate next)
    {
        var limiter = context.RequestServices.GetRequiredService<DistributedRateLimiter>();
        var options = context.RequestServices.GetRequiredService<IOptions<RateLimitOptions>>().Value;
        var (partition, policy, writeLimit) = Classify(context.User, context, options);

        var decision = await limiter.TakeAsync(partition, policy);
        context.Response.Headers["RateLimit-Policy"] = $"\"{policy.Name}\";q={policy.PerMinute};w=60";
        context.Response.Headers["RateLimit"] = string.Create(CultureInfo.InvariantCulture,
            $"\"{policy.Name}\";r={decision.Remaining};t={(decision.Allowed ? decision.ResetSeconds : decision.RetryAfterSeconds)}");
        if (!decision.Allowed)
        {
            await RejectAsync(context, decision.RetryAfterSeconds, $"More than {policy.PerMinute} requests per minute for this {Describe(policy.Name)}.");
            return;
        }
        if (writeLimit is not { } limit || !IsWrite(context.Request.Method))
        {
            await next(context);
            return;
        }
        var lease = await limiter.AcquireWriteAsync(partition, limit);
        if (lease is null)
        {
            await RejectAsync(context, 1, $"More than {limit} write requests in flight for this {Describe(policy.Name)}.");
            return;
        }
        await using (lease) await next(context);
    }

    static (string Partition, BucketPolicy Policy, int? WriteLimit) Classify(ClaimsPrincipal user, HttpContext context, RateLimitOptions o)
    {
        var tenant = user.FindFirstValue(NeracaClaims.TenantId);
        var overrides = tenant is not null && o.Tenants.TryGetValue(tenant, out var t) ? t : null;
        if (user.FindFirstValue(NeracaClaims.KeyId) is { } keyId)
        {
            var perMinute = overrides?.ApiKeyPerMinute ?? o.ApiKeyPerMinute;
            var burst = overrides?.ApiKeyBurst ?? (overrides?.ApiKeyPerMinute is not null ? null : o.ApiKeyBurst) ?? perMinute;
            return (CompositeKey.Of("key", keyId), new BucketPolicy("api_key", perMinute, burst), overrides?.WriteConcurrency ?? o.WriteConcurrency);
        }
        if (tenant is not null && user.FindFirstValue(EndUserClaims.Subject) is { } subject)
        {
            var perMinute = overrides?.UserPerMinute ?? o.UserPerMinute;
            var burst = overrides?.UserBurst ?? (overrides?.UserPerMinute is not null ? null : o.UserBurst) ?? perMinute;
            return (CompositeKey.Of("user", tenant, subject), new BucketPolicy("user", perMinute, burst), overrides?.WriteConcurrency ?? o.WriteConcurrency);
        }
        // Behind a load balancer, configure forwarded headers so this is the client's address, not the balancer's.
        var ip = context.Connection.RemoteIpAddress?.ToString() ?? "unknown";
        return (CompositeKey.Of("ip", ip), new BucketPolicy("ip", o.IpPerMinute, o.IpPerMinute), null);
    }

    static string Describe(string policy) => policy switch
    {
        "api_key" => "API key",
        "user" => "user",
        _ => "client address",
    };

    static bool IsWrite(string method) => HttpMethods.IsPost(method) || HttpMethods.IsPut(method) || HttpMethods.IsPatch(method) || HttpMethods.IsDelete(method);

    static Task RejectAsync(HttpContext context, int retryAfterSeconds, string detail)
    {
        context.Response.Headers.RetryAfter = Math.Max(1, retryAfterSeconds).ToString(CultureInfo.InvariantCulture);
        return ApiKeyAuthenticationHandler.WriteProblemAsync(context, 429, "rate_limited", "Too many requests", detail);
    }
}
