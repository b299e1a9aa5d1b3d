namespace Neraca.Settlement;

/// <summary>The settlement and reconciliation (issue #17): net positions, settlement runs, bank statement matching. The project is wired into the host and guarded by the architecture tests; it has no
/// endpoints, tables or jobs yet. It moves money only through <c>ILedger</c>, registers its migrations with
/// <c>AddMigrations</c> and its jobs as <c>IJobHandler</c>s here, and maps its routes in <see cref="MapSettlement"/>.</summary>
public static class SettlementModule
{
    public static WebApplicationBuilder AddSettlement(this WebApplicationBuilder builder) => builder;

    public static WebApplication MapSettlement(this WebApplication app) => app;
}
