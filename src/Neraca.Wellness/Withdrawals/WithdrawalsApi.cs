using Dapper;
using Neraca.Hosting;
using Neraca.Ledger;
using Neraca.Wellness.Employees;

namespace Neraca.Wellness.Withdrawals;

public sealed record MeView(string Subject, string EmployerId, string EmployeeId);

/// <summary>Balance and withdrawals under <c>/v1/ewa/employers/{id}/employees/{employee_id}</c>; <c>/v1/ewa/me</c> for
/// an employee's token.</summary>
internal static class WithdrawalsApi
{
    public static void Map(RouteGroupBuilder read, RouteGroupBuilder write)
    {
        read.MapGet("/me", Me);
        read.MapGet("/employers/{id}/employees/{employeeId}/balance", Balance);
        write.MapPost("/employers/{id}/employees/{employeeId}/withdrawals", Create);
        read.MapGet("/employers/{id}/employees/{employeeId}/withdrawals", List);
        read.MapGet("/employers/{id}/employees/{employeeId}/withdrawals/{withdrawalId}", Get);
    }

    static async Task<IResult> Me([AsParameters] EwaServices s, Neraca.Tenancy.CurrentCaller caller, CancellationToken ct) =>
        await s.Access.SelfAsync(ct) is { } self
            ? TypedResults.Ok(new MeView(caller.Subject!, self.EmployerId, self.EmployeeId))
            : EwaProblems.EmployeeNotFound(caller.Subject ?? "(a server key is not an employee)");

    internal static async Task<IResult> Balance(string id, string employeeId, [AsParameters] EwaServices s, EmployeeStore store, CancellationToken ct)
    {
        var (employer, _, problem) = await s.EmployerAsync(id, EwaRoles.Anyone, ct, employeeId);
        if (problem is not null) return problem;
        await using var connection = await s.Database.OpenAsync(ct);
        var employee = await store.GetAsync(connection, null, s.TenantId, id, employeeId, ct);
        if (employee is null) return EwaProblems.EmployeeNotFound(employeeId);
        return TypedResults.Ok(await Balances.ComputeAsync(connection, null, employer!, employee, s.Now, ct));
    }

    static async Task<IResult> Create(string id, string employeeId, WithdrawalRequest body, [AsParameters] EwaServices s, WithdrawalService withdrawals,
        HttpContext http, CancellationToken ct)
    {
        // The employee asks for their own money; the platform operator may ask on an employee's behalf (its app's backend).
        var (employer, _, problem) = await s.EmployerAsync(id, ["operator", "employee"], ct, employeeId);
        if (problem is not null) return problem;
        var outcome = await withdrawals.RequestAsync(s.TenantId, employer!, employeeId, s.NewId("wd_"), body, ct);
        if (outcome.Refusal is { } r)
        {
            // Both pass within minutes and created nothing: a retry with the same key must be tried again, not replayed.
            if (r.Code is "cycle_closing" or "employer_changed") Neraca.Idempotency.IdempotencyMiddleware.ForgetKeyAfter(http);
            return r.Code == "validation_failed" ? Problems.Validation(r.Detail.Split(':')[0], r.Detail)
                : Problems.Of(r.Status, r.Code, r.Code == "ewa_limit_exceeded" ? "Limit exceeded" : "Refused", r.Detail, r.Extra);
        }
        var w = outcome.Withdrawal!;
        var location = $"/v1/ewa/employers/{id}/employees/{employeeId}/withdrawals/{w.Id}";
        return outcome.Created ? TypedResults.Accepted(location, w) : TypedResults.Ok(w);
    }

    internal static async Task<IResult> List(string id, string employeeId, [AsParameters] EwaServices s, string? status, int? limit, string? after, CancellationToken ct)
    {
        var (_, _, problem) = await s.EmployerAsync(id, EwaRoles.Anyone, ct, employeeId);
        if (problem is not null) return problem;
        if (!PageLimits.TryResolve(limit, out var n, out var bad)) return bad!;
        if (status is not null && !WithdrawalStatuses.IsValid(status)) return Problems.Validation("status", "pending, processing, paid or failed.");
        var cursor = Cursor.Decode(after);
        long beforeUs = long.MaxValue;
        var beforeId = "";
        if (cursor is not null)
        {
            var parts = cursor.Split('|', 2);
            if (parts.Length != 2 || !long.TryParse(parts[0], System.Globalization.CultureInfo.InvariantCulture, out beforeUs)) throw new InvalidCursorException("after");
            beforeId = parts[1];
        }
        await using var connection = await s.Database.OpenReadAsync(ct);
        var rows = (await connection.QueryAsync<WithdrawalRow>(new CommandDefinition($"""
            SELECT {WithdrawalRow.Columns} FROM ewa_withdrawals
            WHERE tenant_id = @tenant AND employer_id = @id AND employee_id = @employeeId AND (@status IS NULL OR status = @status)
              AND (created_at_us < @beforeUs OR (created_at_us = @beforeUs AND id < @beforeId))
            ORDER BY created_at_us DESC, id DESC LIMIT @limit
            """, new { tenant = s.TenantId, id, employeeId, status, beforeUs, beforeId = cursor is null ? "\uffff" : beforeId, limit = n + 1 },
            cancellationToken: ct))).ToList();
        var data = rows.Take(n).Select(r => r.View()).ToList();
        var next = rows.Count > n ? Cursor.Encode(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{rows[n - 1].created_at_us}|{rows[n - 1].id}")) : null;
        return TypedResults.Ok(new Page<WithdrawalView>(data, next));
    }

    internal static async Task<IResult> Get(string id, string employeeId, string withdrawalId, [AsParameters] EwaServices s, CancellationToken ct)
    {
        var (_, _, problem) = await s.EmployerAsync(id, EwaRoles.Anyone, ct, employeeId);
        if (problem is not null) return problem;
        await using var connection = await s.Database.OpenAsync(ct);
        var w = await WithdrawalRow.GetAsync(connection, null, s.TenantId, withdrawalId, ct);
        return w is null || w.employer_id != id || w.employee_id != employeeId ? EwaProblems.WithdrawalNotFound(withdrawalId) : TypedResults.Ok(w.View());
    }
}
