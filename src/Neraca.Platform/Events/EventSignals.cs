using Neraca.Storage;
using Npgsql;

namespace Neraca.Events;

/// <summary>A wake-up call: every waiter that took <see cref="Next"/> before <see cref="Pulse"/> wakes. Take the task
/// before looking for work, then wait on it, and no pulse is lost.</summary>
public sealed class Signal
{
    TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task Next => Volatile.Read(ref _next).Task;

    public void Pulse() => Interlocked.Exchange(ref _next, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    /// <summary>Waits for the pulse or the timeout, whichever comes first; false on timeout.</summary>
    public static async Task<bool> WaitAsync(Task next, TimeSpan timeout, TimeProvider clock, CancellationToken ct)
    {
        try
        {
            await next.WaitAsync(timeout, clock, ct);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }
}

/// <summary>In-process wake-ups of the event machinery.</summary>
public sealed class EventSignals
{
    /// <summary>New outbox rows committed (PostgreSQL NOTIFY, or a local write).</summary>
    public Signal Outbox { get; } = new();

    /// <summary>New or replayed webhook deliveries are due.</summary>
    public Signal Deliveries { get; } = new();
}

/// <summary>Wakes the relays and streams of every process after a commit that wrote events, with a NOTIFY outside the
/// writing transaction. PostgreSQL holds one database-wide lock from a notifying transaction's pre-commit until its
/// commit record is flushed, so commits that notify take turns, each waiting for the previous one's fsync: at 64
/// clients over 4 ledgers the posting commits spent more time waiting for that lock (<c>Lock:object</c>) than anything
/// else. The posting path runs <see cref="SuppressTriggerSql"/> in its transaction and calls <see cref="Committed"/>
/// after the commit: the local relay wakes at once, and one small NOTIFY at a time tells the other processes, however
/// many commits came meanwhile. A lost notification costs only latency: relays and streams also poll.</summary>
public sealed partial class OutboxNotifier(Database database, EventSignals signals, TimeProvider clock, ILogger<OutboxNotifier> logger) : BackgroundService
{
    /// <summary>Turns the outbox trigger's NOTIFY off for the rest of the transaction (migration 0201).</summary>
    public const string SuppressTriggerSql = "SET LOCAL neraca.outbox_notify = 'off'";

    static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);
    readonly Signal _wanted = new();

    /// <summary>Events committed by a transaction that ran <see cref="SuppressTriggerSql"/>.</summary>
    public void Committed()
    {
        signals.Outbox.Pulse();
        _wanted.Pulse();
    }

    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        if (database.Postgres is not { } source) return;
        var wake = _wanted.Next;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await wake.WaitAsync(ct);
                wake = _wanted.Next; // commits from here on get the next notification
                await using var connection = await source.OpenConnectionAsync(ct);
                await using var notify = new NpgsqlCommand($"SELECT pg_notify('{PostgresEventListener.Channel}', '')", connection);
                await notify.ExecuteNonQueryAsync(ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException)
            {
                LogNotifyFailed(logger, e);
                try { await Task.Delay(RetryDelay, clock, ct); } catch (OperationCanceledException) { return; }
            }
        }
    }

    [LoggerMessage(1, LogLevel.Warning, "Notifying other processes of committed events failed; their relays poll meanwhile")]
    static partial void LogNotifyFailed(ILogger logger, Exception exception);
}

/// <summary>LISTENs on <c>neraca_outbox</c> (PostgreSQL only) and pulses <see cref="EventSignals.Outbox"/> on every
/// notification. Losing the connection loses nothing: the relay and the streams also poll.</summary>
public sealed partial class PostgresEventListener(Database database, EventSignals signals, TimeProvider clock, ILogger<PostgresEventListener> logger) : BackgroundService
{
    public const string Channel = "neraca_outbox";
    static readonly TimeSpan IdleCheck = TimeSpan.FromSeconds(30);
    static readonly TimeSpan ReconnectDelay = TimeSpan.FromSeconds(1);

    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        // Behind a transaction pooler LISTEN would register on whichever server connection ran it: poll only.
        if (database.Postgres is null || database.BehindTransactionPooler) return;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await ListenAsync(database.Postgres, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or InvalidOperationException)
            {
                LogListenFailed(logger, e);
                try { await Task.Delay(ReconnectDelay, clock, ct); } catch (OperationCanceledException) { return; }
            }
        }
    }

    async Task ListenAsync(NpgsqlDataSource source, CancellationToken ct)
    {
        await using var connection = await source.OpenConnectionAsync(ct);
        connection.Notification += (_, _) => signals.Outbox.Pulse();
        await using (var listen = new NpgsqlCommand($"LISTEN {Channel}", connection))
            await listen.ExecuteNonQueryAsync(ct);
        signals.Outbox.Pulse(); // whatever committed while we were not listening
        try
        {
            while (!ct.IsCancellationRequested)
            {
                if (!await connection.WaitAsync(IdleCheck, ct))
                {
                    // Nothing for a while: make sure the connection is alive rather than silently dead.
                    await using var ping = new NpgsqlCommand("SELECT 1", connection);
                    await ping.ExecuteScalarAsync(ct);
                }
            }
        }
        finally
        {
            // Pooled connections keep LISTEN registrations; leave none behind.
            if (connection.FullState == System.Data.ConnectionState.Open)
            {
                await using var unlisten = new NpgsqlCommand("UNLISTEN *", connection);
                try { await unlisten.ExecuteNonQueryAsync(CancellationToken.None); }
                catch (Exception e) when (e is NpgsqlException or IOException or InvalidOperationException) { LogListenFailed(logger, e); }
            }
        }
    }

    [LoggerMessage(1, LogLevel.Warning, "Listening for outbox notifications failed; reconnecting (polling covers the gap)")]
    static partial void LogListenFailed(ILogger logger, Exception exception);
}
