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
    /// <summary>The end user's id (an end-user token's <c>sub</c>); absent on server API keys.</summary>
    public const string Subject = "neraca:subject";
}

/// <summary>The tenant of the current request, resolved once by authentication. Every statement carries it.</summary>
public sealed class CurrentTenant(IHttpContextAccessor accessor)
{
    public string Id => accessor.HttpContext?.User.FindFirstValue(NeracaClaims.TenantId)
        ?? throw new InvalidOperationException("No authenticated tenant on this request.");
}

/// <summary>Who is calling, resolved once per request from authentication: a server (an API key, tenant-wide by its
/// scopes) or an end user (a token's subject, restricted to what the subject owns). Products use it as the ledger does:
/// an employee, a split-bill member and a customer are subjects; a product maps its people to subjects and the ledger
/// accounts they own, and asks the ledger "as this subject" (<c>ILedger.For(subject)</c>) for end-user requests.</summary>
public sealed class CurrentCaller(IHttpContextAccessor accessor)
{
    (string TenantId, string? Subject)? _resolved;

    public string TenantId => Resolve().TenantId;

    /// <summary>The end user's subject, or null for a server API key.</summary>
    public string? Subject => Resolve().Subject;

    public bool IsEndUser => Subject is not null;

    (string TenantId, string? Subject) Resolve()
    {
        if (_resolved is { } r) return r;
        var user = accessor.HttpContext?.User ?? throw new InvalidOperationException("No request.");
        var tenant = user.FindFirstValue(NeracaClaims.TenantId) ?? throw new InvalidOperationException("No authenticated tenant on this request.");
        var subject = user.FindFirstValue(NeracaClaims.Subject);
        // An authenticated caller is a key or a subject, never neither: a principal without both would be tenant-wide.
        if (subject is null && user.FindFirstValue(NeracaClaims.KeyId) is null)
            throw new InvalidOperationException("The caller is neither an API key nor an end user.");
        _resolved = (tenant, subject);
        return _resolved.Value;
    }
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
        builder.Services.AddScoped<CurrentCaller>();
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
