using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Dapper;
using Neraca.Payouts;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Ledger;
using Npgsql;

namespace Neraca.Tests.Faults;

/// <summary>One invariant's verdict: how many things it checked and what it found wrong (with the fault that was
/// active when the operation started, for operation-level invariants).</summary>
public sealed class Verdict(string name)
{
    public string Name { get; } = name;
    public long Checked { get; set; }
    public List<(string Fault, string What)> Violations { get; } = [];
    public void Violation(string fault, string what) => Violations.Add((fault, what));
}

/// <summary>The checks after a fault run, in the spirit of Jepsen's bank and ledger tests: what the clients were told is
/// compared with what the database holds, what the webhook receiver got and what the payout sandbox paid.</summary>
public static partial class BankChecker
{
    [GeneratedRegex(@"^c\d+-\d+(-\d+)?$")]
    private static partial Regex WorkloadId();

    public static async Task<List<Verdict>> CheckAsync(FaultTopology t, FaultWorkload workload, string ledger)
    {
        var tenant = t.Tenant.Id;
        var ops = workload.Operations.ToList();
        await using var db = new NpgsqlConnection(t.Direct);
        await db.OpenAsync();
        var stored = (await db.QueryAsync<(string Id, long Amount)>(
            "SELECT id, amount FROM transfers WHERE tenant_id = @tenant AND ledger_id = (SELECT id FROM ledgers WHERE tenant_id = @tenant AND code = @ledger)",
            new { tenant, ledger })).ToList();
        var storedById = stored.GroupBy(s => s.Id).ToDictionary(g => g.Key, g => g.ToList());
        var verdicts = new List<Verdict>();

        // Acknowledged exactly once with the amount asked; refused not at all; indeterminate at most once.
        var writes = new Verdict("acknowledged transfers exist once; refused ones do not");
        var submitted = new Dictionary<string, string>(StringComparer.Ordinal); // transfer id -> the fault of its operation
        foreach (var op in ops.Where(o => o.Kind is "transfer" or "hold" or "batch"))
        {
            var items = op.Kind == "batch" ? op.Body["transfers"]!.AsArray().Select(i => i!.AsObject()).ToList() : [op.Body];
            var created = op.Kind == "batch" && op.Outcome == Outcome.Acknowledged
                ? op.Answer!["results"]!.AsArray().Select(r => r!["transfer"] is not null).ToList()
                : items.Select(_ => op.Outcome == Outcome.Acknowledged).ToList();
            for (var i = 0; i < items.Count; i++)
            {
                var id = (string)items[i]["id"]!;
                submitted[id] = op.Fault;
                writes.Checked++;
                var rows = storedById.GetValueOrDefault(id) ?? [];
                if (rows.Count > 1) writes.Violation(op.Fault, $"{id} stored {rows.Count} times");
                if (op.Outcome == Outcome.Indeterminate) continue;
                if (created[i] && rows.Count == 0) writes.Violation(op.Fault, $"{id} acknowledged ({op.Kind}) but not stored");
                else if (created[i] && rows[0].Amount != (long)items[i]["amount"]!) writes.Violation(op.Fault, $"{id} stored with {rows[0].Amount}, asked {items[i]["amount"]}");
                else if (!created[i] && rows.Count > 0) writes.Violation(op.Fault, $"{id} refused ({op.Code}) but stored");
            }
        }
        foreach (var s in stored.Where(s => WorkloadId().IsMatch(s.Id) && !submitted.ContainsKey(s.Id)))
            writes.Violation("none", $"{s.Id} stored but never submitted");
        verdicts.Add(writes);

        var unresolved = new Verdict("indeterminate writes are decided by a retry with the same id");
        foreach (var op in ops)
        {
            unresolved.Checked++;
            if (op.Outcome == Outcome.Indeterminate) unresolved.Violation(op.Fault, $"{op.Kind} {op.Id} still {op.Code} after {op.Attempts} attempts");
        }
        verdicts.Add(unresolved);

        // Holds end as their second step said.
        var holds = new Verdict("two-phase holds end posted, voided or pending as acknowledged");
        var statuses = (await db.QueryAsync<(string Id, int Kind)>(
            "SELECT transfer_id, kind FROM transfer_resolutions WHERE tenant_id = @tenant", new { tenant }))
            .ToDictionary(r => r.Id, r => r.Kind);
        var secondSteps = ops.Where(o => o.Hold is not null).ToDictionary(o => o.Hold!);
        foreach (var hold in ops.Where(o => o.Kind == "hold" && o.Outcome == Outcome.Acknowledged))
        {
            if (secondSteps.GetValueOrDefault(hold) is { Outcome: Outcome.Indeterminate }) continue;
            holds.Checked++;
            var resolved = statuses.TryGetValue(hold.Id, out var kind);
            if (hold.Resolution is null && resolved) holds.Violation(hold.Fault, $"{hold.Id} resolved (kind {kind}) though no post or void was acknowledged");
            if (hold.Resolution is not null && !resolved) holds.Violation(hold.Fault, $"{hold.Id}: {hold.Resolution} acknowledged but still pending");
        }
        verdicts.Add(holds);

        var books = new Verdict("per ledger debits = credits; balances = journal");
        books.Checked = await db.ExecuteScalarAsync<long>("SELECT count(*) FROM accounts WHERE tenant_id = @tenant", new { tenant });
        foreach (var v in await Conservation.ViolationsAsync(db, tenant)) books.Violation("none", v);
        verdicts.Add(books);

        using var http = t.Client();
        var chain = new Verdict("the audit chain verifies");
        var audit = await http.GetJsonAsync($"/v1/ledgers/{ledger}/audit");
        chain.Checked = (long?)audit.Body?["links"] ?? 0;
        if (audit.Response.StatusCode != HttpStatusCode.OK || (bool?)audit.Body?["verified"] != true)
            chain.Violation("none", $"audit answered {(int)audit.Response.StatusCode}: {audit.Body?.ToJsonString()}");
        verdicts.Add(chain);

        verdicts.Add(await EventsAsync(t, db, submitted, storedById));
        verdicts.Add(await JobsAsync(db));
        // Withdrawals first: they end with a payout, which the sandbox check then counts too.
        verdicts.Add(await WithdrawalsAsync(t, db, ops));
        verdicts.Add(await PayoutsAsync(t, http, ops));
        return verdicts;
    }

    /// <summary>Every acknowledged transfer has its event, and every transfer event reached the webhook (under its one
    /// id: a receiver deduplicates on it).</summary>
    static async Task<Verdict> EventsAsync(FaultTopology t, NpgsqlConnection db, Dictionary<string, string> submitted, Dictionary<string, List<(string Id, long Amount)>> stored)
    {
        var verdict = new Verdict("every committed transfer's event is delivered to the webhook under one id");
        var events = (await db.QueryAsync<(string Id, string Subject)>(
            "SELECT id, subject FROM events WHERE tenant_id = @tenant AND type LIKE 'transfer.%'", new { tenant = t.Tenant.Id })).ToList();
        var subjects = events.Select(e => e.Subject).ToHashSet(StringComparer.Ordinal);
        foreach (var id in stored.Keys.Where(id => WorkloadId().IsMatch(id) && !subjects.Contains(id)))
            verdict.Violation(submitted.GetValueOrDefault(id, "none"), $"{id} committed without an event");
        var delivered = new HashSet<string>(StringComparer.Ordinal);
        await WaitAsync(() =>
        {
            delivered = t.Webhooks.Accepted.ToHashSet(StringComparer.Ordinal);
            return Task.FromResult(events.All(e => delivered.Contains(e.Id)));
        }, TimeSpan.FromMinutes(3));
        verdict.Checked = events.Count;
        var missing = events.Where(e => !delivered.Contains(e.Id)).ToList();
        if (missing.Count > 0)
        {
            // Why, in one line: the endpoint's state and where its deliveries stand.
            var endpoint = await db.QuerySingleAsync<(short State, int Failures, string? Reason)>(
                "SELECT state, consecutive_failures, disabled_reason FROM webhook_endpoints WHERE tenant_id = @tenant", new { tenant = t.Tenant.Id });
            var states = string.Join(", ", await db.QueryAsync<string>(
                "SELECT state || ': ' || count(*) FROM webhook_deliveries WHERE tenant_id = @tenant GROUP BY state ORDER BY state", new { tenant = t.Tenant.Id }));
            verdict.Violation("none", $"{missing.Count} events never delivered; endpoint state {endpoint.State} (1 enabled, 2 disabled: {endpoint.Reason}), " +
                $"{endpoint.Failures} failures in a row; deliveries by state (1 pending, 2 delivered, 3 dead): {states}");
        }
        foreach (var e in missing)
            verdict.Violation("none", $"event {e.Id} of {e.Subject} never delivered");
        return verdict;
    }

    static async Task<Verdict> JobsAsync(NpgsqlConnection db)
    {
        var verdict = new Verdict("no job slot runs twice");
        verdict.Checked = await db.ExecuteScalarAsync<long>("SELECT count(*) FROM jobs");
        foreach (var (schedule, slot, n) in await db.QueryAsync<(string, long, long)>(
                     "SELECT schedule, slot_us, count(*) FROM jobs WHERE schedule IS NOT NULL GROUP BY tenant_id, schedule, slot_us HAVING count(*) > 1"))
            verdict.Violation("none", $"schedule {schedule} slot {slot} enqueued {n} times");
        foreach (var (job, n) in await db.QueryAsync<(string, long)>(
                     "SELECT job_id, count(*) FROM job_runs WHERE result = 1 GROUP BY tenant_id, job_id HAVING count(*) > 1"))
            verdict.Violation("none", $"job {job} succeeded {n} times");
        return verdict;
    }

    /// <summary>Every payout ends, the sandbox paid each succeeded one exactly once and no failed one, and nothing (a
    /// withdrawal's payout included) twice.</summary>
    static async Task<Verdict> PayoutsAsync(FaultTopology t, HttpClient http, List<Operation> ops)
    {
        var verdict = new Verdict("the sandbox paid each payout at most once (succeeded: once, failed: never)");
        var asked = ops.Where(o => o.Kind == "payout" && o.Outcome == Outcome.Acknowledged).ToList();
        var states = new Dictionary<string, string>(StringComparer.Ordinal);
        await WaitAsync(async () =>
        {
            foreach (var op in asked.Where(o => states.GetValueOrDefault(o.Id) is not ("succeeded" or "failed")))
            {
                var r = await http.GetJsonAsync($"/v1/payouts/{op.Id}");
                if (r.Response.StatusCode == HttpStatusCode.OK) states[op.Id] = (string)r.Body!["status"]!;
            }
            return states.Count(s => s.Value is "succeeded" or "failed") == asked.Count;
        }, TimeSpan.FromMinutes(3));
        var paid = (await t.Sandbox!.PaidAsync()).GroupBy(p => (string)p["external_id"]!).ToDictionary(g => g.Key, g => g.Count());
        foreach (var (key, times) in paid.Where(p => p.Value > 1))
            verdict.Violation("none", $"the sandbox paid {key} {times} times");
        foreach (var op in asked)
        {
            verdict.Checked++;
            var times = paid.GetValueOrDefault(PayoutService.ProviderKey(t.Tenant.Id, op.Id));
            var state = states.GetValueOrDefault(op.Id) ?? "missing";
            if (times > 1) continue; // reported above
            if (state == "succeeded" && times != 1) verdict.Violation(op.Fault, $"payout {op.Id} succeeded but paid {times} times");
            else if (state == "failed" && times != 0) verdict.Violation(op.Fault, $"payout {op.Id} failed but was paid");
            else if (state is not ("succeeded" or "failed")) verdict.Violation(op.Fault, $"payout {op.Id} still {state}");
        }
        foreach (var op in ops.Where(o => o.Kind == "payout" && o.Outcome == Outcome.Refused))
            if ((await http.GetJsonAsync($"/v1/payouts/{op.Id}")).Response.StatusCode != HttpStatusCode.NotFound)
                verdict.Violation(op.Fault, $"payout {op.Id} refused ({op.Code}) but exists");
        return verdict;
    }

    /// <summary>Earned wage withdrawals: each acknowledged one stored once with its amount, no other (so nothing refused
    /// or merely retried made one), and every one ends paid or failed.</summary>
    static async Task<Verdict> WithdrawalsAsync(FaultTopology t, NpgsqlConnection db, List<Operation> ops)
    {
        var verdict = new Verdict("each acknowledged withdrawal exists once and ends paid or failed; nothing else was withdrawn");
        var asked = ops.Where(o => o.Kind == "ewa" && o.Outcome == Outcome.Acknowledged).ToDictionary(o => (string)o.Answer!["id"]!);
        List<(string Id, long Amount, string Status)> stored = [];
        await WaitAsync(async () =>
        {
            stored = (await db.QueryAsync<(string, long, string)>(
                "SELECT id, amount, status FROM ewa_withdrawals WHERE tenant_id = @tenant AND employer_id = @employer",
                new { tenant = t.Tenant.Id, employer = FaultWorkload.Employer })).ToList();
            return stored.All(w => w.Status is "paid" or "failed");
        }, TimeSpan.FromMinutes(3));
        verdict.Checked = ops.Count(o => o.Kind == "ewa");
        foreach (var (id, amount, status) in stored)
        {
            if (!asked.TryGetValue(id, out var op)) verdict.Violation("none", $"withdrawal {id} ({amount}) stored but never acknowledged");
            else if (amount != (long)op.Body["amount"]!) verdict.Violation(op.Fault, $"withdrawal {id} stored with {amount}, asked {op.Body["amount"]}");
            else if (status is not ("paid" or "failed")) verdict.Violation(op.Fault, $"withdrawal {id} still {status}");
        }
        foreach (var (id, op) in asked.Where(a => stored.All(s => s.Id != a.Key)))
            verdict.Violation(op.Fault, $"withdrawal {id} acknowledged but not stored");
        return verdict;
    }

    /// <summary>Waits for a condition, up to a limit; what is still missing then is a violation, not an exception.</summary>
    static async Task WaitAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition() && DateTime.UtcNow < deadline) await Task.Delay(TimeSpan.FromSeconds(1));
    }

    /// <summary>The table of faults x operations the run prints and writes as JSON.</summary>
    public static JsonObject Report(IEnumerable<(string Fault, int Injections)> faults, FaultWorkload workload, List<Verdict> verdicts, TimeSpan duration)
    {
        var ops = workload.Operations.ToList();
        var rows = new JsonArray();
        foreach (var (fault, injections) in faults)
        {
            var mine = ops.Where(o => o.Fault == fault).ToList();
            rows.Add(new JsonObject
            {
                ["fault"] = fault, ["injections"] = injections, ["operations"] = mine.Count,
                ["acknowledged"] = mine.Count(o => o.Outcome == Outcome.Acknowledged), ["refused"] = mine.Count(o => o.Outcome == Outcome.Refused),
                ["indeterminate_at_first"] = mine.Count(o => o.Attempts > 1), ["decided_by_retry"] = mine.Count(o => o.ResolvedByRetry),
                ["violations"] = verdicts.Sum(v => v.Violations.Count(x => x.Fault == fault)),
            });
        }
        return new JsonObject
        {
            ["duration_seconds"] = Math.Round(duration.TotalSeconds),
            ["reads"] = workload.Reads, ["read_failures"] = workload.ReadFailures,
            ["faults"] = rows,
            ["invariants"] = new JsonArray([.. verdicts.Select(v => (JsonNode)new JsonObject
            {
                ["invariant"] = v.Name, ["checked"] = v.Checked, ["violations"] = v.Violations.Count,
                ["examples"] = new JsonArray([.. v.Violations.Take(5).Select(x => (JsonNode)JsonValue.Create($"[{x.Fault}] {x.What}"))]),
            })]),
        };
    }

    public static string Table(JsonObject report)
    {
        var lines = new List<string>
        {
            $"| fault | injections | operations | acknowledged | refused | indeterminate at first | decided by retry | violations |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        };
        lines.AddRange(report["faults"]!.AsArray().Select(r =>
            $"| {r!["fault"]} | {r["injections"]} | {r["operations"]} | {r["acknowledged"]} | {r["refused"]} | {r["indeterminate_at_first"]} | {r["decided_by_retry"]} | {r["violations"]} |"));
        lines.Add("");
        lines.Add("| invariant | checked | violations |");
        lines.Add("|---|---:|---:|");
        lines.AddRange(report["invariants"]!.AsArray().Select(v => $"| {v!["invariant"]} | {v["checked"]} | {v["violations"]} |"));
        lines.Add("");
        lines.Add($"reads: {report["reads"]}, failed reads: {report["read_failures"]}, duration: {report["duration_seconds"]} s, " +
            $"PgBouncer crashes restarted by its supervisor: {report["pgbouncer_crashes"]?.AsArray().Count ?? 0}");
        return string.Join('\n', lines);
    }
}
