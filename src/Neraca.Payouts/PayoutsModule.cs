using System.Data.Common;
using Microsoft.Extensions.Options;
using Neraca.Hosting;
using Neraca.Jobs;
using Neraca.Payouts.Provider;
using Neraca.Payouts.Sandbox;
using Neraca.Security;
using Neraca.Storage;

namespace Neraca.Payouts;

/// <summary>Payouts (issue #13): HTTP at <c>/v1/payouts</c>, the in-process <see cref="PayoutService"/> for products, the
/// saga jobs, the provider adapter and the sandbox provider.</summary>
public static class PayoutsModule
{
    public static WebApplicationBuilder AddPayouts(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<PayoutsOptions>().Bind(builder.Configuration.GetSection("Payouts")).ValidateDataAnnotations()
            .Validate(o => string.IsNullOrWhiteSpace(o.Provider.Url) || Uri.TryCreate(o.Provider.Url, UriKind.Absolute, out var u) && u.Scheme is "http" or "https",
                "Payouts:Provider:Url must be an absolute http(s) URL.")
            .Validate(o => string.IsNullOrWhiteSpace(o.Provider.Url) || o.Provider.CallbackSecret is { Length: >= 16 },
                "Payouts:Provider:CallbackSecret (16+ characters) is required with Payouts:Provider:Url: callbacks are verified with it.")
            .ValidateOnStart();
        services.AddMigrations(typeof(PayoutsModule).Assembly);
        services.AddEncryptedColumns(new EncryptedColumns(PayoutService.Table, "id", ["destination_account_number", "destination_account_name"]));
        services.AddSingleton<PayoutMetrics>();
        services.AddSingleton<PayoutStore>();
        services.AddSingleton(sp => new PayoutService(sp.GetRequiredService<Ledger.ILedger>(), sp.GetRequiredService<PayoutStore>(),
            sp.GetRequiredService<FieldEncryption>(), sp.GetRequiredService<JobStore>(), sp.GetRequiredService<SqlDialect>(),
            sp.GetRequiredService<IOptions<PayoutsOptions>>(), sp.GetRequiredService<ILogger<PayoutService>>()));
        services.AddSingleton<PayoutSaga>();
        services.AddSingleton<PayoutCallbacks>();

        var builtIn = string.IsNullOrWhiteSpace(builder.Configuration["Payouts:Provider:Url"]);
        if (builtIn) services.AddSingleton<BuiltInSandbox>();
        ProviderClient.Register(services, builtIn);
        services.AddHostedService<BuiltInSandboxGuard>();

        services.AddSingleton<IJobHandler, SubmitPayoutJob>();
        services.AddSingleton<IJobHandler, ResolvePayoutJob>();
        services.AddSingleton<IJobHandler, CompletePayoutJob>();
        services.AddSingleton<IJobHandler, RecoverPayoutsJob>();
        services.AddSingleton(new RecurringJob(PayoutJobs.Recover, PayoutJobs.Recover, "* * * * *"));

        var roles = NeracaRolesParser.TryParse(builder.Configuration[nameof(NeracaOptions.Role)] ?? new NeracaOptions().Role, out var r) ? r : NeracaRoles.All;
        if (roles.HasFlag(NeracaRoles.Worker)) services.AddHostedService<PayoutGauges>();
        return builder;
    }

    public static WebApplication MapPayouts(this WebApplication app)
    {
        app.MapPayoutsApi();
        return app;
    }
}

/// <summary>Refuses to serve in Production on PostgreSQL with the built-in sandbox (no <c>Payouts:Provider:Url</c>)
/// unless <see cref="PayoutsOptions.AllowBuiltInSandbox"/>: a real deployment without a provider would "pay" from memory.
/// The embedded SQLite default (the README's first look) is never a production system, so it keeps the sandbox.</summary>
internal sealed class BuiltInSandboxGuard(IServiceProvider services, IHostEnvironment environment, Database database, IOptions<PayoutsOptions> options)
    : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var builtIn = services.GetService<BuiltInSandbox>() is not null;
        if (builtIn && environment.IsProduction() && database.Kind == StoreKind.Postgres && !options.Value.AllowBuiltInSandbox)
            throw new OptionsValidationException("Payouts", typeof(PayoutsOptions),
                ["Payouts:Provider:Url is not set, so payouts would go to the built-in sandbox, which pays nobody; in Production on PostgreSQL "
                 + "set Payouts:Provider:Url (a provider, or `neraca sandbox payouts`) or, for a staging system, Payouts:AllowBuiltInSandbox=true."]);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>Worker role: refreshes the payout gauges (open payouts by status, age of the oldest <c>unknown</c>).</summary>
internal sealed partial class PayoutGauges(PayoutStore store, PayoutMetrics metrics, IOptions<PayoutsOptions> options, TimeProvider time,
    ILogger<PayoutGauges> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        var interval = TimeSpan.FromMilliseconds(options.Value.MetricsRefreshMs);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var (open, oldestUs) = await store.GaugesAsync(ct);
                var age = oldestUs is { } us ? Math.Max(0, (time.GetUtcNow() - DbTime.FromMicros(us)).TotalSeconds) : 0;
                metrics.Refreshed(open, age);
            }
            catch (Exception e) when (e is DbException or TimeoutException)
            {
                LogRefreshFailed(logger, e);
            }
            try { await Task.Delay(interval, time, ct); }
            catch (OperationCanceledException) { return; }
        }
    }

    [LoggerMessage(1, LogLevel.Warning, "Refreshing the payout gauges failed; trying again at the next interval")]
    static partial void LogRefreshFailed(ILogger logger, Exception error);
}
