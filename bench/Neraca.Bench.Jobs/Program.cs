using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Neraca.Bench.Jobs;
using Neraca.Hosting;
using Neraca.Jobs;
using Neraca.Ledger;
using Neraca.Storage;

// The jobs benchmark: the API's p99 under a steady `uniform` transfer load, first alone, then while a large chunked
// job (bulk postings through the same ledger engine) runs; one run, one ratio. Usage:
//   dotnet run -c Release --project bench/Neraca.Bench.Jobs -- [--database postgres://...] [--postings 1000000]
//       [--rate 500] [--clients 16] [--seconds 20] [--job-rate 10000] [--chunk 500] [--json results.json]
// Exit code 0 when the job succeeded, nothing failed and the books balance; the p99 ratio is reported, not asserted
// (a shared machine's noise is not a failure).
var o = Settings.Parse(args);
const string Key = "nrc_benchjobs000000000000000000000000000000";
var dataDir = Path.Combine(Path.GetTempPath(), "neraca-bench-jobs-" + Guid.NewGuid().ToString("N")[..8]);
var database = o.Database ?? "sqlite:" + Path.Combine(dataDir, "neraca.db");

await using var app = NeracaApp.Create(["--database", database, "--urls", "http://127.0.0.1:0", "--bootstrap-api-key", Key,
    "--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:Microsoft.Hosting.Lifetime=Warning"]);
await app.Services.GetRequiredService<StorageStartup>().PrepareAsync(CancellationToken.None);
await app.StartAsync();
var baseAddress = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 512 }) { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);
var db = app.Services.GetRequiredService<Database>();
Console.WriteLine($"server {baseAddress} on {db.Description}; {Environment.ProcessorCount} cores");

var loadAccounts = await SetUpLedgerAsync(http, "load", 1000);
var bulkAccounts = await SetUpLedgerAsync(http, "bulk", 100);

// Warm-up, then the first half of the baseline.
await Load.RunAsync(http, loadAccounts, o.Rate, o.Clients, TimeSpan.FromSeconds(5), () => false);
var baseline = await Load.RunAsync(http, loadAccounts, o.Rate, o.Clients, TimeSpan.FromSeconds(o.Seconds), () => false);

// The job phase: a worker of our own runs the bulk job (the server's worker does not know the type) while the load
// runs at the same rate until the job finishes.
var ledger = (await app.Services.GetRequiredService<LedgerStore>().GetLedgerAsync("default", "bulk", CancellationToken.None))!;
var handler = new BulkPostingsJob(app.Services.GetRequiredService<PostingPipeline>(), "default", ledger, bulkAccounts, o.Postings, o.JobRate);
var jobsOptions = new JobsOptions();
jobsOptions.Types[BulkPostingsJob.TypeName] = new JobTypeOptions { ChunkSize = o.Chunk };
var store = new JobStore(db, new JobTypes([handler], Options.Create(jobsOptions)), TimeProvider.System);
var worker = new JobWorker(store, app.Services.GetRequiredService<JobMetrics>(), TimeProvider.System, NullLogger<JobWorker>.Instance);
var job = await store.EnqueueAsync(new JobRequest("default", BulkPostingsJob.TypeName, "{}", Key: "bench-" + Guid.NewGuid().ToString("N")), CancellationToken.None);
using var stopWorker = new CancellationTokenSource();
var jobClock = Stopwatch.StartNew();
var jobDone = false;
var workerLoop = worker.RunAsync(stopWorker.Token);
var watcher = Task.Run(async () =>
{
    while ((await store.GetAsync("default", job.JobId, CancellationToken.None))?.State is not (JobState.Succeeded or JobState.Dead))
        await Task.Delay(200);
    jobClock.Stop();
    Volatile.Write(ref jobDone, true);
});
var withJob = await Load.RunAsync(http, loadAccounts, o.Rate, o.Clients, TimeSpan.FromSeconds(o.JobSecondsMax), () => Volatile.Read(ref jobDone));
var finished = await store.GetAsync("default", job.JobId, CancellationToken.None);
await stopWorker.CancelAsync();
await workerLoop;
// The baseline is measured before and after the job and pooled, so drift on a shared machine hits both sides.
var after = await Load.RunAsync(http, loadAccounts, o.Rate, o.Clients, TimeSpan.FromSeconds(o.Seconds), () => false);
baseline = LoadResult.Merge(baseline, after);

var conserved = await ConservedAsync(db);
var ratio = withJob.P99Ms / baseline.P99Ms;
Console.WriteLine();
Console.WriteLine($"{"phase",-10} {"requests",9} {"req/s",8} {"errors",7} {"p50 ms",8} {"p95 ms",8} {"p99 ms",8} {"max ms",8}");
foreach (var (name, r) in new[] { ("alone", baseline), ("with job", withJob) })
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{name,-10} {r.Requests,9} {r.Throughput,8:F0} {r.Errors,7} {r.P50Ms,8:F2} {r.P95Ms,8:F2} {r.P99Ms,8:F2} {r.MaxMs,8:F2}"));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"job: {finished!.State} {finished.Processed:N0} postings in {jobClock.Elapsed.TotalSeconds:F1} s ({finished.Processed / jobClock.Elapsed.TotalSeconds:F0}/s, cap {o.JobRate}/s, chunk {o.Chunk})"));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"p99 ratio with job / alone: {ratio:F2} (target <= 2.00); books balanced: {conserved}"));
var json = JsonSerializer.Serialize(new
{
    scenario = "jobs", store = db.Kind.ToString().ToLowerInvariant(), cores = Environment.ProcessorCount, rate = o.Rate, clients = o.Clients,
    alone = baseline, with_job = withJob, p99_ratio = ratio,
    job = new { state = finished.State.ToString().ToLowerInvariant(), postings = finished.Processed, seconds = jobClock.Elapsed.TotalSeconds, cap_per_s = o.JobRate, chunk = o.Chunk },
    conserved,
}, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower });
Console.WriteLine(json);
if (o.Json is not null) await File.WriteAllTextAsync(o.Json, json);
await app.StopAsync();
try { Directory.Delete(dataDir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
return finished.State == JobState.Succeeded && conserved && withJob.Errors == 0 && baseline.Errors == 0 ? 0 : 1;

static async Task<string[]> SetUpLedgerAsync(HttpClient http, string code, int accounts)
{
    (await http.PostAsJsonAsync("/v1/ledgers", new { code, asset = "IDR", scale = 2 })).EnsureSuccessStatusCode();
    var ids = Enumerable.Range(0, accounts).Select(i => $"{code}-{i:D5}").ToArray();
    await Parallel.ForEachAsync(ids, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (id, ct) =>
        (await http.PostAsJsonAsync("/v1/accounts", new { id, ledger = code, normal_balance = "credit" }, ct)).EnsureSuccessStatusCode());
    return ids;
}

static async Task<bool> ConservedAsync(Database db)
{
    await using var c = await db.OpenAsync(CancellationToken.None);
    await using var cmd = c.CreateCommand();
    cmd.CommandText = "SELECT count(*) FROM (SELECT ledger_id FROM accounts GROUP BY ledger_id HAVING sum(debits_posted) <> sum(credits_posted)) x";
    return Convert.ToInt64(await cmd.ExecuteScalarAsync(), CultureInfo.InvariantCulture) == 0;
}

sealed record Settings(string? Database, long Postings, int Rate, int Clients, int Seconds, int JobRate, int Chunk, int JobSecondsMax, string? Json)
{
    public static Settings Parse(string[] args)
    {
        string? Get(string name) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
        int Int(string name, int fallback) => Get(name) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
        return new Settings(Get("--database"), Get("--postings") is { } p ? long.Parse(p, CultureInfo.InvariantCulture) : 1_000_000,
            Int("--rate", 500), Int("--clients", 16), Int("--seconds", 20), Int("--job-rate", 10_000), Int("--chunk", 500),
            Int("--job-seconds-max", 600), Get("--json"));
    }
}
