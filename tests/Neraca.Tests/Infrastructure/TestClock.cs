using System.Diagnostics;
using Microsoft.Extensions.Time.Testing;

namespace Neraca.Tests.Infrastructure;

/// <summary>The clock of a test server: a <see cref="FakeTimeProvider"/> that follows real time (so the server's
/// workers, relays and sweeps keep running) and that a test moves forward at once with <see cref="Jump"/> instead of
/// sleeping until a timeout passes. Every clock reading and timer of the server comes from <see cref="Time"/>.</summary>
public sealed class TestClock : IDisposable
{
    static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(5);

    readonly Timer _pump;
    readonly object _gate = new();
    long _followedAt = Stopwatch.GetTimestamp();

    public TestClock()
    {
        Time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        _pump = new Timer(_ => Follow(), null, Tick, Tick);
    }

    public FakeTimeProvider Time { get; }

    public DateTimeOffset UtcNow => Time.GetUtcNow();

    /// <summary>Moves the server's time forward by <paramref name="by"/> now: due timers and delays fire.</summary>
    public void Jump(TimeSpan by)
    {
        lock (_gate) Time.Advance(by);
    }

    void Follow()
    {
        lock (_gate)
        {
            var now = Stopwatch.GetTimestamp();
            var elapsed = Stopwatch.GetElapsedTime(_followedAt, now);
            _followedAt = now;
            if (elapsed > TimeSpan.Zero) Time.Advance(elapsed);
        }
    }

    public void Dispose() => _pump.Dispose();
}
