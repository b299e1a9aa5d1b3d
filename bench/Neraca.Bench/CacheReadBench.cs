using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using Neraca.Tests.Infrastructure;

namespace Neraca.Bench;

/// <summary>The <c>cache</c> scenario (issue #4): <c>GET /v1/accounts/{id}</c> (balance reads) against a server with the
/// cache off (<c>Cache:Enabled=false</c>: every read, API-key lookup included, goes to PostgreSQL), with the in-process
/// L1, and with L1 + Redis L2 + version check (when redis-server is installed), one after the other in one run,
/// reported as reads per second and the ratio to the uncached run.
/// <c>dotnet run -c Release --project bench/Neraca.Bench -- cache [--seconds 5] [--warmup 1] [--clients 32] [--accounts 1000]</c></summary>
public static class CacheReadBench
{
    public static async Task<int> RunAsync(string[] args, CancellationToken ct)
    {
        double seconds = Arg(args, "--seconds", 5), warmup = Arg(args, "--warmup", 1);
        int clients = (int)Arg(args, "--clients", 32), accounts = (int)Arg(args, "--accounts", 1000);
        var dll = Path.Combine(RepoRoot(), "src/Neraca.Server/bin/Release/net10.0/Neraca.Server.dll");
        var results = new List<(string Name, double PerSecond, double P50Ms, double P99Ms)>();
        await using var redis = await RedisProcess.StartIfInstalledAsync();
        try
        {
            var pg = await PostgresServer.SharedAsync();
            List<(string Name, string[] Args)> variants = [("uncached", ["--Cache:Enabled=false"]), ("cached L1", [])];
            if (redis is not null) variants.Add(("cached L1+L2 (Redis)", ["--Redis:Url=" + redis.Url]));
            foreach (var (name, extra) in variants)
            {
                // Rate limits off and the api role only: this measures reads, nothing else.
                await using var server = await ServerProcess.StartAsync(dll, await pg.CreateDatabaseAsync("bench_cache"), BenchOptions.DefaultApiKey,
                    [.. extra, "--RateLimits:Enabled=false", "--role", "api"], new Dictionary<string, string>(), ct);
                using var http = new HttpClient { BaseAddress = server.BaseAddress };
                http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", BenchOptions.DefaultApiKey);
                var ids = await SetUpAsync(http, accounts, ct);
                await LoadAsync(http, ids, clients, TimeSpan.FromSeconds(warmup), ct);
                var latencies = await LoadAsync(http, ids, clients, TimeSpan.FromSeconds(seconds), ct);
                latencies.Sort();
                results.Add((name, latencies.Count / seconds, latencies[latencies.Count / 2] * 1000, latencies[(int)(latencies.Count * 0.99)] * 1000));
            }
        }
        finally
        {
            await PostgresServer.StopSharedAsync();
        }
        Console.WriteLine($"balance reads (GET /v1/accounts/{{id}}), {clients} clients, {accounts} accounts, {seconds:0} s each:");
        foreach (var r in results)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {r.Name,-22} {r.PerSecond,9:0} reads/s   p50 {r.P50Ms,6:0.00} ms   p99 {r.P99Ms,6:0.00} ms   x{r.PerSecond / results[0].PerSecond:0.00} vs uncached"));
        return 0;
    }

    static async Task<string[]> SetUpAsync(HttpClient http, int accounts, CancellationToken ct)
    {
        (await http.PostAsJsonAsync("/v1/ledgers", new { code = "cache", asset = "IDR", scale = 2 }, ct)).EnsureSuccessStatusCode();
        (await http.PostAsJsonAsync("/v1/accounts", new { id = "bank", ledger = "cache", normal_balance = "debit" }, ct)).EnsureSuccessStatusCode();
        var ids = Enumerable.Range(0, accounts).Select(i => "a" + i.ToString(CultureInfo.InvariantCulture)).ToArray();
        foreach (var chunk in ids.Chunk(50))
        {
            await Task.WhenAll(chunk.Select(async id =>
                (await http.PostAsJsonAsync("/v1/accounts", new { id, ledger = "cache", normal_balance = "credit" }, ct)).EnsureSuccessStatusCode()));
            var transfers = chunk.Select(id => new { debit_account = "bank", credit_account = id, amount = 1_000 }).ToArray();
            (await http.PostAsJsonAsync("/v1/transfers/batch", new { transfers }, ct)).EnsureSuccessStatusCode();
        }
        return ids;
    }

    /// <summary>Each client reads random accounts back to back until the time is up; returns every latency (s).</summary>
    static async Task<List<double>> LoadAsync(HttpClient http, string[] ids, int clients, TimeSpan duration, CancellationToken ct)
    {
        var until = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var workers = Enumerable.Range(0, clients).Select(async c =>
        {
            var mine = new List<double>();
            var random = new Random(c);
            while (Stopwatch.GetTimestamp() < until)
            {
                var started = Stopwatch.GetTimestamp();
                using var response = await http.GetAsync("/v1/accounts/" + ids[random.Next(ids.Length)], ct);
                response.EnsureSuccessStatusCode();
                mine.Add(Stopwatch.GetElapsedTime(started).TotalSeconds);
            }
            return mine;
        }).ToArray();
        return (await Task.WhenAll(workers)).SelectMany(w => w).ToList();
    }

    static double Arg(string[] args, string name, double fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? double.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Neraca.slnx"))) return dir.FullName;
        throw new InvalidOperationException("run from the repository's build output");
    }

    /// <summary>A private redis-server when one is installed (the L2 run is skipped otherwise).</summary>
    sealed class RedisProcess(Process process, string dir, int port) : IAsyncDisposable
    {
        public string Url => "127.0.0.1:" + port.ToString(CultureInfo.InvariantCulture);

        public static async Task<RedisProcess?> StartIfInstalledAsync()
        {
            var binary = new[] { "/usr/bin/redis-server", "/usr/local/bin/redis-server" }.FirstOrDefault(File.Exists);
            if (binary is null) return null;
            var dir = ProcessRunner.NewTempDirectory("redis");
            var port = ProcessRunner.FreePort();
            var info = new ProcessStartInfo(binary) { UseShellExecute = false, RedirectStandardOutput = true, WorkingDirectory = dir };
            foreach (var a in (string[])["--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir])
                info.ArgumentList.Add(a);
            var process = Process.Start(info) ?? throw new InvalidOperationException("could not start redis-server");
            process.OutputDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            for (var i = 0; i < 100; i++)
            {
                try
                {
                    using var probe = new System.Net.Sockets.TcpClient();
                    await probe.ConnectAsync("127.0.0.1", port);
                    break;
                }
                catch (System.Net.Sockets.SocketException)
                {
                    await Task.Delay(50);
                }
            }
            return new RedisProcess(process, dir, port);
        }

        public async ValueTask DisposeAsync()
        {
            process.Kill();
            await process.WaitForExitAsync();
            process.Dispose();
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }
}
