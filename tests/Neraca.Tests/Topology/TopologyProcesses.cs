using System.Diagnostics;
using System.Globalization;
using System.Text;
using Neraca.Tests.Infrastructure;
using Npgsql;

namespace Neraca.Tests.Topology;

/// <summary>A process the topology test starts and stops itself (HAProxy, PgBouncer, a Neraca server), with its output
/// kept for failure messages.</summary>
public sealed class ManagedProcess : IAsyncDisposable
{
    readonly Process _process;
    readonly StringBuilder _output = new();

    ManagedProcess(Process process, string name)
    {
        _process = process;
        Name = name;
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string Name { get; }
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;

    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    void Append(string? line)
    {
        if (line is null) return;
        lock (_output) _output.AppendLine(line);
    }

    public static ManagedProcess Start(string name, string file, IEnumerable<string> args, IDictionary<string, string>? env = null, string? asUser = null)
    {
        var info = new ProcessStartInfo { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (asUser is not null && ProcessRunner.IsRoot)
        {
            info.FileName = "runuser";
            foreach (var a in new[] { "-u", asUser, "--", file }) info.ArgumentList.Add(a);
        }
        else
        {
            info.FileName = file;
        }
        foreach (var a in args) info.ArgumentList.Add(a);
        if (env is not null) foreach (var (k, v) in env) info.Environment[k] = v;
        return new ManagedProcess(Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}"), name);
    }

    /// <summary>The process itself (runuser execs nothing: its child is the real process, so signal the whole group of children).</summary>
    public async Task SignalAsync(string signal)
    {
        var children = (await ProcessRunner.RunForExitAsync("pgrep", ["-P", _process.Id.ToString(CultureInfo.InvariantCulture)])).Output
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var pid in children.Append(_process.Id.ToString(CultureInfo.InvariantCulture)))
            await ProcessRunner.RunForExitAsync("kill", ["-" + signal, pid]);
    }

    public async Task<int?> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try { await _process.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException) { return null; }
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}

/// <summary>A PostgreSQL primary with a streaming replica made by <c>pg_basebackup -R</c>, both on loopback, with
/// password (SCRAM) authentication over TCP for everyone but the superuser, and trust on their Unix sockets (what
/// PgBouncer uses to reach them). The fault tests crash the primary and fail over to the replica; after a failover the
/// two nodes have swapped roles (the old primary comes back as the new one's replica).</summary>
public sealed class PostgresCluster : IAsyncDisposable
{
    const string User = "postgres";
    readonly string _bin;
    readonly bool _synchronous;
    Node _primary;
    Node _replica;

    /// <summary>A data folder, its port and its socket folder.</summary>
    sealed record Node(string Name, string Dir, int Port, string SocketDir);

    PostgresCluster(string bin, string root, bool synchronous)
    {
        _bin = bin;
        _synchronous = synchronous;
        Root = root;
        _primary = new Node("primary", Path.Combine(root, "primary"), ProcessRunner.FreePort(), Path.Combine(root, "primary-sock"));
        _replica = new Node("replica", Path.Combine(root, "replica"), ProcessRunner.FreePort(), Path.Combine(root, "replica-sock"));
    }

    public string Root { get; }
    public int PrimaryPort => _primary.Port;
    public int ReplicaPort => _replica.Port;
    public string PrimarySocketDir => _primary.SocketDir;
    public string ReplicaSocketDir => _replica.SocketDir;

    public string Superuser(int port, string database = "postgres") =>
        new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = port, Username = User, Database = database, Pooling = false }.ConnectionString;

    /// <summary><paramref name="synchronous"/>: the primary acknowledges a commit only once the replica has it on disk
    /// (<c>synchronous_standby_names</c>), so a failover loses no acknowledged write.
    /// <paramref name="diskMegabytes"/>: both nodes' data on a file system of that size of their own (a tmpfs mount; root
    /// only), which <see cref="FillDiskAsync"/> can fill.</summary>
    public static async Task<PostgresCluster> StartAsync(bool synchronous = false, int? diskMegabytes = null)
    {
        var root = ProcessRunner.NewTempDirectory("topo-pg");
        var cluster = new PostgresCluster(PostgresBin(), root, synchronous);
        if (diskMegabytes is { } mb && ProcessRunner.IsRoot)
            cluster.OwnDisk = (await ProcessRunner.RunForExitAsync("mount", ["-t", "tmpfs", "-o", $"size={mb}m,mode=0755", "tmpfs", root])).ExitCode == 0;
        Directory.CreateDirectory(cluster.PrimarySocketDir);
        Directory.CreateDirectory(cluster.ReplicaSocketDir);
        if (ProcessRunner.IsRoot) await ProcessRunner.RunAsync("chown", ["-R", $"{User}:{User}", root]);
        await ProcessRunner.RunAsync(Path.Combine(cluster._bin, "initdb"), ["-A", "trust", "-U", User, "-E", "UTF8", "--no-locale", "-D", cluster._primary.Dir], asUser: User);
        await File.WriteAllTextAsync(Path.Combine(cluster._primary.Dir, "pg_hba.conf"), """
            local all all trust
            host all postgres 127.0.0.1/32 trust
            host replication postgres 127.0.0.1/32 trust
            host all all 127.0.0.1/32 scram-sha-256
            """);
        await cluster.StartNodeAsync(cluster._primary);
        await cluster.CloneReplicaAsync();
        return cluster;
    }

    Task StartNodeAsync(Node node) => ProcessRunner.RunAsync(Path.Combine(_bin, "pg_ctl"), ["-D", node.Dir, "-l", Path.Combine(Root, node.Name + ".log"), "-w", "-t", "120", "-o",
        $"-p {node.Port} -k {node.SocketDir} -c listen_addresses=127.0.0.1 -c max_connections=300 -c wal_level=replica -c max_wal_senders=4 -c hot_standby=on -c max_wal_size=256MB" +
        (_synchronous ? " -c synchronous_standby_names='*'" : ""), "start"], asUser: User);

    Task StopNodeAsync(Node node) =>
        ProcessRunner.RunAsync(Path.Combine(_bin, "pg_ctl"), ["-D", node.Dir, "-m", "immediate", "-w", "stop"], asUser: User, check: false);

    /// <summary>A fresh replica of the primary in the replica's folder (<c>pg_basebackup -R</c>), started.</summary>
    async Task CloneReplicaAsync()
    {
        if (Directory.Exists(_replica.Dir)) Directory.Delete(_replica.Dir, recursive: true);
        await ProcessRunner.RunAsync(Path.Combine(_bin, "pg_basebackup"), ["-h", "127.0.0.1", "-p", _primary.Port.ToString(CultureInfo.InvariantCulture),
            "-U", User, "-D", _replica.Dir, "-R", "-X", "stream", "-c", "fast"], asUser: User);
        await StartNodeAsync(_replica);
    }

    /// <summary>The primary dies as in a power cut (<c>pg_ctl stop -m immediate</c>: no checkpoint, crash recovery on start).</summary>
    public Task CrashPrimaryAsync() => StopNodeAsync(_primary);

    public Task StartPrimaryAsync() => StartNodeAsync(_primary);

    /// <summary>Failover: the primary is fenced (stopped at once), the replica promoted, and the old primary's folder
    /// rebuilt as a replica of the new one. Ports swap with the roles: point the pooler at <see cref="PrimarySocketDir"/> again.</summary>
    public async Task FailoverAsync()
    {
        await StopNodeAsync(_primary);
        await ProcessRunner.RunAsync(Path.Combine(_bin, "pg_ctl"), ["-D", _replica.Dir, "-w", "-t", "60", "promote"], asUser: User);
        (_primary, _replica) = (_replica, _primary);
        await CloneReplicaAsync();
    }

    /// <summary>Whether the data lives on a file system of its own (mounting needs root and a kernel that allows it).</summary>
    public bool OwnDisk { get; private set; }

    string Filler => Path.Combine(Root, "filler");

    /// <summary>Fills the data's file system to the last byte, as a runaway log or a forgotten dump would.</summary>
    public async Task FillDiskAsync()
    {
        if (!OwnDisk) throw new InvalidOperationException("the cluster has no file system of its own");
        // The database keeps writing meanwhile, so fallocate may lose the race for the space it measured (it then
        // allocates nothing): dd takes whatever is left, to the last byte.
        var free = new DriveInfo(Root).AvailableFreeSpace - (64 << 20);
        if (free > 0) await ProcessRunner.RunForExitAsync("fallocate", ["-l", free.ToString(CultureInfo.InvariantCulture), Filler]);
        await ProcessRunner.RunForExitAsync("dd", ["if=/dev/zero", $"of={Filler}-rest", "bs=4k"]);
    }

    /// <summary>Frees the space again and, as an operator would, starts any node that stopped for want of it.</summary>
    public async Task FreeDiskAsync()
    {
        File.Delete(Filler);
        File.Delete(Filler + "-rest");
        foreach (var node in new[] { _primary, _replica })
            if ((await ProcessRunner.RunForExitAsync(Path.Combine(_bin, "pg_ctl"), ["-D", node.Dir, "status"], asUser: User)).ExitCode != 0)
                await StartNodeAsync(node);
    }

    static string PostgresBin() =>
        Directory.GetDirectories("/usr/lib/postgresql").OrderByDescending(d => d, StringComparer.Ordinal).Select(d => Path.Combine(d, "bin"))
            .First(b => File.Exists(Path.Combine(b, "pg_basebackup")) && File.Exists(Path.Combine(b, "pg_ctl")));

    public async Task ExecuteAsync(int port, string sql, string database = "postgres")
    {
        await using var c = new NpgsqlConnection(Superuser(port, database));
        await c.OpenAsync();
        await using var command = new NpgsqlCommand(sql, c);
        await command.ExecuteNonQueryAsync();
    }

    public async Task<T> ScalarAsync<T>(int port, string sql, string database = "postgres")
    {
        await using var c = new NpgsqlConnection(Superuser(port, database));
        await c.OpenAsync();
        await using var command = new NpgsqlCommand(sql, c);
        return (T)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Delays the replica's replay on purpose (<c>recovery_min_apply_delay</c>, applied on reload).</summary>
    public async Task SetReplicaDelayAsync(TimeSpan delay)
    {
        await ExecuteAsync(ReplicaPort, $"ALTER SYSTEM SET recovery_min_apply_delay = '{(int)delay.TotalMilliseconds}ms'");
        await ExecuteAsync(ReplicaPort, "SELECT pg_reload_conf()");
    }

    /// <summary>Waits until the replica has replayed everything the primary has written so far.</summary>
    public async Task WaitForReplicaAsync()
    {
        var target = await ScalarAsync<NpgsqlTypes.NpgsqlLogSequenceNumber>(PrimaryPort, "SELECT pg_current_wal_lsn()");
        await Polling.Eventually(async () => await ScalarAsync<NpgsqlTypes.NpgsqlLogSequenceNumber>(ReplicaPort, "SELECT pg_last_wal_replay_lsn()") >= target,
            "the replica catches up with the primary", TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(50));
    }

    public async ValueTask DisposeAsync()
    {
        await StopNodeAsync(_replica);
        await StopNodeAsync(_primary);
        if (OwnDisk) await ProcessRunner.RunForExitAsync("umount", ["-l", Root]);
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>PgBouncer (run as the <c>postgres</c> user: it refuses root) in transaction pooling mode, supervised as
/// Kubernetes or systemd would: started again when it exits on its own. Debian's 1.18 aborts now and then on a cancel
/// request whose client leaves first ("FATAL ... disconnect_client(): bad client state: 0", pgbouncer/pgbouncer#801,
/// fixed upstream by pgbouncer/pgbouncer#846); Npgsql sends one for every timed-out or cancelled command, so the fault tests hit it.</summary>
public sealed class PgBouncer : IAsyncDisposable
{
    ManagedProcess _process;
    readonly string _dir;
    readonly string _auth;
    readonly SemaphoreSlim _gate = new(1, 1);
    readonly CancellationTokenSource _stop = new();
    readonly List<string> _crashes = [];
    Task _supervising = Task.CompletedTask;

    PgBouncer(ManagedProcess process, string dir, int port, string auth)
    {
        _process = process;
        _dir = dir;
        Port = port;
        _auth = auth;
    }

    public int Port { get; }

    /// <summary>The last log line of each time PgBouncer exited on its own and its supervisor started it again.</summary>
    public IReadOnlyList<string> Crashes
    {
        get { lock (_crashes) return [.. _crashes]; }
    }

    /// <summary>Starts PgBouncer with the given <c>[databases]</c> lines; <paramref name="auth"/> is the
    /// authentication part of <c>[pgbouncer]</c> (auth_type and friends).</summary>
    public static async Task<PgBouncer> StartAsync(IEnumerable<string> databases, string auth)
    {
        var dir = ProcessRunner.NewTempDirectory("pgbouncer");
        await File.WriteAllTextAsync(Path.Combine(dir, "userlist.txt"), "\"postgres\" \"\"\n");
        var bouncer = new PgBouncer(null!, dir, ProcessRunner.FreePort(), auth);
        await bouncer.WriteConfigAsync(databases);
        await bouncer.LaunchAsync();
        bouncer._supervising = bouncer.SuperviseAsync();
        return bouncer;
    }

    async Task SuperviseAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try { await Task.Delay(TimeSpan.FromMilliseconds(250), _stop.Token); }
            catch (OperationCanceledException) { return; }
            await _gate.WaitAsync();
            try
            {
                if (_stop.IsCancellationRequested || !_process.HasExited) continue;
                var log = Path.Combine(_dir, "pgbouncer.log");
                // PgBouncer's own abort ("[pid] FATAL @src/..."), not a server's FATAL quoted in a login error.
                var last = File.Exists(log) ? File.ReadLines(log).LastOrDefault(l => l.Contains("] FATAL ", StringComparison.Ordinal)) : null;
                lock (_crashes) _crashes.Add(last ?? $"exited with {_process.ExitCode}");
                await RelaunchAsync(null);
            }
            catch (Exception e) when (e is InvalidOperationException or TimeoutException)
            {
                // It did not come up (its port still held, say): the next round tries again.
            }
            finally
            {
                _gate.Release();
            }
        }
    }

    async Task WriteConfigAsync(IEnumerable<string> databases)
    {
        await File.WriteAllTextAsync(Path.Combine(_dir, "pgbouncer.ini"), $"""
            [databases]
            {string.Join('\n', databases)}

            [pgbouncer]
            listen_addr = 127.0.0.1
            listen_port = {Port}
            unix_socket_dir =
            pool_mode = transaction
            max_client_conn = 2000
            default_pool_size = 40
            ignore_startup_parameters = extra_float_digits
            auth_file = {_dir}/userlist.txt
            {_auth}
            logfile = {_dir}/pgbouncer.log
            pidfile = {_dir}/pgbouncer.pid
            admin_users = postgres
            """);
        if (ProcessRunner.IsRoot) await ProcessRunner.RunAsync("chown", ["-R", "postgres:postgres", _dir]);
    }

    async Task LaunchAsync()
    {
        var process = _process = ManagedProcess.Start("pgbouncer", "/usr/sbin/pgbouncer", [Path.Combine(_dir, "pgbouncer.ini")], asUser: "postgres");
        await Polling.Eventually(async () => process.HasExited || await ProcessRunner.AcceptsAsync(Port), "PgBouncer listens");
        if (process.HasExited) throw new InvalidOperationException($"pgbouncer exited: {process.Output} {File.ReadAllText(Path.Combine(_dir, "pgbouncer.log"))}");
    }

    /// <summary>Kills PgBouncer (SIGKILL: every client connection drops) and starts it again on the same port, with
    /// new <c>[databases]</c> lines when given (a failover points it at the new primary).</summary>
    public async Task RestartAsync(IEnumerable<string>? databases = null)
    {
        await _gate.WaitAsync();
        try
        {
            await RelaunchAsync(databases);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Under <see cref="_gate"/>: the old process gone, the config rewritten when asked, a new one listening.</summary>
    async Task RelaunchAsync(IEnumerable<string>? databases)
    {
        await _process.DisposeAsync();
        File.Delete(Path.Combine(_dir, "pgbouncer.pid"));
        if (databases is not null) await WriteConfigAsync(databases);
        await LaunchAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _supervising;
        await _process.DisposeAsync();
        _stop.Dispose();
        _gate.Dispose();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>HAProxy in front of the api replicas: round robin, an HTTP health check on <c>/health/ready</c> every
/// 250 ms (two failures take a server out, one success brings it back), failed connections retried on another server.</summary>
public sealed class HaProxy : IAsyncDisposable
{
    readonly ManagedProcess _process;

    HaProxy(ManagedProcess process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    public static async Task<HaProxy> StartAsync(IEnumerable<int> backends)
    {
        var dir = ProcessRunner.NewTempDirectory("haproxy");
        var port = ProcessRunner.FreePort();
        var config = Path.Combine(dir, "haproxy.cfg");
        await File.WriteAllTextAsync(config, $"""
            global
              maxconn 4000
            defaults
              mode http
              timeout connect 1s
              timeout client 60s
              timeout server 60s
              retries 3
              option redispatch 1
              retry-on conn-failure empty-response
            frontend api
              bind 127.0.0.1:{port}
              default_backend neraca
            backend neraca
              balance roundrobin
              option httpchk GET /health/ready
              http-check expect status 200
              timeout check 2s
              default-server inter 250ms fall 2 rise 1
            {string.Join('\n', backends.Select((p, i) => $"  server api{i + 1} 127.0.0.1:{p} check"))}

            """);
        var process = ManagedProcess.Start("haproxy", "/usr/sbin/haproxy", ["-f", config, "-db"]);
        await Polling.Eventually(async () => process.HasExited || await ProcessRunner.AcceptsAsync(port), "HAProxy listens");
        if (process.HasExited) throw new InvalidOperationException($"haproxy exited: {process.Output}");
        return new HaProxy(process, port);
    }

    public string Output => _process.Output;

    public ValueTask DisposeAsync() => _process.DisposeAsync();
}

/// <summary>A Neraca server process on a fixed loopback port, so that it can be stopped and started again behind the
/// balancer at the same address.</summary>
public sealed class NeracaProcess(string name, int port, string[] args, IDictionary<string, string> env) : IAsyncDisposable
{
    ManagedProcess? _process;
    readonly StringBuilder _earlier = new();

    public string Name { get; } = name;
    public int Port { get; } = port;

    /// <summary>The output of every run so far.</summary>
    public string Output => _earlier + (_process?.Output ?? "");

    /// <summary>Starts (or restarts) the server; <paramref name="extraEnv"/> adds variables for this run only.</summary>
    public async Task StartAsync(IDictionary<string, string>? extraEnv = null)
    {
        if (_process is not null) _earlier.Append(_process.Output).AppendLine("--- restarted");
        var runEnv = extraEnv is null ? env : env.Concat(extraEnv).ToDictionary();
        _process = ManagedProcess.Start(Name, "dotnet",
            [ServerProcess.ServerDll, "--urls", $"http://127.0.0.1:{Port}", "--Logging:LogLevel:Default=Warning", "--Payouts:AllowBuiltInSandbox=true", .. args], runEnv);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{Port}"), Timeout = TimeSpan.FromSeconds(5) };
        try
        {
            await Polling.Eventually(async () => _process.HasExited || await ReadyAsync(http), $"{Name} answers /health/ready",
                TimeSpan.FromSeconds(90), TimeSpan.FromMilliseconds(100));
        }
        catch (TimeoutException e)
        {
            var output = _process.Output;
            throw new TimeoutException($"{e.Message} Its output: {output[Math.Max(0, output.Length - 4000)..]}", e);
        }
        if (_process.HasExited) throw new InvalidOperationException($"{Name} exited with {_process.ExitCode}: {_process.Output}");
    }

    static async Task<bool> ReadyAsync(HttpClient http)
    {
        try { return (await http.GetAsync("/health/ready")).IsSuccessStatusCode; }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { return false; }
    }

    /// <summary>What an orchestrator does: SIGTERM (readiness turns false while the server drains), then wait for the
    /// exit; the exit code.</summary>
    public async Task<int?> StopAsync()
    {
        var process = _process ?? throw new InvalidOperationException("not started");
        await process.SignalAsync("TERM");
        return await process.WaitForExitAsync(TimeSpan.FromSeconds(60));
    }

    /// <summary>SIGKILL, as a node failure or the OOM killer would: no drain, leases and connections left behind.</summary>
    public async Task KillAsync()
    {
        var process = _process ?? throw new InvalidOperationException("not started");
        await process.SignalAsync("KILL");
        await process.WaitForExitAsync(TimeSpan.FromSeconds(30));
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is not null) await _process.DisposeAsync();
    }
}
