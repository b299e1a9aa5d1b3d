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
