using System.Buffers;
using System.Diagnostics;

namespace Neraca.Bench;

/// <summary>One client of a closed-loop run: it sends its next request when the previous one is answered.</summary>
public sealed class Client(int index, int seed)
{
    public int Index { get; } = index;
    public Random Random { get; } = new(seed);

    /// <summary>Request body buffer, reused: a client has one request in flight at a time.</summary>
    public ArrayBufferWriter<byte> Buffer { get; } = new(1024);

    /// <summary>Amounts of the batch being sent, by item index.</summary>
    public long[] Amounts { get; set; } = [];

    long _sequence;

    /// <summary>A transfer id unique in the whole benchmark: the run, the client, a counter.</summary>
    public string NextId(string runTag) => $"{runTag}c{Index}n{++_sequence}";
}

/// <summary>A request of a run (one transfer, one batch or one read), sent by one client.</summary>
public delegate Task<OpResult> Operation(Client client, CancellationToken ct);

/// <summary>What a run measured.</summary>
public sealed record RunStats(
    double ElapsedSeconds,
    long Requests,
    long Transfers,
    long Reads,
    long Failed,
    long AckedAmount,
    bool Uncertain,
    double P50Ms,
    double P95Ms,
    double P99Ms,
    double MaxMs,
    IReadOnlyDictionary<string, long> Errors)
{
    public double TransfersPerSecond => ElapsedSeconds > 0 ? Transfers / ElapsedSeconds : 0;
    public double OpsPerSecond => ElapsedSeconds > 0 ? (Transfers + Reads) / ElapsedSeconds : 0;
}

/// <summary>Runs C clients in a closed loop: a warm-up (not measured), then the measured phase, which starts for
/// all clients at once and ends when the last request sent before the deadline is answered. Throughput is what
/// was acknowledged divided by that wall time, so long requests (batches of 8,000 on a slow server) count fully.</summary>
public static class LoadRunner
{
    public static async Task<RunStats> RunAsync(int clients, TimeSpan warmup, TimeSpan duration, Operation warmupOp, Operation op, CancellationToken ct,
        Action? onMeasureStart = null, Func<Task>? onMeasureEnd = null)
    {
        var states = Enumerable.Range(0, clients).Select(i => new ClientState(new Client(i, 7919 * (i + 1)))).ToArray();
        if (warmup > TimeSpan.Zero)
        {
            var warmupEnd = Stopwatch.GetTimestamp() + (long)(warmup.TotalSeconds * Stopwatch.Frequency);
            await Task.WhenAll(states.Select(s => Task.Run(() => LoopAsync(s, warmupOp, warmupEnd, measure: false, ct), ct)));
        }
        onMeasureStart?.Invoke();
        var start = Stopwatch.GetTimestamp();
        var end = start + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        await Task.WhenAll(states.Select(s => Task.Run(() => LoopAsync(s, op, end, measure: true, ct), ct)));
        var elapsed = Stopwatch.GetElapsedTime(start).TotalSeconds;
        if (onMeasureEnd is not null) await onMeasureEnd();
        return Summarize(states, elapsed);
    }

    static async Task LoopAsync(ClientState s, Operation op, long end, bool measure, CancellationToken ct)
    {
        while (Stopwatch.GetTimestamp() < end && !ct.IsCancellationRequested)
        {
            var t0 = Stopwatch.GetTimestamp();
            var r = await op(s.Client, ct);
            var t1 = Stopwatch.GetTimestamp();
            s.AckedAmount += r.AckedAmount;
            s.Uncertain |= r.Uncertain;
            if (!measure) continue;
            s.Latencies.Add(t1 - t0);
            s.Transfers += r.Transfers;
            s.Reads += r.Reads;
            s.Failed += r.Failed;
            if (r.Error is not null) s.Errors[r.Error] = s.Errors.GetValueOrDefault(r.Error) + 1;
        }
    }

    static RunStats Summarize(ClientState[] states, double elapsed)
    {
        var latencies = states.SelectMany(s => s.Latencies).ToArray();
        Array.Sort(latencies);
        double Percentile(double p) => latencies.Length == 0 ? 0
            : latencies[Math.Clamp((int)Math.Ceiling(p * latencies.Length) - 1, 0, latencies.Length - 1)] * 1000.0 / Stopwatch.Frequency;
        var errors = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (k, v) in states.SelectMany(s => s.Errors)) errors[k] = errors.GetValueOrDefault(k) + v;
        return new RunStats(elapsed, latencies.Length, states.Sum(s => s.Transfers), states.Sum(s => s.Reads), states.Sum(s => s.Failed),
            states.Sum(s => s.AckedAmount), states.Any(s => s.Uncertain),
            Percentile(0.50), Percentile(0.95), Percentile(0.99), Percentile(1.0), errors);
    }

    sealed class ClientState(Client client)
    {
        public Client Client { get; } = client;
        public List<long> Latencies { get; } = new(4096);
        public Dictionary<string, long> Errors { get; } = new(StringComparer.Ordinal);
        public long Transfers;
        public long Reads;
        public long Failed;
        public long AckedAmount;
        public bool Uncertain;
    }
}
