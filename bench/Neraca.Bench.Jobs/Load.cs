using System.Diagnostics;
using System.Net.Http.Json;

namespace Neraca.Bench.Jobs;

/// <summary>Latency figures of one load phase.</summary>
public sealed record LoadResult(long Requests, long Errors, double Seconds, double Throughput, double P50Ms, double P95Ms, double P99Ms, double MaxMs)
{
    [System.Text.Json.Serialization.JsonIgnore]
    public double[] SortedLatenciesMs { get; init; } = [];

    /// <summary>Two phases as one: latencies pooled, counts and durations added.</summary>
    public static LoadResult Merge(LoadResult a, LoadResult b) =>
        Load.Summarize([.. a.SortedLatenciesMs, .. b.SortedLatenciesMs], a.Errors + b.Errors, a.Seconds + b.Seconds);
}

/// <summary>The <c>uniform</c> load at a fixed rate: single <c>POST /v1/transfers</c> between random accounts, spread
/// over C clients each sending on its own schedule (a late request is sent at once, not skipped).</summary>
public static class Load
{
    /// <summary>Runs for <paramref name="duration"/> or until <paramref name="stop"/> says so.</summary>
    public static async Task<LoadResult> RunAsync(HttpClient http, string[] accounts, int rate, int clients, TimeSpan duration, Func<bool> stop)
    {
        var interval = TimeSpan.FromSeconds((double)clients / rate);
        var clock = Stopwatch.StartNew();
        var errors = 0L;
        var perClient = await Task.WhenAll(Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
        {
            var random = new Random(c);
            var latencies = new List<double>();
            var next = TimeSpan.FromTicks(interval.Ticks * c / clients);
            while (clock.Elapsed < duration && !stop())
            {
                var wait = next - clock.Elapsed;
                if (wait > TimeSpan.Zero) await Task.Delay(wait);
                next += interval;
                var debit = accounts[random.Next(accounts.Length)];
                var credit = accounts[random.Next(accounts.Length)];
                if (debit == credit) continue;
                var started = Stopwatch.GetTimestamp();
                using var response = await http.PostAsJsonAsync("/v1/transfers", new { debit_account = debit, credit_account = credit, amount = 1 });
                latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                if (!response.IsSuccessStatusCode) Interlocked.Increment(ref errors);
            }
            return latencies;
        })));
        return Summarize(perClient.SelectMany(l => l).ToArray(), errors, clock.Elapsed.TotalSeconds);
    }

    public static LoadResult Summarize(double[] latenciesMs, long errors, double seconds)
    {
        var all = latenciesMs.Order().ToArray();
        double P(double q) => all.Length == 0 ? 0 : all[Math.Min(all.Length - 1, (int)Math.Ceiling(q * all.Length) - 1)];
        return new LoadResult(all.Length, errors, seconds, all.Length / seconds, P(0.50), P(0.95), P(0.99), all.Length == 0 ? 0 : all[^1])
        {
            SortedLatenciesMs = all,
        };
    }
}
