using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using Neraca.Tests.Infrastructure;
using Xunit.v3;

[assembly: HangWatchdog]

namespace Neraca.Tests.Infrastructure;

/// <summary>
/// Ends a stuck test run with the names of the tests that were running, instead of letting CI time out with no clue.
/// The whole suite takes about a minute and no test takes more than one; when no test starts or finishes for
/// <c>NERACA_TEST_HANG_SECONDS</c> (default 600) the process fails fast with what is running (also written to the file
/// <c>NERACA_TEST_HANG_REPORT</c> names).
/// </summary>
[AttributeUsage(AttributeTargets.Assembly)]
public sealed class HangWatchdogAttribute : BeforeAfterTestAttribute
{
    static readonly ConcurrentDictionary<string, (string Name, long Started)> Running = new();
    static readonly TimeSpan Limit = TimeSpan.FromSeconds(
        int.TryParse(Environment.GetEnvironmentVariable("NERACA_TEST_HANG_SECONDS"), CultureInfo.InvariantCulture, out var s) && s > 0 ? s : 600);
    static long _lastProgress = Stopwatch.GetTimestamp();
    static readonly Timer Timer = new(_ => Check(), null, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(5));

    public override void Before(MethodInfo methodUnderTest, IXunitTest test)
    {
        GC.KeepAlive(Timer);
        Running[test.UniqueID] = (test.TestDisplayName, Stopwatch.GetTimestamp());
        Interlocked.Exchange(ref _lastProgress, Stopwatch.GetTimestamp());
    }

    public override void After(MethodInfo methodUnderTest, IXunitTest test)
    {
        Running.TryRemove(test.UniqueID, out _);
        Interlocked.Exchange(ref _lastProgress, Stopwatch.GetTimestamp());
    }

    static void Check()
    {
        if (Stopwatch.GetElapsedTime(Interlocked.Read(ref _lastProgress)) < Limit) return;
        var running = Running.Values.Select(r => $"  {r.Name} (running {Stopwatch.GetElapsedTime(r.Started).TotalSeconds:F0} s)");
        var report = $"No test started or finished for {Limit.TotalSeconds:F0} s. Running now:{Environment.NewLine}"
                     + (Running.IsEmpty ? "  none (stuck in a fixture or between tests)" : string.Join(Environment.NewLine, running));
        // scripts/test.sh prints this file last: the test host's own output can be too long for a CI log to show it.
        if (Environment.GetEnvironmentVariable("NERACA_TEST_HANG_REPORT") is { Length: > 0 } file) File.WriteAllText(file, report);
        Environment.FailFast(report);
    }
}
