using System.Net;
using System.Text.Json.Nodes;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Wellness;

/// <summary>The payday close as one story per store, on a server of its own (its clock jumps days ahead): Jakarta
/// employer, payday Friday 2026-03-13, the close at local midnight (17:00 UTC), deductions, carry-over, recovery.</summary>
public abstract class PaydayContract(EwaFixture fixture)
{
    static long L(JsonNode? n) => (long)n!;

    [Fact]
    public async Task Payday_close_at_local_midnight_recovers_from_payroll_and_carries_the_rest_over()
    {
        var ewa = await Ewa.NewAsync(fixture.Server);
        var er = await ewa.EmployerAsync(new { blackout_days = 0, fee_flat = 1_000_000 }, paydayDay: 13);
        await ewa.ImportAsync(er, "h1,Budi,,,hourly,5000000,2025-01-01,BRI,5550001111", "m1,Siti,,,monthly,500000000,2025-01-01,BCA,1234567890");
        await ewa.Http.PostJsonAsync($"/v1/ewa/employers/{er}/attendance", new object[]
        {
            new { employee_id = "h1", date = "2026-03-09", hours = 8 }, new { employee_id = "h1", date = "2026-03-10", hours = 4 },
        });
        Assert.Equal(30_000_000, L((await ewa.BalanceAsync(er, "h1"))["accessible"]));
        Assert.Equal(200_000_000, L((await ewa.BalanceAsync(er, "m1"))["accessible"]));    // 16 of 20 business days
        var h = await ewa.WithdrawAsync(er, "h1", 20_000_000);
        var m = await ewa.WithdrawAsync(er, "m1", 50_000_000);
        Assert.Equal(HttpStatusCode.Accepted, h.Response.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, m.Response.StatusCode);
        foreach (var (employee, w) in new[] { ("h1", h), ("m1", m) })
            await Polling.Eventually(() => ewa.Http.GetJsonAsync($"/v1/ewa/employers/{er}/employees/{employee}/withdrawals/{w.Body!["id"]}"),
                r => r.Body?["status"]?.ToString() == "paid", $"the withdrawal of {employee} is paid (last body: see value)");
        // A late correction: Monday had no hours after all. Net pay (4 h) no longer covers the advance and fee.
        await ewa.Http.PostJsonAsync($"/v1/ewa/employers/{er}/attendance", new object[] { new { employee_id = "h1", date = "2026-03-09", hours = 0 } });

        // 23:59 on payday in Jakarta: still the old cycle, payday itself is blackout, nothing closed.
        // The clock stands still meanwhile: a slow machine must not let the last minute of payday pass.
        fixture.Clock.JumpTo(new DateTimeOffset(2026, 3, 13, 16, 59, 0, TimeSpan.Zero));
        fixture.Clock.Pause();
        var before = await ewa.BalanceAsync(er, "h1");
        Assert.Equal("2026-03-13", (string)before["cycle"]!["payday"]!);
        Assert.Equal("blackout", (string?)before["blocked_reason"]);
        (await ewa.Http.GetJsonAsync($"/v1/ewa/employers/{er}/cycles/2026-03-13/deductions")).AssertProblem(404, "cycle_not_found");

        // Local midnight: the new cycle starts and the nightly work closes the old one.
        fixture.Clock.Resume();
        fixture.Clock.JumpTo(new DateTimeOffset(2026, 3, 13, 17, 0, 5, TimeSpan.Zero));
        var cycle = await Polling.Eventually(() => ewa.Http.GetJsonAsync($"/v1/ewa/employers/{er}/cycles/2026-03-13"),
            r => r.Body?["status"]?.ToString() == "closed", "the cycle of payday 2026-03-13 closes");
        Assert.Equal(72_000_000, L(cycle.Body!["due"]));
        Assert.Equal(71_000_000, L(cycle.Body!["recovered"]));
        Assert.Equal(1_000_000, L(cycle.Body!["carried"]));

        var deductions = (await ewa.Http.GetJsonAsync($"/v1/ewa/employers/{er}/cycles/2026-03-13/deductions")).Body!["data"]!.AsArray();
        var dh = deductions.Single(d => (string)d!["employee_id"]! == "h1")!;
        Assert.Equal((20_000_000L, 1_000_000L, 21_000_000L, 20_000_000L, 20_000_000L, 1_000_000L),
            (L(dh["advances"]), L(dh["fees"]), L(dh["due"]), L(dh["net_pay"]), L(dh["recovered"]), L(dh["carried"])));
        var dm = deductions.Single(d => (string)d!["employee_id"]! == "m1")!;
        Assert.Equal((51_000_000L, 500_000_000L, 51_000_000L, 0L), (L(dm["due"]), L(dm["net_pay"]), L(dm["recovered"]), L(dm["carried"])));
        var csv = await ewa.Http.GetAsync($"/v1/ewa/employers/{er}/cycles/2026-03-13/deductions?format=csv");
        Assert.Equal("text/csv", csv.Content.Headers.ContentType?.MediaType);
        var lines = (await csv.Content.ReadAsStringAsync()).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("employee_id,withdrawals,advances,fees,carry_in,due,net_pay,recovered,carried", lines[0]);
        Assert.Equal("h1,1,20000000,1000000,0,21000000,20000000,20000000,1000000", lines[1]);

        // The carry-over is this cycle's withdrawn; the recovery is on the ledger; the closed cycle does not change.
        var after = await ewa.BalanceAsync(er, "h1");
        Assert.Equal("2026-04-13", (string)after["cycle"]!["payday"]!);
        Assert.Equal(1_000_000, L(after["withdrawn"]));
        Assert.Equal(1_000_000, L(after["explanation"]!["carry_over"]));
        await Polling.Eventually(() => ewa.AccountBalanceAsync($"ewa:{er}:advances"), b => b == 1_000_000, "the payday recovery is posted");
        Assert.Equal(1_000_000, await ewa.AccountBalanceAsync($"ewa:{er}:committed"));
        var late = await ewa.Http.PostJsonAsync($"/v1/ewa/employers/{er}/attendance", new object[] { new { employee_id = "h1", date = "2026-03-12", hours = 8 } });
        Assert.Contains("closed", (string)late.Body!["rejections"]![0]!["reason"]!, StringComparison.Ordinal);
        Assert.Equal(71_000_000, L((await ewa.Http.GetJsonAsync($"/v1/ewa/employers/{er}/cycles/2026-03-13")).Body!["recovered"]));
    }
}

public sealed class SqlitePaydayFixture() : EwaFixture(StoreKind.Sqlite)
{
    protected override string[] ExtraArgs => ["--Jobs:Recurring:ewa.nightly:SpreadWindowSeconds=0"];
}

public sealed class PostgresPaydayFixture() : EwaFixture(StoreKind.Postgres)
{
    protected override string[] ExtraArgs => ["--Jobs:Recurring:ewa.nightly:SpreadWindowSeconds=0"];
}

public sealed class SqlitePaydayTests(SqlitePaydayFixture fixture) : PaydayContract(fixture), IClassFixture<SqlitePaydayFixture>;

public sealed class PostgresPaydayTests(PostgresPaydayFixture fixture) : PaydayContract(fixture), IClassFixture<PostgresPaydayFixture>;
