using Npgsql;

namespace Neraca.Tests.Infrastructure;

/// <summary>A throwaway PostgreSQL started once per test run from the installed binaries (initdb + pg_ctl), on
/// loopback, with fsync and synchronous_commit left on. Each test class asks for its own database.</summary>
public sealed class PostgresServer : IAsyncDisposable
{
    static readonly Lazy<Task<PostgresServer>> Instance = new(StartAsync);
    static int _databases;

    readonly string _binDir;
    readonly string _dataDir;

    PostgresServer(string binDir, string dataDir, int port)
    {
        _binDir = binDir;
        _dataDir = dataDir;
        Port = port;
    }

    public int Port { get; }

    /// <summary>The <c>psql</c> of the same installation, for running scripts as an operator would.</summary>
    public string Psql => Path.Combine(_binDir, "psql");

    public static Task<PostgresServer> SharedAsync() => Instance.Value;

    /// <summary>Stops the shared server if it was started (called once when the test assembly ends).</summary>
    public static async Task StopSharedAsync()
    {
        if (Instance.IsValueCreated && Instance.Value.IsCompletedSuccessfully)
            await (await Instance.Value).DisposeAsync();
    }

    public string ConnectionString(string database, string user = "postgres") =>
        new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = Port, Username = user, Database = database, Pooling = true }.ConnectionString;

    /// <summary>A new, empty database; its connection string.</summary>
    public async Task<string> CreateDatabaseAsync(string prefix = "t")
    {
        var name = $"{prefix}_{Interlocked.Increment(ref _databases)}_{Guid.NewGuid().ToString("N")[..12]}";
        await using var connection = new NpgsqlConnection(ConnectionString("postgres"));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
        await command.ExecuteNonQueryAsync();
        return ConnectionString(name);
    }

    /// <summary>A PostgreSQL of the test's own (not the shared one), for tests that crash and restart it.</summary>
    public static Task<PostgresServer> StartOwnAsync() => StartAsync();

    /// <summary>Crashes the server as a power cut would (<c>pg_ctl stop -m immediate</c>): no checkpoint, recovery on start.</summary>
    public Task CrashAsync() => ProcessRunner.RunAsync(Path.Combine(_binDir, "pg_ctl"),
        ["-D", Path.Combine(_dataDir, "data"), "-m", "immediate", "-w", "stop"], asUser: "postgres");

    /// <summary>Starts a crashed or stopped server again on its port.</summary>
    public Task RestartAsync() => ProcessRunner.RunAsync(Path.Combine(_binDir, "pg_ctl"),
        ["-D", Path.Combine(_dataDir, "data"), "-l", Path.Combine(_dataDir, "log"), "-w", "-t", "60", "-o", Options(Port, _dataDir), "start"], asUser: "postgres");

    static string Options(int port, string dataDir) =>
        $"-p {port} -k {dataDir} -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_buffers=256MB -c fsync=on -c synchronous_commit=on";

    static async Task<PostgresServer> StartAsync()
    {
        var binDir = FindBinDir();
        var dataDir = ProcessRunner.NewTempDirectory("pg");
        const string user = "postgres";
        if (ProcessRunner.IsRoot)
            await ProcessRunner.RunAsync("chown", ["-R", $"{user}:{user}", dataDir]);
        await ProcessRunner.RunAsync(Path.Combine(binDir, "initdb"), ["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale", "-D", Path.Combine(dataDir, "data")], asUser: user);
        var port = ProcessRunner.FreePort();
        await ProcessRunner.RunAsync(Path.Combine(binDir, "pg_ctl"),
            ["-D", Path.Combine(dataDir, "data"), "-l", Path.Combine(dataDir, "log"), "-w", "-t", "60", "-o", Options(port, dataDir), "start"], asUser: user);
        return new PostgresServer(binDir, dataDir, port);
    }

    static string FindBinDir()
    {
        var versions = Directory.Exists("/usr/lib/postgresql") ? Directory.GetDirectories("/usr/lib/postgresql") : [];
        foreach (var dir in versions.OrderByDescending(d => d, StringComparer.Ordinal))
        {
            var bin = Path.Combine(dir, "bin");
            if (File.Exists(Path.Combine(bin, "pg_ctl"))) return bin;
        }
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'))
            if (File.Exists(Path.Combine(dir, "pg_ctl"))) return dir;
        throw new InvalidOperationException("PostgreSQL server binaries not found; run scripts/test.sh (it installs them) or apt-get install postgresql.");
    }

    public async ValueTask DisposeAsync()
    {
        await ProcessRunner.RunAsync(Path.Combine(_binDir, "pg_ctl"), ["-D", Path.Combine(_dataDir, "data"), "-m", "immediate", "-w", "stop"],
            asUser: "postgres", check: false);
        try { Directory.Delete(_dataDir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

#if !NERACA_BENCH // bench/Neraca.Bench links this file for PostgresServer and stops the server itself.
/// <summary>Stops shared infrastructure when the test assembly finishes, whether tests passed or not.</summary>
public sealed class InfrastructureLifetime : IAsyncLifetime
{
    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        await PostgresServer.StopSharedAsync();
        await RabbitMqServer.StopSharedAsync();
        await RedisServer.StopSharedAsync();
    }
}
#endif
