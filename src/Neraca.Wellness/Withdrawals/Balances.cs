using System.Data.Common;
using Dapper;
using Neraca.Wellness.Cycles;
using Neraca.Wellness.Employees;
using Neraca.Wellness.Employers;

namespace Neraca.Wellness.Withdrawals;

/// <summary>Why withdrawals are blocked (stored in events; part of the API).</summary>
public static class BlockedReasons
{
    public const string Blackout = "blackout";
    public const string WaitingPeriod = "waiting_period";
    public const string Paused = "paused";
    public const string Terminated = "terminated";
    public const string CycleCountReached = "cycle_count_reached";
}

/// <summary>How the figures were reached, so a person can check them.</summary>
public sealed record BalanceExplanation(string Today, string TimeZone, string PayType, long PayRate, string Basis, int? BusinessDaysElapsed,
    int? BusinessDaysInCycle, int? DaysWorked, decimal? HoursWorked, int MaxPercentBps, long Advances, long EmployeeFees, long CarryOver,
    long Withdrawals, int WithdrawalsPerCycleMax, long CycleCap, long WithdrawalMin, long WithdrawalMax, string BlackoutFrom, string? WaitingUntil,
    string? LimitedBy);

/// <summary>The balance: <c>available = max(0, min(accessible - withdrawn, cycle_cap - withdrawn, withdrawal_max))</c>,
/// 0 when blocked. <c>amount_max</c> is the largest amount a withdrawal may ask for now (available less the fee when the
/// employee pays it).</summary>
public sealed record BalanceView(string EmployeeId, long Earned, long Accessible, long Withdrawn, long Available, PayCycle Cycle, string? BlockedReason,
    long Fee, string FeePayer, long AmountMax, BalanceExplanation Explanation);

/// <summary>The employee's row for a cycle (the serialization point of withdrawals).</summary>
public sealed record EmployeeCycle(long Withdrawn, long Advances, long EmployeeFees, long EmployerFees, long Withdrawals, long CarryIn)
{
    public static readonly EmployeeCycle Empty = new(0, 0, 0, 0, 0, 0);

    /// <summary>What the balance shows as withdrawn: advances, the fees the employee pays, and carry-over.</summary>
    public long Total => checked(Withdrawn + CarryIn);
}

/// <summary>Computes balances from the roster, attendance and the employee's cycle row.</summary>
public static class Balances
{
    public static async Task<EmployeeCycle> CycleRowAsync(DbConnection connection, DbTransaction? tx, string tenantId, string employerId, string employeeId,
        string cycle, CancellationToken ct)
    {
        var r = await connection.QuerySingleOrDefaultAsync<(long, long, long, long, long, long)?>(new CommandDefinition("""
            SELECT withdrawn, advances, employee_fees, employer_fees, CAST(withdrawals AS bigint), carry_in FROM ewa_employee_cycles
            WHERE tenant_id = @tenantId AND employer_id = @employerId AND employee_id = @employeeId AND cycle = @cycle
            """, new { tenantId, employerId, employeeId, cycle }, tx, cancellationToken: ct));
        return r is { } v ? new EmployeeCycle(v.Item1, v.Item2, v.Item3, v.Item4, v.Item5, v.Item6) : EmployeeCycle.Empty;
    }

    /// <summary>Earned in <paramref name="cycle"/> up to <paramref name="today"/>: attendance up to and including today
    /// (accepted attendance counts at once), salary pro rata by business days elapsed before today.</summary>
    public static async Task<EarnedFigure> EarnedAsync(DbConnection connection, DbTransaction? tx, Employer employer, Employee employee, PayCycle cycle,
        DateOnly today, CancellationToken ct)
    {
        var f = employee.Fields;
        if (f.PayType == PayTypes.Monthly) return Earnings.Monthly(employer.Calendar, cycle, f.PayRate, f.StartDate, today);
        var last = today < cycle.End ? today : cycle.End;
        var (centihours, days) = await connection.QuerySingleAsync<(long, long)>(new CommandDefinition("""
            SELECT COALESCE(SUM(centihours), 0), COALESCE(SUM(CASE WHEN centihours > 0 THEN 1 ELSE 0 END), 0) FROM ewa_attendance
            WHERE tenant_id = @tenantId AND employer_id = @employerId AND employee_id = @employeeId AND work_date >= @from AND work_date <= @to
            """, new { tenantId = employer.TenantId, employerId = employer.Id, employeeId = employee.EmployeeId, from = Dates.Format(cycle.Start),
                to = Dates.Format(last) }, tx, cancellationToken: ct));
        return f.PayType == PayTypes.Daily ? Earnings.Daily(f.PayRate, (int)days) : Earnings.Hourly(f.PayRate, centihours);
    }

    public static async Task<BalanceView> ComputeAsync(DbConnection connection, DbTransaction? tx, Employer employer, Employee employee, DateTimeOffset now,
        CancellationToken ct)
    {
        var today = employer.LocalDate(now);
        var cycle = employer.Calendar.CycleOf(today);
        var earned = await EarnedAsync(connection, tx, employer, employee, cycle, today, ct);
        var row = await CycleRowAsync(connection, tx, employer.TenantId, employer.Id, employee.EmployeeId, cycle.Id, ct);
        return Compute(employer, employee, today, cycle, earned, row);
    }

    /// <summary>The pure part: figures from the inputs.</summary>
    public static BalanceView Compute(Employer employer, Employee employee, DateOnly today, PayCycle cycle, EarnedFigure earned, EmployeeCycle row)
    {
        var p = employer.Policy;
        var accessible = Earnings.Accessible(earned.Earned, p.MaxPercentBps);
        var withdrawn = row.Total;
        var waitingUntil = employee.Fields.StartDate.AddDays(p.WaitingDays);
        var blackoutFrom = cycle.Payday.AddDays(-p.BlackoutDays);
        string? blocked =
            employee.Status == EmployeeStatuses.Terminated ? BlockedReasons.Terminated
            : employee.Status == EmployeeStatuses.Paused ? BlockedReasons.Paused
            : today < waitingUntil ? BlockedReasons.WaitingPeriod
            : PayCalendar.InBlackout(cycle, today, p.BlackoutDays) ? BlockedReasons.Blackout
            : row.Withdrawals >= p.WithdrawalsPerCycleMax ? BlockedReasons.CycleCountReached
            : null;
        var byAccessible = checked(accessible - withdrawn);
        var byCap = checked(p.CycleCap - withdrawn);
        var available = Math.Max(0, Math.Min(Math.Min(byAccessible, byCap), p.WithdrawalMax));
        var limitedBy = blocked ?? (byAccessible <= byCap && byAccessible <= p.WithdrawalMax ? "accessible" : byCap <= p.WithdrawalMax ? "cycle_cap" : "withdrawal_max");
        if (blocked is not null) available = 0;
        var fee = p.FeeFlat;
        var amountMax = Math.Max(0, p.FeePayer == FeePayers.Employee ? available - fee : available);
        return new BalanceView(employee.EmployeeId, earned.Earned, accessible, withdrawn, available, cycle, blocked, fee, p.FeePayer, amountMax,
            new BalanceExplanation(Dates.Format(today), employer.TimeZoneId, employee.Fields.PayType, employee.Fields.PayRate, earned.Basis,
                earned.BusinessDaysElapsed, earned.BusinessDaysInCycle, earned.DaysWorked, earned.HoursWorked, p.MaxPercentBps, row.Advances, row.EmployeeFees,
                row.CarryIn, row.Withdrawals, p.WithdrawalsPerCycleMax, p.CycleCap, p.WithdrawalMin, p.WithdrawalMax, Dates.Format(blackoutFrom),
                today < waitingUntil ? Dates.Format(waitingUntil) : null, limitedBy));
    }
}
