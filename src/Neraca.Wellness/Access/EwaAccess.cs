using System.Security.Claims;
using Dapper;
using Neraca.Storage;
using Neraca.Tenancy;

namespace Neraca.Wellness.Access;

/// <summary>Roles an employer grants (stored; part of the API). Only <see cref="Admin"/> may reactivate a paused
/// employee or top up the float.</summary>
public static class EmployerRoles
{
    public const string Admin = "admin";
    public const string Staff = "staff";

    public static bool IsValid(string? role) => role is Admin or Staff;
}

/// <summary>Who is calling, as earned wage access sees it. Resolved once per request from the credentials:
/// <list type="bullet">
/// <item>a server API key listed in <c>ewa_employer_access</c> (principal <c>key:&lt;api key id&gt;</c>), or an end user listed
/// there (<c>sub:&lt;subject&gt;</c>), acts for those employers only, with the role given there;</item>
/// <item>an end user whose subject is an employee's (<c>ewa:&lt;employer&gt;:&lt;employee_id&gt;</c>) sees only that employee;</item>
/// <item>any other server key is the platform operator: the whole tenant, but not an employer admin's decisions.</item>
/// </list></summary>
public sealed class EwaAccess(CurrentCaller caller, IHttpContextAccessor http, Database database)
{
    Resolved? _resolved;

    public string TenantId => caller.TenantId;

    /// <summary>How this caller is named in <c>ewa_employer_access</c>.</summary>
    public string Principal => caller.Subject is { } subject ? "sub:" + subject
        : "key:" + (http.HttpContext?.User.FindFirstValue(NeracaClaims.KeyId) ?? throw new InvalidOperationException("No key id on a server caller."));

    /// <summary>A server key not bound to an employer: tenant-wide.</summary>
    public async Task<bool> IsOperatorAsync(CancellationToken ct) => (await ResolveAsync(ct)).Operator;

    /// <summary><c>operator</c>, <c>admin</c>, <c>staff</c>, <c>employee</c> (only <paramref name="employeeId"/> of
    /// it, when given and it is the caller's own) or null: the employer is not visible to this caller.</summary>
    public async Task<string?> RoleAsync(string employerId, string? employeeId, CancellationToken ct)
    {
        var r = await ResolveAsync(ct);
        if (r.Operator) return "operator";
        if (r.Roles.TryGetValue(employerId, out var role)) return role;
        if (r.Employee is { } e && e.EmployerId == employerId && (employeeId is null || employeeId == e.EmployeeId)) return "employee";
        return null;
    }

    /// <summary>Employers an employer-bound caller may see (null: all, the caller is the operator).</summary>
    public async Task<IReadOnlyCollection<string>?> VisibleEmployersAsync(CancellationToken ct)
    {
        var r = await ResolveAsync(ct);
        return r.Operator ? null : r.Roles.Keys.ToArray();
    }

    /// <summary>The employee the caller is (an end-user token), if any.</summary>
    public async Task<(string EmployerId, string EmployeeId)?> SelfAsync(CancellationToken ct) => (await ResolveAsync(ct)).Employee;

    async Task<Resolved> ResolveAsync(CancellationToken ct)
    {
        if (_resolved is { } done) return done;
        var principal = Principal;
        await using var connection = await database.OpenAsync(ct);
        var roles = (await connection.QueryAsync<(string, string)>(new CommandDefinition(
                "SELECT employer_id, role FROM ewa_employer_access WHERE tenant_id = @tenant AND principal = @principal",
                new { tenant = caller.TenantId, principal }, cancellationToken: ct)))
            .ToDictionary(x => x.Item1, x => x.Item2, StringComparer.Ordinal);
        (string, string)? employee = null;
        if (caller.Subject is { } subject)
        {
            var row = await connection.QuerySingleOrDefaultAsync<(string, string)?>(new CommandDefinition(
                "SELECT employer_id, employee_id FROM ewa_employees WHERE tenant_id = @tenant AND subject = @subject",
                new { tenant = caller.TenantId, subject }, cancellationToken: ct));
            employee = row;
        }
        _resolved = new Resolved(!caller.IsEndUser && roles.Count == 0, roles, employee);
        return _resolved;
    }

    sealed record Resolved(bool Operator, Dictionary<string, string> Roles, (string EmployerId, string EmployeeId)? Employee);
}
