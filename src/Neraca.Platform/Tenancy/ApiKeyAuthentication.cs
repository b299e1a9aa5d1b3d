using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;
using Neraca.Caching;
using Neraca.Hosting;

namespace Neraca.Tenancy;

/// <summary>Claims Neraca puts on an authenticated caller.</summary>
public static class NeracaClaims
{
    public const string TenantId = "neraca:tenant";
    public const string KeyId = "neraca:key";
    public const string Scope = "scope";
}

/// <summary>The tenant of the current request, resolved once by authentication. Every statement carries it.</summary>
public sealed class CurrentTenant(IHttpContextAccessor accessor)
{
    public string Id => accessor.HttpContext?.User.FindFirstValue(NeracaClaims.TenantId)
        ?? throw new InvalidOperationException("No authenticated tenant on this request.");
}

/// <summary><c>Authorization: Bearer nrc_...</c>. A missing, malformed, unknown, revoked or expired key all get the
/// same 401, so a caller learns nothing about which tenants or keys exist.</summary>
public sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder,
    TenantStore tenants, NeracaCache cache, TimeProvider clock)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (header.Length == 0) return AuthenticateResult.NoResult();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return AuthenticateResult.Fail("not a bearer token");
        var key = header["Bearer ".Length..].Trim();
        if (!ApiKey.IsWellFormed(key)) return AuthenticateResult.Fail("malformed key");

        // Versioned by the key's hash: a revocation or rotation through any replica retires the entry on all of them
        // before it is acknowledged (see CacheVersions), so no replica accepts a revoked key afterwards.
        var hash = Convert.ToHexString(ApiKey.Hash(key));
        var identity = await cache.GetOrLoadAsync("api_key", CacheScope(hash), CacheScope(hash),
            ct => tenants.FindKeyAsync(key, ct), Context.RequestAborted, trustNull: true);
        if (identity is null || !identity.IsUsableAt(clock.GetUtcNow())) return AuthenticateResult.Fail("unknown key");

        var claims = new List<Claim>(identity.ScopeList.Count + 2)
        {
            new(NeracaClaims.TenantId, identity.TenantId),
            new(NeracaClaims.KeyId, identity.KeyId),
        };
        foreach (var scope in identity.ScopeList) claims.Add(new Claim(NeracaClaims.Scope, scope));
        var principal = new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName));
        return AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName));
    }

    /// <summary>What a change to the key with this SHA-256 (hex) retires in the cache.</summary>
    public static string CacheScope(string keyHashHex) => CacheScopes.ApiKey(keyHashHex);

    protected override Task HandleChallengeAsync(AuthenticationProperties properties) =>
        WriteProblemAsync(Context, 401, "unauthorized", "Unauthorized", "Send a valid API key ('Authorization: Bearer nrc_...') or end-user access token.");

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        WriteProblemAsync(Context, 403, "insufficient_scope", "Forbidden", "The API key or token lacks the scope this operation needs.");

    internal static async Task WriteProblemAsync(HttpContext context, int status, string code, string title, string detail)
    {
        context.Response.StatusCode = status;
        if (status == 401) context.Response.Headers.WWWAuthenticate = "Bearer";
        var problems = context.RequestServices.GetRequiredService<IProblemDetailsService>();
        var problem = new Microsoft.AspNetCore.Mvc.ProblemDetails { Status = status, Title = title, Detail = detail, Type = Problems.TypeFor(code) };
        problem.Extensions["code"] = code;
        await problems.WriteAsync(new ProblemDetailsContext { HttpContext = context, ProblemDetails = problem });
    }
}

public static class TenancyModule
{
    /// <summary>Policies named after the scope they require; admin implies every scope.</summary>
    public static WebApplicationBuilder AddTenancy(this WebApplicationBuilder builder)
    {
        builder.Services.AddHttpContextAccessor();
        builder.Services.AddSingleton<TenantStore>();
        builder.Services.AddScoped<CurrentTenant>();
        builder.Services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        builder.Services.AddAuthorizationBuilder()
            .SetDefaultPolicy(new AuthorizationPolicyBuilder().RequireAuthenticatedUser().Build())
            .SetFallbackPolicy(null);
        var authorization = builder.Services.AddAuthorizationBuilder();
        foreach (var scope in Scopes.All)
            authorization.AddPolicy(scope, p => p.RequireAuthenticatedUser().RequireAssertion(c =>
                c.User.HasClaim(NeracaClaims.Scope, scope) || c.User.HasClaim(NeracaClaims.Scope, Scopes.Admin)));
        return builder;
    }
}
