namespace Neraca.Demo;

/// <summary>Banking: six customers and two merchants with wallets (Ana also a savings account), top-ups from the
/// switch every Monday, coffee, groceries and rides every day, a transfer between friends, a withdrawal to a bank, holds
/// that were captured, expired and are still active, and last month's statements, which the monthly job issues on the
/// 1st.</summary>
sealed partial class DemoSeeder
{
    sealed record DemoCustomer(string Id, string Subject, string Name, string Kyc, string NationalId, int Person);

    public const string Switch = "switch-bi";

    static readonly DemoCustomer[] People =
    [
        new("cus-ana", "ana", "Ana Wijaya", "full", "3174014107920001", 1001),
        new("cus-budi", "budi", "Budi Santoso", "full", "3174021503880002", 1002),
        new("cus-citra", "citra", "Citra Lestari", "full", "3273016208950003", 1003),
        new("cus-dewi", "dewi", "Dewi Anggraini", "basic", "3578044409970004", 1004),
        new("cus-eko", "eko", "Eko Prasetyo", "full", "3471031212900005", 1005),
        new("cus-fajar", "fajar", "Fajar Nugroho", "basic", "3374020101990006", 1006),
    ];

    static readonly DemoCustomer[] Merchants =
    [
        new("cus-kopi", "kopi-kenangan", "PT Kopi Kenangan Senayan", "full", "0000000000000000", 1101),
        new("cus-toko", "toko-sejahtera", "Toko Sejahtera Abadi", "full", "0000000000000000", 1102),
    ];

    public static string Wallet(string customer) => "acc-" + customer["cus-".Length..];

    public const string Savings = "acc-ana-tabungan";

    async Task SetUpBankingAsync()
    {
        foreach (var c in People.Concat(Merchants))
        {
            var person = c.NationalId.StartsWith('0')
                ? (object)new { id = c.Id, subject = c.Subject, name = c.Name, email = DemoPeople.Email(c.Person), kyc_level = c.Kyc }
                : new { id = c.Id, subject = c.Subject, name = c.Name, phone = DemoPeople.Phone(c.Person), email = DemoPeople.Email(c.Person),
                    national_id = c.NationalId, kyc_level = c.Kyc };
            await api.PostAsync("/v1/customers", person, "bank-customer-" + c.Id);
            await api.PostAsync($"/v1/customers/{c.Id}/accounts", new { id = Wallet(c.Id), product = "wallet", currency = "IDR" }, "bank-wallet-" + c.Id);
        }
        await api.PostAsync("/v1/customers/cus-ana/accounts", new { id = Savings, product = "savings", currency = "IDR" }, "bank-savings-ana");
        await api.PostAsync("/v1/accounts", new { id = Switch, ledger = "bank-idr", normal_balance = "debit", name = "BI-FAST switch" }, "bank-switch");
    }

    Task PayAsync(string id, string from, string to, long amount, string reference, string description) =>
        api.PostAsync("/v1/payments", new { id, from_account = from, to_account = to, amount, reference, description }, "bank-" + id);

    async Task BankingDayAsync(int day)
    {
        var today = Local(day);
        var stamp = today.ToString("yyyyMMdd", System.Globalization.CultureInfo.InvariantCulture);
        if (day == 0)
        {
            foreach (var c in People)
                await PayAsync($"top-{c.Subject}-0", Switch, Wallet(c.Id), 500_000_000, $"VA-8808{c.Person}", "Top up via virtual account");
            await PayAsync("top-ana-tabungan", Switch, Savings, 1_500_000_000, "VA-880801", "Setoran tabungan");
        }
        else if (today.DayOfWeek == DayOfWeek.Monday)
            foreach (var c in People)
                await PayAsync($"top-{c.Subject}-{day}", Switch, Wallet(c.Id), 150_000_000, $"VA-{stamp}{c.Person % 100:D2}", "Top up via virtual account");

        for (var i = 0; i < People.Length; i++)
        {
            var c = People[i];
            if ((i + day) % 3 == 0)
                await PayAsync($"kopi-{c.Subject}-{day}", Wallet(c.Id), Wallet("cus-kopi"), 3_500_000 + (i + day) % 5 * 1_000_000,
                    $"KK-{stamp}-{i}", "Kopi Kenangan, Senayan City");
            if ((i + day) % 4 == 1)
                await PayAsync($"toko-{c.Subject}-{day}", Wallet(c.Id), Wallet("cus-toko"), 5_000_000 + (i * 3 + day) % 9 * 2_500_000,
                    $"TS-{stamp}-{i}", "Belanja bulanan, Toko Sejahtera");
        }

        switch (day)
        {
            case 10:
                await PayAsync("budi-ana-konser", Wallet("cus-budi"), Wallet("cus-ana"), 75_000_000, "P2P-0001", "Patungan tiket konser");
                break;
            case 20:
                await api.PostAsync($"/v1/accounts/{Wallet("cus-dewi")}/withdrawals", new
                {
                    id = "wd-dewi-1", amount = 50_000_000, reference = "Tarik tunai", description = "Ke rekening BCA",
                    destination = new { type = "bank", code = "BCA", account_number = "1234567890", account_name = "Dewi Anggraini" },
                }, "bank-wd-dewi-1");
                break;
            case 28: // expires two days later, unused
                await api.PostAsync($"/v1/accounts/{Wallet("cus-budi")}/holds", new
                {
                    id = "hold-hotel", amount = 75_000_000, reason = "Deposit hotel, Yogyakarta", expires_at = At(30).ToString("O"),
                }, "bank-hold-hotel");
                break;
            case 30:
                await api.PostAsync($"/v1/accounts/{Wallet("cus-ana")}/holds", new { id = "hold-rental", amount = 100_000_000, reason = "Sewa mobil, Bali" },
                    "bank-hold-rental");
                break;
            case 32: // the car came back with a full tank: Rp 600.000 captured, the rest released
                await api.PostAsync($"/v1/accounts/{Wallet("cus-ana")}/holds/hold-rental/capture", new { amount = 60_000_000 }, "bank-capture-rental");
                break;
            case 38: // still active at the end
                await api.PostAsync($"/v1/accounts/{Wallet("cus-citra")}/holds", new { id = "hold-deposit", amount = 50_000_000, reason = "Deposit sewa kamera" },
                    "bank-hold-deposit");
                break;
        }
    }

    /// <summary>Last month's statement of every account, issued by the monthly job once the 1st began.</summary>
    async Task FinishBankingAsync()
    {
        await api.UntilAsync($"/v1/accounts/{Wallet("cus-dewi")}/withdrawals/wd-dewi-1", b => (string?)b["status"] is "succeeded", "Dewi's withdrawal");
        await api.UntilAsync($"/v1/accounts/{Wallet("cus-budi")}/holds/hold-hotel", b => (string?)b["status"] is "expired", "the hotel hold's expiry");
        var first = new DateOnly(Local(Days).Year, Local(Days).Month, 1);
        var from = Iso(first.AddMonths(-1));
        foreach (var account in People.Select(c => Wallet(c.Id)).Append(Savings))
            await api.UntilAsync($"/v1/accounts/{account}/statements",
                b => b["data"]!.AsArray().Any(s => (string?)s!["from"] == from && (string?)s["status"] == "ready"),
                $"the monthly statement of {account} from {from}", TimeSpan.FromSeconds(120));
    }
}
