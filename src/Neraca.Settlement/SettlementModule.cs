using Neraca.Hosting;
using Neraca.Jobs;
using Neraca.Settlement.Counterparties;
using Neraca.Settlement.Matching;
using Neraca.Settlement.Runs;
using Neraca.Settlement.Statements;
using Neraca.Storage;

namespace Neraca.Settlement;

/// <summary>Settlement and reconciliation (issue #17): counterparties and their business calendars, net positions and
/// settlement runs with close of business at each cut-off, bank statement import (CSV, MT940, camt.053), rule-based
/// matching in the background and the exception queue. Money moves only through <c>ILedger</c>.</summary>
public static class SettlementModule
{
    public static WebApplicationBuilder AddSettlement(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<SettlementOptions>().Bind(builder.Configuration.GetSection("Settlement")).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddMigrations(typeof(SettlementModule).Assembly);
        builder.Services.AddSingleton<SettlementMetrics>();
        builder.Services.AddSingleton<CounterpartyDirectory>();
        builder.Services.AddSingleton<SettlementRuns>();
        builder.Services.AddSingleton<ReconciliationStore>();
        builder.Services.AddSingleton<StatementImporter>();
        builder.Services.AddSingleton<ExceptionQueue>();

        // Jobs. The close-of-business sweep runs every minute per tenant and enqueues each counterparty's settlement due
        // at its cut-off (Jobs:Recurring:settlement.close_of_business:Cron|Enabled).
        builder.Services.AddSingleton<IJobHandler, CloseOfBusinessJob>();
        builder.Services.AddSingleton<IJobHandler, SettleJob>();
        builder.Services.AddSingleton<IJobHandler, ExecuteRunJob>();
        builder.Services.AddSingleton<IJobHandler, MatchingJob>();
        builder.Services.AddSingleton(new RecurringJob("settlement.close_of_business", CloseOfBusinessJob.TypeName, "* * * * *", RecurringScope.PerTenant));

        var roles = NeracaRolesParser.TryParse(builder.Configuration[nameof(NeracaOptions.Role)] ?? new NeracaOptions().Role, out var r) ? r : NeracaRoles.All;
        if (roles.HasFlag(NeracaRoles.Worker)) builder.Services.AddHostedService<ReconciliationMonitor>();
        return builder;
    }

    public static WebApplication MapSettlement(this WebApplication app)
    {
        app.MapSettlementApi();
        return app;
    }
}
