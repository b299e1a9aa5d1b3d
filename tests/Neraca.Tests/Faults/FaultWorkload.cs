using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Ledger;

namespace Neraca.Tests.Faults;

/// <summary>What a client learnt of one write: acknowledged (2xx), refused (a definitive 4xx) or indeterminate (a
/// timeout, a reset, a 5xx: it may or may not have happened).</summary>
public enum Outcome { Acknowledged, Refused, Indeterminate }

/// <summary>One write of the workload with the request that a retry repeats (same id, same Idempotency-Key).</summary>
public sealed class Operation(string kind, string id, string path, JsonObject body, string fault)
{
    public string Kind { get; } = kind;
    public string Id { get; } = id;
    public string Path { get; } = path;
    public JsonObject Body { get; } = body;
    /// <summary>The fault active when the operation started ("none" between faults).</summary>
    public string Fault { get; } = fault;
    public Outcome Outcome { get; set; } = Outcome.Indeterminate;
    public int Attempts { get; set; }
    public bool ResolvedByRetry { get; set; }
    public string? Code { get; set; }
    public JsonNode? Answer { get; set; }
    /// <summary>A two-phase hold's second step, once it was acknowledged: "post" or "void".</summary>
    public string? Resolution { get; set; }
    /// <summary>The hold a post or void belongs to.</summary>
    public Operation? Hold { get; init; }
}

/// <summary>The mixed workload of the fault tests through the balancer: transfers among a few hundred accounts (a few
/// hot ones take a large share), two-phase holds posted or voided, atomic batches, payouts through the sandbox, earned
/// wage withdrawals (paid out through the sandbox too), and reads. Every write carries an id and an Idempotency-Key; an indeterminate answer is retried with both unchanged.</summary>
public sealed class FaultWorkload(FaultTopology topology, string ledger, int clients)
{
    public const int Accounts = 200;
    const int Hot = 4;
    const long Funding = 1_000_000;
    public const string Bank = "bank";
    public const string PayoutSource = "payout-src";
    public const string Employer = "faults-er";
    const int Employees = 20;

    readonly CancellationTokenSource _stop = new();
    Task? _running;
    long _reads, _readFailures;

    public ConcurrentQueue<Operation> Operations { get; } = new();
    public long Reads => Interlocked.Read(ref _reads);
    public long ReadFailures => Interlocked.Read(ref _readFailures);

    /// <summary>The fault being injected; operations are attributed to it.</summary>
    public string CurrentFault { get; set; } = "none";

    public static string Account(int i) => $"acct-{i}";

    /// <summary>How the operations ended so far, by kind and answer (for failure messages).</summary>
    public string Summary() => string.Join(", ", Operations.GroupBy(o => $"{o.Kind} {o.Outcome} {o.Code}").OrderByDescending(g => g.Count()).Take(12)
        .Select(g => $"{g.Key}: {g.Count()}"));

    /// <summary>Accounts and their funding. Every tenth account may not go below zero, so some transfers are refused.</summary>
    public async Task SetUpAsync()
    {
        using var http = topology.Client();
        var l = new LedgerClient(http);
        await l.LedgerAsync(ledger);
        await l.AccountAsync(Bank, ledger, normal: "debit");
        await l.AccountAsync(PayoutSource, ledger, flags: ["debits_must_not_exceed_credits"]);
        Assert.Equal(HttpStatusCode.Created, (await l.TransferAsync("fund-payouts", Bank, PayoutSource, 10_000_000_000)).Response.StatusCode);
        for (var i = 0; i < Accounts; i++)
        {
            await l.AccountAsync(Account(i), ledger, flags: i % 10 == 9 ? ["debits_must_not_exceed_credits"] : null);
            Assert.Equal(HttpStatusCode.Created, (await l.TransferAsync($"fund-{i}", Bank, Account(i), i % 10 == 9 ? 1_000 : Funding)).Response.StatusCode);
        }

        // An employer whose salaried staff (started long ago) may draw on what they have earned this cycle; on some
        // days of the month (before the first payday-cycle business day ends) there is nothing earned yet and every
        // withdrawal is refused, which the checker handles like any refusal.
        var er = await http.PostJsonAsync("/v1/ewa/employers", new
        {
            id = Employer, name = "PT Uji Gangguan", payday_day = 25,
            policy = new { withdrawal_min = 10_000, withdrawal_max = 1_000_000, withdrawals_per_cycle_max = 100, fee_flat = 1_000, blackout_days = 0 },
        });
        Assert.True(er.Response.StatusCode == HttpStatusCode.Created, er.Body?.ToJsonString());
        var fund = await http.PostJsonAsync($"/v1/ewa/employers/{Employer}/funding", new { amount = 10_000_000_000 }, idempotencyKey: "fund-" + Employer);
        Assert.True(fund.Response.IsSuccessStatusCode, fund.Body?.ToJsonString());
        var roster = "employee_id,name,email,phone,pay_type,pay_rate,start_date,bank_code,bank_account\n" + string.Concat(Enumerable.Range(0, Employees)
            .Select(i => $"e{i},Karyawan {i},e{i}@example.com,+62812000{i:D4},monthly,500000000,2025-01-01,BCA,88{i:D8}\n"));
        var import = await http.PostRawAsync($"/v1/ewa/employers/{Employer}/employees/import", roster, "text/csv");
        Assert.True(import.Response.StatusCode == HttpStatusCode.Accepted, import.Body?.ToJsonString());
        await Polling.Eventually(() => http.GetJsonAsync($"/v1/ewa/employers/{Employer}/imports/{import.Body!["id"]}"),
            x => (string?)x.Body?["status"] == "completed", "the roster import completes");
    }

    public void Start() => _running = Task.WhenAll(Enumerable.Range(0, clients).Select(RunAsync));

    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await _running!;
    }

    static int PickAccount(Random random) => random.Next(10) < 3 ? random.Next(Hot) : random.Next(Accounts);

    async Task RunAsync(int client)
    {
        var random = new Random(client * 7919 + Environment.TickCount);
        using var http = topology.Client();
        http.Timeout = TimeSpan.FromSeconds(10);
        for (var n = 0; !_stop.IsCancellationRequested; n++)
        {
            var id = $"c{client}-{n}";
            var roll = random.Next(100);
            if (roll < 50) await TransferAsync(http, random, id);
            else if (roll < 65) await HoldAsync(http, random, id);
            else if (roll < 78) await BatchAsync(http, random, id);
            else if (roll < 83) await PayoutAsync(http, random, id);
            else if (roll < 86) await WithdrawAsync(http, random, id);
            else await ReadAsync(http, random);
        }
    }

    JsonObject Transfer(Random random, string id, bool pending = false)
    {
        var from = PickAccount(random);
        var to = PickAccount(random);
        if (to == from) to = (from + 1) % Accounts;
        var body = new JsonObject { ["id"] = id, ["debit_account"] = Account(from), ["credit_account"] = Account(to), ["amount"] = (long)(1 + random.Next(2_000)) };
        if (pending) { body["pending"] = true; body["timeout_seconds"] = 3600; }
        return body;
    }

    Task TransferAsync(HttpClient http, Random random, string id) => SubmitAsync(http, new Operation("transfer", id, "/v1/transfers", Transfer(random, id), CurrentFault));

    async Task HoldAsync(HttpClient http, Random random, string id)
    {
        var hold = new Operation("hold", id, "/v1/transfers", Transfer(random, id, pending: true), CurrentFault);
        await SubmitAsync(http, hold);
        if (hold.Outcome != Outcome.Acknowledged) return;
        var post = random.Next(10) < 7;
        var second = new Operation(post ? "hold-post" : "hold-void", $"{id}-{(post ? "post" : "void")}",
            $"/v1/transfers/{id}/{(post ? "post" : "void")}", new JsonObject(), CurrentFault) { Hold = hold };
        await SubmitAsync(http, second);
        if (second.Outcome == Outcome.Acknowledged) hold.Resolution = post ? "post" : "void";
    }

    Task BatchAsync(HttpClient http, Random random, string id)
    {
        var items = new JsonArray();
        for (var k = 0; k < 10; k++) items.Add(Transfer(random, $"{id}-{k}"));
        return SubmitAsync(http, new Operation("batch", id, "/v1/transfers/batch", new JsonObject { ["transfers"] = items, ["atomic"] = true }, CurrentFault));
    }

    Task PayoutAsync(HttpClient http, Random random, string id) => SubmitAsync(http, new Operation("payout", id, "/v1/payouts", new JsonObject
    {
        ["id"] = id, ["source_account"] = PayoutSource, ["amount"] = (long)(10_000 + random.Next(90_000)), ["reference"] = "faults",
        ["destination"] = new JsonObject { ["type"] = "bank", ["code"] = "BCA", ["account_number"] = $"77{random.Next(100_000_000):D8}" },
    }, CurrentFault));

    /// <summary>An employee's earned-wage withdrawal: its id is the server's, so the checker finds it by the answer.</summary>
    Task WithdrawAsync(HttpClient http, Random random, string id) => SubmitAsync(http, new Operation("ewa",
        id, $"/v1/ewa/employers/{Employer}/employees/e{random.Next(Employees)}/withdrawals", new JsonObject { ["amount"] = (long)(10_000 + random.Next(90_000)) }, CurrentFault));

    async Task ReadAsync(HttpClient http, Random random)
    {
        Interlocked.Increment(ref _reads);
        try
        {
            var r = await http.GetAsync(random.Next(2) == 0 ? $"/v1/accounts/{Account(PickAccount(random))}" : $"/v1/accounts/{Account(PickAccount(random))}/entries?limit=20");
            if (!r.IsSuccessStatusCode) Interlocked.Increment(ref _readFailures);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            Interlocked.Increment(ref _readFailures);
        }
    }

    async Task SubmitAsync(HttpClient http, Operation op)
    {
        Operations.Enqueue(op);
        // Three tries now; an operation still indeterminate is retried once the faults are over (ResolveAsync).
        for (var attempt = 0; attempt < 3 && !_stop.IsCancellationRequested; attempt++)
        {
            if (attempt > 0) await Task.Delay(300 * attempt);
            if (await TryAsync(http, op)) return;
        }
    }

    /// <summary>One attempt; false when the answer leaves the outcome open.</summary>
    static async Task<bool> TryAsync(HttpClient http, Operation op)
    {
        op.Attempts++;
        try
        {
            var (response, body) = await http.PostJsonAsync(op.Path, op.Body, idempotencyKey: op.Id);
            var status = (int)response.StatusCode;
            // A problem's code; a transfer's own "code" is a number.
            op.Code = body is JsonObject o && o["code"] is JsonValue v && v.TryGetValue<string>(out var code) ? code : status.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (status is >= 200 and < 300)
            {
                op.ResolvedByRetry = op.Attempts > 1;
                op.Outcome = Outcome.Acknowledged;
                op.Answer = body;
                return true;
            }
            // A key still held by an attempt in flight, throttling and server errors say nothing of the outcome.
            if (status >= 500 || status is 408 or 429 || op.Code == "idempotency_key_in_use") return false;
            op.ResolvedByRetry = op.Attempts > 1;
            op.Outcome = Outcome.Refused;
            op.Answer = body;
            return true;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            op.Code = e.GetType().Name;
            return false;
        }
    }

    /// <summary>After the faults: retries every indeterminate operation (same id, same key) until it is decided or
    /// <paramref name="timeout"/> passes. A hold acknowledged only now has no second step: it stays pending.</summary>
    public async Task ResolveAsync(TimeSpan timeout)
    {
        using var http = topology.Client();
        http.Timeout = TimeSpan.FromSeconds(15);
        var deadline = DateTime.UtcNow + timeout;
        foreach (var op in Operations.Where(o => o.Outcome == Outcome.Indeterminate))
            while (!await TryAsync(http, op) && DateTime.UtcNow < deadline) await Task.Delay(500);
        // A second step whose answer was lost decides the hold's expected state now that it is known.
        foreach (var step in Operations.Where(o => o.Hold is not null && o.Outcome == Outcome.Acknowledged))
            step.Hold!.Resolution ??= step.Kind == "hold-post" ? "post" : "void";
    }
}
