using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Neraca.Tests.Infrastructure;

namespace Neraca.Bench;

/// <summary>The <c>reconciliation</c> scenario (issue #17): import and match an MT940 statement of <c>--lines</c>
/// (default 100,000) lines against as many ledger transfers on one cash account, on PostgreSQL with fsync on. 70% of the
/// lines carry the transfer's end-to-end id (rule <c>exact_reference</c>), 30% only its amount and date (<c>amount_date</c>).
/// Reported: the upload (spool, parse, write, enqueue), the time from the start of the upload to the statement fully
/// matched (the field contract: under 5 minutes), lines per second, and the server's peak RSS.
/// <c>dotnet run -c Release --project bench/Neraca.Bench -- reconciliation [--lines 100000]</c></summary>
public static class ReconciliationScenario
{
    const int BatchSize = 8_000;
    static readonly TimeSpan MatchTimeMax = TimeSpan.FromMinutes(20);

    public static async Task<int> RunAsync(string[] args, CancellationToken ct)
    {
        var lines = 100_000;
        for (var i = 0; i + 1 < args.Length; i += 2)
            if (args[i] == "--lines" && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out var n) && n > 0) lines = n;
            else throw new ArgumentException($"unknown option {args[i]}");
        var dll = Path.Combine(RepoRoot(), "src/Neraca.Server/bin/Release/net10.0/Neraca.Server.dll");
        var file = Path.Combine(Path.GetTempPath(), $"neraca-bench-{Guid.NewGuid():N}.sta");
        try
        {
            var pg = await PostgresServer.SharedAsync();
            await using var server = await ServerProcess.StartAsync(dll, await pg.CreateDatabaseAsync("bench_recon"), BenchOptions.DefaultApiKey,
                ["--RateLimits:Enabled=false", "--Settlement:MonitorIntervalMs=1000"], new Dictionary<string, string>(), ct);
            using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(30) };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", BenchOptions.DefaultApiKey);
            var day = DateOnly.FromDateTime(DateTime.UtcNow).AddDays(-2);
            var seed = Stopwatch.StartNew();
            await SeedAsync(http, lines, day, ct);
            Log($"seeded {lines:N0} transfers in {seed.Elapsed.TotalSeconds:0.0} s");
            var bytes = await WriteMt940Async(file, lines, day, ct);
            Log($"statement: {lines:N0} lines, {bytes / 1024.0 / 1024.0:0.0} MiB");

            await using var rss = RssMonitor.Start(server.Pid);
            var clock = Stopwatch.StartNew();
            await using var body = File.OpenRead(file);
            using var content = new StreamContent(body, 1 << 16);
            content.Headers.ContentType = new MediaTypeHeaderValue("text/plain");
            var response = await http.PostAsync("/v1/reconciliation/statements?counterparty=bank", content, ct);
            var created = JsonNode.Parse(await response.Content.ReadAsStringAsync(ct))!;
            if ((int)response.StatusCode != 201) throw new InvalidOperationException($"import failed: {(int)response.StatusCode} {created.ToJsonString()}");
            var imported = clock.Elapsed;
            var id = (string)created["id"]!;
            JsonNode statement;
            do
            {
                await Task.Delay(250, ct);
                statement = JsonNode.Parse(await http.GetStringAsync($"/v1/reconciliation/statements/{id}", ct))!;
            } while ((string)statement["status"]! == "matching" && clock.Elapsed < MatchTimeMax);
            var matched = clock.Elapsed;
            var peak = await rss.StopAsync();
            var serverSeconds = (DateTimeOffset.Parse((string?)statement["fully_matched_at"] ?? (string)statement["imported_at"]!, CultureInfo.InvariantCulture)
                - DateTimeOffset.Parse((string)statement["imported_at"]!, CultureInfo.InvariantCulture)).TotalSeconds;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"""
                reconciliation: {lines:N0}-line MT940 against {lines:N0} transfers on one account (PostgreSQL, fsync on)
                  status            {statement["status"]}, matched {statement["matched_count"]} of {statement["line_count"]}, exceptions {statement["exception_count"]}
                  upload + import   {imported.TotalSeconds:0.0} s (spool, SHA-256, parse, {lines:N0} lines written, job enqueued)
                  import to matched {matched.TotalSeconds:0.0} s from the start of the upload ({lines / matched.TotalSeconds:N0} lines/s); server-side {serverSeconds:0.0} s from import commit
                  server peak RSS   {peak:0} MiB
                  target            fully matched in < 300 s: {(matched.TotalSeconds < 300 && (string)statement["status"]! == "matched" ? "met" : "MISSED")}
                """));
            return (string)statement["status"]! == "matched" ? 0 : 1;
        }
        finally
        {
            File.Delete(file);
            await PostgresServer.StopSharedAsync();
        }
    }

    static async Task SeedAsync(HttpClient http, int lines, DateOnly day, CancellationToken ct)
    {
        (await http.PostAsJsonAsync("/v1/ledgers", new { code = "idr", asset = "IDR", scale = 2 }, ct)).EnsureSuccessStatusCode();
        foreach (var (id, normal) in new[] { ("bank", "debit"), ("due", "credit") }.Concat(Enumerable.Range(0, 100).Select(i => ($"w{i}", "credit"))))
            (await http.PostAsJsonAsync("/v1/accounts", new { id, ledger = "idr", normal_balance = normal }, ct)).EnsureSuccessStatusCode();
        (await http.PostAsJsonAsync("/v1/settlement/counterparties", new
        {
            id = "bank", name = "Bench Bank", type = "bank", settlement_account = "due", cash_account = "bank", cutoff_local_time = "24:00", time_zone = "UTC",
        }, ct)).EnsureSuccessStatusCode();
        var start = day.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc);
        for (var first = 0; first < lines; first += BatchSize)
        {
            var transfers = new JsonArray();
            for (var i = first; i < Math.Min(lines, first + BatchSize); i++)
            {
                var t = new JsonObject
                {
                    ["id"] = $"t{i}", ["debit_account"] = "bank", ["credit_account"] = $"w{i % 100}", ["amount"] = Amount(i),
                    ["effective_at"] = new DateTimeOffset(start.AddMilliseconds(i * 800L)).ToString("O", CultureInfo.InvariantCulture),
                };
                if (i % 10 < 7) t["metadata"] = new JsonObject { ["end_to_end_id"] = $"E2E{i}" };
                transfers.Add(t);
            }
            using var request = new StringContent(new JsonObject { ["transfers"] = transfers }.ToJsonString(), Encoding.UTF8, "application/json");
            var r = await http.PostAsync("/v1/transfers/batch", request, ct);
            var text = await r.Content.ReadAsStringAsync(ct);
            if (!r.IsSuccessStatusCode || text.Contains("\"failed\"", StringComparison.Ordinal)) throw new InvalidOperationException($"seeding failed: {text[..Math.Min(500, text.Length)]}");
        }
    }

    /// <summary>Distinct amounts, so <c>amount_date</c> has one candidate per line.</summary>
    static long Amount(int i) => 100_000 + i * 7L;

    static async Task<long> WriteMt940Async(string path, int lines, DateOnly day, CancellationToken ct)
    {
        var yymmdd = day.ToString("yyMMdd", CultureInfo.InvariantCulture);
        var mmdd = day.ToString("MMdd", CultureInfo.InvariantCulture);
        await using (var w = new StreamWriter(path, false, new UTF8Encoding(false), 1 << 16))
        {
            await w.WriteAsync($":20:BENCH{yymmdd}\n:25:BENCHBANK/0001\n:28C:1/1\n:60F:C{yymmdd}IDR0,00\n");
            long sum = 0;
            for (var i = 0; i < lines; i++)
            {
                var amount = Amount(i);
                sum += amount;
                var reference = i % 10 < 7 ? $"E2E{i}" : "NONREF";
                await w.WriteAsync(string.Create(CultureInfo.InvariantCulture,
                    $":61:{yymmdd}{mmdd}C{amount / 100},{amount % 100:00}NTRF{reference}//B{i}\n:86:TRANSFER {i} FROM CUSTOMER\n"));
            }
            await w.WriteAsync(string.Create(CultureInfo.InvariantCulture, $":62F:C{yymmdd}IDR{sum / 100},{sum % 100:00}\n"));
            ct.ThrowIfCancellationRequested();
        }
        return new FileInfo(path).Length;
    }

    static void Log(string message) => Console.WriteLine($"[{DateTime.UtcNow:HH:mm:ss}] {message}");

    static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Neraca.slnx"))) return dir.FullName;
        throw new InvalidOperationException("repository root not found");
    }
}
