using System.Diagnostics.Metrics;
using Dapper;
using Neraca.Storage;

namespace Neraca.Events;

/// <summary>Instruments of the event machinery on the <c>Neraca</c> meter. The gauges report values the worker
/// refreshes in the background (<see cref="RefreshAsync"/>): an observable callback must not query the database.</summary>
public sealed class EventsMetrics
{
    public const string MeterName = "Neraca";

    readonly Counter<long> _attempts;
    readonly Counter<long> _failures;
    readonly Database _database;
    readonly TimeProvider _clock;
    double _lagSeconds;
    long _deadLetters;

    public EventsMetrics(IMeterFactory meters, Database database, TimeProvider clock)
    {
        _database = database;
        _clock = clock;
        var meter = meters.Create(MeterName);
        _attempts = meter.CreateCounter<long>("neraca.webhook.delivery.attempts", "{attempt}",
            "Webhook delivery attempts, by result (success, failure).");
        _failures = meter.CreateCounter<long>("neraca.webhook.delivery.failures", "{attempt}",
            "Failed webhook delivery attempts, by reason (http_status, timeout, network).");
        meter.CreateObservableGauge("neraca.outbox.lag", () => Volatile.Read(ref _lagSeconds), "s",
            "Age of the oldest event not yet relayed (0 when the outbox is empty).");
        meter.CreateObservableGauge("neraca.webhook.dead_letters", () => Volatile.Read(ref _deadLetters), "{delivery}",
            "Webhook deliveries in the dead-letter queue; alert when above 0.");
    }

    public double OutboxLagSeconds => Volatile.Read(ref _lagSeconds);

    public long DeadLetters => Volatile.Read(ref _deadLetters);

    public void Attempt(bool success, string? failureReason)
    {
        _attempts.Add(1, new KeyValuePair<string, object?>("result", success ? "success" : "failure"));
        if (!success) _failures.Add(1, new KeyValuePair<string, object?>("reason", failureReason));
    }

    /// <summary>Reads outbox lag and dead-letter depth from the database (all tenants).</summary>
    public async Task RefreshAsync(CancellationToken ct)
    {
        await using var connection = await _database.OpenAsync(ct);
        var oldest = await connection.ExecuteScalarAsync<long?>(new CommandDefinition("""
            SELECT e.created_at_us FROM outbox o JOIN events e ON e.seq = o.event_seq ORDER BY o.event_seq LIMIT 1
            """, cancellationToken: ct));
        var dead = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT count(*) FROM webhook_deliveries WHERE state = 3", cancellationToken: ct));
        var lag = oldest is null ? 0 : Math.Max(0, (_clock.GetUtcNow() - DbTime.FromMicros(oldest.Value)).TotalSeconds);
        Volatile.Write(ref _lagSeconds, lag);
        Volatile.Write(ref _deadLetters, dead);
    }
}
