using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace Neraca.Bench;

/// <summary>Where the machine's CPU went during a run, in cores: the Neraca server process, the benchmark process
/// (load generator, plus the baseline server when it is the side measured), PostgreSQL (the postmaster and all its
/// children, when the benchmark can see its processes), and everything else on the machine.</summary>
public sealed record CpuUse(double Cores, double BusyCores, double? ServerCores, double BenchCores, double? PostgresCores, double OtherCores);

/// <summary>Reads <c>/proc/stat</c> and <c>/proc/PID/stat</c> at the start and end of a run.</summary>
public sealed class CpuMonitor
{
    readonly int? _serverPid;
    readonly int? _postmasterPid;
    readonly long _postgres;
    readonly long _start = Stopwatch.GetTimestamp();
    readonly (long Busy, long Total) _machine = Machine();
    readonly long _server;
    readonly long _bench;

    CpuMonitor(int? serverPid, int? postmasterPid)
    {
        _serverPid = serverPid;
        _postmasterPid = postmasterPid;
        _postgres = postmasterPid is int pm ? PostgresTicks(pm) : 0;
        _server = serverPid is int p ? ProcessTicks(p) : 0;
        _bench = ProcessTicks(Environment.ProcessId);
    }

    public static CpuMonitor Start(int? serverPid, int? postmasterPid) => new(serverPid, postmasterPid);

    /// <summary>The postmaster of the server behind <paramref name="connectionString"/> if it runs on this machine (the
    /// parent of our backend), else null.</summary>
    public static async Task<int?> FindPostmasterAsync(string connectionString, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand("SELECT pg_backend_pid()", connection);
        var backend = (int)(await command.ExecuteScalarAsync(ct))!;
        var fields = StatFields(backend);
        return fields is null ? null : int.Parse(fields[1], CultureInfo.InvariantCulture);
    }

    public CpuUse Stop()
    {
        var seconds = Stopwatch.GetElapsedTime(_start).TotalSeconds;
        var machine = Machine();
        const double ticksPerSecond = 100; // USER_HZ on Linux
        double Cores(long ticks) => ticks / ticksPerSecond / seconds;
        var total = machine.Total - _machine.Total;
        var busyShare = total > 0 ? (double)(machine.Busy - _machine.Busy) / total : 0;
        var busy = busyShare * Environment.ProcessorCount;
        double? server = _serverPid is int p ? Cores(ProcessTicks(p) - _server) : null;
        var bench = Cores(ProcessTicks(Environment.ProcessId) - _bench);
        double? postgres = _postmasterPid is int pm ? Cores(PostgresTicks(pm) - _postgres) : null;
        return new CpuUse(Environment.ProcessorCount, Round(busy), server is double s ? Round(s) : null, Round(bench),
            postgres is double pg ? Round(pg) : null, Round(Math.Max(0, busy - bench - (server ?? 0) - (postgres ?? 0))));
    }

    static double Round(double v) => Math.Round(v, 2);

    static (long Busy, long Total) Machine()
    {
        try
        {
            var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1)
                .Select(f => long.Parse(f, CultureInfo.InvariantCulture)).ToArray();
            var idle = fields[3] + fields[4];
            var total = fields.Take(8).Sum();
            return (total - idle, total);
        }
        catch (IOException)
        {
            return (0, 0);
        }
    }

    /// <summary>The fields of <c>/proc/PID/stat</c> after the command: [0] state, [1] ppid, [11] utime, [12] stime,
    /// [13] cutime, [14] cstime (fields 3, 4, 14-17 of man 5 proc).</summary>
    static string[]? StatFields(int pid)
    {
        try
        {
            var text = File.ReadAllText($"/proc/{pid}/stat");
            return text[(text.LastIndexOf(')') + 2)..].Split(' ');
        }
        catch (IOException)
        {
            return null;
        }
    }

    static long Ticks(string[] f, int from, int count)
    {
        long sum = 0;
        for (var i = from; i < from + count; i++) sum += long.Parse(f[i], CultureInfo.InvariantCulture);
        return sum;
    }

    static long ProcessTicks(int pid) => StatFields(pid) is { } f ? Ticks(f, 11, 2) : 0;

    /// <summary>CPU of the postmaster, of its live children, and of its exited children (cutime and cstime), so backends
    /// that come and go during a run are counted.</summary>
    static long PostgresTicks(int postmaster)
    {
        if (StatFields(postmaster) is not { } pm) return 0;
        var sum = Ticks(pm, 11, 4);
        var parent = postmaster.ToString(CultureInfo.InvariantCulture);
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), CultureInfo.InvariantCulture, out var pid)) continue;
            if (StatFields(pid) is { } f && f[1] == parent) sum += Ticks(f, 11, 2);
        }
        return sum;
    }
}

/// <summary>What PostgreSQL's busy backends of one database were waiting on, sampled from <c>pg_stat_activity</c>
/// every 50 ms: <c>CPU</c> is running, <c>LWLock:WALWrite</c>/<c>IO:WALSync</c> is commit flushing,
/// <c>Lock:*</c> is row-lock contention, <c>Client:ClientRead</c> inside a transaction is the application's think time.</summary>
public sealed class WaitSampler : IAsyncDisposable
{
    const string Sql = """
        SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU'), count(*)::int FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
          AND state IN ('active', 'idle in transaction')
        GROUP BY 1
        """;

    readonly CancellationTokenSource _stop = new();
    readonly Task _sampling;
    readonly Dictionary<string, long> _counts = new(StringComparer.Ordinal);
    long _samples;

    WaitSampler(string connectionString) => _sampling = SampleAsync(connectionString);

    public static WaitSampler Start(string connectionString) => new(connectionString);

    async Task SampleAsync(string connectionString)
    {
        try
        {
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync(_stop.Token);
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(50));
            while (await timer.WaitForNextTickAsync(_stop.Token))
            {
                await using var command = new NpgsqlCommand(Sql, connection);
                await using var reader = await command.ExecuteReaderAsync(_stop.Token);
                while (await reader.ReadAsync(_stop.Token))
                    _counts[reader.GetString(0)] = _counts.GetValueOrDefault(reader.GetString(0)) + reader.GetInt32(1);
                _samples++;
            }
        }
        catch (OperationCanceledException) { }
        catch (NpgsqlException) { }
    }

    /// <summary>Average busy backends per wait, largest first.</summary>
    public async Task<IReadOnlyDictionary<string, double>> StopAsync()
    {
        await _stop.CancelAsync();
        await _sampling;
        var samples = Math.Max(1, _samples);
        return _counts.OrderByDescending(c => c.Value).Take(8).ToDictionary(c => c.Key, c => Math.Round((double)c.Value / samples, 2), StringComparer.Ordinal);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested) await StopAsync();
        _stop.Dispose();
    }
}
