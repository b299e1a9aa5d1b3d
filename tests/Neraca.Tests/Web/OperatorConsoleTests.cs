using System.Net;
using Neraca.Events;
using Neraca.Jobs;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Web;

/// <summary>The operator console and the end users' sign-in in headless Chromium: one journey per view, tenant
/// isolation, and the basics a Lighthouse run would check. Every journey fails on a console error, a page error, a
/// failed request or a request to anything but the server under test.</summary>
public sealed class OperatorConsoleTests(WebFixture fixture) : IClassFixture<WebFixture>
{
    WebTenant A => fixture.A;

    [Fact]
    public async Task Operator_signs_in_with_an_api_key_and_explores_a_ledger_and_its_accounts_with_running_balances()
    {
        await using var journey = await fixture.JourneyAsync("ledger-explorer");
        await journey.RunAsync(async j =>
        {
            await j.GotoAsync("/operator");
            Assert.EndsWith("/operator/sign-in?return=%2Foperator", j.Page.Url, StringComparison.Ordinal);
            await j.ScreenshotAsync("operator-sign-in");
            await j.SignInOperatorAsync(A.ApiKey);
            Assert.Contains("a-wallets-idr", await j.TextAsync("[data-testid=ledgers]"), StringComparison.Ordinal);
            Assert.Contains(A.Id, await j.TextAsync("[data-testid=who]"), StringComparison.Ordinal);
            await j.ScreenshotAsync("operator-ledgers");

            Assert.Equal(200, await j.ClickAndWaitAsync("[data-testid=ledgers] a"));
            var accounts = await j.TextAsync("[data-testid=accounts]");
            Assert.Contains("a-alice", accounts, StringComparison.Ordinal);
            Assert.Contains("IDR 1,499,749.50", accounts, StringComparison.Ordinal);
            await j.ScreenshotAsync("operator-ledger-accounts");

            Assert.Equal(200, await j.ClickAndWaitAsync($"a[href='/operator/accounts/{A.Alice}']"));
            Assert.Equal(["IDR 1,500,000", "IDR 1,499,749.50"], await j.TextsAsync("[data-testid=running-balance]"));
            await j.ScreenshotAsync("operator-account-entries");
        });
    }

    [Fact]
    public async Task Operator_reads_the_console_in_Bahasa_Indonesia_with_rupiah_written_the_Indonesian_way()
    {
        await using var journey = await fixture.JourneyAsync("bahasa");
        await journey.RunAsync(async j =>
        {
            await j.SignInOperatorAsync(A.ApiKey);
            await j.GotoAsync($"/operator/accounts/{A.Alice}");
            // The switch submits itself on change (our script); the same form works with its button without script.
            var navigation = j.Page.WaitForNavigationAsync();
            await j.Page.SelectAsync("#lang-select", "id");
            await navigation;
            Assert.Equal("id", await j.Page.EvaluateExpressionAsync<string>("document.documentElement.lang"));
            Assert.Equal(["Rp 1.500.000", "Rp 1.499.749,50"], await j.TextsAsync("[data-testid=running-balance]"));
            Assert.Contains("Entri dengan saldo berjalan", await j.TextAsync("main"), StringComparison.Ordinal);
            await j.ScreenshotAsync("operator-account-entries-id");
        });
    }

    [Fact]
    public async Task Operator_looks_up_a_transfer_and_an_unknown_id_shows_the_problem_code()
    {
        await using var journey = await fixture.JourneyAsync("transfer-lookup");
        await journey.RunAsync(async j =>
        {
            await j.SignInOperatorAsync(A.ApiKey);
            await j.GotoAsync("/operator/transfers");
            Assert.NotEmpty(await j.TextAsync("[data-testid=empty]"));
            // Keyboard only: "/" jumps to the field, Enter submits.
            await j.Page.Keyboard.PressAsync("/");
            await j.Page.Keyboard.TypeAsync(A.TopUpId);
            var navigation = j.Page.WaitForNavigationAsync();
            await j.Page.Keyboard.PressAsync("Enter");
            await navigation;
            Assert.Equal("IDR 1,500,000", await j.TextAsync("[data-testid=transfer-amount]"));
            Assert.Contains(A.Alice, await j.TextAsync("[data-testid=transfer]"), StringComparison.Ordinal);
            await j.ScreenshotAsync("operator-transfer");

            j.ExpectStatus(404);
            Assert.Equal(404, await j.GotoAsync("/operator/transfers?id=no-such-transfer"));
            Assert.Equal("transfer_not_found", await j.TextAsync("[data-testid=problem-code]"));
        });
    }

    [Fact]
    public async Task Operator_verifies_the_audit_chain_of_a_ledger()
    {
        await using var journey = await fixture.JourneyAsync("audit");
        await journey.RunAsync(async j =>
        {
            await j.SignInOperatorAsync(A.ApiKey);
            await j.GotoAsync($"/operator/ledgers/{A.LedgerId}");
            Assert.Equal(200, await j.ClickAndWaitAsync("[data-testid=audit-verify]"));
            var result = await j.TextAsync("[data-testid=audit-result]");
            Assert.Contains("Verified.", result, StringComparison.Ordinal);
            Assert.Contains("links checked", result, StringComparison.Ordinal);
            await j.ScreenshotAsync("operator-audit");
        });
    }

    [Fact]
    public async Task Operator_sees_a_dead_lettered_job_and_retries_it()
    {
        await using var journey = await fixture.JourneyAsync("jobs");
        await journey.RunAsync(async j =>
        {
            await j.SignInOperatorAsync(A.ApiKey);
            await j.GotoAsync("/operator/jobs?state=dead");
            var row = $"[data-job='{A.JobId}']";
            Assert.Contains("fails on purpose", await j.TextAsync(row), StringComparison.Ordinal);
            Assert.DoesNotContain(fixture.B.JobId, await j.TextAsync("[data-testid=jobs]"), StringComparison.Ordinal);
            await j.ScreenshotAsync("operator-jobs-dead");

            fixture.Job.Failing = false; // the cause is fixed; now the retry can succeed
            Assert.Equal(200, await j.ClickAndWaitAsync($"{row} button[type=submit]"));
            Assert.Contains(A.JobId, await j.TextAsync("[data-testid=job-retried]"), StringComparison.Ordinal);
            await Polling.Eventually(async () => (await fixture.Jobs.GetAsync(A.Id, A.JobId, CancellationToken.None))?.State == JobState.Succeeded,
                "the retried job to succeed");
            await j.GotoAsync($"/operator/jobs/{A.JobId}");
            Assert.Equal("Succeeded", await j.TextAsync("[data-testid=job-state]"));
            await j.ScreenshotAsync("operator-job");
        });
    }

    [Fact]
    public async Task Operator_sees_failed_webhook_deliveries_and_replays_the_dead_letters()
    {
        await using var journey = await fixture.JourneyAsync("webhooks");
        await journey.RunAsync(async j =>
        {
            await j.SignInOperatorAsync(A.ApiKey);
            await j.GotoAsync("/operator/webhooks");
            Assert.Equal(200, await j.ClickAndWaitAsync("[data-testid=webhooks] a"));
            await j.GotoAsync($"/operator/webhooks/{A.WebhookId}?state=dead");
            var dead = await j.TextsAsync("[data-testid=deliveries] tbody tr");
            Assert.NotEmpty(dead);
            Assert.All(dead, row => Assert.Contains("HTTP 500", row, StringComparison.Ordinal));
            await j.ScreenshotAsync("operator-webhook-dead-letters");

            fixture.Receiver.Status = 200; // the subscriber is fixed
            Assert.Equal(200, await j.ClickAndWaitAsync("form.push button[type=submit]"));
            Assert.Contains($"{dead.Length} dead letter(s) queued again", await j.TextAsync("[data-testid=webhook-message]"), StringComparison.Ordinal);
            await Polling.Eventually(async () => await fixture.DeadDeliveriesAsync(A, DeliveryState.Delivered) == dead.Length, "the replayed deliveries to arrive");
            await j.GotoAsync($"/operator/webhooks/{A.WebhookId}?state=delivered");
            Assert.Equal(dead.Length, (await j.TextsAsync("[data-testid=deliveries] tbody tr")).Length);
        });
    }

    [Fact]
    public async Task Another_tenants_ids_in_a_url_show_not_found_and_a_narrow_key_sees_only_its_scopes()
    {
        await using var journey = await fixture.JourneyAsync("isolation");
        await journey.RunAsync(async j =>
        {
            await j.SignInOperatorAsync(A.ApiKey);
            j.ExpectStatus(404);
            var b = fixture.B;
            foreach (var (path, code) in new[]
            {
                ($"/operator/ledgers/{b.LedgerId}", "ledger_not_found"),
                ($"/operator/accounts/{b.Alice}", "account_not_found"),
                ($"/operator/transfers?id={b.TopUpId}", "transfer_not_found"),
                ($"/operator/jobs/{b.JobId}", "job_not_found"),
                ($"/operator/webhooks/{b.WebhookId}", "webhook_not_found"),
            })
            {
                Assert.Equal(404, await j.GotoAsync(path));
                Assert.Equal(code, await j.TextAsync("[data-testid=problem-code]"));
                Assert.DoesNotContain("b-", await j.TextAsync("main table, main dl"), StringComparison.Ordinal);
            }
            await j.ScreenshotAsync("operator-not-found");
        });

        var reader = await fixture.Server.NewTenantAsync(Neraca.Tenancy.Scopes.LedgerRead);
        await using var narrow = await fixture.JourneyAsync("narrow-key");
        await narrow.RunAsync(async j =>
        {
            await j.SignInOperatorAsync(reader.ApiKey);
            var menu = await j.TextsAsync("header nav a");
            // Reconciliation reads with ledger:read, as its API does (settlement and reconciliation use the ledger scopes).
            Assert.Equal(["Ledgers", "Transfers", "Reconciliation"], menu);
            Assert.NotEmpty(await j.TextAsync("[data-testid=empty]")); // a new tenant: no ledgers yet
            j.ExpectStatus(403);
            Assert.Equal(403, await j.GotoAsync("/operator/jobs"));
            Assert.Equal("insufficient_scope", await j.TextAsync("[data-testid=problem-code]"));
        });
    }

    [Fact]
    public async Task End_user_signs_in_with_a_one_time_code_and_sees_only_their_own_accounts()
    {
        var code = await A.Tenant.Http.PostJsonAsync("/v1/web/sign-in-codes", new { subject = A.AliceSubject, scopes = new[] { "ledger:read" } });
        Assert.Equal(HttpStatusCode.Created, code.Response.StatusCode);
        var url = (string)code.Body!["url"]!;

        await using var journey = await fixture.JourneyAsync("end-user");
        await journey.RunAsync(async j =>
        {
            await j.GotoAsync("/app");
            Assert.Contains("/app/sign-in", j.Page.Url, StringComparison.Ordinal);
            Assert.Equal(200, await j.GotoAsync(url));
            await j.ScreenshotAsync("app-sign-in");
            Assert.Equal(200, await j.ClickAndWaitAsync("main form button[type=submit]"));
            Assert.EndsWith("/app", j.Page.Url, StringComparison.Ordinal);
            Assert.Equal($"Signed in as {A.AliceSubject}", await j.TextAsync("[data-testid=signed-in-as]"));
            var tiles = await j.TextAsync("[data-testid=my-accounts]");
            Assert.Contains("IDR 1,499,749.50", tiles, StringComparison.Ordinal);
            Assert.DoesNotContain("Bob", tiles, StringComparison.Ordinal);
            await j.ScreenshotAsync("app-home");

            // The end user's cookie is not an operator session.
            await j.GotoAsync("/operator");
            Assert.Contains("/operator/sign-in", j.Page.Url, StringComparison.Ordinal);

            // A code works once.
            j.ExpectStatus(400);
            await j.GotoAsync(url);
            Assert.Equal(400, await j.ClickAndWaitAsync("main form button[type=submit]"));
            Assert.Equal("invalid_sign_in_code", await j.TextAsync("[data-testid=problem-code]"));
        });
    }

    [Fact]
    public async Task Pages_stay_within_their_weight_budget_reach_only_this_server_and_label_every_field()
    {
        const long BudgetBytes = 100 * 1024;
        await using var journey = await fixture.JourneyAsync("basics");
        await journey.RunAsync(async j =>
        {
            await j.GotoAsync("/");
            await j.ScreenshotAsync("home");
            await j.SignInOperatorAsync(A.ApiKey);
            foreach (var path in new[] { "/", "/operator/sign-in", "/operator", $"/operator/ledgers/{A.LedgerId}", $"/operator/accounts/{A.Alice}",
                         "/operator/jobs", $"/operator/webhooks/{A.WebhookId}", "/app/sign-in" })
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
        });
    }
}
