using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Caching;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Ledger;

namespace Neraca.Tests.Replicas;

/// <summary>Redis dies under load and comes back. This class owns its Redis (the shared one must stay up for others).</summary>
public sealed class RedisOutageTests
{
    [Fact]
    public async Task Redis_killed_under_load_fails_no_request_limits_fall_back_and_everything_recovers()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var cluster = await ReplicaCluster.StartAsync(redis);
        var (tenant, clients) = await cluster.NewTenantAsync();
        var ledgers = clients.Select(c => new LedgerClient(c)).ToArray();
        await ledgers[0].LedgerAsync();
        await ledgers[0].AccountAsync("funding", normal: "debit");
        await ledgers[0].AccountAsync("hot");
        var acknowledged = 0L;

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        var requests = 0;
        var stop = false;
        async Task WorkerAsync(int worker)
        {
            for (var i = 0; !Volatile.Read(ref stop) && i < 2000; i++)
            {
                var client = clients[(worker + i) % 3];
                var floor = Volatile.Read(ref acknowledged);
                var response = (i % 4) switch
                {
                    0 => (await client.PostJsonAsync("/v1/api-keys", new { name = $"w{worker}-{i}", scopes = new[] { "ledger:read" } })).Response,
                    1 => (await ledgers[(worker + i) % 3].TransferAsync(null, "funding", "hot", 1)).Response,
                    2 => await client.GetAsync("/v1/accounts/hot", cts.Token),
                    _ => await client.GetAsync("/v1/api-keys?limit=5", cts.Token),
                };
                Interlocked.Increment(ref requests);
                if (!response.IsSuccessStatusCode)
                {
                    failures.Add($"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync(cts.Token)}");
                    continue;
                }
                if (i % 4 == 1) Interlocked.Increment(ref acknowledged);
                if (i % 4 == 2)
                {
                    var seen = (long)(await Http.ReadAsync(response))!["balance"]!["posted"]!;
                    if (seen < floor) failures.Add($"balance {seen} read after {floor} transfers were acknowledged");
                }
            }
        }
        var load = Enumerable.Range(0, 4).Select(WorkerAsync).ToArray();
        while (Volatile.Read(ref requests) < 100) await Task.Delay(10, cts.Token);
        await redis.KillAsync();
        var atKill = Volatile.Read(ref requests);
        while (Volatile.Read(ref requests) < atKill + 200) await Task.Delay(10, cts.Token);
        Volatile.Write(ref stop, true);
        await Task.WhenAll(load);
        Assert.Empty(failures);
        foreach (var l in ledgers) Assert.Equal(Volatile.Read(ref acknowledged), await l.PostedAsync("hot"));
        await Conservation.AssertAsync(cluster.A, tenant.Id);

        // Readiness stays green (the database answers) and names Redis as degraded.
        using (var anonymous = cluster.A.CreateClient())
        {
            var (ready, health) = await anonymous.GetJsonAsync("/health/ready");
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
            Assert.Equal("degraded", (string)health!["checks"]!["redis"]!["status"]!);
        }

        // With Redis down, a revocation through A is still refused by B at once (reads go to the database).
        var (created, key) = await tenant.Http.PostJsonAsync("/v1/api-keys", new { name = "outage", scopes = new[] { "admin" } });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var keyOnB = cluster.B.CreateClient((string)key!["key"]!);
        Assert.Equal(HttpStatusCode.OK, (await keyOnB.GetAsync("/v1/api-keys")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await clients[0].PostJsonAsync($"/v1/api-keys/{(string)key["id"]!}/revoke", new { })).Response.StatusCode);
        (await keyOnB.GetJsonAsync("/v1/api-keys")).AssertProblem(401, "unauthorized");

        // Limits fall back to each replica: the limited tenant gets its N per minute from A alone, then 429.
        var (_, limited) = await cluster.NewTenantAsync(ReplicaCluster.LimitedTenant);
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < ReplicaCluster.LimitedPerMinute + 5; i++) statuses.Add((await limited[0].GetAsync("/v1/api-keys")).StatusCode);
        Assert.InRange(statuses.Count(s => s == HttpStatusCode.OK), ReplicaCluster.LimitedPerMinute, ReplicaCluster.LimitedPerMinute + 2);
        Assert.Contains(HttpStatusCode.TooManyRequests, statuses);

        // Redis returns (empty, as after a crash): every replica reconnects by itself and shares state again.
        await redis.RestartAsync();
        foreach (var server in cluster.Servers)
        {
            var connection = server.Services.GetRequiredService<RedisConnection>();
            while (!connection.IsConnected) await Task.Delay(50, cts.Token);
        }
        var (again, key2) = await tenant.Http.PostJsonAsync("/v1/api-keys", new { name = "after", scopes = new[] { "admin" } });
        Assert.Equal(HttpStatusCode.Created, again.StatusCode);
        var key2Clients = cluster.Servers.Select(s => s.CreateClient((string)key2!["key"]!)).ToArray();
        foreach (var c in key2Clients) Assert.Equal(HttpStatusCode.OK, (await c.GetAsync("/v1/api-keys")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await clients[2].PostJsonAsync($"/v1/api-keys/{(string)key2!["id"]!}/revoke", new { })).Response.StatusCode);
        foreach (var c in key2Clients) (await c.GetJsonAsync("/v1/api-keys")).AssertProblem(401, "unauthorized");

        // Balances read through the recovered cache are current on every replica, before and after one more transfer.
        var total = Volatile.Read(ref acknowledged);
        foreach (var l in ledgers) Assert.Equal(total, await l.PostedAsync("hot"));
        Assert.Equal(HttpStatusCode.Created, (await ledgers[1].TransferAsync(null, "funding", "hot", 1)).Response.StatusCode);
        foreach (var l in ledgers) Assert.Equal(total + 1, await l.PostedAsync("hot"));
    }
}
