using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Neraca.Auth;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Auth;

/// <summary>A server that also trusts an external issuer (fixed RSA key), with a small per-user limit for one tenant.</summary>
public sealed class JwtServerFixture : IAsyncLifetime
{
    public const string ExternalIssuer = "https://idp.example.test";
    public const string ExternalAudience = "neraca-tests";
    public const string LimitedTenant = "jwt-limited";
    public const int UserPerMinute = 5;

    NeracaServer? _server;

    public RSA ExternalKey { get; } = RSA.Create(2048);
    public NeracaServer Server => _server ?? throw new InvalidOperationException("fixture not started");

    public async ValueTask InitializeAsync() => _server = await NeracaServer.StartAsync(await TestStores.NewDatabaseAsync(StoreKind.Sqlite),
        "--Auth:Oidc:Issuer=" + ExternalIssuer, "--Auth:Oidc:Audience=" + ExternalAudience,
        "--Auth:Oidc:SigningKeyPem=" + ExternalKey.ExportSubjectPublicKeyInfoPem(),
        $"--RateLimits:Tenants:{LimitedTenant}:UserPerMinute={UserPerMinute}");

    public async ValueTask DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
        ExternalKey.Dispose();
    }
}

public sealed class TokenEndpointTests(JwtServerFixture fixture) : IClassFixture<JwtServerFixture>
{
    NeracaServer Server => fixture.Server;

    HttpClient Bearer(string token)
    {
        var client = Server.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    static async Task<(string Access, string Refresh)> IssueAsync(TestTenant tenant, params string[] scopes)
    {
        var (response, body) = await tenant.Http.PostJsonAsync("/v1/auth/tokens", new { subject = "user-1", scopes });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal("Bearer", (string)body!["token_type"]!);
        Assert.Equal(300, (int)body["expires_in"]!);
        return ((string)body["access_token"]!, (string)body["refresh_token"]!);
    }

    [Fact]
    public async Task End_user_token_carries_its_tenant_and_only_the_granted_scopes()
    {
        var tenant = await Server.NewTenantAsync();
        await tenant.Http.PostJsonAsync("/v1/ledgers", new { code = "wallets", asset = "IDR", scale = 2 });
        var other = await Server.NewTenantAsync();
        await other.Http.PostJsonAsync("/v1/ledgers", new { code = "theirs", asset = "IDR", scale = 2 });
        var (access, _) = await IssueAsync(tenant, "ledger:read");
        using var user = Bearer(access);
        var (ok, ledgers) = await user.GetJsonAsync("/v1/ledgers");
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal(["wallets"], ledgers!["data"]!.AsArray().Select(l => (string)l!["code"]!));
        (await user.PostJsonAsync("/v1/ledgers", new { code = "x", asset = "IDR", scale = 2 })).AssertProblem(403, "insufficient_scope");
        (await tenant.Http.PostJsonAsync("/v1/auth/tokens", new { subject = "u", scopes = new[] { "admin" } })).AssertProblem(400, "validation_failed");
        (await user.PostJsonAsync("/v1/auth/tokens", new { subject = "u" })).AssertProblem(403, "insufficient_scope");
    }

    // The event feed and webhooks are tenant-wide; an end user holding events:read or webhooks:write would see (or
    // subscribe to) every subject's transfers, around the ownership rules of the ledger.
    [Theory]
    [InlineData("events:read")]
    [InlineData("webhooks:write")]
    public async Task End_user_tokens_cannot_carry_tenant_wide_event_scopes(string scope)
    {
        var tenant = await Server.NewTenantAsync();
        (await tenant.Http.PostJsonAsync("/v1/auth/tokens", new { subject = "u", scopes = new[] { "ledger:read", scope } })).AssertProblem(400, "validation_failed");
    }

    [Fact]
    public async Task Refresh_rotates_and_replaying_a_used_refresh_token_revokes_the_session()
    {
        var tenant = await Server.NewTenantAsync();
        var (access, refresh) = await IssueAsync(tenant, "ledger:read");
        using var anonymous = Server.CreateClient();
        var (rotated, pair) = await anonymous.PostJsonAsync("/v1/auth/token", new { grant_type = "refresh_token", refresh_token = refresh });
        Assert.Equal(HttpStatusCode.OK, rotated.StatusCode);
        var access2 = (string)pair!["access_token"]!;
        var refresh2 = (string)pair["refresh_token"]!;
        Assert.NotEqual(refresh, refresh2);
        using (var user = Bearer(access2)) Assert.Equal(HttpStatusCode.OK, (await user.GetAsync("/v1/ledgers")).StatusCode);

        (await anonymous.PostJsonAsync("/v1/auth/token", new { grant_type = "refresh_token", refresh_token = refresh })).AssertProblem(400, "invalid_grant");
        (await anonymous.PostJsonAsync("/v1/auth/token", new { grant_type = "refresh_token", refresh_token = refresh2 })).AssertProblem(400, "invalid_grant");
        foreach (var token in new[] { access, access2 })
        {
            using var user = Bearer(token);
            (await user.GetJsonAsync("/v1/ledgers")).AssertProblem(401, "unauthorized");
        }
    }

    [Fact]
    public async Task Subject_revocation_by_the_tenant_ends_every_session_of_that_user()
    {
        var tenant = await Server.NewTenantAsync();
        var (a, _) = await IssueAsync(tenant, "ledger:read");
        var (b, _) = await IssueAsync(tenant, "ledger:read");
        var (response, body) = await tenant.Http.PostJsonAsync("/v1/auth/subjects/user-1/revoke", new { });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2, (int)body!["revoked"]!);
        foreach (var token in new[] { a, b })
        {
            using var user = Bearer(token);
            (await user.GetJsonAsync("/v1/ledgers")).AssertProblem(401, "unauthorized");
        }
    }

    [Fact]
    public async Task Tokens_with_a_wrong_audience_issuer_algorithm_signature_or_expiry_are_refused()
    {
        var tenant = await Server.NewTenantAsync();
        var (good, _) = await IssueAsync(tenant, "ledger:read");
        var key = await Server.Services.GetRequiredService<SigningKeys>().GetAsync(CancellationToken.None);
        var sid = new JsonWebToken(good).GetClaim("sid").Value;
        string Sign(string issuer, string audience, DateTime expires, SigningCredentials? credentials = null) =>
            new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
            {
                Issuer = issuer,
                Audience = audience,
                NotBefore = expires.AddMinutes(-10),
                IssuedAt = expires.AddMinutes(-10),
                Expires = expires,
                Claims = new Dictionary<string, object> { ["sub"] = "user-1", ["tid"] = tenant.Id, ["scope"] = "ledger:read", ["sid"] = sid },
                SigningCredentials = credentials ?? new SigningCredentials(key, SecurityAlgorithms.HmacSha256),
            });
        var soon = DateTime.UtcNow.AddMinutes(5);
        using (var ok = Bearer(Sign("neraca", "neraca-api", soon))) Assert.Equal(HttpStatusCode.OK, (await ok.GetAsync("/v1/ledgers")).StatusCode);

        var bad = new[]
        {
            Sign("neraca", "someone-else", soon),
            Sign("https://evil.example", "neraca-api", soon),
            Sign("neraca", "neraca-api", DateTime.UtcNow.AddMinutes(-2)), // beyond the 30 s skew
            Sign("neraca", "neraca-api", soon, new SigningCredentials(new RsaSecurityKey(fixture.ExternalKey), SecurityAlgorithms.RsaSha256)), // not HS256
            Sign("neraca", "neraca-api", soon, new SigningCredentials(new SymmetricSecurityKey(RandomNumberGenerator.GetBytes(32)), SecurityAlgorithms.HmacSha256)),
            new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor { Issuer = "neraca", Audience = "neraca-api", Expires = soon,
                Claims = new Dictionary<string, object> { ["sub"] = "user-1", ["tid"] = tenant.Id, ["sid"] = sid } }), // alg none
            good[..^3] + "AAA",
        };
        foreach (var token in bad)
        {
            using var client = Bearer(token);
            (await client.GetJsonAsync("/v1/ledgers")).AssertProblem(401, "unauthorized");
        }
    }

    [Fact]
    public async Task External_issuer_tokens_map_their_tenant_claim_and_may_not_use_hmac()
    {
        var tenant = await Server.NewTenantAsync();
        string External(Dictionary<string, object> claims, SigningCredentials credentials) =>
            new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
            {
                Issuer = JwtServerFixture.ExternalIssuer,
                Audience = JwtServerFixture.ExternalAudience,
                Expires = DateTime.UtcNow.AddMinutes(5),
                Claims = claims,
                SigningCredentials = credentials,
            });
        var rsa = new SigningCredentials(new RsaSecurityKey(fixture.ExternalKey), SecurityAlgorithms.RsaSha256);
        using (var user = Bearer(External(new() { ["sub"] = "ext-1", ["tenant_id"] = tenant.Id, ["scope"] = "ledger:read admin" }, rsa)))
        {
            Assert.Equal(HttpStatusCode.OK, (await user.GetAsync("/v1/ledgers")).StatusCode);
            (await user.GetJsonAsync("/v1/api-keys")).AssertProblem(403, "insufficient_scope"); // admin is never taken from a token
        }
        using (var noTenant = Bearer(External(new() { ["sub"] = "ext-1", ["scope"] = "ledger:read" }, rsa)))
            (await noTenant.GetJsonAsync("/v1/ledgers")).AssertProblem(401, "unauthorized");
        var hmac = new SigningCredentials(new SymmetricSecurityKey(RandomNumberGenerator.GetBytes(32)), SecurityAlgorithms.HmacSha256);
        using (var forged = Bearer(External(new() { ["sub"] = "ext-1", ["tenant_id"] = tenant.Id, ["scope"] = "ledger:read" }, hmac)))
            (await forged.GetJsonAsync("/v1/ledgers")).AssertProblem(401, "unauthorized");
    }

    [Fact]
    public async Task End_users_are_limited_per_user_with_their_tenants_own_limit()
    {
        var tenants = Server.Services.GetRequiredService<Neraca.Tenancy.TenantStore>();
        await tenants.CreateTenantAsync(JwtServerFixture.LimitedTenant, "limited", CancellationToken.None);
        var key = Neraca.Tenancy.ApiKey.Generate();
        await tenants.AddKeyAsync(JwtServerFixture.LimitedTenant, "admin", key, ["admin"], null, CancellationToken.None);
        var tenant = new TestTenant(JwtServerFixture.LimitedTenant, key, Server.CreateClient(key));
        var (access, _) = await IssueAsync(tenant, "ledger:read");
        using var user = Bearer(access);
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < JwtServerFixture.UserPerMinute + 2; i++) statuses.Add((await user.GetAsync("/v1/ledgers")).StatusCode);
        Assert.Equal(JwtServerFixture.UserPerMinute, statuses.Count(s => s == HttpStatusCode.OK));
        var limited = await user.GetAsync("/v1/ledgers");
        Assert.Equal("\"user\";q=5;w=60", limited.Headers.GetValues("RateLimit-Policy").Single());

    }

    [Fact]
    public async Task Anonymous_token_calls_are_limited_per_client_address()
    {
        const int perMinute = 8;
        await using var server = await NeracaServer.StartAsync(await TestStores.NewDatabaseAsync(StoreKind.Sqlite), $"--RateLimits:IpPerMinute={perMinute}");
        using var anonymous = server.CreateClient();
        var codes = new List<HttpStatusCode>();
        for (var i = 0; i < perMinute + 2; i++)
            codes.Add((await anonymous.PostJsonAsync("/v1/auth/token", new { grant_type = "refresh_token", refresh_token = "nrt_unknown" })).Response.StatusCode);
        Assert.Equal(perMinute, codes.Count(c => c == HttpStatusCode.BadRequest));
        var (rejected, body) = await anonymous.PostJsonAsync("/v1/auth/token", new { grant_type = "refresh_token", refresh_token = "nrt_unknown" });
        (rejected, body).AssertProblem(429, "rate_limited");
        Assert.NotNull(rejected.Headers.RetryAfter);
        Assert.Equal($"\"ip\";q={perMinute};w=60", rejected.Headers.GetValues("RateLimit-Policy").Single());
        // Failed authentication counts against the same address: guessing keys is throttled too.
        using var guesser = server.CreateClient("nrc_guessedkey000000000000000000000000000000");
        (await guesser.GetJsonAsync("/v1/ledgers")).AssertProblem(429, "rate_limited");
        var tenant = await server.NewTenantAsync();
        Assert.Equal(HttpStatusCode.OK, (await tenant.Http.GetAsync("/v1/ledgers")).StatusCode);
    }
}
