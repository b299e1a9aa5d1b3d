namespace Neraca.Wellness;

/// <summary>The earned wage access (issue #14): employers, employees, earned-to-date, withdrawals, payday recovery. The project is wired into the host and guarded by the architecture tests; it has no
/// endpoints, tables or jobs yet. It moves money only through <c>ILedger</c>, registers its migrations with
/// <c>AddMigrations</c> and its jobs as <c>IJobHandler</c>s here, and maps its routes in <see cref="MapWellness"/>.</summary>
public static class WellnessModule
{
    public static WebApplicationBuilder AddWellness(this WebApplicationBuilder builder) => builder;

    public static WebApplication MapWellness(this WebApplication app) => app;
}
