using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Hosting;
using Neraca.Storage;
using Neraca.Tests.Events;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Ledger;
using Npgsql;

namespace Neraca.Tests.Topology;

/// <summary>The production topology on loopback, every part a real process from the OS packages: three api replicas
/// behind HAProxy (health checks on /health/ready), two workers and two schedulers, PgBouncer in transaction mode in
/// front of a PostgreSQL primary and its streaming replica (<c>pg_basebackup -R</c>; <c>ReadDatabase</c> is the
/// replica through PgBouncer), Redis and RabbitMQ. Every Neraca process reads its connection strings from secret files
/// (<c>NERACA_DATABASE_FILE</c>) and authenticates with a password (SCRAM) that PgBouncer checks against the primary.</summary>
public class TopologyFixture : IAsyncLifetime
{
    public const string AppRole = "neraca";
    public string Password { get; private set; } = "first-Secret-1";

    readonly List<NeracaProcess> _processes = [];

    public PostgresCluster Postgres { get; private set; } = null!;
    public PgBouncer Bouncer { get; private set; } = null!;
    public HaProxy Balancer { get; private set; } = null!;
    public WebhookReceiver Webhooks { get; private set; } = null!;
    public NeracaServer Inspector { get; private set; } = null!;
    public IReadOnlyList<NeracaProcess> Processes => _processes;
    public string SecretsDir { get; } = ProcessRunner.NewTempDirectory("topo-secrets");
    public TestTenant Tenant { get; private set; } = null!;
    public string? Unavailable { get; private set; }

    public string Direct => new NpgsqlConnectionStringBuilder
        { Host = "127.0.0.1", Port = Postgres.PrimaryPort, Database = "neraca", Username = "postgres", Pooling = false }.ConnectionString;

    public string ViaBouncer(string database, string password) => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1", Port = DatabasePort, Database = database, Username = AppRole, Password = password,
        // Connections live 3 s: every replica opens new ones all the time, so a rotated password is really used.
        ConnectionLifetime = 3,
    }.ConnectionString;

    /// <summary>Where the Neraca processes reach the database: PgBouncer here, a fault proxy in front of it in the fault tests.</summary>
    protected virtual int DatabasePort => Bouncer.Port;

    /// <summary>The primary commits only once the replica has the commit too (needed to fail over without loss).</summary>
    protected virtual bool SynchronousReplica => false;

    /// <summary>The size of a file system of the database's own, when it needs one (the fault tests fill it).</summary>
    protected virtual int? DiskMegabytes => null;

    /// <summary>Arguments every Neraca process of the topology gets besides its role.</summary>
    protected virtual IEnumerable<string> ServerArgs => [];

    /// <summary>Redis and RabbitMQ URLs: the test run's shared ones; the fault tests kill theirs, so they start their own.</summary>
    protected virtual async Task<(string Redis, string RabbitMq)> BrokersAsync() => ((await RedisServer.SharedAsync()).Url, (await RabbitMqServer.SharedAsync()).Url);

    /// <summary>Runs once PgBouncer is up, before any Neraca process is configured.</summary>
    protected virtual Task DatabaseStartedAsync() => Task.CompletedTask;

    /// <summary>PgBouncer's <c>[databases]</c>: the app's database on the primary and its replica, by socket.</summary>
    public IEnumerable<string> BouncerDatabases() =>
        [$"neraca = host={Postgres.PrimarySocketDir} port={Postgres.PrimaryPort} dbname=neraca",
         $"neraca_replica = host={Postgres.ReplicaSocketDir} port={Postgres.ReplicaPort} dbname=neraca"];

    public async ValueTask InitializeAsync()
    {
        var missing = new[] { "/usr/sbin/haproxy", "/usr/sbin/pgbouncer" }.Where(p => !File.Exists(p)).ToList();
        if (missing.Count > 0 || !ProcessRunner.IsRoot)
        {
            Unavailable = missing.Count > 0 ? $"missing {string.Join(", ", missing)} (scripts/test.sh installs haproxy and pgbouncer)" : "needs root (runs PostgreSQL and PgBouncer as the postgres user)";
            return;
        }
        Postgres = await PostgresCluster.StartAsync(SynchronousReplica, DiskMegabytes);
        await Postgres.ExecuteAsync(Postgres.PrimaryPort, $"CREATE ROLE {AppRole} LOGIN PASSWORD '{Password}'");
        await Postgres.ExecuteAsync(Postgres.PrimaryPort, $"CREATE DATABASE neraca OWNER {AppRole}");
        Bouncer = await PgBouncer.StartAsync(BouncerDatabases(), "auth_type = scram-sha-256\nauth_user = postgres");
        await DatabaseStartedAsync();

        // Migrations as the migration Job runs them: `neraca migrate`, straight to the primary.
        var migrateDirect = new NpgsqlConnectionStringBuilder
            { Host = "127.0.0.1", Port = Postgres.PrimaryPort, Database = "neraca", Username = AppRole, Password = Password }.ConnectionString;
        await using (var migrate = NeracaApp.Create(["--database", migrateDirect, "--bootstrap-api-key", NeracaServer.BootstrapKey, "--Logging:LogLevel:Default=Warning"]))
            await migrate.Services.GetRequiredService<StorageStartup>().MigrateAsync(CancellationToken.None);
        await WriteSecretsAsync(Password);
        if (ProcessRunner.IsRoot) await ProcessRunner.RunAsync("chmod", ["-R", "go-rwx", SecretsDir]);

        // A server on the primary, outside the topology, for tenant set-up and conservation checks.
        Inspector = await NeracaServer.StartAsync(Direct, "--role", "api", "--MigrateOnStart=false",
            // Its direct connection stays on the first primary: after a fault test's failover its event listener would log every second.
            "--Logging:LogLevel:Neraca.Events=Error");
        Tenant = await Inspector.NewTenantAsync();
        Webhooks = await WebhookReceiver.StartAsync();

        var (redis, rabbit) = await BrokersAsync();
        var run = Guid.NewGuid().ToString("N")[..8];
        var env = new Dictionary<string, string>
        {
            ["NERACA_DATABASE_FILE"] = Path.Combine(SecretsDir, "database"),
            ["NERACA_READ_DATABASE_FILE"] = Path.Combine(SecretsDir, "read-database"),
            ["NERACA_DATABASE_POOLER"] = "transaction",
            ["NERACA_MIGRATE_ON_START"] = "false",
            ["NERACA_SHUTDOWN_DRAIN_SECONDS"] = "2",
            ["NERACA_REDIS__URL"] = redis,
            ["NERACA_REDIS__KEY_PREFIX"] = $"topo-{run}:",
            ["NERACA_EVENTS__RABBIT_MQ_URL"] = rabbit,
            ["NERACA_EVENTS__RABBIT_MQ_EXCHANGE"] = $"topo-{run}",
        };
        string[] fast = [.. EventsTestKit.FastWorkerArgs, "--Jobs:SchedulerIntervalMs=500", .. ServerArgs];
        foreach (var (role, count) in new[] { ("api", 3), ("worker", 2), ("scheduler", 2) })
            for (var i = 1; i <= count; i++)
                _processes.Add(new NeracaProcess($"{role}{i}", ProcessRunner.FreePort(), ["--role", role, .. fast], env));
        await Task.WhenAll(_processes.Select(p => p.StartAsync()));
        Balancer = await HaProxy.StartAsync(_processes.Where(p => p.Name.StartsWith("api", StringComparison.Ordinal)).Select(p => p.Port));
    }

    public async Task WriteSecretsAsync(string password)
    {
        // Written to a new file and renamed over the old one, as the kubelet swaps a mounted Secret.
        foreach (var (name, database) in new[] { ("database", "neraca"), ("read-database", "neraca_replica") })
        {
            var path = Path.Combine(SecretsDir, name);
            await File.WriteAllTextAsync(path + ".new", ViaBouncer(database, password) + "\n");
            File.Move(path + ".new", path, overwrite: true);
        }
        Password = password;
    }

    public HttpClient Client() => new()
    {
        BaseAddress = new Uri($"http://127.0.0.1:{Balancer.Port.ToString(CultureInfo.InvariantCulture)}"),
        Timeout = TimeSpan.FromSeconds(30),
        DefaultRequestHeaders = { Authorization = new("Bearer", Tenant.ApiKey) },
    };

    public string Logs() => string.Join("\n", _processes.Select(p => $"--- {p.Name}\n{p.Output}")) + "\n--- haproxy\n" + Balancer?.Output;

    public virtual async ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        foreach (var p in _processes) await p.DisposeAsync();
        if (Balancer is not null) await Balancer.DisposeAsync();
        if (Inspector is not null) await Inspector.DisposeAsync();
        if (Webhooks is not null) await Webhooks.DisposeAsync();
        if (Bouncer is not null) await Bouncer.DisposeAsync();
        if (Postgres is not null) await Postgres.DisposeAsync();
        try { Directory.Delete(SecretsDir, recursive: true); } catch (IOException) { }
    }
}

[Collection(ServerProcesses.Name)]
public sealed class TopologyTests(TopologyFixture topology) : IClassFixture<TopologyFixture>
{
    TopologyFixture T
    {
        get
        {
            if (topology.Unavailable is { } why) Assert.Skip(why);
            return topology;
        }
    }

    /// <summary>Transfers and reads through the balancer from several clients until stopped; every answer that is not
    /// a success is a failure (no client-side retries).</summary>
    sealed class Load(TopologyFixture t, string ledger, int clients)
    {
        public ConcurrentBag<string> Acknowledged { get; } = [];
        public ConcurrentQueue<string> Failures { get; } = new();
        readonly CancellationTokenSource _stop = new();
        Task? _running;

        public void Start() => _running = Task.WhenAll(Enumerable.Range(0, clients).Select(RunAsync));

        async Task RunAsync(int client)
        {
            using var http = t.Client();
            var ledgerClient = new LedgerClient(http);
            var from = $"load-{ledger}-{client}-from";
            var to = $"load-{ledger}-{client}-to";
            await ledgerClient.AccountAsync(from, ledger, normal: "debit");
            await ledgerClient.AccountAsync(to, ledger, normal: "credit");
            for (var n = 0; !_stop.IsCancellationRequested; n++)
            {
                var id = $"{ledger}-{client}-{n}";
                try
                {
                    var (response, body) = await ledgerClient.Http.PostJsonAsync("/v1/transfers",
                        new { id, debit_account = from, credit_account = to, amount = 1 + n % 7 }, idempotencyKey: id);
                    // 200 is a replay: the balancer retried a request whose first answer was lost, the key made it safe.
                    if (response.StatusCode is not (HttpStatusCode.Created or HttpStatusCode.OK)) { Failures.Enqueue($"POST {id}: {(int)response.StatusCode} {body?.ToJsonString()}"); continue; }
                    Acknowledged.Add(id);
                    var read = await http.GetAsync(n % 2 == 0 ? $"/v1/accounts/{to}" : $"/v1/transfers/{id}");
                    if (!read.IsSuccessStatusCode) Failures.Enqueue($"GET after {id}: {(int)read.StatusCode} {await read.Content.ReadAsStringAsync()}");
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    Failures.Enqueue($"{id}: {e.GetType().Name} {e.Message}");
                }
            }
        }

        public async Task StopAsync()
        {
            await _stop.CancelAsync();
            await _running!;
        }
    }

    async Task<string> LedgerAsync(string code)
    {
        using var http = T.Client();
        return await new LedgerClient(http).LedgerAsync(code);
    }

    [Fact]
    public async Task A_caller_sees_its_own_writes_while_the_replica_replays_a_second_late()
    {
        var t = T;
        var ledger = await LedgerAsync("ryw");
        using var http = t.Client();
        var client = new LedgerClient(http);
        await client.AccountAsync("ryw-from", ledger, normal: "debit");
        await client.AccountAsync("ryw-to", ledger, normal: "credit");
        await t.Postgres.SetReplicaDelayAsync(TimeSpan.FromSeconds(1));
        try
        {
            var replicaBehind = 0;
            for (var i = 0; i < 15; i++)
            {
                var id = $"ryw-{i}";
                var (created, body) = await client.TransferAsync(id, "ryw-from", "ryw-to", 100);
                Assert.True(created.StatusCode == HttpStatusCode.Created, $"{body?.ToJsonString()}\n{t.Logs()}");
                var createdAt = DateTimeOffset.Parse((string)body!["created_at"]!, CultureInfo.InvariantCulture);
                var at = Uri.EscapeDataString(createdAt.AddSeconds(-1).ToString("O", CultureInfo.InvariantCulture));
                // Both are replica reads (a list, history from a time): each must already contain the write.
                var list = await http.GetJsonAsync($"/v1/transfers?account=ryw-from&from={at}&limit=50");
                Assert.True(list.Response.StatusCode == HttpStatusCode.OK, $"{list.Body?.ToJsonString()}\n{t.Logs()}");
                Assert.Contains(id, list.Body!["data"]!.AsArray().Select(x => (string?)x!["id"]));
                var history = await http.GetJsonAsync($"/v1/accounts/ryw-to/entries?from={at}&limit=50");
                Assert.Equal(HttpStatusCode.OK, history.Response.StatusCode);
                Assert.Contains(id, history.Body!["data"]!.AsArray().Select(x => (string?)x!["transfer_id"]));
                Assert.Equal(100L * (i + 1), await client.PostedAsync("ryw-to"));
                // The replica really was behind: without read-your-writes those reads would have missed the write.
                var onReplica = await t.Postgres.ScalarAsync<long>(t.Postgres.ReplicaPort, $"SELECT count(*) FROM transfers WHERE id = '{id}'", "neraca");
                if (onReplica == 0) replicaBehind++;
            }
            Assert.True(replicaBehind > 0, "the replica was never behind: the test proved nothing");
        }
        finally
        {
            await t.Postgres.SetReplicaDelayAsync(TimeSpan.Zero);
        }
    }

    [Fact]
    public async Task Rolling_restart_of_every_process_and_a_password_rotation_under_load_lose_nothing_and_fail_nothing()
    {
        var t = T;
        var ledger = await LedgerAsync("roll");
        long eventsBefore;
        await using (var db0 = new NpgsqlConnection(t.Direct))
            eventsBefore = await db0.ExecuteScalarAsync<long>("SELECT coalesce(max(seq), 0) FROM events");
        using (var http = t.Client())
        {
            var hook = await http.PostJsonAsync("/v1/webhooks", new { url = t.Webhooks.Url, event_types = new[] { "*" } });
            Assert.Equal(HttpStatusCode.Created, hook.Response.StatusCode);
        }
        var load = new Load(t, ledger, clients: 4);
        load.Start();
        await Polling.Eventually(() => load.Acknowledged.Count >= 50, "the load gets going", TimeSpan.FromSeconds(60));

        // Rotate the application role's password mid-load: the role first, then (once the replica has it too) the
        // secret files. Nothing restarts; connections live 3 s, so every process logs in again with the new one.
        const string rotated = "second-Secret-2";
        await t.Postgres.ExecuteAsync(t.Postgres.PrimaryPort, $"ALTER ROLE {TopologyFixture.AppRole} PASSWORD '{rotated}'");
        await t.Postgres.WaitForReplicaAsync();
        var old = t.Password;
        await t.WriteSecretsAsync(rotated);
        var afterRotation = load.Acknowledged.Count;
        await Polling.Eventually(() => load.Acknowledged.Count >= afterRotation + 200, "transfers go on after the rotation", TimeSpan.FromSeconds(60));
        await Task.Delay(TimeSpan.FromSeconds(4)); // longer than a connection lives: every pooled connection is new now
        await using (var stale = new NpgsqlConnection(t.ViaBouncer("neraca", old)))
            await Assert.ThrowsAnyAsync<NpgsqlException>(() => stale.OpenAsync());

        // One process at a time: SIGTERM (readiness fails, HAProxy takes it out, it drains), exit, start, ready.
        foreach (var process in t.Processes)
        {
            var before = load.Acknowledged.Count;
            Assert.Equal(0, await process.StopAsync());
            await process.StartAsync();
            await Polling.Eventually(() => load.Acknowledged.Count >= before + 20, $"transfers go on after restarting {process.Name}", TimeSpan.FromSeconds(60));
        }
        await load.StopAsync();
        Assert.True(load.Failures.IsEmpty, $"{load.Failures.Count} failed requests, e.g. {string.Join(" | ", load.Failures.Take(5))}\n{t.Logs()}");

        // Nothing lost, nothing doubled, the books balance.
        await using var db = new NpgsqlConnection(t.Direct);
        var stored = (await db.QueryAsync<string>("SELECT id FROM transfers WHERE tenant_id = @tenant AND ledger_id = (SELECT id FROM ledgers WHERE tenant_id = @tenant AND code = @ledger)",
            new { tenant = t.Tenant.Id, ledger })).ToList();
        Assert.Equal(stored.Count, stored.Distinct().Count());
        Assert.Equal(load.Acknowledged.Order(StringComparer.Ordinal), stored.Order(StringComparer.Ordinal));
        await Conservation.AssertAsync(t.Inspector, t.Tenant.Id);

        // Every event of the tenant reached the webhook, under its one id. Delivery is at least once (docs/events.md): a
        // worker stopped between the receiver's 2xx and recording it delivers again under the same id, which receivers
        // deduplicate on; such repeats must stay rare (one run in several saw one).
        var events = (await db.QueryAsync<string>("SELECT id FROM events WHERE tenant_id = @tenant AND seq > @eventsBefore",
            new { tenant = t.Tenant.Id, eventsBefore })).ToHashSet();
        await Polling.Eventually(() => events.All(e => t.Webhooks.Accepted.Contains(e)), "every event is delivered", TimeSpan.FromSeconds(90), TimeSpan.FromMilliseconds(200));
        var repeated = t.Webhooks.Requests.GroupBy(r => r.EventId).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.True(repeated.Count <= Math.Max(2, events.Count / 50), $"{repeated.Count} of {events.Count} events delivered more than once: {string.Join(", ", repeated.Take(5))}");
    }
}
