using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Http.HttpResults;
using Neraca.Hosting;
using Neraca.Ledger;
using Neraca.Storage;
using Neraca.Wellness;
using Neraca.Wellness.Access;
using Neraca.Wellness.Employers;
using Neraca.Web.Components;

namespace Neraca.Web.Views.Ewa;

/// <summary>Base of the earned-wage-access views. They call the same handlers the <c>/v1/ewa</c> API maps, in process and
/// with the signed-in caller (its tenant, role and employee come from the session through <see cref="EwaAccess"/>), so a
/// screen shows exactly what the API would answer this caller: another tenant's or another employer's id is
/// <c>employer_not_found</c>, an employee sees only themselves, and every refusal carries the API's problem code.</summary>
public abstract class EwaPage : WebPage
{
    [Inject] internal EwaAccess Access { get; set; } = default!;
    [Inject] internal Database Database { get; set; } = default!;
    [Inject] internal SqlDialect Dialect { get; set; } = default!;
    [Inject] internal ILedger Ledger { get; set; } = default!;
    [Inject] internal TimeProvider Time { get; set; } = default!;
    [Inject] internal EmployerStore Employers { get; set; } = default!;

    /// <summary>What every handler of the API takes (its <c>[AsParameters]</c> bundle), for this request.</summary>
    internal EwaServices Ewa => new(Access, Database, Dialect, Ledger, Time, Employers, HttpContext);

    /// <summary>The value of a handler's success, or null with the problem shown (and the status answered, when
    /// <paramref name="asPageStatus"/>) as the API would have answered it.</summary>
    internal async Task<TValue?> CallAsync<TValue>(Func<Task<IResult>> handler, bool asPageStatus = true) where TValue : class
    {
        IResult result;
        try { result = await handler(); }
        catch (InvalidCursorException)
        {
            Show(new WebProblem("invalid_cursor", T["list.invalid_cursor"]), 400, asPageStatus);
            return null;
        }
        if (result is IValueHttpResult { Value: TValue value }) return value;
        var (problem, status) = ProblemOf(result);
        Show(problem, status, asPageStatus);
        return null;
    }

    void Show(WebProblem problem, int status, bool asPageStatus)
    {
        if (asPageStatus) Fail(problem, status);
        else Notice(problem);
    }

    /// <summary>The problem an API result carries: its <c>code</c>, and its detail with each field's message.</summary>
    internal static (WebProblem Problem, int Status) ProblemOf(IResult result) => result switch
    {
        ValidationProblem v => (new WebProblem("validation_failed",
            string.Join(" ", v.ProblemDetails.Errors.Select(e => $"{e.Key}: {string.Join(" ", e.Value)}"))), v.StatusCode),
        ProblemHttpResult p => (new WebProblem(p.ProblemDetails.Extensions.TryGetValue("code", out var code) ? code?.ToString() ?? "error" : "error",
            p.ProblemDetails.Detail), p.StatusCode),
        IStatusCodeHttpResult { StatusCode: { } s } => (new WebProblem(Problems.CodeForStatus(s), null), s),
        _ => (new WebProblem("error", null), StatusCodes.Status500InternalServerError),
    };

    /// <summary>Rupiah in minor units, in the reader's language (the EWA ledger is IDR at scale 2).</summary>
    protected string Rp(long minorUnits) => T.Money(minorUnits, EwaMoney.Asset, EwaMoney.Scale);
}

/// <summary>Earned wage access keeps one IDR ledger per tenant at scale 2 (docs/ewa.md, "Money map").</summary>
public static class EwaMoney
{
    public const string Asset = "IDR";
    public const int Scale = 2;
    const long MinorPerRupiah = 100;

    /// <summary>Whole rupiah as typed (<c>500000</c>, <c>500.000</c>, <c>500,000</c>, <c>Rp 500.000</c>) to minor
    /// units; null when it is not a whole, positive amount or it overflows.</summary>
    public static long? ParseRupiah(string? text, bool allowZero = false)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        var s = text.Trim();
        if (s.StartsWith("Rp", StringComparison.OrdinalIgnoreCase)) s = s[2..].Trim();
        if (s.StartsWith("IDR", StringComparison.OrdinalIgnoreCase)) s = s[3..].Trim();
        // Separators may only group thousands (1.500.000 or 1,500,000): a fraction (500,50) is refused, not misread.
        var groups = s.Replace(" ", "", StringComparison.Ordinal).Split('.', ',');
        if (groups.Length > 1 && (groups[0].Length is 0 or > 3 || groups.Skip(1).Any(g => g.Length != 3))) return null;
        s = string.Concat(groups);
        if (s.Length is 0 or > 15 || !s.All(char.IsAsciiDigit)) return null;
        var rupiah = long.Parse(s, System.Globalization.CultureInfo.InvariantCulture);
        return rupiah < (allowZero ? 0 : 1) ? null : checked(rupiah * MinorPerRupiah);
    }

    /// <summary>Minor units as whole rupiah for a form field (the fraction, never used in IDR, is dropped).</summary>
    public static string FieldValue(long minorUnits) => (minorUnits / MinorPerRupiah).ToString(System.Globalization.CultureInfo.InvariantCulture);
}
