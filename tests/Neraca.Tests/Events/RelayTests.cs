using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Ledger;
using Neraca.Events;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Events;

[Collection(ServerProcesses.Name)]
public sealed class RelayTests
{
    /// <summary>Stops a server the way a crash does: no graceful drain, in-flight sends and transactions are cut off.</summary>
    static async Task KillAsync(NeracaServer server)
    {
        using var already = new CancellationTokenSource();
        await already.CancelAsync();
        try { await server.App.StopAsync(already.Token); }
        catch (OperationCanceledException) { }
        await server.App.DisposeAsync();
    }

    [Fact]
    public async Task Worker_killed_while_delivering_and_restarted_delivers_every_event_and_a_deduplicating_consumer_sees_each_once()
    {
        var database = await TestStores.NewDatabaseAsync(StoreKind.Postgres);
        await using var receiver = await WebhookReceiver.StartAsync();
        // Slow enough that the kill lands while deliveries are in flight.
        receiver.Respond = async _ =>
        {
            await Task.Delay(10);
            return 200;
        };
        var first = await NeracaServer.StartAsync(database, EventsTestKit.FastWorkerArgs);
        var tenant = await first.NewTenantAsync();
        var created = await tenant.Http.PostJsonAsync("/v1/webhooks", new { url = receiver.Url, event_types = new[] { "*" } });
        Assert.Equal(System.Net.HttpStatusCode.Created, created.Response.StatusCode);
        var (ledger, wallets) = await TransferLoad.SetUpAsync(tenant, 4);
        for (var batch = 0; batch < 4; batch++) await TransferLoad.TopUpsAsync(ledger, wallets, 50);

        await Polling.Eventually(() => receiver.Accepted.Count >= 20, "deliveries did not start");
        await KillAsync(first);
        var atKill = receiver.Accepted.Count;

        // Transfers committed while no worker runs wait in the outbox.
        var restarted = await NeracaServer.StartAsync(database, EventsTestKit.FastWorkerArgs);
        await using var _ = restarted;
        await TransferLoad.TopUpsAsync(new Ledger.LedgerClient(restarted.CreateClient(tenant.ApiKey)), wallets, 10);
        var events = await TransferLoad.EventsAsync(restarted, tenant.Id);
        Assert.Equal(5 + 210, events.Count); // 5 accounts, 210 transfers: one event each
        Assert.True(atKill < events.Count, "everything was delivered before the kill; the test proves nothing");

        await Polling.Eventually(() => receiver.Accepted.Count == events.Count,
            $"only {receiver.Accepted.Count} of {events.Count} events were delivered", timeout: TimeSpan.FromSeconds(90));
        Assert.Equal(events.Select(e => e.Id).Order(StringComparer.Ordinal), receiver.Accepted.Order(StringComparer.Ordinal));
        Assert.Equal(0, await EventsTestKit.OutboxCountAsync(restarted));

        // Per account, the deduplicating consumer saw the events touching it in commit order.
        var position = events.Select((e, i) => (e.Id, i)).ToDictionary(x => x.Id, x => x.i);
        var touches = events.ToDictionary(e => e.Id, e => e.Type == LedgerEventTypes.AccountCreated.Name
            ? [e.Subject]
            : new[] { (string)JsonNode.Parse(e.Payload)!["debit_account"]!, (string)JsonNode.Parse(e.Payload)!["credit_account"]! });
        foreach (var account in wallets.Append("bank"))
        {
            var seen = receiver.Accepted.Where(id => touches[id].Contains(account)).Select(id => position[id]).ToList();
            Assert.Equal(seen.Order(), seen);
        }
    }

    [Fact]
    public async Task Two_workers_relaying_the_same_outbox_never_claim_an_event_twice()
    {
        var database = await TestStores.NewDatabaseAsync(StoreKind.Postgres);
        // No worker role: the test drives two relays by hand, concurrently, on one database.
        await using var server = await NeracaServer.StartAsync(database, "--role", "api");
        var tenant = await server.NewTenantAsync();
        var secondServer = await NeracaServer.StartAsync(database, "--role", "api", "--Events:RelayBatchSizeMax=7");
        await using var __ = secondServer;
        var created = await tenant.Http.PostJsonAsync("/v1/webhooks", new { url = "https://8.8.8.8/hook", event_types = new[] { "*" } });
        var webhookId = (string)created.Body!["id"]!;
        var ids = new List<string>();
        for (var batch = 0; batch < 10; batch++)
            ids.AddRange(await EventsTestKit.AppendAsync(server, tenant.Id,
                Enumerable.Range(0, 30).Select(i => (LedgerEventTypes.TransferPosted.Name, $"acc_{i % 5}")).ToArray()));

        var relays = new[] { server, secondServer }.Select(s => s.Services.GetRequiredService<OutboxRelay>()).ToArray();
        var counts = await Task.WhenAll(relays.Select(r => Task.Run(async () =>
        {
            var total = 0;
            for (var round = 0; round < 500 && await EventsTestKit.OutboxCountAsync(server) > 0; round++) total += await r.RelayBatchAsync(CancellationToken.None);
            return total;
        })));

        Assert.Equal(ids.Count, counts.Sum());
        Assert.Equal(0, await EventsTestKit.OutboxCountAsync(server));
        var deliveries = await tenant.Http.GetJsonAsync($"/v1/webhooks/{webhookId}/deliveries?limit=1000");
        Assert.Equal(ids.Count, deliveries.Body!["data"]!.AsArray().Count);
    }
}
