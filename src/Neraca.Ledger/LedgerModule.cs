using Microsoft.Extensions.Options;
using Neraca.Hosting;
using Neraca.Jobs;
using Neraca.Storage;

namespace Neraca.Ledger;

public static class LedgerModule
{
    /// <summary>The ledger: its in-process API (<see cref="ILedger"/>), posting pipeline, audit chain, migrations and jobs.</summary>
    public static WebApplicationBuilder AddLedger(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<LedgerOptions>().Bind(builder.Configuration.GetSection("Ledger")).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddMigrations(typeof(LedgerModule).Assembly);
        builder.Services.AddSingleton<LedgerMetrics>();
        builder.Services.AddSingleton<LedgerStore>();
        builder.Services.AddSingleton<Neraca.Events.EventDataSource, LedgerEventData>();
        builder.Services.AddSingleton<AuditChain>();
        builder.Services.AddSingleton<PostingPipeline>();
        builder.Services.AddSingleton<PendingExpiry>();
        builder.Services.AddSingleton<ILedger, InProcessLedger>();

        // Jobs. Schedules are defaults: Jobs:Recurring:<name>:Cron|TimeZone|SpreadWindowSeconds|Enabled.
        builder.Services.AddSingleton<IJobHandler, ExpirePendingTransfersJob>();
        builder.Services.AddSingleton<IJobHandler, AuditCheckpointJob>();
        builder.Services.AddSingleton<IJobHandler, VerifyLedgersJob>();
        builder.Services.AddSingleton(new RecurringJob("ledger.expire_pending", ExpirePendingTransfersJob.TypeName, "*/10 * * * *"));
        builder.Services.AddSingleton(new RecurringJob("audit.checkpoint", AuditCheckpointJob.TypeName, "0 * * * *", RecurringScope.PerTenant)
        {
            SpreadWindow = TimeSpan.FromMinutes(15),
        });
        builder.Services.AddSingleton(new RecurringJob("audit.verify", VerifyLedgersJob.TypeName, "0 1 * * *", RecurringScope.PerTenant)
        {
            SpreadWindow = TimeSpan.FromHours(3),
        });

        var roles = NeracaRolesParser.TryParse(builder.Configuration[nameof(NeracaOptions.Role)] ?? new NeracaOptions().Role, out var r) ? r : NeracaRoles.All;
        if (roles.HasFlag(NeracaRoles.Worker)) builder.Services.AddHostedService<PendingExpiryService>();
        return builder;
    }

    /// <summary>Maps the ledger's HTTP API and wires what needs the built container: the pending gauge.</summary>
    public static WebApplication MapLedger(this WebApplication app)
    {
        var expiry = app.Services.GetRequiredService<PendingExpiry>();
        app.Services.GetRequiredService<LedgerMetrics>().ObservePending(() => expiry.PendingCount);
        _ = app.Services.GetRequiredService<IOptions<LedgerOptions>>().Value;
        app.MapLedgerApi();
        return app;
    }

    /// <summary>Recomputes the audit hash chains of the tenant's (or every tenant's) ledgers, straight from the database:
    /// the offline <c>neraca audit verify</c> command. Returns the number of chains that failed.</summary>
    public static async Task<int> VerifyAuditChainsAsync(IServiceProvider services, string? tenant, string? ledger, TextWriter output, CancellationToken ct)
    {
        var database = services.GetRequiredService<Database>();
        var chain = services.GetRequiredService<AuditChain>();
        await using var connection = await database.OpenReadAsync(ct);
        var ledgers = await Dapper.SqlMapper.QueryAsync<(string Tenant, string Id, string Code)>(connection, new Dapper.CommandDefinition("""
            SELECT tenant_id, id, code FROM ledgers WHERE (@tenant IS NULL OR tenant_id = @tenant) AND (@ledger IS NULL OR code = @ledger OR id = @ledger)
            ORDER BY tenant_id, code
            """, new { tenant, ledger }, cancellationToken: ct));
        var failed = 0;
        var count = 0;
        foreach (var (tenantId, id, code) in ledgers)
        {
            count++;
            var result = await chain.VerifyAsync(tenantId, id, ct);
            if (!result.Verified) failed++;
            await output.WriteLineAsync(result.Verified
                ? $"ok      {tenantId}/{code}: {result.Links} links, head {result.Head}"
                : $"FAILED  {tenantId}/{code}: first bad link {result.FirstBadLink} ({result.Problem})");
        }
        await output.WriteLineAsync($"{count} ledger(s) checked, {failed} failed.");
        return failed;
    }
}
