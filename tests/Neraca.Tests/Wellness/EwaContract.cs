using Microsoft.Extensions.DependencyInjection;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Wellness;

/// <summary>Earned wage access over HTTP, on both stores (the classes at the end). The server's clock stands at
/// Tuesday 2026-03-10 10:00 in Jakarta; with payday the 25th the cycle is Thu Feb 26 .. Wed Mar 25 (20 business days,
/// 8 of them before today).</summary>
public abstract class EwaContract(EwaFixture fixture)
{
    protected NeracaServer Server => fixture.Server;

    const string Salaried = "e1,Siti Aminah,siti@example.com,+628123456789,monthly,500000000,2025-01-01,BCA,1234567890";

    static long L(JsonNode? n) => (long)n!;

    [Fact]
    public async Task Salaried_employee_earns_pro_rata_by_business_days_elapsed_before_today()
    {
        var ewa = await Ewa.NewAsync(Server);
        var er = await ewa.EmployerAsync();
        await ewa.ImportAsync(er, Salaried);
        var b = await ewa.BalanceAsync(er, "e1");
        Assert.Equal(200_000_000, L(b["earned"]));             // floor(Rp 5.000.000 x 8 / 20)
        Assert.Equal(100_000_000, L(b["accessible"]));
        Assert.Equal(0, L(b["withdrawn"]));
        Assert.Equal(100_000_000, L(b["available"]));
        Assert.Null(b["blocked_reason"]);
        Assert.Equal("2026-02-26", (string)b["cycle"]!["start"]!);
        Assert.Equal("2026-03-25", (string)b["cycle"]!["payday"]!);
        Assert.Equal(8, (int)b["explanation"]!["business_days_elapsed"]!);
        Assert.Equal(20, (int)b["explanation"]!["business_days_in_cycle"]!);
        Assert.Equal("accessible", (string)b["explanation"]!["limited_by"]!);
        Assert.Equal(100_000_000 - 1_500_000, L(b["amount_max"]));  // the employee pays the Rp 15.000 fee
    }

    [Fact]
    public async Task A_cycle_with_withdrawals_keeps_its_payday_until_it_closes()
    {
        var ewa = await Ewa.NewAsync(Server);
        var er = await ewa.EmployerAsync();
        var quiet = await ewa.EmployerAsync();
        await ewa.ImportAsync(er, Salaried);
        await ewa.ImportAsync(quiet, Salaried);
        var w = await ewa.WithdrawAsync(er, "e1", 10_000_000);
        Assert.True(w.Response.StatusCode == System.Net.HttpStatusCode.Accepted, w.Body?.ToJsonString());

        // Moving payday to the 15th would start a new cycle with none of the advance in it, and never recover it.
        var moved = await ewa.Http.SendAsync(new HttpRequestMessage(HttpMethod.Patch, $"/v1/ewa/employers/{er}") { Content = JsonContent.Create(new { payday_day = 15 }) });
        (moved, await Http.ReadAsync(moved)).AssertProblem(409, "cycle_in_progress");
        Assert.Contains("2026-03-25", (await ewa.Http.GetJsonAsync($"/v1/ewa/employers/{er}")).Body!["current_cycle"]!.ToJsonString(), StringComparison.Ordinal);
        // A holiday on the cycle's payday moves it too; one next year, or a name change, leaves it alone.
        var onPayday = await ewa.Http.SendAsync(new HttpRequestMessage(HttpMethod.Patch, $"/v1/ewa/employers/{er}") { Content = JsonContent.Create(new { holidays = new[] { "2026-03-25" } }) });
        (onPayday, await Http.ReadAsync(onPayday)).AssertProblem(409, "cycle_in_progress");
        var later = await ewa.Http.SendAsync(new HttpRequestMessage(HttpMethod.Patch, $"/v1/ewa/employers/{er}") { Content = JsonContent.Create(new { holidays = new[] { "2027-01-01" }, name = "PT Baru" }) });
        Assert.Equal(System.Net.HttpStatusCode.OK, later.StatusCode);
        Assert.Equal(10_000_000 + 1_500_000, L((await ewa.BalanceAsync(er, "e1"))["withdrawn"]));

        // An employer whose open cycle holds nothing may move its payday at once.
        var free = await ewa.Http.SendAsync(new HttpRequestMessage(HttpMethod.Patch, $"/v1/ewa/employers/{quiet}") { Content = JsonContent.Create(new { payday_day = 15 }) });
        Assert.Equal(System.Net.HttpStatusCode.OK, free.StatusCode);
        Assert.Equal("2026-03-13", (string)(await ewa.BalanceAsync(quiet, "e1"))["cycle"]!["payday"]!); // Sun Mar 15 -> Fri Mar 13
    }

    [Fact]
    public async Task Payday_on_a_weekend_moves_to_the_friday_before()
    {
        var ewa = await Ewa.NewAsync(Server);
        var er = await ewa.EmployerAsync(paydayDay: 14);          // Sat Mar 14 2026 -> Fri Mar 13
        await ewa.ImportAsync(er, Salaried);
        var b = await ewa.BalanceAsync(er, "e1");
        Assert.Equal("2026-03-13", (string)b["cycle"]!["payday"]!);
        Assert.Equal("2026-02-14", (string)b["cycle"]!["start"]!); // Sat Feb 14 -> payday Fri Feb 13
        Assert.Equal("blackout", (string?)b["blocked_reason"]);    // Mar 10 .. 13 with 3 blackout days
        Assert.Equal(0, L(b["available"]));
    }

    [Fact]
    public async Task Attendance_counts_at_once_and_a_correction_replaces_the_day()
    {
        var ewa = await Ewa.NewAsync(Server);
        var er = await ewa.EmployerAsync();
        await ewa.ImportAsync(er, Salaried, "h1,Budi,,,hourly,5000000,2025-01-01,BRI,5550001111", "d1,Wati,,,daily,20000000,2025-01-01,BNI,5550002222");
        var r = await ewa.Http.PostJsonAsync($"/v1/ewa/employers/{er}/attendance", new object[]
        {
            new { employee_id = "h1", date = "2026-03-09", hours = 8 },
            new { employee_id = "h1", date = "2026-03-10", hours = 4.5 },
            new { employee_id = "d1", date = "2026-03-09", hours = 8 },
            new { employee_id = "d1", date = "2026-03-02", hours = 0 },
            new { employee_id = "h1", date = "2026-03-11", hours = 8 },  // tomorrow
            new { employee_id = "e1", date = "2026-03-09", hours = 8 },  // salaried
            new { employee_id = "zz", date = "2026-03-09", hours = 8 },
            new { employee_id = "h1", date = "2026-03-08", hours = 25 },
        });
        Assert.Equal(HttpStatusCode.OK, r.Response.StatusCode);
        Assert.Equal(4, (int)r.Body!["accepted"]!);
        Assert.Equal([4, 5, 6, 7], r.Body!["rejections"]!.AsArray().Select(x => (int)x!["index"]!).ToArray());
        Assert.Equal(62_500_000, L((await ewa.BalanceAsync(er, "h1"))["earned"]));  // Rp 50.000 x 12.5 h
        Assert.Equal(20_000_000, L((await ewa.BalanceAsync(er, "d1"))["earned"]));  // one day with hours

        var csv = await ewa.Http.PostRawAsync($"/v1/ewa/employers/{er}/attendance", "employee_id,date,hours\nh1,2026-03-09,2\n", "text/csv");
        Assert.Equal(HttpStatusCode.OK, csv.Response.StatusCode);
        var h = await ewa.BalanceAsync(er, "h1");
        Assert.Equal(32_500_000, L(h["earned"]));                                    // 2 + 4.5 hours
        Assert.Equal(6.5m, (decimal)h["explanation"]!["hours_worked"]!);
        Assert.Equal(16_250_000, L(h["accessible"]));
    }

    [Fact]
    public async Task Every_blocked_reason_is_shown_and_refuses_withdrawals_naming_it()
    {
        var ewa = await Ewa.NewAsync(Server);
        var er = await ewa.EmployerAsync(new { waiting_days = 30, withdrawals_per_cycle_max = 1 });
        await ewa.ImportAsync(er, "p,P,,,monthly,500000000,2025-01-01,BCA,1111111111", "t,T,,,monthly,500000000,2025-01-01,BCA,2222222222",
            "w,W,,,monthly,500000000,2026-03-01,BCA,3333333333", "c,C,,,monthly,500000000,2025-01-01,BCA,4444444444");
        Assert.Equal(HttpStatusCode.OK, (await ewa.Http.PatchAsJsonAsync($"/v1/ewa/employers/{er}/employees/p", new { status = "paused" })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await ewa.Http.PatchAsJsonAsync($"/v1/ewa/employers/{er}/employees/t", new { status = "terminated" })).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await ewa.WithdrawAsync(er, "c", 10_000_000)).Response.StatusCode);

        var blackout = await ewa.EmployerAsync(paydayDay: 12);   // Thu Mar 12: Mar 9 .. 12 is the blackout
        await ewa.ImportAsync(blackout, "b,B,,,monthly,500000000,2025-01-01,BCA,5555555555");

        foreach (var (employer, employee, reason) in new[] { (er, "p", "paused"), (er, "t", "terminated"), (er, "w", "waiting_period"),
                     (er, "c", "cycle_count_reached"), (blackout, "b", "blackout") })
        {
            var b = await ewa.BalanceAsync(employer, employee);
            Assert.Equal(reason, (string?)b["blocked_reason"]);
            Assert.Equal(0, L(b["available"]));
            var w = await ewa.WithdrawAsync(employer, employee, 10_000_000);
            w.AssertProblem(422, "ewa_limit_exceeded");
            Assert.Equal(reason, (string?)w.Body!["limit"]);
        }
        Assert.Equal("2026-03-31", (string?)(await ewa.BalanceAsync(er, "w"))["explanation"]!["waiting_until"]);
    }

    [Fact]
    public async Task Caps_limit_each_withdrawal_and_the_cycle()
    {
        var ewa = await Ewa.NewAsync(Server);
        var er = await ewa.EmployerAsync(new { cycle_cap = 30_000_000, withdrawal_max = 20_000_000, withdrawal_min = 5_000_000, fee_flat = 1_000_000 });
        await ewa.ImportAsync(er, Salaried);
        var b = await ewa.BalanceAsync(er, "e1");
        Assert.Equal(20_000_000, L(b["available"]));
        Assert.Equal("withdrawal_max", (string)b["explanation"]!["limited_by"]!);
        Assert.Equal(19_000_000, L(b["amount_max"]));

        var tooBig = await ewa.WithdrawAsync(er, "e1", 19_500_000);           // + fee = 20.5M
        tooBig.AssertProblem(422, "ewa_limit_exceeded");
        Assert.Equal("withdrawal_max", (string?)tooBig.Body!["limit"]);
        var tooSmall = await ewa.WithdrawAsync(er, "e1", 4_000_000);
        Assert.Equal("withdrawal_min", (string?)tooSmall.Body!["limit"]);
        var ok = await ewa.WithdrawAsync(er, "e1", 19_000_000);
        Assert.Equal(HttpStatusCode.Accepted, ok.Response.StatusCode);
        Assert.Equal(1_000_000, L(ok.Body!["fee"]));

        b = await ewa.BalanceAsync(er, "e1");
        Assert.Equal(20_000_000, L(b["withdrawn"]));
        Assert.Equal(10_000_000, L(b["available"]));                         // cycle_cap 30M - 20M
        Assert.Equal("cycle_cap", (string)b["explanation"]!["limited_by"]!);
        var overCap = await ewa.WithdrawAsync(er, "e1", 9_500_000);
        overCap.AssertProblem(422, "ewa_limit_exceeded");
        Assert.Equal("cycle_cap", (string?)overCap.Body!["limit"]);
    }

    [Fact]
    public async Task Fee_paid_by_the_employee_counts_as_withdrawn_and_the_employer_fee_does_not()
    {
        var ewa = await Ewa.NewAsync(Server);
        var employeePays = await ewa.EmployerAsync();
        var employerPays = await ewa.EmployerAsync(new { fee_payer = "employer", funding = "provider_funded" }, fund: 0);
        await ewa.ImportAsync(employeePays, Salaried);
        await ewa.ImportAsync(employerPays, Salaried);
        Assert.Equal(HttpStatusCode.Accepted, (await ewa.WithdrawAsync(employeePays, "e1", 10_000_000)).Response.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await ewa.WithdrawAsync(employerPays, "e1", 10_000_000)).Response.StatusCode);

        Assert.Equal(11_500_000, L((await ewa.BalanceAsync(employeePays, "e1"))["withdrawn"]));
        Assert.Equal(10_000_000, L((await ewa.BalanceAsync(employerPays, "e1"))["withdrawn"]));

        // Prefunded: the float covers advance + fee at once; the advances account holds what payroll recovers.
        Assert.Equal(10_000_000_000 - 11_500_000, await ewa.AccountBalanceAsync($"ewa:{employeePays}:float"));
        Assert.Equal(11_500_000, await ewa.AccountBalanceAsync($"ewa:{employeePays}:committed"));
        Assert.Equal(11_500_000, await ewa.AccountBalanceAsync($"ewa:{employeePays}:advances"));
        Assert.Equal(1_500_000, await ewa.AccountBalanceAsync($"ewa:{employeePays}:fees"));
        // Provider funded: the employer owes its fee now; the advance is recovered from payroll.
        Assert.Equal(1_500_000, await ewa.AccountBalanceAsync($"ewa:{employerPays}:receivable"));
        Assert.Equal(10_000_000, await ewa.AccountBalanceAsync($"ewa:{employerPays}:advances"));
        Assert.Equal(1_500_000, await ewa.AccountBalanceAsync($"ewa:{employerPays}:fees"));
    }

    [Fact]
    public async Task Hundred_concurrent_withdrawals_by_one_employee_never_exceed_available()
    {
        var ewa = await Ewa.NewAsync(Server);
        var er = await ewa.EmployerAsync(new { withdrawal_min = 1_000_000, withdrawals_per_cycle_max = 100, fee_flat = 100_000 });
        await ewa.ImportAsync(er, Salaried);
        // The operator's server key: end-user tokens are rate limited per user (600/min with a burst), which would
        // answer some of the 100 with 429 before they reach the limit check this test is about.
        var results = await Task.WhenAll(Enumerable.Range(0, 100).Select(_ => ewa.WithdrawAsync(er, "e1", 3_000_000)));
        var accepted = results.Count(r => r.Response.StatusCode == HttpStatusCode.Accepted);
        Assert.All(results.Where(r => r.Response.StatusCode != HttpStatusCode.Accepted), r => r.AssertProblem(422, "ewa_limit_exceeded"));
        Assert.Equal(32, accepted);                                 // floor(100.000.000 / 3.100.000): every one that fitted, none more
        var b = await ewa.BalanceAsync(er, "e1");
        Assert.Equal(32 * 3_100_000, L(b["withdrawn"]));
        Assert.True(L(b["withdrawn"]) <= 100_000_000);
        Assert.Equal(32 * 3_100_000, await ewa.AccountBalanceAsync($"ewa:{er}:advances"));
    }

    [Fact]
    public async Task Withdrawal_replayed_with_its_idempotency_key_is_the_same_and_a_different_body_is_refused()
    {
        var ewa = await Ewa.NewAsync(Server);
        var er = await ewa.EmployerAsync();
        await ewa.ImportAsync(er, Salaried);
        var first = await ewa.WithdrawAsync(er, "e1", 10_000_000, key: "k-1");
        var again = await ewa.WithdrawAsync(er, "e1", 10_000_000, key: "k-1");
        Assert.Equal((string)first.Body!["id"]!, (string)again.Body!["id"]!);
        (await ewa.WithdrawAsync(er, "e1", 20_000_000, key: "k-1")).AssertProblem(422, "idempotency_key_reused");
        Assert.Equal(11_500_000, L((await ewa.BalanceAsync(er, "e1"))["withdrawn"]));
        var one = await ewa.Http.GetJsonAsync($"/v1/ewa/employers/{er}/employees/e1/withdrawals/{first.Body!["id"]}");
        Assert.Equal(10_000_000, L(one.Body!["amount"]));
        var list = await ewa.Http.GetJsonAsync($"/v1/ewa/employers/{er}/employees/e1/withdrawals");
        Assert.Single(list.Body!["data"]!.AsArray());
    }

    [Fact]
    public async Task Roster_import_upserts_by_employee_id_and_reports_rejected_lines()
    {
        var ewa = await Ewa.NewAsync(Server);
        var er = await ewa.EmployerAsync();
        var first = await ewa.ImportAsync(er, Salaried, "e2,Agus,,,weekly,100,2025-01-01,BCA,1234567890", "e3,Rina,,,daily,20000000,2025-01-01,BCA,99",
            "e1,Siti Again,,,monthly,1,2025-01-01,BCA,1234567890", "e4,Dewi,dewi@example.com,,hourly,5000000,2025-02-01,MANDIRI,1234500000");
        Assert.Equal(2, (int)first["created"]!);
        Assert.Equal(3, (int)first["rejected"]!);
        var errors = first["errors"]!.AsArray();
        Assert.Equal([3, 4, 5], errors.Select(e => (int)e!["line"]!).ToArray());
        Assert.Contains("pay_type", (string)errors[0]!["reason"]!, StringComparison.Ordinal);
        Assert.Contains("bank_account", (string)errors[1]!["reason"]!, StringComparison.Ordinal);
        Assert.Contains("line 2", (string)errors[2]!["reason"]!, StringComparison.Ordinal);

        var second = await ewa.ImportAsync(er, Salaried, "e4,Dewi Lestari,dewi@example.com,,hourly,6000000,2025-02-01,MANDIRI,1234500000",
            "e5,Joko,,,monthly,400000000,2025-01-01,BCA,7777777777");
        Assert.Equal((1, 1, 1, 0), ((int)second["created"]!, (int)second["updated"]!, (int)second["unchanged"]!, (int)second["rejected"]!));
        var e4 = await ewa.Http.GetJsonAsync($"/v1/ewa/employers/{er}/employees/e4");
        Assert.Equal("Dewi Lestari", (string)e4.Body!["name"]!);
        Assert.Equal(6_000_000, L(e4.Body!["pay_rate"]));
        Assert.Equal("******0000", (string)e4.Body!["bank"]!["account_masked"]!);
        var list = await ewa.Http.GetJsonAsync($"/v1/ewa/employers/{er}/employees?limit=2");
        Assert.Equal(2, list.Body!["data"]!.AsArray().Count);
        Assert.NotEqual("Siti Aminah", (string)list.Body!["data"]![0]!["name"]!);   // masked in lists
        var page2 = await ewa.Http.GetJsonAsync($"/v1/ewa/employers/{er}/employees?limit=2&after={list.Body!["next_cursor"]}");
        Assert.Single(page2.Body!["data"]!.AsArray());
    }

    [Fact]
    public async Task A_50000_row_roster_imports_as_a_background_job_that_shows_its_progress()
    {
        const int Rows = 50_000;
        var ewa = await Ewa.NewAsync(Server);
        var er = await ewa.EmployerAsync();
        // Every 5,000th row has a pay type the API does not know: rejected with its line, never stopping the others.
        var lines = Enumerable.Range(0, Rows).Select(i =>
            $"w{i:D5},Pekerja {i},,,{(i % 5_000 == 4_999 ? "weekly" : "daily")},{20_000_000 + i},2025-01-01,BCA,{1_000_000_000 + i}");
        var upload = await ewa.Http.PostRawAsync($"/v1/ewa/employers/{er}/employees/import", Ewa.Header + "\n" + string.Join("\n", lines) + "\n", "text/csv");
        Assert.True(upload.Response.StatusCode == System.Net.HttpStatusCode.Accepted, upload.Body?.ToJsonString());
        Assert.Equal(Rows, (int)upload.Body!["total_rows"]!);
        var id = (string)upload.Body!["id"]!;

        var seen = new List<(string Status, int Processed)>();
        var done = (await Polling.Eventually(async () =>
        {
            var r = await ewa.Http.GetJsonAsync($"/v1/ewa/employers/{er}/imports/{id}");
            seen.Add(((string)r.Body!["status"]!, (int)r.Body!["processed"]!));
            return r;
        }, r => (string?)r.Body?["status"] == "completed", "the 50,000-row import completes", timeout: TimeSpan.FromMinutes(6),
            interval: TimeSpan.FromMilliseconds(200))).Body!;
        // Progress: the import was seen part-way, and its processed count never went backwards.
        Assert.Contains(seen, x => x is { Status: "running", Processed: > 0 and < Rows });
        Assert.Equal(seen.Select(x => x.Processed).Order(), seen.Select(x => x.Processed));
        Assert.Equal((Rows, Rows - 10, 0, 0, 10), ((int)done["processed"]!, (int)done["created"]!, (int)done["updated"]!, (int)done["unchanged"]!,
            (int)done["rejected"]!));
        Assert.Equal(Enumerable.Range(1, 10).Select(k => k * 5_000 + 1), done["errors"]!.AsArray().Select(e => (int)e!["line"]!));
        var last = await ewa.Http.GetJsonAsync($"/v1/ewa/employers/{er}/employees/w49998");
        Assert.Equal(20_049_998, L(last.Body!["pay_rate"]));
        (await ewa.Http.GetJsonAsync($"/v1/ewa/employers/{er}/employees/w49999")).AssertProblem(404, "employee_not_found");
    }

    [Fact]
    public async Task A_structurally_broken_roster_changes_nothing()
    {
        var ewa = await Ewa.NewAsync(Server);
        var er = await ewa.EmployerAsync();
        var missing = await ewa.Http.PostRawAsync($"/v1/ewa/employers/{er}/employees/import",
            "employee_id,name,pay_type,pay_rate\ne1,Siti,monthly,500000000\n", "text/csv");
        missing.AssertProblem(400, "roster_file_invalid");
        Assert.Contains("bank_account", (string)missing.Body!["detail"]!, StringComparison.Ordinal);
        var quotes = await ewa.Http.PostRawAsync($"/v1/ewa/employers/{er}/employees/import",
            Ewa.Header + "\n" + Salaried + "\ne2,\"Agus,x,,monthly,1,2025-01-01,BCA,1234567890\n", "text/csv");
        quotes.AssertProblem(400, "roster_file_invalid");
        (await ewa.Http.PostRawAsync($"/v1/ewa/employers/{er}/employees/import", "{}", "application/json")).AssertProblem(415, "unsupported_media_type");
        var list = await ewa.Http.GetJsonAsync($"/v1/ewa/employers/{er}/employees");
        Assert.Empty(list.Body!["data"]!.AsArray());
    }

    [Fact]
    public async Task Employer_keys_see_only_their_employer_and_only_an_employer_admin_reactivates()
    {
        var ewa = await Ewa.NewAsync(Server);
        var a = await ewa.EmployerAsync();
        var b = await ewa.EmployerAsync();
        await ewa.ImportAsync(a, Salaried);
        await ewa.ImportAsync(b, Salaried);
        var admin = await ewa.KeyClientAsync(a, "admin");
        var staff = await ewa.KeyClientAsync(a, "staff");

        var list = await admin.GetJsonAsync("/v1/ewa/employers");
        Assert.Equal([a], list.Body!["data"]!.AsArray().Select(x => (string)x!["id"]!).ToArray());
        (await admin.GetJsonAsync($"/v1/ewa/employers/{b}")).AssertProblem(404, "employer_not_found");
        (await admin.GetJsonAsync($"/v1/ewa/employers/{b}/employees/e1/balance")).AssertProblem(404, "employer_not_found");
        (await admin.PostJsonAsync("/v1/ewa/employers", new { name = "x", payday_day = 1 })).AssertProblem(403, "ewa_role_required");

        Assert.Equal(HttpStatusCode.OK, (await staff.PatchAsJsonAsync($"/v1/ewa/employers/{a}/employees/e1", new { status = "paused" })).StatusCode);
        var byStaff = await staff.SendAsync(new HttpRequestMessage(HttpMethod.Patch, $"/v1/ewa/employers/{a}/employees/e1")
            { Content = System.Net.Http.Json.JsonContent.Create(new { status = "active" }) });
        (byStaff, await Http.ReadAsync(byStaff)).AssertProblem(403, "employer_admin_required");
        var byOperator = await ewa.Http.PatchAsJsonAsync($"/v1/ewa/employers/{a}/employees/e1", new { status = "active" });
        (byOperator, await Http.ReadAsync(byOperator)).AssertProblem(403, "employer_admin_required");
        var byAdmin = await admin.PatchAsJsonAsync($"/v1/ewa/employers/{a}/employees/e1", new { status = "active" });
        Assert.Equal(HttpStatusCode.OK, byAdmin.StatusCode);
        Assert.Equal("active", (string?)(await Http.ReadAsync(byAdmin))!["status"]);
    }

    [Fact]
    public async Task Bad_input_is_a_problem_never_a_server_error()
    {
        var ewa = await Ewa.NewAsync(Server);
        (await ewa.Http.PostRawAsync("/v1/ewa/employers", """{"name":"x","payday_day":"25"}""")).AssertProblem(400, "validation_failed");
        (await ewa.Http.PostRawAsync("/v1/ewa/employers", """{"name":"x","payday_day":25,"colour":"red"}""")).AssertProblem(400, "validation_failed");
        var bad = await ewa.Http.PostJsonAsync("/v1/ewa/employers", new { name = "x", payday_day = 31, policy = new { max_percent_bps = 20_000, fee_payer = "nobody" } });
        bad.AssertProblem(400, "validation_failed");
        Assert.True(bad.Body!["errors"]!.AsObject().ContainsKey("payday_day") && bad.Body!["errors"]!.AsObject().ContainsKey("policy.fee_payer"));
        var er = await ewa.EmployerAsync();
        await ewa.ImportAsync(er, Salaried);
        (await ewa.WithdrawAsync(er, "e1", -5)).AssertProblem(400, "validation_failed");
        (await ewa.WithdrawAsync(er, "e1", long.MaxValue)).AssertProblem(400, "validation_failed");
        (await ewa.Http.PostRawAsync($"/v1/ewa/employers/{er}/employees/e1/withdrawals", """{"amount":"lots"}""")).AssertProblem(400, "validation_failed");
        (await ewa.Http.PostJsonAsync($"/v1/ewa/employers/{er}/funding", new { amount = 0 })).AssertProblem(400, "validation_failed");
        (await ewa.WithdrawAsync(er, "nobody", 10_000_000)).AssertProblem(404, "employee_not_found");
        (await ewa.Http.GetJsonAsync($"/v1/ewa/employers/{er}/employees?after=%%%")).AssertProblem(400, "invalid_cursor");
        (await ewa.Http.GetJsonAsync($"/v1/ewa/employers/{er}/cycles/2026-02-25/deductions")).AssertProblem(404, "cycle_not_found");
    }

    [Fact]
    public async Task Concurrent_in_process_requests_with_one_id_make_one_withdrawal_and_answer_it_to_both()
    {
        var ewa = await Ewa.NewAsync(Server);
        var er = await ewa.EmployerAsync();
        await ewa.ImportAsync(er, Salaried);
        var employer = (await Server.Services.GetRequiredService<Neraca.Wellness.Employers.EmployerStore>().GetAsync(ewa.Tenant.Id, er, CancellationToken.None))!;
        var service = Server.Services.GetRequiredService<Neraca.Wellness.Withdrawals.WithdrawalService>();
        // The web app's confirm step calls the service directly (no Idempotency-Key middleware in front of it).
        var outcomes = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
            service.RequestAsync(ewa.Tenant.Id, employer, "e1", "wd-same", new Neraca.Wellness.Withdrawals.WithdrawalRequest(10_000_000), CancellationToken.None))));
        Assert.All(outcomes, o => Assert.Equal("wd-same", o.Withdrawal!.Id));
        var list = await ewa.Http.GetJsonAsync($"/v1/ewa/employers/{er}/employees/e1/withdrawals");
        Assert.Single(list.Body!["data"]!.AsArray());
        var balance = await ewa.BalanceAsync(er, "e1");
        Assert.Equal(10_000_000 + 1_500_000, L(balance["withdrawn"]));
    }
}

public sealed class SqliteEwaContractTests(SqliteEwaFixture fixture) : EwaContract(fixture), IClassFixture<SqliteEwaFixture>;

public sealed class PostgresEwaContractTests(PostgresEwaFixture fixture) : EwaContract(fixture), IClassFixture<PostgresEwaFixture>;
