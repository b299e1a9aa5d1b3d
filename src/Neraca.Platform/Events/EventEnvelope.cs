using System.Data.Common;
using System.Text.Json;
using Dapper;
using Neraca.Storage;

namespace Neraca.Events;

/// <summary>One row of the durable event log as stored.</summary>
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

/// <summary>Event types Neraca emits. Persisted and published: never rename one.</summary>
public static class EventTypes
{
    public const string TransferPosted = "transfer.posted";
    public const string TransferPending = "transfer.pending";
    public const string TransferVoided = "transfer.voided";
    public const string TransferExpired = "transfer.expired";
    public const string AccountCreated = "account.created";
    public const string WebhookEndpointDisabled = "webhook.endpoint.disabled";

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

/// <summary>Appends an event and its outbox row in the caller's transaction: what the ledger does for money
/// movements, and what webhooks do to tell a tenant an endpoint was disabled.</summary>
public static class EventLog
{
    public static async Task<long> AppendAsync(DbConnection connection, DbTransaction tx, string tenantId, string? ledgerId,
        string type, string subject, string payload, long createdAtUs, CancellationToken ct)
    {
        const string insertEvent = """
            INSERT INTO events (id, tenant_id, ledger_id, type, subject, payload, created_at_us)
            VALUES (@id, @tenantId, @ledgerId, @type, @subject, @payload, @createdAtUs)
            RETURNING seq
            """;
        var seq = await connection.ExecuteScalarAsync<long>(new CommandDefinition(insertEvent,
            new { id = "evt_" + Ids.NewUlid(), tenantId, ledgerId, type, subject, payload, createdAtUs }, tx, cancellationToken: ct));
        await connection.ExecuteAsync(new CommandDefinition("INSERT INTO outbox (event_seq) VALUES (@seq)", new { seq }, tx, cancellationToken: ct));
        return seq;
    }
}
