using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Npgsql;

namespace Neraca.Bench;

/// <summary>The <c>ewa</c> scenario (issue #14): earned wage access's nightly work for <c>--ewa-employers</c> employers
/// of <c>--ewa-employees</c> salaried employees each (default 1,000 x 100), against the API. The uniform load runs alone,
/// then while the nightly work runs (the <c>ewa.nightly</c> dispatcher and one <c>ewa.employer.nightly</c> per employer:
/// the payday close of the cycle that just ended, the accrual snapshot of every employee, the attendance reminder, then
/// <c>ewa.cycle.recover</c> on the ledger), then alone again. Reported: each window's latency, the worst window's p99
/// against the better alone p99 (target at most 2x), how long the nightly work took and the CPU PostgreSQL used
/// meanwhile. Neraca only.</summary>
/// <remarks>Set-up goes through the API where the product offers one (employers, accounts, float top-ups, roster
/// imports). The cycle that just ended cannot be filled through the API on a server running on the real clock (its days
/// are past), so the withdrawals of 3 in 10 employees in it are written as the withdrawal
/// path leaves them: each employee's cycle row (advance, fee, count) and, per employer, the linked ledger legs of those
/// withdrawals (advance, fee, float cover) posted through the ledger API. The close and the recovery then run for real.
/// The server must not run its own hourly dispatcher meanwhile: <see cref="ServerArgs"/>.</remarks>
public static class EwaScenario
{
    /// <summary>Clients of the load: a steady API, not a saturated one (as the jobs scenario).</summary>
    public const int Clients = 8;

    /// <summary>Employees who withdrew in the cycle that just ended (each once): 3 in 10.</summary>
    const int WithdrawingPerTen = 3;

    const long Salary = 800_000_000;          // Rp 8.000.000 a month
    const long Advance = 100_000_000;
    const long Fee = 1_500_000;
    const long Float = 100_000_000_000;

    static readonly TimeSpan WorkTimeMax = TimeSpan.FromMinutes(40);

    /// <summary>What the started server needs for this scenario: its own dispatcher never due (the scenario starts the
    /// nightly work itself, so the alone windows are alone), no rate limits on the set-up requests.</summary>
    public static readonly string[] ServerArgs = ["--Wellness:NightlyCron=0 0 1 1 *", "--RateLimits:Enabled=false"];

    public static async Task<IReadOnlyList<TargetCheck>> RunAsync(Side side, BenchOptions o, string tag, List<RunResult> results, CancellationToken ct)
    {
        RunPlan Plan(string name) => new(ScenarioNames.Ewa, name, Clients, 1, (w, t) => w.Uniform(t), (w, t) => w.Uniform(t));
        async Task<RunResult> MeasureAsync(string name, string runTag)
        {
            var r = await Benchmark.RunAsync(Plan(name), side, runTag, o, ct);
            results.Add(r);
            Benchmark.Log(Report.Line(r));
            return r;
        }

        using var http = new HttpClient { BaseAddress = side.Workload.Client.BaseAddress, Timeout = TimeSpan.FromMinutes(5) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", o.ApiKey);
        var prefix = "b" + tag;
        var setUp = Stopwatch.StartNew();
        var previous = await SetUpAsync(http, side.ConnectionString, o, prefix, ct);
        Benchmark.Log(string.Create(CultureInfo.InvariantCulture,
            $"ewa: {o.EwaEmployers:N0} employers x {o.EwaEmployees:N0} employees set up in {setUp.Elapsed.TotalSeconds:0} s; cycle {previous} to close"));

        var alone = await MeasureAsync($"ewa alone c={Clients}", tag + "a");
        var jobId = await EnqueueDispatcherAsync(side.ConnectionString, o.Tenant, ct);
        var cpu = CpuMonitor.Start(side.ServerPid, side.PostmasterPid);
        var clock = Stopwatch.StartNew();
        Benchmark.Log($"ewa: enqueued ewa.nightly job {jobId}; measuring the load in {o.Seconds.ToString(CultureInfo.InvariantCulture)} s windows until the nightly work is done");
        var windows = new List<RunResult>();
        Work work;
        while (!(work = await WorkAsync(side.ConnectionString, o.Tenant, jobId, ct)).Done && clock.Elapsed < WorkTimeMax)
            windows.Add(await MeasureAsync($"ewa with nightly #{windows.Count + 1}", tag + "j" + windows.Count.ToString(CultureInfo.InvariantCulture)));
        var during = cpu.Stop();
        var elapsed = work.FinishedAtUs is long f ? (f - work.CreatedAtUs) / 1e6 : clock.Elapsed.TotalSeconds;
        var again = await MeasureAsync($"ewa alone again c={Clients}", tag + "b");

        var outcome = await OutcomeAsync(side.ConnectionString, o.Tenant, prefix, previous, ct);
        var baseP99 = Math.Min(alone.Stats.P99Ms, again.Stats.P99Ms);
        var worst = windows.Count == 0 ? null : windows.MaxBy(w => w.Stats.P99Ms);
        var ratio = worst is null || baseP99 <= 0 ? 0 : worst.Stats.P99Ms / baseP99;
        var aloneCpu = alone.Cpu.PostgresCores is double a && again.Cpu.PostgresCores is double b ? (a + b) / 2 : (double?)null;
        Benchmark.Log(string.Create(CultureInfo.InvariantCulture,
            $"ewa: nightly work {(work.Done ? "done" : "NOT done")} in {elapsed:0.0} s ({work.Jobs:N0} jobs, {work.Dead} dead); PostgreSQL {during.PostgresCores:0.00} cores (alone {aloneCpu:0.00}), server {during.ServerCores:0.00}; worst p99 {worst?.Stats.P99Ms:0.0} ms vs {baseP99:0.0} ms alone = {ratio:0.00}x"));
        Benchmark.Log(string.Create(CultureInfo.InvariantCulture,
            $"ewa: {outcome.Closed:N0} cycles closed, {outcome.Deductions:N0} deductions, {outcome.Accrued:N0} accruals, {outcome.Recovered:N0} employers' advances recovered"));
        var employees = (long)o.EwaEmployers * o.EwaEmployees;
        return
        [
            new TargetCheck($"ewa: p99 while nightly work for {o.EwaEmployers:N0} x {o.EwaEmployees:N0} runs <= 2x alone",
                string.Create(CultureInfo.InvariantCulture, $"{ratio:0.00}x (worst window {worst?.Stats.P99Ms:0.0} ms, alone {baseP99:0.0} ms)"),
                worst is not null && ratio <= 2),
            new TargetCheck("ewa: the nightly work completes (close, accrual, recovery for every employer)",
                string.Create(CultureInfo.InvariantCulture,
                    $"{elapsed:0.0} s; {outcome.Closed:N0}/{o.EwaEmployers:N0} closed, {outcome.Accrued:N0}/{employees:N0} accrued, {outcome.Recovered:N0}/{o.EwaEmployers:N0} recovered; PostgreSQL {during.PostgresCores:0.00} of {during.Cores} cores meanwhile (alone {aloneCpu:0.00})"),
                work.Done && work.Dead == 0 && outcome.Closed == o.EwaEmployers && outcome.Accrued == employees && outcome.Recovered == o.EwaEmployers),
        ];
    }

    /// <summary>Employers, accounts, floats and rosters through the API; the ended cycle's withdrawals as described in the
    /// remarks. Returns the ended cycle's id (its payday).</summary>
    static async Task<string> SetUpAsync(HttpClient http, string connectionString, BenchOptions o, string prefix, CancellationToken ct)
    {
        var ids = Enumerable.Range(0, o.EwaEmployers).Select(i => $"{prefix}-er{i:D5}").ToArray();
        string? cycleStart = null;
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = ct };
        await Parallel.ForEachAsync(ids, parallel, async (id, token) =>
        {
            var created = await SendAsync(http, HttpMethod.Post, "/v1/ewa/employers", new JsonObject
            {
                ["id"] = id, ["name"] = "PT " + id, ["time_zone"] = "Asia/Jakarta", ["payday_day"] = 25,
                ["policy"] = new JsonObject { ["fee_flat"] = Fee, ["fee_payer"] = "employee", ["funding"] = "employer_prefunded" },
            }, null, token);
            cycleStart ??= (string)created["current_cycle"]!["start"]!;
            await SendAsync(http, HttpMethod.Post, $"/v1/ewa/employers/{id}/funding", new JsonObject { ["amount"] = Float }, "fund-" + id, token);
            var roster = new StringBuilder("employee_id,name,email,phone,pay_type,pay_rate,start_date,bank_code,bank_account\n");
            for (var j = 0; j < o.EwaEmployees; j++)
                roster.Append(CultureInfo.InvariantCulture, $"E{j:D5},Karyawan {j},,,monthly,{Salary + j * 1_000L},2020-01-01,BCA,{j + 1_000_000:D10}\n");
            using var content = new StringContent(roster.ToString(), Encoding.UTF8, "text/csv");
            using var r = await http.PostAsync($"/v1/ewa/employers/{id}/employees/import", content, token);
            if ((int)r.StatusCode != 202) throw new InvalidOperationException($"import {id}: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync(token)}");
        });
        Benchmark.Log($"ewa: {ids.Length:N0} employers created and funded; waiting for their roster imports");
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        while (await ScalarAsync(connection, "SELECT count(*) FROM jobs WHERE tenant_id = @t AND type = 'ewa.roster.import' AND state IN (1, 2)",
                   o.Tenant, null, ct) > 0)
            await Task.Delay(1_000, ct);
        var imported = await ScalarAsync(connection, "SELECT count(*) FROM ewa_employees WHERE tenant_id = @t AND employer_id LIKE @p", o.Tenant, prefix + "-%", ct);
        if (imported != (long)ids.Length * o.EwaEmployees) throw new InvalidOperationException($"ewa: {imported} employees imported, expected {ids.Length * o.EwaEmployees}");

        // The cycle that just ended: its payday is the day before the current cycle starts.
        var previous = DateOnly.ParseExact(cycleStart!, "yyyy-MM-dd", CultureInfo.InvariantCulture).AddDays(-1).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        await using (var insert = new NpgsqlCommand("""
            INSERT INTO ewa_employee_cycles (tenant_id, employer_id, employee_id, cycle, withdrawn, advances, employee_fees, withdrawals)
            SELECT tenant_id, employer_id, employee_id, @cycle, @advance + @fee, @advance, @fee, 1 FROM ewa_employees
            WHERE tenant_id = @t AND employer_id LIKE @p AND CAST(substr(employee_id, 2) AS integer) % 10 < @share
            """, connection))
        {
            insert.Parameters.AddWithValue("cycle", previous);
            insert.Parameters.AddWithValue("advance", Advance);
            insert.Parameters.AddWithValue("fee", Fee);
            insert.Parameters.AddWithValue("t", o.Tenant);
            insert.Parameters.AddWithValue("p", prefix + "-%");
            insert.Parameters.AddWithValue("share", WithdrawingPerTen);
            await insert.ExecuteNonQueryAsync(ct);
        }
        var perEmployer = await ScalarAsync(connection, "SELECT count(*) FROM ewa_employee_cycles WHERE tenant_id = @t AND employer_id = @p AND withdrawals = 1",
            o.Tenant, ids[0], ct);
        // The ledger legs those withdrawals posted (docs/ewa.md, "Money map"), one linked batch per employer.
        await Parallel.ForEachAsync(ids, parallel, async (id, token) =>
        {
            var n = perEmployer;
            var transfers = new JsonArray
            {
                Leg($"{id}:seed:advance", $"ewa:{id}:advances", $"ewa:{id}:disbursement", n * Advance, 510),
                Leg($"{id}:seed:fee", $"ewa:{id}:advances", $"ewa:{id}:fees", n * Fee, 511),
                Leg($"{id}:seed:cover", $"ewa:{id}:float", $"ewa:{id}:committed", n * (Advance + Fee), 512),
            };
            var r = await SendAsync(http, HttpMethod.Post, "/v1/transfers/batch", new JsonObject { ["transfers"] = transfers, ["atomic"] = true }, null, token);
            if (r.ToJsonString().Contains("\"failed\"", StringComparison.Ordinal)) throw new InvalidOperationException($"ledger legs of {id}: {r.ToJsonString()}");
        });
        Benchmark.Log(string.Create(CultureInfo.InvariantCulture,
            $"ewa: cycle {previous}: {perEmployer} of {o.EwaEmployees} employees per employer withdrew once, their ledger legs posted"));
        return previous;
    }

    static JsonObject Leg(string id, string debit, string credit, long amount, int code) => new()
    {
        ["id"] = id, ["debit_account"] = debit, ["credit_account"] = credit, ["amount"] = amount, ["code"] = code,
    };

    static async Task<JsonNode> SendAsync(HttpClient http, HttpMethod method, string path, JsonObject body, string? idempotencyKey, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(method, path) { Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json") };
        if (idempotencyKey is not null) request.Headers.Add("Idempotency-Key", idempotencyKey);
        using var response = await http.SendAsync(request, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"{method} {path}: {(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!;
    }

    /// <summary>The tenant's dispatcher job, as <c>JobStore.EnqueueAsync</c> writes it (migration 0300): due now.</summary>
    static async Task<string> EnqueueDispatcherAsync(string connectionString, string tenant, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        var id = "job_benchewa" + Guid.NewGuid().ToString("N")[..16];
        var now = (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).Ticks / 10;
        await using var command = new NpgsqlCommand("""
            INSERT INTO jobs (id, tenant_id, type, job_key, payload, state, attempts, attempts_max, due_at_us, created_at_us, updated_at_us)
            VALUES (@id, @tenant, 'ewa.nightly', @id, '{}', 1, 0, 3, @now, @now, @now)
            """, connection);
        command.Parameters.AddWithValue("id", id);
        command.Parameters.AddWithValue("tenant", tenant);
        command.Parameters.AddWithValue("now", now);
        await command.ExecuteNonQueryAsync(ct);
        return id;
    }

    /// <summary>The nightly work since the dispatcher was enqueued: done when no earned-wage-access job is queued or running.</summary>
    static async Task<Work> WorkAsync(string connectionString, string tenant, string dispatcherId, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand("""
            SELECT (SELECT created_at_us FROM jobs WHERE id = @id),
                   count(*) FILTER (WHERE state IN (1, 2)), count(*) FILTER (WHERE state = 4), max(finished_at_us), count(*)
            FROM jobs WHERE tenant_id = @tenant AND type IN ('ewa.nightly', 'ewa.employer.nightly', 'ewa.cycle.recover')
              AND created_at_us >= (SELECT created_at_us FROM jobs WHERE id = @id)
            """, connection);
        command.Parameters.AddWithValue("id", dispatcherId);
        command.Parameters.AddWithValue("tenant", tenant);
        await using var reader = await command.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        var open = reader.GetInt64(1);
        return new Work(reader.GetInt64(0), open == 0, reader.GetInt64(2), open == 0 && !reader.IsDBNull(3) ? reader.GetInt64(3) : null, reader.GetInt64(4));
    }

    sealed record Work(long CreatedAtUs, bool Done, long Dead, long? FinishedAtUs, long Jobs);

    sealed record Outcome(long Closed, long Deductions, long Accrued, long Recovered);

    static async Task<Outcome> OutcomeAsync(string connectionString, string tenant, string prefix, string cycle, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        var p = prefix + "-%";
        var closed = await ScalarAsync(connection, $"SELECT count(*) FROM ewa_cycles WHERE tenant_id = @t AND employer_id LIKE @p AND cycle = '{cycle}' AND status = 'closed'", tenant, p, ct);
        var deductions = await ScalarAsync(connection, $"SELECT count(*) FROM ewa_deductions WHERE tenant_id = @t AND employer_id LIKE @p AND cycle = '{cycle}'", tenant, p, ct);
        var accrued = await ScalarAsync(connection, $"SELECT count(*) FROM ewa_employee_cycles WHERE tenant_id = @t AND employer_id LIKE @p AND cycle > '{cycle}' AND snapshot_date IS NOT NULL", tenant, p, ct);
        // Recovered: the advances account is back to zero (the recovery credited what the legs debited).
        var recovered = await ScalarAsync(connection,
            "SELECT count(*) FROM accounts WHERE tenant_id = @t AND id LIKE @p AND debits_posted > 0 AND debits_posted = credits_posted", tenant, "ewa:" + prefix + "-%:advances", ct);
        return new Outcome(closed, deductions, accrued, recovered);
    }

    static async Task<long> ScalarAsync(NpgsqlConnection connection, string sql, string tenant, string? pattern, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.AddWithValue("t", tenant);
        if (pattern is not null) command.Parameters.AddWithValue("p", pattern);
        return Convert.ToInt64(await command.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture);
    }
}
