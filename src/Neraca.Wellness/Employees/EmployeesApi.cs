using System.Globalization;
using System.Text.Json;
using Dapper;
using Microsoft.Extensions.Options;
using Neraca.Hosting;
using Neraca.Jobs;
using Neraca.Ledger;
using Neraca.Security;
using Neraca.Storage;
using Neraca.Wellness.Access;
using Neraca.Wellness.Cycles;
using Neraca.Wellness.Employers;

namespace Neraca.Wellness.Employees;

public sealed record EmployeePatch(string? Status = null, string? Name = null, string? Email = null, string? Phone = null, string? PayType = null,
    long? PayRate = null, string? StartDate = null, string? BankCode = null, string? BankAccount = null);

public sealed record AttendanceRecord(string? EmployeeId = null, string? Date = null, decimal? Hours = null);

public sealed record AttendanceRejection(int Index, string? EmployeeId, string? Date, string Reason);

public sealed record AttendanceResult(int Accepted, int Rejected, IReadOnlyList<AttendanceRejection> Rejections);

/// <summary>Roster import, employees and attendance under <c>/v1/ewa/employers/{id}</c>.</summary>
internal static class EmployeesApi
{
    public static void Map(RouteGroupBuilder read, RouteGroupBuilder write, WellnessOptions options)
    {
        write.MapPost("/employers/{id}/employees/import", Import)
            .WithMetadata(new Microsoft.AspNetCore.Mvc.RequestSizeLimitAttribute(options.ImportBytesMax));
        read.MapGet("/employers/{id}/imports/{importId}", GetImport);
        read.MapGet("/employers/{id}/employees", List);
        read.MapGet("/employers/{id}/employees/{employeeId}", Get);
        write.MapPatch("/employers/{id}/employees/{employeeId}", Patch);
        write.MapPost("/employers/{id}/attendance", Attendance)
            .WithMetadata(new Microsoft.AspNetCore.Mvc.RequestSizeLimitAttribute(8 * 1024 * 1024));
    }

    static async Task<string?> ReadTextBodyAsync(HttpRequest request, string[] mediaTypes, CancellationToken ct)
    {
        var type = request.ContentType?.Split(';')[0].Trim().ToLowerInvariant();
        if (type == "multipart/form-data")
        {
            var form = await request.ReadFormAsync(ct);
            if (form.Files.GetFile("file") is not { } file) return null;
            using var fr = new StreamReader(file.OpenReadStream());
            return await fr.ReadToEndAsync(ct);
        }
        if (type is null || !mediaTypes.Contains(type)) return null;
        using var reader = new StreamReader(request.Body);
        return await reader.ReadToEndAsync(ct);
    }

    static IResult UnsupportedMedia(string expected) =>
        Problems.Of(415, "unsupported_media_type", "Unsupported media type", $"Send {expected}, or multipart/form-data with the field 'file'.");

    internal static async Task<IResult> Import(string id, [AsParameters] EwaServices s, JobStore jobs, FieldEncryption encryption, IOptions<WellnessOptions> options,
        CancellationToken ct)
    {
        var (employer, _, problem) = await s.EmployerAsync(id, EwaRoles.Managers, ct);
        if (problem is not null) return problem;
        var text = await ReadTextBodyAsync(s.Http.Request, ["text/csv", "application/csv", "text/plain"], ct);
        if (text is null) return UnsupportedMedia("text/csv");
        var file = RosterCsv.Parse(text, options.Value.ImportRowsMax);
        if (file.Problem is not null) return Problems.Of(400, "roster_file_invalid", "Roster file invalid", file.Problem + " Nothing was applied.");

        var importId = s.NewId("imp_");
        var ring = await encryption.GetAsync(ct);
        var now = s.Now;
        await using var connection = await s.Database.OpenAsync(ct);
        await using var tx = await s.Dialect.BeginWriteAsync(connection, ct);
        var exists = await connection.ExecuteScalarAsync<int>(new CommandDefinition(
            "SELECT count(*) FROM ewa_imports WHERE tenant_id = @tenant AND id = @importId", new { tenant = s.TenantId, importId }, tx, cancellationToken: ct));
        if (exists == 0)
        {
            await connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO ewa_imports (tenant_id, id, employer_id, status, content_enc, total_rows, ignored_columns, created_at_us)
                VALUES (@tenant, @importId, @employer, 'queued', @content, @total, @ignored, @now)
                """, new { tenant = s.TenantId, importId, employer = employer!.Id, total = file.Rows.Count,
                    content = ring.Encrypt(text, KeyRing.Context(RosterImportJob.Table, "content_enc", s.TenantId, importId)),
                    ignored = JsonSerializer.Serialize(file.IgnoredColumns), now = DbTime.ToMicros(now) }, tx, cancellationToken: ct));
            var job = await jobs.EnqueueAsync(connection, tx, new JobRequest(s.TenantId, RosterImportJob.TypeName,
                JsonSerializer.Serialize(new Dictionary<string, string> { ["import_id"] = importId }), Key: importId), ct);
            await connection.ExecuteAsync(new CommandDefinition("UPDATE ewa_imports SET job_id = @jobId WHERE tenant_id = @tenant AND id = @importId",
                new { jobId = job.JobId, tenant = s.TenantId, importId }, tx, cancellationToken: ct));
        }
        await tx.CommitAsync(ct);
        var view = await RosterImportJob.GetAsync(s.Database, s.TenantId, id, importId, null, 100, ct);
        return TypedResults.Accepted($"/v1/ewa/employers/{id}/imports/{importId}", view);
    }

    internal static async Task<IResult> GetImport(string id, string importId, [AsParameters] EwaServices s, int? limit, string? after, CancellationToken ct)
    {
        var (_, _, problem) = await s.EmployerAsync(id, EwaRoles.Managers, ct);
        if (problem is not null) return problem;
        if (!PageLimits.TryResolve(limit, out var n, out var bad)) return bad!;
        var afterLine = Cursor.DecodeLong(after);
        var view = await RosterImportJob.GetAsync(s.Database, s.TenantId, id, importId, (int)Math.Min(afterLine, int.MaxValue), n, ct);
        return view is null ? Problems.NotFound("import_not_found", $"No import '{importId}'.") : TypedResults.Ok(view);
    }

    internal static async Task<IResult> List(string id, [AsParameters] EwaServices s, EmployeeStore store, string? status, int? limit, string? after, CancellationToken ct)
    {
        var (_, _, problem) = await s.EmployerAsync(id, EwaRoles.Managers, ct);
        if (problem is not null) return problem;
        if (!PageLimits.TryResolve(limit, out var n, out var bad)) return bad!;
        if (status is not null && !EmployeeStatuses.IsValid(status)) return Problems.Validation("status", "active, paused or terminated.");
        var rows = await store.ListAsync(s.TenantId, id, status, Cursor.Decode(after), n + 1, ct);
        var data = rows.Take(n).Select(e => EmployeeView.Of(e, masked: true)).ToList();
        return TypedResults.Ok(new Page<EmployeeView>(data, rows.Count > n ? Cursor.Encode(data[^1].EmployeeId) : null));
    }

    internal static async Task<IResult> Get(string id, string employeeId, [AsParameters] EwaServices s, EmployeeStore store, CancellationToken ct)
    {
        var (_, _, problem) = await s.EmployerAsync(id, EwaRoles.Anyone, ct, employeeId);
        if (problem is not null) return problem;
        var e = await store.GetAsync(s.TenantId, id, employeeId, ct);
        return e is null ? EwaProblems.EmployeeNotFound(employeeId) : TypedResults.Ok(EmployeeView.Of(e, masked: false));
    }

    /// <summary>Changes an employee's fields or status. Pausing and terminating are any manager's; a paused employee
    /// is made active again only by an employer admin; a terminated employee stays terminated.</summary>
    static async Task<IResult> Patch(string id, string employeeId, EmployeePatch body, [AsParameters] EwaServices s, EmployeeStore store,
        FieldEncryption encryption, CancellationToken ct)
    {
        var (employer, role, problem) = await s.EmployerAsync(id, EwaRoles.Managers, ct);
        if (problem is not null) return problem;
        var errors = new Dictionary<string, string[]>();
        if (body.Status is not null && !EmployeeStatuses.IsValid(body.Status)) errors["status"] = ["active, paused or terminated."];
        if (body.PayType is not null && !PayTypes.IsValid(body.PayType)) errors["pay_type"] = ["monthly, daily or hourly."];
        if (body.PayRate is { } rate && (rate < 1 || rate > RosterCsv.PayRateMax)) errors["pay_rate"] = ["Minor units, 1 or more."];
        DateOnly? start = null;
        if (body.StartDate is not null) { if (Dates.TryParse(body.StartDate, out var d)) start = d; else errors["start_date"] = ["A date YYYY-MM-DD."]; }
        if (body.Name is { } name && (name.Trim().Length == 0 || name.Length > EmployersApi.NameLengthMax)) errors["name"] = ["1-200 characters."];
        if (body.BankAccount is { } account && (account.Length is < 5 or > 34 || !account.All(char.IsAsciiDigit))) errors["bank_account"] = ["5-34 digits."];
        if (body.BankCode is { } code && (code.Length is < 2 or > 20 || !code.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))) errors["bank_code"] = ["2-20 letters or digits."];
        if (body.Email is { Length: > 254 }) errors["email"] = ["At most 254 characters."];
        if (body.Phone is { Length: > 21 }) errors["phone"] = ["At most 21 characters."];
        if (EwaProblems.Validation(errors) is { } invalid) return invalid;

        var ring = await encryption.GetAsync(ct);
        var nowUs = DbTime.ToMicros(s.Now);
        await using var connection = await s.Database.OpenAsync(ct);
        await using var tx = await s.Dialect.BeginWriteAsync(connection, ct);
        var e = await store.GetAsync(connection, tx, s.TenantId, id, employeeId, ct);
        if (e is null) return EwaProblems.EmployeeNotFound(employeeId);
        if (body.Status is { } to && to != e.Status)
        {
            if (e.Status == EmployeeStatuses.Terminated)
                return Problems.Of(409, "employee_terminated", "Employee terminated", "A terminated employee cannot change status; import them again under a new employee_id.");
            if (e.Status == EmployeeStatuses.Paused && to == EmployeeStatuses.Active && role != EmployerRoles.Admin)
                return Problems.Of(403, "employer_admin_required", "Employer admin required", "Only an employer admin may reactivate a paused employee.");
            await EmployeeStore.SetStatusAsync(connection, tx, s.TenantId, id, employeeId, e.Status, to, nowUs, ct);
        }
        var f = e.Fields;
        var fields = f with
        {
            Name = body.Name?.Trim() ?? f.Name, Email = body.Email ?? f.Email, Phone = body.Phone ?? f.Phone, PayType = body.PayType ?? f.PayType,
            PayRate = body.PayRate ?? f.PayRate, StartDate = start ?? f.StartDate, BankCode = body.BankCode?.ToUpperInvariant() ?? f.BankCode,
            BankAccount = body.BankAccount ?? f.BankAccount,
        };
        if (fields != f) await EmployeeStore.UpdateAsync(connection, tx, ring, s.TenantId, employer!.Id, employeeId, fields, nowUs, ct);
        await tx.CommitAsync(ct);
        return TypedResults.Ok(EmployeeView.Of((await store.GetAsync(s.TenantId, id, employeeId, ct))!, masked: false));
    }

    // ---------------- attendance ----------------

    /// <summary>Attendance for daily and hourly staff, as a JSON array <c>[{employee_id, date, hours}]</c> or CSV with
    /// those columns. A later record for the same employee and day replaces the earlier one; a bad record is rejected
    /// alone (index from 0 in JSON, file line in CSV).</summary>
    static async Task<IResult> Attendance(string id, [AsParameters] EwaServices s, IOptions<WellnessOptions> options,
        IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json, CancellationToken ct)
    {
        var (employer, _, problem) = await s.EmployerAsync(id, EwaRoles.Managers, ct);
        if (problem is not null) return problem;
        var type = s.Http.Request.ContentType?.Split(';')[0].Trim().ToLowerInvariant();
        List<(int Index, AttendanceRecord Record)> records;
        if (type == "application/json")
        {
            AttendanceRecord[]? parsed;
            try { parsed = await JsonSerializer.DeserializeAsync<AttendanceRecord[]>(s.Http.Request.Body, json.Value.SerializerOptions, ct); }
            catch (JsonException e) { return Problems.Validation("$", "A JSON array of {employee_id, date, hours}: " + e.Message); }
            if (parsed is null) return Problems.Validation("$", "A JSON array of {employee_id, date, hours}.");
            records = [.. parsed.Select((r, i) => (i, r ?? new AttendanceRecord()))];
        }
        else
        {
            var text = await ReadTextBodyAsync(s.Http.Request, ["text/csv", "application/csv"], ct);
            if (text is null) return UnsupportedMedia("application/json or text/csv");
            var csv = AttendanceCsv.Parse(text);
            if (csv.Problem is not null) return Problems.Of(400, "attendance_file_invalid", "Attendance file invalid", csv.Problem + " Nothing was applied.");
            records = [.. csv.Records];
        }
        if (records.Count > options.Value.AttendanceRecordsMax)
            return Problems.Validation("$", $"At most {options.Value.AttendanceRecordsMax} records per upload.");

        var now = s.Now;
        var today = employer!.LocalDate(now);
        var calendar = employer.Calendar;
        var rejections = new List<AttendanceRejection>();
        var accepted = 0;
        await using var connection = await s.Database.OpenAsync(ct);
        await using var tx = await s.Dialect.BeginWriteAsync(connection, ct);
        var employees = (await connection.QueryAsync<(string, string, string)>(new CommandDefinition(
                $"SELECT employee_id, pay_type, start_date FROM ewa_employees WHERE tenant_id = @tenant AND employer_id = @employer AND {s.Dialect.InIdList("employee_id", "ids")}",
                new { tenant = s.TenantId, employer = id, ids = s.Dialect.IdListValue([.. records.Select(r => r.Record.EmployeeId ?? "").Distinct()]) },
                tx, cancellationToken: ct)))
            .ToDictionary(r => r.Item1, r => (PayType: r.Item2, Start: Dates.Parse(r.Item3)), StringComparer.Ordinal);
        var closed = (await connection.QueryAsync<string>(new CommandDefinition(
            "SELECT cycle FROM ewa_cycles WHERE tenant_id = @tenant AND employer_id = @employer", new { tenant = s.TenantId, employer = id }, tx,
            cancellationToken: ct))).ToHashSet(StringComparer.Ordinal);
        foreach (var (index, r) in records)
        {
            string? reason = null;
            if (r.EmployeeId is null || !employees.TryGetValue(r.EmployeeId, out var e)) reason = "unknown employee_id";
            else if (e.PayType == PayTypes.Monthly) reason = "a monthly employee accrues by business days; attendance is for daily and hourly staff";
            else if (!Dates.TryParse(r.Date, out var date)) reason = "date: YYYY-MM-DD";
            else if (date > today) reason = $"date is after today ({Dates.Format(today)} in {employer.TimeZoneId})";
            else if (date < e.Start) reason = "date is before the employee's start date";
            else if (closed.Contains(calendar.CycleOf(date).Id)) reason = "the date's cycle is closed; a closed cycle never changes";
            else if (r.Hours is not { } hours || hours < 0 || hours > 24 || decimal.Round(hours, 2) != hours) reason = "hours: 0-24 with at most two decimals";
            else
            {
                await connection.ExecuteAsync(new CommandDefinition("""
                    INSERT INTO ewa_attendance (tenant_id, employer_id, employee_id, work_date, centihours, updated_at_us)
                    VALUES (@tenant, @employer, @employee, @date, @centihours, @now)
                    ON CONFLICT (tenant_id, employer_id, employee_id, work_date) DO UPDATE SET centihours = excluded.centihours, updated_at_us = excluded.updated_at_us
                    """, new { tenant = s.TenantId, employer = id, employee = r.EmployeeId, date = Dates.Format(date), centihours = (int)(hours * 100),
                        now = DbTime.ToMicros(now) }, tx, cancellationToken: ct));
                accepted++;
                continue;
            }
            rejections.Add(new AttendanceRejection(index, r.EmployeeId, r.Date, reason));
        }
        await connection.ExecuteAsync(new CommandDefinition("UPDATE ewa_employers SET attendance_at_us = @now WHERE tenant_id = @tenant AND id = @employer",
            new { now = DbTime.ToMicros(now), tenant = s.TenantId, employer = id }, tx, cancellationToken: ct));
        await tx.CommitAsync(ct);
        return TypedResults.Ok(new AttendanceResult(accepted, rejections.Count, rejections));
    }
}

/// <summary>Attendance as CSV: <c>employee_id,date,hours</c> (header = line 1).</summary>
internal static class AttendanceCsv
{
    public static (List<(int, AttendanceRecord)> Records, string? Problem) Parse(string text)
    {
        var list = new List<(int, AttendanceRecord)>();
        try
        {
            using var csv = CsvHelper.CsvReader.FromText(text, RosterCsv.Options);
            if (csv.Headers is not { Count: > 0 } header) return ([], "The file is empty.");
            var names = header.Select(h => h.Trim().ToLowerInvariant()).ToList();
            string[] required = ["employee_id", "date", "hours"];
            var missing = required.Where(c => !names.Contains(c)).ToArray();
            if (missing.Length > 0) return ([], $"Required column(s) missing: {string.Join(", ", missing)}.");
            int id = names.IndexOf("employee_id"), date = names.IndexOf("date"), hoursAt = names.IndexOf("hours");
            while (csv.Read())
            {
                decimal? hours = decimal.TryParse(csv.GetString(hoursAt), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var h) ? h : null;
                list.Add((checked((int)csv.LineNumber), new AttendanceRecord(csv.GetString(id), csv.GetString(date), hours)));
            }
            return (list, null);
        }
        catch (CsvHelper.CsvFormatException e) { return ([], $"Not a readable CSV file (line {e.LineNumber}): {e.Message}"); }
    }
}
