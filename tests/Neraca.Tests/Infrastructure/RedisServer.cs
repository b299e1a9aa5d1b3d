using System.Diagnostics;

namespace Neraca.Tests.Infrastructure;

/// <summary>A throwaway <c>redis-server</c> on loopback, no persistence. <see cref="SharedAsync"/> is started once per
/// test run; a test that kills Redis starts its own with <see cref="StartAsync"/>.</summary>
public sealed class RedisServer : IAsyncDisposable
{
    static readonly Lazy<Task<RedisServer>> Instance = new(() => StartAsync());

    readonly string _dataDir;
    Process? _process;

    RedisServer(string dataDir, int port)
    {
        _dataDir = dataDir;
        Port = port;
    }

    public int Port { get; }

    /// <summary>The StackExchange.Redis configuration string (the <c>Redis:Url</c> setting).</summary>
    public string Url => $"127.0.0.1:{Port}";

    public bool IsRunning => _process is { HasExited: false };

    public static Task<RedisServer> SharedAsync() => Instance.Value;

    public static async Task StopSharedAsync()
    {
        if (Instance.IsValueCreated && Instance.Value.IsCompletedSuccessfully)
            await (await Instance.Value).DisposeAsync();
    }

    public static async Task<RedisServer> StartAsync()
    {
        var server = new RedisServer(ProcessRunner.NewTempDirectory("redis"), ProcessRunner.FreePort());
        await server.RestartAsync();
        return server;
    }

    /// <summary>Starts (again) on the same port, empty: as a crashed Redis without persistence comes back.</summary>
    public async Task RestartAsync()
    {
        if (IsRunning) throw new InvalidOperationException("redis-server is already running");
        var info = new ProcessStartInfo(FindBinary())
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = _dataDir,
        };
        foreach (var a in new[] { "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1",
                     "--save", "", "--appendonly", "no", "--dir", _dataDir, "--protected-mode", "no" })
            info.ArgumentList.Add(a);
        _process = Process.Start(info) ?? throw new InvalidOperationException("could not start redis-server");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        await Polling.Eventually(async () => _process.HasExited || await ProcessRunner.AcceptsAsync(Port), $"redis-server opens port {Port}",
            TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(50));
        if (_process.HasExited) throw new InvalidOperationException($"redis-server exited with {_process.ExitCode}");
    }

    /// <summary>Kills the server at once (SIGKILL), as a crash would.</summary>
    public async Task KillAsync()
    {
        if (_process is null) return;
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
        _process.Dispose();
        _process = null;
    }

    static string FindBinary()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Append("/usr/bin").Append("/usr/local/bin"))
            if (dir.Length > 0 && File.Exists(Path.Combine(dir, "redis-server"))) return Path.Combine(dir, "redis-server");
        throw new InvalidOperationException("redis-server not found; run scripts/test.sh (it installs it) or apt-get install redis-server.");
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        try { Directory.Delete(_dataDir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
