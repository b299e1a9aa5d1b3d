using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Neraca.Events;
using Neraca.Jobs;
using Neraca.Ledger;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;
using PuppeteerSharp;

namespace Neraca.Tests.Web;

/// <summary>What a tenant of the web tests holds: a rupiah ledger with a bank, Alice (owned by the end user
/// <c>{prefix}alice</c>) and Bob; a top-up of Rp 1.500.000 and a payment of Rp 250,50; a dead job; for tenant A a
/// webhook endpoint whose deliveries are dead letters.</summary>
public sealed record WebTenant(TestTenant Tenant, string Prefix, string LedgerId, string TopUpId, string JobId)
{
    public string Id => Tenant.Id;
    public string ApiKey => Tenant.ApiKey;
    public string Alice => Prefix + "alice";
    public string Bob => Prefix + "bob";
    public string AliceSubject => Prefix + "alice-user";
    public string? WebhookId { get; init; }
}

/// <summary>One server (embedded SQLite, fast webhook retries, loopback receivers allowed) and one headless Chromium
/// for a test class, with two tenants seeded through the in-process services.</summary>
public sealed class WebFixture : IAsyncLifetime
{
    public NeracaServer Server { get; private set; } = default!;
    public IBrowser Browser { get; private set; } = default!;
    public SwitchableReceiver Receiver { get; private set; } = default!;
    public FlakyJob Job { get; } = new();
    public WebTenant A { get; private set; } = default!;
    public WebTenant B { get; private set; } = default!;

    static readonly string[] Args =
    [
        "--Events:AllowPrivateWebhookTargets=true", "--Events:WebhookRetryBaseDelayMs=20", "--Events:WebhookRetryDelayMaxMs=50",
        "--Events:WebhookAttemptsMax=2", "--Events:WebhookDisableAfterFailures=100", "--Events:WebhookPollIntervalMs=50",
        "--Events:WebhookTimeoutMs=2000", "--Events:RelayPollIntervalMs=50", "--Jobs:PollIntervalMs=100",
    ];

    public async ValueTask InitializeAsync()
    {
        var browser = Chromium.LaunchAsync();
        Receiver = await SwitchableReceiver.StartAsync(500);
        var database = await TestStores.NewDatabaseAsync(StoreKind.Sqlite);
        using (ServiceOverrides.Apply(s => s.AddSingleton<IJobHandler>(Job)))
            Server = await NeracaServer.StartAsync(database, Args);
        A = await SeedAsync("a-", webhook: true);
        B = await SeedAsync("b-", webhook: true);
        // Both transfers' transfer.posted deliveries, after their last attempt.
        await Polling.Eventually(async () => await DeadDeliveriesAsync(A) == 2, "both webhook deliveries of tenant A dead-lettered");
        await Polling.Eventually(async () => (await Jobs.GetAsync(A.Id, A.JobId, CancellationToken.None))?.State == JobState.Dead, "a dead job");
        Browser = await browser;
    }

    public JobStore Jobs => Server.Services.GetRequiredService<JobStore>();

    public async Task<long> DeadDeliveriesAsync(WebTenant tenant, DeliveryState state = DeliveryState.Dead)
    {
        var (items, _) = await Server.Services.GetRequiredService<WebhookStore>().ListDeliveriesAsync(tenant.Id, tenant.WebhookId!, state, null, 100, CancellationToken.None);
        return items.Count;
    }

    async Task<WebTenant> SeedAsync(string prefix, bool webhook)
    {
        var tenant = await Server.NewTenantAsync();
        var ledger = Server.Services.GetRequiredService<ILedger>();
        var ct = CancellationToken.None;
        var created = await ledger.CreateLedgerAsync(tenant.Id, new CreateLedgerRequest(prefix + "wallets-idr", "IDR", 2, "Wallets"), ct);
        var ledgerId = created.Value!.Id;
        await ledger.CreateAccountAsync(tenant.Id, new CreateAccountRequest(prefix + "bank", ledgerId, "debit", Name: "Bank"), ct);
        await ledger.CreateAccountAsync(tenant.Id, new CreateAccountRequest(prefix + "alice", ledgerId, "credit", Name: "Alice",
            Flags: ["debits_must_not_exceed_credits"], Owner: prefix + "alice-user"), ct);
        await ledger.CreateAccountAsync(tenant.Id, new CreateAccountRequest(prefix + "bob", ledgerId, "credit", Name: "Bob", Owner: prefix + "bob-user"), ct);
        string? webhookId = null;
        if (webhook)
        {
            var hook = await tenant.Http.PostJsonAsync("/v1/webhooks", new { url = Receiver.Url + "/hooks", event_types = new[] { "transfer.*" }, description = "ops" });
            webhookId = (string)hook.Body!["id"]!;
        }
        var topUp = await ledger.CreateTransferAsync(tenant.Id, new CreateTransferRequest(prefix + "topup-1", prefix + "bank", prefix + "alice", 150_000_000,
            Description: "Top-up"), ct);
        Assert.True(topUp.Succeeded, topUp.Error?.Detail);
        var pay = await ledger.CreateTransferAsync(tenant.Id, new CreateTransferRequest(prefix + "pay-1", prefix + "alice", prefix + "bob", 25_050,
            Description: "Dinner"), ct);
        Assert.True(pay.Succeeded, pay.Error?.Detail);
        var job = await Jobs.EnqueueAsync(new JobRequest(tenant.Id, FlakyJob.TypeName, Key: prefix + "job"), ct);
        return new WebTenant(tenant, prefix, ledgerId, prefix + "topup-1", job.JobId) { WebhookId = webhookId };
    }

    public Task<BrowserJourney> JourneyAsync(string name, string? language = null) => BrowserJourney.StartAsync(Browser, Server.BaseAddress, name, language);

    public async ValueTask DisposeAsync()
    {
        if (Browser is not null) await Browser.CloseAsync();
        if (Server is not null) await Server.DisposeAsync();
        if (Receiver is not null) await Receiver.DisposeAsync();
    }
}

/// <summary>A job that dead-letters at once while <see cref="Failing"/> is set and succeeds after.</summary>
public sealed class FlakyJob : IJobHandler
{
    public const string TypeName = "web_test.flaky";
    volatile bool _failing = true;

    public bool Failing
    {
        get => _failing;
        set => _failing = value;
    }

    public string Type => TypeName;

    public JobTypeDefaults Defaults => new() { AttemptsMax = 1 };

    public Task ExecuteAsync(JobExecution job, CancellationToken ct) =>
        _failing ? throw new PermanentJobFailureException("the payroll file was not there yet (the test's job fails on purpose)") : Task.CompletedTask;
}

/// <summary>A webhook subscriber on loopback whose answer the test changes (500 until it is "fixed").</summary>
public sealed class SwitchableReceiver : IAsyncDisposable
{
    readonly WebApplication _app;
    volatile int _status;

    SwitchableReceiver(WebApplication app, string url, int status)
    {
        _app = app;
        Url = url;
        _status = status;
    }

    public string Url { get; }

    public int Status
    {
        get => _status;
        set => _status = value;
    }

    public static async Task<SwitchableReceiver> StartAsync(int status)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        SwitchableReceiver? receiver = null;
        app.Run(context =>
        {
            context.Response.StatusCode = receiver!.Status;
            return Task.CompletedTask;
        });
        await app.StartAsync();
        var url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        receiver = new SwitchableReceiver(app, url, status);
        return receiver;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
