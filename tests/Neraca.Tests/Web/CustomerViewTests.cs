using System.Text.Json;

namespace Neraca.Tests.Web;

/// <summary>The customer (banking) views in headless Chromium: accounts with balance and available, history with its
/// running balance and search, statements requested, shown while they are rendered, and downloaded as PDF and CSV.</summary>
[Collection(SplitCustomerReconciliationFixture.Collection)]
public sealed class CustomerViewTests(SplitCustomerReconciliationFixture fixture)
{
    ProductTenant A => fixture.A;

    [Fact]
    public async Task Customer_sees_accounts_searches_history_and_downloads_a_statement_whose_bytes_are_a_pdf()
    {
        await using var journey = await fixture.JourneyAsync("customer");
        await journey.RunAsync(async j =>
        {
            await SplitCustomerReconciliationFixture.SignInUserAsync(j, A);
            Assert.Equal(200, await j.GotoAsync("/app/banking"));
            var tiles = await j.TextAsync("[data-testid=bank-accounts]");
            Assert.Contains(A.AccountId, tiles, StringComparison.Ordinal);
            Assert.DoesNotContain(A.Prefix + "shop-acc", tiles, StringComparison.Ordinal); // another customer's wallet
            Assert.Equal("IDR 4,920,000", await j.TextAsync("[data-testid=available]"));
            await j.ScreenshotAsync("bank-accounts");

            Assert.Equal(200, await j.ClickAndWaitAsync("[data-testid=bank-accounts] a"));
            Assert.Equal(["IDR 5,000,000", "IDR 4,955,000", "IDR 4,920,000"], await j.TextsAsync("[data-testid=balance-after]"));
            // Keyboard: "/" jumps to the search field, Enter searches.
            await j.Page.Keyboard.PressAsync("/");
            await j.Page.Keyboard.TypeAsync("kopi");
            var navigation = j.Page.WaitForNavigationAsync();
            await j.Page.Keyboard.PressAsync("Enter");
            await navigation;
            var rows = await j.TextsAsync("[data-testid=bank-history] tbody tr");
            var row = Assert.Single(rows);
            Assert.Contains("Kopi Kenangan Senayan", row, StringComparison.Ordinal);
            Assert.Contains("−IDR 45,000", row, StringComparison.Ordinal);
            await j.ScreenshotAsync("bank-history");
            await j.GotoAsync($"/app/banking/accounts/{A.AccountId}?q=nothing-like-this");
            Assert.Contains("Nothing matches", await j.TextAsync("[data-testid=empty]"), StringComparison.Ordinal);

            Assert.Equal(200, await j.GotoAsync($"/app/banking/accounts/{A.AccountId}/statements"));
            Assert.Equal(200, await j.ClickAndWaitAsync("[data-testid=request-statement]"));
            // Rendered in the background: the list shows it being prepared, then ready with its files (the page's script
            // fetches the list again while one is pending).
            await j.Page.WaitForFunctionAsync("() => document.querySelectorAll('[data-testid=statement-status]').length === 2 "
                + "&& [...document.querySelectorAll('[data-testid=statement-status]')].every(s => s.innerText.includes('Ready'))",
                new PuppeteerSharp.WaitForFunctionOptions { Timeout = 30_000 });
            await j.ScreenshotAsync("bank-statements");
            var pdf = await j.Page.EvaluateFunctionAsync<JsonElement>("""
                async () => {
                  const link = document.querySelector('[data-statement] a[data-format=pdf]');
                  const response = await fetch(link.href);
                  const bytes = new Uint8Array(await response.arrayBuffer());
                  return { status: response.status, type: response.headers.get('content-type'), disposition: response.headers.get('content-disposition'),
                           head: String.fromCharCode(...bytes.slice(0, 5)), tail: String.fromCharCode(...bytes.slice(-8)).trim(), length: bytes.length };
                }
                """);
            Assert.Equal(200, pdf.GetProperty("status").GetInt32());
            Assert.Equal("application/pdf", pdf.GetProperty("type").GetString());
            Assert.StartsWith("attachment", pdf.GetProperty("disposition").GetString(), StringComparison.Ordinal);
            Assert.Equal("%PDF-", pdf.GetProperty("head").GetString());
            Assert.EndsWith("%%EOF", pdf.GetProperty("tail").GetString(), StringComparison.Ordinal);
            var csv = await j.Page.EvaluateFunctionAsync<string>("""
                async () => (await (await fetch(document.querySelector('[data-statement] a[data-format=csv]').href)).text()).split('\n')[0]
                """);
            Assert.StartsWith("booking_date,value_date,transfer_id,direction,amount,balance_after", csv, StringComparison.Ordinal);
        });
    }
}
