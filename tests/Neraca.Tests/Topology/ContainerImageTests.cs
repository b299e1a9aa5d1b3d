using System.Globalization;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Observability;

namespace Neraca.Tests.Topology;

/// <summary>Builds the image with <c>scripts/build-image.sh</c> once per run (the base root file system is cached
/// between runs) and removes it afterwards.</summary>
public sealed class ContainerImageFixture : IAsyncLifetime
{
    public string? Image { get; private set; }

    /// <summary>Why the image could not be built here (no root, a tool missing), or null.</summary>
    public string? Unavailable { get; private set; }

    public async ValueTask InitializeAsync()
    {
        // Building the image (a self-contained publish + a Debian root file system) takes minutes: its own schedule.
        if (Environment.GetEnvironmentVariable("NERACA_TEST_IMAGE") != "1")
        {
            Unavailable = "the container image test runs on its own schedule: NERACA_TEST_IMAGE=1 scripts/test.sh --filter-class 'Neraca.Tests.Topology.ContainerImageTests' (docs/deploy.md)";
            return;
        }
        if (!ProcessRunner.IsRoot) { Unavailable = "building an image needs root (mmdebstrap --mode=root, rootful podman)"; return; }
        var missing = new[] { "mmdebstrap", "buildah", "podman", "runc" }.Where(t => !OnPath(t)).ToList();
        if (missing.Count > 0) { Unavailable = $"missing {string.Join(", ", missing)} (scripts/test.sh installs them)"; return; }
        var tag = $"localhost/neraca:test-{Environment.ProcessId}";
        var (output, exit) = await ProcessRunner.RunForExitAsync("bash", [Path.Combine(DeployArtefacts.RepoRoot, "scripts", "build-image.sh"), tag],
            timeout: TimeSpan.FromMinutes(20));
        if (exit != 0) throw new InvalidOperationException($"scripts/build-image.sh failed ({exit}): {output}");
        Image = tag;
    }

    static bool OnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Append("/usr/sbin").Any(d => File.Exists(Path.Combine(d, tool)));

    public async ValueTask DisposeAsync()
    {
        if (Image is not null) await ProcessRunner.RunForExitAsync("podman", ["rmi", "-f", Image]);
    }
}

/// <summary>The image as an operator runs it: podman (runc, host network), read-only root file system, on SQLite and on
/// PostgreSQL (connection string from a mounted secret file), as a non-root user, with no shell inside, stopped by SIGTERM.</summary>
public sealed class ContainerImageTests(ContainerImageFixture fixture) : IClassFixture<ContainerImageFixture>
{
    static readonly string[] Runtime = ["--runtime", "/usr/sbin/runc"];

    string Image
    {
        get
        {
            if (fixture.Unavailable is { } why) Assert.Skip(why);
            return fixture.Image!;
        }
    }

    [Fact]
    public async Task Serves_on_SQLite_as_a_non_root_user_with_a_read_only_root_and_stops_cleanly_on_SIGTERM()
    {
        var image = Image;
        var data = ProcessRunner.NewTempDirectory("image-data");
        await ProcessRunner.RunAsync("chown", ["10001:10001", data]);
        await using var container = await Container.StartAsync(image, ["-v", $"{data}:/data"], []);

        await container.WaitReadyAsync();
        var pid = (await ProcessRunner.RunAsync("podman", ["inspect", "-f", "{{.State.Pid}}", container.Name])).Trim();
        var status = await File.ReadAllLinesAsync($"/proc/{pid}/status");
        var uid = status.Single(l => l.StartsWith("Uid:", StringComparison.Ordinal)).Split('\t', StringSplitOptions.RemoveEmptyEntries)[1..];
        Assert.All(uid, u => Assert.Equal("10001", u)); // real, effective, saved, filesystem
        Assert.Equal("10001:10001", (await ProcessRunner.RunAsync("podman", ["image", "inspect", "-f", "{{.Config.User}}", image])).Trim());
        Assert.True(File.Exists(Path.Combine(data, "neraca.db")), "the SQLite store is on the /data volume");

        using (var http = container.Client())
        {
            var ready = await http.GetStringAsync("/health/ready");
            Assert.Contains("sqlite", ready, StringComparison.Ordinal);
        }
        Assert.Equal(0, await container.StopAsync()); // SIGTERM: graceful, exit code 0
    }

    [Fact]
    public async Task Serves_on_PostgreSQL_with_the_connection_string_from_a_secret_file()
    {
        var image = Image;
        var pg = await PostgresServer.SharedAsync();
        var secrets = ProcessRunner.NewTempDirectory("image-secrets");
        await File.WriteAllTextAsync(Path.Combine(secrets, "database"), await pg.CreateDatabaseAsync("img") + "\n");
        await ProcessRunner.RunAsync("chmod", ["-R", "a+rX", secrets]);
        await using var container = await Container.StartAsync(image, ["-v", $"{secrets}:/run/secrets/neraca:ro", "--tmpfs", "/data"],
            // A test system: on PostgreSQL in Production the built-in payout sandbox must be allowed explicitly.
            ["NERACA_DATABASE_FILE=/run/secrets/neraca/database", "NERACA_PAYOUTS__ALLOW_BUILT_IN_SANDBOX=true"]);

        await container.WaitReadyAsync();
        using var http = container.Client();
        Assert.Contains("postgres", await http.GetStringAsync("/health/ready"), StringComparison.Ordinal);
        http.DefaultRequestHeaders.Authorization = new("Bearer", NeracaServer.BootstrapKey);
        Assert.True((await http.GetAsync("/v1/ledgers")).IsSuccessStatusCode, container.Logs());
    }

    [Fact]
    public async Task Has_no_shell()
    {
        var image = Image;
        foreach (var shell in new[] { "/bin/sh", "/bin/bash", "/usr/bin/dash" })
        {
            var (output, exit) = await ProcessRunner.RunForExitAsync("podman", [.. Runtime, "run", "--rm", "--network", "host",
                "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096", "--entrypoint", shell, image, "-c", "true"]);
            Assert.True(exit != 0 && output.Contains("no such file or directory", StringComparison.Ordinal), $"{shell} in the image: exit {exit}, {output}");
        }
    }

    /// <summary>One detached container on the host network, removed on dispose.</summary>
    sealed class Container : IAsyncDisposable
    {
        Container(string name, int port)
        {
            Name = name;
            Port = port;
        }

        public string Name { get; }
        public int Port { get; }

        public static async Task<Container> StartAsync(string image, string[] options, string[] env)
        {
            var port = ProcessRunner.FreePort();
            var name = $"neraca-test-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}";
            var args = new List<string>([.. Runtime, "run", "-d", "--name", name, "--network", "host", "--read-only",
                "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096",
                "-e", $"ASPNETCORE_URLS=http://127.0.0.1:{port}", "-e", $"NERACA_BOOTSTRAP_API_KEY={NeracaServer.BootstrapKey}",
                "-e", "NERACA_LOGGING__LOG_LEVEL__Default=Warning"]);
            foreach (var e in env) args.AddRange(["-e", e]);
            args.AddRange(options);
            args.Add(image);
            await ProcessRunner.RunAsync("podman", args);
            return new Container(name, port);
        }

        public HttpClient Client() => new() { BaseAddress = new Uri($"http://127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}"), Timeout = TimeSpan.FromSeconds(10) };

        public async Task WaitReadyAsync()
        {
            using var http = Client();
            try
            {
                await Polling.Eventually(async () =>
                {
                    try { return (await http.GetAsync("/health/ready")).IsSuccessStatusCode; }
                    catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { return false; }
                }, "the container answers /health/ready", TimeSpan.FromSeconds(90), TimeSpan.FromMilliseconds(200));
            }
            catch (TimeoutException e)
            {
                throw new TimeoutException(e.Message + " Container output: " + Logs(), e);
            }
        }

        public string Logs() => ProcessRunner.RunForExitAsync("podman", ["logs", Name]).GetAwaiter().GetResult().Output;

        /// <summary>SIGTERM, then the exit code.</summary>
        public async Task<int> StopAsync()
        {
            await ProcessRunner.RunAsync("podman", ["stop", "-t", "40", Name], timeout: TimeSpan.FromMinutes(1));
            return int.Parse((await ProcessRunner.RunAsync("podman", ["inspect", "-f", "{{.State.ExitCode}}", Name])).Trim(), CultureInfo.InvariantCulture);
        }

        public async ValueTask DisposeAsync() => await ProcessRunner.RunForExitAsync("podman", ["rm", "-f", "-t", "0", Name]);
    }
}
