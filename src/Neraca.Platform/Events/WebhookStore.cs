using System.Text.Json;
using Dapper;
using Neraca.Storage;

namespace Neraca.Events;

public enum WebhookState
{
    Enabled = 1,
    Disabled = 2,
}

public enum DeliveryState
{
    Pending = 1,
    Delivered = 2,
    Dead = 3,
}

public sealed record WebhookEndpoint(string Id, string Url, IReadOnlyList<string> EventTypes, string? Description, WebhookState State,
    int ConsecutiveFailures, string? DisabledReason, DateTimeOffset CreatedAt, DateTimeOffset? DisabledAt);

public sealed record DeliveryAttempt(int Number, DateTimeOffset StartedAt, double DurationMs, int? StatusCode, string? Error, string? ResponseBody);

public sealed record Delivery(string Id, string EndpointId, string EventId, string EventType, string Subject, DeliveryState State,
    int AttemptCount, DateTimeOffset? NextAttemptAt, int? LastStatusCode, string? LastError, DateTimeOffset CreatedAt,
    DateTimeOffset? DeliveredAt, DateTimeOffset? DeadAt, IReadOnlyList<DeliveryAttempt> Attempts);

public enum RetryOutcome
{
    Retried,
    NotFound,
    StillPending,
    EndpointDisabled,
}

/// <summary>Webhook endpoints and deliveries of a tenant, as the API sees them. Every statement carries the tenant.</summary>
public sealed class WebhookStore(Database database, SqlDialect dialect, TimeProvider clock)
{
    const string EndpointColumns = """
        id AS Id, url AS Url, event_types AS EventTypes, description AS Description, state AS State,
        consecutive_failures AS ConsecutiveFailures, disabled_reason AS DisabledReason, created_at_us AS CreatedAtUs, disabled_at_us AS DisabledAtUs
        """;

    long Now => DbTime.ToMicros(clock.GetUtcNow());

    /// <summary>Registers an endpoint unless the tenant already has <paramref name="max"/>; null when at the limit.</summary>
    public async Task<WebhookEndpoint?> CreateAsync(string tenantId, string url, IReadOnlyList<string> eventTypes, string? description,
        string secret, int max, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        await using var tx = await dialect.BeginWriteAsync(connection, ct);
        // Serializes creations of one tenant so the limit holds under concurrency (on SQLite the write transaction does).
        await connection.ExecuteAsync(new CommandDefinition("SELECT id FROM tenants WHERE id = @tenantId" + dialect.ForUpdate,
            new { tenantId }, tx, cancellationToken: ct));
        var count = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT count(*) FROM webhook_endpoints WHERE tenant_id = @tenantId", new { tenantId }, tx, cancellationToken: ct));
        if (count >= max) return null;
        var id = "whe_" + Ids.NewUlid();
        var now = Now;
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO webhook_endpoints (tenant_id, id, url, event_types, description, secret, state, created_at_us)
            VALUES (@tenantId, @id, @url, @types, @description, @secret, 1, @now)
            """, new { tenantId, id, url, types = string.Join(' ', eventTypes), description, secret, now }, tx, cancellationToken: ct));
        await tx.CommitAsync(ct);
        return new WebhookEndpoint(id, url, eventTypes, description, WebhookState.Enabled, 0, null, DbTime.FromMicros(now), null);
    }

    public async Task<IReadOnlyList<WebhookEndpoint>> ListAsync(string tenantId, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var rows = await connection.QueryAsync<EndpointRow>(new CommandDefinition(
            $"SELECT {EndpointColumns} FROM webhook_endpoints WHERE tenant_id = @tenantId ORDER BY id", new { tenantId }, cancellationToken: ct));
        return rows.Select(r => r.ToEndpoint()).ToList();
    }

    public async Task<WebhookEndpoint?> GetAsync(string tenantId, string id, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var row = await connection.QuerySingleOrDefaultAsync<EndpointRow>(new CommandDefinition(
            $"SELECT {EndpointColumns} FROM webhook_endpoints WHERE tenant_id = @tenantId AND id = @id", new { tenantId, id }, cancellationToken: ct));
        return row?.ToEndpoint();
    }

    /// <summary>Deletes the endpoint with its deliveries and their attempts.</summary>
    public async Task<bool> DeleteAsync(string tenantId, string id, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return await connection.ExecuteAsync(new CommandDefinition(
            "DELETE FROM webhook_endpoints WHERE tenant_id = @tenantId AND id = @id", new { tenantId, id }, cancellationToken: ct)) == 1;
    }

    /// <summary>Turns a disabled endpoint back on with a clean failure count; its dead letters stay where they are
    /// until replayed.</summary>
    public async Task<WebhookEndpoint?> EnableAsync(string tenantId, string id, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE webhook_endpoints SET state = 1, consecutive_failures = 0, disabled_reason = NULL, disabled_at_us = NULL
            WHERE tenant_id = @tenantId AND id = @id
            """, new { tenantId, id }, cancellationToken: ct));
        var row = await connection.QuerySingleOrDefaultAsync<EndpointRow>(new CommandDefinition(
            $"SELECT {EndpointColumns} FROM webhook_endpoints WHERE tenant_id = @tenantId AND id = @id", new { tenantId, id }, cancellationToken: ct));
        return row?.ToEndpoint();
    }

    /// <summary>Deliveries of an endpoint, newest first, with every attempt; <paramref name="before"/> is the last id of the
    /// previous page.</summary>
    public async Task<(IReadOnlyList<Delivery> Items, string? NextCursor)> ListDeliveriesAsync(string tenantId, string endpointId,
        DeliveryState? state, string? before, int limit, CancellationToken ct, string? only = null)
    {
        await using var connection = await database.OpenAsync(ct);
        var sql = $"""
            SELECT d.id AS Id, d.endpoint_id AS EndpointId, e.id AS EventId, e.type AS EventType, e.subject AS Subject, d.state AS State,
                   d.attempt_count AS AttemptCount, d.next_attempt_at_us AS NextAttemptAtUs, d.last_status_code AS LastStatusCode,
                   d.last_error AS LastError, d.created_at_us AS CreatedAtUs, d.delivered_at_us AS DeliveredAtUs, d.dead_at_us AS DeadAtUs
            FROM webhook_deliveries d JOIN events e ON e.seq = d.event_seq
            WHERE d.tenant_id = @tenantId AND d.endpoint_id = @endpointId{(state is null ? "" : " AND d.state = @state")}{(before is null ? "" : " AND d.id < @before")}{(only is null ? "" : " AND d.id = @only")}
            ORDER BY d.id DESC LIMIT @take
            """;
        var rows = (await connection.QueryAsync<DeliveryRow>(new CommandDefinition(sql,
            new { tenantId, endpointId, state = (int?)state, before, only, take = limit + 1 }, cancellationToken: ct))).AsList();
        var page = rows.Take(limit).ToList();
        var ids = page.Select(r => r.Id).ToArray();
        var attempts = ids.Length == 0 ? [] : (await connection.QueryAsync<AttemptRow>(new CommandDefinition($"""
            SELECT delivery_id AS DeliveryId, attempt_no AS AttemptNo, started_at_us AS StartedAtUs, duration_us AS DurationUs,
                   status_code AS StatusCode, error AS Error, response_body AS ResponseBody
            FROM webhook_attempts WHERE {dialect.InList("delivery_id", "ids")}
            ORDER BY delivery_id, attempt_no
            """, new { ids }, cancellationToken: ct))).AsList();
        var byDelivery = attempts.ToLookup(a => a.DeliveryId);
        var items = page.Select(r => r.ToDelivery(byDelivery[r.Id].Select(a => a.ToAttempt()).ToList())).ToList();
        return (items, rows.Count > limit ? page[^1].Id : null);
    }

    /// <summary>Puts one delivered or dead delivery back in the queue, due now, with a fresh attempt budget.</summary>
    public async Task<(RetryOutcome Outcome, Delivery? Delivery)> RetryAsync(string tenantId, string endpointId, string deliveryId, CancellationToken ct)
    {
        await using (var connection = await database.OpenAsync(ct))
        {
            var found = (await connection.QueryAsync<(long State, long EndpointState)>(new CommandDefinition("""
                SELECT CAST(d.state AS bigint), CAST(w.state AS bigint) FROM webhook_deliveries d JOIN webhook_endpoints w ON w.tenant_id = d.tenant_id AND w.id = d.endpoint_id
                WHERE d.tenant_id = @tenantId AND d.endpoint_id = @endpointId AND d.id = @deliveryId
                """, new { tenantId, endpointId, deliveryId }, cancellationToken: ct))).ToList();
            if (found.Count == 0) return (RetryOutcome.NotFound, null);
            if (found[0].EndpointState != (int)WebhookState.Enabled) return (RetryOutcome.EndpointDisabled, null);
            var changed = await connection.ExecuteAsync(new CommandDefinition("""
                UPDATE webhook_deliveries SET state = 1, attempts = 0, next_attempt_at_us = @now, dead_at_us = NULL, lease_until_us = 0, lease_token = NULL
                WHERE tenant_id = @tenantId AND endpoint_id = @endpointId AND id = @deliveryId AND state IN (2, 3)
                """, new { tenantId, endpointId, deliveryId, now = Now }, cancellationToken: ct));
            if (changed == 0) return (RetryOutcome.StillPending, null);
        }
        var (items, _) = await ListDeliveriesAsync(tenantId, endpointId, null, null, 1, ct, only: deliveryId);
        return (RetryOutcome.Retried, items.SingleOrDefault());
    }

    /// <summary>Puts up to <paramref name="max"/> dead letters of an enabled endpoint back in the queue; returns how many,
    /// or null when the endpoint does not exist (-1 when it is disabled).</summary>
    public async Task<long?> ReplayDeadAsync(string tenantId, string endpointId, int max, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var endpointState = await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
            "SELECT CAST(state AS bigint) FROM webhook_endpoints WHERE tenant_id = @tenantId AND id = @endpointId", new { tenantId, endpointId }, cancellationToken: ct));
        if (endpointState is null) return null;
        if (endpointState != (int)WebhookState.Enabled) return -1;
        return await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE webhook_deliveries SET state = 1, attempts = 0, next_attempt_at_us = @now, dead_at_us = NULL, lease_until_us = 0, lease_token = NULL
            WHERE id IN (SELECT id FROM webhook_deliveries WHERE tenant_id = @tenantId AND endpoint_id = @endpointId AND state = 3 ORDER BY id LIMIT @max)
            """, new { tenantId, endpointId, max, now = Now }, cancellationToken: ct));
    }

    /// <summary>The endpoint as the <c>webhook.endpoint.disabled</c> event carries it.</summary>
    internal static string DisabledPayload(string id, string url, int failures, string reason, long atUs) =>
        JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["id"] = id,
            ["url"] = url,
            ["state"] = "disabled",
            ["consecutive_failures"] = failures,
            ["disabled_reason"] = reason,
            ["disabled_at"] = DbTime.FromMicros(atUs),
        });

    sealed class EndpointRow
    {
        public string Id { get; set; } = "";
        public string Url { get; set; } = "";
        public string EventTypes { get; set; } = "";
        public string? Description { get; set; }
        public long State { get; set; }
        public long ConsecutiveFailures { get; set; }
        public string? DisabledReason { get; set; }
        public long CreatedAtUs { get; set; }
        public long? DisabledAtUs { get; set; }

        public WebhookEndpoint ToEndpoint() => new(Id, Url, EventTypes.Split(' ', StringSplitOptions.RemoveEmptyEntries), Description,
            (WebhookState)State, (int)ConsecutiveFailures, DisabledReason, DbTime.FromMicros(CreatedAtUs),
            DisabledAtUs is null ? null : DbTime.FromMicros(DisabledAtUs.Value));
    }

    sealed class DeliveryRow
    {
        public string Id { get; set; } = "";
        public string EndpointId { get; set; } = "";
        public string EventId { get; set; } = "";
        public string EventType { get; set; } = "";
        public string Subject { get; set; } = "";
        public long State { get; set; }
        public long AttemptCount { get; set; }
        public long NextAttemptAtUs { get; set; }
        public long? LastStatusCode { get; set; }
        public string? LastError { get; set; }
        public long CreatedAtUs { get; set; }
        public long? DeliveredAtUs { get; set; }
        public long? DeadAtUs { get; set; }

        public Delivery ToDelivery(IReadOnlyList<DeliveryAttempt> attempts) => new(Id, EndpointId, EventId, EventType, Subject, (DeliveryState)State,
            (int)AttemptCount, State == (int)DeliveryState.Pending ? DbTime.FromMicros(NextAttemptAtUs) : null, (int?)LastStatusCode, LastError,
            DbTime.FromMicros(CreatedAtUs), Time(DeliveredAtUs), Time(DeadAtUs), attempts);
    }

    sealed class AttemptRow
    {
        public string DeliveryId { get; set; } = "";
        public long AttemptNo { get; set; }
        public long StartedAtUs { get; set; }
        public long DurationUs { get; set; }
        public long? StatusCode { get; set; }
        public string? Error { get; set; }
        public string? ResponseBody { get; set; }

        public DeliveryAttempt ToAttempt() => new((int)AttemptNo, DbTime.FromMicros(StartedAtUs), DurationUs / 1000.0, (int?)StatusCode, Error, ResponseBody);
    }

    static DateTimeOffset? Time(long? us) => us is null ? null : DbTime.FromMicros(us.Value);
}
