using System.ComponentModel.DataAnnotations;

namespace Neraca.Auth;

/// <summary>End-user authentication (section <c>Auth</c>). The built-in token endpoint issues short-lived HS256 JWTs
/// with issuer <see cref="Issuer"/>; optionally tokens of an external OIDC issuer are accepted too (<see cref="Oidc"/>).</summary>
public sealed class AuthOptions
{
    /// <summary><c>iss</c> of tokens the built-in endpoint issues. Default <c>neraca</c>.</summary>
    [Required]
    public string Issuer { get; set; } = "neraca";

    /// <summary><c>aud</c> of built-in tokens. Default <c>neraca-api</c>.</summary>
    [Required]
    public string Audience { get; set; } = "neraca-api";

    /// <summary>Base64 HS256 key (32+ bytes) for built-in tokens. Empty (default): a key generated once and stored in
    /// the database, shared by every replica.</summary>
    public string? SigningKey { get; set; }

    /// <summary>Life of an access token, in seconds. Default 300.</summary>
    [Range(30, 3600)]
    public int AccessTokenSeconds { get; set; } = 300;

    /// <summary>Life of a refresh token, in seconds. Default 30 days. Each use replaces it with a new one.</summary>
    [Range(60, 365 * 24 * 3600)]
    public int RefreshTokenSeconds { get; set; } = 30 * 24 * 3600;

    /// <summary>Tolerated clock difference when checking <c>exp</c>/<c>nbf</c>, in seconds. Default 30.</summary>
    [Range(0, 300)]
    public int ClockSkewSeconds { get; set; } = 30;

    /// <summary>An external OpenID Connect issuer whose tokens are accepted (optional).</summary>
    public OidcOptions Oidc { get; set; } = new();
}

/// <summary>External issuer: either <see cref="Authority"/> (keys from its discovery document) or
/// <see cref="Issuer"/> + <see cref="SigningKeyPem"/> (a fixed public key).</summary>
public sealed class OidcOptions
{
    /// <summary>Base URL of the issuer (<c>https://login.example.com/realms/x</c>); its discovery document gives the keys.</summary>
    public string? Authority { get; set; }

    /// <summary>Expected <c>iss</c>; defaults to the authority's.</summary>
    public string? Issuer { get; set; }

    /// <summary>Expected <c>aud</c>. Required when an external issuer is configured.</summary>
    public string? Audience { get; set; }

    /// <summary>PEM public key (RSA or EC) that signs the issuer's tokens, instead of discovery.</summary>
    public string? SigningKeyPem { get; set; }

    /// <summary>Accepted signing algorithms. Default RS256, PS256, ES256: never <c>none</c>, never HMAC for an external issuer.</summary>
    public string[] Algorithms { get; set; } = ["RS256", "PS256", "ES256"];

    /// <summary>Claim naming the Neraca tenant. Default <c>tenant_id</c>.</summary>
    [Required]
    public string TenantClaim { get; set; } = "tenant_id";

    /// <summary>Discovery over HTTPS only (default true).</summary>
    public bool RequireHttpsMetadata { get; set; } = true;

    public bool IsConfigured => !string.IsNullOrWhiteSpace(Authority) || !string.IsNullOrWhiteSpace(SigningKeyPem);
}
