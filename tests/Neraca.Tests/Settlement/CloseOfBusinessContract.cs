using System.Globalization;
using System.Net;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Settlement;

/// <summary>Close of business: the schedule settles each counterparty at its cut-off, and dates missed while nothing ran
/// (here: the clock jumps two days) are caught up. Its own server per class: the test moves the server's clock.</summary>
public abstract class CloseOfBusinessContract(ServerFixture fixture)
{
    [Fact]
    public async Task Each_business_date_is_settled_at_its_cut_off_and_missed_dates_are_caught_up()
    {
        var local = TimeZoneInfo.ConvertTime(fixture.Clock.UtcNow, SettlementWorld.Jakarta);
        // A cut-off some minutes ahead today (or the end of the day when it is late).
        var cutoffMinutes = Math.Min(local.Hour * 60 + local.Minute + 20, 1440);
        var cutoff = cutoffMinutes == 1440 ? "24:00" : string.Create(CultureInfo.InvariantCulture, $"{cutoffMinutes / 60:00}:{cutoffMinutes % 60:00}");
        var counterparty = new
        {
            id = "bca", name = "Bank Central Asia", type = "bank", settlement_account = "due-bca", cash_account = "bank-bca", cutoff_local_time = cutoff,
            time_zone = "Asia/Jakarta",
        };
        var w = await SettlementWorld.CreateAsync(fixture, counterparty);
        var today = DateOnly.FromDateTime(local.DateTime);
        await w.TransferAsync("pay-1", "alice", "due-bca", 2_500_000, fixture.Clock.UtcNow.AddMinutes(-1));
        fixture.Clock.Jump(TimeSpan.FromDays(2) + TimeSpan.FromMinutes(30));
        var dates = new[] { today, today.AddDays(1), today.AddDays(2) }.Select(SettlementWorld.Iso).ToArray();
        var runs = await Polling.Eventually(async () => (await w.Http.GetJsonAsync("/v1/settlement/runs")).Body!["data"]!.AsArray(),
            r => r.Count >= 3 && r.All(x => (string)x!["status"]! == "posted"), "three scheduled runs", TimeSpan.FromSeconds(60));
        Assert.Equal(dates, runs.Select(r => (string)r!["business_date"]!).Order(StringComparer.Ordinal).ToArray());
        Assert.All(runs, r => Assert.Equal("schedule", (string)r!["trigger"]!));
        var first = runs.Single(r => (string)r!["business_date"]! == dates[0])!;
        Assert.Equal(2_500_000L, (long)first["items"]![0]!["net"]!);
        Assert.Equal(-2_500_000L, await w.BalanceAsync("bank-bca"));
        // By hand afterwards: settled already.
        var again = await w.Http.PostJsonAsync("/v1/settlement/runs", new { business_date = dates[0], counterparties = new[] { "bca" } });
        Assert.Equal(HttpStatusCode.OK, again.Response.StatusCode);
        await Neraca.Tests.Ledger.Conservation.AssertAsync(w.Server, w.TenantId);
    }
}

public sealed class SqliteCloseOfBusinessTests(SqliteServerFixture fixture) : CloseOfBusinessContract(fixture), IClassFixture<SqliteServerFixture>;

public sealed class PostgresCloseOfBusinessTests(PostgresServerFixture fixture) : CloseOfBusinessContract(fixture), IClassFixture<PostgresServerFixture>;
