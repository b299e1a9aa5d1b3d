using Microsoft.Extensions.Options;
using Neraca.Hosting;

namespace Neraca.Ledger;

public static class LedgerModule
{
    public static WebApplicationBuilder AddLedger(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<LedgerOptions>().Bind(builder.Configuration.GetSection("Ledger")).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<LedgerMetrics>();
        builder.Services.AddSingleton<LedgerStore>();
        builder.Services.AddSingleton<AuditChain>();
        builder.Services.AddSingleton<PostingPipeline>();
        builder.Services.AddSingleton<PendingExpiry>();
        var roles = NeracaRolesParser.TryParse(builder.Configuration[nameof(NeracaOptions.Role)] ?? new NeracaOptions().Role, out var r) ? r : NeracaRoles.All;
        if (roles.HasFlag(NeracaRoles.Worker)) builder.Services.AddHostedService<PendingExpiryService>();
        return builder;
    }

    /// <summary>Wires what needs the built container: the pending gauge.</summary>
    public static void UseLedger(this WebApplication app)
    {
        var expiry = app.Services.GetRequiredService<PendingExpiry>();
        app.Services.GetRequiredService<LedgerMetrics>().ObservePending(() => expiry.PendingCount);
        _ = app.Services.GetRequiredService<IOptions<LedgerOptions>>().Value;
    }
}
