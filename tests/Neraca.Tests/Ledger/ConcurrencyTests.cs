using System.Collections.Concurrent;
using System.Net;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Ledger;

public sealed class ConcurrencyTests
{
    const int Clients = 32;
    const int TransfersPerClient = 40;
    const int Wallets = 16;

    [Fact]
    public async Task Two_servers_on_one_postgres_with_retried_ids_keep_the_books_balanced()
    {
        var database = await TestStores.NewDatabaseAsync(StoreKind.Postgres);
        await using var a = await NeracaServer.StartAsync(database);
        await using var b = await NeracaServer.StartAsync(database);
        var tenant = await a.NewTenantAsync();
        var servers = new[] { new LedgerClient(a.CreateClient(tenant.ApiKey)), new LedgerClient(b.CreateClient(tenant.ApiKey)) };
        var setup = servers[0];
        await setup.LedgerAsync();
        await setup.AccountAsync("bank", normal: "debit");
        for (var w = 0; w < Wallets; w++)
        {
            await setup.AccountAsync($"w{w}", flags: ["debits_must_not_exceed_credits"]);
            Assert.Equal(HttpStatusCode.Created, (await setup.TransferAsync($"fund-{w}", "bank", $"w{w}", 1_000)).Response.StatusCode);
        }

        var succeeded = new ConcurrentDictionary<string, long>();
        var refused = 0;
        await Task.WhenAll(Enumerable.Range(0, Clients).Select(client => Task.Run(async () =>
        {
            var random = new Random(client);
            for (var i = 0; i < TransfersPerClient; i++)
            {
                var id = $"c{client}-{i}";
                var from = random.Next(Wallets);
                var to = (from + 1 + random.Next(Wallets - 1)) % Wallets;
                var amount = random.Next(1, 400);
                // Send the same transfer to both servers at once half of the time: a client retrying after a timeout.
                var sends = random.Next(2) == 0 ? servers : [servers[random.Next(2)]];
                var results = await Task.WhenAll(sends.Select(s => s.TransferAsync(id, $"w{from}", $"w{to}", amount)));
                foreach (var (response, body) in results)
                {
                    if (response.IsSuccessStatusCode) succeeded[id] = amount;
                    else if ((string?)body?["code"] == "insufficient_funds") Interlocked.Increment(ref refused);
                    else Assert.Fail($"unexpected {(int)response.StatusCode}: {body?.ToJsonString()}");
                }
                // Successful answers to one id describe one and the same transfer. (A refusal is not stored, so the
                // other server may still post the same id a moment later when funds have arrived: that is allowed.)
                Assert.True(results.Where(r => r.Response.IsSuccessStatusCode).Select(r => (string)r.Body!["created_at"]!).Distinct().Count() <= 1,
                    $"two different transfers were acknowledged for {id}");
            }
        })));

        await Conservation.AssertAsync(a, tenant.Id);
        var db = a.Services.GetRequiredService<Database>();
        await using var c = await db.OpenAsync(CancellationToken.None);
        var stored = (await c.QueryAsync<(string Id, long Amount)>("SELECT id, amount FROM transfers WHERE tenant_id = @t AND id LIKE 'c%'", new { t = tenant.Id })).ToList();
        Assert.Equal(succeeded.Count, stored.Count);
        Assert.All(stored, s => Assert.Equal(succeeded[s.Id], s.Amount));
        Assert.Equal(0, await c.ExecuteScalarAsync<long>("SELECT count(*) FROM accounts WHERE tenant_id = @t AND id LIKE 'w%' AND credits_posted - debits_posted < 0", new { t = tenant.Id }));
        Assert.Equal(Wallets * 1_000L, await c.ExecuteScalarAsync<long>("SELECT sum(credits_posted - debits_posted) FROM accounts WHERE tenant_id = @t AND id LIKE 'w%'", new { t = tenant.Id }));
        Assert.True((bool)(await setup.Http.GetJsonAsync("/v1/ledgers/wallets/audit")).Body!["verified"]!);
        Assert.True(succeeded.Count > Clients * TransfersPerClient / 4, $"only {succeeded.Count} succeeded ({refused} refused)");
    }

    [Fact]
    public async Task Acknowledged_transfers_survive_a_server_restart()
    {
        var database = await TestStores.NewDatabaseAsync(StoreKind.Sqlite);
        var ids = new List<string>();
        string tenantKey;
        await using (var first = await NeracaServer.StartAsync(database))
        {
            var tenant = await first.NewTenantAsync();
            tenantKey = tenant.ApiKey;
            var l = new LedgerClient(tenant.Http);
            await l.LedgerAsync();
            await l.AccountAsync("bank", normal: "debit");
            await l.AccountAsync("alice");
            var posts = await Task.WhenAll(Enumerable.Range(0, 200).Select(i => l.TransferAsync($"r{i}", "bank", "alice", 1)));
            Assert.All(posts, p => Assert.Equal(HttpStatusCode.Created, p.Response.StatusCode));
            ids.AddRange(posts.Select(p => (string)p.Body!["id"]!));
        }
        await using var second = await NeracaServer.StartAsync(database);
        var again = new LedgerClient(second.CreateClient(tenantKey));
        Assert.Equal(200, await again.PostedAsync("alice"));
        foreach (var id in ids.Take(20)) Assert.Equal(HttpStatusCode.OK, (await again.Http.GetJsonAsync($"/v1/transfers/{id}")).Response.StatusCode);
    }
}
