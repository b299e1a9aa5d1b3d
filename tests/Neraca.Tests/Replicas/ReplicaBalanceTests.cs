using System.Net;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Ledger;

namespace Neraca.Tests.Replicas;

[Collection(ServerProcesses.Name)]
public sealed class ReplicaBalanceTests(ReplicaClusterFixture fixture) : IClassFixture<ReplicaClusterFixture>
{
    ReplicaCluster Cluster => fixture.Cluster;

    [Fact]
    public async Task Transfer_through_one_replica_is_visible_in_balance_and_history_read_from_the_others_at_once()
    {
        var (_, clients) = await Cluster.NewTenantAsync();
        var ledgers = clients.Select(c => new LedgerClient(c)).ToArray();
        await ledgers[0].LedgerAsync();
        await ledgers[0].AccountAsync("funding", normal: "debit");
        await ledgers[0].AccountAsync("alice");
        long expected = 0;
        for (var round = 1; round <= 12; round++)
        {
            // Every replica has the current balance and first history page cached.
            foreach (var l in ledgers)
            {
                Assert.Equal(expected, await l.PostedAsync("alice"));
                Assert.Equal(round - 1, (await l.Http.GetJsonAsync("/v1/accounts/alice/entries"))!.Body!["data"]!.AsArray().Count);
            }
            var (posted, _) = await ledgers[round % 3].TransferAsync(null, "funding", "alice", round);
            Assert.Equal(HttpStatusCode.Created, posted.StatusCode);
            expected += round;
            foreach (var l in ledgers)
            {
                Assert.Equal(expected, await l.PostedAsync("alice"));
                var page = (await l.Http.GetJsonAsync("/v1/accounts/alice/entries")).Body!["data"]!.AsArray();
                Assert.Equal(round, page.Count);
                Assert.Equal(expected, (long)page[^1]!["balance_after"]!);
            }
        }
    }

    [Fact]
    public async Task Concurrent_transfers_and_reads_on_three_replicas_never_show_a_balance_older_than_an_acknowledged_transfer()
    {
        var (tenant, clients) = await Cluster.NewTenantAsync();
        var ledgers = clients.Select(c => new LedgerClient(c)).ToArray();
        await ledgers[0].LedgerAsync();
        await ledgers[0].AccountAsync("funding", normal: "debit");
        await ledgers[0].AccountAsync("hot");
        var acknowledged = 0L;
        async Task WorkerAsync(int worker)
        {
            for (var i = 0; i < 25; i++)
            {
                var (posted, body) = await ledgers[(worker + i) % 3].TransferAsync(null, "funding", "hot", 1);
                Assert.True(posted.StatusCode == HttpStatusCode.Created, body?.ToJsonString());
                Interlocked.Increment(ref acknowledged);
                var floor = Volatile.Read(ref acknowledged);
                var seen = await ledgers[(worker + i + 1) % 3].PostedAsync("hot");
                Assert.True(seen >= floor, $"replica served balance {seen} after {floor} transfers were acknowledged");
            }
        }
        await Task.WhenAll(Enumerable.Range(0, 4).Select(WorkerAsync));
        foreach (var l in ledgers) Assert.Equal(100L, await l.PostedAsync("hot"));
        await Conservation.AssertAsync(Cluster.A, tenant.Id);
    }
}
