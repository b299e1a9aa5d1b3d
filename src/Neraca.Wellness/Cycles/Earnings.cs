namespace Neraca.Wellness.Cycles;

/// <summary>How an employee is paid (stored; part of the API).</summary>
public static class PayTypes
{
    public const string Monthly = "monthly";
    public const string Daily = "daily";
    public const string Hourly = "hourly";

    public static bool IsValid(string? s) => s is Monthly or Daily or Hourly;
}

/// <summary>Earned-to-date and how it was reached, so a person can check the figure.</summary>
public sealed record EarnedFigure(long Earned, string Basis, int? BusinessDaysElapsed, int? BusinessDaysInCycle, int? DaysWorked, decimal? HoursWorked);

/// <summary>The earnings formula. Integer minor units only, checked arithmetic, floor division.</summary>
public static class Earnings
{
    /// <summary>Monthly salary pro rata by business days: <c>floor(salary x business days elapsed before today /
    /// business days in cycle)</c>. Days before the employee's start date are not counted as elapsed.</summary>
    public static EarnedFigure Monthly(PayCalendar calendar, PayCycle cycle, long salary, DateOnly startDate, DateOnly today)
    {
        var total = calendar.BusinessDays(cycle.Start, cycle.End);
        var from = startDate > cycle.Start ? startDate : cycle.Start;
        var lastElapsed = today.AddDays(-1) < cycle.End ? today.AddDays(-1) : cycle.End;
        var elapsed = calendar.BusinessDays(from, lastElapsed);
        return new EarnedFigure(Prorate(salary, elapsed, total), "pro_rata_business_days", elapsed, total, null, null);
    }

    /// <summary>The whole cycle's salary for a monthly employee (net pay before deductions at close): pro rata only for
    /// an employee who started within the cycle.</summary>
    public static long MonthlyForCycle(PayCalendar calendar, PayCycle cycle, long salary, DateOnly startDate) =>
        Monthly(calendar, cycle, salary, startDate, cycle.End.AddDays(1)).Earned;

    /// <summary>Daily rate x days with attendance (hours above zero).</summary>
    public static EarnedFigure Daily(long rate, int daysWorked) =>
        new(checked(rate * daysWorked), "attendance_days", null, null, daysWorked, null);

    /// <summary>Hourly rate x hours, floored to the minor unit (hours have two decimals: centihours).</summary>
    public static EarnedFigure Hourly(long rate, long centihours) =>
        new(checked((long)((Int128)rate * centihours / 100)), "attendance_hours", null, null, null, centihours / 100m);

    public static long Prorate(long amount, int part, int whole)
    {
        if (whole <= 0 || part <= 0) return 0;
        if (part >= whole) return amount;
        return checked((long)((Int128)amount * part / whole));
    }

    /// <summary><c>floor(earned x max_percent_bps / 10000)</c>.</summary>
    public static long Accessible(long earned, int maxPercentBps) => checked((long)((Int128)earned * maxPercentBps / 10_000));
}
