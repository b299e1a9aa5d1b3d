using Neraca.Hosting;
using Neraca.Ledger;
using Neraca.Storage;
using Neraca.Tenancy;
using Neraca.Wellness;
using Neraca.Wellness.Access;
using Neraca.Wellness.Employers;
using Neraca.Wellness.Reports;
using Neraca.Web.Sessions;

namespace Neraca.Web.Views.Ewa;

/// <summary>Files the earned-wage-access views link to, which a page cannot answer: the payday deduction report as CSV,
/// from the API's own report handler (same rows, same header, same access checks), for either area's session.</summary>
public static class EwaDownloads
{
    public static WebApplication MapEwaWeb(this WebApplication app)
    {
        app.MapGet("/operator/ewa/employers/{id}/cycles/{cycle}/deductions.csv", DeductionsAsync)
            .RequireAuthorization(WebPolicies.Operator + ":" + Scopes.EwaRead).ExcludeFromDescription();
        app.MapGet("/app/ewa/employers/{id}/cycles/{cycle}/deductions.csv", DeductionsAsync)
            .RequireAuthorization(WebPolicies.User).ExcludeFromDescription();
        return app;
    }

    static Task<IResult> DeductionsAsync(string id, string cycle, HttpContext http, EwaAccess access, Database database, SqlDialect dialect, ILedger ledger,
        TimeProvider time, EmployerStore employers, CancellationToken ct)
    {
        if (!WebAuth.HasScope(http.User, Scopes.EwaRead))
            return Task.FromResult<IResult>(Problems.Of(StatusCodes.Status403Forbidden, "insufficient_scope", "Not allowed", $"This needs the scope {Scopes.EwaRead}."));
        return ReportsApi.Deductions(id, cycle, new EwaServices(access, database, dialect, ledger, time, employers, http), "csv", ct);
    }
}
