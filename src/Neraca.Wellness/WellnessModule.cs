using Neraca.Jobs;
using Neraca.Security;
using Neraca.Storage;
using Neraca.Tenancy;
using Neraca.Wellness.Access;
using Neraca.Wellness.Employees;
using Neraca.Wellness.Employers;
using Neraca.Wellness.Payday;
using Neraca.Wellness.Reports;
using Neraca.Wellness.Withdrawals;

namespace Neraca.Wellness;

/// <summary>Earned wage access (issue #14, docs/ewa.md): employers and their policy, roster import, attendance,
/// earned-to-date and balance, withdrawals paid through payouts, payday close with deduction reports and recovery on the
/// ledger, nightly jobs spread per employer, reports and events. Money moves only through <c>ILedger</c> (and payouts).</summary>
public static class WellnessModule
{
    public static WebApplicationBuilder AddWellness(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<WellnessOptions>().Bind(builder.Configuration.GetSection("Wellness")).ValidateDataAnnotations()
            .Validate(o => Cronos.CronExpression.TryParse(o.NightlyCron, Cronos.CronFormat.Standard, out _), "Wellness:NightlyCron is not a cron expression.")
            .ValidateOnStart();
        services.AddMigrations(typeof(WellnessModule).Assembly);
        services.AddScoped<EwaAccess>();
        services.AddSingleton<EmployerStore>();
        services.AddSingleton<EmployeeStore>();
        services.AddSingleton<EwaLedger>();
        services.AddSingleton<WithdrawalService>();

        services.AddEncryptedColumns(EmployeeStore.Encrypted);
        services.AddEncryptedColumns(WithdrawalService.Encrypted);
        services.AddEncryptedColumns(RosterImportJob.Encrypted);

        services.AddSingleton<IJobHandler, RosterImportJob>();
        services.AddSingleton<IJobHandler, ProcessWithdrawalJob>();
        services.AddSingleton<IJobHandler, PayoutDoneJob>();
        services.AddSingleton<IJobHandler, NightlyDispatchJob>();
        services.AddSingleton<IJobHandler, EmployerNightlyJob>();
        services.AddSingleton<IJobHandler, RecoveryJob>();
        // Hourly per tenant (employers live in several time zones), tenants spread over 30 minutes; each employer's own
        // work is spread again over Wellness:EmployerSpreadSeconds. Jobs:Recurring:ewa.nightly overrides cron and window.
        var cron = builder.Configuration["Wellness:NightlyCron"] ?? new WellnessOptions().NightlyCron;
        services.AddSingleton(new RecurringJob(NightlyDispatchJob.TypeName, NightlyDispatchJob.TypeName, cron, RecurringScope.PerTenant)
        {
            SpreadWindow = TimeSpan.FromMinutes(30),
        });
        return builder;
    }

    public static WebApplication MapWellness(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<WellnessOptions>>().Value;
        var read = app.MapGroup("/v1/ewa").WithTags("Earned wage access").RequireAuthorization(Scopes.EwaRead);
        var write = app.MapGroup("/v1/ewa").WithTags("Earned wage access").RequireAuthorization(Scopes.EwaWrite);
        EmployersApi.Map(read, write);
        EmployeesApi.Map(read, write, options);
        WithdrawalsApi.Map(read, write);
        ReportsApi.Map(read);
        read.ProducesProblem(400).ProducesProblem(404);
        write.ProducesProblem(400).ProducesProblem(403).ProducesProblem(404).ProducesProblem(409).ProducesProblem(422);
        return app;
    }
}
