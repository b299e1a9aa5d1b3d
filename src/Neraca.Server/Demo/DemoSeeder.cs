using System.Globalization;

namespace Neraca.Demo;

/// <summary>The demo's story, told to a server whose clock is <paramref name="clock"/>: it starts <see cref="Days"/> days
/// before <paramref name="end"/> and is moved forward one day at a time, and each day does that day's activity through
/// the products' own HTTP API (employers, attendance and withdrawals; wallets, payments and holds; split bills;
/// a bank statement to reconcile) while the server's own jobs run as they would have: the nightly EWA close after
/// payday, the monthly statements on the 1st, holds expiring, payouts completing. Every request carries a fixed id
/// and a fixed <c>Idempotency-Key</c>, so a retried step changes nothing.</summary>
sealed partial class DemoSeeder(DemoApi api, SimulatedClock clock, DateTimeOffset end, TextWriter log)
{
    public const int Days = 40;
    public const string TenantId = "demo";
    static readonly TimeZoneInfo Jakarta = TimeZoneInfo.FindSystemTimeZoneById("Asia/Jakarta");

    /// <summary>Where the story starts: <see cref="Days"/> days before <paramref name="end"/>, to the minute.</summary>
    public static DateTimeOffset StartFor(DateTimeOffset end)
    {
        var start = end.AddDays(-Days);
        return new DateTimeOffset(start.Year, start.Month, start.Day, start.Hour, start.Minute, 0, TimeSpan.Zero);
    }

    readonly DateTimeOffset _start = StartFor(end);

    DateTimeOffset At(int day) => _start.AddDays(day);

    static DateOnly LocalDate(DateTimeOffset at, TimeZoneInfo zone) => DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(at, zone).DateTime);

    DateOnly Local(int day) => LocalDate(At(day), Jakarta);

    static bool IsBusinessDay(DateOnly d) => d.DayOfWeek is not (DayOfWeek.Saturday or DayOfWeek.Sunday);

    static string Iso(DateOnly d) => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    /// <summary>The instant <paramref name="d"/> at <paramref name="hour"/>:00 in Jakarta.</summary>
    static DateTimeOffset JakartaTime(DateOnly d, int hour) =>
        new DateTimeOffset(d.ToDateTime(new TimeOnly(hour, 0)), TimeSpan.FromHours(7)).ToUniversalTime();

    /// <summary>Moves the clock forward to <paramref name="at"/> in one jump: due timers fire, the scheduler enqueues the
    /// last slots of each schedule (older ones of the jumped day are skipped, as after an outage) and jobs run.</summary>
    Task AdvanceToAsync(DateTimeOffset at)
    {
        if (at > clock.UtcNow) clock.JumpTo(at);
        return Task.CompletedTask;
    }

    public async Task RunAsync()
    {
        for (var day = 0; day <= Days; day++)
        {
            // Forward only, and never past real time (a slow run ends at the real now, not beyond it).
            var at = At(day);
            if (at > DateTimeOffset.UtcNow) at = DateTimeOffset.UtcNow;
            await AdvanceToAsync(at);
            if (day == 0)
            {
                await SetUpBankingAsync();
                await SetUpEwaAsync();
                await SetUpSplitAsync();
                await SetUpReconciliationAsync();
            }
            await EwaDayAsync(day);
            await BankingDayAsync(day);
            await SplitDayAsync(day);
            await ReconciliationDayAsync(day);
            if (day % 10 == 0) log.WriteLine($"  simulated {Iso(Local(day))} (day {day} of {Days})");
        }
        await AdvanceToAsync(DateTimeOffset.UtcNow);
        await FinishEwaAsync();
        await FinishBankingAsync();
        await FinishSplitAsync();
        await FinishReconciliationAsync();
    }
}
