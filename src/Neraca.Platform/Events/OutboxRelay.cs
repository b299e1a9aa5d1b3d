using System.Data.Common;
using Dapper;
using Microsoft.Extensions.Options;
using Neraca.Storage;

namespace Neraca.Events;

/// <summary>Moves committed events out of the outbox: fans each out into one webhook delivery per matching endpoint
/// and, when configured, publishes it to RabbitMQ and waits for the broker's confirm. Only then is its outbox row
/// deleted, in the same transaction as the deliveries, so a crash anywhere repeats the work (at least once) and never
/// loses it; consumers deduplicate on the event id. A posting commit's events share one outbox row (see
/// <see cref="EventLog"/>) and are relayed together.</summary>
/// <remarks>On PostgreSQL several workers relay at once: each claims outbox rows with <c>FOR UPDATE SKIP LOCKED</c>
/// and holds them until its transaction ends, so no row is claimed twice. To keep the events of one ledger (so of every
/// account) in order across workers, a worker defers any claimed event whose ledger has an older outbox row it did not
/// claim (another worker holds it); it is relayed in a later round, after that one. Workers still relay different
/// ledgers in parallel.</remarks>
public sealed partial class OutboxRelay
{
    readonly Database database;
    readonly SqlDialect dialect;
    readonly EventData data;
    readonly EventSignals signals;
    readonly IOptions<EventsOptions> options;
    readonly TimeProvider clock;
    readonly ILogger<OutboxRelay> logger;
    readonly RabbitMqPublisher? rabbit;

    /// <summary>Several workers claiming with SKIP LOCKED (PostgreSQL), or the single embedded relay (SQLite).</summary>
    readonly Func<CancellationToken, Task<int>> relay;

    public OutboxRelay(Database database, SqlDialect dialect, EventData data, EventSignals signals, IOptions<EventsOptions> options,
        TimeProvider clock, ILogger<OutboxRelay> logger, RabbitMqPublisher? rabbit = null)
    {
        this.database = database;
        this.dialect = dialect;
        this.data = data;
        this.signals = signals;
        this.options = options;
        this.clock = clock;
        this.logger = logger;
        this.rabbit = rabbit;
        relay = dialect.Choose<Func<CancellationToken, Task<int>>>(() => RelayPostgresAsync, () => RelaySqliteAsync);
    }

    /// <summary>Relays one batch; returns how many events it relayed (0 when the outbox is empty).</summary>
    public async Task<int> RelayBatchAsync(CancellationToken ct)
    {
        var relayed = await relay(ct);
        if (relayed > 0) signals.Deliveries.Pulse();
        return relayed;
    }

    async Task<int> RelayPostgresAsync(CancellationToken ct)
    {
        var batch = options.Value.RelayBatchSizeMax;
        await using var connection = await database.OpenAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        // A row stands for one event or for a commit's: first see how many whole rows fit the batch, then lock only
        // those (a row lock is a write; locking rows the round leaves doubled the relay's cost with small commits).
        var next = (await connection.QueryAsync<OutboxRow>(new CommandDefinition(
            $"SELECT {OutboxColumns} FROM outbox ORDER BY event_seq LIMIT @batch", new { batch }, tx, cancellationToken: ct))).AsList();
        if (next.Count == 0) return 0;
        var claimed = (await connection.QueryAsync<OutboxRow>(new CommandDefinition(
            $"SELECT {OutboxColumns} FROM outbox ORDER BY event_seq LIMIT @fit FOR UPDATE SKIP LOCKED",
            new { fit = WithinBatch(next, batch).Count }, tx, cancellationToken: ct))).AsList();
        if (claimed.Count == 0) return 0;
        var rows = WithinBatch(claimed, batch);
        // A row's events: those of its first event's transaction between its first and last seq (other transactions'
        // events may interleave in seq; see EventLog). Per row, by primary key: joined plainly, PostgreSQL hashed the
        // whole events table for every round (47 ms against 0.2 ms on 500,000 events); OFFSET 0 keeps the lateral
        // subquery a parameterized index scan.
        var events = (await connection.QueryAsync<long, EventRow, (long Row, EventRow Event)>(new CommandDefinition($"""
            SELECT r.first_seq AS Row, {EventFeed.ColumnsOf("e")}
            FROM unnest(@firsts, @lasts) AS r(first_seq, last_seq)
            CROSS JOIN LATERAL (
                SELECT e.* FROM events f JOIN events e ON e.seq BETWEEN f.seq AND r.last_seq AND e.tx_id = f.tx_id
                WHERE f.seq = r.first_seq OFFSET 0) e
            ORDER BY e.seq
            """, new { firsts = rows.Select(r => r.First).ToArray(), lasts = rows.Select(r => r.Last ?? r.First).ToArray() }, tx, cancellationToken: ct),
            (row, e) => (row, e), splitOn: "Seq")).AsList();
        // Outbox rows below the last claimed one that this worker skipped are held by another worker; usually there are
        // none. Looked up by the outbox key first, then their events by seq: joined in one statement, PostgreSQL planned
        // a hash join over the whole events table (parallel workers, temp files) for every relay round.
        var skipped = (await connection.QueryAsync<long>(new CommandDefinition(
            "SELECT event_seq FROM outbox WHERE event_seq < @last AND NOT (event_seq = ANY(@claimed))",
            new { last = rows[^1].First, claimed = claimed.Select(r => r.First).ToArray() }, tx, cancellationToken: ct))).ToArray();
        var blockers = new Dictionary<(string TenantId, string Stream), long>();
        if (skipped.Length > 0)
        {
            var streams = events.Select(e => Stream(e.Event)).Distinct().ToArray();
            blockers = (await connection.QueryAsync<(string TenantId, string Stream, long Seq)>(new CommandDefinition("""
                SELECT tenant_id, COALESCE(ledger_id, subject), min(seq) FROM events
                WHERE seq = ANY(@skipped) AND COALESCE(ledger_id, subject) = ANY(@streams)
                GROUP BY tenant_id, COALESCE(ledger_id, subject)
                """, new { skipped, streams }, tx, cancellationToken: ct)))
                .ToDictionary(b => (b.TenantId, b.Stream), b => b.Seq);
        }
        // A row is relayed whole or not at all (a commit's events are of one stream, so all wait or none).
        bool Ready(EventRow e) => !blockers.TryGetValue((e.TenantId, Stream(e)), out var first) || e.Seq < first;
        var held = events.Where(x => !Ready(x.Event)).Select(x => x.Row).ToHashSet();
        var ready = events.Where(x => !held.Contains(x.Row)).Select(x => x.Event).ToList();
        if (ready.Count == 0) return 0;

        ready = await FanOutAsync(connection, tx, ready, InsertDeliveriesUnnestAsync, ct);
        if (rabbit is not null) await rabbit.PublishAsync(await data.FillAsync(connection, tx, ready, ct), ct);
        await connection.ExecuteAsync(new CommandDefinition("DELETE FROM outbox WHERE event_seq = ANY(@keys)",
            new { keys = rows.Select(r => r.First).Where(k => !held.Contains(k)).ToArray() }, tx, cancellationToken: ct));
        await tx.CommitAsync(ct);
        return ready.Count;
    }

    /// <summary>An outbox row: its first event, and its last when it stands for a commit's events.</summary>
    sealed record OutboxRow(long First, long? Last);

    const string OutboxColumns = "event_seq AS First, last_seq AS Last";

    /// <summary>The rows a round relays: whole rows, in order, up to <paramref name="batch"/> events (at least one row,
    /// however many events it stands for).</summary>
    static List<OutboxRow> WithinBatch(List<OutboxRow> claimed, int batch)
    {
        var taken = new List<OutboxRow>();
        long events = 0;
        foreach (var row in claimed)
        {
            // An upper bound: other transactions' events may lie in between.
            var count = (row.Last ?? row.First) - row.First + 1;
            if (taken.Count > 0 && events + count > batch) break;
            taken.Add(row);
            events += count;
        }
        return taken;
    }

    /// <summary>The unit of ordering across relays: the ledger, or the subject of an event outside any ledger.</summary>
    static string Stream(EventRow e) => e.LedgerId ?? e.Subject;

    /// <summary>SQLite is the single-node embedded store: one relay, and one writer at a time. It reads without holding
    /// the write lock, publishes, then records the fan-out and deletes the rows in one short write transaction. With one
    /// writer a row's events are consecutive.</summary>
    async Task<int> RelaySqliteAsync(CancellationToken ct)
    {
        var batch = options.Value.RelayBatchSizeMax;
        await using var connection = await database.OpenAsync(ct);
        var rows = WithinBatch((await connection.QueryAsync<OutboxRow>(new CommandDefinition(
            $"SELECT {OutboxColumns} FROM outbox ORDER BY event_seq LIMIT @batch", new { batch }, cancellationToken: ct))).AsList(), batch);
        if (rows.Count == 0) return 0;
        var events = new List<EventRow>();
        foreach (var row in rows)
            events.AddRange(await connection.QueryAsync<EventRow>(new CommandDefinition(
                $"SELECT {EventFeed.Columns} FROM events WHERE seq BETWEEN @first AND @last ORDER BY seq",
                new { first = row.First, last = row.Last ?? row.First }, cancellationToken: ct)));
        if (rabbit is not null)
        {
            events = await data.FillAsync(connection, null, events, ct);
            await rabbit.PublishAsync(events, ct);
        }
        await using var tx = await dialect.BeginWriteAsync(connection, ct);
        await FanOutAsync(connection, tx, events, InsertDeliveriesAsync, ct);
        await connection.ExecuteAsync(new CommandDefinition("DELETE FROM outbox WHERE event_seq IN @keys",
            new { keys = rows.Select(r => r.First).ToArray() }, tx, cancellationToken: ct));
        await tx.CommitAsync(ct);
        return events.Count;
    }

    /// <summary>One delivery row per (enabled endpoint whose patterns match, event). Relaying the same event twice
    /// (after a crash) adds nothing: the rows are unique per endpoint and event. Returns the events, with their data
    /// filled in when there were endpoints to match (a transfer's ordering keys are its accounts, in its data).</summary>
    async Task<List<EventRow>> FanOutAsync(DbConnection connection, DbTransaction tx, List<EventRow> events,
        Func<DbConnection, DbTransaction, List<DeliveryInsert>, long, CancellationToken, Task> insert, CancellationToken ct)
    {
        var tenants = events.Select(e => e.TenantId).Distinct().ToArray();
        var endpointsSql = $"SELECT tenant_id, id, event_types FROM webhook_endpoints WHERE state = 1 AND {dialect.InList("tenant_id", "tenants")}";
        var endpoints = (await connection.QueryAsync<(string TenantId, string Id, string EventTypes)>(new CommandDefinition(
            endpointsSql, new { tenants }, tx, cancellationToken: ct))).ToLookup(e => e.TenantId);
        if (endpoints.Count == 0) return events;
        events = await data.FillAsync(connection, tx, events, ct);

        var now = DbTime.ToMicros(clock.GetUtcNow());
        var rows = new List<DeliveryInsert>();
        foreach (var e in events)
        {
            foreach (var endpoint in endpoints[e.TenantId])
            {
                if (!endpoint.EventTypes.Split(' ').Any(p => EventTypes.Matches(p, e.Type))) continue;
                var (key, key2) = OrderingKeys(e);
                rows.Add(new DeliveryInsert("whd_" + Ids.NewUlid(), e.TenantId, endpoint.Id, e.Seq, key, key2, now));
            }
        }
        if (rows.Count > 0) await insert(connection, tx, rows, now, ct);
        return events;
    }

    /// <summary>PostgreSQL: all deliveries in one statement, one array parameter per column.</summary>
    static Task InsertDeliveriesUnnestAsync(DbConnection connection, DbTransaction tx, List<DeliveryInsert> rows, long now, CancellationToken ct) =>
        connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_seq, ordering_key, ordering_key2, state, next_attempt_at_us, created_at_us)
            SELECT d.id, d.tenant_id, d.endpoint_id, d.event_seq, d.ordering_key, d.ordering_key2, 1, @now, @now
            FROM unnest(@ids, @tenantIds, @endpointIds, @seqs, @keys, @keys2) AS d (id, tenant_id, endpoint_id, event_seq, ordering_key, ordering_key2)
            ON CONFLICT (tenant_id, endpoint_id, event_seq) DO NOTHING
            """, new
            {
                now,
                ids = rows.Select(r => r.Id).ToArray(),
                tenantIds = rows.Select(r => r.TenantId).ToArray(),
                endpointIds = rows.Select(r => r.EndpointId).ToArray(),
                seqs = rows.Select(r => r.EventSeq).ToArray(),
                keys = rows.Select(r => r.OrderingKey).ToArray(),
                keys2 = rows.Select(r => r.OrderingKey2).ToArray(),
            }, tx, cancellationToken: ct));

    /// <summary>SQLite: one prepared insert per delivery (Dapper runs it for each row), inside the one write transaction.</summary>
    static Task InsertDeliveriesAsync(DbConnection connection, DbTransaction tx, List<DeliveryInsert> rows, long now, CancellationToken ct) =>
        connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_seq, ordering_key, ordering_key2, state, next_attempt_at_us, created_at_us)
            VALUES (@Id, @TenantId, @EndpointId, @EventSeq, @OrderingKey, @OrderingKey2, 1, @NowUs, @NowUs)
            ON CONFLICT (tenant_id, endpoint_id, event_seq) DO NOTHING
            """, rows, tx, cancellationToken: ct));

    sealed record DeliveryInsert(string Id, string TenantId, string EndpointId, long EventSeq, string OrderingKey, string? OrderingKey2, long NowUs);

    /// <summary>What a delivery must stay in order with: a transfer event with the other events of its two accounts,
    /// anything else with the other events of its subject (an account's own events have the account as subject).</summary>
    internal static (string Key, string? Key2) OrderingKeys(EventRow e)
    {
        if (!e.Type.StartsWith("transfer.", StringComparison.Ordinal)) return (e.Subject, null);
        try
        {
            using var payload = System.Text.Json.JsonDocument.Parse(e.Payload);
            var root = payload.RootElement;
            if (root.ValueKind == System.Text.Json.JsonValueKind.Object
                && root.TryGetProperty("debit_account", out var debit) && debit.ValueKind == System.Text.Json.JsonValueKind.String
                && root.TryGetProperty("credit_account", out var credit) && credit.ValueKind == System.Text.Json.JsonValueKind.String)
                return (debit.GetString()!, credit.GetString());
        }
        catch (System.Text.Json.JsonException)
        {
            // Not the ledger's transfer shape: order by subject.
        }
        return (e.Subject, null);
    }

    /// <summary>The relay loop of the worker role: relays while there is work, then sleeps until NOTIFY or the poll
    /// interval; after a failure (broker down, database error) it backs off up to <see cref="EventsOptions.RelayRetryDelayMaxMs"/>.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        var o = options.Value;
        var failures = 0;
        while (!ct.IsCancellationRequested)
        {
            var wake = signals.Outbox.Next;
            try
            {
                int relayed;
                do
                {
                    relayed = await RelayBatchAsync(ct);
                    if (relayed > 0 && relayed < o.RelayBatchSizeMax && o.RelayGatherMs > 0)
                        await Task.Delay(TimeSpan.FromMilliseconds(o.RelayGatherMs), clock, ct);
                }
                while (relayed > 0 && !ct.IsCancellationRequested);
                failures = 0;
                await Signal.WaitAsync(wake, TimeSpan.FromMilliseconds(o.RelayPollIntervalMs), clock, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is BrokerUnavailableException or DbException or TimeoutException or IOException)
            {
                failures++;
                LogRelayFailed(logger, failures, e);
                var delay = Math.Min(o.RelayRetryDelayMaxMs, o.RelayPollIntervalMs * (1L << Math.Min(failures, 16)));
                try { await Task.Delay(TimeSpan.FromMilliseconds(delay), clock, ct); }
                catch (OperationCanceledException) { return; }
            }
        }
    }

    [LoggerMessage(1, LogLevel.Warning, "Relaying events failed ({Failures} in a row); the events stay in the outbox and are retried")]
    static partial void LogRelayFailed(ILogger logger, int failures, Exception exception);
}
