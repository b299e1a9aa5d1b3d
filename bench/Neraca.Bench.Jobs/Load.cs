using System.Diagnostics;
using System.Net.Http.Json;

namespace Neraca.Bench.Jobs;

/// <summary>Latency figures of one load phase.</summary>
public sealed record LoadResult(long Requests, long Errors, double Seconds, double Throughput, double P50Ms, double P95Ms, double P99Ms, double MaxMs);

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
        var all = perClient.SelectMany(l => l).Order().ToArray();
        var seconds = clock.Elapsed.TotalSeconds;
        double P(double q) => all.Length == 0 ? 0 : all[Math.Min(all.Length - 1, (int)Math.Ceiling(q * all.Length) - 1)];
        return new LoadResult(all.Length, errors, seconds, all.Length / seconds, P(0.50), P(0.95), P(0.99), all.Length == 0 ? 0 : all[^1]);
    }
}
