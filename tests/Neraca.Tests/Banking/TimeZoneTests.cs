using System.Globalization;
using System.Net;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Banking;

/// <summary>A server whose clock starts three hours before the next month begins in Jakarta: moving a running server's
/// clock by weeks fires every periodic timer of those weeks at once, starting it there fires none.</summary>
public abstract class MonthEndServerFixture(StoreKind kind) : ServerFixture(kind)
{
    public static readonly TimeZoneInfo Jakarta = TimeZoneInfo.FindSystemTimeZoneById("Asia/Jakarta");

    /// <summary>00:00 of the 1st of next month in Jakarta (UTC+7, no daylight saving).</summary>
    public DateTimeOffset Midnight { get; } = NextMonth();

    static DateTimeOffset NextMonth()
    {
        var local = TimeZoneInfo.ConvertTime(DateTimeOffset.UtcNow, Jakarta);
        var first = new DateOnly(local.Year, local.Month, 1).AddMonths(1);
        return new DateTimeOffset(first.ToDateTime(TimeOnly.MinValue), TimeSpan.FromHours(7));
    }

    protected override Task<(NeracaServer Server, string AdminDatabase)> StartAsync()
    {
        var by = Midnight.AddHours(-3) - Clock.UtcNow;
        if (by > TimeSpan.Zero) Clock.Jump(by);
        return base.StartAsync();
    }
}

public sealed class SqliteMonthEndServerFixture() : MonthEndServerFixture(StoreKind.Sqlite);

public sealed class PostgresMonthEndServerFixture() : MonthEndServerFixture(StoreKind.Postgres);

/// <summary>The tenant's time zone decides where its days and months begin (statements, date-only history filters,
/// daily limits).</summary>
public abstract class BankingTimeZoneContract(MonthEndServerFixture fixture) : BankingTests(fixture)
{
    [Fact]
    public async Task Tenant_time_zone_decides_the_month_boundary_of_statements_history_and_limits()
    {
        var jakarta = await WorldAsync();
        var utc = await WorldAsync();
        var defaults = (await jakarta.Http.GetJsonAsync("/v1/banking/settings")).Body!;
        Assert.Equal("Asia/Jakarta", (string?)defaults["time_zone"]);
        Assert.Equal("default", (string?)defaults["source"]);
        var set = await utc.PatchJsonAsync("/v1/banking/settings", new { time_zone = "UTC" });
        Assert.Equal(HttpStatusCode.OK, set.Response.StatusCode);
        Assert.Equal("tenant", (string?)(await utc.Http.GetJsonAsync("/v1/banking/settings")).Body!["source"]);
        (await utc.PatchJsonAsync("/v1/banking/settings", new { time_zone = "Mars/Olympus_Mons" })).AssertProblem(400, "validation_failed");
        Assert.Equal("settings.updated", (string?)Assert.Single((await utc.Http.GetJsonAsync("/v1/audit-log?target_type=settings")).Body!["data"]!.AsArray())!["action"]);

        // A top-up and two payments around the first midnight of the month in Jakarta (UTC+7): 22:00 and 00:30 local,
        // all on the last day of the month before in UTC.
        var midnight = ((MonthEndServerFixture)Fixture).Midnight;
        var first = DateOnly.FromDateTime(midnight.DateTime);
        var last = first.AddDays(-1);
        JumpTo(midnight.AddHours(-2));
        foreach (var w in new[] { jakarta, utc }) await w.WalletAsync("cus_tz", "acc_tz", 1_000_000);
        foreach (var w in new[] { jakarta, utc }) Assert.Equal(HttpStatusCode.Created, (await w.PayAsync("late", "acc_tz", "acc_house", 1_000)).Response.StatusCode);
        JumpTo(midnight.AddMinutes(30));
        foreach (var w in new[] { jakarta, utc }) Assert.Equal(HttpStatusCode.Created, (await w.PayAsync("early", "acc_tz", "acc_house", 2_000)).Response.StatusCode);
        JumpTo(midnight.AddHours(8)); // the month is over in both zones (UTC's ends at 07:00 in Jakarta)

        async Task<List<string>> HistoryAsync(BankingWorld w, DateOnly from, DateOnly to) =>
            (await w.Http.GetJsonAsync($"/v1/accounts/acc_tz/transactions?from={from:yyyy-MM-dd}&to={to:yyyy-MM-dd}")).Body!["data"]!.AsArray()
            .Select(x => (string)x!["transfer_id"]!).ToList();
        Assert.Equal(["bank:pay:early"], await HistoryAsync(jakarta, first, first));
        Assert.Empty(await HistoryAsync(utc, first, first));
        Assert.Equal(["bank:pay:top-acc_tz", "bank:pay:late"], await HistoryAsync(jakarta, last, last));
        Assert.Equal(["bank:pay:top-acc_tz", "bank:pay:late", "bank:pay:early"], await HistoryAsync(utc, last, last));
        (await jakarta.Http.GetJsonAsync("/v1/accounts/acc_tz/transactions?from=yesterday")).AssertProblem(400, "validation_failed");

        async Task<(long Entries, string Zone)> StatementAsync(BankingWorld w, DateOnly from, DateOnly to)
        {
            var r = await w.Http.PostJsonAsync("/v1/accounts/acc_tz/statements", new { from = from.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), to = to.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) });
            Assert.True(r.Response.StatusCode is HttpStatusCode.Accepted or HttpStatusCode.OK, r.Body?.ToJsonString()); // 200: the monthly run issued it first
            var id = (string)r.Body!["id"]!;
            var ready = await Polling.Eventually(async () => (await w.Http.GetJsonAsync($"/v1/accounts/acc_tz/statements/{id}")).Body!,
                s => (string?)s["status"] == "ready", "the statement was rendered");
            return ((long)ready["entry_count"]!, (string)ready["time_zone"]!);
        }
        var month = new DateOnly(last.Year, last.Month, 1);
        Assert.Equal((2L, "Asia/Jakarta"), await StatementAsync(jakarta, month, last)); // top-up and 'late'
        Assert.Equal((3L, "UTC"), await StatementAsync(utc, month, last));

        // The daily limit counted each payment under its tenant's day.
        async Task<List<string>> DaysAsync(BankingWorld w) => (await RawAsync(
            "SELECT day FROM banking_limit_usage WHERE tenant_id = @t AND customer_id = 'cus_tz' AND used > 0 ORDER BY day", new { t = w.Tenant.Id }))
            .Select(r => (string)r["day"]!).ToList();
        Assert.Equal(new[] { last, first }.Select(d => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)), await DaysAsync(jakarta));
        Assert.Equal([last.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)], await DaysAsync(utc));
    }

    void JumpTo(DateTimeOffset at)
    {
        var by = at - Fixture.Clock.UtcNow;
        if (by > TimeSpan.Zero) Fixture.Clock.Jump(by);
    }
}

[Collection(BankingCollection.Name)]
public sealed class SqliteBankingTimeZoneTests(SqliteMonthEndServerFixture fixture) : BankingTimeZoneContract(fixture), IClassFixture<SqliteMonthEndServerFixture>;

[Collection(BankingCollection.Name)]
public sealed class PostgresBankingTimeZoneTests(PostgresMonthEndServerFixture fixture) : BankingTimeZoneContract(fixture), IClassFixture<PostgresMonthEndServerFixture>;
