using System.Net.Http.Json;

namespace Neraca.Tests.Web;

/// <summary>The operator's reconciliation views in headless Chromium (a statement's matching progress, the exception
/// queue, resolving an exception), then what every product view must hold: another tenant's ids show not-found, pages
/// stay light, reach only this server and label every field.</summary>
[Collection(SplitCustomerReconciliationFixture.Collection)]
public sealed class ReconciliationViewTests(SplitCustomerReconciliationFixture fixture)
{
    ProductTenant A => fixture.A;

    [Fact]
    public async Task Operator_sees_the_matching_progress_and_writes_off_an_exception_which_completes_the_statement()
    {
        await using var journey = await fixture.JourneyAsync("reconciliation");
        await journey.RunAsync(async j =>
        {
            await j.SignInOperatorAsync(A.ApiKey);
            Assert.Equal(200, await j.GotoAsync("/operator/reconciliation"));
            var statement = $"[data-statement='{A.StatementId}']";
            Assert.Contains("1 of 2 lines matched", await j.TextAsync(statement), StringComparison.Ordinal);
            var row = $"[data-exception='{A.ExceptionId}']";
            var queued = await j.TextAsync(row);
            Assert.Contains("Statement line without a transfer", queued, StringComparison.Ordinal);
            Assert.Contains("-IDR 6,500", queued, StringComparison.Ordinal);
            Assert.DoesNotContain(fixture.B.ExceptionId, await j.TextAsync("[data-testid=recon-exceptions]"), StringComparison.Ordinal);
            await j.ScreenshotAsync("recon-queue");

            Assert.Equal(200, await j.ClickAndWaitAsync($"{statement} a"));
            Assert.Equal(["matched", "exception"], (await j.TextsAsync("[data-testid=statement-lines] tbody tr .badge")).Select(s => s.ToLowerInvariant()));
            Assert.Contains("exact_reference", await j.TextAsync("[data-line='1']"), StringComparison.Ordinal);
            await j.ScreenshotAsync("recon-statement");

            Assert.Equal(200, await j.GotoAsync($"/operator/reconciliation/exceptions/{A.ExceptionId}"));
            // Match is offered for a line; transfers that do not add up are the product's 422, shown with its code.
            await j.TypeAsync("#transfer-ids", A.Prefix + "WEB-0001");
            Assert.Equal(200, await j.ClickAndWaitAsync("button[data-action=match]"));
            Assert.Equal("match_invalid", await j.TextAsync("[data-testid=problem-code]"));
            await j.Page.EvaluateExpressionAsync("document.querySelector('#transfer-ids').value = ''");
            await j.TypeAsync("#note", "Monthly admin fee, booked by the bank");
            await j.ScreenshotAsync("recon-exception");
            Assert.Equal(200, await j.ClickAndWaitAsync("button[data-action=write_off]"));
            Assert.Equal("Resolved: Written off.", await j.TextAsync("[data-testid=exception-resolved]"));
            Assert.Contains($"recon:{A.ExceptionId}:writeoff", await j.TextAsync("[data-testid=exception-transfers]"), StringComparison.Ordinal);
            Assert.Equal(0, await j.Page.EvaluateExpressionAsync<int>("document.querySelectorAll('button[data-action]').length"));

            Assert.Equal(200, await j.GotoAsync($"/operator/reconciliation/statements/{A.StatementId}"));
            Assert.Equal("Fully matched", await j.TextAsync("[data-testid=statement-status]"));
            Assert.Contains("2 of 2 lines matched", await j.TextAsync("[data-testid=statement-progress]"), StringComparison.Ordinal);
            Assert.Contains("write_off", await j.TextAsync("[data-line='2']"), StringComparison.Ordinal);
            Assert.Equal(200, await j.GotoAsync("/operator/reconciliation"));
            Assert.NotEmpty(await j.TextAsync("[data-testid=empty]")); // no open exceptions left
        });
        // The write-off moved the money in the ledger (bank cash account down by the fee, as the bank says).
        var balance = await A.Tenant.Http.GetFromJsonAsync<System.Text.Json.Nodes.JsonNode>("/v1/accounts/bank-bca");
        Assert.Equal(15_000_000 - 650_000, (long)balance!["balance"]!["posted"]!);
    }

    [Fact]
    public async Task Another_tenants_group_account_statement_and_exception_ids_in_a_url_show_not_found()
    {
        var b = fixture.B;
        await using var user = await fixture.JourneyAsync("product-isolation-user");
        await user.RunAsync(async j =>
        {
            await SplitCustomerReconciliationFixture.SignInUserAsync(j, A);
            j.ExpectStatus(404);
            foreach (var (path, code) in new[]
            {
                ($"/app/split/{b.GroupId}", "group_not_found"),
                ($"/app/split/{b.GroupId}/expenses/new", "group_not_found"),
                ($"/app/banking/accounts/{b.AccountId}", "account_not_found"),
                ($"/app/banking/accounts/{b.AccountId}/statements", "account_not_found"),
            })
            {
                Assert.Equal(404, await j.GotoAsync(path));
                Assert.Equal(code, await j.TextAsync("[data-testid=problem-code]"));
                Assert.DoesNotContain("b-", await j.TextAsync("main table, main dl, main ul"), StringComparison.Ordinal); // the problem names the id asked for, nothing else
            }
            // Files: another tenant's statement (under this user's own account, or under the other tenant's account) is not found.
            foreach (var path in new[] { $"/app/banking/accounts/{A.AccountId}/statements/{b.BankStatementId}.pdf",
                         $"/app/banking/accounts/{b.AccountId}/statements/{b.BankStatementId}.pdf", $"/app/split/{b.GroupId}/expenses/x/receipt?size=thumb" })
                Assert.Equal(404, await j.GotoAsync(path));
            await j.ScreenshotAsync("app-not-found");
        });

        await using var op = await fixture.JourneyAsync("product-isolation-operator");
        await op.RunAsync(async j =>
        {
            await j.SignInOperatorAsync(A.ApiKey);
            j.ExpectStatus(404);
            foreach (var (path, code) in new[]
            {
                ($"/operator/reconciliation/exceptions/{b.ExceptionId}", "exception_not_found"),
                ($"/operator/reconciliation/statements/{b.StatementId}", "statement_not_found"),
            })
            {
                Assert.Equal(404, await j.GotoAsync(path));
                Assert.Equal(code, await j.TextAsync("[data-testid=problem-code]"));
            }
        });
    }

    [Fact]
    public async Task Product_views_stay_within_their_weight_budget_reach_only_this_server_and_label_every_field()
    {
        const long BudgetBytes = 100 * 1024;
        var b = fixture.B;
        await using var user = await fixture.JourneyAsync("product-basics-user");
        await user.RunAsync(async j =>
        {
            await SplitCustomerReconciliationFixture.SignInUserAsync(j, b);
            await AssertBasicsAsync(j, BudgetBytes, "/app/split", $"/app/split/{b.GroupId}", $"/app/split/{b.GroupId}/expenses/new", "/app/banking",
                $"/app/banking/accounts/{b.AccountId}", $"/app/banking/accounts/{b.AccountId}/statements");
            await j.GotoAsync("/app/banking");
            Assert.Equal("Rekening Anda", await SwitchToIndonesianAsync(j));
            Assert.Equal("Rp 4.920.000", await j.TextAsync("[data-testid=available]"));
        });
        await using var op = await fixture.JourneyAsync("product-basics-operator");
        await op.RunAsync(async j =>
        {
            await j.SignInOperatorAsync(b.ApiKey);
            await AssertBasicsAsync(j, BudgetBytes, "/operator/reconciliation", $"/operator/reconciliation/statements/{b.StatementId}",
                $"/operator/reconciliation/exceptions/{b.ExceptionId}");
        });
    }

    static async Task<string> SwitchToIndonesianAsync(BrowserJourney j)
    {
        var navigation = j.Page.WaitForNavigationAsync();
        await j.Page.SelectAsync("#lang-select", "id");
        await navigation;
        return await j.TextAsync("h1");
    }

    static async Task AssertBasicsAsync(BrowserJourney j, long budgetBytes, params string[] paths)
    {
        foreach (var path in paths)
        {
            Assert.Equal(200, await j.GotoAsync(path));
            var (bytes, urls) = await j.WeightAsync();
            Assert.True(bytes < budgetBytes, $"{path} loaded {bytes} bytes (budget {budgetBytes})");
            Assert.All(urls, u => Assert.StartsWith(new Uri(j.Page.Url).GetLeftPart(UriPartial.Authority) + "/", u, StringComparison.Ordinal));
            var unlabelled = await j.Page.EvaluateExpressionAsync<string[]>("""
                [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                  .filter(e => !(e.id && document.querySelector(`label[for="${e.id}"]`)) && !e.getAttribute('aria-label') && !e.closest('label'))
                  .map(e => e.outerHTML)
                """);
            Assert.True(unlabelled.Length == 0, $"{path}: fields without a label: {string.Join(", ", unlabelled)}");
            Assert.False(string.IsNullOrWhiteSpace(await j.Page.EvaluateExpressionAsync<string>("document.title")), path + " has no title");
            Assert.Equal(1, await j.Page.EvaluateExpressionAsync<int>("document.querySelectorAll('h1').length"));
        }
    }
}
