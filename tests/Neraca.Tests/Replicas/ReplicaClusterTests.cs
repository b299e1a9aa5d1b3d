using System.Net;
using System.Net.Http.Headers;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Replicas;

[Collection(ServerProcesses.Name)]
public sealed class ReplicaClusterTests(ReplicaClusterFixture fixture) : IClassFixture<ReplicaClusterFixture>
{
    ReplicaCluster Cluster => fixture.Cluster;

    [Fact]
    public async Task Api_key_revoked_through_one_replica_is_refused_by_the_others_at_once()
    {
        var (tenant, _) = await Cluster.NewTenantAsync();
        for (var round = 0; round < 5; round++)
        {
            var (created, body) = await tenant.Http.PostJsonAsync("/v1/api-keys", new { name = $"ci-{round}", scopes = new[] { "admin" } });
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            var key = (string)body!["key"]!;
            var clients = Cluster.Servers.Select(s => s.CreateClient(key)).ToArray();
            // Every replica resolves (and caches) the key first.
            foreach (var c in clients) Assert.Equal(HttpStatusCode.OK, (await c.GetAsync("/v1/api-keys")).StatusCode);

            var revoker = Cluster.Servers[round % 3].CreateClient(tenant.ApiKey);
            var (revoked, _) = await revoker.PostJsonAsync($"/v1/api-keys/{(string)body["id"]!}/revoke", new { });
            Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);

            foreach (var c in clients)
                (await c.GetJsonAsync("/v1/api-keys")).AssertProblem(401, "unauthorized");
        }
    }

    [Fact]
    public async Task Api_key_lookups_are_served_from_the_cache_after_the_first()
    {
        using var hits = new CounterRecorder("neraca.cache.requests", "result");
        var (_, clients) = await Cluster.NewTenantAsync();
        var before = hits["hit"];
        for (var i = 0; i < 10; i++) Assert.Equal(HttpStatusCode.OK, (await clients[1].GetAsync("/v1/api-keys")).StatusCode);
        Assert.True(hits["hit"] - before >= 9, $"expected at least 9 cache hits, saw {hits["hit"] - before}");
        Assert.True(hits["miss"] >= 1);
    }

    [Fact]
    public async Task Rate_limit_of_N_per_minute_allows_about_N_in_total_across_three_replicas()
    {
        var (_, clients) = await Cluster.NewTenantAsync(ReplicaCluster.LimitedTenant);
        var allowed = 0;
        HttpResponseMessage? rejected = null;
        for (var i = 0; i < ReplicaCluster.LimitedPerMinute * 3; i++)
        {
            var response = await clients[i % 3].GetAsync("/v1/api-keys");
            if (response.StatusCode == HttpStatusCode.OK) allowed++;
            else
            {
                Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
                rejected = response;
            }
        }
        // The bucket holds N and refills N per minute: a second or two of requests may earn one or two more.
        Assert.InRange(allowed, ReplicaCluster.LimitedPerMinute, ReplicaCluster.LimitedPerMinute + 3);

        Assert.NotNull(rejected);
        var problem = (rejected, await Http.ReadAsync(rejected));
        problem.AssertProblem(429, "rate_limited");
        Assert.True(int.Parse(rejected.Headers.RetryAfter!.ToString(), System.Globalization.CultureInfo.InvariantCulture) >= 1);
        Assert.Equal($"\"api_key\";q={ReplicaCluster.LimitedPerMinute};w=60", rejected.Headers.GetValues("RateLimit-Policy").Single());
        Assert.StartsWith("\"api_key\";r=0;t=", rejected.Headers.GetValues("RateLimit").Single(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Refresh_token_revoked_through_one_replica_is_refused_by_another_and_so_are_its_access_tokens()
    {
        var (_, clients) = await Cluster.NewTenantAsync();
        var (issued, pair) = await clients[0].PostJsonAsync("/v1/auth/tokens", new { subject = "user-42", scopes = new[] { "ledger:read" } });
        Assert.Equal(HttpStatusCode.Created, issued.StatusCode);
        var access = (string)pair!["access_token"]!;
        var refresh = (string)pair["refresh_token"]!;

        // The access token authenticates on every replica (403: an end user has no admin scope, but is known).
        foreach (var server in Cluster.Servers)
        {
            using var user = server.CreateClient();
            user.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", access);
            (await user.GetJsonAsync("/v1/api-keys")).AssertProblem(403, "insufficient_scope");
        }

        // Rotation through C: the new pair works anywhere, the old refresh token is spent.
        using var anonymousC = Cluster.C.CreateClient();
        var (rotated, next) = await anonymousC.PostJsonAsync("/v1/auth/token", new { grant_type = "refresh_token", refresh_token = refresh });
        Assert.Equal(HttpStatusCode.OK, rotated.StatusCode);
        var access2 = (string)next!["access_token"]!;
        refresh = (string)next["refresh_token"]!;
        using (var user = Cluster.A.CreateClient())
        {
            user.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", access2);
            (await user.GetJsonAsync("/v1/api-keys")).AssertProblem(403, "insufficient_scope");
        }

        using var anonymousA = Cluster.A.CreateClient();
        var (revoked, _) = await anonymousA.PostJsonAsync("/v1/auth/revoke", new { token = refresh });
        Assert.Equal(HttpStatusCode.NoContent, revoked.StatusCode);

        using var anonymousB = Cluster.B.CreateClient();
        (await anonymousB.PostJsonAsync("/v1/auth/token", new { grant_type = "refresh_token", refresh_token = refresh }))
            .AssertProblem(400, "invalid_grant");
        foreach (var server in Cluster.Servers)
        foreach (var token in new[] { access, access2 })
        {
            using var user = server.CreateClient();
            user.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            (await user.GetJsonAsync("/v1/api-keys")).AssertProblem(401, "unauthorized");
        }
    }
}
