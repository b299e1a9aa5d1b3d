using System.Net;
using System.Text.Json.Nodes;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Ledger;
using Neraca.Events;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Ledger;

namespace Neraca.Tests.Events;

/// <summary>Events produced by real ledger transfers (the ledger writes them in its posting transaction).</summary>
public static class TransferLoad
{
    /// <summary>A ledger with a funding account and <paramref name="wallets"/> wallets.</summary>
    public static async Task<(LedgerClient Ledger, string[] Wallets)> SetUpAsync(TestTenant tenant, int wallets)
    {
        var ledger = new LedgerClient(tenant.Http);
        await ledger.LedgerAsync();
        await ledger.AccountAsync("bank", normal: "debit");
        var ids = new string[wallets];
        for (var i = 0; i < wallets; i++) ids[i] = await ledger.AccountAsync($"wallet_{i}");
        return (ledger, ids);
    }

    /// <summary>Posts <paramref name="count"/> top-ups from the bank to the wallets in one batch; returns the transfer ids.</summary>
    public static async Task<List<string>> TopUpsAsync(LedgerClient ledger, string[] wallets, int count)
    {
        var prefix = "trf_" + Ids.NewUlid().ToLowerInvariant()[^8..];
        var transfers = Enumerable.Range(0, count).Select(i => new
        {
            id = $"{prefix}_{i}",
            debit_account = "bank",
            credit_account = wallets[i % wallets.Length],
            amount = 100 + i,
        }).ToArray();
        var r = await ledger.Http.PostJsonAsync("/v1/transfers/batch", new { transfers });
        Assert.True(r.Response.IsSuccessStatusCode, r.Body?.ToJsonString());
        Assert.All(r.Body!["results"]!.AsArray(), x => Assert.Equal("created", (string?)x!["status"]));
        return transfers.Select(t => t.id).ToList();
    }

    /// <summary>The tenant's events in commit (seq) order.</summary>
    public static async Task<List<(string Id, string Type, string Subject, string Payload)>> EventsAsync(NeracaServer server, string tenantId)
    {
        var database = server.Services.GetRequiredService<Database>();
        await using var c = await database.OpenAsync(CancellationToken.None);
        // As stored, then with the data the ledger renders from the journal filled in, as every reader of events does.
        var rows = (await c.QueryAsync<EventRow>($"SELECT {EventFeed.Columns} FROM events WHERE tenant_id = @tenantId ORDER BY seq", new { tenantId })).AsList();
        rows = await server.Services.GetRequiredService<EventData>().FillAsync(c, null, rows, CancellationToken.None);
        return rows.Select(r => (r.Id, r.Type, r.Subject, r.Payload)).ToList();
    }
}

public sealed class TransferEventTests(PostgresEventsServerFixture fixture) : IClassFixture<PostgresEventsServerFixture>
{
    NeracaServer Server => fixture.Server;

    [Fact]
    public async Task Transfer_whose_transaction_rolls_back_produces_no_event()
    {
        var tenant = await Server.NewTenantAsync();
        await using var receiver = await WebhookReceiver.StartAsync();
        Assert.Equal(HttpStatusCode.Created, (await tenant.Http.PostJsonAsync("/v1/webhooks", new { url = receiver.Url, event_types = new[] { "transfer.*" } })).Response.StatusCode);
        var ledger = new LedgerClient(tenant.Http);
        await ledger.LedgerAsync("doomed");
        await ledger.AccountAsync("doomed_bank", "doomed", "debit");
        await ledger.AccountAsync("doomed_wallet", "doomed");
        var ledgerId = (string)(await tenant.Http.GetJsonAsync("/v1/ledgers/doomed")).Body!["id"]!;

        // Make the posting transaction of this ledger fail at its very end, after its events and outbox rows were
        // written: the database rolls all of it back.
        var database = Server.Services.GetRequiredService<Database>();
        var function = "test_doom_" + Ids.NewUlid().ToLowerInvariant();
        await using (var c = await database.OpenAsync(CancellationToken.None))
        {
            await c.ExecuteAsync($"""
                CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.ledger_id = '{ledgerId}' THEN RAISE EXCEPTION 'rolled back by the test'; END IF;
                    RETURN NEW;
                END $$;
                CREATE TRIGGER {function} BEFORE INSERT ON chain_links FOR EACH ROW EXECUTE FUNCTION {function}();
                """);
        }
        try
        {
            var failed = await ledger.TransferAsync("trf_rolled_back", "doomed_bank", "doomed_wallet", 500);
            Assert.False(failed.Response.IsSuccessStatusCode, failed.Body?.ToJsonString());
        }
        finally
        {
            await using var c = await database.OpenAsync(CancellationToken.None);
            await c.ExecuteAsync($"DROP TRIGGER {function} ON chain_links; DROP FUNCTION {function}();");
        }
        Assert.Equal(HttpStatusCode.NotFound, (await tenant.Http.GetJsonAsync("/v1/transfers/trf_rolled_back")).Response.StatusCode);
        var committed = await ledger.TransferAsync("trf_committed", "doomed_bank", "doomed_wallet", 700);
        Assert.Equal(HttpStatusCode.Created, committed.Response.StatusCode);

        await Polling.Eventually(() => receiver.Accepted.Count == 1, "the committed transfer's event was not delivered");
        var events = await TransferLoad.EventsAsync(Server, tenant.Id);
        Assert.DoesNotContain(events, e => e.Subject == "trf_rolled_back" || e.Payload.Contains("trf_rolled_back", StringComparison.Ordinal));
        var posted = Assert.Single(events, e => e.Type == LedgerEventTypes.TransferPosted.Name);
        Assert.Equal("trf_committed", posted.Subject);
        Assert.Equal(posted.Id, Assert.Single(receiver.Accepted));
        Assert.Equal(0, await EventsTestKit.OutboxCountAsync(Server));
    }

    [Fact]
    public async Task Receiver_failing_three_times_gets_a_transfer_event_on_the_fourth_attempt_with_a_valid_signature()
    {
        var tenant = await Server.NewTenantAsync();
        await using var receiver = await WebhookReceiver.StartAsync();
        receiver.Respond = r => Task.FromResult(r.Attempt <= 3 ? 502 : 204);
        var created = await tenant.Http.PostJsonAsync("/v1/webhooks", new { url = receiver.Url, event_types = new[] { "transfer.posted" } });
        var secret = (string)created.Body!["secret"]!;
        var (ledger, wallets) = await TransferLoad.SetUpAsync(tenant, 1);
        var transferId = (await TransferLoad.TopUpsAsync(ledger, wallets, 1))[0];

        await Polling.Eventually(() => receiver.Accepted.Count == 1, "the transfer event was not accepted");
        var attempts = receiver.Requests.ToList();
        Assert.Equal(4, attempts.Count);
        Assert.Single(attempts.Select(a => a.EventId).Distinct());
        var fourth = attempts[3];
        Assert.True(WebhookSignature.Verify(secret, fourth.Signature, fourth.RawBody, DateTimeOffset.UtcNow, WebhookSignature.ToleranceDefault));
        var body = JsonNode.Parse(fourth.Body)!;
        Assert.Equal(LedgerEventTypes.TransferPosted.Name, (string?)body["type"]);
        Assert.Equal(transferId, (string?)body["subject"]);
        Assert.Equal(transferId, (string?)body["data"]!["id"]);
        Assert.Equal("bank", (string?)body["data"]!["debit_account"]);
    }

    [Fact]
    public async Task Always_failing_receiver_puts_transfer_events_in_the_dead_letter_queue_and_the_gauge_counts_them()
    {
        var tenant = await Server.NewTenantAsync();
        await using var receiver = await WebhookReceiver.StartAsync();
        receiver.Respond = _ => Task.FromResult(500);
        var created = await tenant.Http.PostJsonAsync("/v1/webhooks", new { url = receiver.Url, event_types = new[] { "transfer.posted" } });
        var webhookId = (string)created.Body!["id"]!;
        var before = EventsTestKit.ReadGauge(Server, "neraca.webhook.dead_letters") ?? 0;
        var (ledger, wallets) = await TransferLoad.SetUpAsync(tenant, 2);
        await TransferLoad.TopUpsAsync(ledger, wallets, 2);

        await Polling.Eventually(async () =>
        {
            var dead = await tenant.Http.GetJsonAsync($"/v1/webhooks/{webhookId}/deliveries?state=dead");
            return dead.Body!["data"]!.AsArray().Count == 2;
        }, "the transfer events did not reach the dead-letter queue");
        await Polling.Eventually(() => EventsTestKit.ReadGauge(Server, "neraca.webhook.dead_letters") >= before + 2,
            "the dead-letter gauge did not count them");
        Assert.Empty(receiver.Accepted);
    }
}
