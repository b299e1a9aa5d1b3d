using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using Dapper;
using Neraca.Hosting;
using Neraca.Ledger;
using Neraca.Storage;

namespace Neraca.SplitBill;

// Expenses: create (any split mode, any currency), read, list, edit, delete; every change in the activity log.
public sealed partial class SplitBills
{
    internal sealed class ExpenseRow
    {
        public string group_id { get; set; } = "";
        public string id { get; set; } = "";
        public string description { get; set; } = "";
        public long amount { get; set; }
        public string currency { get; set; } = "";
        public string? exchange_rate { get; set; }
        public long group_amount { get; set; }
        public string expense_date { get; set; } = "";
        public string input { get; set; } = "";
        public string fingerprint { get; set; } = "";
        public string? recurring_id { get; set; }
        public string created_by { get; set; } = "";
        public long created_at_us { get; set; }
        public long updated_at_us { get; set; }
        public long? deleted_at_us { get; set; }
        public int? receipt_status { get; set; }
        public string? receipt_reason { get; set; }
        public string? receipt_upload { get; set; }
        public string? receipt_blob { get; set; }
        public string? receipt_type { get; set; }
        public string? receipt_thumb { get; set; }
        public int? receipt_width { get; set; }
        public int? receipt_height { get; set; }
    }

    internal sealed class ShareRow
    {
        public string expense_id { get; set; } = "";
        public string member_id { get; set; } = "";
        public long paid { get; set; }
        public long owed { get; set; }
    }

    const string ExpenseColumns = """
        group_id, id, description, amount, currency, exchange_rate, group_amount, expense_date, input, fingerprint, recurring_id, created_by,
        created_at_us, updated_at_us, deleted_at_us, receipt_status, receipt_reason, receipt_upload, receipt_blob, receipt_type, receipt_thumb,
        receipt_width, receipt_height
        """;

    internal const int ReceiptProcessing = 1, ReceiptReady = 2, ReceiptRejectedStatus = 3;

    static ExpenseResponse ToResponse(ExpenseRow e, string groupCurrency, IEnumerable<ShareRow> shares)
    {
        var input = JsonSerializer.Deserialize<ExpenseInput>(e.input, Json)!;
        var list = shares.OrderBy(s => s.member_id, StringComparer.Ordinal).ToList();
        var receipt = e.receipt_status is { } status
            ? new ReceiptView(status switch { ReceiptProcessing => "processing", ReceiptReady => "ready", _ => "rejected" }, e.receipt_reason,
                e.receipt_type, e.receipt_width, e.receipt_height)
            : null;
        return new ExpenseResponse(e.id, e.group_id, e.description, e.amount, e.currency, e.exchange_rate, e.group_amount, groupCurrency,
            DateOnly.ParseExact(e.expense_date, "yyyy-MM-dd", CultureInfo.InvariantCulture),
            (input.PaidBy ?? []).Select(p => new MemberAmount(p.Member!, p.Amount!.Value)).ToList(),
            list.Where(s => s.paid != 0).Select(s => new MemberAmount(s.member_id, s.paid)).ToList(),
            list.Select(s => new MemberAmount(s.member_id, s.owed)).ToList(),
            input.Split!, e.recurring_id, receipt, DbTime.FromMicros(e.created_at_us), DbTime.FromMicros(e.updated_at_us),
            e.deleted_at_us is { } d ? DbTime.FromMicros(d) : null);
    }

    async Task<ExpenseRow?> LoadExpenseAsync(DbConnection c, DbTransaction? tx, string tenantId, string groupId, string expenseId, CancellationToken ct) =>
        !Ids.IsValid(expenseId) ? null : await c.QuerySingleOrDefaultAsync<ExpenseRow>(new CommandDefinition(
            $"SELECT {ExpenseColumns} FROM split_expenses WHERE tenant_id = @tenantId AND group_id = @groupId AND id = @expenseId{(tx is null ? "" : dialect.ForUpdate)}",
            new { tenantId, groupId, expenseId }, tx, cancellationToken: ct));

    async Task<ExpenseResponse> ExpenseResponseAsync(DbConnection c, DbTransaction? tx, string tenantId, GroupState g, ExpenseRow e, CancellationToken ct)
    {
        var shares = await c.QueryAsync<ShareRow>(new CommandDefinition(
            "SELECT expense_id, member_id, paid, owed FROM split_shares WHERE tenant_id = @tenantId AND group_id = @groupId AND expense_id = @id",
            new { tenantId, groupId = g.Group.id, e.id }, tx, cancellationToken: ct));
        return ToResponse(e, g.Group.currency, shares);
    }

    static SplitError ExpenseNotFound(string id) => SplitError.NotFound("expense_not_found", $"No expense '{id}' in this group.");

    public async Task<SplitResult<ExpenseResponse>> CreateExpenseAsync(SplitCaller caller, string groupId, ExpenseInput body, CancellationToken ct)
    {
        if (body.Id is null || !Ids.IsValid(body.Id)) return SplitError.Validation("id", "1-64 characters of A-Z a-z 0-9 . _ : -");
        return await WriteAsync(async (c, tx) =>
            await LoadGroupAsync(c, tx, caller, groupId, ct) is { } g
                ? await InsertExpenseAsync(c, tx, caller, g, body, null, ct)
                : GroupNotFound(groupId), ct);
    }

    /// <summary>Fills what the request left to defaults (equal among the members active now, the caller as payer, the
    /// group currency, today), so the stored expense means the same when it is edited after members changed.</summary>
    static ExpenseInput Normalize(ExpenseInput input, GroupState g, DateOnly today)
    {
        static SplitInput? Fill(SplitInput? s, GroupState g) => s switch
        {
            { Mode: "equal", Members: null } => s with { Members = g.ActiveIds.ToArray() },
            { Mode: "itemized", Items: { } items } => s with { Items = items.Select(i => i is null ? null! : i with { Split = Fill(i.Split, g) }).ToArray() },
            _ => s,
        };
        return input with
        {
            Currency = input.Currency ?? g.Group.currency,
            Date = input.Date ?? today,
            PaidBy = input.PaidBy ?? (g.Me is { } me && input.Amount is { } a ? [new PayerInput(me.id, a)] : null),
            Split = Fill(input.Split, g),
        };
    }

    /// <summary>Creates an expense in the group's transaction: the same id again returns the first (the same body) or
    /// 409 <c>expense_exists_with_different_fields</c>.</summary>
    async Task<SplitResult<ExpenseResponse>> InsertExpenseAsync(DbConnection c, DbTransaction tx, SplitCaller caller, GroupState g, ExpenseInput body,
        string? recurringId, CancellationToken ct)
    {
        var fingerprint = Fingerprint(body);
        if (await LoadExpenseAsync(c, tx, caller.TenantId, g.Group.id, body.Id!, ct) is { } existing)
            return existing.fingerprint == fingerprint
                ? SplitResult<ExpenseResponse>.Again(await ExpenseResponseAsync(c, tx, caller.TenantId, g, existing, ct))
                : new SplitError(409, "expense_exists_with_different_fields", $"An expense '{body.Id}' exists with other fields; choose another id.");
        var input = Normalize(body, g, Today);
        var computed = SplitModes.Compute(input, body.Id!, g.Group.currency, g.ActiveIds, g.ExistingIds, g.Me?.id, Today);
        if (computed.Error is not null) return computed.Error;
        var now = NowUs;
        var row = new ExpenseRow
        {
            group_id = g.Group.id, id = body.Id!, fingerprint = fingerprint, recurring_id = recurringId, created_by = caller.Actor,
            created_at_us = now, updated_at_us = now,
        };
        Apply(row, input, computed.Value!);
        await c.ExecuteAsync(new CommandDefinition("""
            INSERT INTO split_expenses (tenant_id, group_id, id, description, amount, currency, exchange_rate, group_amount, expense_date, input, fingerprint,
                recurring_id, created_by, created_at_us, updated_at_us)
            VALUES (@tenant, @group_id, @id, @description, @amount, @currency, @exchange_rate, @group_amount, @expense_date, @input, @fingerprint,
                @recurring_id, @created_by, @created_at_us, @updated_at_us)
            """, new
        {
            tenant = caller.TenantId, row.group_id, row.id, row.description, row.amount, row.currency, row.exchange_rate, row.group_amount, row.expense_date,
            row.input, row.fingerprint, row.recurring_id, row.created_by, row.created_at_us, row.updated_at_us,
        }, tx, cancellationToken: ct));
        var shares = await WriteSharesAsync(c, tx, caller.TenantId, row, computed.Value!, ct);
        var response = ToResponse(row, g.Group.currency, shares);
        await ActivityAsync(c, tx, caller, g.Group.id, "expense", row.id, "created", null, response, ct);
        await EventAsync(c, tx, caller.TenantId, SplitEventTypes.ExpenseCreated, row.id, response, ct);
        return SplitResult<ExpenseResponse>.New(response);
    }

    static void Apply(ExpenseRow row, ExpenseInput input, ComputedExpense computed)
    {
        row.description = computed.Description;
        row.amount = computed.Amount;
        row.currency = computed.Currency;
        row.exchange_rate = computed.ExchangeRate;
        row.group_amount = computed.GroupAmount;
        row.expense_date = computed.Date.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        row.input = JsonSerializer.Serialize(input with
        {
            Id = null, Description = computed.Description, PaidBy = computed.PaidBy.Select(p => new PayerInput(p.Member, p.Amount)).ToArray(),
        }, Json);
    }

    static async Task<List<ShareRow>> WriteSharesAsync(DbConnection c, DbTransaction tx, string tenantId, ExpenseRow row, ComputedExpense computed, CancellationToken ct)
    {
        var shares = computed.Rows.Select(r => new ShareRow { expense_id = row.id, member_id = r.Key, paid = r.Value.Paid, owed = r.Value.Owed }).ToList();
        if (shares.Sum(s => s.paid) != row.group_amount || shares.Sum(s => s.owed) != row.group_amount)
            throw new InvalidOperationException($"Expense {row.id}: paid and owed must each sum to {row.group_amount}.");
        await c.ExecuteAsync(new CommandDefinition(
            "DELETE FROM split_shares WHERE tenant_id = @tenantId AND group_id = @groupId AND expense_id = @id",
            new { tenantId, groupId = row.group_id, row.id }, tx, cancellationToken: ct));
        await c.ExecuteAsync(new CommandDefinition("""
            INSERT INTO split_shares (tenant_id, group_id, expense_id, member_id, paid, owed) VALUES (@tenantId, @groupId, @expense_id, @member_id, @paid, @owed)
            """, shares.Select(s => new { tenantId, groupId = row.group_id, s.expense_id, s.member_id, s.paid, s.owed }), tx, cancellationToken: ct));
        return shares;
    }

    public async Task<SplitResult<ExpenseResponse>> GetExpenseAsync(SplitCaller caller, string groupId, string expenseId, CancellationToken ct) =>
        await ReadAsync(async c =>
        {
            if (await LoadGroupAsync(c, null, caller, groupId, ct) is not { } g) return GroupNotFound(groupId);
            if (await LoadExpenseAsync(c, null, caller.TenantId, groupId, expenseId, ct) is not { } e) return ExpenseNotFound(expenseId);
            return SplitResult<ExpenseResponse>.Ok(await ExpenseResponseAsync(c, null, caller.TenantId, g, e, ct));
        }, ct);

    /// <summary>Expenses oldest first (deleted ones only with <paramref name="includeDeleted"/>); shares of a page in one query.</summary>
    public async Task<SplitResult<Page<ExpenseResponse>>> ListExpensesAsync(SplitCaller caller, string groupId, int? limit, string? after, bool includeDeleted,
        CancellationToken ct)
    {
        if (limit is < 1 or > PageSizeMax) return SplitError.Validation("limit", $"From 1 to {PageSizeMax}.");
        var take = limit ?? 50;
        var (afterUs, afterId) = DecodeTimeCursor(after);
        return await ReadAsync(async c =>
        {
            if (await LoadGroupAsync(c, null, caller, groupId, ct) is not { } g) return GroupNotFound(groupId);
            var rows = (await c.QueryAsync<ExpenseRow>(new CommandDefinition($"""
                SELECT {ExpenseColumns} FROM split_expenses
                WHERE tenant_id = @tenant AND group_id = @groupId AND (created_at_us > @afterUs OR (created_at_us = @afterUs AND id > @afterId))
                  {(includeDeleted ? "" : "AND deleted_at_us IS NULL")}
                ORDER BY created_at_us, id LIMIT @take
                """, new { tenant = caller.TenantId, groupId, afterUs, afterId, take = take + 1 }, cancellationToken: ct))).ToList();
            var more = rows.Count > take;
            if (more) rows.RemoveAt(take);
            var ids = rows.Select(r => r.id).ToArray();
            var shares = (ids.Length == 0 ? [] : await c.QueryAsync<ShareRow>(new CommandDefinition(
                $"SELECT expense_id, member_id, paid, owed FROM split_shares WHERE tenant_id = @tenant AND group_id = @groupId AND {dialect.InList("expense_id", "ids")}",
                new { tenant = caller.TenantId, groupId, ids }, cancellationToken: ct))).ToLookup(s => s.expense_id);
            return SplitResult<Page<ExpenseResponse>>.Ok(new Page<ExpenseResponse>(
                rows.Select(r => ToResponse(r, g.Group.currency, shares[r.id])).ToList(),
                more ? EncodeTimeCursor(rows[^1].created_at_us, rows[^1].id) : null));
        }, ct);
    }

    /// <summary>Changes the fields given (the rest stays); the split is worked out again. Members who became inactive
    /// may stay in an edited expense; members who left may not.</summary>
    public async Task<SplitResult<ExpenseResponse>> UpdateExpenseAsync(SplitCaller caller, string groupId, string expenseId, ExpenseInput body, CancellationToken ct)
    {
        if (body.Id is not null && body.Id != expenseId) return SplitError.Validation("id", "An expense's id cannot change.");
        return await WriteAsync(async (c, tx) =>
        {
            if (await LoadGroupAsync(c, tx, caller, groupId, ct) is not { } g) return GroupNotFound(groupId);
            if (await LoadExpenseAsync(c, tx, caller.TenantId, groupId, expenseId, ct) is not { } row || row.deleted_at_us is not null) return ExpenseNotFound(expenseId);
            var before = await ExpenseResponseAsync(c, tx, caller.TenantId, g, row, ct);
            var old = JsonSerializer.Deserialize<ExpenseInput>(row.input, Json)!;
            var amount = body.Amount ?? row.amount;
            var paidBy = body.PaidBy ?? (old.PaidBy is [{ } single] ? [single with { Amount = amount }] : old.PaidBy);
            var merged = new ExpenseInput(expenseId, body.Description ?? row.description, amount, body.Currency ?? row.currency,
                body.Currency is not null ? body.ExchangeRate : body.ExchangeRate ?? row.exchange_rate, body.Date ?? before.Date, paidBy, body.Split ?? old.Split);
            var input = Normalize(merged, g, Today);
            var computed = SplitModes.Compute(input, expenseId, g.Group.currency, g.ExistingIds.ToList(), g.ExistingIds, g.Me?.id, Today);
            if (computed.Error is not null) return computed.Error;
            Apply(row, input, computed.Value!);
            row.updated_at_us = NowUs;
            await c.ExecuteAsync(new CommandDefinition("""
                UPDATE split_expenses SET description = @description, amount = @amount, currency = @currency, exchange_rate = @exchange_rate,
                    group_amount = @group_amount, expense_date = @expense_date, input = @input, updated_at_us = @updated_at_us
                WHERE tenant_id = @tenant AND group_id = @group_id AND id = @id
                """, new
            {
                tenant = caller.TenantId, row.group_id, row.id, row.description, row.amount, row.currency, row.exchange_rate, row.group_amount,
                row.expense_date, row.input, row.updated_at_us,
            }, tx, cancellationToken: ct));
            var shares = await WriteSharesAsync(c, tx, caller.TenantId, row, computed.Value!, ct);
            var after = ToResponse(row, g.Group.currency, shares);
            await ActivityAsync(c, tx, caller, groupId, "expense", expenseId, "updated", before, after, ct);
            await EventAsync(c, tx, caller.TenantId, SplitEventTypes.ExpenseUpdated, expenseId, after, ct);
            return SplitResult<ExpenseResponse>.Ok(after);
        }, ct);
    }

    /// <summary>Deletes an expense: it leaves the balances and stays readable (with <c>deleted_at</c>) and in the log.</summary>
    public async Task<SplitResult<ExpenseResponse>> DeleteExpenseAsync(SplitCaller caller, string groupId, string expenseId, CancellationToken ct) =>
        await WriteAsync(async (c, tx) =>
        {
            if (await LoadGroupAsync(c, tx, caller, groupId, ct) is not { } g) return GroupNotFound(groupId);
            if (await LoadExpenseAsync(c, tx, caller.TenantId, groupId, expenseId, ct) is not { } row || row.deleted_at_us is not null) return ExpenseNotFound(expenseId);
            var before = await ExpenseResponseAsync(c, tx, caller.TenantId, g, row, ct);
            row.deleted_at_us = NowUs;
            await c.ExecuteAsync(new CommandDefinition(
                "UPDATE split_expenses SET deleted_at_us = @deleted, updated_at_us = @deleted WHERE tenant_id = @tenant AND group_id = @groupId AND id = @expenseId",
                new { tenant = caller.TenantId, groupId, expenseId, deleted = row.deleted_at_us }, tx, cancellationToken: ct));
            var after = before with { DeletedAt = DbTime.FromMicros(row.deleted_at_us.Value) };
            await ActivityAsync(c, tx, caller, groupId, "expense", expenseId, "deleted", before, null, ct);
            await EventAsync(c, tx, caller.TenantId, SplitEventTypes.ExpenseDeleted, expenseId, after, ct);
            return SplitResult<ExpenseResponse>.Ok(after);
        }, ct);

    public async Task<SplitResult<Page<ActivityResponse>>> ListActivityAsync(SplitCaller caller, string groupId, int? limit, string? after, CancellationToken ct)
    {
        if (limit is < 1 or > PageSizeMax) return SplitError.Validation("limit", $"From 1 to {PageSizeMax}.");
        var take = limit ?? 50;
        var afterId = Cursor.Decode(after);
        return await ReadAsync(async c =>
        {
            if (await LoadGroupAsync(c, null, caller, groupId, ct) is null) return GroupNotFound(groupId);
            var rows = (await c.QueryAsync<(string Id, string Target, string TargetId, string Action, string Actor, long AtUs, string? Before, string? After)>(
                new CommandDefinition($"""
                    SELECT id, target, target_id, action, actor, at_us, before_json, after_json FROM split_activity
                    WHERE tenant_id = @tenant AND group_id = @groupId{(afterId is null ? "" : " AND id < @afterId")}
                    ORDER BY id DESC LIMIT @take
                    """, new { tenant = caller.TenantId, groupId, afterId, take = take + 1 }, cancellationToken: ct))).ToList();
            var more = rows.Count > take;
            if (more) rows.RemoveAt(take);
            return SplitResult<Page<ActivityResponse>>.Ok(new Page<ActivityResponse>(
                rows.Select(r => new ActivityResponse(r.Id, r.Target, r.TargetId, r.Action, r.Actor, DbTime.FromMicros(r.AtUs),
                    r.Before is null ? null : JsonElement.Parse(r.Before), r.After is null ? null : JsonElement.Parse(r.After))).ToList(),
                more ? Cursor.Encode(rows[^1].Id) : null));
        }, ct);
    }
}
