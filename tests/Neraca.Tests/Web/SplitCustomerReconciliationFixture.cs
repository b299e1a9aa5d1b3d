using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;
using PuppeteerSharp;

namespace Neraca.Tests.Web;

/// <summary>What a tenant of the product-view tests holds, seeded through the HTTP API with its admin key: a split group
/// of Ana (end user <c>{prefix}ana</c>), Budi and Citra; Ana as a banking customer with a wallet topped up with
/// Rp 5.000.000 and two payments out (coffee, a ride), and a closed-period statement of it; a bank counterparty whose
/// imported CSV statement has one line matched and one in the exception queue.</summary>
public sealed record ProductTenant(TestTenant Tenant, string Prefix, string StatementId, string ExceptionId, string BankStatementId)
{
    public string Id => Tenant.Id;
    public string ApiKey => Tenant.ApiKey;
    public string Subject => Prefix + "ana";
    public string GroupId => Prefix + "dinner";
    public string AccountId => Prefix + "acc";
}

/// <summary>One server (embedded SQLite, jobs polled every 100 ms) and one headless Chromium shared by the split-bill,
/// customer and reconciliation view tests (a collection: they run one after another), with two tenants.</summary>
public sealed class SplitCustomerReconciliationFixture : IAsyncLifetime
{
    public const string Collection = "web product views";
    public static readonly TimeZoneInfo Jakarta = TimeZoneInfo.FindSystemTimeZoneById("Asia/Jakarta");

    public NeracaServer Server { get; private set; } = default!;
    public IBrowser Browser { get; private set; } = default!;
    public ProductTenant A { get; private set; } = default!;
    public ProductTenant B { get; private set; } = default!;

    public async ValueTask InitializeAsync()
    {
        var browser = Chromium.LaunchAsync();
        Server = await NeracaServer.StartAsync(await TestStores.NewDatabaseAsync(StoreKind.Sqlite), ["--Jobs:PollIntervalMs=100"]);
        A = await SeedAsync("a-");
        B = await SeedAsync("b-");
        Browser = await browser;
    }

    public Task<BrowserJourney> JourneyAsync(string name, string? language = null) => BrowserJourney.StartAsync(Browser, Server.BaseAddress, name, language);

    /// <summary>Signs the journey's browser in as the tenant's end user (Ana) with a one-time code.</summary>
    public static async Task SignInUserAsync(BrowserJourney j, ProductTenant tenant)
    {
        var code = await tenant.Tenant.Http.PostJsonAsync("/v1/web/sign-in-codes",
            new { subject = tenant.Subject, scopes = new[] { "ledger:read", "ledger:write", "banking:read", "banking:write" } });
        Assert.Equal(HttpStatusCode.Created, code.Response.StatusCode);
        Assert.Equal(200, await j.GotoAsync((string)code.Body!["url"]!));
        Assert.Equal(200, await j.ClickAndWaitAsync("main form button[type=submit]"));
    }

    static async Task<JsonNode> OkAsync(Task<(HttpResponseMessage Response, JsonNode? Body)> call)
    {
        var (response, body) = await call;
        Assert.True(response.IsSuccessStatusCode, $"{response.RequestMessage?.RequestUri}: {(int)response.StatusCode} {body?.ToJsonString()}");
        return body!;
    }

    async Task<ProductTenant> SeedAsync(string p)
    {
        var tenant = await Server.NewTenantAsync();
        var http = tenant.Http;

        await OkAsync(http.PostJsonAsync("/v1/split/groups", new
        {
            id = p + "dinner", name = "Dinner at Sate Khas Senayan", currency = "IDR",
            members = new object[] { new { id = "ana", name = "Ana", subject = p + "ana" }, new { id = "budi", name = "Budi", subject = p + "budi" }, new { id = "citra", name = "Citra" } },
        }));

        await OkAsync(http.PostJsonAsync("/v1/customers", new { id = p + "cus", subject = p + "ana", name = "Ana Wijaya", kyc_level = "full" }));
        await OkAsync(http.PostJsonAsync($"/v1/customers/{p}cus/accounts", new { id = p + "acc", product = "wallet", currency = "IDR" }));
        await OkAsync(http.PostJsonAsync("/v1/customers", new { id = p + "shop", subject = p + "shop", name = "Toko Sejahtera", kyc_level = "full" }));
        await OkAsync(http.PostJsonAsync($"/v1/customers/{p}shop/accounts", new { id = p + "shop-acc", product = "wallet", currency = "IDR" }));
        await OkAsync(http.PostJsonAsync("/v1/accounts", new { id = p + "switch", ledger = "bank-idr", normal_balance = "debit" }));
        await OkAsync(http.PostJsonAsync("/v1/payments", new { id = p + "top-1", from_account = p + "switch", to_account = p + "acc", amount = 500_000_000,
            reference = "VA-8812", description = "Top-up from virtual account" }));
        await OkAsync(http.PostJsonAsync("/v1/payments", new { id = p + "pay-1", from_account = p + "acc", to_account = p + "shop-acc", amount = 4_500_000,
            reference = "INV-2026-001", description = "Kopi Kenangan Senayan" }));
        await OkAsync(http.PostJsonAsync("/v1/payments", new { id = p + "pay-2", from_account = p + "acc", to_account = p + "shop-acc", amount = 3_500_000,
            reference = "RIDE-77", description = "Ride to the office" }));
        var yesterday = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(DateTimeOffset.UtcNow, Jakarta).DateTime).AddDays(-1);
        var bankStatement = await OkAsync(http.PostJsonAsync($"/v1/accounts/{p}acc/statements", new { from = Iso(yesterday.AddDays(-6)), to = Iso(yesterday) }));

        // Reconciliation: a bank whose statement books the top-up (matched by reference) and a fee nobody booked.
        await OkAsync(http.PostJsonAsync("/v1/ledgers", new { code = "recon-idr", asset = "IDR", scale = 2 }));
        foreach (var (id, normal) in new[] { ("bank-bca", "debit"), ("suspense", "debit"), ("merchant", "credit") })
            await OkAsync(http.PostJsonAsync("/v1/accounts", new { id, ledger = "recon-idr", normal_balance = normal }));
        await OkAsync(http.PostJsonAsync("/v1/accounts", new { id = "due-bca", ledger = "recon-idr", normal_balance = "credit" }));
        await OkAsync(http.PostJsonAsync("/v1/settlement/counterparties", new
        {
            id = "bca", name = "Bank Central Asia", type = "bank", settlement_account = "due-bca", cash_account = "bank-bca", suspense_account = "suspense",
            cutoff_local_time = "17:00", time_zone = "Asia/Jakarta",
            csv_mapping = new
            {
                delimiter = ";", date_format = "dd/MM/yyyy", decimal_separator = ",", currency = "IDR",
                columns = new { value_date = "Tanggal", amount = "Jumlah", balance = "Saldo", reference = "Referensi", description = "Keterangan" },
            },
        }));
        var day = yesterday.AddDays(-1);
        var effective = new DateTimeOffset(TimeZoneInfo.ConvertTimeToUtc(day.ToDateTime(new TimeOnly(10, 0)), Jakarta), TimeSpan.Zero);
        await OkAsync(http.PostJsonAsync("/v1/transfers", new { id = p + "WEB-0001", debit_account = "bank-bca", credit_account = "merchant", amount = 15_000_000,
            effective_at = effective }));
        var date = day.ToString("dd/MM/yyyy", CultureInfo.InvariantCulture);
        var csv = $"""
            Tanggal;Keterangan;Referensi;Jumlah;Saldo
            {date};TOPUP MERCHANT;{p}WEB-0001;150000,00;1150000,00
            {date};BIAYA ADM;ADM-{p}9;-6500,00;1143500,00

            """;
        var imported = await OkAsync(http.PostRawAsync("/v1/reconciliation/statements?counterparty=bca", csv, "text/csv"));
        var statementId = (string)imported["id"]!;
        await Polling.Eventually(async () => (string?)(await OkAsync(http.GetJsonAsync($"/v1/reconciliation/statements/{statementId}")))["status"] != "matching",
            "the statement's first matching pass");
        var exceptions = await OkAsync(http.GetJsonAsync($"/v1/reconciliation/exceptions?status=open&statement={statementId}"));
        var exception = Assert.Single(exceptions["data"]!.AsArray());
        return new ProductTenant(tenant, p, statementId, (string)exception!["id"]!, (string)bankStatement["id"]!);
    }

    static string Iso(DateOnly d) => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    public async ValueTask DisposeAsync()
    {
        if (Browser is not null) await Browser.CloseAsync();
        if (Server is not null) await Server.DisposeAsync();
    }
}

[CollectionDefinition(SplitCustomerReconciliationFixture.Collection)]
public sealed class SplitCustomerReconciliationCollection : ICollectionFixture<SplitCustomerReconciliationFixture>;
