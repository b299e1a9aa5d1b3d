using CsCheck;
using Neraca.Wellness.Cycles;
using Neraca.Wellness.Employers;

namespace Neraca.Tests.Wellness;

/// <summary>The calendar and the formula, without a server (the HTTP contract runs them again on both stores).</summary>
public sealed class FormulaTests
{
    static DateOnly D(string s) => Dates.Parse(s);

    [Fact]
    public void Worked_example_Rp_5_000_000_salary_payday_the_25th()
    {
        // docs/ewa.md: Feb 25 and Mar 25 2026 are Wednesdays; the cycle runs Thu Feb 26 .. Wed Mar 25 with 20 business days.
        var calendar = new PayCalendar(25, []);
        var cycle = calendar.CycleOf(D("2026-03-10"));
        Assert.Equal(D("2026-02-26"), cycle.Start);
        Assert.Equal(D("2026-03-25"), cycle.Payday);
        Assert.Equal(20, calendar.BusinessDays(cycle.Start, cycle.End));
        var earned = Earnings.Monthly(calendar, cycle, 500_000_000, D("2020-01-01"), D("2026-03-10"));
        Assert.Equal(8, earned.BusinessDaysElapsed);           // Feb 26, 27, Mar 2-6, Mar 9: today does not count yet
        Assert.Equal(200_000_000, earned.Earned);              // floor(5.000.000,00 x 8 / 20) = Rp 2.000.000
        Assert.Equal(100_000_000, Earnings.Accessible(earned.Earned, 5_000));
    }

    [Fact]
    public void Payday_on_a_weekend_or_holiday_moves_to_the_previous_business_day()
    {
        var calendar = new PayCalendar(14, [D("2026-04-14"), D("2026-04-13")]);
        Assert.Equal(D("2026-03-13"), calendar.PaydayOf(2026 * 12 + 2));   // Sat Mar 14 -> Fri Mar 13
        Assert.Equal(D("2026-04-10"), calendar.PaydayOf(2026 * 12 + 3));   // Tue Apr 14 and Mon 13 holidays -> Fri Apr 10
        var cycle = calendar.CycleOf(D("2026-03-14"));                     // the Saturday belongs to the next cycle
        Assert.Equal(D("2026-03-14"), cycle.Start);
        Assert.Equal(D("2026-04-10"), cycle.Payday);
        Assert.Equal(D("2026-02-14"), calendar.CycleOf(D("2026-03-13")).Start); // Sat Feb 14 -> payday Fri Feb 13
    }

    [Fact]
    public void Payday_on_the_first_moved_into_the_previous_month_still_gives_contiguous_cycles()
    {
        var calendar = new PayCalendar(1, []);
        // Nov 1 2026 is a Sunday: payday Fri Oct 30.
        Assert.Equal(D("2026-10-30"), calendar.PaydayOf(2026 * 12 + 10));
        var c = calendar.CycleOf(D("2026-10-31"));
        Assert.Equal(D("2026-10-31"), c.Start);
        Assert.Equal(D("2026-12-01"), c.Payday);
    }

    [Fact]
    public void Blackout_is_payday_and_the_days_before_it()
    {
        var calendar = new PayCalendar(25, []);
        var cycle = calendar.CycleOf(D("2026-03-20"));
        Assert.False(PayCalendar.InBlackout(cycle, D("2026-03-21"), 3));
        Assert.True(PayCalendar.InBlackout(cycle, D("2026-03-22"), 3));
        Assert.True(PayCalendar.InBlackout(cycle, D("2026-03-25"), 3));
        Assert.True(PayCalendar.InBlackout(cycle, D("2026-03-25"), 0));
        Assert.False(PayCalendar.InBlackout(cycle, D("2026-03-24"), 0));
    }

    [Fact]
    public void Local_midnight_decides_the_date_in_the_employer_time_zone()
    {
        var employer = new Employer
        {
            TenantId = "t", Id = "e", Name = "e", TimeZoneId = "Asia/Jakarta", PaydayDay = 13, Holidays = [], Policy = EmployersApiDefaults,
        };
        Assert.Equal(D("2026-03-13"), employer.LocalDate(new DateTimeOffset(2026, 3, 13, 16, 59, 59, TimeSpan.Zero)));
        Assert.Equal(D("2026-03-14"), employer.LocalDate(new DateTimeOffset(2026, 3, 13, 17, 0, 0, TimeSpan.Zero)));
        Assert.Equal(new DateTimeOffset(2026, 3, 13, 17, 0, 0, TimeSpan.Zero), employer.LocalMidnight(D("2026-03-14")));
        var jayapura = new Employer
        {
            TenantId = "t", Id = "e", Name = "e", TimeZoneId = "Asia/Jayapura", PaydayDay = 13, Holidays = [], Policy = EmployersApiDefaults,
        };
        Assert.Equal(D("2026-03-14"), jayapura.LocalDate(new DateTimeOffset(2026, 3, 13, 15, 0, 0, TimeSpan.Zero)));
    }

    static readonly Policy EmployersApiDefaults = new(5000, 1_000_000_000, 1, 500_000_000, 4, 0, FeePayers.Employee, 3, 0, FundingModels.EmployerPrefunded, 2);

    [Fact]
    public void Pro_rata_never_exceeds_the_salary_and_grows_with_the_days()
    {
        Gen.Select(Gen.Long[1, 1_000_000_000_000], Gen.Int[0, 30], Gen.Int[1, 30]).Sample((salary, part, whole) =>
        {
            var a = Earnings.Prorate(salary, part, whole);
            var b = Earnings.Prorate(salary, part + 1, whole);
            return a >= 0 && a <= salary && b >= a && (part < whole || a == salary);
        });
    }

    [Fact]
    public void Hourly_pay_floors_to_the_minor_unit()
    {
        Assert.Equal(3_320, Earnings.Hourly(2_000, 166).Earned);   // 2.000 x 1.66 h = 3.320 exactly
        Assert.Equal(499, Earnings.Hourly(333, 150).Earned);       // 333 x 1.5 h = 499.5, floored
        Gen.Select(Gen.Long[1, 100_000_000], Gen.Long[0, 100_000]).Sample((rate, centihours) =>
        {
            var earned = Earnings.Hourly(rate, centihours).Earned;
            return (Int128)earned * 100 <= (Int128)rate * centihours && ((Int128)earned + 1) * 100 > (Int128)rate * centihours;
        });
    }
}
