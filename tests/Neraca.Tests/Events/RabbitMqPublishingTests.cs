using System.Text.Json.Nodes;
using Neraca.Ledger;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;
using RabbitMQ.Client;

namespace Neraca.Tests.Events;

/// <summary>One class, so its tests (which stop the shared broker) never overlap.</summary>
public sealed class RabbitMqPublishingTests
{
    static async Task<(NeracaServer Server, string Exchange)> StartServerAsync(RabbitMqServer rabbit)
    {
        var exchange = "neraca.test." + Ids.NewUlid().ToLowerInvariant();
        var server = await NeracaServer.StartAsync(await TestStores.NewDatabaseAsync(StoreKind.Postgres),
            [.. EventsTestKit.FastWorkerArgs, $"--Events:RabbitMqUrl={rabbit.Url}", $"--Events:RabbitMqExchange={exchange}",
             "--Events:RabbitMqConfirmTimeoutMs=3000"]);
        return (server, exchange);
    }

    /// <summary>A durable queue bound to every routing key of the exchange, declared before anything is published.</summary>
    static async Task<string> BindQueueAsync(RabbitMqServer rabbit, string exchange)
    {
        var factory = new ConnectionFactory { Uri = new Uri(rabbit.Url) };
        await using var connection = await factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        await channel.ExchangeDeclareAsync(exchange, ExchangeType.Topic, durable: true, autoDelete: false);
        var queue = exchange + ".all";
        await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false);
        await channel.QueueBindAsync(queue, exchange, "#");
        return queue;
    }

    sealed record Message(string MessageId, string RoutingKey, string? Type, JsonNode Body);

    static async Task<List<Message>> DrainAsync(RabbitMqServer rabbit, string queue)
    {
        var factory = new ConnectionFactory { Uri = new Uri(rabbit.Url) };
        await using var connection = await factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        var messages = new List<Message>();
        while (await channel.BasicGetAsync(queue, autoAck: true) is { } got)
            messages.Add(new Message(got.BasicProperties.MessageId!, got.RoutingKey, got.BasicProperties.Type, JsonNode.Parse(got.Body.Span)!));
        return messages;
    }

    [Fact]
    public async Task Every_event_is_published_to_the_topic_exchange_with_its_type_as_routing_key_and_its_id_as_message_id()
    {
        var rabbit = await RabbitMqServer.SharedAsync();
        var (server, exchange) = await StartServerAsync(rabbit);
        await using var _ = server;
        var queue = await BindQueueAsync(rabbit, exchange);
        var tenant = await server.NewTenantAsync();

        var ids = await EventsTestKit.AppendAsync(server, tenant.Id, (LedgerEventTypes.AccountCreated.Name, "acc_1"), (LedgerEventTypes.TransferPosted.Name, "trf_1"));
        await Polling.Eventually(async () => await EventsTestKit.OutboxCountAsync(server) == 0, "the outbox was not relayed");

        var messages = await DrainAsync(rabbit, queue);
        Assert.Equal(ids, messages.Select(m => m.MessageId));
        Assert.Equal([LedgerEventTypes.AccountCreated.Name, LedgerEventTypes.TransferPosted.Name], messages.Select(m => m.RoutingKey));
        Assert.Equal([LedgerEventTypes.AccountCreated.Name, LedgerEventTypes.TransferPosted.Name], messages.Select(m => m.Type));
        Assert.Equal("trf_1", (string?)messages[1].Body["data"]!["id"]);
        Assert.Equal(ids[1], (string?)messages[1].Body["id"]);
    }

    [Fact]
    public async Task Broker_stopped_during_load_loses_no_event_and_publishing_resumes_by_itself()
    {
        var rabbit = await RabbitMqServer.SharedAsync();
        var (server, exchange) = await StartServerAsync(rabbit);
        await using var _ = server;
        var queue = await BindQueueAsync(rabbit, exchange);
        var tenant = await server.NewTenantAsync();

        var (ledger, wallets) = await TransferLoad.SetUpAsync(tenant, 3);
        for (var i = 0; i < 5; i++) await TransferLoad.TopUpsAsync(ledger, wallets, 20);

        await rabbit.StopAppAsync();
        try
        {
            for (var i = 0; i < 5; i++) await TransferLoad.TopUpsAsync(ledger, wallets, 20);
            // Nothing can be confirmed while the broker is down, so these wait in the outbox.
            Assert.True(await EventsTestKit.OutboxCountAsync(server) > 0);
            await Polling.Eventually(() => EventsTestKit.ReadGauge(server, "neraca.outbox.lag") > 0, "the outbox lag gauge did not rise");
        }
        finally
        {
            await rabbit.StartAppAsync();
        }
        for (var i = 0; i < 3; i++) await TransferLoad.TopUpsAsync(ledger, wallets, 20);
        var ids = (await TransferLoad.EventsAsync(server, tenant.Id)).Select(e => e.Id).ToList();
        Assert.Equal(4 + 13 * 20, ids.Count);

        await Polling.Eventually(async () => await EventsTestKit.OutboxCountAsync(server) == 0, "publishing did not resume", timeout: TimeSpan.FromSeconds(60));
        var received = await DrainAsync(rabbit, queue);
        Assert.Equal(ids.Order(StringComparer.Ordinal), received.Select(m => m.MessageId).Distinct().Order(StringComparer.Ordinal));
        await Polling.Eventually(() => EventsTestKit.ReadGauge(server, "neraca.outbox.lag") == 0, "the lag gauge did not fall back to 0");
    }
}
