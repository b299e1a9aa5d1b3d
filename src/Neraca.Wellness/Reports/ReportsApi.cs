using System.Globalization;
using CsvHelper;
using Dapper;
using Neraca.Hosting;
using Neraca.Ledger;
using Neraca.Storage;
using Neraca.Wellness.Employers;

namespace Neraca.Wellness.Reports;

public sealed record CycleView(string Cycle, string Start, string Payday, string Status, int Employees, long Advances, long Fees, long Due, long Recovered,
    long Carried, DateTimeOffset? ClosedAt);

public sealed record DeductionLine(string EmployeeId, int Withdrawals, long Advances, long Fees, long CarryIn, long Due, long NetPay, long Recovered,
    long Carried);

public sealed record WithdrawalLine(string Id, string EmployeeId, string Cycle, string Date, long Amount, long Fee, string FeePayer, string Status,
    string? FailureCode, DateTimeOffset CreatedAt);

public sealed record SummaryLine(string Cycle, int EmployeesWithdrawing, int Withdrawals, long Advances, long EmployeeFees, long EmployerFees,
    long EarnedSnapshot, int? UtilisationBps);

/// <summary>Payday deduction reports and employer reports, as JSON or CSV (<c>Accept: text/csv</c> or <c>?format=csv</c>).</summary>
internal static class ReportsApi
{
    const int ReportRowsMax = 100_000;
    const int ReportDaysMax = 400;

    public static void Map(RouteGroupBuilder read)
    {
        read.MapGet("/employers/{id}/cycles", ListCycles);
        read.MapGet("/employers/{id}/cycles/{cycle}", GetCycle);
        read.MapGet("/employers/{id}/cycles/{cycle}/deductions", Deductions);
        read.MapGet("/employers/{id}/reports/withdrawals", WithdrawalsReport);
        read.MapGet("/employers/{id}/reports/summary", Summary);
    }

    static bool WantsCsv(HttpContext http, string? format) =>
        format == "csv" || http.Request.Headers.Accept.Any(a => a?.Contains("text/csv", StringComparison.OrdinalIgnoreCase) == true);

    /// <summary>Rows as CSV with the API's snake_case names as the header (RFC 4180, formula characters escaped).</summary>
    static IResult Csv<T>(IEnumerable<T> rows, string fileName)
    {
        var properties = typeof(T).GetProperties();
        using var writer = new StringWriter(CultureInfo.InvariantCulture);
        using (var csv = CsvWriter.Create(writer, CsvWriterOptions.Default, leaveOpen: true))
        {
            csv.WriteHeader([.. properties.Select(p => System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(p.Name))]);
            foreach (var row in rows)
                csv.WriteRecord([.. properties.Select(p => p.GetValue(row) switch
                {
                    null => "",
                    DateTimeOffset d => d.ToString("O", CultureInfo.InvariantCulture),
                    IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
                    var v => v.ToString() ?? "",
                })]);
        }
        return new CsvResult(TypedResults.Text(writer.ToString(), "text/csv; charset=utf-8", System.Text.Encoding.UTF8), fileName);
    }

    sealed class CsvResult(IResult inner, string fileName) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.Headers.ContentDisposition = $"attachment; filename=\"{fileName}\"";
            return inner.ExecuteAsync(httpContext);
        }
    }

    internal static async Task<IResult> ListCycles(string id, [AsParameters] EwaServices s, CancellationToken ct)
    {
        var (_, _, problem) = await s.EmployerAsync(id, EwaRoles.Managers, ct);
        if (problem is not null) return problem;
        await using var connection = await s.Database.OpenReadAsync(ct);
        var rows = await connection.QueryAsync<CycleRow>(new CommandDefinition(CycleSql + " ORDER BY cycle DESC LIMIT 1000",
            new { tenant = s.TenantId, employer = id, cycle = (string?)null }, cancellationToken: ct));
        return TypedResults.Ok(new Page<CycleView>([.. rows.Select(r => r.View())], null));
    }

    internal static async Task<IResult> GetCycle(string id, string cycle, [AsParameters] EwaServices s, CancellationToken ct)
    {
        var (_, _, problem) = await s.EmployerAsync(id, EwaRoles.Managers, ct);
        if (problem is not null) return problem;
        await using var connection = await s.Database.OpenReadAsync(ct);
        var row = await connection.QuerySingleOrDefaultAsync<CycleRow>(new CommandDefinition(CycleSql,
            new { tenant = s.TenantId, employer = id, cycle }, cancellationToken: ct));
        return row is null ? EwaProblems.CycleNotFound(cycle) : TypedResults.Ok(row.View());
    }

    const string CycleSql = """
        SELECT cycle, start_date, status, employees, advances, fees, due, recovered, carried, closed_at_us FROM ewa_cycles
        WHERE tenant_id = @tenant AND employer_id = @employer AND (@cycle IS NULL OR cycle = @cycle)
        """;

    internal static async Task<IResult> Deductions(string id, string cycle, [AsParameters] EwaServices s, string? format, CancellationToken ct)
    {
        var (_, _, problem) = await s.EmployerAsync(id, EwaRoles.Managers, ct);
        if (problem is not null) return problem;
        await using var connection = await s.Database.OpenReadAsync(ct);
        var status = await connection.ExecuteScalarAsync<string?>(new CommandDefinition(
            "SELECT status FROM ewa_cycles WHERE tenant_id = @tenant AND employer_id = @employer AND cycle = @cycle",
            new { tenant = s.TenantId, employer = id, cycle }, cancellationToken: ct));
        if (status is null) return EwaProblems.CycleNotFound(cycle);
        if (status != "closed") return Problems.Of(409, "cycle_not_closed", "Cycle not closed", $"Cycle {cycle} is being closed; its report is ready when it is closed.");
        var rows = (await connection.QueryAsync<DeductionRow>(new CommandDefinition("""
            SELECT employee_id, withdrawals, advances, fees, carry_in, due, net_pay, recovered, carried FROM ewa_deductions
            WHERE tenant_id = @tenant AND employer_id = @employer AND cycle = @cycle ORDER BY employee_id LIMIT @limit
            """, new { tenant = s.TenantId, employer = id, cycle, limit = ReportRowsMax }, cancellationToken: ct)))
            .Select(r => new DeductionLine(r.employee_id, r.withdrawals, r.advances, r.fees, r.carry_in, r.due, r.net_pay, r.recovered, r.carried)).ToList();
        return WantsCsv(s.Http, format) ? Csv(rows, $"deductions-{id}-{cycle}.csv") : TypedResults.Ok(new Page<DeductionLine>(rows, null));
    }

    static bool TryRange(string? from, string? to, out DateOnly f, out DateOnly t, out IResult? problem)
    {
        problem = null;
        f = t = default;
        var errors = new Dictionary<string, string[]>();
        if (!Dates.TryParse(from, out f)) errors["from"] = ["Required: a date YYYY-MM-DD (the employer's local date, inclusive)."];
        if (!Dates.TryParse(to, out t)) errors["to"] = ["Required: a date YYYY-MM-DD (inclusive)."];
        if (errors.Count == 0 && (t < f || t.DayNumber - f.DayNumber > ReportDaysMax)) errors["to"] = [$"On or after from, at most {ReportDaysMax} days later."];
        if (errors.Count > 0) problem = Problems.Validation(errors);
        return problem is null;
    }

    static async Task<IResult> WithdrawalsReport(string id, [AsParameters] EwaServices s, string? from, string? to, string? format, CancellationToken ct)
    {
        var (employer, _, problem) = await s.EmployerAsync(id, EwaRoles.Managers, ct);
        if (problem is not null) return problem;
        if (!TryRange(from, to, out var f, out var t, out var bad)) return bad!;
        await using var connection = await s.Database.OpenReadAsync(ct);
        var rows = (await connection.QueryAsync<Withdrawals.WithdrawalRow>(new CommandDefinition($"""
            SELECT {Withdrawals.WithdrawalRow.Columns} FROM ewa_withdrawals
            WHERE tenant_id = @tenant AND employer_id = @employer AND created_at_us >= @fromUs AND created_at_us < @toUs
            ORDER BY created_at_us, id LIMIT @limit
            """, new { tenant = s.TenantId, employer = id, fromUs = DbTime.ToMicros(employer!.LocalMidnight(f)),
                toUs = DbTime.ToMicros(employer.LocalMidnight(t.AddDays(1))), limit = ReportRowsMax }, cancellationToken: ct)))
            .Select(w => new WithdrawalLine(w.id, w.employee_id, w.cycle, Dates.Format(employer.LocalDate(DbTime.FromMicros(w.created_at_us))), w.amount,
                w.fee, w.fee_payer, w.status, w.failure_code, DbTime.FromMicros(w.created_at_us))).ToList();
        return WantsCsv(s.Http, format) ? Csv(rows, $"withdrawals-{id}-{from}-{to}.csv") : TypedResults.Ok(new Page<WithdrawalLine>(rows, null));
    }

    /// <summary>Per cycle whose payday is in [from, to]: withdrawals, fees either side and utilisation (advances per
    /// earned, from the nightly accrual snapshots of salaried staff), in basis points.</summary>
    internal static async Task<IResult> Summary(string id, [AsParameters] EwaServices s, string? from, string? to, string? format, CancellationToken ct)
    {
        var (employer, _, problem) = await s.EmployerAsync(id, EwaRoles.Managers, ct);
        if (problem is not null) return problem;
        if (!TryRange(from, to, out var f, out var t, out var bad)) return bad!;
        var first = employer!.Calendar.CycleOf(f).Id;
        var last = employer.Calendar.CycleOf(t).Id;
        await using var connection = await s.Database.OpenReadAsync(ct);
        var rows = (await connection.QueryAsync<SummaryRow>(new CommandDefinition("""
            SELECT cycle, CAST(SUM(CASE WHEN withdrawals > 0 THEN 1 ELSE 0 END) AS bigint) AS employees_withdrawing,
                   CAST(SUM(withdrawals) AS bigint) AS withdrawals, CAST(SUM(advances) AS bigint) AS advances,
                   CAST(SUM(employee_fees) AS bigint) AS employee_fees, CAST(SUM(employer_fees) AS bigint) AS employer_fees,
                   CAST(COALESCE(SUM(earned_snapshot), 0) AS bigint) AS earned_snapshot
            FROM ewa_employee_cycles WHERE tenant_id = @tenant AND employer_id = @employer AND cycle >= @first AND cycle <= @last
            GROUP BY cycle ORDER BY cycle
            """, new { tenant = s.TenantId, employer = id, first, last }, cancellationToken: ct)))
            .Select(r => new SummaryLine(r.cycle, (int)r.employees_withdrawing, (int)r.withdrawals, r.advances, r.employee_fees, r.employer_fees, r.earned_snapshot,
                r.earned_snapshot > 0 ? (int)Int128.Min(int.MaxValue, (Int128)r.advances * 10_000 / r.earned_snapshot) : null)).ToList();
        return WantsCsv(s.Http, format) ? Csv(rows, $"summary-{id}-{from}-{to}.csv") : TypedResults.Ok(new Page<SummaryLine>(rows, null));
    }

#pragma warning disable IDE1006 // Dapper maps snake_case columns onto these names.
    sealed class CycleRow
    {
        public string cycle { get; set; } = "";
        public string start_date { get; set; } = "";
        public string status { get; set; } = "";
        public int employees { get; set; }
        public long advances { get; set; }
        public long fees { get; set; }
        public long due { get; set; }
        public long recovered { get; set; }
        public long carried { get; set; }
        public long? closed_at_us { get; set; }

        public CycleView View() => new(cycle, start_date, cycle, status, employees, advances, fees, due, recovered, carried,
            closed_at_us is { } c ? DbTime.FromMicros(c) : null);
    }

    sealed class DeductionRow
    {
        public string employee_id { get; set; } = "";
        public int withdrawals { get; set; }
        public long advances { get; set; }
        public long fees { get; set; }
        public long carry_in { get; set; }
        public long due { get; set; }
        public long net_pay { get; set; }
        public long recovered { get; set; }
        public long carried { get; set; }
    }

    sealed class SummaryRow
    {
        public string cycle { get; set; } = "";
        public long employees_withdrawing { get; set; }
        public long withdrawals { get; set; }
        public long advances { get; set; }
        public long employee_fees { get; set; }
        public long employer_fees { get; set; }
        public long earned_snapshot { get; set; }
    }
#pragma warning restore IDE1006
}
