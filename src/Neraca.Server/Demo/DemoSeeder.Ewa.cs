using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Neraca.Demo;

/// <summary>Earned wage access: two employers (one prefunded in Jakarta, one provider-funded in Makassar) with 250
/// employees on monthly, daily and hourly pay, a month of attendance, withdrawals every business day, one to an account
/// the payout sandbox does not know (failed, its legs reversed), and the payday in the middle of the month closed by the
/// nightly job with its deduction report.</summary>
sealed partial class DemoSeeder
{
    sealed record DemoEmployer(string Id, string Name, string Zone, string Funding, string FeePayer, string Prefix, int Monthly, int Daily, int Hourly,
        int PersonOffset)
    {
        public int Count => Monthly + Daily + Hourly;
        public TimeZoneInfo TimeZone => TimeZoneInfo.FindSystemTimeZoneById(Zone);
        public string Employee(int k) => $"{Prefix}{k:D3}";
        public string PayType(int k) => k <= Monthly ? "monthly" : k <= Monthly + Daily ? "daily" : "hourly";
    }

    public const string Nusantara = "er-nusantara";
    public const string Sinar = "er-sinar";
    /// <summary>The employee whose roster bank account the sandbox does not know (account numbers starting 000).</summary>
    public const string FailingEmployee = "N007";
    public const string DemoEmployee = "N001";

    static readonly DemoEmployer[] Employers =
    [
        new(Nusantara, "PT Nusantara Logistik", "Asia/Jakarta", "employer_prefunded", "employee", "N", 110, 35, 15, 0),
        new(Sinar, "PT Sinar Ritel Indonesia", "Asia/Makassar", "provider_funded", "employer", "S", 55, 25, 10, 300),
    ];

    readonly Dictionary<string, string> _payday = [];
    readonly HashSet<string> _closed = [];
    readonly List<string> _withdrawals = [];

    public static string HrSubject(string employer) => "hr-" + employer;

    public static string EmployeeSubject(string employer, string employee) => $"ewa:{employer}:{employee}";

    /// <summary>The payday of the cycle that closes during the story: the day of the month 15 days before the end.</summary>
    int PaydayDay => Math.Min(Local(Days - 15).Day, 28);

    async Task SetUpEwaAsync()
    {
        foreach (var e in Employers)
        {
            await api.PostAsync("/v1/ewa/employers", new
            {
                id = e.Id, name = e.Name, time_zone = e.Zone, payday_day = PaydayDay, holidays = Array.Empty<string>(),
                policy = new
                {
                    max_percent_bps = 5000, cycle_cap = 300_000_000, withdrawal_min = 5_000_000, withdrawal_max = 100_000_000,
                    withdrawals_per_cycle_max = 4, fee_flat = 1_500_000, fee_payer = e.FeePayer, blackout_days = 3, waiting_days = 30,
                    funding = e.Funding,
                },
            }, "ewa-employer-" + e.Id);
            if (e.Funding == "employer_prefunded")
                await api.PostAsync($"/v1/ewa/employers/{e.Id}/funding", new { amount = 2_000_000_000_00L }, $"ewa-fund-{e.Id}-float");
            await api.PostAsync($"/v1/ewa/employers/{e.Id}/access", new { principal = "sub:" + HrSubject(e.Id), role = "admin" }, $"ewa-access-{e.Id}");

            var import = await api.PostRawAsync($"/v1/ewa/employers/{e.Id}/employees/import", Encoding.UTF8.GetBytes(Roster(e)), "text/csv",
                $"ewa-roster-{e.Id}");
            var done = await api.UntilAsync($"/v1/ewa/employers/{e.Id}/imports/{(string)import["id"]!}", b => (string?)b["status"] == "completed",
                $"the roster import of {e.Id}");
            if ((long?)done["rejected"] is > 0) throw new DemoException($"the roster of {e.Id} had rejected rows: {done["errors"]?[0]?.ToJsonString()}");

            var employer = await api.GetAsync($"/v1/ewa/employers/{e.Id}");
            _payday[e.Id] = (string)employer["current_cycle"]!["payday"]!;
        }
    }

    string Roster(DemoEmployer e)
    {
        var csv = new StringBuilder("employee_id,name,email,phone,pay_type,pay_rate,start_date,bank_code,bank_account\n");
        for (var k = 1; k <= e.Count; k++)
        {
            var person = e.PersonOffset + k;
            var type = e.PayType(k);
            var rate = type switch
            {
                "monthly" => 450_000_000L + k % 8 * 75_000_000L, // Rp 4.500.000 - Rp 9.750.000 a month
                "daily" => 18_000_000L + k % 4 * 2_000_000L,      // Rp 180.000 - Rp 240.000 a day
                _ => 2_500_000L + k % 3 * 500_000L,               // Rp 25.000 - Rp 35.000 an hour
            };
            var startDate = Local(0).AddDays(-400 + k);
            var account = e.Employee(k) == FailingEmployee ? "0007000007" : DemoPeople.BankAccount(person);
            csv.Append(CultureInfo.InvariantCulture, $"{e.Employee(k)},{DemoPeople.Name(person)},{DemoPeople.Email(person)},{DemoPeople.Phone(person)},")
                .Append(CultureInfo.InvariantCulture, $"{type},{rate},{Iso(startDate)},{DemoPeople.Bank(person)},{account}\n");
        }
        return csv.ToString();
    }

    async Task EwaDayAsync(int day)
    {
        foreach (var e in Employers)
        {
            var today = LocalDate(clock.UtcNow, e.TimeZone);
            var payday = DateOnly.ParseExact(_payday[e.Id], "yyyy-MM-dd", CultureInfo.InvariantCulture);
            if (today > payday && _closed.Add(e.Id)) await AfterPaydayAsync(e, payday);
            if (!IsBusinessDay(today)) continue;

            var attendance = new List<object>();
            for (var k = e.Monthly + 1; k <= e.Count; k++)
            {
                if ((k + day) % 17 == 0) continue; // a day off now and then
                var hours = e.PayType(k) == "daily" ? 8m : 4m + (k + day) % 9 * 0.5m;
                attendance.Add(new { employee_id = e.Employee(k), date = Iso(today), hours });
            }
            await api.PostAsync($"/v1/ewa/employers/{e.Id}/attendance", attendance, $"ewa-attendance-{e.Id}-{Iso(today)}");

            for (var k = 1; k <= e.Count; k++)
            {
                var employee = e.Employee(k);
                var wants = ((k * 7 + day) % 37 == 0 && employee != FailingEmployee) || (employee == FailingEmployee && day == 4) || (employee == DemoEmployee && day is 3 or 27);
                if (!wants) continue;
                var balance = await api.GetAsync($"/v1/ewa/employers/{e.Id}/employees/{employee}/balance");
                var max = (long)balance["amount_max"]!;
                var amount = Math.Min(max, ((k + day) % 3) switch { 0 => 10_000_000L, 1 => 25_000_000L, _ => 50_000_000L });
                if (balance["blocked_reason"] is not null || amount < 5_000_000) continue; // blackout, waiting, cap: as the app would show
                var w = await api.PostAsync($"/v1/ewa/employers/{e.Id}/employees/{employee}/withdrawals", new { amount },
                    $"ewa-withdrawal-{e.Id}-{employee}-{day}");
                _withdrawals.Add($"/v1/ewa/employers/{e.Id}/employees/{employee}/withdrawals/{(string)w["id"]!}");
            }
        }
    }

    /// <summary>The first day after payday: the nightly job closes the cycle (deductions written once, recovery posted);
    /// the provider-funded employer then remits what payroll recovered.</summary>
    async Task AfterPaydayAsync(DemoEmployer e, DateOnly payday)
    {
        JsonNode? cycle = null;
        for (var hour = 0; cycle is null; hour++)
        {
            try
            {
                cycle = await api.UntilAsync($"/v1/ewa/employers/{e.Id}/cycles/{Iso(payday)}", b => (string?)b["status"] == "closed",
                    $"the nightly close of {e.Id}'s cycle {Iso(payday)}", TimeSpan.FromSeconds(20));
            }
            catch (DemoException) when (hour < 6)
            {
                // Local midnight was only just now: the hourly dispatcher's next slot is still ahead. Let an hour pass.
                var next = clock.UtcNow.AddHours(1);
                await AdvanceToAsync(next < DateTimeOffset.UtcNow ? next : DateTimeOffset.UtcNow);
            }
        }
        log.WriteLine($"  {e.Name}: payday {Iso(payday)} closed by the nightly job ({(long)cycle["employees"]!} employees, " +
            $"recovered Rp {(long)cycle["recovered"]! / 100:N0})".Replace(',', '.'));
        var recovered = (long)cycle["recovered"]!;
        if (e.Funding == "provider_funded" && recovered > 0)
            await api.PostAsync($"/v1/ewa/employers/{e.Id}/funding", new { amount = recovered }, $"ewa-fund-{e.Id}-{Iso(payday)}");
    }

    async Task FinishEwaAsync()
    {
        foreach (var path in _withdrawals)
            await api.UntilAsync(path, b => (string?)b["status"] is "paid" or "failed", "a withdrawal's payout");
        foreach (var e in Employers)
            if (!_closed.Contains(e.Id)) throw new DemoException($"{e.Id}'s payday {_payday[e.Id]} did not pass during the story");
    }

    static JsonNode? Find(JsonNode list, string field, string value) =>
        list["data"]!.AsArray().FirstOrDefault(x => (string?)x![field] == value);
}
