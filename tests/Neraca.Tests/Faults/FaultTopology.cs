using System.Globalization;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Payouts;
using Neraca.Tests.Topology;

namespace Neraca.Tests.Faults;

/// <summary>The production topology of <see cref="TopologyFixture"/> with everything the fault tests break made their
/// own: a Redis and a RabbitMQ that may be killed, a fault proxy between the application and PgBouncer, a
/// synchronous replica (so a failover loses no acknowledged commit) and the payout sandbox as its own process.</summary>
public sealed class FaultTopology : TopologyFixture
{
    public const string ProviderKey = "faults-sandbox-key";
    const string CallbackSecret = "faults-callback-secret-0123456789abcdef";
    readonly int _sandboxPort = ProcessRunner.FreePort();

    public FaultProxy Proxy { get; private set; } = null!;
    public RedisServer Redis { get; private set; } = null!;
    public RabbitMqServer RabbitMq { get; private set; } = null!;
    public SandboxProcess? Sandbox { get; private set; }

    protected override int DatabasePort => Proxy.Port;
    protected override bool SynchronousReplica => true;
    protected override int? DiskMegabytes => 2048;

    protected override IEnumerable<string> ServerArgs =>
    [
        "--Payouts:Provider:Url", $"http://127.0.0.1:{_sandboxPort.ToString(CultureInfo.InvariantCulture)}", "--Payouts:Provider:ApiKey", ProviderKey,
        "--Payouts:Provider:CallbackSecret", CallbackSecret,
        "--Payouts:Provider:AttemptTimeoutMs=500", "--Payouts:Provider:RetriesMax=1", "--Payouts:Provider:RetryDelayMs=20",
        "--Payouts:CallbackGraceSeconds=3", "--Payouts:RecoverAfterSeconds=3", "--Jobs:Recurring:payouts.recover:Cron=*/2 * * * * *",
        "--Jobs:LeaseSeconds=5", "--Jobs:BackoffBaseMs=250", "--Jobs:BackoffMaxMs=2000",
        // One client address sends everything (the workload and the sandbox's callbacks).
        "--RateLimits:IpPerMinute=10000000",
    ];

    protected override async Task<(string Redis, string RabbitMq)> BrokersAsync()
    {
        Redis = await RedisServer.StartAsync();
        RabbitMq = await RabbitMqServer.StartOwnAsync();
        return (Redis.Url, RabbitMq.Url);
    }

    /// <summary>Restarts <paramref name="process"/> (gracefully) with its wall clock read through libfaketime, at an
    /// offset read from its own file every second, so <see cref="SetClockAsync"/> can step it as a bad NTP step would.
    /// The monotonic clock (timers, timeouts) is left alone, as a real step leaves it. Only for the fault's duration:
    /// libfaketime 0.9.10 (Debian's) turns the runtime's monotonic timed waits into busy loops (wolfcw/libfaketime#503),
    /// which burns about a third of a core per process.</summary>
    public async Task FakeClockAsync(NeracaProcess process, bool on)
    {
        await process.StopAsync();
        if (!on)
        {
            await process.StartAsync();
            return;
        }
        await File.WriteAllTextAsync(ClockFile(process.Name), "+0\n");
        await process.StartAsync(new Dictionary<string, string>
        {
            ["LD_PRELOAD"] = FakeTime ?? throw new InvalidOperationException("libfaketime is not installed"),
            ["FAKETIME_DONT_FAKE_MONOTONIC"] = "1", ["FAKETIME_CACHE_DURATION"] = "1", ["FAKETIME_TIMESTAMP_FILE"] = ClockFile(process.Name),
        });
    }

    /// <summary>libfaketime, when installed (scripts/test.sh installs the <c>faketime</c> package).</summary>
    public static string? FakeTime { get; } = Directory.Exists("/usr/lib")
        ? Directory.GetDirectories("/usr/lib").Select(d => Path.Combine(d, "faketime", "libfaketime.so.1")).FirstOrDefault(File.Exists)
        : null;

    string ClockFile(string process) => Path.Combine(SecretsDir, $"clock-{process}");

    /// <summary>Steps a process's wall clock by <paramref name="offset"/> from real time (zero puts it back).</summary>
    public Task SetClockAsync(string process, TimeSpan offset) =>
        File.WriteAllTextAsync(ClockFile(process), (offset >= TimeSpan.Zero ? "+" : "-") + ((long)Math.Abs(offset.TotalSeconds)).ToString(CultureInfo.InvariantCulture) + "\n");

    protected override Task DatabaseStartedAsync()
    {
        Proxy = FaultProxy.Start(Bouncer.Port);
        return Task.CompletedTask;
    }

    /// <summary>The sandbox calls back through the balancer, so it starts once that is up.</summary>
    public async Task<SandboxProcess> SandboxAsync() => Sandbox ??= await SandboxProcess.StartAsync(_sandboxPort,
    [
        "--latency-ms", "100", "--invalid-account-share", "0.1", "--timeout-share", "0.05", "--server-error-share", "0.02",
        "--timeout-hang-ms", "2000", "--api-key", ProviderKey,
        "--callback-url", $"http://127.0.0.1:{Balancer.Port.ToString(CultureInfo.InvariantCulture)}/v1/payouts/callbacks", "--callback-secret", CallbackSecret,
    ]);

    /// <summary>Promotes the replica and points PgBouncer at it (restarted: every open connection drops, as a DNS or
    /// service switch does).</summary>
    public async Task FailoverAsync()
    {
        await Postgres.FailoverAsync();
        await Bouncer.RestartAsync(BouncerDatabases());
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (Sandbox is not null) await Sandbox.DisposeAsync();
        if (Proxy is not null) await Proxy.DisposeAsync();
        if (Redis is not null) await Redis.DisposeAsync();
        if (RabbitMq is not null) await RabbitMq.DisposeAsync();
    }
}
