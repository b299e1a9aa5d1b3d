using System.Text.RegularExpressions;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Web;

/// <summary>The earned-wage-access views and the operator's payouts screen in headless Chromium: the issue's journey
/// (an employer imports a roster, an employee signs in, sees what is available and withdraws with the fee shown first,
/// the employer finds the deduction in the payday report), payouts stuck in <c>unknown</c>, the policy, tenant
/// isolation, and the basics a Lighthouse run would check. Every journey fails on a console error, a page error, a
/// failed request or a request to anything but the server under test.</summary>
public sealed partial class EwaWebTests(EwaWebFixture fixture) : IClassFixture<EwaWebFixture>
{
    EwaWebTenant A => fixture.A;
    EwaWebTenant B => fixture.B;

    const string Roster = """
        employee_id,name,email,phone,pay_type,pay_rate,start_date,bank_code,bank_account
        E001,Siti Rahayu,siti@example.co.id,+6281234567890,monthly,500000000,2025-01-01,BCA,1234567890
        E002,Budi Santoso,,,monthly,400000000,2025-06-01,BRI,5550001111
        E003,Salah Baris,,,weekly,100,2025-01-01,BCA,123

        """;

    static async Task SignInAsync(BrowserJourney j, string link)
    {
        Assert.Equal(200, await j.GotoAsync(link));
        Assert.Equal(200, await j.ClickAndWaitAsync("main form button[type=submit]"));
        Assert.EndsWith("/app", j.Page.Url, StringComparison.Ordinal);
    }

    /// <summary>Opens <paramref name="path"/> until <paramref name="selector"/> reads <paramref name="text"/> (the page
    /// also reloads itself while work runs; opening it again is what a person waiting would do).</summary>
    static Task UntilAsync(BrowserJourney j, string path, string selector, string text, string what) =>
        Polling.Eventually(async () =>
        {
            await j.GotoAsync(path);
            return await j.TextAsync(selector) == text;
        }, what);

    [Fact]
    public async Task Employer_imports_a_roster_employee_withdraws_with_the_fee_shown_first_and_the_employer_finds_the_deduction_in_the_report()
    {
        var employer = $"/app/ewa/employers/{A.EmployerId}";
        var file = Path.Combine(Path.GetTempPath(), $"roster-{Guid.NewGuid():N}.csv");
        await File.WriteAllTextAsync(file, Roster.ReplaceLineEndings("\n"));
        try
        {
            // 1. The employer's HR admin (an end user the employer listed) imports the roster and reads the row report.
            await using (var hr = await fixture.JourneyAsync("ewa-employer-import"))
                await hr.RunAsync(async j =>
                {
                    await SignInAsync(j, await EwaWebFixture.SignInLinkAsync(A, A.HrSubject));
                    await j.GotoAsync("/app/ewa");
                    Assert.Equal(200, await j.ClickAndWaitAsync($"[data-testid=my-employers] a[href='{employer}']"));
                    await j.GotoAsync(employer + "/roster");
                    Assert.NotEmpty(await j.TextAsync("[data-testid=empty]"));
                    var input = await j.Page.QuerySelectorAsync("#roster-file");
                    await input.UploadFileAsync(file);
                    Assert.Equal(200, await j.ClickAndWaitAsync("[data-testid=import-submit]"));
                    var import = new Uri(j.Page.Url).AbsolutePath;
                    Assert.Matches($"^{employer}/imports/imp_[0-9a-z]+$", import);
                    await UntilAsync(j, import, "[data-testid=import-status]", "Completed", "the roster import completes");
                    Assert.Equal("2", await j.TextAsync("[data-testid=import-created]"));
                    Assert.Equal("1", await j.TextAsync("[data-testid=import-rejected]"));
                    var error = await j.TextsAsync("[data-testid=import-errors] tbody tr");
                    Assert.Single(error);
                    Assert.StartsWith("4\tE003\tpay_type", error[0], StringComparison.Ordinal);
                    Assert.Contains("bank_account", error[0], StringComparison.Ordinal);
                    await j.ScreenshotAsync("ewa-employer-import");

                    await j.GotoAsync(employer + "/roster");
                    var employees = await j.TextAsync("[data-testid=employees]");
                    Assert.Contains("E001", employees, StringComparison.Ordinal);
                    Assert.Contains("E002", employees, StringComparison.Ordinal);
                    Assert.Contains("BCA ******7890", employees, StringComparison.Ordinal);
                    Assert.DoesNotContain("1234567890", await j.TextAsync("main"), StringComparison.Ordinal);
                    Assert.DoesNotContain("Siti Rahayu", employees, StringComparison.Ordinal); // masked in lists
                    await j.ScreenshotAsync("ewa-employer-roster");
                });

            // 2. The employee, on a phone, in Bahasa Indonesia: earned, available, the fee before confirming, then paid.
            await using (var employee = await fixture.JourneyAsync("ewa-employee", "id-ID"))
                await employee.RunAsync(async j =>
                {
                    await j.Page.SetViewportAsync(new PuppeteerSharp.ViewPortOptions { Width = 390, Height = 844, IsMobile = true });
                    await SignInAsync(j, await EwaWebFixture.SignInLinkAsync(A, $"ewa:{A.EmployerId}:E001"));
                    await j.GotoAsync("/app/ewa");
                    // 16 of 20 business days of a Rp 5.000.000 salary; 50 % of it is accessible.
                    Assert.Equal("Rp 4.000.000", await j.TextAsync("[data-testid=ewa-earned]"));
                    Assert.Equal("Rp 2.000.000", await j.TextAsync("[data-testid=ewa-available]"));
                    Assert.Contains("Rp 2.000.000", await j.TextAsync("[data-testid=ewa-limited-by]"), StringComparison.Ordinal);
                    await j.ScreenshotAsync("ewa-employee");

                    await j.TypeAsync("#withdraw-amount", "500.000");
                    Assert.Equal(200, await j.ClickAndWaitAsync("[data-testid=withdraw-review]"));
                    Assert.Equal("Rp 500.000", await j.TextAsync("[data-testid=preview-net]"));
                    Assert.Equal("Rp 15.000", await j.TextAsync("[data-testid=preview-fee]"));
                    Assert.Equal("Rp 515.000", await j.TextAsync("[data-testid=preview-deducted]"));
                    Assert.Equal(0, await j.Page.EvaluateExpressionAsync<int>("document.querySelectorAll('[data-testid=withdrawals] tbody tr').length"));
                    await j.ScreenshotAsync("ewa-employee-preview");

                    // The confirmation sent twice more (a double click, a resent form), then clicked: one withdrawal.
                    var resent = await j.Page.EvaluateFunctionAsync<string[]>("""
                        async () => {
                          const form = document.querySelector('[data-testid=withdraw-preview] form');
                          const send = () => fetch(location.pathname, { method: 'POST', body: new URLSearchParams(new FormData(form)) });
                          const [a, b] = await Promise.all([send(), send()]);
                          return [a, b].map(r => `${r.status} ${new URL(r.url).pathname}`);
                        }
                        """);
                    Assert.Equal(200, await j.ClickAndWaitAsync("[data-testid=withdraw-confirm]"));
                    var withdrawal = new Uri(j.Page.Url).AbsolutePath;
                    Assert.Matches("^/app/ewa/withdrawals/wd_[0-9a-f]{26}$", withdrawal);
                    Assert.Equal(["200 " + withdrawal, "200 " + withdrawal], resent);
                    Assert.Equal("Rp 500.000", await j.TextAsync("[data-testid=withdrawal-amount]"));
                    await UntilAsync(j, withdrawal, "[data-testid=withdrawal-status]", "Dibayar", "the withdrawal is paid");
                    await j.ScreenshotAsync("ewa-employee-withdrawal");

                    await j.GotoAsync("/app/ewa");
                    Assert.Single(await j.TextsAsync("[data-testid=withdrawals] tbody tr"));
                    Assert.Equal("Rp 515.000", await j.TextAsync("[data-testid=ewa-withdrawn]"));
                    Assert.Equal("Rp 1.485.000", await j.TextAsync("[data-testid=ewa-available]"));
                });

            // 3. Payday passes; the nightly work closes the cycle; the employer reads and downloads the deductions.
            fixture.Clock.JumpTo(EwaWebFixture.AfterPayday);
            await Polling.Eventually(() => A.Http.GetJsonAsync($"/v1/ewa/employers/{A.EmployerId}/cycles/{EwaWebFixture.Payday}"),
                r => r.Body?["status"]?.ToString() == "closed", "the cycle of payday 2026-03-13 closes");
            await using (var hr = await fixture.JourneyAsync("ewa-employer-report"))
                await hr.RunAsync(async j =>
                {
                    await SignInAsync(j, await EwaWebFixture.SignInLinkAsync(A, A.HrSubject));
                    await j.GotoAsync(employer + "/cycles");
                    var row = $"[data-testid=cycles] tr[data-cycle='{EwaWebFixture.Payday}']";
                    Assert.Contains("Closed", await j.TextAsync(row), StringComparison.Ordinal);
                    await j.ScreenshotAsync("ewa-employer-cycles");
                    Assert.Equal(200, await j.ClickAndWaitAsync($"{row} td a"));
                    Assert.Equal("IDR 515,000", await j.TextAsync("[data-testid=deductions] tr[data-employee=E001] [data-testid=deduction-recovered]"));
                    await j.ScreenshotAsync("ewa-employer-deductions");
                    var csv = await j.Page.EvaluateFunctionAsync<string>("""
                        async () => {
                          const r = await fetch(document.querySelector('[data-testid=deductions-csv]').href);
                          return r.headers.get('content-type') + '\n' + await r.text();
                        }
                        """);
                    var lines = csv.Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
                    Assert.StartsWith("text/csv", lines[0], StringComparison.Ordinal);
                    Assert.Equal("employee_id,withdrawals,advances,fees,carry_in,due,net_pay,recovered,carried", lines[1]);
                    Assert.Contains("E001,1,50000000,1500000,0,51500000,500000000,51500000,0", lines);

                    await j.GotoAsync(employer);
                    Assert.Equal(1, await j.Page.EvaluateExpressionAsync<int>(
                        $"document.querySelectorAll(\"[data-testid=utilisation-chart] svg [data-cycle='{EwaWebFixture.Payday}'] rect\").length"));
                    Assert.Contains("IDR 500,000", await j.TextAsync("[data-testid=utilisation]"), StringComparison.Ordinal);
                    await j.ScreenshotAsync("ewa-employer-overview");
                });
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Operator_sees_payouts_stuck_in_unknown_with_their_age_provider_reference_and_masked_destination()
    {
        await using var journey = await fixture.JourneyAsync("payouts-stuck");
        await journey.RunAsync(async j =>
        {
            await j.SignInOperatorAsync(A.ApiKey);
            Assert.Equal(200, await j.ClickAndWaitAsync("header nav a[href='/operator/payouts']"));
            var stuck = $"[data-testid=payouts-unknown] tr[data-payout='{A.StuckPayoutId}']";
            var row = await j.TextAsync(stuck);
            Assert.Contains("IDR 1,250,000", row, StringComparison.Ordinal);
            Assert.Contains("BCA ******7890", row, StringComparison.Ordinal);
            Assert.Contains("disb_" + A.StuckPayoutId, row, StringComparison.Ordinal);
            Assert.Matches(AgePattern(), await j.TextAsync($"{stuck} [data-testid=payout-age]"));
            Assert.DoesNotContain(B.StuckPayoutId, await j.TextAsync("main"), StringComparison.Ordinal);
            Assert.DoesNotContain("1234567890", await j.TextAsync("main"), StringComparison.Ordinal);
            var failed = await j.TextAsync($"[data-testid=payouts-failed] tr[data-payout='{A.FailedPayoutId}']");
            Assert.Contains("invalid_destination", failed, StringComparison.Ordinal);
            Assert.Contains("BNI ******6543", failed, StringComparison.Ordinal);
            await j.ScreenshotAsync("operator-payouts");

            Assert.Equal(200, await j.ClickAndWaitAsync($"{stuck} a"));
            Assert.Equal("Unknown", await j.TextAsync("[data-testid=payout-status]"));
            Assert.Contains("BCA ******7890", await j.TextAsync("[data-testid=payout-destination]"), StringComparison.Ordinal);
            await j.ScreenshotAsync("operator-payout");
        });
    }

    [Fact]
    public async Task Operator_changes_the_policy_and_a_bad_value_is_refused_with_the_fields_named()
    {
        await using var journey = await fixture.JourneyAsync("ewa-policy");
        await journey.RunAsync(async j =>
        {
            await j.SignInOperatorAsync(A.ApiKey);
            Assert.Equal(200, await j.ClickAndWaitAsync("header nav a[href='/operator/ewa']"));
            Assert.Equal(200, await j.ClickAndWaitAsync($"[data-testid=employers] a[href='/operator/ewa/employers/{A.EmployerId}']"));
            await j.GotoAsync($"/operator/ewa/employers/{A.EmployerId}/policy");
            Assert.Equal("50", await j.Page.EvaluateExpressionAsync<string>("document.querySelector('#p-max-percent').value"));
            Assert.Equal("15000", await j.Page.EvaluateExpressionAsync<string>("document.querySelector('#p-fee').value"));

            j.ExpectStatus(400);
            await j.Page.EvaluateExpressionAsync("document.querySelector('#p-fee').value = 'lima ribu'");
            Assert.Equal(400, await j.ClickAndWaitAsync("[data-testid=policy-save]"));
            Assert.Equal("validation_failed", await j.TextAsync("[data-testid=problem-code]"));
            Assert.Contains("fee_flat", await j.TextAsync("[data-testid=problem]"), StringComparison.Ordinal);

            // The API's own rule: the largest withdrawal may not be below the smallest.
            await j.GotoAsync($"/operator/ewa/employers/{A.EmployerId}/policy");
            await j.Page.EvaluateExpressionAsync("document.querySelector('#p-withdrawal-max').value = '10000'");
            Assert.Equal(400, await j.ClickAndWaitAsync("[data-testid=policy-save]"));
            Assert.Contains("policy.withdrawal_max", await j.TextAsync("[data-testid=problem]"), StringComparison.Ordinal);

            await j.GotoAsync($"/operator/ewa/employers/{A.EmployerId}/policy");
            await j.Page.EvaluateExpressionAsync("document.querySelector('#p-count').value = '6'");
            Assert.Equal(200, await j.ClickAndWaitAsync("[data-testid=policy-save]"));
            Assert.NotEmpty(await j.TextAsync("[data-testid=policy-saved]"));
            Assert.Equal("6", await j.Page.EvaluateExpressionAsync<string>("document.querySelector('#p-count').value"));
            await j.ScreenshotAsync("ewa-employer-policy");
        });
        var saved = await A.Http.GetJsonAsync($"/v1/ewa/employers/{A.EmployerId}");
        Assert.Equal(6, (int)saved.Body!["policy"]!["withdrawals_per_cycle_max"]!);
        Assert.Equal(1_500_000, (long)saved.Body!["policy"]!["fee_flat"]!);
    }

    [Fact]
    public async Task Another_tenants_or_employees_ids_in_a_url_show_not_found()
    {
        await using var op = await fixture.JourneyAsync("ewa-isolation-operator");
        await op.RunAsync(async j =>
        {
            await j.SignInOperatorAsync(A.ApiKey);
            j.ExpectStatus(404);
            foreach (var (path, code) in new[]
            {
                ($"/operator/ewa/employers/{B.EmployerId}", "employer_not_found"),
                ($"/operator/ewa/employers/{B.EmployerId}/cycles", "employer_not_found"),
                ($"/operator/ewa/employers/{B.EmployerId}/employees/E001", "employer_not_found"),
                ($"/operator/ewa/employers/{A.EmployerId}/employees/B-ONLY", "employee_not_found"),
                ($"/operator/payouts/{B.StuckPayoutId}", "payout_not_found"),
            })
            {
                Assert.Equal(404, await j.GotoAsync(path));
                Assert.Equal(code, await j.TextAsync("[data-testid=problem-code]"));
                Assert.DoesNotContain(B.EmployerId, await j.TextAsync("main table, main dl"), StringComparison.Ordinal);
            }
            await j.ScreenshotAsync("ewa-not-found");
            var csv = await j.Page.EvaluateFunctionAsync<int>("async p => (await fetch(p)).status",
                $"/operator/ewa/employers/{B.EmployerId}/cycles/{EwaWebFixture.Payday}/deductions.csv");
            Assert.Equal(404, csv);
        });

        // An employee sees only themselves: their own withdrawal, never another employee's, and no employer screens.
        await using var own = await fixture.JourneyAsync("ewa-isolation-employee");
        await own.RunAsync(async j =>
        {
            await SignInAsync(j, await EwaWebFixture.SignInLinkAsync(B, $"ewa:{B.EmployerId}:E001"));
            Assert.Equal(200, await j.GotoAsync($"/app/ewa/withdrawals/{B.WithdrawalId}"));
        });
        await using var other = await fixture.JourneyAsync("ewa-isolation-other-employee");
        await other.RunAsync(async j =>
        {
            await SignInAsync(j, await EwaWebFixture.SignInLinkAsync(B, $"ewa:{B.EmployerId}:B-ONLY"));
            j.ExpectStatus(404);
            Assert.Equal(404, await j.GotoAsync($"/app/ewa/withdrawals/{B.WithdrawalId}"));
            Assert.Equal("withdrawal_not_found", await j.TextAsync("[data-testid=problem-code]"));
            Assert.Equal(404, await j.GotoAsync($"/app/ewa/employers/{B.EmployerId}"));
            Assert.Equal("employer_not_found", await j.TextAsync("[data-testid=problem-code]"));
        });
        await using var hr = await fixture.JourneyAsync("ewa-isolation-hr");
        await hr.RunAsync(async j =>
        {
            await SignInAsync(j, await EwaWebFixture.SignInLinkAsync(A, A.HrSubject));
            j.ExpectStatus(404);
            Assert.Equal(404, await j.GotoAsync($"/app/ewa/employers/{B.EmployerId}/roster"));
            Assert.Equal("employer_not_found", await j.TextAsync("[data-testid=problem-code]"));
        });
    }

    [Fact]
    public async Task Ewa_and_payout_pages_stay_within_their_weight_budget_reach_only_this_server_and_label_every_field()
    {
        const long BudgetBytes = 100 * 1024;
        async Task CheckAsync(BrowserJourney j, string path)
        {
            Assert.Equal(200, await j.GotoAsync(path));
            var (bytes, urls) = await j.WeightAsync();
            Assert.True(bytes < BudgetBytes, $"{path} loaded {bytes} bytes (budget {BudgetBytes})");
            Assert.All(urls, u => Assert.StartsWith(fixture.Server.BaseAddress.GetLeftPart(UriPartial.Authority) + "/", u, StringComparison.Ordinal));
            var unlabelled = await j.Page.EvaluateExpressionAsync<string[]>("""
                [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                  .filter(e => !(e.id && document.querySelector(`label[for="${e.id}"]`)) && !e.getAttribute('aria-label'))
                  .map(e => e.outerHTML)
                """);
            Assert.True(unlabelled.Length == 0, $"{path}: fields without a label: {string.Join(", ", unlabelled)}");
            Assert.False(string.IsNullOrWhiteSpace(await j.Page.EvaluateExpressionAsync<string>("document.title")), path + " has no title");
            Assert.Equal(1, await j.Page.EvaluateExpressionAsync<int>("document.querySelectorAll('h1').length"));
        }

        await using var op = await fixture.JourneyAsync("ewa-basics-operator");
        await op.RunAsync(async j =>
        {
            await j.SignInOperatorAsync(B.ApiKey);
            var employer = $"/operator/ewa/employers/{B.EmployerId}";
            foreach (var path in new[] { "/operator/ewa", employer, employer + "/roster", employer + "/policy", employer + "/cycles",
                         employer + "/employees/E001", "/operator/payouts", $"/operator/payouts/{B.StuckPayoutId}" })
                await CheckAsync(j, path);
        });
        await using var employee = await fixture.JourneyAsync("ewa-basics-employee");
        await employee.RunAsync(async j =>
        {
            await SignInAsync(j, await EwaWebFixture.SignInLinkAsync(B, $"ewa:{B.EmployerId}:E001"));
            foreach (var path in new[] { "/app/ewa", $"/app/ewa/withdrawals/{B.WithdrawalId}" })
                await CheckAsync(j, path);
        });
    }

    [GeneratedRegex(@"^\d+ (d \d+ h|h \d+ min|min)$")]
    private static partial Regex AgePattern();
}
