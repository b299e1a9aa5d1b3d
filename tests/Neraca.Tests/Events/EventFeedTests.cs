using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Ledger;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Ledger;
using Npgsql;

namespace Neraca.Tests.Events;

public abstract class EventFeedTests(EventsServerFixture fixture)
{
    protected NeracaServer Server => fixture.Server;

    protected static async Task<List<JsonNode>> ReadAllAsync(TestTenant tenant, string query = "", int limit = 2)
    {
        var all = new List<JsonNode>();
        var cursor = "";
        for (var page = 0; page < 1000; page++)
        {
            var sep = query.Length == 0 ? "?" : "&";
            var result = await tenant.Http.GetJsonAsync($"/v1/events{(query.Length == 0 ? "" : "?" + query)}{sep}limit={limit}{cursor}");
            Assert.Equal(HttpStatusCode.OK, result.Response.StatusCode);
            all.AddRange(result.Body!["data"]!.AsArray().Select(e => e!));
            cursor = "&after=" + (string)result.Body!["next_cursor"]!;
            if (!(bool)result.Body!["has_more"]!) return all;
        }
        throw new InvalidOperationException("feed did not end");
    }

    /// <summary>Reads from the cursor until the feed has served <paramref name="count"/> events. On PostgreSQL an event
    /// is served once every older transaction in the cluster has ended, so a just-committed one can take a moment.</summary>
    protected static async Task<(List<JsonNode> Events, string Cursor)> ReadUntilAsync(TestTenant tenant, string? cursor, int count)
    {
        var events = new List<JsonNode>();
        await Polling.Eventually(async () =>
        {
            var page = await tenant.Http.GetJsonAsync("/v1/events?limit=100" + (cursor is null ? "" : "&after=" + cursor));
            Assert.Equal(HttpStatusCode.OK, page.Response.StatusCode);
            events.AddRange(page.Body!["data"]!.AsArray().Select(e => e!));
            cursor = (string)page.Body!["next_cursor"]!;
            return events.Count >= count;
        }, $"the feed did not serve {count} events");
        return (events, cursor!);
    }

    [Fact]
    public async Task Feed_pages_through_the_tenants_events_in_order_and_only_its_own()
    {
        var tenant = await Server.NewTenantAsync();
        var other = await Server.NewTenantAsync();
        var ids = await EventsTestKit.AppendAsync(Server, tenant.Id,
            (LedgerEventTypes.AccountCreated.Name, "acc_1"), (LedgerEventTypes.TransferPending.Name, "trf_1"), (LedgerEventTypes.TransferPosted.Name, "trf_1"),
            (LedgerEventTypes.TransferVoided.Name, "trf_2"), (LedgerEventTypes.TransferPosted.Name, "trf_3"));
        await EventsTestKit.AppendAsync(Server, other.Id, (LedgerEventTypes.AccountCreated.Name, "acc_x"));

        await ReadUntilAsync(tenant, null, ids.Count);
        var all = await ReadAllAsync(tenant);
        Assert.Equal(ids, all.Select(e => (string)e["id"]!));
        var first = all[0];
        Assert.Equal(LedgerEventTypes.AccountCreated.Name, (string?)first["type"]);
        Assert.Equal("acc_1", (string?)first["subject"]);
        Assert.Equal("ldg_test", (string?)first["ledger_id"]);
        Assert.Equal("acc_1", (string?)first["data"]!["id"]);
        Assert.NotNull(first["created_at"]);

        var posted = await ReadAllAsync(tenant, "type=transfer.posted,transfer.voided");
        Assert.Equal([ids[2], ids[3], ids[4]], posted.Select(e => (string)e["id"]!));
    }

    [Fact]
    public async Task Transfer_events_are_rendered_from_the_journal_as_the_api_showed_the_transfer_at_each_event()
    {
        var tenant = await Server.NewTenantAsync();
        var ledger = new LedgerClient(tenant.Http);
        await ledger.LedgerAsync("journal");
        await ledger.AccountAsync("j_bank", "journal", "debit");
        await ledger.AccountAsync("j_wallet", "journal");
        var expected = new List<(string Type, JsonNode? Data)>();
        async Task Expect(string type, Task<(HttpResponseMessage Response, JsonNode? Body)> call)
        {
            var (response, body) = await call;
            Assert.True(response.IsSuccessStatusCode, body?.ToJsonString());
            expected.Add((type, body));
        }
        // Each pending transfer is resolved before the feed is read: its first event must still show it pending.
        await Expect("transfer.pending", ledger.TransferAsync("trf_j1", "j_bank", "j_wallet", 900,
            new { pending = true, timeout_seconds = 3600, code = 7, description = "hold", metadata = new { k = "v", n = 1 } }));
        await Expect("transfer.posted", tenant.Http.PostJsonAsync("/v1/transfers/trf_j1/post", new { amount = 600 }));
        await Expect("transfer.pending", ledger.TransferAsync("trf_j2", "j_bank", "j_wallet", 300, new { pending = true }));
        await Expect("transfer.voided", tenant.Http.PostJsonAsync("/v1/transfers/trf_j2/void", new { }));
        await Expect("transfer.posted", ledger.TransferAsync("trf_j3", "j_bank", "j_wallet", 50));
        await Expect("transfer.posted", tenant.Http.PostJsonAsync("/v1/transfers/trf_j3/reverse", new { id = "trf_j3_back", amount = 20 }));

        var (events, _) = await ReadUntilAsync(tenant, null, 2 + expected.Count);
        var transfers = events.Where(e => ((string)e["type"]!).StartsWith("transfer.", StringComparison.Ordinal)).ToList();
        Assert.Equal(expected.Select(x => x.Type), transfers.Select(e => (string)e["type"]!));
        Assert.Equal(expected.Select(x => x.Data!.ToJsonString()), transfers.Select(e => e["data"]!.ToJsonString()));
        Assert.Equal(expected.Select(x => (string)x.Data!["id"]!), transfers.Select(e => (string)e["subject"]!));

        // The posting wrote no payload: the data above came from the transfer rows.
        var database = Server.Services.GetRequiredService<Database>();
        await using var c = await database.OpenAsync(CancellationToken.None);
        var stored = await Dapper.SqlMapper.QueryAsync<string>(c, "SELECT payload FROM events WHERE tenant_id = @t AND type LIKE 'transfer.%'", new { t = tenant.Id });
        Assert.Equal(Enumerable.Repeat("", expected.Count), stored);
    }

    [Fact]
    public async Task Polling_with_the_last_cursor_returns_only_newer_events()
    {
        var tenant = await Server.NewTenantAsync();
        var older = await EventsTestKit.AppendAsync(Server, tenant.Id, (LedgerEventTypes.AccountCreated.Name, "acc_1"));
        var (first, cursor) = await ReadUntilAsync(tenant, null, 1);
        Assert.Equal(older, first.Select(e => (string)e["id"]!));
        var empty = await tenant.Http.GetJsonAsync($"/v1/events?after={cursor}");
        Assert.Empty(empty.Body!["data"]!.AsArray());

        var newer = await EventsTestKit.AppendAsync(Server, tenant.Id, (LedgerEventTypes.AccountCreated.Name, "acc_2"));
        var (next, _) = await ReadUntilAsync(tenant, (string)empty.Body!["next_cursor"]!, 1);
        Assert.Equal(newer, next.Select(e => (string)e["id"]!));
    }

    [Fact]
    public async Task Bad_cursor_limit_or_type_is_a_validation_problem()
    {
        var tenant = await Server.NewTenantAsync();
        (await tenant.Http.GetJsonAsync("/v1/events?after=abc")).AssertProblem(400, "invalid_cursor");
        (await tenant.Http.GetJsonAsync("/v1/events?after=1.2.3")).AssertProblem(400, "invalid_cursor");
        (await tenant.Http.GetJsonAsync("/v1/events?limit=0")).AssertProblem(400, "validation_failed");
        (await tenant.Http.GetJsonAsync("/v1/events?limit=100000")).AssertProblem(400, "validation_failed");
        (await tenant.Http.GetJsonAsync("/v1/events?type=transfer.*")).AssertProblem(400, "validation_failed");
    }

    [Fact]
    public async Task Stream_sends_events_as_server_sent_events_and_resumes_after_last_event_id()
    {
        var tenant = await Server.NewTenantAsync();
        var ids = await EventsTestKit.AppendAsync(Server, tenant.Id, (LedgerEventTypes.AccountCreated.Name, "acc_1"), (LedgerEventTypes.TransferPosted.Name, "trf_1"));

        var (received, lastId) = await ReadStreamAsync(tenant, "/v1/events/stream?after=0", null, 2);
        Assert.Equal(ids, received.Select(e => (string)e["id"]!));

        var later = await EventsTestKit.AppendAsync(Server, tenant.Id, (LedgerEventTypes.TransferVoided.Name, "trf_1"));
        var (resumed, _) = await ReadStreamAsync(tenant, "/v1/events/stream", lastId, 1);
        Assert.Equal(later, resumed.Select(e => (string)e["id"]!));
    }

    [Fact]
    public async Task Stream_without_a_resume_point_starts_at_the_end_and_delivers_new_events()
    {
        var tenant = await Server.NewTenantAsync();
        await EventsTestKit.AppendAsync(Server, tenant.Id, (LedgerEventTypes.AccountCreated.Name, "acc_old"));
        await ReadUntilAsync(tenant, null, 1); // settled: the stream's starting point is past it
        List<string> fresh = [];
        // The stream takes its starting point before it sends its headers: append once they are here.
        var (received, _) = await ReadStreamAsync(tenant, "/v1/events/stream", null, 1,
            opened: async () => fresh = await EventsTestKit.AppendAsync(Server, tenant.Id, (LedgerEventTypes.AccountCreated.Name, "acc_new")));
        Assert.Equal(fresh, received.Select(e => (string)e["id"]!));
    }

    static async Task<(List<JsonNode> Events, string? LastId)> ReadStreamAsync(TestTenant tenant, string path, string? lastEventId, int count,
        Func<Task>? opened = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (lastEventId is not null) request.Headers.Add("Last-Event-ID", lastEventId);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var response = await tenant.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        if (opened is not null) await opened();
        await using var stream = await response.Content.ReadAsStreamAsync(timeout.Token);
        using var reader = new StreamReader(stream);
        var events = new List<JsonNode>();
        string? id = null;
        string? type = null;
        while (events.Count < count)
        {
            var line = await reader.ReadLineAsync(timeout.Token) ?? throw new InvalidOperationException("stream ended");
            if (line.StartsWith("id: ", StringComparison.Ordinal)) id = line[4..];
            else if (line.StartsWith("event: ", StringComparison.Ordinal)) type = line[7..];
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                var e = JsonNode.Parse(line[6..])!;
                Assert.Equal(type, (string?)e["type"]);
                events.Add(e);
            }
        }
        return (events, id);
    }
}

public sealed class SqliteEventFeedTests(SqliteEventsServerFixture fixture) : EventFeedTests(fixture), IClassFixture<SqliteEventsServerFixture>;

public sealed class PostgresEventFeedTests(PostgresEventsServerFixture fixture) : EventFeedTests(fixture), IClassFixture<PostgresEventsServerFixture>
{
    NpgsqlDataSource Source => Server.Services.GetRequiredService<Database>().Postgres!;

    static async Task<long> InsertEventAsync(NpgsqlConnection connection, string tenantId, string subject, long? seq = null)
    {
        await using var command = new NpgsqlCommand(seq is null
            ? "INSERT INTO events (id, tenant_id, type, subject, payload, created_at_us) VALUES (@id, @t, 'transfer.posted', @s, '{}', 0) RETURNING seq"
            : "INSERT INTO events (seq, id, tenant_id, type, subject, payload, created_at_us) VALUES (@seq, @id, @t, 'transfer.posted', @s, '{}', 0) RETURNING seq",
            connection);
        command.Parameters.AddWithValue("id", "evt_" + Ids.NewUlid());
        command.Parameters.AddWithValue("t", tenantId);
        command.Parameters.AddWithValue("s", subject);
        if (seq is not null) command.Parameters.AddWithValue("seq", seq.Value);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    static async Task<long> NextSeqAsync(NpgsqlConnection connection)
    {
        await using var command = new NpgsqlCommand("SELECT nextval(pg_get_serial_sequence('events', 'seq'))", connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    [Fact]
    public async Task An_event_whose_transaction_commits_after_a_later_seq_was_served_is_not_skipped()
    {
        // Regression for the classic bigserial feed bug: A takes seq n, B takes n+1 and commits first; a reader serves
        // n+1; then A commits n. A naive "seq > cursor" feed never serves n.
        var tenant = await Server.NewTenantAsync();
        await using var a = await Source.OpenConnectionAsync();
        // A's seq, taken before B's and outside A's transaction: nextval gives its transaction an id whenever it logs
        // the sequence (every 32 values), and A must have none yet, or the feed rightly holds B's event back behind it.
        var reserved = await NextSeqAsync(a);
        await using var txA = await a.BeginTransactionAsync();

        await using (var b = await Source.OpenConnectionAsync())
        {
            await using var txB = await b.BeginTransactionAsync();
            await InsertEventAsync(b, tenant.Id, "trf_b");
            await txB.CommitAsync();
        }
        var (first, cursor) = await ReadUntilAsync(tenant, null, 1);
        Assert.Equal(["trf_b"], first.Select(e => (string)e["subject"]!));

        await InsertEventAsync(a, tenant.Id, "trf_a", reserved);
        var whileInFlight = await tenant.Http.GetJsonAsync($"/v1/events?after={cursor}");
        Assert.Empty(whileInFlight.Body!["data"]!.AsArray());
        await txA.CommitAsync();

        var (second, end) = await ReadUntilAsync(tenant, (string)whileInFlight.Body!["next_cursor"]!, 1);
        Assert.Equal(["trf_a"], second.Select(e => (string)e["subject"]!));
        var third = await tenant.Http.GetJsonAsync($"/v1/events?after={end}");
        Assert.Empty(third.Body!["data"]!.AsArray());
    }

    [Fact]
    public async Task Late_events_that_span_several_pages_are_each_served_exactly_once()
    {
        var tenant = await Server.NewTenantAsync();
        await using var a = await Source.OpenConnectionAsync();
        var reserved = new List<long>();
        for (var i = 0; i < 5; i++) reserved.Add(await NextSeqAsync(a)); // outside A's transaction (see above)
        await using var txA = await a.BeginTransactionAsync();

        await using (var b = await Source.OpenConnectionAsync())
        {
            for (var i = 0; i < 3; i++) await InsertEventAsync(b, tenant.Id, $"early_{i}"); // three committed transactions
        }
        var (early, cursor) = await ReadUntilAsync(tenant, null, 3);
        var served = early.Select(e => (string)e["subject"]!).ToList();
        Assert.Equal(["early_0", "early_1", "early_2"], served);

        foreach (var seq in reserved) await InsertEventAsync(a, tenant.Id, $"late_{seq}", seq);
        await txA.CommitAsync();
        await using (var b = await Source.OpenConnectionAsync())
            await InsertEventAsync(b, tenant.Id, "after");

        await Polling.Eventually(async () =>
        {
            var next = await tenant.Http.GetJsonAsync($"/v1/events?limit=2&after={cursor}");
            served.AddRange(next.Body!["data"]!.AsArray().Select(e => (string)e!["subject"]!));
            cursor = (string)next.Body!["next_cursor"]!;
            return served.Count >= 9;
        }, "the late events were not all served");
        var rest = await tenant.Http.GetJsonAsync($"/v1/events?after={cursor}");
        Assert.Empty(rest.Body!["data"]!.AsArray());
        Assert.Equal(9, served.Count);
        Assert.Equal(served.Distinct().Count(), served.Count);
        Assert.Equal(reserved.Select(s => $"late_{s}"), served.Skip(3).Take(5));
        Assert.Equal("after", served[^1]);
    }
}
