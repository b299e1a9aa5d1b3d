using System.Diagnostics;

namespace Neraca.Tests.Infrastructure;

/// <summary>A throwaway RabbitMQ broker started once per test run from Debian's <c>rabbitmq-server</c> package: its own
/// node name, ports, epmd and folders (owned by the <c>rabbitmq</c> user), on loopback. Tests use their own exchanges
/// and queues on it. A test that kills the broker starts its own with <see cref="StartOwnAsync"/>.</summary>
public sealed class RabbitMqServer : IAsyncDisposable
{
    const string ServerPath = "/usr/sbin/rabbitmq-server";
    const string CtlPath = "/usr/sbin/rabbitmqctl";
    const string User = "rabbitmq";
    static readonly Lazy<Task<RabbitMqServer>> Instance = new(StartOwnAsync);

    readonly string _dir;
    readonly string _node;
    readonly Dictionary<string, string> _env;
    Process _process;

    RabbitMqServer(string dir, string node, int port, int epmdPort, Dictionary<string, string> env, Process process)
    {
        _dir = dir;
        _node = node;
        Port = port;
        EpmdPort = epmdPort;
        _env = env;
        _process = process;
    }

    public int Port { get; }
    public int EpmdPort { get; }

    /// <summary>AMQP URL of the broker (the default <c>guest</c> user may connect from loopback).</summary>
    public string Url => $"amqp://guest:guest@127.0.0.1:{Port}/";

    public static Task<RabbitMqServer> SharedAsync() => Instance.Value;

    public static async Task StopSharedAsync()
    {
        if (Instance.IsValueCreated && Instance.Value.IsCompletedSuccessfully)
            await (await Instance.Value).DisposeAsync();
    }

    /// <summary>A broker of the caller's own (the shared one is <see cref="SharedAsync"/>'s).</summary>
    public static async Task<RabbitMqServer> StartOwnAsync()
    {
        if (!File.Exists(ServerPath))
            throw new InvalidOperationException("rabbitmq-server not found; run scripts/test.sh (it installs it) or apt-get install rabbitmq-server.");
        var dir = ProcessRunner.NewTempDirectory("rabbit");
        var node = $"{Path.GetFileName(dir)}@localhost";
        await File.WriteAllTextAsync(Path.Combine(dir, "nodename"), node); // scripts/test.sh stops leftovers by it
        await File.WriteAllTextAsync(Path.Combine(dir, "enabled_plugins"), "[].");
        Directory.CreateDirectory(Path.Combine(dir, "mnesia"));
        Directory.CreateDirectory(Path.Combine(dir, "log"));
        if (ProcessRunner.IsRoot) await ProcessRunner.RunAsync("chown", ["-R", $"{User}:{User}", dir]);

        var port = ProcessRunner.FreePort();
        var epmdPort = ProcessRunner.FreePort();
        var env = new Dictionary<string, string>
        {
            ["HOME"] = dir, // the Erlang cookie lives here; rabbitmqctl must see the same one
            ["RABBITMQ_NODENAME"] = node,
            ["RABBITMQ_NODE_IP_ADDRESS"] = "127.0.0.1",
            ["RABBITMQ_NODE_PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["RABBITMQ_DIST_PORT"] = ProcessRunner.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["ERL_EPMD_PORT"] = epmdPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["RABBITMQ_MNESIA_BASE"] = Path.Combine(dir, "mnesia"),
            ["RABBITMQ_LOG_BASE"] = Path.Combine(dir, "log"),
            ["RABBITMQ_ENABLED_PLUGINS_FILE"] = Path.Combine(dir, "enabled_plugins"),
        };
        var server = new RabbitMqServer(dir, node, port, epmdPort, env, Launch(env));
        await server.WaitForPortAsync(TimeSpan.FromSeconds(90));
        return server;
    }

    static Process Launch(Dictionary<string, string> env)
    {
        var info = new ProcessStartInfo { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        if (ProcessRunner.IsRoot)
        {
            info.FileName = "runuser";
            foreach (var a in new[] { "-u", User, "--", ServerPath }) info.ArgumentList.Add(a);
        }
        else
        {
            info.FileName = ServerPath;
        }
        foreach (var (k, v) in env) info.Environment[k] = v;
        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start rabbitmq-server");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Kills the broker at once (SIGKILL of the node), as a crash would; its data folder stays.</summary>
    public async Task KillAsync()
    {
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
    }

    /// <summary>Starts a killed broker again on the same ports and data.</summary>
    public async Task RestartAsync()
    {
        _process.Dispose();
        _process = Launch(_env);
        await WaitForPortAsync(TimeSpan.FromSeconds(90));
    }

    async Task WaitForPortAsync(TimeSpan timeout)
    {
        await Polling.Eventually(async () => _process.HasExited || await ProcessRunner.AcceptsAsync(Port), $"RabbitMQ opens port {Port} (see {_dir}/log)",
            timeout, TimeSpan.FromMilliseconds(250));
        if (_process.HasExited) throw new InvalidOperationException($"rabbitmq-server exited with {_process.ExitCode}; see {_dir}/log");
    }

    Task<string> CtlAsync(params string[] args) =>
        ProcessRunner.RunAsync(CtlPath, ["-n", _node, .. args], asUser: User, env: _env, timeout: TimeSpan.FromSeconds(60));

    /// <summary>Stops the broker application (connections drop, the port closes); the node stays up for <see cref="StartAppAsync"/>.</summary>
    public Task StopAppAsync() => CtlAsync("stop_app");

    /// <summary>Starts the broker application again and waits until it accepts connections.</summary>
    public async Task StartAppAsync()
    {
        await CtlAsync("start_app");
        await WaitForPortAsync(TimeSpan.FromSeconds(60));
    }

    public async ValueTask DisposeAsync()
    {
        try { await CtlAsync("stop"); }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException) { }
        if (!_process.WaitForExit(TimeSpan.FromSeconds(20))) _process.Kill(entireProcessTree: true);
        // The epmd this node started outlives it.
        await ProcessRunner.RunAsync("epmd", ["-port", EpmdPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "-kill"], check: false);
        _process.Dispose();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
