using Neraca.Jobs;
using Neraca.Storage;

namespace Neraca.SplitBill;

/// <summary>Split bills (issue #15): groups, expenses split to the exact minor unit, balances, settle-up, wallet
/// settlements through <c>ILedger</c>, receipts processed in the background, recurring expenses, CSV export/import.</summary>
public static class SplitBillModule
{
    public static WebApplicationBuilder AddSplitBill(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<SplitBillOptions>()
            .Bind(builder.Configuration.GetSection("SplitBill"))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.AddMigrations(typeof(SplitBillModule).Assembly);
        builder.Services.AddSingleton<ReceiptStore>();
        builder.Services.AddSingleton<SplitBills>();
        builder.Services.AddSingleton<IJobHandler, ProcessReceiptJob>();
        builder.Services.AddSingleton<IJobHandler, ResumeSettlementJob>();
        builder.Services.AddSingleton<IJobHandler, RecurringExpensesJob>();
        // Hourly is enough for periods counted in days; tenants spread over half an hour.
        builder.Services.AddSingleton(new RecurringJob(SplitBills.RecurringJobType, SplitBills.RecurringJobType, "7 * * * *", RecurringScope.PerTenant)
        { SpreadWindow = TimeSpan.FromMinutes(30) });
        return builder;
    }

    public static WebApplication MapSplitBill(this WebApplication app)
    {
        app.MapSplitBillApi();
        return app;
    }
}
