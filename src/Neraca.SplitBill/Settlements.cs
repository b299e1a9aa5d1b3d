using System.Data.Common;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dapper;
using Neraca.Jobs;
using Neraca.Ledger;
using Neraca.Storage;

namespace Neraca.SplitBill;

// Settlements: cash (recorded, settled at once) or wallet (a ledger transfer between the members' accounts; settled
// only once the transfer has posted). Payouts of collected money belong to the payouts capability, not here.
public sealed partial class SplitBills
{
    internal const int Pending = 1, Completed = 2, Failed = 3;
    internal const int Cash = 1, Wallet = 2;
    public const string ResumeSettlementJob = "split.settlement.resume";
    static readonly TimeSpan ResumeAfter = TimeSpan.FromSeconds(30);

    internal sealed class SettlementRow
    {
        public string group_id { get; set; } = "";
        public string id { get; set; } = "";
        public string from_member { get; set; } = "";
        public string to_member { get; set; } = "";
        public long amount { get; set; }
        public int method { get; set; }
        public int status { get; set; }
        public string? transfer_id { get; set; }
        public string? failure_code { get; set; }
        public string? failure_detail { get; set; }
        public string fingerprint { get; set; } = "";
        public string created_by { get; set; } = "";
        public string? created_by_subject { get; set; }
        public long created_at_us { get; set; }
        public long? completed_at_us { get; set; }
    }

    const string SettlementColumns = """
        group_id, id, from_member, to_member, amount, method, status, transfer_id, failure_code, failure_detail, fingerprint, created_by,
        created_by_subject, created_at_us, completed_at_us
        """;

    static SettlementResponse ToResponse(SettlementRow s) => new(s.id, s.group_id, s.from_member, s.to_member, s.amount, s.method == Cash ? "cash" : "wallet",
        s.status switch { Pending => "pending", Completed => "completed", _ => "failed" }, s.transfer_id, s.failure_code, s.failure_detail,
        DbTime.FromMicros(s.created_at_us), s.completed_at_us is { } t ? DbTime.FromMicros(t) : null);

    /// <summary>The ledger transfer of a wallet settlement: derived from the group and settlement ids, so a retry finds
    /// the first transfer instead of moving the money twice.</summary>
    public static string TransferIdFor(string groupId, string settlementId) => $"split:{groupId}:{settlementId}";

    async Task<SettlementRow?> LoadSettlementAsync(DbConnection c, DbTransaction? tx, string tenantId, string groupId, string id, CancellationToken ct) =>
        !Ids.IsValid(id) ? null : await c.QuerySingleOrDefaultAsync<SettlementRow>(new CommandDefinition(
            $"SELECT {SettlementColumns} FROM split_settlements WHERE tenant_id = @tenantId AND group_id = @groupId AND id = @id{(tx is null ? "" : dialect.ForUpdate)}",
            new { tenantId, groupId, id }, tx, cancellationToken: ct));

    public async Task<SplitResult<SettlementResponse>> CreateSettlementAsync(SplitCaller caller, string groupId, CreateSettlementRequest body, CancellationToken ct)
    {
        var errors = new FieldErrors();
        if (body.Id is null || !Ids.IsValid(body.Id)) errors.Add("id", "1-64 characters of A-Z a-z 0-9 . _ : -");
        if (string.IsNullOrEmpty(body.From)) errors.Add("from", "Required: the member who pays.");
        if (string.IsNullOrEmpty(body.To)) errors.Add("to", "Required: the member who is paid.");
        else if (body.From == body.To) errors.Add("to", "Must differ from 'from'.");
        if (body.Amount is not { } amount || amount < 1 || amount > SplitModes.AmountMax) errors.Add("amount", $"Required: from 1 to {SplitModes.AmountMax} minor units.");
        if (body.Method is not ("cash" or "wallet")) errors.Add("method", "One of cash, wallet.");
        if (errors.Any) return errors.ToError();
        var method = body.Method == "cash" ? Cash : Wallet;
        var fingerprint = Fingerprint(body);

        var created = await WriteAsync(async (c, tx) =>
        {
            if (await LoadGroupAsync(c, tx, caller, groupId, ct) is not { } g) return GroupNotFound(groupId);
            if (await LoadSettlementAsync(c, tx, caller.TenantId, groupId, body.Id!, ct) is { } existing)
                return existing.fingerprint == fingerprint
                    ? SplitResult<SettlementRow>.Again(existing)
                    : new SplitError(409, "settlement_exists_with_different_fields", $"A settlement '{body.Id}' exists with other fields.");
            if (g.Member(body.From!) is not { } from || from.status == Removed) return MemberError("from", body.From!);
            if (g.Member(body.To!) is not { } to || to.status == Removed) return MemberError("to", body.To!);
            if (caller.IsEndUser && g.Me!.id != from.id && (method == Wallet || g.Me.id != to.id))
                return new SplitError(403, "not_your_settlement", method == Wallet
                    ? "A wallet settlement moves your own money: 'from' must be you."
                    : "You can record a payment you made or received, not one between others.");
            if (method == Wallet && await CheckWalletsAsync(from, to, g.Group.currency, caller, ct) is { } walletError) return walletError;

            var row = new SettlementRow
            {
                group_id = groupId, id = body.Id!, from_member = from.id, to_member = to.id, amount = body.Amount!.Value, method = method,
                status = method == Cash ? Completed : Pending, transfer_id = method == Wallet ? TransferIdFor(groupId, body.Id!) : null,
                fingerprint = fingerprint, created_by = caller.Actor, created_by_subject = caller.Subject, created_at_us = NowUs,
            };
            if (method == Cash) row.completed_at_us = row.created_at_us;
            await c.ExecuteAsync(new CommandDefinition($"""
                INSERT INTO split_settlements (tenant_id, {SettlementColumns})
                VALUES (@tenant, @group_id, @id, @from_member, @to_member, @amount, @method, @status, @transfer_id, @failure_code, @failure_detail, @fingerprint,
                    @created_by, @created_by_subject, @created_at_us, @completed_at_us)
                """, new
            {
                tenant = caller.TenantId, row.group_id, row.id, row.from_member, row.to_member, row.amount, row.method, row.status, row.transfer_id,
                row.failure_code, row.failure_detail, row.fingerprint, row.created_by, row.created_by_subject, row.created_at_us, row.completed_at_us,
            }, tx, cancellationToken: ct));
            var response = ToResponse(row);
            await ActivityAsync(c, tx, caller, groupId, "settlement", row.id, "created", null, response, ct);
            await EventAsync(c, tx, caller.TenantId, SplitEventTypes.SettlementCreated, row.id, response, ct);
            if (method == Cash) await EventAsync(c, tx, caller.TenantId, SplitEventTypes.SettlementCompleted, row.id, response, ct);
            else
                // A backstop in the same transaction: if this process dies before the ledger answers, a worker drives the
                // same transfer id later (it is idempotent) and completes or fails the settlement.
                await jobs.EnqueueAsync(c, tx, new JobRequest(caller.TenantId, ResumeSettlementJob,
                    JsonSerializer.Serialize(new { group = groupId, settlement = row.id }), Key: $"{groupId}:{row.id}",
                    RunAt: time.GetUtcNow() + ResumeAfter), ct);
            return SplitResult<SettlementRow>.New(row);
        }, ct);
        if (created.Error is not null) return created.Error;
        var settlement = created.Value!;
        if (settlement.status == Pending)
        {
            try
            {
                settlement = await DriveWalletAsync(caller.TenantId, settlement, ct);
            }
            catch (Exception e) when (e is Hosting.OverloadedException or DbException or TimeoutException or IOException)
            {
                // Overloaded, a lost connection: the settlement stays pending and the resume job finishes it.
                Log.SettlementPending(logger, groupId, settlement.id, e);
            }
        }
        var result = ToResponse(settlement);
        if (settlement.status == Failed)
            return new SplitError(settlement.failure_code == LedgerCodes.ServerKeyRequired ? 403 : 422, settlement.failure_code!,
                $"The wallet transfer was refused: {settlement.failure_detail}", null,
                new Dictionary<string, object?> { ["settlement"] = result });
        return new SplitResult<SettlementResponse>(result, null, Created: created.Created, Replayed: created.Replayed);
    }

    static SplitError MemberError(string field, string id) =>
        SplitError.Unprocessable("member_not_found", $"'{id}' is not a member of this group.", new Dictionary<string, object?> { ["field"] = field });

    /// <summary>Both members have wallets, in one ledger whose asset is the group's currency.</summary>
    async Task<SplitError?> CheckWalletsAsync(MemberRow from, MemberRow to, string currency, SplitCaller caller, CancellationToken ct)
    {
        foreach (var (m, field) in new[] { (from, "from"), (to, "to") })
            if (m.account is null)
                return SplitError.Unprocessable("member_account_missing", $"Member '{m.id}' has no wallet account: set 'account' on the member, or settle in cash.",
                    new Dictionary<string, object?> { ["field"] = field });
        var a = await ledger.GetAccountAsync(caller.TenantId, from.account!, ct);
        var b = await ledger.GetAccountAsync(caller.TenantId, to.account!, ct);
        if (!a.Succeeded || !b.Succeeded)
            return SplitError.Unprocessable("account_not_found", $"The wallet of member '{(a.Succeeded ? to.id : from.id)}' does not exist in the ledger.");
        if (a.Value!.Ledger != b.Value!.Ledger)
            return SplitError.Unprocessable("currency_mismatch", "The two wallets are in different ledgers.");
        var l = await ledger.GetLedgerAsync(caller.TenantId, a.Value.Ledger, ct);
        if (!l.Succeeded || l.Value!.Asset != currency || l.Value.Scale != Currencies.Scale(currency))
            return SplitError.Unprocessable("currency_mismatch", $"The wallets hold {l.Value?.Asset} (scale {l.Value?.Scale}); the group's currency is {currency}.");
        return null;
    }

    /// <summary>Posts (or finds, by its id) the settlement's ledger transfer and records the outcome: completed when the
    /// transfer posted, failed when the ledger refused it. A settlement made by an end user moves money as that end
    /// user sees the ledger, so it can only debit a wallet the user owns.</summary>
    async Task<SettlementRow> DriveWalletAsync(string tenantId, SettlementRow s, CancellationToken ct)
    {
        var members = await ReadAsync(async c => (await c.QueryAsync<(string Id, string? Account)>(new CommandDefinition(
            "SELECT id, account FROM split_members WHERE tenant_id = @tenantId AND group_id = @groupId AND (id = @from OR id = @to)",
            new { tenantId, groupId = s.group_id, from = s.from_member, to = s.to_member }, cancellationToken: ct))).ToDictionary(x => x.Id, x => x.Account), ct);
        var view = s.created_by_subject is { } subject ? ledger.For(subject) : ledger;
        var r = await view.CreateTransferAsync(tenantId, new CreateTransferRequest(
            Id: s.transfer_id, DebitAccount: members.GetValueOrDefault(s.from_member), CreditAccount: members.GetValueOrDefault(s.to_member), Amount: s.amount,
            Description: "Split bill settle-up",
            Metadata: new JsonObject { ["split_group"] = s.group_id, ["split_settlement"] = s.id }), ct);
        var outcome = await WriteAsync(async (c, tx) =>
        {
            var row = await LoadSettlementAsync(c, tx, tenantId, s.group_id, s.id, ct);
            if (row is null || row.status != Pending) return SplitResult<SettlementRow>.Ok(row ?? s);
            if (r.Succeeded)
            {
                row.status = Completed;
                row.completed_at_us = NowUs;
            }
            else
            {
                row.status = Failed;
                row.failure_code = r.Error!.Code;
                row.failure_detail = r.Error.Detail ?? r.Error.Code;
            }
            await c.ExecuteAsync(new CommandDefinition("""
                UPDATE split_settlements SET status = @status, completed_at_us = @completed_at_us, failure_code = @failure_code, failure_detail = @failure_detail
                WHERE tenant_id = @tenantId AND group_id = @group_id AND id = @id AND status = 1
                """, new { tenantId, row.group_id, row.id, row.status, row.completed_at_us, row.failure_code, row.failure_detail }, tx, cancellationToken: ct));
            var system = new SplitCaller(tenantId, null, row.created_by);
            var response = ToResponse(row);
            await ActivityAsync(c, tx, system, row.group_id, "settlement", row.id, row.status == Completed ? "completed" : "failed", null, response, ct);
            await EventAsync(c, tx, tenantId, row.status == Completed ? SplitEventTypes.SettlementCompleted : SplitEventTypes.SettlementFailed, row.id, response, ct);
            return SplitResult<SettlementRow>.Ok(row);
        }, ct);
        return outcome.Value!;
    }

    /// <summary>The resume job's step: drives a settlement still pending (no-op otherwise).</summary>
    internal async Task ResumeSettlementAsync(string tenantId, string groupId, string settlementId, CancellationToken ct)
    {
        var row = await ReadAsync(c => LoadSettlementAsync(c, null, tenantId, groupId, settlementId, ct), ct);
        if (row is { status: Pending }) await DriveWalletAsync(tenantId, row, ct);
    }

    public async Task<SplitResult<SettlementResponse>> GetSettlementAsync(SplitCaller caller, string groupId, string id, CancellationToken ct) =>
        await ReadAsync(async c =>
        {
            if (await LoadGroupAsync(c, null, caller, groupId, ct) is null) return GroupNotFound(groupId);
            return await LoadSettlementAsync(c, null, caller.TenantId, groupId, id, ct) is { } s
                ? SplitResult<SettlementResponse>.Ok(ToResponse(s))
                : SplitError.NotFound("settlement_not_found", $"No settlement '{id}' in this group.");
        }, ct);

    public async Task<SplitResult<Page<SettlementResponse>>> ListSettlementsAsync(SplitCaller caller, string groupId, int? limit, string? after, CancellationToken ct)
    {
        if (limit is < 1 or > PageSizeMax) return SplitError.Validation("limit", $"From 1 to {PageSizeMax}.");
        var take = limit ?? 50;
        var (afterUs, afterId) = DecodeTimeCursor(after);
        return await ReadAsync(async c =>
        {
            if (await LoadGroupAsync(c, null, caller, groupId, ct) is null) return GroupNotFound(groupId);
            var rows = (await c.QueryAsync<SettlementRow>(new CommandDefinition($"""
                SELECT {SettlementColumns} FROM split_settlements
                WHERE tenant_id = @tenant AND group_id = @groupId AND (created_at_us > @afterUs OR (created_at_us = @afterUs AND id > @afterId))
                ORDER BY created_at_us, id LIMIT @take
                """, new { tenant = caller.TenantId, groupId, afterUs, afterId, take = take + 1 }, cancellationToken: ct))).ToList();
            var more = rows.Count > take;
            if (more) rows.RemoveAt(take);
            return SplitResult<Page<SettlementResponse>>.Ok(new Page<SettlementResponse>(rows.Select(ToResponse).ToList(),
                more ? EncodeTimeCursor(rows[^1].created_at_us, rows[^1].id) : null));
        }, ct);
    }
}

/// <summary>Finishes wallet settlements whose first attempt did not hear back from the ledger.</summary>
// SplitBills is resolved when the job runs: it enqueues jobs itself, and the job store is built from every handler.
public sealed class ResumeSettlementJob(IServiceProvider services) : IJobHandler
{
    SplitBills Splits => services.GetRequiredService<SplitBills>();

    public string Type => SplitBills.ResumeSettlementJob;

    public JobTypeDefaults Defaults => new() { ConcurrencyMax = 4 };

    public async Task ExecuteAsync(JobExecution job, CancellationToken ct)
    {
        using var payload = JsonDocument.Parse(job.Payload);
        var group = payload.RootElement.GetProperty("group").GetString()!;
        var settlement = payload.RootElement.GetProperty("settlement").GetString()!;
        await Splits.ResumeSettlementAsync(job.TenantId, group, settlement, ct);
    }
}
