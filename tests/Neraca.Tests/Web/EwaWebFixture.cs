using Microsoft.Extensions.DependencyInjection;
using Neraca.Ledger;
using Neraca.Payouts;
using Neraca.Security;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Wellness;
using PuppeteerSharp;

namespace Neraca.Tests.Web;

/// <summary>What a tenant of the EWA web tests holds: an employer (payday the 13th, no blackout, prefunded) and a payout
/// stuck in <c>unknown</c>; tenant A also a failed payout and the employer's HR admin (an end user), tenant B an
/// employee with a withdrawal of its own.</summary>
public sealed record EwaWebTenant(Ewa Ewa, string EmployerId, string StuckPayoutId)
{
    public string Id => Ewa.Tenant.Id;
    public string ApiKey => Ewa.Tenant.ApiKey;
    public HttpClient Http => Ewa.Http;
    public string HrSubject => "hr-" + EmployerId;
    public string? FailedPayoutId { get; init; }
    public string? WithdrawalId { get; init; }
}

/// <summary>One server (embedded SQLite) whose clock starts on Tuesday 2026-03-10 at 10:00 in Jakarta and follows real
/// time, so a test can jump it past payday (the nightly close runs within seconds: employers' work is not spread), and
/// one headless Chromium for the class. Seeded through the API and the in-process services.</summary>
public sealed class EwaWebFixture : IAsyncLifetime
{
    public static readonly DateTimeOffset Start = EwaFixture.Start;
    /// <summary>Local midnight after payday Friday 2026-03-13 in Jakarta (17:00 UTC): the cycle closes.</summary>
    public static readonly DateTimeOffset AfterPayday = new(2026, 3, 13, 17, 0, 5, TimeSpan.Zero);
    public const string Payday = "2026-03-13";

    public TestClock Clock { get; } = new(Start);
    public NeracaServer Server { get; private set; } = default!;
    public IBrowser Browser { get; private set; } = default!;
    public EwaWebTenant A { get; private set; } = default!;
    public EwaWebTenant B { get; private set; } = default!;

    public async ValueTask InitializeAsync()
    {
        var browser = Chromium.LaunchAsync();
        var database = await TestStores.NewDatabaseAsync(StoreKind.Sqlite);
        Server = await NeracaServer.StartAsync(database, Clock.Time, ["--Wellness:EmployerSpreadSeconds=0", "--Jobs:PollIntervalMs=50",
            "--Jobs:SchedulerIntervalMs=200", "--Jobs:Recurring:ewa.nightly:SpreadWindowSeconds=0"]);
        A = await SeedAsync("a");
        B = await SeedAsync("b");
        Browser = await browser;
    }

    async Task<EwaWebTenant> SeedAsync(string prefix)
    {
        var ewa = await Ewa.NewAsync(Server);
        var employer = await ewa.EmployerAsync(new { blackout_days = 0 }, paydayDay: 13);
        var payouts = Server.Services.GetRequiredService<PayoutService>();
        var ledger = Server.Services.GetRequiredService<ILedger>();
        var ct = CancellationToken.None;

        // An operations float to pay out from.
        var ops = await ledger.CreateLedgerAsync(ewa.Tenant.Id, new CreateLedgerRequest(prefix + "-ops-idr", "IDR", 2, "Operations"), ct);
        var ledgerId = ops.Value!.Id;
        await ledger.CreateAccountAsync(ewa.Tenant.Id, new CreateAccountRequest(prefix + "-ops-bank", ledgerId, "debit", Name: "Bank"), ct);
        await ledger.CreateAccountAsync(ewa.Tenant.Id, new CreateAccountRequest(prefix + "-ops-float", ledgerId, "credit", Name: "Payout float",
            Flags: ["debits_must_not_exceed_credits"]), ct);
        Assert.True((await ledger.CreateTransferAsync(ewa.Tenant.Id, new CreateTransferRequest(prefix + "-ops-topup", prefix + "-ops-bank",
            prefix + "-ops-float", 100_000_000_00, Description: "Float"), ct)).Succeeded);

        // Failed: the sandbox knows no account starting with 000 (and this creates the ledger's clearing account).
        var failed = await payouts.RequestAsync(ewa.Tenant.Id, new PayoutRequest(prefix + "-po-failed", prefix + "-ops-float", 25_000_000,
            new PayoutDestination("bank", "BNI", "0009876543", "Siti Rahayu"), "Salary advance"), ct);
        Assert.True(failed.Payout is not null, failed.ErrorDetail);
        await Polling.Eventually(async () => (await payouts.GetAsync(ewa.Tenant.Id, failed.Payout!.Id, ct))?.Status == PayoutStatuses.Failed,
            "the payout to an unknown account fails");

        // Stuck: the provider accepted it, then every status query failed three hours ago (nothing resolves it on its own
        // here: no resolve job was queued). Its money is held like any unfinished payout's.
        var stuck = await SeedUnknownAsync(ewa.Tenant.Id, prefix + "-po-stuck", prefix + "-ops-float", ledgerId);

        string? withdrawal = null;
        if (prefix == "b")
        {
            await ewa.ImportAsync(employer, "E001,Budi Santoso,,,monthly,400000000,2025-01-01,BRI,5550001111",
                "B-ONLY,Ani,,,monthly,400000000,2025-01-01,BRI,5550002222");
            var w = await ewa.WithdrawAsync(employer, "E001", 10_000_000);
            Assert.True(w.Response.IsSuccessStatusCode, w.Body?.ToJsonString());
            withdrawal = (string)w.Body!["id"]!;
        }
        else
        {
            var g = await ewa.Http.PostJsonAsync($"/v1/ewa/employers/{employer}/access", new { principal = "sub:hr-" + employer, role = "admin" });
            Assert.True(g.Response.IsSuccessStatusCode, g.Body?.ToJsonString());
        }
        return new EwaWebTenant(ewa, employer, stuck) { FailedPayoutId = failed.Payout!.Id, WithdrawalId = withdrawal };
    }

    async Task<string> SeedUnknownAsync(string tenantId, string id, string source, string ledgerId)
    {
        var ring = await Server.Services.GetRequiredService<FieldEncryption>().GetAsync(CancellationToken.None);
        var at = DbTime.ToMicros(Clock.UtcNow.AddHours(-3));
        var row = new PayoutRow
        {
            tenant_id = tenantId, id = id, status = PayoutStatuses.Unknown, request_hash = "seeded", ledger_id = ledgerId, currency = "IDR",
            source_account = source, clearing_account = PayoutService.ClearingAccountId(ledgerId), amount = 1_250_000_00, destination_type = "bank",
            destination_code = "BCA", destination_account_number = ring.Encrypt("1234567890", PayoutService.Context("destination_account_number", tenantId, id)),
            destination_account_masked = Masking.Tail("1234567890"), reference = "Vendor payment", provider_key = PayoutService.ProviderKey(tenantId, id),
            provider_reference = "disb_" + id, created_at_us = at, updated_at_us = at, submitted_at_us = at, unknown_since_us = at,
        };
        Assert.True(await Server.Services.GetRequiredService<PayoutStore>().InsertAsync(row, CancellationToken.None));
        var reserved = await Server.Services.GetRequiredService<PayoutService>().ReserveAsync(row, CancellationToken.None);
        Assert.True(reserved.Succeeded, reserved.Error?.Detail);
        return id;
    }

    /// <summary>A one-time sign-in link for an end user of <paramref name="tenant"/> with the EWA scopes.</summary>
    public static async Task<string> SignInLinkAsync(EwaWebTenant tenant, string subject)
    {
        var code = await tenant.Http.PostJsonAsync("/v1/web/sign-in-codes", new { subject, scopes = new[] { "ewa:read", "ewa:write" } });
        Assert.True(code.Response.IsSuccessStatusCode, code.Body?.ToJsonString());
        return (string)code.Body!["url"]!;
    }

    public Task<BrowserJourney> JourneyAsync(string name, string? language = null) => BrowserJourney.StartAsync(Browser, Server.BaseAddress, name, language);

    public async ValueTask DisposeAsync()
    {
        if (Browser is not null) await Browser.CloseAsync();
        if (Server is not null) await Server.DisposeAsync();
        Clock.Dispose();
    }
}
