using Microsoft.Extensions.DependencyInjection;
using Neraca.SplitBill;
using SkiaSharp;

namespace Neraca.Tests.Web;

/// <summary>The split-bill views in headless Chromium: friends split a dinner with an itemized expense (the live
/// preview shows the product's shares before saving), see balances and settle-up, record a cash payment and upload
/// a receipt whose thumbnail appears once the background job has processed it.</summary>
[Collection(SplitCustomerReconciliationFixture.Collection)]
public sealed class SplitViewTests(SplitCustomerReconciliationFixture fixture)
{
    ProductTenant A => fixture.A;

    [Fact]
    public async Task Friends_split_a_dinner_itemized_see_the_shares_live_then_balances_settle_up_and_the_receipt_thumbnail()
    {
        var receipt = Path.Combine(Path.GetTempPath(), $"neraca-receipt-{Guid.NewGuid():N}.png");
        await File.WriteAllBytesAsync(receipt, Png(480, 640));
        await using var journey = await fixture.JourneyAsync("split-dinner");
        await journey.RunAsync(async j =>
        {
            await SplitCustomerReconciliationFixture.SignInUserAsync(j, A);
            Assert.Equal(200, await j.GotoAsync("/app/split"));
            Assert.Contains("Dinner at Sate Khas Senayan", await j.TextAsync("[data-testid=split-groups]"), StringComparison.Ordinal);
            await j.ScreenshotAsync("split-groups");
            Assert.Equal(200, await j.ClickAndWaitAsync("[data-testid=split-groups] a"));
            Assert.NotEmpty(await j.TextAsync("[data-testid=empty]")); // no expenses yet

            Assert.Equal(200, await j.ClickAndWaitAsync("[data-testid=add-expense]"));
            await j.TypeAsync("#description", "Dinner");
            await j.TypeAsync("#amount", "138000");
            await j.Page.ClickAsync("input[name=mode][value=itemized]");
            // Only the chosen mode's fields show (our script); the others are still in the page for the no-script form.
            Assert.True(await j.Page.EvaluateExpressionAsync<bool>("document.querySelector('[data-mode-section=exact]').hidden"));
            await ItemAsync(j, 0, "Nasi goreng", "45000", "ana");
            await ItemAsync(j, 1, "Sate ayam", "60.000", "budi", "citra");
            await ItemAsync(j, 2, "Es teh", "15000", "ana", "budi", "citra");
            await j.TypeAsync("#tax", "12000");
            await j.TypeAsync("#tip", "6000");
            // Subtotals 50,000 / 35,000 / 35,000 of 120,000; tax and tip follow them: x 138/120.
            await j.Page.WaitForFunctionAsync("() => document.querySelectorAll('#split-preview li').length === 3 "
                + "&& document.querySelector('#split-preview li[data-member=ana]').innerText.includes('57,500')");
            Assert.Equal(["Ana IDR 57,500", "Budi IDR 40,250", "Citra IDR 40,250"], Flat(await j.TextsAsync("#split-preview li")));
            await j.ScreenshotAsync("split-add-expense");

            // The sum that does not add up is the product's problem, shown live with its code.
            await j.Page.FocusAsync("#tip");
            await j.Page.Keyboard.PressAsync("Backspace");
            await j.Page.WaitForSelectorAsync("[data-testid=preview-problem]");
            Assert.Contains("split_mismatch", await j.TextAsync("[data-testid=preview-problem]"), StringComparison.Ordinal);
            await j.Page.Keyboard.TypeAsync("0");
            await j.Page.WaitForSelectorAsync("#split-preview li[data-member=citra]");

            Assert.Equal(200, await j.ClickAndWaitAsync("[data-testid=save-expense]"));
            Assert.Contains("Added: Dinner.", await j.TextAsync("[data-testid=split-message]"), StringComparison.Ordinal);
            var expense = await j.TextAsync("[data-testid=split-expenses] li");
            Assert.Contains("Ana IDR 57,500 · Budi IDR 40,250 · Citra IDR 40,250", expense, StringComparison.Ordinal);
            Assert.Equal(["gets back IDR 80,500", "owes IDR 40,250", "owes IDR 40,250"], await j.TextsAsync("[data-testid=split-balances] [data-testid=net]"));
            Assert.Equal(["Budi pays Ana IDR 40,250 Record cash payment", "Citra pays Ana IDR 40,250 Record cash payment"],
                Flat(await j.TextsAsync("[data-testid=settle-up] li")));

            // The stored expense is what the preview showed: the product's arithmetic, not the page's.
            var caller = new SplitCaller(A.Id, null, "test");
            var splits = fixture.Server.Services.GetRequiredService<SplitBills>();
            var stored = Assert.Single((await splits.ListExpensesAsync(caller, A.GroupId, null, null, false, default)).Value!.Data);
            Assert.Equal(new[] { ("ana", 5_750_000L), ("budi", 4_025_000L), ("citra", 4_025_000L) }, stored.Shares.Select(s => (s.Member, s.Amount)));
            Assert.Equal("itemized", stored.Split.Mode);

            Assert.Equal(200, await j.ClickAndWaitAsync("[data-testid=settle-up] li:first-child button[type=submit]"));
            Assert.Contains("Recorded: Budi paid Ana IDR 40,250.", await j.TextAsync("[data-testid=split-message]"), StringComparison.Ordinal);
            Assert.Equal(["gets back IDR 40,250", "Settled up", "owes IDR 40,250"], await j.TextsAsync("[data-testid=split-balances] [data-testid=net]"));
            Assert.Equal(["Citra pays Ana IDR 40,250 Record cash payment"], Flat(await j.TextsAsync("[data-testid=settle-up] li")));

            var file = await j.Page.QuerySelectorAsync($"#receipt-{stored.Id}");
            await file.UploadFileAsync(receipt);
            Assert.Equal(200, await j.ClickAndWaitAsync($"[data-expense='{stored.Id}'] .receipt-form button[type=submit]"));
            Assert.Contains("Receipt uploaded", await j.TextAsync("[data-testid=split-message]"), StringComparison.Ordinal);
            // Processed in the background; the page's script fetches the expenses again until the thumbnail is there.
            await j.Page.WaitForFunctionAsync("() => { const i = document.querySelector('[data-testid=receipt-thumb]'); return i && i.complete && i.naturalWidth > 0; }",
                new PuppeteerSharp.WaitForFunctionOptions { Timeout = 30_000 });
            var size = await j.Page.EvaluateExpressionAsync<int[]>("(() => { const i = document.querySelector('[data-testid=receipt-thumb]'); return [i.naturalWidth, i.naturalHeight]; })()");
            Assert.Equal([240, 320], size); // the thumbnail: 320 px on the longer side
            await j.ScreenshotAsync("split-group");
        });
        File.Delete(receipt);
    }

    [Fact]
    public async Task Without_script_the_add_expense_form_shows_the_shares_on_the_server_and_refuses_a_sum_that_misses()
    {
        await using var journey = await fixture.JourneyAsync("split-no-script");
        await journey.RunAsync(async j =>
        {
            await j.Page.SetJavaScriptEnabledAsync(false);
            await SplitCustomerReconciliationFixture.SignInUserAsync(j, fixture.B);
            Assert.Equal(200, await j.GotoAsync($"/app/split/{fixture.B.GroupId}/expenses/new"));
            await j.TypeAsync("#description", "Taxi");
            await j.TypeAsync("#amount", "100,00");
            await j.Page.ClickAsync("input[name=mode][value=percent]");
            await j.TypeAsync("#percent-0", "50");
            await j.TypeAsync("#percent-1", "25,5");
            await j.TypeAsync("#percent-2", "24.5");
            Assert.Equal(200, await j.ClickAndWaitAsync("button[value=preview]"));
            Assert.Equal(["Ana IDR 50", "Budi IDR 25.50", "Citra IDR 24.50"], Flat(await j.TextsAsync("#split-preview li")));
            // The form keeps what was typed; a percentage that no longer adds up to 100 is the product's 422.
            await j.Page.ClickAsync("#percent-2", new PuppeteerSharp.Input.ClickOptions { Count = 3 });
            await j.Page.Keyboard.TypeAsync("20");
            Assert.Equal(200, await j.ClickAndWaitAsync("[data-testid=save-expense]"));
            Assert.Equal("split_mismatch", await j.TextAsync("[data-testid=problem-code]"));
            Assert.Contains("9550: 450 short of the expected 10000", await j.TextAsync("[data-testid=problem]"), StringComparison.Ordinal);
        });
    }

    /// <summary>Texts with their inner line breaks (flex items) as single spaces.</summary>
    static string[] Flat(string[] texts) => [.. texts.Select(t => System.Text.RegularExpressions.Regex.Replace(t, @"\s+", " ").Trim())];

    static async Task ItemAsync(BrowserJourney j, int row, string description, string amount, params string[] members)
    {
        await j.TypeAsync($"#item{row}-description", description);
        await j.TypeAsync($"#item{row}-amount", amount);
        foreach (var m in members) await j.Page.ClickAsync($"input[name='item{row}.member.{m}']");
    }

    static byte[] Png(int width, int height)
    {
        using var bitmap = new SKBitmap(width, height);
        using (var canvas = new SKCanvas(bitmap)) canvas.Clear(new SKColor(0x0b, 0x5d, 0x4b));
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }
}
