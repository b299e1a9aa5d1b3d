using System.Data.Common;
using System.Globalization;
using System.Net;
using Dapper;
using Microsoft.Data.Sqlite;
using Neraca.Payouts;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Ledger;
using Neraca.Tests.Payouts;
using Npgsql;

namespace Neraca.Tests.Wellness;

/// <summary>Issue #14's crash acceptance test on both stores: withdrawals go to a server process that is SIGKILLed while
/// requests to it are in flight and its workers hold saga jobs; the clients retry what was cut off with the same
/// <c>Idempotency-Key</c> (on PostgreSQL against a surviving replica; on SQLite, where one process owns the database,
/// against the killed server once it is back on the same port), the killed server is restarted, and then every
/// withdrawal has ended in exactly one terminal state, nobody was paid twice, the cycle counters equal the withdrawals
/// and the books balance. The payout provider is the sandbox as its own process (10% invalid accounts: the failure
/// path's reversals run too).</summary>
[Collection(ServerProcesses.Name)]
public sealed class EwaCrashTests
{
    const int Employees = 16;
    const int PerEmployee = 6;
    const long DailyRate = 100_000_000;          // one day of attendance: earned Rp 1.000.000, accessible Rp 500.000
    const long Amount = 10_000_000;
    const long Fee = 100_000;
    const long Float = 10_000_000_000;
    const string Secret = "ewa-crash-callback-secret-0123456789";
    const string ProviderKey = "sandbox-api-key";
    const string Tenant = "default";

    [Theory]
    [InlineData(StoreKind.Postgres)]
    [InlineData(StoreKind.Sqlite)]
    public async Task A_server_killed_during_withdrawals_pays_each_once_and_keeps_counters_and_books_exact(StoreKind kind)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var marks = new List<string>();
        void Mark(string what) => marks.Add($"{clock.Elapsed.TotalSeconds:0.0}s {what}");
        var database = await TestStores.NewDatabaseAsync(kind);
        var sqlite = kind == StoreKind.Sqlite;
        var sandboxPort = ProcessRunner.FreePort();
        string[] common =
        [
            "--database", database, "--bootstrap-api-key", NeracaServer.BootstrapKey,
            "--Payouts:Provider:Url", $"http://127.0.0.1:{sandboxPort}", "--Payouts:Provider:ApiKey", ProviderKey,
            "--Payouts:Provider:CallbackSecret", Secret, "--Payouts:Provider:AttemptTimeoutMs=1000", "--Payouts:Provider:RetriesMax=1",
            "--Payouts:CallbackGraceSeconds=3", "--Payouts:RecoverAfterSeconds=3", "--Jobs:Recurring:payouts.recover:Cron=*/2 * * * * *",
            "--Jobs:PollIntervalMs=50", "--Jobs:WorkerConcurrency=16", "--Jobs:LeaseSeconds=3", "--Jobs:BackoffBaseMs=250", "--Jobs:BackoffMaxMs=2000",
            // A request cut off by the kill leaves its idempotency record in flight: a retry may take it over after this.
            "--Idempotency:InFlightLeaseSeconds=3", "--RateLimits:IpPerMinute=1000000",
        ];
        var victimPort = ProcessRunner.FreePort();
        string[] victimArgs = [.. common, "--role", sqlite ? "api,worker,scheduler" : "api,worker"];
        await using var survivor = sqlite ? null : await StartAsync([.. common, "--role", "api,worker,scheduler"]);
        var callbacks = survivor?.BaseAddress ?? new Uri($"http://127.0.0.1:{victimPort}");
        var sandboxStarting = SandboxProcess.StartAsync(sandboxPort,
        [
            "--latency-ms", "150", "--invalid-account-share", "0.1", "--api-key", ProviderKey,
            "--callback-url", new Uri(callbacks, "/v1/payouts/callbacks").ToString(), "--callback-secret", Secret,
        ]);
        var victimStarting = StartAsync(victimArgs, victimPort);
        try
        {
            await Task.WhenAll(sandboxStarting, victimStarting);
        }
        catch
        {
            if (sandboxStarting.IsCompletedSuccessfully) await (await sandboxStarting).DisposeAsync();
            if (victimStarting.IsCompletedSuccessfully) await (await victimStarting).DisposeAsync();
            throw;
        }
        await using var sandbox = await sandboxStarting;
        var victim = await victimStarting;
        ServerProcess? restarted = null;
        try
        {
            Mark("started");
            using var http = (survivor ?? victim).CreateClient(NeracaServer.BootstrapKey);
            using var toVictim = victim.CreateClient(NeracaServer.BootstrapKey);
            var er = await SetUpEmployerAsync(http);
            Mark("employer set up");

            // Every request has its own key; each employee asks PerEmployee times (more than accessible allows), 16 at a time.
            var keys = Enumerable.Range(0, Employees).SelectMany(e => Enumerable.Range(0, PerEmployee).Select(i => (Employee: $"E{e:D3}", Key: $"crash-{e}-{i}")))
                .OrderBy(x => x.Key.GetHashCode(StringComparison.Ordinal)).ToList();
            var outcomes = new System.Collections.Concurrent.ConcurrentDictionary<string, HttpStatusCode>();
            var killed = 0;
            var cutOff = 0;
            var answeredByVictim = 0;
            using var gate = new SemaphoreSlim(16);
            var requests = keys.Select(async k =>
            {
                await gate.WaitAsync();
                try
                {
                    var path = $"/v1/ewa/employers/{er}/employees/{k.Employee}/withdrawals";
                    if (Volatile.Read(ref killed) == 0)
                    {
                        try
                        {
                            var r = await toVictim.PostJsonAsync(path, new { amount = Amount }, k.Key);
                            outcomes[k.Key] = r.Response.StatusCode;
                            Interlocked.Increment(ref answeredByVictim);
                            return;
                        }
                        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                        {
                            Interlocked.Increment(ref cutOff);   // the server died under this request: retry it below
                        }
                    }
                    outcomes[k.Key] = await RetryAsync(http, path, k.Key);
                }
                finally
                {
                    gate.Release();
                }
            }).ToList();

            await Polling.Eventually(() => Volatile.Read(ref answeredByVictim) >= keys.Count / 4, "a quarter of the withdrawals answered by the victim",
                timeout: TimeSpan.FromMinutes(3));
            await Polling.Eventually(async () => await InFlightAsync(database, er) > 0, "withdrawals in flight", timeout: TimeSpan.FromMinutes(1),
                interval: TimeSpan.FromMilliseconds(20));
            var inFlightAtKill = await InFlightAsync(database, er);
            Volatile.Write(ref killed, 1);
            await ProcessRunner.RunAsync("kill", ["-KILL", victim.Id.ToString(CultureInfo.InvariantCulture)]);
            Mark($"killed with {inFlightAtKill} withdrawal(s) in flight");
            restarted = await StartAsync(victimArgs, victimPort);
            Mark("victim restarted");
            await Task.WhenAll(requests);
            Mark("every request answered");

            // Liveness waits only: withdrawals cut off mid-saga are finished by their backstop job (30 s after the request).
            await Polling.Eventually(async () => await InFlightAsync(database, er) == 0, "every withdrawal ends", timeout: TimeSpan.FromMinutes(4),
                interval: TimeSpan.FromMilliseconds(500));
            Mark("settled");

            Assert.True(cutOff > 0, "the kill cut off no request: it did not happen during withdrawals");
            Assert.All(outcomes.Values, s => Assert.True(s is HttpStatusCode.Accepted or HttpStatusCode.OK or HttpStatusCode.UnprocessableEntity, $"answer {(int)s}"));
            await using var c = await OpenAsync(database);
            var withdrawals = (await c.QueryAsync<(string Id, string Employee, long Amount, long Fee, string Status, string? Failure)>(
                "SELECT id, employee_id, amount, fee, status, failure_code FROM ewa_withdrawals WHERE tenant_id = @Tenant AND employer_id = @er",
                new { Tenant, er })).ToList();
            var accepted = outcomes.Count(o => o.Value is HttpStatusCode.Accepted or HttpStatusCode.OK);
            // One withdrawal per accepted key (ids derive from the key): a retried request created nothing twice.
            Assert.Equal(accepted, withdrawals.Count);
            Assert.All(withdrawals, w => Assert.True(w.Status is "paid" or "failed", $"{w.Id} is {w.Status}"));
            var paidRows = withdrawals.Where(w => w.Status == "paid").ToList();
            var failedRows = withdrawals.Where(w => w.Status == "failed").ToList();
            Assert.NotEmpty(paidRows);

            // Exactly one terminal event per withdrawal, and it agrees with the row.
            var terminal = (await c.QueryAsync<(string Subject, string Type)>("""
                SELECT subject, type FROM events WHERE tenant_id = @Tenant AND type IN ('ewa.withdrawal.paid', 'ewa.withdrawal.failed')
                """, new { Tenant })).GroupBy(e => e.Subject).ToDictionary(g => g.Key, g => g.Select(e => e.Type).ToList());
            Assert.All(withdrawals, w => Assert.Equal(["ewa.withdrawal." + w.Status], terminal.GetValueOrDefault("ewa_withdrawal:" + w.Id) ?? []));

            // The provider paid each paid withdrawal once, no failed one, and each employee exactly their paid advances.
            var payments = (await sandbox.PaidAsync()).Select(p => ((string)p["external_id"]!, (long)p["amount"]!)).ToList();
            var byKey = payments.GroupBy(p => p.Item1).ToDictionary(g => g.Key, g => g.Count());
            Assert.All(paidRows, w => Assert.Equal(1, byKey.GetValueOrDefault(PayoutService.ProviderKey(Tenant, "ewa:" + w.Id))));
            Assert.All(failedRows, w => Assert.False(byKey.ContainsKey(PayoutService.ProviderKey(Tenant, "ewa:" + w.Id)), $"{w.Id} failed but was paid"));
            Assert.Equal(paidRows.Count, payments.Count);
            Assert.Equal(paidRows.Sum(w => w.Amount), payments.Sum(p => p.Item2));

            // Each employee's cycle counters are the sums of their withdrawals that did not fail, never above accessible.
            var counters = (await c.QueryAsync<(string Employee, long Withdrawn, long Advances, long Fees, long Count)>("""
                SELECT employee_id, withdrawn, advances, employee_fees, CAST(withdrawals AS bigint) FROM ewa_employee_cycles
                WHERE tenant_id = @Tenant AND employer_id = @er
                """, new { Tenant, er })).ToDictionary(x => x.Employee);
            for (var e = 0; e < Employees; e++)
            {
                var id = $"E{e:D3}";
                var mine = paidRows.Where(w => w.Employee == id).ToList();
                var row = counters.GetValueOrDefault(id);
                Assert.Equal((mine.Sum(w => w.Amount + w.Fee), mine.Sum(w => w.Amount), mine.Sum(w => w.Fee), (long)mine.Count),
                    (row.Withdrawn, row.Advances, row.Fees, row.Count));
                Assert.True(row.Withdrawn <= DailyRate / 2, $"{id} withdrew {row.Withdrawn}, more than accessible");
            }

            // The books: conservation, and the employer's accounts hold exactly the paid withdrawals' legs. On SQLite the
            // checking server must be the database's only process.
            if (sqlite)
            {
                await restarted.DisposeAsync();
                restarted = null;
            }
            await using var check = await NeracaServer.StartAsync(database, "--role", "api");
            await Conservation.AssertAsync(check, Tenant);
            var counted = paidRows.Sum(w => w.Amount + w.Fee);
            using var checkHttp = check.CreateClient(NeracaServer.BootstrapKey);
            var l = new LedgerClient(checkHttp);
            Assert.Equal(Float - counted, await l.PostedAsync($"ewa:{er}:float"));
            Assert.Equal(counted, await l.PostedAsync($"ewa:{er}:committed"));
            Assert.Equal(counted, await l.PostedAsync($"ewa:{er}:advances"));
            Assert.Equal(paidRows.Sum(w => w.Fee), await l.PostedAsync($"ewa:{er}:fees"));
            var disbursement = await l.BalanceAsync($"ewa:{er}:disbursement");
            Assert.Equal(0L, (long)disbursement["posted"]!);
            Assert.Equal(0L, (long)disbursement["debits_pending"]!);
            Assert.Equal(0L, await c.ExecuteScalarAsync<long>("SELECT count(*) FROM jobs WHERE (type LIKE 'ewa.%' OR type LIKE 'payouts.%') AND state = 4"));
            Mark($"checked: {paidRows.Count} paid, {failedRows.Count} failed, {outcomes.Count - accepted} refused, {cutOff} cut off by the kill");
            TestContext.Current.TestOutputHelper?.WriteLine(string.Join("\n", marks));
        }
        catch (Exception e) when (e is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException($"{e.Message}\n--- phases ---\n{string.Join("\n", marks)}\n--- survivor ---\n{Tail((survivor ?? restarted ?? victim).Output)}\n--- sandbox ---\n{Tail(sandbox.Output)}", e);
        }
        finally
        {
            await victim.DisposeAsync();
            if (restarted is not null) await restarted.DisposeAsync();
        }
    }

    /// <summary>A prefunded employer in Jakarta whose payday is ten days or more ahead (the server runs on the real
    /// clock), no blackout; daily staff with a day of attendance today.</summary>
    static async Task<string> SetUpEmployerAsync(HttpClient http)
    {
        var zone = TimeZoneInfo.FindSystemTimeZoneById("Asia/Jakarta");
        var today = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(DateTimeOffset.UtcNow, zone).DateTime);
        const string er = "er-crash";
        var created = await http.PostJsonAsync("/v1/ewa/employers", new
        {
            id = er, name = "PT Crash", time_zone = "Asia/Jakarta", payday_day = (today.AddDays(10).Day - 1) % 28 + 1,
            policy = new { blackout_days = 0, fee_flat = Fee, withdrawal_min = 1_000_000, withdrawals_per_cycle_max = 50 },
        });
        Assert.True(created.Response.StatusCode == HttpStatusCode.Created, created.Body?.ToJsonString());
        var funded = await http.PostJsonAsync($"/v1/ewa/employers/{er}/funding", new { amount = Float }, "fund-crash");
        Assert.True(funded.Response.IsSuccessStatusCode, funded.Body?.ToJsonString());
        var roster = Ewa.Header + "\n" + string.Join("\n", Enumerable.Range(0, Employees).Select(e =>
            $"E{e:D3},Karyawan {e},,,daily,{DailyRate},2020-01-01,BNI,7{e:D9}")) + "\n";
        var import = await http.PostRawAsync($"/v1/ewa/employers/{er}/employees/import", roster, "text/csv");
        Assert.True(import.Response.StatusCode == HttpStatusCode.Accepted, import.Body?.ToJsonString());
        await Polling.Eventually(() => http.GetJsonAsync($"/v1/ewa/employers/{er}/imports/{import.Body!["id"]}"),
            r => (string?)r.Body?["status"] == "completed", "the roster import completes", timeout: TimeSpan.FromMinutes(2));
        var day = Dates(today);
        var attendance = await http.PostJsonAsync($"/v1/ewa/employers/{er}/attendance",
            Enumerable.Range(0, Employees).Select(e => new { employee_id = $"E{e:D3}", date = day, hours = 8 }).ToArray());
        Assert.Equal(Employees, (int)attendance.Body!["accepted"]!);
        return er;
    }

    /// <summary>A server process; on a loaded shared machine the first start can miss the 30 s readiness wait (liveness
    /// only: the process is stopped and started again, at most three times).</summary>
    static async Task<ServerProcess> StartAsync(string[] args, int? port = null)
    {
        for (var attempt = 1; ; attempt++)
        {
            try { return await ServerProcess.StartAsync(args, port: port); }
            catch (TimeoutException) when (attempt < 3) { }
        }
    }

    static string Dates(DateOnly d) => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    /// <summary>What a client does with a request whose answer it lost: the same request with the same key until a final
    /// answer (409 while the dead server's record is still in flight).</summary>
    static async Task<HttpStatusCode> RetryAsync(HttpClient http, string path, string key)
    {
        var r = await Polling.Eventually(async () =>
        {
            try { return await http.PostJsonAsync(path, new { amount = Amount }, key); }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { return default; }
        }, x => x.Response is { StatusCode: not HttpStatusCode.Conflict }, $"a final answer for {key}", timeout: TimeSpan.FromMinutes(3),
            interval: TimeSpan.FromMilliseconds(250));
        return r.Response.StatusCode;
    }

    static async Task<long> InFlightAsync(string database, string er)
    {
        await using var c = await OpenAsync(database);
        return await c.ExecuteScalarAsync<long>("SELECT count(*) FROM ewa_withdrawals WHERE tenant_id = @Tenant AND employer_id = @er AND status IN ('pending', 'processing')",
            new { Tenant, er });
    }

    /// <summary>The test's own connection to the servers' database (a reader beside them on SQLite's WAL).</summary>
    static async Task<DbConnection> OpenAsync(string database)
    {
        DbConnection c = database.StartsWith("sqlite:", StringComparison.Ordinal)
            ? new SqliteConnection($"Data Source={database["sqlite:".Length..]}")
            : new NpgsqlConnection(database);
        await c.OpenAsync();
        return c;
    }

    static string Tail(string text) => text.Length <= 6000 ? text : text[^6000..];
}
