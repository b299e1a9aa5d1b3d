using System.Diagnostics;
using Microsoft.Extensions.Time.Testing;

namespace Neraca.Demo;

/// <summary>A server clock that starts now (or at a chosen instant, in the past for the demo's history) and then follows
/// real time, so the server's workers, relays and sweeps keep running; it moves only forward: at once with
/// <see cref="Jump"/> or <see cref="JumpTo"/> (a test instead of sleeping until a timeout passes, <c>neraca demo</c> from
/// one simulated day to the next), and <see cref="Pause"/> stops it following (a test that reads "23:59 on payday" must
/// not see the minute pass while the machine is slow). Every clock reading and timer of the server comes from
/// <see cref="Time"/>. The tests' <c>TestClock</c> is this class.</summary>
/// <remarks>Real time is followed by one dedicated thread, not a thread-pool timer, and the server's timers call back on
/// the thread pool, not inside the advance. <c>FakeTimeProvider.Advance</c> runs woken timers inline (on SQLite, whose
/// I/O is synchronous, whole sweeps and job claims ran inside it), so an advance could take long; a 5 ms thread-pool
/// timer then queued a tick every 5 ms that blocked on the gate, the thread pool starved, and every server in the test
/// process stalled for a minute or more (seen as SQLite-only 60 s hangs and a payday balance read after local
/// midnight).</remarks>
public class SimulatedClock : IDisposable
{
    static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(5);

    readonly Thread _pump;
    readonly object _gate = new();
    readonly CancellationTokenSource _stop = new();
    long _followedAt = Stopwatch.GetTimestamp();
    bool _paused;
    int _waiting;

    public SimulatedClock(DateTimeOffset? start = null)
    {
        Fake = new FakeTimeProvider(start ?? DateTimeOffset.UtcNow);
        Time = new PooledTimers(Fake);
        _pump = new Thread(Pump) { IsBackground = true, Name = "SimulatedClock pump" };
        _pump.Start();
    }

    /// <summary>What the server gets: <see cref="Fake"/>, with timer callbacks run on the thread pool as real timers run.</summary>
    public TimeProvider Time { get; }

    /// <summary>The underlying fake, whose timers call back inside the advance.</summary>
    public FakeTimeProvider Fake { get; }

    public DateTimeOffset UtcNow => Fake.GetUtcNow();

    /// <summary>How many threads wait to advance the clock right now (at most the pump and one test thread).</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>Moves the server's time forward by <paramref name="by"/> now: due timers and delays fire.</summary>
    public void Jump(TimeSpan by) => JumpTo(UtcNow + by);

    public void JumpTo(DateTimeOffset at)
    {
        Interlocked.Increment(ref _waiting);
        lock (_gate)
        {
            Interlocked.Decrement(ref _waiting);
            var by = at - Fake.GetUtcNow();
            if (by > TimeSpan.Zero) Fake.Advance(by);
            // The jump sets the time: real time spent inside it is not followed on top.
            _followedAt = Stopwatch.GetTimestamp();
        }
    }

    /// <summary>Stops following real time until <see cref="Resume"/> (jumps still move it).</summary>
    public void Pause()
    {
        lock (_gate) _paused = true;
    }

    public void Resume()
    {
        lock (_gate)
        {
            _paused = false;
            _followedAt = Stopwatch.GetTimestamp();
        }
    }

    void Pump()
    {
        while (!_stop.Token.WaitHandle.WaitOne(Tick))
        {
            Interlocked.Increment(ref _waiting);
            lock (_gate)
            {
                Interlocked.Decrement(ref _waiting);
                var now = Stopwatch.GetTimestamp();
                var elapsed = Stopwatch.GetElapsedTime(_followedAt, now);
                _followedAt = now;
                if (!_paused && elapsed > TimeSpan.Zero) Fake.Advance(elapsed);
            }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        if (Thread.CurrentThread != _pump) _pump.Join(TimeSpan.FromSeconds(10));
        _stop.Dispose();
    }

    /// <summary>A <see cref="FakeTimeProvider"/> whose timers call back on the thread pool, as real timers do, instead
    /// of inline in <c>Advance</c>: a server continuation woken by an advance then never runs on the advancing thread.</summary>
    sealed class PooledTimers(FakeTimeProvider inner) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

        public override long GetTimestamp() => inner.GetTimestamp();

        public override long TimestampFrequency => inner.TimestampFrequency;

        public override TimeZoneInfo LocalTimeZone => inner.LocalTimeZone;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            inner.CreateTimer(s => ThreadPool.UnsafeQueueUserWorkItem(x => callback(x), s, preferLocal: false), state, dueTime, period);
    }
}
