namespace Neraca.Banking;

/// <summary>The banking (issue #16): customers, wallets, holds and blocks, payments, history, statements. The project is wired into the host and guarded by the architecture tests; it has no
/// endpoints, tables or jobs yet. It moves money only through <c>ILedger</c>, registers its migrations with
/// <c>AddMigrations</c> and its jobs as <c>IJobHandler</c>s here, and maps its routes in <see cref="MapBanking"/>.</summary>
public static class BankingModule
{
    public static WebApplicationBuilder AddBanking(this WebApplicationBuilder builder) => builder;

    public static WebApplication MapBanking(this WebApplication app) => app;
}
