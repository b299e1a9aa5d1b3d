using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http.HttpResults;
using Neraca.Hosting;
using Neraca.Idempotency;
using Neraca.Ledger;
using Neraca.Storage;
using Neraca.Wellness.Access;
using Neraca.Wellness.Employers;

namespace Neraca.Wellness;

/// <summary>Services every earned-wage-access handler needs, bundled for <c>[AsParameters]</c>.</summary>
internal sealed record EwaServices(EwaAccess Access, Database Database, SqlDialect Dialect, ILedger Ledger, TimeProvider Time,
    EmployerStore Employers, HttpContext Http)
{
    public string TenantId => Access.TenantId;

    public DateTimeOffset Now => Time.GetUtcNow();

    /// <summary>An id for something the client did not name: derived from the caller and its <c>Idempotency-Key</c> when
    /// there is one (a retry after a lost response re-creates nothing), new otherwise. As the ledger's API does.</summary>
    public string NewId(string prefix) => Http.Request.Headers["Idempotency-Key"].FirstOrDefault() is { Length: > 0 } key
        ? prefix + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(
            $"{TenantId}\n{Http.Request.Path}\n{IdempotencyMiddleware.CallerScoped(Http.User, key)}")))[..26]
        : prefix + Ids.NewUlid().ToLowerInvariant();

    /// <summary>The employer if the caller may see it with one of <paramref name="roles"/>; otherwise a 404 (an employer
    /// the caller cannot see does not exist for it) or a 403 naming the role needed.</summary>
    public async Task<(Employer? Employer, string? Role, IResult? Problem)> EmployerAsync(string id, string[] roles, CancellationToken ct,
        string? employeeId = null)
    {
        var role = await Access.RoleAsync(id, employeeId, ct);
        if (role is null) return (null, null, EwaProblems.EmployerNotFound(id));
        var employer = await Employers.GetAsync(TenantId, id, ct);
        if (employer is null) return (null, null, EwaProblems.EmployerNotFound(id));
        if (!roles.Contains(role))
            return (null, role, role == "employee" ? EwaProblems.EmployerNotFound(id)
                : Problems.Of(403, "ewa_role_required", "Role required", $"This needs one of: {string.Join(", ", roles)}; the caller is {role}."));
        return (employer, role, null);
    }
}

internal static class EwaRoles
{
    public static readonly string[] Managers = ["operator", EmployerRoles.Admin, EmployerRoles.Staff];
    public static readonly string[] Admins = ["operator", EmployerRoles.Admin];
    public static readonly string[] OperatorOnly = ["operator"];
    public static readonly string[] EmployerAdminOnly = [EmployerRoles.Admin];
    public static readonly string[] Anyone = ["operator", EmployerRoles.Admin, EmployerRoles.Staff, "employee"];
}

/// <summary>The problem responses of earned wage access (docs/errors.md, "Earned wage access").</summary>
internal static class EwaProblems
{
    public static ProblemHttpResult EmployerNotFound(string id) => Problems.NotFound("employer_not_found", $"No employer '{id}'.");
    public static ProblemHttpResult EmployeeNotFound(string id) => Problems.NotFound("employee_not_found", $"No employee '{id}'.");
    public static ProblemHttpResult WithdrawalNotFound(string id) => Problems.NotFound("withdrawal_not_found", $"No withdrawal '{id}'.");
    public static ProblemHttpResult CycleNotFound(string id) => Problems.NotFound("cycle_not_found", $"No closed cycle '{id}'.");

    public static ProblemHttpResult Ledger(LedgerError e) => Problems.Of(e.Kind switch
    {
        LedgerErrorKind.NotFound => 404,
        LedgerErrorKind.Conflict => 409,
        LedgerErrorKind.Invalid => 400,
        LedgerErrorKind.Forbidden => 403,
        _ => 422,
    }, e.Code, "Ledger refused", e.Detail);

    /// <summary>400 <c>validation_failed</c> when <paramref name="errors"/> has entries.</summary>
    public static ValidationProblem? Validation(Dictionary<string, string[]> errors) => errors.Count == 0 ? null : Problems.Validation(errors);
}

internal static class PageLimits
{
    public const int Default = 100;
    public const int Max = 1_000;

    public static bool TryResolve(int? limit, out int value, out IResult? problem)
    {
        value = limit ?? Default;
        problem = value is < 1 or > Max ? Problems.Validation("limit", $"1-{Max}.") : null;
        return problem is null;
    }
}
