namespace Neraca.SplitBill;

/// <summary>The split bills (issue #15): groups, expenses, balances, settle-up, receipts. The project is wired into the host and guarded by the architecture tests; it has no
/// endpoints, tables or jobs yet. It moves money only through <c>ILedger</c>, registers its migrations with
/// <c>AddMigrations</c> and its jobs as <c>IJobHandler</c>s here, and maps its routes in <see cref="MapSplitBill"/>.</summary>
public static class SplitBillModule
{
    public static WebApplicationBuilder AddSplitBill(this WebApplicationBuilder builder) => builder;

    public static WebApplication MapSplitBill(this WebApplication app) => app;
}
