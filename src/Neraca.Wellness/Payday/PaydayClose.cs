using System.Data.Common;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Dapper;
using Microsoft.Extensions.Options;
using Neraca.Events;
using Neraca.Jobs;
using Neraca.Ledger;
using Neraca.Storage;
using Neraca.Wellness.Cycles;
using Neraca.Wellness.Employees;
using Neraca.Wellness.Employers;

namespace Neraca.Wellness.Payday;

/// <summary><c>ewa.nightly</c> (per tenant, hourly): finds employers whose local day has changed since their nightly
/// work was last enqueued and enqueues <c>ewa.employer.nightly</c> for each, at a stable offset within
/// <see cref="WellnessOptions.EmployerSpreadSeconds"/> (a hash of the employer id), so a thousand employers do not
/// start together. Chunked over employers; the enqueue and the employer's <c>nightly_date</c> commit together.</summary>
public sealed class NightlyDispatchJob(TimeProvider time, IServiceProvider services, IOptions<WellnessOptions> options) : IJobHandler
{
    // Resolved on use: the job store depends on every job handler.
    JobStore Jobs => services.GetRequiredService<JobStore>();

    public const string TypeName = "ewa.nightly";

    public string Type => TypeName;

    public JobTypeDefaults Defaults => new() { ConcurrencyMax = 2, ChunkSize = 500, ItemsPerSecondMax = 5_000 };

    public Task ExecuteAsync(JobExecution job, CancellationToken ct) => job.RunChunksAsync(async (chunk, token) =>
    {
        var page = await EmployerStore.ListAsync(chunk.Connection, chunk.Transaction, chunk.TenantId, chunk.Checkpoint, chunk.ChunkSize, null, token);
        var now = time.GetUtcNow();
        var spread = options.Value.EmployerSpreadSeconds;
        foreach (var e in page)
        {
            var today = Dates.Format(e.LocalDate(now));
            if (e.NightlyDate is { } last && string.CompareOrdinal(last, today) >= 0) continue;
            var offset = spread == 0 ? 0 : (long)(BitConverter.ToUInt64(SHA256.HashData(Encoding.UTF8.GetBytes(e.Id)), 0) % (ulong)spread);
            await Jobs.EnqueueAsync(chunk.Connection, chunk.Transaction, new JobRequest(chunk.TenantId, EmployerNightlyJob.TypeName,
                JsonSerializer.Serialize(new Dictionary<string, string> { ["employer_id"] = e.Id, ["date"] = today }), Key: $"{e.Id}@{today}",
                RunAt: now.AddSeconds(offset)), token);
            await chunk.Connection.ExecuteAsync(new CommandDefinition(
                "UPDATE ewa_employers SET nightly_date = @today WHERE tenant_id = @tenant AND id = @id",
                new { today, tenant = chunk.TenantId, id = e.Id }, chunk.Transaction, cancellationToken: token));
        }
        return new ChunkResult(page.Count > 0 ? page[^1].Id : chunk.Checkpoint, page.Count, page.Count < chunk.ChunkSize);
    }, ct);
}

/// <summary><c>ewa.employer.nightly</c>: one employer's nightly work for its local date, in chunks of employees (one
/// transaction each, throttled): close every open cycle whose payday has passed (deduction rows, carry-over into the
/// next cycle; the cycle becomes <c>closed</c> in the last chunk, with its event and the recovery job), snapshot the
/// accrual of every employee for the date, and remind an employer whose attendance upload is overdue.</summary>
public sealed partial class EmployerNightlyJob(Database database, EmployeeStore employeeStore, IServiceProvider services, ILogger<EmployerNightlyJob> logger)
    : IJobHandler
{
    // Resolved on use: the job store depends on every job handler.
    JobStore Jobs => services.GetRequiredService<JobStore>();

    public const string TypeName = "ewa.employer.nightly";

    public string Type => TypeName;

    public JobTypeDefaults Defaults => new() { ConcurrencyMax = 2, ChunkSize = 500, ItemsPerSecondMax = 20_000, AttemptsMax = 30 };

    sealed record Checkpoint(string Phase, string? Cycle, string? After);

    public async Task ExecuteAsync(JobExecution job, CancellationToken ct)
    {
        var root = JsonDocument.Parse(job.Payload).RootElement;
        var employerId = root.GetProperty("employer_id").GetString()!;
        var date = Dates.Parse(root.GetProperty("date").GetString()!);
        var employer = await new EmployerStore(database).GetAsync(job.TenantId, employerId, ct);
        if (employer is null) return; // deleted meanwhile: nothing to do

        // Cycles to close: every cycle with a payday before the date, from the employer's first activity onwards, not closed.
        var current = employer.Calendar.CycleOf(date);
        var due = await DueCyclesAsync(employer, current, ct);
        foreach (var cycle in due)
        {
            if (await InFlightAsync(employer, cycle.Id, ct) is > 0 and var n)
                throw new InvalidOperationException($"cycle {cycle.Id} of {employerId}: {n} withdrawal(s) still in flight; the close retries after them");
        }
        await job.RunChunksAsync(async (chunk, token) =>
        {
            var cp = chunk.Checkpoint is { } c ? JsonSerializer.Deserialize<Checkpoint>(c)! : new Checkpoint("close", due.FirstOrDefault()?.Id, null);
            if (cp.Phase == "close" && cp.Cycle is { } cycleId)
            {
                var cycle = due.First(x => x.Id == cycleId);
                var (processed, last) = await CloseChunkAsync(chunk, employer, cycle, employer.Calendar.Next(cycle), cp.After, token);
                if (last is not null) return new ChunkResult(JsonSerializer.Serialize(cp with { After = last }), processed, false);
                var next = due.SkipWhile(x => x.Id != cycleId).Skip(1).FirstOrDefault();
                return new ChunkResult(JsonSerializer.Serialize(next is null ? new Checkpoint("accrue", null, null) : new Checkpoint("close", next.Id, null)),
                    processed, false);
            }
            if (cp.Phase is "close" or "accrue")
            {
                var (processed, last) = await AccrueChunkAsync(chunk, employer, current, date, cp.After, token);
                return new ChunkResult(JsonSerializer.Serialize(last is null ? new Checkpoint("remind", null, null) : new Checkpoint("accrue", null, last)),
                    processed, false);
            }
            await RemindAsync(chunk, employer, date, token);
            return new ChunkResult(JsonSerializer.Serialize(new Checkpoint("done", null, null)), 0, true);
        }, ct);
    }

    async Task<List<PayCycle>> DueCyclesAsync(Employer employer, PayCycle current, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var open = await connection.QueryAsync<string>(new CommandDefinition("""
            SELECT DISTINCT cycle FROM ewa_employee_cycles WHERE tenant_id = @tenant AND employer_id = @employer AND cycle < @current
              AND cycle NOT IN (SELECT cycle FROM ewa_cycles WHERE tenant_id = @tenant AND employer_id = @employer AND status = 'closed')
            ORDER BY cycle
            """, new { tenant = employer.TenantId, employer = employer.Id, current = current.Id }, cancellationToken: ct));
        var cycles = open.Select(id => employer.Calendar.CycleOf(Dates.Parse(id))).ToList();
        // The cycle that just ended is closed (and reported) even when nobody withdrew in it.
        var previous = employer.Calendar.CycleOf(current.Start.AddDays(-1));
        var previousClosed = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT count(*) FROM ewa_cycles WHERE tenant_id = @tenant AND employer_id = @employer AND cycle = @cycle AND status = 'closed'",
            new { tenant = employer.TenantId, employer = employer.Id, cycle = previous.Id }, cancellationToken: ct));
        if (previousClosed == 0 && previous.End >= DateOnly.FromDateTime(employer.CreatedAt.UtcDateTime).AddDays(-1) && cycles.All(c => c.Id != previous.Id))
            cycles.Add(previous);
        return [.. cycles.OrderBy(c => c.End)];
    }

    async Task<long> InFlightAsync(Employer employer, string cycle, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return await connection.ExecuteScalarAsync<long>(new CommandDefinition("""
            SELECT count(*) FROM ewa_withdrawals WHERE tenant_id = @tenant AND employer_id = @employer AND cycle = @cycle AND status IN ('pending', 'processing')
            """, new { tenant = employer.TenantId, employer = employer.Id, cycle }, cancellationToken: ct));
    }

    /// <summary>One chunk of a close: each employee's deduction (advances + fees the employee pays + carry-over, recovered
    /// up to the cycle's net pay, the rest carried into the next cycle). The last chunk marks the cycle closed. Returns
    /// the last employee handled, or null when the cycle is closed.</summary>
    async Task<(long Processed, string? Last)> CloseChunkAsync(ChunkContext chunk, Employer employer, PayCycle cycle, PayCycle next, string? after,
        CancellationToken ct)
    {
        var tenant = employer.TenantId;
        var status = await chunk.Connection.ExecuteScalarAsync<string?>(new CommandDefinition(
            "SELECT status FROM ewa_cycles WHERE tenant_id = @tenant AND employer_id = @employer AND cycle = @cycle",
            new { tenant, employer = employer.Id, cycle = cycle.Id }, chunk.Transaction, cancellationToken: ct));
        if (status == "closed") return (0, null);
        if (status is null)
            await chunk.Connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO ewa_cycles (tenant_id, employer_id, cycle, start_date, status) VALUES (@tenant, @employer, @cycle, @start, 'closing')
                """, new { tenant, employer = employer.Id, cycle = cycle.Id, start = Dates.Format(cycle.Start) }, chunk.Transaction, cancellationToken: ct));

        var rows = (await chunk.Connection.QueryAsync<CycleRow>(new CommandDefinition("""
            SELECT employee_id, withdrawn, advances, employee_fees, CAST(withdrawals AS bigint) AS withdrawals, carry_in FROM ewa_employee_cycles
            WHERE tenant_id = @tenant AND employer_id = @employer AND cycle = @cycle AND employee_id > @after AND (withdrawn > 0 OR carry_in > 0)
            ORDER BY employee_id LIMIT @limit
            """, new { tenant, employer = employer.Id, cycle = cycle.Id, after = after ?? "", limit = chunk.ChunkSize }, chunk.Transaction,
            cancellationToken: ct))).ToList();
        foreach (var r in rows)
        {
            var employee = await employeeStore.GetAsync(chunk.Connection, chunk.Transaction, tenant, employer.Id, r.employee_id, ct);
            var netPay = employee is null ? 0 : await NetPayAsync(chunk.Connection, chunk.Transaction, employer, employee, cycle, ct);
            var due = checked(r.withdrawn + r.carry_in);
            var recovered = Math.Min(due, netPay);
            var carried = checked(due - recovered);
            await chunk.Connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO ewa_deductions (tenant_id, employer_id, cycle, employee_id, withdrawals, advances, fees, carry_in, due, net_pay, recovered, carried)
                VALUES (@tenant, @employer, @cycle, @employee, @withdrawals, @advances, @fees, @carryIn, @due, @netPay, @recovered, @carried)
                """, new { tenant, employer = employer.Id, cycle = cycle.Id, employee = r.employee_id, withdrawals = (int)r.withdrawals, advances = r.advances,
                    fees = r.employee_fees, carryIn = r.carry_in, due, netPay, recovered, carried }, chunk.Transaction, cancellationToken: ct));
            if (carried > 0)
            {
                await chunk.Connection.ExecuteAsync(new CommandDefinition("""
                    INSERT INTO ewa_employee_cycles (tenant_id, employer_id, employee_id, cycle) VALUES (@tenant, @employer, @employee, @cycle)
                    ON CONFLICT DO NOTHING
                    """, new { tenant, employer = employer.Id, employee = r.employee_id, cycle = next.Id }, chunk.Transaction, cancellationToken: ct));
                await chunk.Connection.ExecuteAsync(new CommandDefinition("""
                    UPDATE ewa_employee_cycles SET carry_in = carry_in + @carried
                    WHERE tenant_id = @tenant AND employer_id = @employer AND employee_id = @employee AND cycle = @cycle
                    """, new { carried, tenant, employer = employer.Id, employee = r.employee_id, cycle = next.Id }, chunk.Transaction, cancellationToken: ct));
            }
        }
        if (rows.Count == chunk.ChunkSize) return (rows.Count, rows[^1].employee_id);

        // The last chunk: totals, the cycle closed, its event and the ledger recovery (a job: it posts through the ledger).
        var t = await chunk.Connection.QuerySingleAsync<Totals>(new CommandDefinition("""
            SELECT count(*) AS employees, CAST(COALESCE(SUM(advances), 0) AS bigint) AS advances, CAST(COALESCE(SUM(fees), 0) AS bigint) AS fees,
                   CAST(COALESCE(SUM(due), 0) AS bigint) AS due, CAST(COALESCE(SUM(recovered), 0) AS bigint) AS recovered,
                   CAST(COALESCE(SUM(carried), 0) AS bigint) AS carried
            FROM ewa_deductions WHERE tenant_id = @tenant AND employer_id = @employer AND cycle = @cycle
            """, new { tenant, employer = employer.Id, cycle = cycle.Id }, chunk.Transaction, cancellationToken: ct));
        var nowUs = DbTime.ToMicros(chunk.Now);
        await chunk.Connection.ExecuteAsync(new CommandDefinition("""
            UPDATE ewa_cycles SET status = 'closed', employees = @employees, advances = @advances, fees = @fees, due = @due, recovered = @recovered,
                carried = @carried, closed_at_us = @nowUs
            WHERE tenant_id = @tenant AND employer_id = @employer AND cycle = @cycle
            """, new { employees = (int)t.employees, t.advances, t.fees, t.due, t.recovered, t.carried, nowUs, tenant, employer = employer.Id, cycle = cycle.Id },
            chunk.Transaction, cancellationToken: ct));
        await EventLog.AppendAsync(chunk.Connection, chunk.Transaction, tenant, null, EwaEventPayloads.Of(EwaEventTypes.CycleClosed,
            $"ewa_cycle:{employer.Id}:{cycle.Id}", new EwaEventPayloads.CycleClosed(employer.Id, cycle.Id, Dates.Format(cycle.Start), (int)t.employees, t.advances,
                t.fees, t.due, t.recovered, t.carried)), nowUs, ct);
        if (t.recovered > 0)
            await Jobs.EnqueueAsync(chunk.Connection, chunk.Transaction, new JobRequest(tenant, RecoveryJob.TypeName,
                JsonSerializer.Serialize(new Dictionary<string, object> { ["employer_id"] = employer.Id, ["cycle"] = cycle.Id, ["amount"] = t.recovered }),
                Key: $"{employer.Id}@{cycle.Id}"), ct);
        LogClosed(logger, tenant, employer.Id, cycle.Id, t.employees, t.recovered, t.carried);
        return (rows.Count, null);
    }

    /// <summary>Net pay for the cycle before EWA deductions: the cycle's salary (pro rata for a start within it) or its
    /// attendance pay. Neraca does not know taxes or other deductions; payroll deducts up to what it pays.</summary>
    internal static async Task<long> NetPayAsync(DbConnection connection, DbTransaction tx, Employer employer, Employee employee, PayCycle cycle,
        CancellationToken ct) =>
        employee.Fields.PayType == PayTypes.Monthly
            ? Earnings.MonthlyForCycle(employer.Calendar, cycle, employee.Fields.PayRate, employee.Fields.StartDate)
            : (await Withdrawals.Balances.EarnedAsync(connection, tx, employer, employee, cycle, cycle.End, ct)).Earned;

    /// <summary>The nightly accrual snapshot of salaried employees (the earned figure as of the date), for reports.</summary>
    async Task<(long Processed, string? Last)> AccrueChunkAsync(ChunkContext chunk, Employer employer, PayCycle cycle, DateOnly date, string? after,
        CancellationToken ct)
    {
        var rows = (await chunk.Connection.QueryAsync<(string, long, string)>(new CommandDefinition("""
            SELECT employee_id, pay_rate, start_date FROM ewa_employees
            WHERE tenant_id = @tenant AND employer_id = @employer AND employee_id > @after AND status = 'active' AND pay_type = 'monthly'
            ORDER BY employee_id LIMIT @limit
            """, new { tenant = employer.TenantId, employer = employer.Id, after = after ?? "", limit = chunk.ChunkSize }, chunk.Transaction,
            cancellationToken: ct))).ToList();
        var calendar = employer.Calendar;
        var day = Dates.Format(date);
        foreach (var (employeeId, rate, start) in rows)
        {
            var earned = Earnings.Monthly(calendar, cycle, rate, Dates.Parse(start), date).Earned;
            await chunk.Connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO ewa_employee_cycles (tenant_id, employer_id, employee_id, cycle, earned_snapshot, snapshot_date)
                VALUES (@tenant, @employer, @employee, @cycle, @earned, @day)
                ON CONFLICT (tenant_id, employer_id, employee_id, cycle) DO UPDATE SET earned_snapshot = excluded.earned_snapshot, snapshot_date = excluded.snapshot_date
                """, new { tenant = employer.TenantId, employer = employer.Id, employee = employeeId, cycle = cycle.Id, earned, day }, chunk.Transaction,
                cancellationToken: ct));
        }
        return (rows.Count, rows.Count == chunk.ChunkSize ? rows[^1].Item1 : null);
    }

    /// <summary>Employers with daily or hourly staff whose last attendance upload is older than
    /// <c>attendance_overdue_days</c> business days get an <c>ewa.attendance.overdue</c> event (webhooks, RabbitMQ).</summary>
    static async Task RemindAsync(ChunkContext chunk, Employer employer, DateOnly date, CancellationToken ct)
    {
        var staff = await chunk.Connection.ExecuteScalarAsync<long>(new CommandDefinition("""
            SELECT count(*) FROM ewa_employees WHERE tenant_id = @tenant AND employer_id = @employer AND status = 'active' AND pay_type <> 'monthly'
            """, new { tenant = employer.TenantId, employer = employer.Id }, chunk.Transaction, cancellationToken: ct));
        if (staff == 0) return;
        var lastUpload = employer.AttendanceAt is { } at ? employer.LocalDate(at) : DateOnly.FromDateTime(employer.CreatedAt.UtcDateTime);
        var calendar = employer.Calendar;
        var overdue = calendar.BusinessDays(lastUpload.AddDays(1), date.AddDays(-1));
        if (overdue < employer.Policy.AttendanceOverdueDays) return;
        await EventLog.AppendAsync(chunk.Connection, chunk.Transaction, employer.TenantId, null, EwaEventPayloads.Of(EwaEventTypes.AttendanceOverdue,
            $"ewa_employer:{employer.Id}", new EwaEventPayloads.Overdue(employer.Id, Dates.Format(date), employer.AttendanceAt?.ToString("O"), overdue)),
            DbTime.ToMicros(chunk.Now), ct);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "EWA cycle {Cycle} of employer {EmployerId} closed (tenant {TenantId}): {Employees} employees, recovered {Recovered}, carried {Carried}")]
    static partial void LogClosed(ILogger logger, string tenantId, string employerId, string cycle, long employees, long recovered, long carried);

#pragma warning disable IDE1006 // Dapper maps snake_case columns onto these names.
    sealed class CycleRow
    {
        public string employee_id { get; set; } = "";
        public long withdrawn { get; set; }
        public long advances { get; set; }
        public long employee_fees { get; set; }
        public long withdrawals { get; set; }
        public long carry_in { get; set; }
    }

    sealed class Totals
    {
        public long employees { get; set; }
        public long advances { get; set; }
        public long fees { get; set; }
        public long due { get; set; }
        public long recovered { get; set; }
        public long carried { get; set; }
    }
#pragma warning restore IDE1006
}

/// <summary><c>ewa.cycle.recover</c>: posts a closed cycle's payday recovery on the ledger (the float committed to the
/// advances, or the employer's receivable, settles the advances recovered through payroll). Idempotent: the transfer id
/// is <c>ewa:{employer}:{cycle}:recovery</c>.</summary>
public sealed class RecoveryJob(ILedger ledger, EmployerStore employers) : IJobHandler
{
    public const string TypeName = "ewa.cycle.recover";

    public string Type => TypeName;

    public JobTypeDefaults Defaults => new() { ConcurrencyMax = 4, AttemptsMax = 20 };

    public async Task ExecuteAsync(JobExecution job, CancellationToken ct)
    {
        var root = JsonDocument.Parse(job.Payload).RootElement;
        var employerId = root.GetProperty("employer_id").GetString()!;
        var cycle = root.GetProperty("cycle").GetString()!;
        var amount = root.GetProperty("amount").GetInt64();
        var employer = await employers.GetAsync(job.TenantId, employerId, ct) ?? throw new PermanentJobFailureException($"employer {employerId} not found");
        var a = employer.Accounts;
        var r = await ledger.CreateTransferAsync(job.TenantId, new CreateTransferRequest(RecoveryTransferId(employerId, cycle), a.Committed ?? a.Funding,
            a.Advances, amount, 520, $"Payday recovery {cycle}"), ct);
        if (!r.Succeeded) throw new InvalidOperationException($"recovery of {employerId} {cycle} refused: {r.Error!.Code}");
    }

    public static string RecoveryTransferId(string employerId, string cycle) => $"ewa:{employerId}:{cycle}:recovery";
}
