using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using Dapper;
using Neraca.Jobs;
using Neraca.Ledger;
using Neraca.Storage;

namespace Neraca.SplitBill;

// Recurring expenses (rent, subscriptions): a template and a frequency; the split.recurring job creates each due
// period's expense exactly once. The expense id is derived from the recurring id and the period, so a job that runs
// twice (or two jobs at once) finds the first expense instead of adding another.
public sealed partial class SplitBills
{
    public const string RecurringJobType = "split.recurring";
    const int Weekly = 1, Monthly = 2;

    internal sealed class RecurringRow
    {
        public string group_id { get; set; } = "";
        public string id { get; set; } = "";
        public int frequency { get; set; }
        public string start_date { get; set; } = "";
        public string? end_date { get; set; }
        public int next_index { get; set; }
        public string next_date { get; set; } = "";
        public string template { get; set; } = "";
        public int active { get; set; }
        public string created_by { get; set; } = "";
        public long created_at_us { get; set; }
    }

    const string RecurringColumns = "group_id, id, frequency, start_date, end_date, next_index, next_date, template, active, created_by, created_at_us";

    static string DateText(DateOnly d) => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    static DateOnly ParseDate(string s) => DateOnly.ParseExact(s, "yyyy-MM-dd", CultureInfo.InvariantCulture);

    /// <summary>The date of period <paramref name="index"/>: weekly adds weeks; monthly adds months to the start date,
    /// keeping its day or the month's last day (31 January, 28/29 February, 31 March).</summary>
    internal static DateOnly PeriodDate(DateOnly start, int frequency, int index) =>
        frequency == Weekly ? start.AddDays(7 * index) : start.AddMonths(index);

    static RecurringResponse ToResponse(RecurringRow r) => new(r.id, r.group_id, r.frequency == Weekly ? "weekly" : "monthly", ParseDate(r.start_date),
        r.end_date is null ? null : ParseDate(r.end_date), r.active == 1 ? ParseDate(r.next_date) : null, r.active == 1,
        JsonSerializer.Deserialize<ExpenseInput>(r.template, Json)!, DbTime.FromMicros(r.created_at_us));

    public async Task<SplitResult<RecurringResponse>> CreateRecurringAsync(SplitCaller caller, string groupId, CreateRecurringRequest body, CancellationToken ct)
    {
        var errors = new FieldErrors();
        if (body.Id is null || !Ids.IsValid(body.Id)) errors.Add("id", "1-64 characters of A-Z a-z 0-9 . _ : -");
        if (body.Frequency is not ("weekly" or "monthly")) errors.Add("frequency", "One of weekly, monthly.");
        if (body.StartDate is null) errors.Add("start_date", "Required: the date of the first period (yyyy-mm-dd).");
        if (body.EndDate is { } end && body.StartDate is { } start && end < start) errors.Add("end_date", "Must not be before start_date.");
        if (body.Expense is null) errors.Add("expense", "Required: the expense to add each period (without id and date).");
        else if (body.Expense.Id is not null || body.Expense.Date is not null) errors.Add("expense", "Leave out id and date: each period gets its own.");
        if (errors.Any) return errors.ToError();
        return await WriteAsync(async (c, tx) =>
        {
            if (await LoadGroupAsync(c, tx, caller, groupId, ct) is not { } g) return GroupNotFound(groupId);
            if (await c.QuerySingleOrDefaultAsync<RecurringRow>(new CommandDefinition(
                    $"SELECT {RecurringColumns} FROM split_recurring WHERE tenant_id = @tenant AND group_id = @groupId AND id = @id",
                    new { tenant = caller.TenantId, groupId, id = body.Id }, tx, cancellationToken: ct)) is { } existing)
                return existing.template == JsonSerializer.Serialize(Normalize(body.Expense!, g, body.StartDate!.Value) with { Date = null }, Json)
                       && existing.start_date == DateText(body.StartDate!.Value)
                    ? SplitResult<RecurringResponse>.Again(ToResponse(existing))
                    : new SplitError(409, "recurring_exists_with_different_fields", $"A recurring expense '{body.Id}' exists with other fields.");
            var template = Normalize(body.Expense!, g, body.StartDate!.Value) with { Date = null };
            // Refuse a template that would fail every period, now rather than in the job.
            var trial = SplitModes.Compute(template with { Date = body.StartDate }, "trial", g.Group.currency, g.ActiveIds, g.ExistingIds, g.Me?.id, Today);
            if (trial.Error is not null)
                return trial.Error with { Errors = trial.Error.Errors?.ToDictionary(x => "expense." + x.Key, x => x.Value) };
            var row = new RecurringRow
            {
                group_id = groupId, id = body.Id!, frequency = body.Frequency == "weekly" ? Weekly : Monthly, start_date = DateText(body.StartDate!.Value),
                end_date = body.EndDate is { } e ? DateText(e) : null, next_index = 0, next_date = DateText(body.StartDate!.Value),
                template = JsonSerializer.Serialize(template, Json), active = 1, created_by = caller.Actor, created_at_us = NowUs,
            };
            await c.ExecuteAsync(new CommandDefinition($"""
                INSERT INTO split_recurring (tenant_id, {RecurringColumns})
                VALUES (@tenant, @group_id, @id, @frequency, @start_date, @end_date, @next_index, @next_date, @template, @active, @created_by, @created_at_us)
                """, new
            {
                tenant = caller.TenantId, row.group_id, row.id, row.frequency, row.start_date, row.end_date, row.next_index, row.next_date, row.template,
                row.active, row.created_by, row.created_at_us,
            }, tx, cancellationToken: ct));
            var response = ToResponse(row);
            await ActivityAsync(c, tx, caller, groupId, "recurring", row.id, "created", null, response, ct);
            // Periods already due (a start date in the past or today) are added now, not at the next scheduled run.
            await jobs.EnqueueAsync(c, tx, new JobRequest(caller.TenantId, RecurringJobType, Key: $"created:{groupId}:{row.id}"), ct);
            return SplitResult<RecurringResponse>.New(response);
        }, ct);
    }

    public async Task<SplitResult<Page<RecurringResponse>>> ListRecurringAsync(SplitCaller caller, string groupId, CancellationToken ct) =>
        await ReadAsync(async c =>
        {
            if (await LoadGroupAsync(c, null, caller, groupId, ct) is null) return GroupNotFound(groupId);
            var rows = await c.QueryAsync<RecurringRow>(new CommandDefinition(
                $"SELECT {RecurringColumns} FROM split_recurring WHERE tenant_id = @tenant AND group_id = @groupId ORDER BY created_at_us, id LIMIT 1000",
                new { tenant = caller.TenantId, groupId }, cancellationToken: ct));
            return SplitResult<Page<RecurringResponse>>.Ok(new Page<RecurringResponse>(rows.Select(ToResponse).ToList(), null));
        }, ct);

    /// <summary>Stops a recurring expense; the expenses it already added stay.</summary>
    public async Task<SplitResult<RecurringResponse>> StopRecurringAsync(SplitCaller caller, string groupId, string id, CancellationToken ct) =>
        await WriteAsync(async (c, tx) =>
        {
            if (await LoadGroupAsync(c, tx, caller, groupId, ct) is null) return GroupNotFound(groupId);
            var row = Ids.IsValid(id) ? await c.QuerySingleOrDefaultAsync<RecurringRow>(new CommandDefinition(
                $"SELECT {RecurringColumns} FROM split_recurring WHERE tenant_id = @tenant AND group_id = @groupId AND id = @id",
                new { tenant = caller.TenantId, groupId, id }, tx, cancellationToken: ct)) : null;
            if (row is null) return SplitError.NotFound("recurring_not_found", $"No recurring expense '{id}' in this group.");
            var before = ToResponse(row);
            row.active = 0;
            await c.ExecuteAsync(new CommandDefinition("UPDATE split_recurring SET active = 0 WHERE tenant_id = @tenant AND group_id = @groupId AND id = @id",
                new { tenant = caller.TenantId, groupId, id }, tx, cancellationToken: ct));
            var after = ToResponse(row);
            await ActivityAsync(c, tx, caller, groupId, "recurring", id, "stopped", before, after, ct);
            return SplitResult<RecurringResponse>.Ok(after);
        }, ct);

    /// <summary>One chunk of the job: for each recurring expense due by <paramref name="today"/>, its next period's
    /// expense and the advance to the period after, in the chunk's transaction. Returns how many periods it handled.</summary>
    internal async Task<int> MaterialiseDueAsync(DbConnection c, DbTransaction tx, string tenantId, DateOnly today, int limit, CancellationToken ct)
    {
        var due = (await c.QueryAsync<RecurringRow>(new CommandDefinition($"""
            SELECT {RecurringColumns} FROM split_recurring WHERE tenant_id = @tenantId AND active = 1 AND next_date <= @today
            ORDER BY next_date, group_id, id LIMIT @limit{dialect.SkipLocked()}
            """, new { tenantId, today = DateText(today), limit }, tx, cancellationToken: ct))).ToList();
        foreach (var r in due)
        {
            var caller = new SplitCaller(tenantId, null, $"recurring:{r.id}");
            var g = (await LoadGroupAsync(c, tx, caller, r.group_id, ct))!;
            var period = ParseDate(r.next_date);
            var input = JsonSerializer.Deserialize<ExpenseInput>(r.template, Json)! with
            {
                Id = DerivedId("rec_", r.group_id, $"{r.id}:{DateText(period)}"), Date = period,
            };
            var created = await InsertExpenseAsync(c, tx, caller, g, input, r.id, ct);
            var next = PeriodDate(ParseDate(r.start_date), r.frequency, r.next_index + 1);
            var active = created.Error is null && (r.end_date is null || next <= ParseDate(r.end_date)) ? 1 : 0;
            if (created.Error is { } error)
            {
                Log.RecurringStopped(logger, r.group_id, r.id, error.Detail ?? error.Code);
                await ActivityAsync(c, tx, caller, r.group_id, "recurring", r.id, "stopped", null, new { reason = error.Detail ?? error.Code, code = error.Code }, ct);
            }
            await c.ExecuteAsync(new CommandDefinition("""
                UPDATE split_recurring SET next_index = @index, next_date = @next, active = @active
                WHERE tenant_id = @tenantId AND group_id = @groupId AND id = @id AND next_index = @current
                """, new { tenantId, groupId = r.group_id, r.id, index = r.next_index + 1, next = DateText(next), active, current = r.next_index }, tx, cancellationToken: ct));
        }
        return due.Count;
    }
}

/// <summary>Adds the expenses of recurring templates whose period has come, per tenant, in chunks.</summary>
// SplitBills is resolved when the job runs: it enqueues jobs itself, and the job store is built from every handler.
public sealed class RecurringExpensesJob(IServiceProvider services) : IJobHandler
{
    SplitBills Splits => services.GetRequiredService<SplitBills>();

    public string Type => SplitBills.RecurringJobType;

    public JobTypeDefaults Defaults => new() { ConcurrencyMax = 2, ChunkSize = 100 };

    public Task ExecuteAsync(JobExecution job, CancellationToken ct) => job.RunChunksAsync(async (chunk, token) =>
    {
        var handled = await Splits.MaterialiseDueAsync(chunk.Connection, chunk.Transaction, chunk.TenantId,
            DateOnly.FromDateTime(chunk.Now.UtcDateTime), chunk.ChunkSize, token);
        // A template behind by several periods comes back in the next chunk; done when nothing is due.
        return new ChunkResult(null, handled, Done: handled == 0);
    }, ct);
}
