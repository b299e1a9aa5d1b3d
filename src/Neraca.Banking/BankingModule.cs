using Microsoft.Extensions.Options;
using Neraca.Banking.Accounts;
using Neraca.Banking.Audit;
using Neraca.Banking.History;
using Neraca.Banking.Settings;
using Neraca.Banking.Withdrawals;
using Neraca.Jobs;
using Neraca.Security;
using Neraca.Storage;

namespace Neraca.Banking;

/// <summary>The banking (issue #16): customers, wallets, holds and blocks, payments, history, statements, audit log
/// (docs/banking.md). It moves money only through <c>ILedger</c>.</summary>
public static class BankingModule
{
    public static WebApplicationBuilder AddBanking(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<BankingOptions>().Bind(builder.Configuration.GetSection("Banking")).ValidateDataAnnotations()
            .Validate(o => o.Problem() is null, "Banking settings are invalid (time zones, currencies or hold expiry).").ValidateOnStart();
        builder.Services.AddMigrations(typeof(BankingModule).Assembly);
        builder.Services.AddEncryptedColumns(new EncryptedColumns(Customers.Customers.Table, "id", Customers.Customers.EncryptedColumns));
        builder.Services.AddEncryptedColumns(Withdrawals.Withdrawals.Encrypted);
        builder.Services.AddSingleton<TenantSettings>();
        builder.Services.AddSingleton<Customers.Customers>();
        builder.Services.AddSingleton<BankAccounts>();
        builder.Services.AddSingleton<BlocksAndHolds>();
        builder.Services.AddSingleton<Payments.Payments>();
        builder.Services.AddSingleton<Transactions>();
        builder.Services.AddSingleton<Statements.Statements>();
        builder.Services.AddSingleton<AuditLog>();
        builder.Services.AddSingleton<Withdrawals.Withdrawals>();

        builder.Services.AddSingleton<IJobHandler, RenderStatementJob>();
        builder.Services.AddSingleton<IJobHandler, MonthlyStatementsJob>();
        builder.Services.AddSingleton<IJobHandler, ExpireHoldsJob>();
        builder.Services.AddSingleton<IJobHandler, ProcessWithdrawalJob>();
        builder.Services.AddSingleton<IJobHandler, WithdrawalPayoutDoneJob>();
        builder.Services.AddSingleton(new RecurringJob("banking.expire_holds", ExpireHoldsJob.TypeName, "* * * * *"));
        // Hourly, each tenant at its own minute: the run for a month starts within the hour after the 1st begins in the
        // tenant's time zone (Banking:TimeZone / TenantTimeZones), and runs once.
        builder.Services.AddSingleton(new RecurringJob("banking.statements.monthly", MonthlyStatementsJob.TypeName, "0 * * * *", RecurringScope.PerTenant)
        {
            SpreadWindow = TimeSpan.FromMinutes(45),
        });
        return builder;
    }

    public static WebApplication MapBanking(this WebApplication app)
    {
        _ = app.Services.GetRequiredService<IOptions<BankingOptions>>().Value;
        app.MapBankingApi();
        return app;
    }
}
