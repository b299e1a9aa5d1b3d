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

    /// <summary>A posting commit's events share one outbox row (issue #21): batches of 60 transfers on two ledgers (and one
    /// of 1,200, whose data is read in chunks) leave one row per commit, and a relay whose batch is 25 events still moves
    /// each commit whole, every event once.</summary>
    [Fact]
    public async Task A_posting_commits_events_share_one_outbox_row_and_move_whole_and_once()
    {
        var database = await TestStores.NewDatabaseAsync(StoreKind.Postgres);
        await using var server = await NeracaServer.StartAsync(database, "--role", "api", "--Events:RelayBatchSizeMax=25");
        var tenant = await server.NewTenantAsync();
        var created = await tenant.Http.PostJsonAsync("/v1/webhooks", new { url = "https://8.8.8.8/hook", event_types = new[] { "transfer.*" } });
        var webhookId = (string)created.Body!["id"]!;
        var ledger = new Ledger.LedgerClient(tenant.Http);
        foreach (var code in new[] { "la", "lb" })
        {
            await ledger.LedgerAsync(code);
            await ledger.AccountAsync($"{code}_bank", code, "debit");
            for (var i = 0; i < 3; i++) await ledger.AccountAsync($"{code}_w{i}", code);
        }
        var relay = server.Services.GetRequiredService<OutboxRelay>();
        while (await EventsTestKit.OutboxCountAsync(server) > 0) await relay.RelayBatchAsync(CancellationToken.None); // the accounts' events

        var posts = Enumerable.Range(0, 9).Select(n => tenant.Http.PostJsonAsync("/v1/transfers/batch", new
        {
            transfers = Enumerable.Range(0, n == 8 ? 1200 : 60).Select(i => new
            {
                id = $"t{n}_{i}", debit_account = $"{(n % 2 == 0 ? "la" : "lb")}_bank", credit_account = $"{(n % 2 == 0 ? "la" : "lb")}_w{i % 3}", amount = 1 + i,
            }).ToArray(),
        }));
        Assert.All(await Task.WhenAll(posts), r => Assert.True(r.Response.IsSuccessStatusCode, r.Body?.ToJsonString()));
        var rows = (int)await EventsTestKit.OutboxCountAsync(server);
        Assert.InRange(rows, 1, 9); // one per commit; a commit may carry several requests

        var rounds = new List<int>();
        while (await EventsTestKit.OutboxCountAsync(server) > 0) rounds.Add(await relay.RelayBatchAsync(CancellationToken.None));
        Assert.Equal(rows, rounds.Count);
        Assert.All(rounds, n => Assert.Equal(0, n % 60));
        Assert.Equal(1680, rounds.Sum());
        var deliveries = new List<string>();
        for (string? after = ""; after is not null;)
        {
            var page = (await tenant.Http.GetJsonAsync($"/v1/webhooks/{webhookId}/deliveries?limit=1000&after={after}")).Body!;
            deliveries.AddRange(page["data"]!.AsArray().Select(d => (string)d!["event_id"]!));
            after = (string?)page["next_cursor"];
        }
        Assert.Equal(1680, deliveries.Distinct().Count());
    }

    /// <summary>On PostgreSQL concurrent transactions interleave their events' seqs, so an outbox row's range holds other
    /// transactions' events too; it stands only for its own transaction's.</summary>
    [Fact]
    public async Task An_outbox_row_stands_only_for_its_own_transactions_events_when_another_interleaves()
    {
        var database = await TestStores.NewDatabaseAsync(StoreKind.Postgres);
        await using var server = await NeracaServer.StartAsync(database, "--role", "api");
        var tenant = await server.NewTenantAsync();
        var created = await tenant.Http.PostJsonAsync("/v1/webhooks", new { url = "https://8.8.8.8/hook", event_types = new[] { "*" } });
        var webhookId = (string)created.Body!["id"]!;
        await using var one = new Npgsql.NpgsqlConnection(database);
        await using var two = new Npgsql.NpgsqlConnection(database);
        await one.OpenAsync();
        await two.OpenAsync();
        await using var tx1 = await one.BeginTransactionAsync();
        await using var tx2 = await two.BeginTransactionAsync();
        var seqs = new Dictionary<Npgsql.NpgsqlConnection, List<long>> { [one] = [], [two] = [] };
        foreach (var c in new[] { one, two, one, two, one })
            seqs[c].Add(await Dapper.SqlMapper.ExecuteScalarAsync<long>(c, """
                INSERT INTO events (id, tenant_id, ledger_id, type, subject, payload, created_at_us)
                VALUES ('evt_' || gen_random_uuid(), @t, @l, 'transfer.posted', 'trf', '{"debit_account":"a","credit_account":"b"}', 1) RETURNING seq
                """, new { t = tenant.Id, l = c == one ? "ldg_one" : "ldg_two" }));
        foreach (var c in new[] { one, two })
            await Dapper.SqlMapper.ExecuteAsync(c, "INSERT INTO outbox (event_seq, last_seq) VALUES (@first, @last)", new { first = seqs[c][0], last = seqs[c][^1] });
        await tx1.CommitAsync();
        await tx2.CommitAsync();

        var relayed = await server.Services.GetRequiredService<OutboxRelay>().RelayBatchAsync(CancellationToken.None);
        Assert.Equal(5, relayed);
        Assert.Equal(0, await EventsTestKit.OutboxCountAsync(server));
        var deliveries = (await tenant.Http.GetJsonAsync($"/v1/webhooks/{webhookId}/deliveries?limit=100")).Body!["data"]!.AsArray();
        Assert.Equal(5, deliveries.Count);
    }

    /// <summary>Found by the ledgers benchmark: the outbox trigger's NOTIFY ran inside every posting transaction, and
    /// PostgreSQL holds one database-wide lock from a notifying transaction's pre-commit until its commit is flushed, so
    /// the commits of different ledgers took turns (uniform c=64 over 4 ledgers: 3,141 transfers/s against 5,869 on
    /// one). Now a transaction that turns the trigger off sends nothing at its commit, and the posting path notifies
    /// after it: a process without a relay of its own (an api) still wakes the relays of the others.</summary>
    [Fact]
    public async Task Posting_commits_do_not_notify_inside_their_transaction_yet_wake_other_processes_after_it()
    {
        var database = await TestStores.NewDatabaseAsync(StoreKind.Postgres);
        var server = await NeracaServer.StartAsync(database, "--role", "api");
        await using var _ = server;
        var tenant = await server.NewTenantAsync();
        var (ledger, wallets) = await TransferLoad.SetUpAsync(tenant, 2);

        await using var listener = new Npgsql.NpgsqlConnection(database);
        await listener.OpenAsync();
        var notifications = 0;
        listener.Notification += (_, _) => Interlocked.Increment(ref notifications);
        await using (var listen = new Npgsql.NpgsqlCommand($"LISTEN {PostgresEventListener.Channel}", listener)) await listen.ExecuteNonQueryAsync();

        await AppendAsync(suppressed: true);
        await listener.WaitAsync(TimeSpan.FromSeconds(1));
        Assert.Equal(0, Volatile.Read(ref notifications));
        await AppendAsync(suppressed: false); // the trigger still serves every other writer of events
        Assert.True(await listener.WaitAsync(TimeSpan.FromSeconds(10)), "an event appended without the setting sent no notification");
        Assert.Equal(1, Volatile.Read(ref notifications));

        await TransferLoad.TopUpsAsync(ledger, wallets, 3);
        Assert.True(await listener.WaitAsync(TimeSpan.FromSeconds(10)), "a posting commit woke no other process");
        Assert.True(Volatile.Read(ref notifications) >= 2);

        async Task AppendAsync(bool suppressed)
        {
            await using var connection = await server.Services.GetRequiredService<Database>().OpenAsync(CancellationToken.None);
            await using var tx = await connection.BeginTransactionAsync();
            if (suppressed)
            {
                await using var set = connection.CreateCommand();
                set.Transaction = tx;
                set.CommandText = OutboxNotifier.SuppressTriggerSql;
                await set.ExecuteNonQueryAsync();
            }
            await EventLog.AppendAsync(connection, tx, tenant.Id, null, new NewEvent(new EventType("test.appended"), "sub_1", "{}"),
                DbTime.ToMicros(DateTimeOffset.UtcNow), CancellationToken.None);
            await tx.CommitAsync();
        }
    }
}
