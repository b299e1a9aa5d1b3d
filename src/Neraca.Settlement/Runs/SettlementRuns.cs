using System.Data.Common;
using System.Text.Json.Nodes;
using Dapper;
using Neraca.Events;
using Neraca.Hosting;
using Neraca.Jobs;
using Neraca.Ledger;
using Neraca.Settlement.Counterparties;
using Neraca.Storage;

namespace Neraca.Settlement.Runs;

public sealed record RunRequest(string? BusinessDate = null, string[]? Counterparties = null);

public sealed record RunItemResponse(string Counterparty, string SettlementAccount, string CashAccount, DateTimeOffset WindowFrom, DateTimeOffset WindowTo,
    long Credits, long Debits, long Count, long Net, string? TransferId);

public sealed record RunResponse(string Id, string BusinessDate, string Status, string Trigger, string? FailureCode, string? FailureDetail,
    IReadOnlyList<RunItemResponse> Items, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

/// <summary>A counterparty's net position on a business date, from the ledger. <c>Net</c> = credits - debits of the
/// settlement account in the date's window (the settlement transfer itself left out); <c>Unsettled</c> is what a
/// settled date gained afterwards (back-dated transfers), 0 otherwise.</summary>
public sealed record PositionResponse(string Counterparty, string BusinessDate, DateTimeOffset WindowFrom, DateTimeOffset WindowTo, long Credits, long Debits,
    long Count, long Net, string Status, string? RunId, long? SettledNet, long Unsettled);

public sealed record PositionsResponse(string BusinessDate, IReadOnlyList<PositionResponse> Data);

/// <summary>Run states. Stored as text: never rename one.</summary>
internal static class RunStatus
{
    public const string Pending = "pending";
    public const string Posted = "posted";
    public const string Failed = "failed";
}

/// <summary>Net positions and settlement runs: one net transfer per counterparty between its settlement and cash
/// accounts, all in one atomic ledger batch, each (business date, counterparty) settled once.</summary>
internal sealed partial class SettlementRuns(Database database, SqlDialect dialect, ILedger ledger, CounterpartyDirectory counterparties, IServiceProvider services,
    SettlementMetrics metrics, TimeProvider clock, ILogger<SettlementRuns> log)
{
    /// <summary>The job store knows every job handler (some of which use this type): resolved when first needed.</summary>
    JobStore Jobs => services.GetRequiredService<JobStore>();

    /// <summary>Ledger transfer code of net settlement transfers.</summary>
    public const int TransferCode = 8801;

    public const string ExecuteJobType = "settlement.execute_run";

    public static string TransferId(string counterparty, DateOnly date) => $"settle:{counterparty}:{Dates.Format(date)}";

    // ---------------- positions ----------------

    public async Task<SettlementResult<PositionsResponse>> PositionsAsync(string tenantId, string? businessDate, string? counterparty, CancellationToken ct)
    {
        if (Dates.Parse(businessDate) is not { } date) return SettlementError.Invalid("business_date", "Required: yyyy-MM-dd.");
        var all = await counterparties.AllAsync(tenantId, ct);
        if (counterparty is not null)
        {
            all = all.Where(c => c.Id == counterparty).ToList();
            if (all.Count == 0) return SettlementError.NotFound(SettlementCodes.CounterpartyNotFound, $"No counterparty '{counterparty}'.");
        }
        var open = all.Where(c => c.Calendar.IsOpen(date)).ToList();
        var activity = await ActivityAsync(tenantId, open, date, ct);
        var settled = await SettledItemsAsync(tenantId, date, open.Select(c => c.Id).ToArray(), ct);
        var data = new List<PositionResponse>(open.Count);
        foreach (var c in open)
        {
            var (from, to, credits, debits, count) = activity[c.Id];
            if (settled.TryGetValue(c.Id, out var item) && item.transfer_id is not null && item.status == RunStatus.Posted)
            {
                // The settlement transfer lies inside the window (just before the cut-off): leave it out of the position.
                if (item.net > 0) debits = checked(debits - item.net); else credits = checked(credits + item.net);
                count--;
            }
            var net = checked(credits - debits);
            var status = item is null ? "open" : item.status == RunStatus.Posted ? "settled" : "settling";
            data.Add(new PositionResponse(c.Id, Dates.Format(date), from, to, credits, debits, count, net, status, item?.run_id, item?.net,
                item?.status == RunStatus.Posted ? checked(net - item.net) : 0));
        }
        return SettlementResult<PositionsResponse>.Ok(new PositionsResponse(Dates.Format(date), data));
    }

    /// <summary>The day's activity on each counterparty's settlement account: one set-based ledger query per distinct window
    /// (counterparties with the same zone, cut-off and calendar share one).</summary>
    async Task<Dictionary<string, (DateTimeOffset From, DateTimeOffset To, long Credits, long Debits, long Count)>> ActivityAsync(string tenantId,
        IReadOnlyList<Counterparty> list, DateOnly date, CancellationToken ct)
    {
        var result = new Dictionary<string, (DateTimeOffset, DateTimeOffset, long, long, long)>(StringComparer.Ordinal);
        foreach (var group in list.GroupBy(c => c.Calendar.Window(date)))
        {
            foreach (var chunk in group.Chunk(AccountActivityQuery.AccountsMax))
            {
                var r = await ledger.GetAccountActivityAsync(tenantId, new AccountActivityQuery(chunk.Select(c => c.SettlementAccount).ToArray(), group.Key.From, group.Key.To), ct);
                if (!r.Succeeded) throw new InvalidOperationException($"account activity failed: {r.Error!.Code} {r.Error.Detail}");
                var byAccount = r.Value!.ToDictionary(a => a.Account, StringComparer.Ordinal);
                foreach (var c in chunk)
                {
                    var a = byAccount[c.SettlementAccount];
                    result[c.Id] = (group.Key.From, group.Key.To, a.Credits, a.Debits, checked(a.CreditCount + a.DebitCount));
                }
            }
        }
        return result;
    }

    async Task<Dictionary<string, ItemRow>> SettledItemsAsync(string tenantId, DateOnly date, string[] ids, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return (await ItemsForDateAsync(connection, null, tenantId, Dates.Format(date), ids, ct)).ToDictionary(i => i.counterparty_id, StringComparer.Ordinal);
    }

    async Task<List<ItemRow>> ItemsForDateAsync(DbConnection connection, DbTransaction? tx, string tenantId, string date, string[] ids, CancellationToken ct) =>
        (await connection.QueryAsync<ItemRow>(new CommandDefinition($"""
            SELECT {ItemColumns} FROM settlement_run_items
            WHERE tenant_id = @tenantId AND business_date = @date AND status <> 'failed' AND {dialect.InIdList("counterparty_id", "ids")}
            """, new { tenantId, date, ids = dialect.IdListValue(ids) }, tx, cancellationToken: ct))).ToList();

    // ---------------- runs ----------------

    /// <summary>Creates and executes a run. The dates already settled answer the run that settled them (200) when the
    /// request names exactly that run's counterparties, else 409 <c>settlement_already_run</c>; without a list, every
    /// counterparty open on the date and not yet settled is in the run.</summary>
    public async Task<SettlementResult<RunResponse>> CreateAsync(string tenantId, RunRequest body, string trigger, CancellationToken ct)
    {
        var v = new FieldErrors();
        var date = Dates.Parse(body.BusinessDate);
        if (date is null) v.Add("business_date", "Required: yyyy-MM-dd.");
        if (body.Counterparties is { } named && (named.Length is 0 or > SettlementOptions.RunCounterpartiesMax || named.Any(n => !Ids.IsValid(n))))
            v.Add("counterparties", $"1 to {SettlementOptions.RunCounterpartiesMax} counterparty ids (omit for all).");
        if (!v.Ok) return v.ToError();
        var d = date!.Value;
        var all = await counterparties.AllAsync(tenantId, ct);
        List<Counterparty> chosen;
        if (body.Counterparties is { } names)
        {
            var byId = all.ToDictionary(c => c.Id, StringComparer.Ordinal);
            chosen = [];
            foreach (var n in names.Distinct(StringComparer.Ordinal))
            {
                if (!byId.TryGetValue(n, out var c)) return SettlementError.Unprocessable(SettlementCodes.CounterpartyNotFound, $"No counterparty '{n}'.",
                    new Dictionary<string, object?> { ["counterparty"] = n });
                chosen.Add(c);
            }
            if (chosen.FirstOrDefault(c => !c.Calendar.IsOpen(d)) is { } closed)
                return NotBusinessDate(closed.Id, d, $"{Dates.Format(d)} is a closed day of counterparty '{closed.Id}'.");
        }
        else
        {
            chosen = all.Where(c => c.Calendar.IsOpen(d)).ToList();
            if (chosen.Count > SettlementOptions.RunCounterpartiesMax) chosen = chosen.Take(SettlementOptions.RunCounterpartiesMax).ToList();
        }
        var now = clock.GetUtcNow();
        if (chosen.FirstOrDefault(c => c.Calendar.Window(d).From > now) is { } early)
            return NotBusinessDate(early.Id, d, $"Business date {Dates.Format(d)} of counterparty '{early.Id}' has not begun.");

        var existing = await SettledItemsAsync(tenantId, d, chosen.Select(c => c.Id).ToArray(), ct);
        if (body.Counterparties is null) chosen = chosen.Where(c => !existing.ContainsKey(c.Id)).ToList();
        if (existing.Count > 0 && (body.Counterparties is not null || chosen.Count == 0)) return await AlreadyAsync(tenantId, existing.Values.ToList(), body.Counterparties, ct);
        if (chosen.Count == 0) return SettlementError.Unprocessable(SettlementCodes.NothingToSettle, $"No counterparty is open on {Dates.Format(d)}.");

        var activity = await ActivityAsync(tenantId, chosen, d, ct);
        var runId = "run_" + Ids.NewUlid();
        var nowUs = DbTime.ToMicros(now);
        var items = chosen.Select(c =>
        {
            var (from, to, credits, debits, count) = activity[c.Id];
            var net = checked(credits - debits);
            return new ItemRow
            {
                run_id = runId, counterparty_id = c.Id, business_date = Dates.Format(d), settlement_account = c.SettlementAccount, cash_account = c.CashAccount,
                window_from_us = DbTime.ToMicros(from), window_to_us = DbTime.ToMicros(to), credits = credits, debits = debits, entry_count = count, net = net,
                transfer_id = net == 0 ? null : TransferId(c.Id, d), status = RunStatus.Pending,
            };
        }).ToList();
        var run = new RunRow { id = runId, business_date = Dates.Format(d), status = RunStatus.Pending, triggered_by = trigger, created_at_us = nowUs, updated_at_us = nowUs };

        await using (var connection = await database.OpenAsync(ct))
        {
            try
            {
                await using var tx = await dialect.BeginWriteAsync(connection, ct);
                await connection.ExecuteAsync(new CommandDefinition("""
                    INSERT INTO settlement_runs (tenant_id, id, business_date, status, triggered_by, created_at_us, updated_at_us)
                    VALUES (@tenantId, @id, @business_date, @status, @triggered_by, @created_at_us, @updated_at_us)
                    """, new { tenantId, run.id, run.business_date, run.status, run.triggered_by, run.created_at_us, run.updated_at_us }, tx, cancellationToken: ct));
                await connection.ExecuteAsync(new CommandDefinition($"""
                    INSERT INTO settlement_run_items (tenant_id, {ItemColumns})
                    VALUES (@tenantId, @run_id, @counterparty_id, @business_date, @settlement_account, @cash_account, @window_from_us, @window_to_us,
                            @credits, @debits, @entry_count, @net, @transfer_id, @status)
                    """, items.Select(i => new
                    {
                        tenantId, i.run_id, i.counterparty_id, i.business_date, i.settlement_account, i.cash_account, i.window_from_us, i.window_to_us,
                        i.credits, i.debits, i.entry_count, i.net, i.transfer_id, i.status,
                    }), tx, cancellationToken: ct));
                await EventLog.AppendAsync(connection, tx, tenantId, null,
                    new NewEvent(SettlementEventTypes.RunCreated, runId, SettlementJson.Serialize(ToResponse(run, items))), nowUs, ct);
                // The run completes even if this process dies before posting it: the job re-executes a run left pending.
                await Jobs.EnqueueAsync(connection, tx, new JobRequest(tenantId, ExecuteJobType, SettlementJson.Serialize(new RunJobPayload(runId)), Key: runId,
                    RunAt: now.AddMinutes(1)), ct);
                await tx.CommitAsync(ct);
            }
            catch (DbException e) when (Database.IsUniqueViolation(e))
            {
                // Another run took one of these dates between the check and the insert.
                var taken = await ItemsForDateAsync(connection, null, tenantId, Dates.Format(d), chosen.Select(c => c.Id).ToArray(), ct);
                return await AlreadyAsync(tenantId, taken, body.Counterparties, ct);
            }
        }
        var executed = await ExecuteAsync(tenantId, runId, ct);
        return SettlementResult<RunResponse>.New(executed!);
    }

    static SettlementError NotBusinessDate(string counterparty, DateOnly date, string detail) =>
        SettlementError.Unprocessable(SettlementCodes.NotABusinessDate, detail,
            new Dictionary<string, object?> { ["counterparty"] = counterparty, ["business_date"] = Dates.Format(date) });

    async Task<SettlementResult<RunResponse>> AlreadyAsync(string tenantId, List<ItemRow> taken, string[]? requested, CancellationToken ct)
    {
        var runIds = taken.Select(t => t.run_id).Distinct(StringComparer.Ordinal).ToList();
        if (runIds.Count == 1 && await GetAsync(tenantId, runIds[0], ct) is { } run
            && (requested is null ? taken.Count == run.Items.Count : run.Items.Select(i => i.Counterparty).ToHashSet(StringComparer.Ordinal).SetEquals(requested)))
            return SettlementResult<RunResponse>.Again(run);
        return SettlementError.Conflict(SettlementCodes.AlreadySettled,
            $"Business date {taken[0].business_date} was settled before for {string.Join(", ", taken.Select(t => t.counterparty_id).Order(StringComparer.Ordinal))}.",
            new Dictionary<string, object?> { ["runs"] = runIds, ["counterparties"] = taken.Select(t => t.counterparty_id).Order(StringComparer.Ordinal).ToArray() });
    }

    /// <summary>Posts a pending run's net transfers in one atomic ledger batch and records the outcome. Safe to repeat:
    /// transfer ids are derived from (counterparty, date), so a second attempt finds what the first posted; a run that is
    /// no longer pending is returned as it is.</summary>
    public async Task<RunResponse?> ExecuteAsync(string tenantId, string runId, CancellationToken ct)
    {
        if (await LoadAsync(tenantId, runId, ct) is not var (run, items)) return null;
        if (run.status != RunStatus.Pending) return ToResponse(run, items);
        var transfers = items.Where(i => i.transfer_id is not null).Select(i => new CreateTransferRequest(
            Id: i.transfer_id, DebitAccount: i.net > 0 ? i.settlement_account : i.cash_account, CreditAccount: i.net > 0 ? i.cash_account : i.settlement_account,
            Amount: Math.Abs(i.net), Code: TransferCode, Description: $"Settlement {i.counterparty_id} {i.business_date}",
            Metadata: new JsonObject { ["counterparty"] = i.counterparty_id, ["business_date"] = i.business_date, ["reference"] = i.transfer_id },
            // Inside the business date's window, just before its cut-off: the net belongs to the day it settles.
            EffectiveAt: DbTime.FromMicros(i.window_to_us - 1))).ToArray();
        string status = RunStatus.Posted;
        string? code = null, detail = null;
        if (transfers.Length > 0)
        {
            var r = await ledger.CreateBatchAsync(tenantId, new BatchRequest(transfers, Atomic: true), ct);
            if (!r.Succeeded) (status, code, detail) = (RunStatus.Failed, r.Error!.Code, r.Error.Detail);
            else if (r.Value!.Results.Where(x => x.Status == "failed").ToList() is { Count: > 0 } failed)
            {
                var cause = failed.FirstOrDefault(x => x.Code != LedgerCodes.LinkedEventFailed) ?? failed[0];
                (status, code, detail) = (RunStatus.Failed, cause.Code, $"{items.Where(i => i.transfer_id is not null).ElementAt(cause.Index).counterparty_id}: {cause.Detail}");
            }
        }
        var nowUs = DbTime.ToMicros(clock.GetUtcNow());
        bool changed;
        await using (var connection = await database.OpenAsync(ct))
        {
            await using var tx = await dialect.BeginWriteAsync(connection, ct);
            changed = await connection.ExecuteAsync(new CommandDefinition("""
                UPDATE settlement_runs SET status = @status, failure_code = @code, failure_detail = @detail, updated_at_us = @nowUs
                WHERE tenant_id = @tenantId AND id = @runId AND status = 'pending'
                """, new { tenantId, runId, status, code, detail, nowUs }, tx, cancellationToken: ct)) == 1;
            if (changed)
            {
                await connection.ExecuteAsync(new CommandDefinition(
                    "UPDATE settlement_run_items SET status = @status WHERE tenant_id = @tenantId AND run_id = @runId",
                    new { tenantId, runId, status }, tx, cancellationToken: ct));
                run.status = status;
                run.failure_code = code;
                run.failure_detail = detail;
                run.updated_at_us = nowUs;
                foreach (var i in items) i.status = status;
                await EventLog.AppendAsync(connection, tx, tenantId, null, new NewEvent(status == RunStatus.Posted ? SettlementEventTypes.RunPosted : SettlementEventTypes.RunFailed,
                    runId, SettlementJson.Serialize(ToResponse(run, items))), nowUs, ct);
            }
            await tx.CommitAsync(ct);
        }
        if (!changed) return await GetAsync(tenantId, runId, ct);
        metrics.RunFinished(status);
        if (status == RunStatus.Failed) LogRunFailed(tenantId, runId, code ?? "", detail ?? "");
        return ToResponse(run, items);
    }

    public async Task<RunResponse?> GetAsync(string tenantId, string runId, CancellationToken ct) =>
        await LoadAsync(tenantId, runId, ct) is var (run, items) ? ToResponse(run, items) : null;

    public async Task<SettlementResult<Page<RunResponse>>> ListAsync(string tenantId, string? businessDate, int? limit, string? after, CancellationToken ct)
    {
        if (Paging.Limit(limit) is not { } take) return Paging.LimitProblem();
        if (businessDate is not null && Dates.Parse(businessDate) is null) return SettlementError.Invalid("business_date", "yyyy-MM-dd.");
        var afterId = Cursor.Decode(after);
        await using var connection = await database.OpenReadAsync(ct);
        var runs = (await connection.QueryAsync<RunRow>(new CommandDefinition($"""
            SELECT {RunColumns} FROM settlement_runs
            WHERE tenant_id = @tenantId AND (@businessDate IS NULL OR business_date = @businessDate) AND (@afterId IS NULL OR id > @afterId)
            ORDER BY id LIMIT @n
            """, new { tenantId, businessDate, afterId, n = take + 1 }, cancellationToken: ct))).ToList();
        var more = runs.Count > take;
        if (more) runs.RemoveAt(runs.Count - 1);
        var ids = runs.Select(r => r.id).ToArray();
        var items = (await connection.QueryAsync<ItemRow>(new CommandDefinition($"""
            SELECT {ItemColumns} FROM settlement_run_items WHERE tenant_id = @tenantId AND {dialect.InIdList("run_id", "ids")} ORDER BY run_id, counterparty_id
            """, new { tenantId, ids = dialect.IdListValue(ids) }, cancellationToken: ct))).ToLookup(i => i.run_id, StringComparer.Ordinal);
        return SettlementResult<Page<RunResponse>>.Ok(new(runs.Select(r => ToResponse(r, items[r.id].ToList())).ToList(), more ? Cursor.Encode(runs[^1].id) : null));
    }

    async Task<(RunRow Run, List<ItemRow> Items)?> LoadAsync(string tenantId, string runId, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var run = await connection.QuerySingleOrDefaultAsync<RunRow>(new CommandDefinition(
            $"SELECT {RunColumns} FROM settlement_runs WHERE tenant_id = @tenantId AND id = @runId", new { tenantId, runId }, cancellationToken: ct));
        if (run is null) return null;
        var items = (await connection.QueryAsync<ItemRow>(new CommandDefinition(
            $"SELECT {ItemColumns} FROM settlement_run_items WHERE tenant_id = @tenantId AND run_id = @runId ORDER BY counterparty_id",
            new { tenantId, runId }, cancellationToken: ct))).ToList();
        return (run, items);
    }

    static RunResponse ToResponse(RunRow r, List<ItemRow> items) => new(r.id, r.business_date, r.status, r.triggered_by, r.failure_code, r.failure_detail,
        items.Select(i => new RunItemResponse(i.counterparty_id, i.settlement_account, i.cash_account, DbTime.FromMicros(i.window_from_us), DbTime.FromMicros(i.window_to_us),
            i.credits, i.debits, i.entry_count, i.net, i.transfer_id)).ToList(), DbTime.FromMicros(r.created_at_us), DbTime.FromMicros(r.updated_at_us));

    [LoggerMessage(Level = LogLevel.Warning, Message = "Settlement run {RunId} of tenant {TenantId} failed: {Code} {Detail}")]
    partial void LogRunFailed(string tenantId, string runId, string code, string detail);

    const string RunColumns = "id, business_date, status, triggered_by, failure_code, failure_detail, created_at_us, updated_at_us";

    const string ItemColumns = "run_id, counterparty_id, business_date, settlement_account, cash_account, window_from_us, window_to_us, credits, debits, entry_count, net, transfer_id, status";

    internal sealed class RunRow
    {
        public string id { get; set; } = "";
        public string business_date { get; set; } = "";
        public string status { get; set; } = "";
        public string triggered_by { get; set; } = "";
        public string? failure_code { get; set; }
        public string? failure_detail { get; set; }
        public long created_at_us { get; set; }
        public long updated_at_us { get; set; }
    }

    internal sealed class ItemRow
    {
        public string run_id { get; set; } = "";
        public string counterparty_id { get; set; } = "";
        public string business_date { get; set; } = "";
        public string settlement_account { get; set; } = "";
        public string cash_account { get; set; } = "";
        public long window_from_us { get; set; }
        public long window_to_us { get; set; }
        public long credits { get; set; }
        public long debits { get; set; }
        public long entry_count { get; set; }
        public long net { get; set; }
        public string? transfer_id { get; set; }
        public string status { get; set; } = "";
    }
}

internal sealed record RunJobPayload(string Run);
