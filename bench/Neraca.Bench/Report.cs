using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Neraca.Tests.Infrastructure;
using Npgsql;

namespace Neraca.Bench;

/// <summary>Neraca against the baseline in one run (transfers/s; operations/s for the read mix).</summary>
public sealed record Comparison(string Run, double Neraca, double? Baseline, double? Ratio);

/// <summary>A target of issue #21 and whether this run met it.</summary>
public sealed record TargetCheck(string Target, string Actual, bool Met);

public sealed record Machine(string Cpu, int Cores, double MemoryGb, string Os, string Dotnet, string Postgres, string Durability, string Commit);

public sealed record BenchReport(DateTimeOffset At, Machine Machine, BenchOptions Options, IReadOnlyList<RunResult> Results,
    IReadOnlyList<Comparison> Comparisons, IReadOnlyList<TargetCheck> Targets);

public static class Report
{
    const double RatioMin = 3;
    static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static BenchReport Build(BenchOptions o, IReadOnlyList<RunResult> results, bool serverStarted, Machine machine)
    {
        var comparisons = results.Where(r => r.Side == Benchmark.Neraca).Select(n =>
        {
            var b = results.FirstOrDefault(r => r.Side == Benchmark.Baseline && r.Run == n.Run);
            var nv = Throughput(n);
            double? bv = b is null ? null : Throughput(b);
            return new Comparison(n.Run, nv, bv, bv is > 0 ? nv / bv : null);
        }).ToList();
        // Issue #21's targets (they replaced issue #5's): throughput, the ratio to the baseline, latency and CPU per transfer.
        var targets = new List<TargetCheck>();
        RunResult? Find(Func<RunResult, bool> which) => results.FirstOrDefault(r => r.Side == Benchmark.Neraca && which(r));
        void AtLeast(RunResult? n, string name, double min, double value, string unit)
        {
            if (n is not null) targets.Add(new TargetCheck($"{n.Run}: {name}", $"{Format(value)} {unit}", value >= min));
        }
        void CpuAtMost(RunResult? n, double max)
        {
            if (n is not null && CpuMicrosPerOp(n) is double us) targets.Add(new TargetCheck($"{n.Run}: <= {max:0} CPU-us/op", $"{us:0} CPU-us/op", us <= max));
        }
        var batch8000 = Find(r => r.Scenario == ScenarioNames.Batch && r.BatchSize == 8000);
        AtLeast(batch8000, ">= 40,000 transfers/s", 40_000, batch8000?.Stats.TransfersPerSecond ?? 0, "transfers/s");
        CpuAtMost(batch8000, 35);
        var uniform64 = Find(r => r.Scenario == ScenarioNames.Uniform && r.Clients == 64);
        if (uniform64 is not null && comparisons.First(x => x.Run == uniform64.Run) is { Ratio: double ratio } c)
            targets.Add(new TargetCheck($"{uniform64.Run}: >= {RatioMin:0}x baseline", $"{ratio:0.0}x ({Format(c.Neraca)} vs {Format(c.Baseline ?? 0)})", ratio >= RatioMin));
        if (uniform64 is not null)
            targets.Add(new TargetCheck($"{uniform64.Run}: p99 <= 20 ms", $"{uniform64.Stats.P99Ms:0.0} ms", uniform64.Stats.P99Ms <= 20));
        CpuAtMost(uniform64, 150);
        var hot = Find(r => r.Scenario == ScenarioNames.Hot && r.Clients == 64);
        AtLeast(hot, ">= 8,000 transfers/s", 8_000, hot?.Stats.TransfersPerSecond ?? 0, "transfers/s");
        if (serverStarted)
        {
            var peak = results.Where(r => r.Side == Benchmark.Neraca).Max(r => r.PeakRssMiB ?? 0);
            targets.Add(new TargetCheck("server peak RSS < 512 MiB", $"{peak:0} MiB", peak < 512));
        }
        var conserved = results.All(r => r.Conservation.Ok);
        targets.Add(new TargetCheck("conservation after every run, both sides", conserved ? "held" : "BROKEN", conserved));
        return new BenchReport(DateTimeOffset.UtcNow, machine, o, results, comparisons, targets);
    }

    static double Throughput(RunResult r) => r.Scenario == ScenarioNames.Read ? r.Stats.OpsPerSecond : r.Stats.TransfersPerSecond;

    /// <summary>CPU the system under test and the load generator spent per transfer (or operation), in microseconds:
    /// unlike throughput it does not depend on what else the machine was running.</summary>
    public static double? CpuMicrosPerOp(RunResult r)
    {
        var c = r.Cpu;
        if (c.PostgresCores is not double pg || Throughput(r) <= 0) return null;
        return (c.BenchCores + (c.ServerCores ?? 0) + pg) * 1e6 / Throughput(r);
    }

    public static string Line(RunResult r)
    {
        var s = r.Stats;
        var unit = r.Scenario == ScenarioNames.Read ? "ops/s" : "transfers/s";
        var rss = r.PeakRssMiB is double m ? $", peak RSS {m:0} MiB" : "";
        var cpuPerOp = CpuMicrosPerOp(r) is double us ? $", {us:0} CPU-us/op" : "";
        var errors = s.Errors.Count == 0 ? "" : " (" + string.Join(", ", s.Errors.OrderByDescending(e => e.Value).Take(3).Select(e => $"{e.Key}: {e.Value}")) + ")";
        var c = r.Cpu;
        var cpu = $"\n{"",30}CPU cores: busy {c.BusyCores:0.00} of {c.Cores} = server {(c.ServerCores is double sc ? sc.ToString("0.00", CultureInfo.InvariantCulture) : "-")}"
            + $" + bench {c.BenchCores:0.00} + PostgreSQL {(c.PostgresCores is double pg ? pg.ToString("0.00", CultureInfo.InvariantCulture) : "-")}"
            + $" + rest of the machine {c.OtherCores:0.00}; PostgreSQL backends: "
            + string.Join(", ", r.PgWaits.Select(w => $"{w.Key} {w.Value:0.0}"));
        return $"{r.Side,-8} {r.Run,-20} {Format(Throughput(r)),10} {unit}  p50 {s.P50Ms:0.0} p95 {s.P95Ms:0.0} p99 {s.P99Ms:0.0} max {s.MaxMs:0.0} ms"
            + $"  errors {s.Failed}{errors}  conservation {(r.Conservation.Ok ? "ok" : "FAILED: " + r.Conservation.Detail)}{rss}{cpuPerOp}{cpu}";
    }

    public static void Print(BenchReport report)
    {
        var sb = new StringBuilder();
        var m = report.Machine;
        sb.AppendLine(CultureInfo.InvariantCulture, $"\nMachine: {m.Cpu}, {m.Cores} cores, {m.MemoryGb:0.0} GiB; {m.Os}; {m.Dotnet}; {m.Postgres} ({m.Durability}); commit {m.Commit}");
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"\n{"run",-20} {"side",-8} {"per s",10} {"p50 ms",8} {"p95 ms",8} {"p99 ms",8} {"max ms",8} {"errors",7} {"conserved",9} {"RSS MiB",8} {"CPU-us/op",9} {"others' cores",13}");
        foreach (var r in report.Results)
        {
            var s = r.Stats;
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"{r.Run,-20} {r.Side,-8} {Format(Throughput(r)),10} {s.P50Ms,8:0.0} {s.P95Ms,8:0.0} {s.P99Ms,8:0.0} {s.MaxMs,8:0.0} {s.Failed,7} {(r.Conservation.Ok ? "yes" : "NO"),9} {(r.PeakRssMiB is double p ? p.ToString("0", CultureInfo.InvariantCulture) : "-"),8} {(CpuMicrosPerOp(r) is double us ? us.ToString("0", CultureInfo.InvariantCulture) : "-"),9} {r.Cpu.OtherCores,13:0.00}");
        }
        sb.AppendLine(CultureInfo.InvariantCulture, $"\n{"run",-20} {"neraca/s",10} {"baseline/s",10} {"ratio",7}");
        foreach (var c in report.Comparisons)
            sb.AppendLine(CultureInfo.InvariantCulture, $"{c.Run,-20} {Format(c.Neraca),10} {(c.Baseline is double b ? Format(b) : "-"),10} {(c.Ratio is double x ? x.ToString("0.0", CultureInfo.InvariantCulture) + "x" : "-"),7}");
        sb.AppendLine("\nTargets (issue #21):");
        foreach (var t in report.Targets)
            sb.AppendLine(CultureInfo.InvariantCulture, $"  [{(t.Met ? "met" : "MISSED")}] {t.Target}: {t.Actual}");
        Console.WriteLine(sb.ToString());
    }

    public static async Task SaveAsync(BenchReport report, string path, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        await using var file = File.Create(path);
        await JsonSerializer.SerializeAsync(file, report, JsonOptions, ct);
    }

    public static async Task<Machine> MachineAsync(string connectionString, string root, CancellationToken ct)
    {
        var cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "?"
            : RuntimeInformation.ProcessArchitecture.ToString();
        var memKb = File.Exists("/proc/meminfo")
            ? long.Parse(File.ReadLines("/proc/meminfo").First().Split(':', 2)[1].Trim().TrimEnd('B', 'k').Trim(), CultureInfo.InvariantCulture)
            : 0;
        string postgres, durability;
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync(ct);
            await using var command = new NpgsqlCommand("SELECT current_setting('server_version'), current_setting('fsync'), current_setting('synchronous_commit')", connection);
            await using var reader = await command.ExecuteReaderAsync(ct);
            await reader.ReadAsync(ct);
            postgres = "PostgreSQL " + reader.GetString(0);
            durability = $"fsync={reader.GetString(1)}, synchronous_commit={reader.GetString(2)}";
        }
        var commit = (await ProcessRunner.RunAsync("git", ["-C", root, "rev-parse", "--short", "HEAD"], check: false)).Trim();
        return new Machine(cpu, Environment.ProcessorCount, memKb / 1024.0 / 1024.0, RuntimeInformation.OSDescription,
            RuntimeInformation.FrameworkDescription, postgres, durability, commit);
    }

    static string Format(double v) => v.ToString("#,0", CultureInfo.InvariantCulture);
}
