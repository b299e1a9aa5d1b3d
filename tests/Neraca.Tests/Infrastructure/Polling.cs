using System.Diagnostics;

namespace Neraca.Tests.Infrastructure;

/// <summary>The one way tests wait for something another thread, process or server does: poll a probe until it
/// says done, and fail naming what never happened. Use a <c>FakeTimeProvider</c> instead where the code under test
/// takes its time from <see cref="TimeProvider"/>; poll only for work that runs on its own (a worker, a relay, a
/// process).</summary>
public static class Polling
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);
    static readonly TimeSpan DefaultInterval = TimeSpan.FromMilliseconds(20);

    /// <summary>Polls <paramref name="probe"/> until <paramref name="done"/> holds for its value and returns that
    /// value; throws naming <paramref name="what"/> and the last value after <paramref name="timeout"/>.</summary>
    public static async Task<T> Eventually<T>(Func<Task<T>> probe, Func<T, bool> done, string what,
        TimeSpan? timeout = null, TimeSpan? interval = null)
    {
        var limit = timeout ?? DefaultTimeout;
        var started = Stopwatch.GetTimestamp();
        while (true)
        {
            var value = await probe();
            if (done(value)) return value;
            if (Stopwatch.GetElapsedTime(started) >= limit)
                throw new TimeoutException($"Not within {limit.TotalSeconds:0.#} s: {what} (last value: {value?.ToString() ?? "null"}).");
            await Task.Delay(interval ?? DefaultInterval);
        }
    }

    /// <summary>Polls <paramref name="condition"/> until it is true.</summary>
    public static Task Eventually(Func<Task<bool>> condition, string what, TimeSpan? timeout = null, TimeSpan? interval = null) =>
        Eventually(condition, ok => ok, what, timeout, interval);

    /// <summary>Polls a synchronous <paramref name="condition"/> (a counter, a flag) until it is true.</summary>
    public static Task Eventually(Func<bool> condition, string what, TimeSpan? timeout = null, TimeSpan? interval = null) =>
        Eventually(() => Task.FromResult(condition()), ok => ok, what, timeout, interval);
}
