using System.Globalization;
using System.Text;

namespace Neraca.Demo;

/// <summary>Reconciliation: Bank Central Asia as a counterparty, merchant settlements booked on the ledger in the
/// story's last business week, and BCA's CSV statement of that week imported the next day: every booking matched by
/// its reference, and one administration fee nobody booked waiting in the exception queue for an operator.</summary>
sealed partial class DemoSeeder
{
    public const string Counterparty = "bca";
    const string ReconLedger = "recon-idr";
    string? _bankStatement;

    async Task SetUpReconciliationAsync()
    {
        await api.PostAsync("/v1/ledgers", new { code = ReconLedger, asset = "IDR", scale = 2, name = "Merchant settlement" }, "recon-ledger");
        foreach (var (id, normal, name) in new[]
                 {
                     ("bca-giro", "debit", "BCA current account"), ("recon-suspense", "debit", "Suspense"),
                     ("merchant-funds", "credit", "Merchant funds"), ("bca-due", "credit", "Due to BCA"),
                 })
            await api.PostAsync("/v1/accounts", new { id, ledger = ReconLedger, normal_balance = normal, name }, "recon-account-" + id);
        await api.PostAsync("/v1/settlement/counterparties", new
        {
            id = Counterparty, name = "Bank Central Asia", type = "bank", settlement_account = "bca-due", cash_account = "bca-giro",
            suspense_account = "recon-suspense", cutoff_local_time = "17:00", time_zone = "Asia/Jakarta",
            csv_mapping = new
            {
                delimiter = ";", date_format = "dd/MM/yyyy", decimal_separator = ",", currency = "IDR",
                columns = new { value_date = "Tanggal", amount = "Jumlah", balance = "Saldo", reference = "Referensi", description = "Keterangan" },
            },
        }, "recon-counterparty");
    }

    /// <summary>The days whose bookings BCA's statement covers: the business days of the story's last week.</summary>
    IEnumerable<int> StatementDays() => Enumerable.Range(Days - 7, 7).Where(d => IsBusinessDay(Local(d)));

    static (string Reference, long Amount)[] Bookings(int day) =>
        [($"STL-{day:D2}-1", 12_500_000L + day * 150_000L), ($"STL-{day:D2}-2", 8_750_000L + day * 90_000L)];

    async Task ReconciliationDayAsync(int day)
    {
        if (StatementDays().Contains(day))
            foreach (var (reference, amount) in Bookings(day))
                await api.PostAsync("/v1/transfers", new
                {
                    id = "recon-" + reference, debit_account = "bca-giro", credit_account = "merchant-funds", amount,
                    effective_at = JakartaTime(Local(day), 10), description = "Merchant settlement " + reference,
                }, "recon-transfer-" + reference);
        if (day != Days) return;

        // BCA's statement of the week (Indonesian CSV: semicolons, dd/MM/yyyy, decimal commas), with a fee on the last day.
        var csv = new StringBuilder("Tanggal;Keterangan;Referensi;Jumlah;Saldo\n");
        var balance = 250_000_000_00L;
        string Money(long v) => (v / 100).ToString(CultureInfo.InvariantCulture) + "," + Math.Abs(v % 100).ToString("D2", CultureInfo.InvariantCulture);
        var days = StatementDays().ToList();
        foreach (var d in days)
        {
            var date = Local(d).ToString("dd/MM/yyyy", CultureInfo.InvariantCulture);
            foreach (var (reference, amount) in Bookings(d))
            {
                balance += amount;
                csv.Append(CultureInfo.InvariantCulture, $"{date};SETORAN MERCHANT;{reference};{Money(amount)};{Money(balance)}\n");
            }
            if (d == days[^1])
            {
                balance -= 1_100_000;
                csv.Append(CultureInfo.InvariantCulture, $"{date};BIAYA ADM BULANAN;ADM-{Local(d):yyyyMM};{Money(-1_100_000)};{Money(balance)}\n");
            }
        }
        var statement = await api.PostRawAsync($"/v1/reconciliation/statements?counterparty={Counterparty}", Encoding.UTF8.GetBytes(csv.ToString()),
            "text/csv", "recon-statement");
        _bankStatement = (string)statement["id"]!;
    }

    async Task FinishReconciliationAsync()
    {
        if (_bankStatement is null) throw new DemoException("BCA's statement was not imported");
        await api.UntilAsync($"/v1/reconciliation/statements/{_bankStatement}", b => (string?)b["status"] != "matching", "the statement's matching");
        await api.UntilAsync($"/v1/reconciliation/exceptions?status=open&statement={_bankStatement}", b => b["data"]!.AsArray().Count == 1,
            "the bank fee in the exception queue");
    }
}
