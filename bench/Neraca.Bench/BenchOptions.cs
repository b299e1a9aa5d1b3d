using System.Globalization;

namespace Neraca.Bench;

/// <summary>Command-line settings of one benchmark run. Every default keeps <c>--scenario all</c> to a few minutes on 2 cores.</summary>
public sealed class BenchOptions
{
    public const string DefaultApiKey = "nrc_benchbootstrapkey000000000000000000000";

    /// <summary>Scenarios to run: <c>uniform</c>, <c>hot</c>, <c>batch</c>, <c>read</c>, <c>ledgers</c> (or <c>all</c>).</summary>
    public IReadOnlyList<string> Scenarios { get; private set; } = ScenarioNames.All;

    /// <summary>Measured seconds per run (after the warm-up). Default 5.</summary>
    public double Seconds { get; private set; } = 5;

    /// <summary>Warm-up seconds per run, not measured. Default 3 (long enough for the JIT to settle on the server's hot paths).</summary>
    public double WarmupSeconds { get; private set; } = 3;

    /// <summary>Concurrent clients of the <c>uniform</c> runs. Default 1, 8, 64, 256.</summary>
    public IReadOnlyList<int> UniformClients { get; private set; } = [1, 8, 64, 256];

    /// <summary>Concurrent clients of the <c>hot</c> and <c>read</c> runs. Default 64.</summary>
    public int Clients { get; private set; } = 64;

    /// <summary>Transfers per request of the <c>batch</c> runs. Default 100, 1,000, 8,000.</summary>
    public IReadOnlyList<int> BatchSizes { get; private set; } = [100, 1000, 8000];

    /// <summary>Concurrent clients of the <c>batch</c> runs. Default 4.</summary>
    public int BatchClients { get; private set; } = 4;

    /// <summary>Ledgers the <c>ledgers</c> runs spread their load over (each count above 1 is a pair of runs). Default 2, 4.</summary>
    public IReadOnlyList<int> Ledgers { get; private set; } = [2, 4];

    /// <summary>Items the <c>jobs</c> scenario's background job works through. Default 1,000,000.</summary>
    public long JobItems { get; private set; } = 1_000_000;

    /// <summary>Employers of the <c>ewa</c> scenario. Default 1,000.</summary>
    public int EwaEmployers { get; private set; } = 1_000;

    /// <summary>Salaried employees per employer of the <c>ewa</c> scenario. Default 100.</summary>
    public int EwaEmployees { get; private set; } = 100;

    /// <summary>Accounts the transfers move money between. Default 10,000.</summary>
    public int Accounts { get; private set; } = 10_000;

    /// <summary>A running Neraca server to measure instead of starting one (needs <see cref="Database"/>).</summary>
    public Uri? Target { get; private set; }

    /// <summary>Npgsql connection string of the target's database, for the conservation check.</summary>
    public string? Database { get; private set; }

    /// <summary>Database for the naive baseline when <see cref="Target"/> is set (its own, it creates tables there).</summary>
    public string? BaselineDatabase { get; private set; }

    /// <summary>Admin key of the target's <c>default</c> tenant (or the key the started server is bootstrapped with).</summary>
    public string ApiKey { get; private set; } = DefaultApiKey;

    /// <summary>Tenant the key belongs to (the conservation check filters by it).</summary>
    public string Tenant { get; private set; } = "default";

    /// <summary>Run the naive baseline too (default).</summary>
    public bool Baseline { get; private set; } = true;

    /// <summary>Run Neraca (default); off measures only the baseline, e.g. to check it alone.</summary>
    public bool Neraca { get; private set; } = true;

    /// <summary>Where the JSON report goes. Default <c>bench/results/bench-UTCSTAMP.json</c>.</summary>
    public string? Output { get; private set; }

    /// <summary>The server to start. Default <c>src/Neraca.Server/bin/Release/net10.0/Neraca.Server.dll</c>.</summary>
    public string? ServerDll { get; private set; }

    /// <summary>Extra arguments for the started server (repeatable), e.g. <c>--server-arg --Ledger:BatchSizeMax=4000</c>.</summary>
    public IReadOnlyList<string> ServerArgs => _serverArgs;

    readonly List<string> _serverArgs = [];

    /// <summary>Environment variables for the started server (repeatable <c>--server-env NAME=VALUE</c>), e.g.
    /// <c>DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0</c>.</summary>
    public IReadOnlyDictionary<string, string> ServerEnvironment => _serverEnvironment;

    readonly Dictionary<string, string> _serverEnvironment = new(StringComparer.Ordinal);

    public static string Usage => """
        Usage: dotnet run -c Release --project bench/Neraca.Bench -- [options]
          --scenario all|uniform,hot,batch,read,ledgers   scenarios (default all)
                                 jobs: p99 of uniform alone vs while a big chunked job runs (not in all)
          --job-items N          items of the jobs scenario's job (default 1000000)
                                 ewa: p99 of uniform alone vs while EWA's nightly work runs (not in all)
          --ewa-employers N      employers of the ewa scenario (default 1000)
          --ewa-employees N      salaried employees per employer of the ewa scenario (default 100)
          --seconds N            measured seconds per run (default 5)
          --warmup N             warm-up seconds per run (default 3)
          --uniform-clients L    clients of the uniform runs (default 1,8,64,256)
          --clients N            clients of the hot and read runs (default 64)
          --batch-sizes L        transfers per batch request (default 100,1000,8000)
          --batch-clients N      clients of the batch runs (default 4)
          --ledgers L            ledgers of the ledgers runs (default 2,4): the biggest batch and uniform c=64
                                 (--clients) spread over that many ledgers
          --accounts N           accounts (default 10000)
          --no-baseline          measure Neraca only
          --no-neraca            measure the baseline only
          --target URL --database CONN [--api-key KEY] [--tenant ID] [--baseline-database CONN]
                                 measure a running server instead of starting PostgreSQL and Neraca
          --server-dll PATH      server to start (default the Release build of src/Neraca.Server)
          --server-arg ARG       extra argument for the started server (repeatable)
          --server-env NAME=VAL  environment variable for the started server (repeatable)
          --out FILE             JSON report (default bench/results/bench-UTCSTAMP.json)
        """;

    /// <summary>Parses the arguments; throws <see cref="ArgumentException"/> naming the bad one.</summary>
    public static BenchOptions Parse(IReadOnlyList<string> args)
    {
        var o = new BenchOptions();
        for (var i = 0; i < args.Count; i++)
        {
            var name = args[i];
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{name} needs a value");
            switch (name)
            {
                case "--scenario": o.Scenarios = ParseScenarios(Value()); break;
                case "--seconds": o.Seconds = PositiveDouble(name, Value()); break;
                case "--warmup": o.WarmupSeconds = double.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--uniform-clients": o.UniformClients = IntList(name, Value()); break;
                case "--clients": o.Clients = PositiveInt(name, Value()); break;
                case "--batch-sizes": o.BatchSizes = IntList(name, Value()); break;
                case "--batch-clients": o.BatchClients = PositiveInt(name, Value()); break;
                case "--ledgers": o.Ledgers = IntList(name, Value()); break;
                case "--job-items": o.JobItems = PositiveInt(name, Value()); break;
                case "--ewa-employers": o.EwaEmployers = PositiveInt(name, Value()); break;
                case "--ewa-employees": o.EwaEmployees = PositiveInt(name, Value()); break;
                case "--accounts": o.Accounts = Math.Max(2, PositiveInt(name, Value())); break;
                case "--no-baseline": o.Baseline = false; break;
                case "--no-neraca": o.Neraca = false; break;
                case "--target": o.Target = new Uri(Value()); break;
                case "--database": o.Database = Value(); break;
                case "--baseline-database": o.BaselineDatabase = Value(); break;
                case "--api-key": o.ApiKey = Value(); break;
                case "--tenant": o.Tenant = Value(); break;
                case "--server-dll": o.ServerDll = Value(); break;
                case "--server-arg": o._serverArgs.Add(Value()); break;
                case "--server-env":
                    var pair = Value().Split('=', 2);
                    if (pair.Length != 2 || pair[0].Length == 0) throw new ArgumentException("--server-env needs NAME=VALUE");
                    o._serverEnvironment[pair[0]] = pair[1];
                    break;
                case "--out": o.Output = Value(); break;
                default: throw new ArgumentException($"unknown option {name}");
            }
        }
        if (!o.Neraca && !o.Baseline) throw new ArgumentException("--no-neraca and --no-baseline leave nothing to measure");
        if (o.Target is not null && o.Database is null)
            throw new ArgumentException("--target needs --database (the conservation check reads the ledger's tables)");
        if (o.Target is not null && o.Baseline && o.BaselineDatabase is null)
            throw new ArgumentException("--target with the baseline needs --baseline-database (or pass --no-baseline)");
        return o;
    }

    static IReadOnlyList<string> ParseScenarios(string text)
    {
        var names = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (names.Contains("all")) return [.. ScenarioNames.All, .. names.Where(n => n is ScenarioNames.Jobs or ScenarioNames.Ewa)];
        foreach (var n in names)
            if (!ScenarioNames.All.Contains(n) && n is not (ScenarioNames.Jobs or ScenarioNames.Ewa)) throw new ArgumentException($"unknown scenario {n}");
        return names;
    }

    static int PositiveInt(string name, string text) =>
        int.TryParse(text, CultureInfo.InvariantCulture, out var v) && v > 0 ? v : throw new ArgumentException($"{name} must be a positive integer");

    static double PositiveDouble(string name, string text) =>
        double.TryParse(text, CultureInfo.InvariantCulture, out var v) && v > 0 ? v : throw new ArgumentException($"{name} must be a positive number");

    static int[] IntList(string name, string text) =>
        [.. text.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(t => PositiveInt(name, t.Trim()))];
}

public static class ScenarioNames
{
    public const string Uniform = "uniform";
    public const string Hot = "hot";
    public const string Batch = "batch";
    public const string Read = "read";
    /// <summary>Issue #21's runs over several ledgers at once.</summary>
    public const string Ledgers = "ledgers";
    /// <summary>Issue #8's background-job scenario (<see cref="JobsScenario"/>); Neraca only, and not part of <c>all</c>.</summary>
    public const string Jobs = "jobs";
    /// <summary>Issue #14's earned-wage-access nightly work (<see cref="EwaScenario"/>); Neraca only, and not part of <c>all</c>.</summary>
    public const string Ewa = "ewa";
    public static readonly IReadOnlyList<string> All = [Uniform, Hot, Batch, Read, Ledgers];
}
