namespace Neraca.Wellness.Cycles;

/// <summary>A pay cycle: from the day after the previous (adjusted) payday through payday, inclusive. Its id is the
/// payday as <c>YYYY-MM-DD</c>.</summary>
public sealed record PayCycle(DateOnly Start, DateOnly End)
{
    public DateOnly Payday => End;
    public string Id => End.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>An employer's calendar: monthly paydays on <c>payday_day</c>, moved to the previous business day when they
/// fall on a weekend or a holiday; business days are Monday to Friday except holidays.</summary>
public sealed class PayCalendar(int paydayDay, IEnumerable<DateOnly> holidays)
{
    readonly HashSet<DateOnly> _holidays = [.. holidays];

    public int PaydayDay { get; } = paydayDay is >= 1 and <= 28 ? paydayDay : throw new ArgumentOutOfRangeException(nameof(paydayDay));

    public bool IsBusinessDay(DateOnly d) => d.DayOfWeek is not (DayOfWeek.Saturday or DayOfWeek.Sunday) && !_holidays.Contains(d);

    /// <summary>The adjusted payday of the month <paramref name="monthIndex"/> (year x 12 + month - 1).</summary>
    public DateOnly PaydayOf(int monthIndex)
    {
        var d = new DateOnly(monthIndex / 12, monthIndex % 12 + 1, PaydayDay);
        // Bounded: a month has at most a handful of consecutive non-business days around payday; 31 is a hard stop.
        for (var i = 0; i < 31 && !IsBusinessDay(d); i++) d = d.AddDays(-1);
        return d;
    }

    /// <summary>The cycle that contains <paramref name="day"/>.</summary>
    public PayCycle CycleOf(DateOnly day)
    {
        // The previous month's payday is never after the end of that month, so it is before day: start there and move
        // forward until a payday is on or after day (at most two steps).
        var m = day.Year * 12 + day.Month - 2;
        while (PaydayOf(m) < day) m++;
        return new PayCycle(PaydayOf(m - 1).AddDays(1), PaydayOf(m));
    }

    /// <summary>The cycle after <paramref name="cycle"/>.</summary>
    public PayCycle Next(PayCycle cycle) => CycleOf(cycle.End.AddDays(1));

    /// <summary>Business days in [from, to], both inclusive (0 when from is after to).</summary>
    public int BusinessDays(DateOnly from, DateOnly to)
    {
        var n = 0;
        for (var d = from; d <= to; d = d.AddDays(1))
            if (IsBusinessDay(d)) n++;
        return n;
    }

    /// <summary>Whether <paramref name="day"/> is in the blackout: payday and the <paramref name="blackoutDays"/>
    /// calendar days before it.</summary>
    public static bool InBlackout(PayCycle cycle, DateOnly day, int blackoutDays) => day >= cycle.Payday.AddDays(-blackoutDays) && day <= cycle.Payday;
}
