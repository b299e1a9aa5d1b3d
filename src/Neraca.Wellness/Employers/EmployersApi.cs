using Dapper;
using Neraca.Hosting;
using Neraca.Ledger;
using Neraca.Storage;
using Neraca.Wellness.Access;

namespace Neraca.Wellness.Employers;

public sealed record PolicyRequest(int? MaxPercentBps = null, long? CycleCap = null, long? WithdrawalMin = null, long? WithdrawalMax = null,
    int? WithdrawalsPerCycleMax = null, long? FeeFlat = null, string? FeePayer = null, int? BlackoutDays = null, int? WaitingDays = null,
    string? Funding = null, int? AttendanceOverdueDays = null);

public sealed record EmployerRequest(string? Id = null, string? Name = null, string? TimeZone = null, int? PaydayDay = null,
    string[]? Holidays = null, PolicyRequest? Policy = null);

public sealed record FundingRequest(long? Amount = null, string? Description = null);

public sealed record FundingResponse(string TransferId, long Amount, string Account, long Balance);

public sealed record FundingBalances(string Funding, long FundingBalance, long? FundingAvailable, long Committed, long AdvancesOutstanding, long FeeIncome,
    long InTransit);

public sealed record AccessRequest(string? Principal = null, string? Role = null);

public sealed record AccessEntry(string Principal, string EmployerId, string Role, DateTimeOffset CreatedAt);

/// <summary><c>/v1/ewa/employers</c>: employers, their policy, funding and who may act for them.</summary>
internal static class EmployersApi
{
    public const int HolidaysMax = 400;
    public const int NameLengthMax = 200;

    public static readonly Policy Defaults = new(
        MaxPercentBps: 5_000, CycleCap: 1_000_000_000, WithdrawalMin: 5_000_000, WithdrawalMax: 500_000_000, WithdrawalsPerCycleMax: 4,
        FeeFlat: 1_500_000, FeePayer: FeePayers.Employee, BlackoutDays: 3, WaitingDays: 0, Funding: FundingModels.EmployerPrefunded,
        AttendanceOverdueDays: 2);

    public static void Map(RouteGroupBuilder read, RouteGroupBuilder write)
    {
        write.MapPost("/employers", Create);
        read.MapGet("/employers", List);
        read.MapGet("/employers/{id}", Get);
        write.MapPatch("/employers/{id}", Patch);
        write.MapPost("/employers/{id}/funding", Fund);
        read.MapGet("/employers/{id}/funding", GetFunding);
        write.MapPost("/employers/{id}/access", Grant);
        read.MapGet("/employers/{id}/access", ListAccess);
        write.MapDelete("/employers/{id}/access/{principal}", Revoke);
    }

    static async Task<IResult> Create(EmployerRequest body, [AsParameters] EwaServices s, EwaLedger setup, CancellationToken ct)
    {
        if (!await s.Access.IsOperatorAsync(ct))
            return Problems.Of(403, "ewa_role_required", "Role required", "Only the platform operator (a server key not bound to an employer) creates employers.");
        var now = s.Now;
        var errors = new Dictionary<string, string[]>();
        var id = body.Id ?? s.NewId("er_");
        if (!Ids.IsValid(id) || id.Length > Employer.IdLengthMax) errors["id"] = [$"1-{Employer.IdLengthMax} characters of A-Z a-z 0-9 . _ -."];
        else if (id.Contains(':', StringComparison.Ordinal)) errors["id"] = ["':' is not allowed in an employer id."];
        var employer = Build(s.TenantId, id, body, null, now, errors);
        if (EwaProblems.Validation(errors) is { } invalid) return invalid;

        var existing = await s.Employers.GetAsync(s.TenantId, id, ct);
        if (existing is not null)
            return Problems.Of(409, "employer_exists", "Employer exists", $"An employer '{id}' exists; change it with PATCH.");
        if (await setup.ProvisionAsync(s.TenantId, id, employer!.Policy.Funding, ct) is { } error) return EwaProblems.Ledger(error);

        await using var connection = await s.Database.OpenAsync(ct);
        await using var tx = await s.Dialect.BeginWriteAsync(connection, ct);
        try { await EmployerStore.InsertAsync(connection, tx, employer, ct); }
        catch (Exception e) when (Database.IsUniqueViolation(e))
        {
            return Problems.Of(409, "employer_exists", "Employer exists", $"An employer '{id}' exists; change it with PATCH.");
        }
        await tx.CommitAsync(ct);
        return TypedResults.Created($"/v1/ewa/employers/{id}", employer.View(now));
    }

    internal static async Task<IResult> List([AsParameters] EwaServices s, int? limit, string? after, CancellationToken ct)
    {
        if (!PageLimits.TryResolve(limit, out var n, out var problem)) return problem!;
        var visible = await s.Access.VisibleEmployersAsync(ct);
        var page = await s.Employers.ListAsync(s.TenantId, Cursor.Decode(after), n + 1, visible, ct);
        var data = page.Take(n).Select(e => e.View(s.Now)).ToList();
        return TypedResults.Ok(new Page<EmployerView>(data, page.Count > n ? Cursor.Encode(data[^1].Id) : null));
    }

    internal static async Task<IResult> Get(string id, [AsParameters] EwaServices s, CancellationToken ct)
    {
        var (employer, _, problem) = await s.EmployerAsync(id, EwaRoles.Managers, ct);
        return problem ?? TypedResults.Ok(employer!.View(s.Now));
    }

    internal static async Task<IResult> Patch(string id, EmployerRequest body, [AsParameters] EwaServices s, CancellationToken ct)
    {
        var (employer, _, problem) = await s.EmployerAsync(id, EwaRoles.Admins, ct);
        if (problem is not null) return problem;
        var errors = new Dictionary<string, string[]>();
        if (body.Id is not null && body.Id != id) errors["id"] = ["The id cannot change."];
        if (body.Policy?.Funding is { } f && f != employer!.Policy.Funding)
            errors["policy.funding"] = ["The funding model cannot change once the employer exists (its accounts hold money)."];
        var updated = Build(s.TenantId, id, body, employer, s.Now, errors);
        if (EwaProblems.Validation(errors) is { } invalid) return invalid;
        await using var connection = await s.Database.OpenAsync(ct);
        await using var tx = await s.Dialect.BeginWriteAsync(connection, ct);
        if (updated!.PaydayDay != employer!.PaydayDay || updated.HolidaysJson != employer.HolidaysJson)
        {
            // Withdrawals and carry-over are counted per cycle (keyed by its payday): a cycle that holds some must keep its
            // dates until it closes, or its advances would never be recovered and its caps would start again.
            await connection.ExecuteAsync(new CommandDefinition(
                $"SELECT id FROM ewa_employers WHERE tenant_id = @tenant AND id = @id{s.Dialect.ForUpdate}", new { tenant = s.TenantId, id }, tx,
                cancellationToken: ct));
            var open = await connection.QueryAsync<string>(new CommandDefinition("""
                SELECT DISTINCT ec.cycle FROM ewa_employee_cycles ec
                WHERE ec.tenant_id = @tenant AND ec.employer_id = @id AND (ec.withdrawals > 0 OR ec.carry_in > 0)
                  AND NOT EXISTS (SELECT 1 FROM ewa_cycles c
                                  WHERE c.tenant_id = ec.tenant_id AND c.employer_id = ec.employer_id AND c.cycle = ec.cycle AND c.status = 'closed')
                """, new { tenant = s.TenantId, id }, tx, cancellationToken: ct));
            foreach (var key in open.Order(StringComparer.Ordinal))
            {
                var payday = Dates.Parse(key);
                if (employer.Calendar.CycleOf(payday) != updated.Calendar.CycleOf(payday))
                    return Problems.Of(409, "cycle_in_progress", "Cycle in progress",
                        $"The cycle ending on payday {key} has withdrawals or carry-over and is not closed; this change would move its dates. " +
                        "Change the payday or holidays after that cycle closes, or choose ones that keep it.");
            }
        }
        await EmployerStore.UpdateAsync(connection, tx, updated, ct);
        await tx.CommitAsync(ct);
        return TypedResults.Ok(updated!.View(s.Now));
    }

    /// <summary>Creates (existing null) or updates an employer from the request, collecting every field's error.</summary>
    internal static Employer? Build(string tenantId, string id, EmployerRequest body, Employer? existing, DateTimeOffset now, Dictionary<string, string[]> errors)
    {
        var name = body.Name ?? existing?.Name;
        if (string.IsNullOrWhiteSpace(name) || name.Length > NameLengthMax) errors["name"] = [$"Required, 1-{NameLengthMax} characters."];
        var zone = body.TimeZone ?? existing?.TimeZoneId ?? "Asia/Jakarta";
        if (!TimeZoneInfo.TryFindSystemTimeZoneById(zone, out _)) errors["time_zone"] = ["An IANA time zone id, e.g. Asia/Jakarta, Asia/Makassar, Asia/Jayapura."];
        var payday = body.PaydayDay ?? existing?.PaydayDay;
        if (payday is not (>= 1 and <= 28)) errors["payday_day"] = ["Required, 1-28."];
        var holidays = new List<DateOnly>();
        if (body.Holidays is { } list)
        {
            if (list.Length > HolidaysMax) errors["holidays"] = [$"At most {HolidaysMax} dates."];
            else
                for (var i = 0; i < list.Length; i++)
                    if (Dates.TryParse(list[i], out var d)) holidays.Add(d);
                    else errors[$"holidays[{i}]"] = ["A date YYYY-MM-DD."];
        }
        else if (existing is not null) holidays.AddRange(existing.Holidays);

        var p = body.Policy ?? new PolicyRequest();
        var b = existing?.Policy ?? Defaults;
        var policy = new Policy(p.MaxPercentBps ?? b.MaxPercentBps, p.CycleCap ?? b.CycleCap, p.WithdrawalMin ?? b.WithdrawalMin,
            p.WithdrawalMax ?? b.WithdrawalMax, p.WithdrawalsPerCycleMax ?? b.WithdrawalsPerCycleMax, p.FeeFlat ?? b.FeeFlat,
            p.FeePayer ?? b.FeePayer, p.BlackoutDays ?? b.BlackoutDays, p.WaitingDays ?? b.WaitingDays, p.Funding ?? b.Funding,
            p.AttendanceOverdueDays ?? b.AttendanceOverdueDays);
        if (policy.MaxPercentBps is < 0 or > 10_000) errors["policy.max_percent_bps"] = ["0-10000 (basis points of earned)."];
        if (policy.CycleCap < 0) errors["policy.cycle_cap"] = ["Minor units, 0 or more."];
        if (policy.WithdrawalMin < 1) errors["policy.withdrawal_min"] = ["Minor units, 1 or more."];
        if (policy.WithdrawalMax < policy.WithdrawalMin) errors["policy.withdrawal_max"] = ["Minor units, at least withdrawal_min."];
        if (policy.WithdrawalsPerCycleMax is < 1 or > 100) errors["policy.withdrawals_per_cycle_max"] = ["1-100."];
        if (policy.FeeFlat < 0 || policy.FeeFlat > 1_000_000_000_000) errors["policy.fee_flat"] = ["Minor units, 0 or more."];
        if (policy.FeePayer is not (FeePayers.Employee or FeePayers.Employer)) errors["policy.fee_payer"] = ["employee or employer."];
        if (policy.BlackoutDays is < 0 or > 27) errors["policy.blackout_days"] = ["0-27 calendar days before payday."];
        if (policy.WaitingDays is < 0 or > 366) errors["policy.waiting_days"] = ["0-366 days after the start date."];
        if (policy.Funding is not (FundingModels.EmployerPrefunded or FundingModels.ProviderFunded))
            errors["policy.funding"] = ["employer_prefunded or provider_funded."];
        if (policy.AttendanceOverdueDays is < 1 or > 31) errors["policy.attendance_overdue_days"] = ["1-31 business days."];
        if (errors.Count > 0) return null;
        return new Employer
        {
            TenantId = tenantId, Id = id, Name = name!.Trim(), TimeZoneId = zone, PaydayDay = payday!.Value, Holidays = holidays.Distinct().ToList(),
            Policy = policy, NightlyDate = existing?.NightlyDate, AttendanceAt = existing?.AttendanceAt,
            CreatedAt = existing?.CreatedAt ?? now, UpdatedAt = now,
        };
    }

    // ---------------- funding ----------------

    /// <summary>Prefunded: a float top-up (bank → float). Provider funded: the employer's repayment of its receivable
    /// (bank → receivable). The transfer id comes from the Idempotency-Key, so a retry moves nothing twice.</summary>
    static async Task<IResult> Fund(string id, FundingRequest body, [AsParameters] EwaServices s, CancellationToken ct)
    {
        var (employer, _, problem) = await s.EmployerAsync(id, EwaRoles.Admins, ct);
        if (problem is not null) return problem;
        if (body.Amount is not (>= 1)) return Problems.Validation("amount", "Required: minor units, 1 or more.");
        if (body.Description is { Length: > 200 }) return Problems.Validation("description", "At most 200 characters.");
        var accounts = employer!.Accounts;
        var transferId = "ewa:" + s.NewId("fund_");
        var r = await s.Ledger.CreateTransferAsync(s.TenantId, new CreateTransferRequest(transferId, EwaAccounts.Bank, accounts.Funding, body.Amount,
            501, body.Description ?? (employer.Policy.Funding == FundingModels.EmployerPrefunded ? "Float top-up" : "Employer repayment")), ct);
        if (!r.Succeeded) return EwaProblems.Ledger(r.Error!);
        var balance = await s.Ledger.GetAccountAsync(s.TenantId, accounts.Funding, ct);
        var response = new FundingResponse(transferId, body.Amount.Value, accounts.Funding, balance.Value?.Balance.Posted ?? 0);
        return r.Outcome == LedgerOutcome.Created ? TypedResults.Created($"/v1/ewa/employers/{id}/funding", response) : TypedResults.Ok(response);
    }

    internal static async Task<IResult> GetFunding(string id, [AsParameters] EwaServices s, CancellationToken ct)
    {
        var (employer, _, problem) = await s.EmployerAsync(id, EwaRoles.Managers, ct);
        if (problem is not null) return problem;
        var a = employer!.Accounts;
        async Task<BalanceResponse?> B(string? account) => account is null ? null : (await s.Ledger.GetAccountAsync(s.TenantId, account, ct)).Value?.Balance;
        var funding = await B(a.Funding);
        var prefunded = employer.Policy.Funding == FundingModels.EmployerPrefunded;
        return TypedResults.Ok(new FundingBalances(employer.Policy.Funding, funding?.Posted ?? 0, prefunded ? funding?.Available ?? 0 : null,
            (await B(a.Committed))?.Posted ?? 0, (await B(a.Advances))?.Posted ?? 0, (await B(a.Fees))?.Posted ?? 0, (await B(a.Disbursement))?.Posted ?? 0));
    }

    // ---------------- access ----------------

    static async Task<IResult> Grant(string id, AccessRequest body, [AsParameters] EwaServices s, CancellationToken ct)
    {
        var (employer, _, problem) = await s.EmployerAsync(id, EwaRoles.OperatorOnly, ct);
        if (problem is not null) return problem;
        var errors = new Dictionary<string, string[]>();
        if (body.Principal is not { Length: > 4 and <= 220 } p || !(p.StartsWith("key:", StringComparison.Ordinal) || p.StartsWith("sub:", StringComparison.Ordinal)))
            errors["principal"] = ["'key:<api key id>' or 'sub:<end-user subject>'."];
        if (!EmployerRoles.IsValid(body.Role)) errors["role"] = ["admin or staff."];
        if (EwaProblems.Validation(errors) is { } invalid) return invalid;
        await using var connection = await s.Database.OpenAsync(ct);
        await using var tx = await s.Dialect.BeginWriteAsync(connection, ct);
        var changed = await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE ewa_employer_access SET role = @role WHERE tenant_id = @tenant AND principal = @principal AND employer_id = @employer
            """, new { tenant = s.TenantId, principal = body.Principal, employer = employer!.Id, role = body.Role }, tx, cancellationToken: ct));
        if (changed == 0)
            await connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO ewa_employer_access (tenant_id, principal, employer_id, role, created_at_us) VALUES (@tenant, @principal, @employer, @role, @now)
                """, new { tenant = s.TenantId, principal = body.Principal, employer = employer.Id, role = body.Role, now = DbTime.ToMicros(s.Now) },
                tx, cancellationToken: ct));
        await tx.CommitAsync(ct);
        return TypedResults.Ok(new AccessEntry(body.Principal!, employer.Id, body.Role!, s.Now));
    }

    static async Task<IResult> ListAccess(string id, [AsParameters] EwaServices s, CancellationToken ct)
    {
        var (employer, _, problem) = await s.EmployerAsync(id, EwaRoles.Admins, ct);
        if (problem is not null) return problem;
        await using var connection = await s.Database.OpenAsync(ct);
        var rows = await connection.QueryAsync<(string, string, string, long)>(new CommandDefinition("""
            SELECT principal, employer_id, role, created_at_us FROM ewa_employer_access WHERE tenant_id = @tenant AND employer_id = @employer
            ORDER BY principal LIMIT 1000
            """, new { tenant = s.TenantId, employer = employer!.Id }, cancellationToken: ct));
        return TypedResults.Ok(new Page<AccessEntry>([.. rows.Select(r => new AccessEntry(r.Item1, r.Item2, r.Item3, DbTime.FromMicros(r.Item4)))], null));
    }

    static async Task<IResult> Revoke(string id, string principal, [AsParameters] EwaServices s, CancellationToken ct)
    {
        var (employer, _, problem) = await s.EmployerAsync(id, EwaRoles.OperatorOnly, ct);
        if (problem is not null) return problem;
        await using var connection = await s.Database.OpenAsync(ct);
        var n = await connection.ExecuteAsync(new CommandDefinition(
            "DELETE FROM ewa_employer_access WHERE tenant_id = @tenant AND principal = @principal AND employer_id = @employer",
            new { tenant = s.TenantId, principal, employer = employer!.Id }, cancellationToken: ct));
        return n == 0 ? Problems.NotFound("access_not_found", $"'{principal}' has no access to '{id}'.") : TypedResults.NoContent();
    }
}
