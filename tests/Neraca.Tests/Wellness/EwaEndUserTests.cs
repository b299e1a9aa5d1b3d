using System.Net;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Wellness;

/// <summary>End-user tokens on a server whose clock follows real time: the JWT handler checks a token's lifetime against
/// the system clock, not the server's TimeProvider, so the fixed March 2026 clock of <see cref="EwaFixture"/> would make
/// every token look expired (reported to the coordinator). Dates here are relative to today.</summary>
public abstract class EwaEndUserContract(ServerFixture fixture)
{
    [Fact]
    public async Task An_employee_token_sees_only_that_employee_and_other_tenants_see_nothing()
    {
        var ewa = await Ewa.NewAsync(fixture.Server);
        var today = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(fixture.Clock.UtcNow, TimeZoneInfo.FindSystemTimeZoneById("Asia/Jakarta")).DateTime);
        // Payday ten days ahead (moved back at most a few days for a weekend), no blackout before it: today is open.
        var er = await ewa.EmployerAsync(new { blackout_days = 0 }, paydayDay: (today.AddDays(10).Day - 1) % 28 + 1);
        await ewa.ImportAsync(er, "e1,Siti,,,daily,20000000,2020-01-01,BCA,1234567890", "e2,Agus,,,daily,20000000,2020-01-01,BCA,7777777777");
        var day = today.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        await ewa.Http.PostJsonAsync($"/v1/ewa/employers/{er}/attendance", new object[] { new { employee_id = "e1", date = day, hours = 8 } });
        var me = await ewa.EmployeeClientAsync(er, "e1");
        var who = await me.GetJsonAsync("/v1/ewa/me");
        Assert.True(who.Response.IsSuccessStatusCode, who.Body?.ToJsonString());
        Assert.Equal("e1", (string)who.Body!["employee_id"]!);
        Assert.Equal(20_000_000, (long)(await ewa.BalanceAsync(er, "e1", me))["earned"]!);
        (await me.GetJsonAsync($"/v1/ewa/employers/{er}/employees/e2/balance")).AssertProblem(404, "employer_not_found");
        (await me.GetJsonAsync($"/v1/ewa/employers/{er}")).AssertProblem(404, "employer_not_found");
        (await me.GetJsonAsync($"/v1/ewa/employers/{er}/employees")).AssertProblem(404, "employer_not_found");
        var w = await ewa.WithdrawAsync(er, "e1", 5_000_000, as_: me);
        Assert.True(w.Response.StatusCode == HttpStatusCode.Accepted, w.Body?.ToJsonString());
        Assert.Empty((await me.GetJsonAsync("/v1/ewa/employers")).Body!["data"]!.AsArray());

        var other = await Ewa.NewAsync(fixture.Server);
        (await other.Http.GetJsonAsync($"/v1/ewa/employers/{er}")).AssertProblem(404, "employer_not_found");
        (await other.Http.GetJsonAsync($"/v1/ewa/employers/{er}/employees/e1/balance")).AssertProblem(404, "employer_not_found");
        (await other.WithdrawAsync(er, "e1", 10_000_000)).AssertProblem(404, "employer_not_found");
    }
}

public sealed class SqliteEwaEndUserTests(SqliteServerFixture fixture) : EwaEndUserContract(fixture), IClassFixture<SqliteServerFixture>;

public sealed class PostgresEwaEndUserTests(PostgresServerFixture fixture) : EwaEndUserContract(fixture), IClassFixture<PostgresServerFixture>;
