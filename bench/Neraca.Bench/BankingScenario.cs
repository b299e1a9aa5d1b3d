using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Neraca.Tests.Infrastructure;

namespace Neraca.Bench;

/// <summary>The <c>banking</c> scenario (issue #16), on PostgreSQL with fsync on, for one wallet of <c>--entries</c>
/// (default 100,000) ledger entries, a share of them banking payments (with references, searchable):
/// <list type="number">
/// <item>history page reads under <c>--clients</c> concurrent readers, random pages of 100: the ledger's own entries
/// page (<c>GET /v1/accounts/{id}/entries</c>, the baseline: the same journal read without banking), banking's history
/// walk (<c>/transactions</c>: the entries plus one details query per page) and its full-text search (<c>?q=</c>); p50,
/// p99 and the ratio of each p99 to the baseline's, in the same run;</item>
/// <item>the statement of the day holding all the entries: time from the request to <c>ready</c> (both passes, CSV, PDF,
/// camt.053, stored with their hashes), the server's peak RSS meanwhile, and the file sizes.</item>
/// </list>
/// Statements cover closed days only and the server runs on the real clock, so after seeding the tenant's time zone is
/// set to the zone whose next midnight comes first (there is one within the hour), the history runs meanwhile, and the
/// statement is asked for once that day is over.
/// <c>dotnet run -c Release --project bench/Neraca.Bench -- banking [--entries 100000] [--seconds 10] [--clients 16]</c></summary>
public static class BankingScenario
{
    const int BatchSize = 8_000;
    const int PageSize = 100;
    const int CursorPagesMax = 200;
    static readonly TimeSpan StatementTimeMax = TimeSpan.FromMinutes(30);

    public static async Task<int> RunAsync(string[] args, CancellationToken ct)
    {
        int entries = 100_000, clients = 16;
        double seconds = 10;
        for (var i = 0; i + 1 < args.Length; i += 2)
            switch (args[i])
            {
                case "--entries": entries = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--clients": clients = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--seconds": seconds = double.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        var dll = Path.Combine(RepoRoot(), "src/Neraca.Server/bin/Release/net10.0/Neraca.Server.dll");
        try
        {
            var pg = await PostgresServer.SharedAsync();
            await using var server = await ServerProcess.StartAsync(dll, await pg.CreateDatabaseAsync("bench_banking"), BenchOptions.DefaultApiKey,
                ["--RateLimits:Enabled=false"], new Dictionary<string, string>(), ct);
            using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(5) };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", BenchOptions.DefaultApiKey);

            var seed = Stopwatch.StartNew();
            var payments = await SeedAsync(http, entries, ct);
            Log($"seeded {entries:N0} entries ({payments:N0} of them banking payments) in {seed.Elapsed.TotalSeconds:0.0} s");

            // The zone whose day ends first from now: the statement of that day holds every entry just written.
            var (zone, midnight) = SoonestMidnight(DateTimeOffset.UtcNow.AddSeconds(5));
            (await http.PatchAsJsonAsync("/v1/banking/settings", new { time_zone = zone.Id }, ct)).EnsureSuccessStatusCode();
            var day = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(midnight.AddMinutes(-1), zone).DateTime);
            Log($"tenant time zone {zone.Id}: {day:yyyy-MM-dd} ends at {midnight:HH:mm:ss} UTC");

            var baselineCursors = await CursorsAsync(http, "/v1/accounts/acc_bench/entries", ct);
            var historyCursors = await CursorsAsync(http, "/v1/accounts/acc_bench/transactions", ct);
            var runs = new List<(string Name, List<double> Latencies)>
            {
                ("ledger entries page (baseline)", await LoadAsync(http, "/v1/accounts/acc_bench/entries", baselineCursors, clients, seconds, ct)),
                ("banking history page", await LoadAsync(http, "/v1/accounts/acc_bench/transactions", historyCursors, clients, seconds, ct)),
                ("banking search page (q=)", await LoadAsync(http, "/v1/accounts/acc_bench/transactions?q=groceries", [""], clients, seconds, ct)),
            };

            var wait = midnight - DateTimeOffset.UtcNow + TimeSpan.FromSeconds(2);
            if (wait > TimeSpan.Zero)
            {
                Log($"waiting {wait.TotalMinutes:0.0} min for {day:yyyy-MM-dd} to end in {zone.Id}");
                await Task.Delay(wait, ct);
            }
            await using var rss = RssMonitor.Start(server.Pid);
            var clock = Stopwatch.StartNew();
            var requested = await http.PostAsJsonAsync("/v1/accounts/acc_bench/statements", new { from = Day(day), to = Day(day) }, ct);
            var body = JsonNode.Parse(await requested.Content.ReadAsStringAsync(ct))!;
            if ((int)requested.StatusCode != 202) throw new InvalidOperationException($"statement request failed: {(int)requested.StatusCode} {body.ToJsonString()}");
            JsonNode statement;
            do
            {
                await Task.Delay(250, ct);
                statement = JsonNode.Parse(await http.GetStringAsync($"/v1/accounts/acc_bench/statements/{body["id"]}", ct))!;
            } while ((string)statement["status"]! != "ready" && clock.Elapsed < StatementTimeMax);
            var rendered = clock.Elapsed;
            var peak = await rss.StopAsync();

            var baseline = Stats(runs[0].Latencies, seconds);
            var report = new StringBuilder();
            report.AppendLine(CultureInfo.InvariantCulture, $"banking: one wallet of {entries:N0} entries (PostgreSQL, fsync on), {clients} clients, {seconds:0} s per run, pages of {PageSize}");
            foreach (var (name, latencies) in runs)
            {
                var s = Stats(latencies, seconds);
                report.AppendLine(CultureInfo.InvariantCulture,
                    $"  {name,-32} {s.PerSecond,8:0} pages/s   p50 {s.P50Ms,7:0.0} ms   p99 {s.P99Ms,7:0.0} ms   p99 x{s.P99Ms / baseline.P99Ms:0.00} vs baseline");
            }
            report.AppendLine(CultureInfo.InvariantCulture,
                $"  statement of {statement["entry_count"]} entries: {statement["status"]} in {rendered.TotalSeconds:0.0} s from the request ({(long)statement["entry_count"]! / rendered.TotalSeconds:N0} entries/s), server peak RSS {peak:0} MiB");
            foreach (var f in statement["files"]!.AsArray())
                report.AppendLine(CultureInfo.InvariantCulture, $"    {(string)f!["format"]!,-4} {(long)f["size_bytes"]! / 1024.0 / 1024.0,8:0.00} MiB  sha256 {((string)f["sha256"]!)[..16]}...");
            report.Append(CultureInfo.InvariantCulture, $"  balances: opening {statement["opening_balance"]}, credits {statement["total_credits"]}, debits {statement["total_debits"]}, closing {statement["closing_balance"]}");
            Console.WriteLine(report.ToString());
            return (string)statement["status"]! == "ready" ? 0 : 1;
        }
        finally
        {
            await PostgresServer.StopSharedAsync();
        }
    }

    /// <summary>A full-KYC customer's wallet: ledger batches from the switch for most entries, and banking payments out of
    /// it (every 50th entry, with references and descriptions, so history pages carry details and search finds them).</summary>
    static async Task<int> SeedAsync(HttpClient http, int entries, CancellationToken ct)
    {
        (await http.PostAsJsonAsync("/v1/customers", new { id = "cus_bench", name = "Bench Customer", kyc_level = "full" }, ct)).EnsureSuccessStatusCode();
        (await http.PostAsJsonAsync("/v1/customers/cus_bench/accounts", new { id = "acc_bench", product = "wallet", currency = "IDR" }, ct)).EnsureSuccessStatusCode();
        (await http.PostAsJsonAsync("/v1/customers", new { id = "cus_shop", name = "Bench Shop", kyc_level = "full" }, ct)).EnsureSuccessStatusCode();
        (await http.PostAsJsonAsync("/v1/customers/cus_shop/accounts", new { id = "acc_shop", product = "wallet", currency = "IDR" }, ct)).EnsureSuccessStatusCode();
        (await http.PostAsJsonAsync("/v1/accounts", new { id = "switch", ledger = "bank-idr", normal_balance = "debit" }, ct)).EnsureSuccessStatusCode();
        var payments = entries / 50;
        var credits = entries - payments;
        for (var first = 0; first < credits; first += BatchSize)
        {
            var transfers = new JsonArray();
            for (var i = first; i < Math.Min(credits, first + BatchSize); i++)
                transfers.Add(new JsonObject { ["id"] = $"seed{i}", ["debit_account"] = "switch", ["credit_account"] = "acc_bench", ["amount"] = 10_000 + i % 997 });
            using var request = new StringContent(new JsonObject { ["transfers"] = transfers }.ToJsonString(), Encoding.UTF8, "application/json");
            var r = await http.PostAsync("/v1/transfers/batch", request, ct);
            var text = await r.Content.ReadAsStringAsync(ct);
            if (!r.IsSuccessStatusCode || text.Contains("\"failed\"", StringComparison.Ordinal)) throw new InvalidOperationException($"seeding failed: {text[..Math.Min(500, text.Length)]}");
        }
        var words = new[] { "Groceries at Superindo", "Coffee at Kopi Kenangan", "Electricity bill PLN", "Ride GoCar", "Pulsa Telkomsel" };
        await Parallel.ForAsync(0, payments, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = ct }, async (i, token) =>
        {
            var r = await http.PostAsJsonAsync("/v1/payments", new
            {
                id = $"pay{i}", from_account = "acc_bench", to_account = "acc_shop", amount = 1_000 + i % 500, reference = $"INV-{i:000000}", description = words[i % words.Length],
            }, token);
            if ((int)r.StatusCode != 201) throw new InvalidOperationException($"payment {i} failed: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync(token)}");
        });
        return payments;
    }

    /// <summary>The <c>next_cursor</c>s of the first pages of a list (up to <see cref="CursorPagesMax"/>), so readers can
    /// ask for pages spread over the account instead of the cached first one.</summary>
    static async Task<string[]> CursorsAsync(HttpClient http, string path, CancellationToken ct)
    {
        var cursors = new List<string> { "" };
        var after = "";
        for (var n = 0; n < CursorPagesMax; n++)
        {
            var page = JsonNode.Parse(await http.GetStringAsync($"{path}?limit={PageSize}{(after.Length == 0 ? "" : "&after=" + after)}", ct))!;
            if ((string?)page["next_cursor"] is not { } next) break;
            after = Uri.EscapeDataString(next);
            cursors.Add(after);
        }
        return [.. cursors];
    }

    /// <summary>Warm-up (2 s, not measured), then each client reads random pages back to back for the run; every latency (s).</summary>
    static async Task<List<double>> LoadAsync(HttpClient http, string path, string[] cursors, int clients, double seconds, CancellationToken ct)
    {
        var separator = path.Contains('?', StringComparison.Ordinal) ? "&" : "?";
        async Task<List<double>> RunAsync(double forSeconds)
        {
            var until = Stopwatch.GetTimestamp() + (long)(forSeconds * Stopwatch.Frequency);
            var workers = Enumerable.Range(0, clients).Select(async c =>
            {
                var mine = new List<double>();
                var random = new Random(c + 1);
                while (Stopwatch.GetTimestamp() < until)
                {
                    var cursor = cursors[random.Next(cursors.Length)];
                    var started = Stopwatch.GetTimestamp();
                    using var response = await http.GetAsync($"{path}{separator}limit={PageSize}{(cursor.Length == 0 ? "" : "&after=" + cursor)}", ct);
                    response.EnsureSuccessStatusCode();
                    await response.Content.ReadAsByteArrayAsync(ct);
                    mine.Add(Stopwatch.GetElapsedTime(started).TotalSeconds);
                }
                return mine;
            }).ToArray();
            return (await Task.WhenAll(workers)).SelectMany(w => w).ToList();
        }
        await RunAsync(2);
        return await RunAsync(seconds);
    }

    static (double PerSecond, double P50Ms, double P99Ms) Stats(List<double> latencies, double seconds)
    {
        var sorted = latencies.Order().ToArray();
        return (sorted.Length / seconds, sorted[sorted.Length / 2] * 1000, sorted[Math.Min(sorted.Length - 1, (int)(sorted.Length * 0.99))] * 1000);
    }

    /// <summary>Of the system's time zones, the one whose next local midnight after <paramref name="after"/> comes first.</summary>
    static (TimeZoneInfo Zone, DateTimeOffset Midnight) SoonestMidnight(DateTimeOffset after) =>
        TimeZoneInfo.GetSystemTimeZones()
            .Select(z =>
            {
                var local = TimeZoneInfo.ConvertTime(after, z);
                var next = local.Date.AddDays(1);
                return (Zone: z, Midnight: new DateTimeOffset(next, z.GetUtcOffset(next)).ToUniversalTime());
            })
            .MinBy(x => x.Midnight);

    static string Day(DateOnly d) => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    static void Log(string message) => Console.WriteLine($"[{DateTime.UtcNow:HH:mm:ss}] {message}");

    static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Neraca.slnx"))) return dir.FullName;
        throw new InvalidOperationException("repository root not found");
    }
}
