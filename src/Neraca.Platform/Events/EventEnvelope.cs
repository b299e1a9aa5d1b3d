using System.Data.Common;
using System.Text.Json;
using Dapper;
using Neraca.Storage;

namespace Neraca.Events;

/// <summary>One row of the durable event log as stored; a payload rendered from elsewhere is filled in by <see cref="EventData"/>.</summary>
public sealed record EventRow(long Seq, string Id, string TenantId, string? LedgerId, string Type, string Subject, string Payload, long CreatedAtUs);

/// <summary>What consumers receive: the same JSON in the feed, on the SSE stream, in webhook bodies and RabbitMQ
/// messages. <c>id</c> is stable across redeliveries; deduplicate on it.</summary>
public sealed record EventEnvelope(string Id, string Type, string Subject, string? LedgerId, DateTimeOffset CreatedAt, JsonElement Data)
{
    public static EventEnvelope From(EventRow row) =>
        new(row.Id, row.Type, row.Subject, row.LedgerId, DbTime.FromMicros(row.CreatedAtUs), JsonElement.Parse(row.Payload));

    /// <summary>The envelope as UTF-8 JSON, written without re-parsing the stored payload.</summary>
    public static byte[] ToJsonBytes(EventRow row)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(row.Payload.Length + 256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("id", row.Id);
            w.WriteString("type", row.Type);
            w.WriteString("subject", row.Subject);
            if (row.LedgerId is null) w.WriteNull("ledger_id");
            else w.WriteString("ledger_id", row.LedgerId);
            w.WriteString("created_at", DbTime.FromMicros(row.CreatedAtUs));
            w.WritePropertyName("data");
            w.WriteRawValue(row.Payload, skipInputValidation: false);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }
}

/// <summary>The name of an event type: lower-case dot-separated words. Each capability declares the types it emits
/// (<c>LedgerEventTypes</c>, <see cref="EventTypes"/> for the platform's own); names are persisted and published, so
/// one is never renamed (golden tests freeze them).</summary>
public readonly record struct EventType
{
    public EventType(string name)
    {
        if (!EventTypes.IsValidPattern(name) || name.Contains('*', StringComparison.Ordinal))
            throw new ArgumentException($"'{name}' is not an event type name (lower-case dot-separated words).", nameof(name));
        Name = name;
    }

    public string Name { get; }

    public override string ToString() => Name;
}

/// <summary>The platform's own event types, and the rules for type names and subscription patterns.</summary>
public static class EventTypes
{
    public static readonly EventType WebhookEndpointDisabled = new("webhook.endpoint.disabled");

    /// <summary>A type or a pattern: lower-case dot-separated words, optionally ending in <c>.*</c>, or <c>*</c>.</summary>
    public static bool IsValidPattern(string? pattern)
    {
        if (string.IsNullOrEmpty(pattern) || pattern.Length > 100) return false;
        if (pattern == "*") return true;
        var name = pattern.EndsWith(".*", StringComparison.Ordinal) ? pattern[..^2] : pattern;
        if (name.Length == 0 || name[0] == '.' || name[^1] == '.' || name.Contains("..", StringComparison.Ordinal)) return false;
        foreach (var c in name)
            if (!(char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '_' or '.')) return false;
        return true;
    }

    public static bool Matches(string pattern, string type) =>
        pattern == "*"
        || pattern == type
        || (pattern.EndsWith(".*", StringComparison.Ordinal) && type.StartsWith(pattern.AsSpan(0, pattern.Length - 1), StringComparison.Ordinal));
}

/// <summary>An event to append: its type, what it is about, and its JSON payload (the <c>data</c> consumers receive), or
/// <see cref="EventLog.DataInSource"/> when an <see cref="EventDataSource"/> renders it from the capability's own rows.</summary>
public sealed record NewEvent(EventType Type, string Subject, string Payload);

/// <summary>The one way any capability appends events: event rows and their outbox rows, in the caller's transaction,
/// so an event exists exactly when what it tells of committed.</summary>
/// <remarks>An outbox row stands for a range of events: <c>event_seq</c> is its first event, <c>last_seq</c> (migration
/// 0203; NULL for one event) its last, and it covers the events of the writing transaction in between (on PostgreSQL
/// other transactions' events may interleave in seq; they carry another <c>tx_id</c>). <c>AppendAsync</c> writes a
/// row per event; <see cref="AppendCommitAsync"/> and <see cref="PostgresAppendCommitCommand"/> one row for all the
/// events of a commit of one stream (a ledger's posting), which the relay then moves together.</remarks>
public static class EventLog
{
    /// <summary>The stored payload of an event whose data an <see cref="EventDataSource"/> renders on read (the empty string,
    /// which no JSON payload is). Every read goes through <see cref="EventData"/>.</summary>
    public const string DataInSource = "";

    const string InsertOne = """
        INSERT INTO events (id, tenant_id, ledger_id, type, subject, payload, created_at_us)
        VALUES (@id, @tenantId, @ledgerId, @type, @subject, @payload, @createdAtUs)
        RETURNING seq
        """;

    /// <summary>Appends the events in order (both stores), each with its own outbox row, and returns their sequence numbers.</summary>
    public static async Task<IReadOnlyList<long>> AppendAsync(DbConnection connection, DbTransaction tx, string tenantId, string? ledgerId,
        IReadOnlyList<NewEvent> events, long createdAtUs, CancellationToken ct)
    {
        var seqs = await InsertAsync(connection, tx, tenantId, ledgerId, events, createdAtUs, ct);
        foreach (var seq in seqs)
            await connection.ExecuteAsync(new CommandDefinition("INSERT INTO outbox (event_seq) VALUES (@seq)", new { seq }, tx, cancellationToken: ct));
        return seqs;
    }

    public static async Task<long> AppendAsync(DbConnection connection, DbTransaction tx, string tenantId, string? ledgerId, NewEvent e, long createdAtUs,
        CancellationToken ct) => (await AppendAsync(connection, tx, tenantId, ledgerId, [e], createdAtUs, ct))[0];

    /// <summary>Appends the events of one commit of one ledger in order with a single outbox row for all of them: the relay
    /// relays them together, in one round (both stores; SQLite has one writer, so they are consecutive there).</summary>
    public static async Task AppendCommitAsync(DbConnection connection, DbTransaction tx, string tenantId, string ledgerId,
        IReadOnlyList<NewEvent> events, long createdAtUs, CancellationToken ct)
    {
        if (events.Count == 0) return;
        var seqs = await InsertAsync(connection, tx, tenantId, ledgerId, events, createdAtUs, ct);
        await connection.ExecuteAsync(new CommandDefinition("INSERT INTO outbox (event_seq, last_seq) VALUES (@first, @last)",
            new { first = seqs[0], last = seqs[^1] }, tx, cancellationToken: ct));
    }

    static async Task<List<long>> InsertAsync(DbConnection connection, DbTransaction tx, string tenantId, string? ledgerId,
        IReadOnlyList<NewEvent> events, long createdAtUs, CancellationToken ct)
    {
        var seqs = new List<long>(events.Count);
        foreach (var e in events)
            seqs.Add(await connection.ExecuteScalarAsync<long>(new CommandDefinition(InsertOne,
                new { id = NewId(), tenantId, ledgerId, type = e.Type.Name, subject = e.Subject, payload = e.Payload, createdAtUs }, tx, cancellationToken: ct)));
        return seqs;
    }

    /// <summary><see cref="AppendCommitAsync"/> as one set-based PostgreSQL statement, for a caller that sends its whole
    /// transaction as one <see cref="Npgsql.NpgsqlBatch"/> (the ledger's posting path). Events get their sequence numbers
    /// in list order; at least one event.</summary>
    public static Npgsql.NpgsqlBatchCommand PostgresAppendCommitCommand(string tenantId, string ledgerId, IReadOnlyList<NewEvent> events, long createdAtUs)
    {
        ArgumentOutOfRangeException.ThrowIfZero(events.Count);
        var command = new Npgsql.NpgsqlBatchCommand("""
            WITH e AS (
                INSERT INTO events (id, tenant_id, ledger_id, type, subject, payload, created_at_us)
                SELECT u.id, $1, $2, u.type, u.subject, u.payload, $3
                FROM unnest($4::text[], $5::text[], $6::text[], $7::text[]) WITH ORDINALITY AS u(id, type, subject, payload, ord)
                ORDER BY u.ord
                RETURNING seq)
            INSERT INTO outbox (event_seq, last_seq) SELECT min(seq), max(seq) FROM e
            """);
        object?[] values = [tenantId, ledgerId, createdAtUs, events.Select(_ => NewId()).ToArray(),
            events.Select(x => x.Type.Name).ToArray(), events.Select(x => x.Subject).ToArray(), events.Select(x => x.Payload).ToArray()];
        foreach (var v in values) command.Parameters.Add(new Npgsql.NpgsqlParameter { Value = v });
        return command;
    }

    static string NewId() => "evt_" + Ids.NewUlid();
}
