using SkiaSharp;

namespace Neraca.Demo;

/// <summary>Split bills: a Bali trip (equal, percent, exact, shares in US dollars, and an itemized dinner with tax, tip
/// and a photographed receipt), a shared boarding house (rent by shares, electricity equally) and the office lunch
/// group; settled partly through the members' wallets on the ledger and partly in cash.</summary>
sealed partial class DemoSeeder
{
    public const string BaliGroup = "liburan-bali";

    async Task SetUpSplitAsync()
    {
        static object Member(string id, string name, bool wallet = true) =>
            wallet ? new { id, name, subject = (string?)id, account = (string?)("acc-" + id) } : new { id, name, subject = (string?)null, account = (string?)null };

        await api.PostAsync("/v1/split/groups", new
        {
            id = BaliGroup, name = "Liburan ke Bali", currency = "IDR", simplify_debts = true,
            members = new[] { Member("ana", "Ana"), Member("budi", "Budi"), Member("citra", "Citra"), Member("dewi", "Dewi") },
        }, "split-group-bali");
        await api.PostAsync("/v1/split/groups", new
        {
            id = "kos-tebet", name = "Kos Tebet Barat", currency = "IDR", simplify_debts = true,
            members = new[] { Member("ana", "Ana"), Member("eko", "Eko"), Member("fajar", "Fajar") },
        }, "split-group-kos");
        await api.PostAsync("/v1/split/groups", new
        {
            id = "makan-siang", name = "Makan siang tim", currency = "IDR", simplify_debts = false,
            members = new[] { Member("budi", "Budi"), Member("citra", "Citra"), Member("eko", "Eko"), Member("gita", "Gita", wallet: false) },
        }, "split-group-lunch");
    }

    Task ExpenseAsync(string group, string id, int day, object body) =>
        api.PostAsync($"/v1/split/groups/{group}/expenses", body, $"split-expense-{group}-{id}");

    async Task SplitDayAsync(int day)
    {
        var date = Iso(Local(day));
        switch (day)
        {
            case 2:
                await ExpenseAsync("kos-tebet", "sewa-1", day, new
                {
                    id = "sewa-1", description = "Sewa kos bulan ini", amount = 450_000_000, date,
                    paid_by = new[] { new { member = "eko", amount = 450_000_000 } },
                    split = new { mode = "shares", shares = new[] { new { member = "ana", weight = 2 }, new { member = "eko", weight = 1 }, new { member = "fajar", weight = 1 } } },
                });
                break;
            case 5:
                await ExpenseAsync(BaliGroup, "villa", day, new
                {
                    id = "villa", description = "Villa di Ubud, 3 malam", amount = 750_000_000, date,
                    paid_by = new[] { new { member = "ana", amount = 750_000_000 } }, split = new { mode = "equal" },
                });
                await ExpenseAsync(BaliGroup, "sewa-mobil", day, new
                {
                    id = "sewa-mobil", description = "Sewa mobil dan sopir", amount = 180_000_000, date,
                    paid_by = new[] { new { member = "budi", amount = 180_000_000 } },
                    split = new { mode = "percent", shares = new[] { new { member = "ana", bps = 2500 }, new { member = "budi", bps = 2500 },
                        new { member = "citra", bps = 3000 }, new { member = "dewi", bps = 2000 } } },
                });
                break;
            case 6:
                await ExpenseAsync(BaliGroup, "snorkeling", day, new
                {
                    id = "snorkeling", description = "Snorkeling di Nusa Penida", amount = 12_000, currency = "USD", exchange_rate = "15850.25", date,
                    paid_by = new[] { new { member = "citra", amount = 12_000 } },
                    split = new { mode = "shares", shares = new[] { new { member = "ana", weight = 1 }, new { member = "budi", weight = 1 },
                        new { member = "citra", weight = 2 }, new { member = "dewi", weight = 1 } } },
                });
                await ExpenseAsync(BaliGroup, "jimbaran", day, new
                {
                    id = "jimbaran", description = "Makan malam seafood Jimbaran", amount = 245_000_000, date,
                    paid_by = new[] { new { member = "dewi", amount = 245_000_000 } },
                    split = new { mode = "exact", shares = new[] { new { member = "ana", amount = 55_000_000 }, new { member = "budi", amount = 70_000_000 },
                        new { member = "citra", amount = 60_000_000 }, new { member = "dewi", amount = 60_000_000 } } },
                });
                break;
            case 7:
                await ExpenseAsync(BaliGroup, "bebek-bengil", day, new
                {
                    id = "bebek-bengil", description = "Bebek Bengil, Ubud", amount = 59_150_000, date,
                    paid_by = new[] { new { member = "ana", amount = 59_150_000 } },
                    split = new
                    {
                        mode = "itemized", tax = 5_150_000, tip = 2_500_000,
                        items = new object[]
                        {
                            new { description = "Bebek goreng x2", amount = 36_000_000, split = new { mode = "equal", members = new[] { "ana", "budi" } } },
                            new { description = "Nasi campur Bali", amount = 9_500_000, split = new { mode = "exact", shares = new[] { new { member = "citra", amount = 9_500_000 } } } },
                            new { description = "Es kelapa muda x4", amount = 6_000_000, split = new { mode = "equal" } },
                        },
                    },
                });
                await api.PostRawAsync($"/v1/split/groups/{BaliGroup}/expenses/bebek-bengil/receipt", Receipt(), "image/png", "split-receipt-bebek-bengil");
                break;
            case 9:
                await ExpenseAsync("kos-tebet", "listrik", day, new
                {
                    id = "listrik", description = "Token listrik PLN", amount = 50_000_000, date,
                    paid_by = new[] { new { member = "fajar", amount = 50_000_000 } }, split = new { mode = "equal" },
                });
                break;
            case 12:
                await SettleAsync(BaliGroup, "wallet");
                break;
            case 14:
                await SettleAsync(BaliGroup, "cash");
                break;
            case 16:
                await SettleAsync("kos-tebet", "cash");
                break;
            case 32:
                await ExpenseAsync("kos-tebet", "sewa-2", day, new
                {
                    id = "sewa-2", description = "Sewa kos bulan ini", amount = 450_000_000, date,
                    paid_by = new[] { new { member = "eko", amount = 450_000_000 } },
                    split = new { mode = "shares", shares = new[] { new { member = "ana", weight = 2 }, new { member = "eko", weight = 1 }, new { member = "fajar", weight = 1 } } },
                });
                break;
        }
        if (Local(day).DayOfWeek == DayOfWeek.Friday)
        {
            string[] members = ["budi", "citra", "eko", "gita"];
            var amount = 32_000_000 + day % 5 * 1_500_000;
            await ExpenseAsync("makan-siang", $"padang-{day}", day, new
            {
                id = $"padang-{day}", description = "Nasi Padang Sederhana", amount, date,
                paid_by = new[] { new { member = members[day / 7 % 4], amount } }, split = new { mode = "equal" },
            });
        }
    }

    /// <summary>The first transfer settle-up suggests, paid as <paramref name="method"/> (wallet: a ledger transfer).</summary>
    async Task SettleAsync(string group, string method)
    {
        var plan = await api.GetAsync($"/v1/split/groups/{group}/settle-up");
        var first = plan["transfers"]!.AsArray().FirstOrDefault() ?? throw new DemoException($"group {group} has nothing to settle");
        var id = $"settle-{method}-{(string)first["from"]!}";
        await api.PostAsync($"/v1/split/groups/{group}/settlements",
            new { id, from = (string)first["from"]!, to = (string)first["to"]!, amount = (long)first["amount"]!, method }, $"split-settlement-{group}-{id}");
    }

    async Task FinishSplitAsync() =>
        await api.UntilAsync($"/v1/split/groups/{BaliGroup}/expenses/bebek-bengil", b => (string?)b["receipt"]?["status"] == "ready", "the receipt's processing");

    /// <summary>A photographed receipt, drawn here (no file shipped): the receipt job decodes, cleans and thumbnails it.</summary>
    static byte[] Receipt()
    {
        using var surface = SKSurface.Create(new SKImageInfo(420, 640));
        var canvas = surface.Canvas;
        canvas.Clear(new SKColor(0xFA, 0xF7, 0xF0));
        using var ink = new SKPaint { Color = new SKColor(0x22, 0x22, 0x22), IsAntialias = true };
        using var title = new SKFont(SKTypeface.Default, 24);
        using var body = new SKFont(SKTypeface.Default, 17);
        canvas.DrawText("BEBEK BENGIL UBUD", 60, 60, title, ink);
        string[] lines =
        [
            "Jl. Hanoman, Ubud, Bali", "", "Bebek goreng x2        360.000", "Nasi campur Bali         95.000",
            "Es kelapa muda x4        60.000", "", "Subtotal                515.000", "PB1 10%                  51.500",
            "Tip                      25.000", "", "TOTAL                   591.500", "", "Terima kasih!",
        ];
        for (var i = 0; i < lines.Length; i++) canvas.DrawText(lines[i], 40, 110 + i * 32, body, ink);
        using var line = new SKPaint { Color = new SKColor(0x99, 0x99, 0x99), StrokeWidth = 1 };
        canvas.DrawLine(30, 80, 390, 80, line);
        using var image = surface.Snapshot();
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        return png.ToArray();
    }
}
