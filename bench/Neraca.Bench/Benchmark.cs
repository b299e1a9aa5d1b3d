using System.Globalization;
using Neraca.Bench.Baseline;
using Neraca.Tests.Infrastructure;

namespace Neraca.Bench;

/// <summary>One system under test: Neraca or the naive baseline, with its ledger, accounts and conservation probe.</summary>
public sealed class Side(string name, Workload workload, ConservationProbe probe, string connectionString, int? serverPid, int? postmasterPid)
{
    /// <summary>The side's ledgers: the main one first, then the extra ones of the <c>ledgers</c> scenario.</summary>
    public List<Workload> Ledgers { get; } = [workload];

    /// <summary>PostgreSQL's postmaster when it runs on this machine (for its CPU), else null.</summary>
    public int? PostmasterPid { get; } = postmasterPid;

    public string Name { get; } = name;
    public Workload Workload { get; } = workload;
    /// <summary>Covers every ledger in <see cref="Ledgers"/> (the money acknowledged is counted across them).</summary>
    public ConservationProbe Probe { get; } = probe;
    public string ConnectionString { get; } = connectionString;

    /// <summary>The server's process when the benchmark started it (for memory and CPU), else null.</summary>
    public int? ServerPid { get; } = serverPid;

    /// <summary>Money acknowledged to clients since the ledger was created.</summary>
    public decimal Acknowledged { get; set; }

    /// <summary>Whether some answer was lost (then the ledger may hold more than was acknowledged).</summary>
    public bool AnswersLost { get; set; }
}

/// <summary>A run of the plan: a scenario with its clients and batch size, sent to each side in turn. With
/// <paramref name="Ledgers"/> above 1, client k sends to the side's ledger k mod <paramref name="Ledgers"/>.</summary>
public sealed record RunPlan(string Scenario, string Name, int Clients, int BatchSize, Func<Workload, string, Operation> Warmup, Func<Workload, string, Operation> Measured,
    int Ledgers = 1);

/// <summary>What one side did in one run.</summary>
public sealed record RunResult(string Scenario, string Run, string Side, int Clients, int BatchSize, RunStats Stats, ConservationCheck Conservation,
    double? PeakRssMiB, CpuUse Cpu, IReadOnlyDictionary<string, double> PgWaits);

/// <summary>Starts what is needed, runs the plan on both sides, prints and saves the report.</summary>
public static class Benchmark
{
    public const string Neraca = "neraca";
    public const string Baseline = "baseline";

    public static async Task<int> RunAsync(BenchOptions o, CancellationToken ct)
    {
        var root = RepoRoot();
        var stamp = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
        ServerProcess? server = null;
        NaiveLedgerServer? naive = null;
        var sides = new List<Side>();
        var clients = new List<LedgerClient>();
        try
        {
            string? neracaDb = o.Database, naiveDb = o.BaselineDatabase;
            var neracaUrl = o.Target;
            if (o.Target is null)
            {
                Log("starting PostgreSQL (fsync and synchronous_commit on)");
                var pg = await PostgresServer.SharedAsync();
                if (o.Baseline) naiveDb = await pg.CreateDatabaseAsync("bench_naive");
                if (o.Neraca)
                {
                    neracaDb = await pg.CreateDatabaseAsync("bench_neraca");
                    var dll = o.ServerDll ?? Path.Combine(root, "src/Neraca.Server/bin/Release/net10.0/Neraca.Server.dll");
                    Log($"starting {dll}");
                    string[] args = o.Scenarios.Contains(ScenarioNames.Ewa) ? [.. EwaScenario.ServerArgs, .. o.ServerArgs] : [.. o.ServerArgs];
                    server = await ServerProcess.StartAsync(dll, neracaDb, o.ApiKey, args, o.ServerEnvironment, ct);
                    neracaUrl = server.BaseAddress;
                }
            }
            var ledgerCode = "bench-" + stamp;
            // Ids unique per invocation, so runs against the same --target never collide.
            var prefix = Base36(DateTimeOffset.UtcNow.ToUnixTimeSeconds());
            var accounts = Enumerable.Range(0, o.Accounts).Select(i => $"{prefix}.{i.ToString(CultureInfo.InvariantCulture)}").ToArray();
            var hot = prefix + ".hot";
            var plan = Plan(o);
            var extraLedgers = plan.Select(r => r.Ledgers).DefaultIfEmpty(1).Max() - 1;

            if (o.Neraca)
            {
                var neracaClient = new LedgerClient(neracaUrl!, o.ApiKey);
                clients.Add(neracaClient);
                var pid = server?.Pid;
                var db = neracaDb!;
                sides.Add(await SetUpAsync(Neraca, neracaClient, ledgerCode, accounts, hot, extraLedgers,
                    ids => ConservationProbe.ForNeraca(db, o.Tenant, ids), db, pid, ct));
            }
            if (o.Baseline)
            {
                naive = await NaiveLedgerServer.StartAsync(naiveDb!, o.ApiKey, ct);
                var naiveClient = new LedgerClient(naive.BaseAddress, o.ApiKey);
                clients.Add(naiveClient);
                var db = naiveDb!;
                sides.Add(await SetUpAsync(Baseline, naiveClient, ledgerCode, accounts, hot, extraLedgers,
                    ids => ConservationProbe.ForBaseline(db, ids), db, null, ct));
            }

            var results = new List<RunResult>();
            for (var i = 0; i < plan.Count; i++)
            {
                foreach (var side in sides)
                {
                    var result = await RunAsync(plan[i], side, $"{prefix}r{i.ToString(CultureInfo.InvariantCulture)}{side.Name[0]}", o, ct);
                    results.Add(result);
                    Log(Report.Line(result));
                }
            }
            IReadOnlyList<TargetCheck> jobTargets = [];
            if (o.Scenarios.Contains(ScenarioNames.Jobs) && sides.FirstOrDefault(s => s.Name == Neraca) is { } neracaSide)
                jobTargets = await JobsScenario.RunAsync(neracaSide, o, $"{prefix}jobs", results, ct);
            if (o.Scenarios.Contains(ScenarioNames.Ewa) && sides.FirstOrDefault(s => s.Name == Neraca) is { } ewaSide)
                jobTargets = [.. jobTargets, .. await EwaScenario.RunAsync(ewaSide, o, $"{prefix}ewa", results, ct)];
            var report = Report.Build(o, results, server is not null, await Report.MachineAsync((neracaDb ?? naiveDb)!, root, ct));
            report = report with { Targets = [.. report.Targets, .. jobTargets] };
            Report.Print(report);
            var path = o.Output ?? Path.Combine(root, "bench", "results", $"bench-{stamp}.json");
            await Report.SaveAsync(report, path, ct);
            Log($"report saved to {path}");
            return results.All(r => r.Conservation.Ok) ? 0 : 1;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            Log("cancelled");
            return 130;
        }
        finally
        {
            foreach (var c in clients) c.Dispose();
            if (naive is not null) await naive.DisposeAsync();
            if (server is not null) await server.DisposeAsync();
            await PostgresServer.StopSharedAsync();
        }
    }

    /// <summary>Creates the main ledger and <paramref name="extraLedgers"/> more, each with as many accounts (so a run
    /// over several ledgers touches as many distinct accounts per batch as a run over one), and primes them.</summary>
    static async Task<Side> SetUpAsync(string name, LedgerClient client, string ledgerCode, string[] accounts, string hot, int extraLedgers,
        Func<string[], ConservationProbe> probe, string connectionString, int? serverPid, CancellationToken ct)
    {
        var ledgerIds = new List<string>();
        var workloads = new List<Workload>();
        for (var k = 0; k <= extraLedgers; k++)
        {
            var suffix = k == 0 ? "" : ".l" + k.ToString(CultureInfo.InvariantCulture);
            var code = ledgerCode + suffix;
            var ledgerAccounts = k == 0 ? accounts : [.. accounts.Select(a => a + suffix)];
            var ledgerHot = hot + suffix;
            Log($"{name}: creating ledger {code} and {ledgerAccounts.Length + 1} accounts");
            ledgerIds.Add(await client.CreateLedgerAsync(code, ct));
            await client.CreateAccountsAsync(code, [.. ledgerAccounts, ledgerHot], concurrency: 16, ct);
            workloads.Add(new Workload(client, ledgerAccounts, ledgerHot));
        }
        var side = new Side(name, workloads[0], probe([.. ledgerIds]), connectionString, serverPid,
            await CpuMonitor.FindPostmasterAsync(connectionString, ct));
        side.Ledgers.AddRange(workloads.Skip(1));
        Log($"{name}: priming (one transfer into every account, so no run pays for a cold cache)");
        foreach (var w in side.Ledgers)
        {
            var primed = await w.PrimeAsync(w.HotAccount + ".p", ct);
            side.Acknowledged += primed.AckedAmount;
            side.AnswersLost |= primed.Uncertain;
            if (primed.Failed > 0) throw new InvalidOperationException($"{name}: priming failed: {primed.Error}");
        }
        return side;
    }

    internal static async Task<RunResult> RunAsync(RunPlan run, Side side, string tag, BenchOptions o, CancellationToken ct)
    {
        CpuMonitor? cpu = null;
        WaitSampler? sampler = null;
        CpuUse? cpuUse = null;
        IReadOnlyDictionary<string, double>? waits = null;
        void Start()
        {
            Log($"{side.Name} {run.Name}: measuring for {o.Seconds.ToString(CultureInfo.InvariantCulture)} s");
            cpu = CpuMonitor.Start(side.ServerPid, side.PostmasterPid);
            sampler = WaitSampler.Start(side.ConnectionString);
        }
        async Task Stop()
        {
            cpuUse = cpu!.Stop();
            waits = await sampler!.StopAsync();
            await sampler.DisposeAsync();
        }
        await using var rss = side.ServerPid is int pid ? RssMonitor.Start(pid) : null;
        var ledgers = side.Ledgers.Take(run.Ledgers).ToArray();
        Operation Spread(Func<Workload, string, Operation> make, string runTag)
        {
            var ops = ledgers.Select(w => make(w, runTag)).ToArray();
            return ops.Length == 1 ? ops[0] : (c, token) => ops[c.Index % ops.Length](c, token);
        }
        var stats = await LoadRunner.RunAsync(run.Clients, TimeSpan.FromSeconds(o.WarmupSeconds), TimeSpan.FromSeconds(o.Seconds),
            Spread(run.Warmup, tag + "w"), Spread(run.Measured, tag + "m"), ct, onMeasureStart: Start, onMeasureEnd: Stop);
        double? peak = rss is null ? null : await rss.StopAsync();
        side.Acknowledged += stats.AckedAmount;
        side.AnswersLost |= stats.Uncertain;
        var conservation = await side.Probe.CheckAsync(side.Acknowledged, side.AnswersLost, ct);
        return new RunResult(run.Scenario, run.Name, side.Name, run.Clients, run.BatchSize, stats, conservation, peak, cpuUse!, waits!);
    }

    static List<RunPlan> Plan(BenchOptions o)
    {
        var plan = new List<RunPlan>();
        foreach (var scenario in o.Scenarios)
        {
            switch (scenario)
            {
                case ScenarioNames.Uniform:
                    foreach (var c in o.UniformClients)
                        plan.Add(new(scenario, $"uniform c={c}", c, 1, (w, t) => w.Uniform(t), (w, t) => w.Uniform(t)));
                    break;
                case ScenarioNames.Hot:
                    plan.Add(new(scenario, $"hot c={o.Clients}", o.Clients, 1, (w, t) => w.Hot(t), (w, t) => w.Hot(t)));
                    break;
                case ScenarioNames.Batch:
                    foreach (var size in o.BatchSizes)
                        plan.Add(new(scenario, $"batch {size} c={o.BatchClients}", o.BatchClients, size,
                            (w, t) => w.Batch(t, Math.Min(size, 100)), (w, t) => w.Batch(t, size)));
                    break;
                case ScenarioNames.Read:
                    plan.Add(new(scenario, $"read 90/10 c={o.Clients}", o.Clients, 1, (w, t) => w.ReadMostly(t, 10), (w, t) => w.ReadMostly(t, 10)));
                    // Reads only: what HTTP, authentication and the balance cache cost per request on this machine, the
                    // floor under every write figure above.
                    plan.Add(new(scenario, $"read only c={o.Clients}", o.Clients, 1, (w, t) => w.Read(), (w, t) => w.Read()));
                    break;
                case ScenarioNames.Ledgers:
                    // The same loads as "batch 8000" and "uniform c=64" on one ledger, spread over several: how a
                    // deployment's throughput grows when its writes go to independent ledgers.
                    var big = o.BatchSizes.Max();
                    foreach (var n in o.Ledgers.Where(n => n > 1))
                    {
                        var batchClients = Math.Max(o.BatchClients, n);
                        plan.Add(new(scenario, $"batch {big} c={batchClients} {n}L", batchClients, big,
                            (w, t) => w.Batch(t, Math.Min(big, 100)), (w, t) => w.Batch(t, big), n));
                        plan.Add(new(scenario, $"uniform c={o.Clients} {n}L", o.Clients, 1, (w, t) => w.Uniform(t), (w, t) => w.Uniform(t), n));
                    }
                    break;
            }
        }
        return plan;
    }

    static string Base36(long value)
    {
        const string digits = "0123456789abcdefghijklmnopqrstuvwxyz";
        var text = "";
        for (; value > 0; value /= 36) text = digits[(int)(value % 36)] + text;
        return text;
    }

    static string RepoRoot()
    {
        foreach (var start in (string[])[Directory.GetCurrentDirectory(), AppContext.BaseDirectory])
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "Neraca.slnx"))) return dir.FullName;
        }
        return Directory.GetCurrentDirectory();
    }

    public static void Log(string message) =>
        Console.WriteLine($"[{DateTime.UtcNow.ToString("HH:mm:ss", CultureInfo.InvariantCulture)}] {message}");
}
