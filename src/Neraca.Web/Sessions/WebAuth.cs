using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Neraca.Auth;
using Neraca.Caching;
using Neraca.RateLimiting;
using Neraca.Tenancy;

namespace Neraca.Web.Sessions;

/// <summary>Policy names of the web app. A page says which it needs with <c>@attribute [Authorize(Policy = ...)]</c>; the
/// authorization middleware authenticates that policy's cookie scheme, so <c>HttpContext.User</c> (and therefore
/// <see cref="CurrentCaller"/>) is the signed-in operator or end user, with the claims an API key or a token would give.</summary>
public static class WebPolicies
{
    /// <summary>An operator signed in with any valid API key of its tenant.</summary>
    public const string Operator = "web:operator";
    /// <summary>An operator whose key holds <c>scope</c> (or <c>admin</c>): <c>web:operator:ledger:read</c>, ...</summary>
    public static string OperatorWith(string scope) => Operator + ":" + scope;
    public const string OperatorLedgerRead = Operator + ":" + Scopes.LedgerRead;
    public const string OperatorAuditRead = Operator + ":" + Scopes.AuditRead;
    public const string OperatorWebhooks = Operator + ":" + Scopes.WebhooksWrite;
    public const string OperatorAdmin = Operator + ":" + Scopes.Admin;
    /// <summary>An end user signed in with a one-time sign-in code.</summary>
    public const string User = "web:user";
}

/// <summary>The two sessions of the web app, each an ASP.NET Core cookie (HttpOnly, SameSite=Strict, Secure when the
/// request is HTTPS) sealed by <see cref="DerivedDataProtectionProvider"/>, so any replica reads any replica's cookie:
/// <list type="bullet">
/// <item>operators (<c>/operator</c>): signed in with an API key, validated as the API validates it. The cookie keeps the
/// key's SHA-256, never the key, and every request looks the key up again through the same versioned cache as the API,
/// so a revoked or expired key ends its sessions on every replica at once;</item>
/// <item>end users (<c>/app</c>): a one-time sign-in code a tenant's backend created (<see cref="SignInCodes"/>) starts an
/// end-user token session (<see cref="TokenService"/>); the cookie keeps its access and refresh tokens, and every request
/// checks that session is still active, so revoking the subject's sessions signs the browser out.</item>
/// </list></summary>
public static class WebAuth
{
    public const string OperatorScheme = "WebOperator";
    public const string UserScheme = "WebUser";
    public const string OperatorCookie = "neraca_operator";
    public const string UserCookie = "neraca_user";
    /// <summary>Hex SHA-256 of the operator's API key (what the API's key cache is keyed by).</summary>
    public const string KeyHashClaim = "neraca:web:key_hash";
    /// <summary>The end user's token session (<c>sid</c>).</summary>
    public const string SessionClaim = "neraca:web:sid";
    public static readonly TimeSpan OperatorSessionLifetime = TimeSpan.FromHours(8);

    internal static void Add(IServiceCollection services)
    {
        services.AddAuthentication()
            .AddCookie(OperatorScheme, o =>
            {
                Configure(o, OperatorCookie, "/operator", "/operator/sign-in", OperatorSessionLifetime);
                o.Events.OnValidatePrincipal = ValidateOperatorAsync;
            })
            .AddCookie(UserScheme, o =>
            {
                Configure(o, UserCookie, "/app", "/app/sign-in", TimeSpan.FromDays(30));
                o.Events.OnValidatePrincipal = ValidateUserAsync;
            });
        // Bounded by the refresh token's lifetime (a session ends when its token could no longer be refreshed).
        services.AddOptions<CookieAuthenticationOptions>(UserScheme).Configure<IOptions<AuthOptions>>((o, auth) =>
            o.ExpireTimeSpan = TimeSpan.FromSeconds(auth.Value.RefreshTokenSeconds));

        var policies = services.AddAuthorizationBuilder();
        policies.AddPolicy(WebPolicies.Operator, p => p.AddAuthenticationSchemes(OperatorScheme).RequireAuthenticatedUser()
            .RequireClaim(NeracaClaims.KeyId));
        foreach (var scope in Scopes.All)
            policies.AddPolicy(WebPolicies.OperatorWith(scope), p => p.AddAuthenticationSchemes(OperatorScheme).RequireAuthenticatedUser()
                .RequireClaim(NeracaClaims.KeyId).RequireAssertion(c => HasScope(c.User, scope)));
        policies.AddPolicy(WebPolicies.User, p => p.AddAuthenticationSchemes(UserScheme).RequireAuthenticatedUser()
            .RequireClaim(NeracaClaims.Subject));
    }

    static void Configure(CookieAuthenticationOptions o, string name, string path, string signInPath, TimeSpan lifetime)
    {
        o.Cookie.Name = name;
        o.Cookie.Path = path;
        o.Cookie.HttpOnly = true;
        o.Cookie.SameSite = SameSiteMode.Strict;
        o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
        o.Cookie.IsEssential = true;
        o.LoginPath = signInPath;
        o.LogoutPath = path + "/sign-out";
        o.AccessDeniedPath = path + "/forbidden";
        o.ReturnUrlParameter = "return";
        o.ExpireTimeSpan = lifetime;
        o.SlidingExpiration = false;
    }

    /// <summary>What the API's policies check: the scope, or <c>admin</c>, which implies every scope.</summary>
    public static bool HasScope(ClaimsPrincipal user, string scope) =>
        user.HasClaim(NeracaClaims.Scope, scope) || user.HasClaim(NeracaClaims.Scope, Scopes.Admin);

    /// <summary>Signs an operator in with an API key; returns the problem code when it is refused
    /// (<c>invalid_api_key</c>, <c>rate_limited</c>). Attempts are limited per IP as unauthenticated API calls are.</summary>
    public static async Task<string?> SignInOperatorAsync(HttpContext context, string? key)
    {
        var services = context.RequestServices;
        var limits = services.GetRequiredService<IOptions<RateLimitOptions>>().Value;
        var ip = context.Connection.RemoteIpAddress?.ToString() ?? "unknown";
        var decision = await services.GetRequiredService<DistributedRateLimiter>().TakeAsync(CompositeKey.Of("web-sign-in", ip),
            new BucketPolicy("web_sign_in", limits.IpPerMinute, limits.IpPerMinute));
        if (!decision.Allowed) return "rate_limited";
        key = key?.Trim();
        if (!ApiKey.IsWellFormed(key)) return "invalid_api_key";
        var hashHex = Convert.ToHexString(ApiKey.Hash(key!));
        var identity = await FindKeyAsync(services, hashHex, context.RequestAborted);
        if (identity is null || !identity.IsUsableAt(services.GetRequiredService<TimeProvider>().GetUtcNow())) return "invalid_api_key";
        await context.SignInAsync(OperatorScheme, OperatorPrincipal(identity, hashHex));
        return null;
    }

    /// <summary>Starts an end user's browser session from a token pair issued for <paramref name="subject"/>.</summary>
    public static Task SignInUserAsync(HttpContext context, string tenantId, string subject, TokenPair pair)
    {
        // Just issued by us: the session id is read, not validated, from the access token.
        var sessionId = new JsonWebToken(pair.AccessToken).GetClaim(EndUserClaims.Session).Value;
        var claims = new List<Claim>
        {
            new(NeracaClaims.TenantId, tenantId),
            new(NeracaClaims.Subject, subject),
            new(SessionClaim, sessionId),
        };
        foreach (var s in pair.Scope.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            if (Scopes.EndUser.Contains(s)) claims.Add(new Claim(NeracaClaims.Scope, s));
        var properties = new AuthenticationProperties();
        properties.StoreTokens([
            new AuthenticationToken { Name = "access_token", Value = pair.AccessToken },
            new AuthenticationToken { Name = "refresh_token", Value = pair.RefreshToken },
        ]);
        return context.SignInAsync(UserScheme, new ClaimsPrincipal(new ClaimsIdentity(claims, UserScheme)), properties);
    }

    /// <summary>Ends the end user's session everywhere (its refresh token family is revoked), then the cookie.</summary>
    public static async Task SignOutUserAsync(HttpContext context)
    {
        var result = await context.AuthenticateAsync(UserScheme);
        if (result.Properties?.GetTokenValue("refresh_token") is { } refresh)
            await context.RequestServices.GetRequiredService<TokenService>().RevokeAsync(refresh, context.RequestAborted);
        await context.SignOutAsync(UserScheme);
    }

    static ClaimsPrincipal OperatorPrincipal(ApiKeyIdentity identity, string hashHex)
    {
        var claims = new List<Claim>(identity.ScopeList.Count + 3)
        {
            new(NeracaClaims.TenantId, identity.TenantId),
            new(NeracaClaims.KeyId, identity.KeyId),
            new(KeyHashClaim, hashHex),
        };
        foreach (var scope in identity.ScopeList) claims.Add(new Claim(NeracaClaims.Scope, scope));
        return new ClaimsPrincipal(new ClaimsIdentity(claims, OperatorScheme));
    }

    /// <summary>The key as the API's authentication handler finds it: same cache entry, same versioned scope.</summary>
    static ValueTask<ApiKeyIdentity?> FindKeyAsync(IServiceProvider services, string hashHex, CancellationToken ct)
    {
        var tenants = services.GetRequiredService<TenantStore>();
        var scope = ApiKeyAuthenticationHandler.CacheScope(hashHex);
        return services.GetRequiredService<NeracaCache>().GetOrLoadAsync("api_key", scope, scope,
            token => tenants.FindKeyByHashAsync(Convert.FromHexString(hashHex), token), ct, trustNull: true);
    }

    static async Task ValidateOperatorAsync(CookieValidatePrincipalContext context)
    {
        var principal = context.Principal;
        var hashHex = principal?.FindFirstValue(KeyHashClaim);
        var services = context.HttpContext.RequestServices;
        var identity = hashHex is { Length: 64 } ? await FindKeyAsync(services, hashHex, context.HttpContext.RequestAborted) : null;
        if (identity is null || !identity.IsUsableAt(services.GetRequiredService<TimeProvider>().GetUtcNow())
            || identity.TenantId != principal!.FindFirstValue(NeracaClaims.TenantId))
        {
            context.RejectPrincipal();
            await context.HttpContext.SignOutAsync(OperatorScheme);
            return;
        }
        context.ReplacePrincipal(OperatorPrincipal(identity, hashHex!));
    }

    static async Task ValidateUserAsync(CookieValidatePrincipalContext context)
    {
        var tenant = context.Principal?.FindFirstValue(NeracaClaims.TenantId);
        var session = context.Principal?.FindFirstValue(SessionClaim);
        var tokens = context.HttpContext.RequestServices.GetRequiredService<TokenService>();
        if (tenant is null || session is null || !await tokens.IsSessionActiveAsync(tenant, session, context.HttpContext.RequestAborted))
        {
            context.RejectPrincipal();
            await context.HttpContext.SignOutAsync(UserScheme);
        }
    }
}
