using System.Security.Claims;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Neraca.Tenancy;

namespace Neraca.Auth;

/// <summary>Who may call: API keys (servers, <see cref="ApiKeyAuthenticationHandler"/>) and JWT bearer tokens (end users),
/// told apart by their shape; plus the admin API for keys and the built-in token endpoint.</summary>
public static class AuthModule
{
    /// <summary>Default scheme: picks the API-key or a JWT scheme per request.</summary>
    public const string SelectorScheme = "Neraca";
    public const string BuiltInJwtScheme = "Jwt";
    public const string OidcScheme = "Oidc";

    public static WebApplicationBuilder AddAuth(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<AuthOptions>().Bind(builder.Configuration.GetSection("Auth")).ValidateDataAnnotations()
            .Validate(o => SigningKeys.IsValidConfiguredKey(o.SigningKey), "Auth:SigningKey must be base64 of at least 32 bytes.")
            .Validate(o => !o.Oidc.IsConfigured || !string.IsNullOrWhiteSpace(o.Oidc.Audience), "Auth:Oidc:Audience is required with an external issuer.")
            .Validate(o => !string.IsNullOrWhiteSpace(o.Oidc.SigningKeyPem) == false || !string.IsNullOrWhiteSpace(o.Oidc.Issuer),
                "Auth:Oidc:Issuer is required with Auth:Oidc:SigningKeyPem.")
            .Validate(o => o.Oidc.Algorithms.Length > 0 && o.Oidc.Algorithms.All(a => a.StartsWith("RS", StringComparison.Ordinal)
                || a.StartsWith("PS", StringComparison.Ordinal) || a.StartsWith("ES", StringComparison.Ordinal)),
                "Auth:Oidc:Algorithms may list only RS*, PS* and ES* algorithms.")
            .ValidateOnStart();
        builder.Services.AddSingleton<SigningKeys>();
        builder.Services.AddSingleton<TokenService>();
        builder.Services.AddSingleton<ApiKeyStore>();

        var auth = builder.Configuration.GetSection("Auth").Get<AuthOptions>() ?? new AuthOptions();
        var authentication = builder.Services.AddAuthentication(o =>
        {
            o.DefaultScheme = SelectorScheme;
            // Challenges and 403s are written by the API-key handler as problem+json, whichever scheme authenticated.
            o.DefaultChallengeScheme = ApiKeyAuthenticationHandler.SchemeName;
            o.DefaultForbidScheme = ApiKeyAuthenticationHandler.SchemeName;
        });
        authentication.AddPolicyScheme(SelectorScheme, "API key or JWT", o => o.ForwardDefaultSelector = context => Select(context, auth));
        authentication.AddJwtBearer(BuiltInJwtScheme, o =>
        {
            o.MapInboundClaims = false;
            o.TokenValidationParameters = new TokenValidationParameters
            {
                ValidIssuer = auth.Issuer,
                ValidAudience = auth.Audience,
                ValidAlgorithms = [SecurityAlgorithms.HmacSha256],
                ClockSkew = TimeSpan.FromSeconds(auth.ClockSkewSeconds),
                RequireExpirationTime = true,
                RequireSignedTokens = true,
            };
            o.Events = new JwtBearerEvents
            {
                OnMessageReceived = async context =>
                {
                    // Keys resolve synchronously during validation: make sure the shared key is loaded first.
                    await context.HttpContext.RequestServices.GetRequiredService<SigningKeys>().GetAsync(context.HttpContext.RequestAborted);
                },
                OnTokenValidated = context => MapBuiltInAsync(context),
                OnChallenge = context => { context.HandleResponse(); return ApiKeyAuthenticationHandler.WriteProblemAsync(context.HttpContext, 401, "unauthorized", "Unauthorized", "The bearer token is invalid, expired or revoked."); },
            };
        });
        builder.Services.AddOptions<JwtBearerOptions>(BuiltInJwtScheme).Configure<SigningKeys, TimeProvider>((o, keys, time) =>
        {
            o.TokenValidationParameters.IssuerSigningKeyResolver = (_, _, _, _) => keys.Loaded is { } key ? [key] : [];
            o.TokenValidationParameters.LifetimeValidator = LifetimeOn(time);
        });
        if (auth.Oidc.IsConfigured)
        {
            authentication.AddJwtBearer(OidcScheme, o => ConfigureOidc(o, auth));
            builder.Services.AddOptions<JwtBearerOptions>(OidcScheme).Configure<TimeProvider>((o, time) =>
                o.TokenValidationParameters.LifetimeValidator = LifetimeOn(time));
        }
        return builder;
    }

    /// <summary>Token lifetimes judged by the server's clock (the one that mints tokens and runs the products), not the
    /// library's own <c>DateTime.UtcNow</c>: with a test or simulated clock the two would disagree.</summary>
    static LifetimeValidator LifetimeOn(TimeProvider time) => (notBefore, expires, _, parameters) =>
    {
        var now = time.GetUtcNow().UtcDateTime;
        return expires is { } e && now <= e.ToUniversalTime() + parameters.ClockSkew
            && (notBefore is not { } nb || now >= nb.ToUniversalTime() - parameters.ClockSkew);
    };

    /// <summary>Maps <c>/v1/api-keys</c> and <c>/v1/auth/...</c>.</summary>
    public static IEndpointRouteBuilder MapAuthApi(this IEndpointRouteBuilder app)
    {
        app.MapApiKeysApi();
        app.MapTokensApi();
        return app;
    }

    static string Select(HttpContext context, AuthOptions auth)
    {
        var header = context.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return ApiKeyAuthenticationHandler.SchemeName;
        var token = header.AsSpan("Bearer ".Length).Trim();
        if (token.StartsWith(ApiKey.Prefix, StringComparison.Ordinal)) return ApiKeyAuthenticationHandler.SchemeName;
        if (!auth.Oidc.IsConfigured) return BuiltInJwtScheme;
        // Route by the (not yet validated) issuer; the chosen scheme validates everything, signature included.
        try
        {
            var issuer = new JsonWebToken(token.ToString()).Issuer;
            return issuer == auth.Issuer ? BuiltInJwtScheme : OidcScheme;
        }
        catch (ArgumentException)
        {
            return BuiltInJwtScheme;
        }
    }

    static async Task MapBuiltInAsync(TokenValidatedContext context)
    {
        var claims = context.Principal!;
        var tenant = claims.FindFirstValue(EndUserClaims.Tenant);
        var subject = claims.FindFirstValue(JwtRegisteredClaimNames.Sub);
        var session = claims.FindFirstValue(EndUserClaims.Session);
        if (tenant is null || subject is null || session is null)
        {
            context.Fail("token lacks tid, sub or sid");
            return;
        }
        var tokens = context.HttpContext.RequestServices.GetRequiredService<TokenService>();
        if (!await tokens.IsSessionActiveAsync(tenant, session, context.HttpContext.RequestAborted))
        {
            context.Fail("session revoked");
            return;
        }
        context.Principal = Principal(tenant, subject, claims.FindFirstValue(EndUserClaims.Scope), BuiltInJwtScheme);
    }

    static void ConfigureOidc(JwtBearerOptions o, AuthOptions auth)
    {
        var oidc = auth.Oidc;
        o.MapInboundClaims = false;
        o.RequireHttpsMetadata = oidc.RequireHttpsMetadata;
        if (!string.IsNullOrWhiteSpace(oidc.Authority)) o.Authority = oidc.Authority;
        o.TokenValidationParameters = new TokenValidationParameters
        {
            ValidIssuer = oidc.Issuer,
            ValidateIssuer = true,
            ValidAudience = oidc.Audience,
            ValidAlgorithms = oidc.Algorithms,
            ClockSkew = TimeSpan.FromSeconds(auth.ClockSkewSeconds),
            RequireExpirationTime = true,
            RequireSignedTokens = true,
        };
        if (!string.IsNullOrWhiteSpace(oidc.SigningKeyPem)) o.TokenValidationParameters.IssuerSigningKey = PublicKey(oidc.SigningKeyPem);
        o.Events = new JwtBearerEvents
        {
            OnTokenValidated = context =>
            {
                var claims = context.Principal!;
                var tenant = claims.FindFirstValue(oidc.TenantClaim);
                var subject = claims.FindFirstValue(JwtRegisteredClaimNames.Sub);
                if (tenant is null || subject is null || !Storage.Ids.IsValid(tenant))
                {
                    context.Fail("token lacks a tenant or subject");
                    return Task.CompletedTask;
                }
                context.Principal = Principal(tenant, subject, claims.FindFirstValue("scope") ?? claims.FindFirstValue("scp"), OidcScheme);
                return Task.CompletedTask;
            },
            OnChallenge = context => { context.HandleResponse(); return ApiKeyAuthenticationHandler.WriteProblemAsync(context.HttpContext, 401, "unauthorized", "Unauthorized", "The bearer token is invalid or expired."); },
        };
    }

    static SecurityKey PublicKey(string pem)
    {
        if (pem.Contains("BEGIN EC", StringComparison.Ordinal) || pem.Contains("EC PUBLIC", StringComparison.Ordinal))
        {
            var ec = ECDsa.Create();
            ec.ImportFromPem(pem);
            return new ECDsaSecurityKey(ec);
        }
        try
        {
            var rsa = RSA.Create();
            rsa.ImportFromPem(pem);
            return new RsaSecurityKey(rsa);
        }
        catch (CryptographicException)
        {
            var ec = ECDsa.Create();
            ec.ImportFromPem(pem);
            return new ECDsaSecurityKey(ec);
        }
    }

    /// <summary>An end user: tenant, subject and scopes (never admin or audit:read: those stay with API keys).</summary>
    static ClaimsPrincipal Principal(string tenant, string subject, string? scope, string scheme)
    {
        var claims = new List<Claim> { new(NeracaClaims.TenantId, tenant), new(EndUserClaims.Subject, subject) };
        foreach (var s in (scope ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries))
            if (Scopes.EndUser.Contains(s)) claims.Add(new Claim(NeracaClaims.Scope, s));
        return new ClaimsPrincipal(new ClaimsIdentity(claims, scheme));
    }
}
