using System.Net;
using System.Net.Http.Headers;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Caching;
using Neraca.Storage;
using Neraca.Tenancy;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Ledger;

namespace Neraca.Tests.Replicas;

/// <summary>Security finding: cache keys and rate-limit buckets were ids joined with ':', and ids may contain ':'. With
/// tenants <c>default</c> and <c>default:eu</c>, tenant <c>default</c>'s account <c>eu:alice</c> read tenant
/// <c>default:eu</c>'s <c>alice</c> from the cache. Each test warms the other tenant's entry first, on the real Redis.</summary>
public sealed class TenantKeyCollisionTests
{
    const string OtherTenant = "default:eu";

    static async Task<NeracaServer> StartAsync(StoreKind kind, params string[] args)
    {
        var redis = await RedisServer.SharedAsync();
        // A prefix of its own: buckets and version tokens of earlier runs must not decide this one.
        return await NeracaServer.StartAsync(await TestStores.NewDatabaseAsync(kind),
            ["--Redis:Url=" + redis.Url, "--Redis:KeyPrefix=t" + Guid.NewGuid().ToString("N") + ":", .. args]);
    }

    /// <summary>Tenant <c>default</c> (the bootstrap tenant) and tenant <c>default:eu</c>, each with a ledger; the other
    /// tenant's <c>alice</c> holds 12,345 and has one entry, <c>default</c>'s <c>eu:alice</c> holds nothing.</summary>
    static async Task<(LedgerClient Default, LedgerClient Other)> TwoTenantsAsync(NeracaServer server)
    {
        var tenants = server.Services.GetRequiredService<TenantStore>();
        Assert.True(await tenants.CreateTenantAsync(OtherTenant, OtherTenant, CancellationToken.None));
        var key = ApiKey.Generate();
        await tenants.AddKeyAsync(OtherTenant, "test", key, [Scopes.Admin], null, CancellationToken.None);
        var other = new LedgerClient(server.CreateClient(key));
        var mine = new LedgerClient(server.CreateClient(NeracaServer.BootstrapKey));
        foreach (var l in new[] { other, mine })
        {
            await l.LedgerAsync();
            await l.AccountAsync("bank", normal: "debit");
        }
        await other.AccountAsync("alice");
        await mine.AccountAsync("eu:alice");
        Assert.Equal(HttpStatusCode.Created, (await other.TransferAsync("fund", "bank", "alice", 12_345)).Response.StatusCode);
        return (mine, other);
    }

    [Theory]
    [InlineData(StoreKind.Sqlite)]
    [InlineData(StoreKind.Postgres)]
    public async Task Account_cache_key_of_tenant_default_and_account_eu_alice_does_not_read_tenant_default_eu_alice(StoreKind kind)
    {
        await using var server = await StartAsync(kind);
        var (mine, other) = await TwoTenantsAsync(server);
        for (var i = 0; i < 2; i++) Assert.Equal(12_345, await other.PostedAsync("alice")); // cached now

        var (response, account) = await mine.Http.GetJsonAsync("/v1/accounts/" + Uri.EscapeDataString("eu:alice"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("eu:alice", (string)account!["id"]!);
        Assert.Equal(0, (long)account["balance"]!["posted"]!);
        Assert.Equal(12_345, await other.PostedAsync("alice"));
    }

    [Theory]
    [InlineData(StoreKind.Sqlite)]
    [InlineData(StoreKind.Postgres)]
    public async Task History_cache_key_of_tenant_default_and_account_eu_alice_does_not_read_tenant_default_eu_alice(StoreKind kind)
    {
        await using var server = await StartAsync(kind);
        var (mine, other) = await TwoTenantsAsync(server);
        for (var i = 0; i < 2; i++)
            Assert.Single((await other.Http.GetJsonAsync("/v1/accounts/alice/entries?limit=50")).Body!["data"]!.AsArray()); // cached now

        var (response, page) = await mine.Http.GetJsonAsync("/v1/accounts/" + Uri.EscapeDataString("eu:alice") + "/entries?limit=50");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Empty(page!["data"]!.AsArray());
    }

    [Fact]
    public async Task Session_cache_key_of_tenant_default_and_session_eu_s1_does_not_read_tenant_default_eu_s1()
    {
        await using var server = await StartAsync(StoreKind.Sqlite);
        var cache = server.Services.GetRequiredService<NeracaCache>();
        // The scope and key TokenService.IsSessionActiveAsync uses for a session.
        static string Key(string tenant, string session) => CacheScopes.Session(tenant, session);
        for (var i = 0; i < 2; i++)
            Assert.Equal("revoked", await cache.GetOrLoadAsync("session", Key(OtherTenant, "s1"), Key(OtherTenant, "s1"),
                _ => Task.FromResult<string?>("revoked"), CancellationToken.None));

        var mine = await cache.GetOrLoadAsync("session", Key("default", "eu:s1"), Key("default", "eu:s1"),
            _ => Task.FromResult<string?>("active"), CancellationToken.None);
        Assert.Equal("active", mine);
    }

    [Fact]
    public async Task Rate_limit_bucket_of_tenant_default_and_subject_eu_alice_is_not_tenant_default_eu_alice()
    {
        const int perMinute = 2;
        await using var server = await StartAsync(StoreKind.Sqlite, $"--RateLimits:UserPerMinute={perMinute}");
        var tenants = server.Services.GetRequiredService<TenantStore>();
        Assert.True(await tenants.CreateTenantAsync(OtherTenant, OtherTenant, CancellationToken.None));
        var key = ApiKey.Generate();
        await tenants.AddKeyAsync(OtherTenant, "test", key, [Scopes.Admin], null, CancellationToken.None);

        using var otherUser = await EndUserAsync(server, server.CreateClient(key), "alice");
        using var myUser = await EndUserAsync(server, server.CreateClient(NeracaServer.BootstrapKey), "eu:alice");
        for (var i = 0; i < perMinute; i++) Assert.Equal(HttpStatusCode.OK, (await otherUser.GetAsync("/v1/ledgers")).StatusCode);
        var limited = await otherUser.GetAsync("/v1/ledgers");
        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);

        var mine = await myUser.GetAsync("/v1/ledgers");
        Assert.Equal(HttpStatusCode.OK, mine.StatusCode);
        Assert.Equal($"\"user\";r={perMinute - 1};t=30", mine.Headers.GetValues("RateLimit").Single());
    }

    static async Task<HttpClient> EndUserAsync(NeracaServer server, HttpClient admin, string subject)
    {
        var (issued, body) = await admin.PostJsonAsync("/v1/auth/tokens", new { subject, scopes = new[] { "ledger:read" } });
        Assert.Equal(HttpStatusCode.Created, issued.StatusCode);
        var client = server.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", (string)body!["access_token"]!);
        return client;
    }
}
