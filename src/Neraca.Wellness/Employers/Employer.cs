using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using Dapper;
using Neraca.Storage;
using Neraca.Wellness.Cycles;

namespace Neraca.Wellness.Employers;

/// <summary>Who pays the flat fee (stored; part of the API).</summary>
public static class FeePayers
{
    public const string Employee = "employee";
    public const string Employer = "employer";
}

/// <summary>Where the advances come from (stored; part of the API).</summary>
public static class FundingModels
{
    /// <summary>The employer keeps a float with the provider; advances are covered from it.</summary>
    public const string EmployerPrefunded = "employer_prefunded";
    /// <summary>The provider advances its own money and the employer owes it (a receivable).</summary>
    public const string ProviderFunded = "provider_funded";
}

public sealed record Policy(
    int MaxPercentBps, long CycleCap, long WithdrawalMin, long WithdrawalMax, int WithdrawalsPerCycleMax, long FeeFlat,
    string FeePayer, int BlackoutDays, int WaitingDays, string Funding, int AttendanceOverdueDays);

/// <summary>The ledger accounts of one employer (docs/ewa.md, "Money map").</summary>
public sealed record EmployerAccounts(string Funding, string? Committed, string Advances, string Disbursement, string Fees);

public sealed record EmployerView(string Id, string Name, string TimeZone, int PaydayDay, IReadOnlyList<string> Holidays, Policy Policy,
    EmployerAccounts Accounts, PayCycle CurrentCycle, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

/// <summary>One employer as stored, with what its rows mean: calendar, time zone, today's local date.</summary>
public sealed class Employer
{
    public required string TenantId { get; init; }
    public required string Id { get; init; }
    public required string Name { get; init; }
    public required string TimeZoneId { get; init; }
    public required int PaydayDay { get; init; }
    public required IReadOnlyList<DateOnly> Holidays { get; init; }
    public required Policy Policy { get; init; }
    public string? NightlyDate { get; init; }
    public DateTimeOffset? AttendanceAt { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; init; }

    public const int IdLengthMax = 40;

    public TimeZoneInfo Zone => TimeZoneInfo.FindSystemTimeZoneById(TimeZoneId);

    public PayCalendar Calendar => new(PaydayDay, Holidays);

    /// <summary>The holidays as stored: sorted dates in a JSON array (also how a withdrawal sees that they changed).</summary>
    internal string HolidaysJson => JsonSerializer.Serialize(Holidays.Order().Select(Dates.Format).ToArray());

    /// <summary>The employer's local date at <paramref name="now"/>.</summary>
    public DateOnly LocalDate(DateTimeOffset now) => DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(now, Zone).DateTime);

    /// <summary>The instant local midnight starts <paramref name="day"/> in the employer's zone.</summary>
    public DateTimeOffset LocalMidnight(DateOnly day)
    {
        var local = day.ToDateTime(TimeOnly.MinValue, DateTimeKind.Unspecified);
        return new DateTimeOffset(local, Zone.GetUtcOffset(local));
    }

    public EmployerAccounts Accounts => EwaAccounts.For(Id, Policy.Funding);

    public EmployerView View(DateTimeOffset now) => new(Id, Name, TimeZoneId, PaydayDay,
        [.. Holidays.Select(Dates.Format)], Policy, Accounts, Calendar.CycleOf(LocalDate(now)), CreatedAt, UpdatedAt);
}

public static class Dates
{
    public static string Format(DateOnly d) => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    public static bool TryParse(string? s, out DateOnly d) =>
        DateOnly.TryParseExact(s, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out d);

    public static DateOnly Parse(string s) => DateOnly.ParseExact(s, "yyyy-MM-dd", CultureInfo.InvariantCulture);
}

/// <summary>The account ids of the money map. Derived from the employer id, so provisioning is idempotent.</summary>
public static class EwaAccounts
{
    public const string LedgerCode = "ewa-idr";
    /// <summary>The provider's bank account (debit-normal): float top-ups and employer repayments come in through it.</summary>
    public const string Bank = "ewa:bank";

    public static EmployerAccounts For(string employerId, string funding) => funding == FundingModels.EmployerPrefunded
        ? new($"ewa:{employerId}:float", $"ewa:{employerId}:committed", $"ewa:{employerId}:advances", $"ewa:{employerId}:disbursement", $"ewa:{employerId}:fees")
        : new($"ewa:{employerId}:receivable", null, $"ewa:{employerId}:advances", $"ewa:{employerId}:disbursement", $"ewa:{employerId}:fees");
}

/// <summary>Reads and writes <c>ewa_employers</c>.</summary>
public sealed class EmployerStore(Database database)
{
    const string Columns = """
        tenant_id, id, name, time_zone, payday_day, holidays, max_percent_bps, cycle_cap, withdrawal_min, withdrawal_max,
        withdrawals_per_cycle_max, fee_flat, fee_payer, blackout_days, waiting_days, funding, attendance_overdue_days,
        nightly_date, attendance_at_us, created_at_us, updated_at_us
        """;

    public async Task<Employer?> GetAsync(string tenantId, string id, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return await GetAsync(connection, null, tenantId, id, ct);
    }

    public static async Task<Employer?> GetAsync(DbConnection connection, DbTransaction? tx, string tenantId, string id, CancellationToken ct)
    {
        var row = await connection.QuerySingleOrDefaultAsync<EmployerRow>(new CommandDefinition(
            $"SELECT {Columns} FROM ewa_employers WHERE tenant_id = @tenantId AND id = @id", new { tenantId, id }, tx, cancellationToken: ct));
        return row?.ToEmployer();
    }

    /// <summary>Employers in id order after <paramref name="after"/>; <paramref name="only"/> restricts to a set.</summary>
    public async Task<IReadOnlyList<Employer>> ListAsync(string tenantId, string? after, int limit, IReadOnlyCollection<string>? only, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return await ListAsync(connection, null, tenantId, after, limit, only, ct);
    }

    public static async Task<IReadOnlyList<Employer>> ListAsync(DbConnection connection, DbTransaction? tx, string tenantId, string? after, int limit,
        IReadOnlyCollection<string>? only, CancellationToken ct)
    {
        // Employer-scoped callers see a handful of employers: filter in memory rather than dialect-specific lists.
        var rows = await connection.QueryAsync<EmployerRow>(new CommandDefinition(
            $"SELECT {Columns} FROM ewa_employers WHERE tenant_id = @tenantId AND id > @after ORDER BY id LIMIT @limit",
            new { tenantId, after = after ?? "", limit = only is null ? limit : 100_000 }, tx, cancellationToken: ct));
        var list = rows.Select(r => r.ToEmployer());
        if (only is not null) list = list.Where(e => only.Contains(e.Id)).Take(limit);
        return [.. list];
    }

    public static Task InsertAsync(DbConnection connection, DbTransaction tx, Employer e, CancellationToken ct) =>
        connection.ExecuteAsync(new CommandDefinition($"""
            INSERT INTO ewa_employers ({Columns})
            VALUES (@tenant_id, @id, @name, @time_zone, @payday_day, @holidays, @max_percent_bps, @cycle_cap, @withdrawal_min, @withdrawal_max,
                    @withdrawals_per_cycle_max, @fee_flat, @fee_payer, @blackout_days, @waiting_days, @funding, @attendance_overdue_days,
                    @nightly_date, @attendance_at_us, @created_at_us, @updated_at_us)
            """, EmployerRow.From(e), tx, cancellationToken: ct));

    public static Task<int> UpdateAsync(DbConnection connection, DbTransaction tx, Employer e, CancellationToken ct) =>
        connection.ExecuteAsync(new CommandDefinition("""
            UPDATE ewa_employers SET name = @name, time_zone = @time_zone, payday_day = @payday_day, holidays = @holidays,
                max_percent_bps = @max_percent_bps, cycle_cap = @cycle_cap, withdrawal_min = @withdrawal_min, withdrawal_max = @withdrawal_max,
                withdrawals_per_cycle_max = @withdrawals_per_cycle_max, fee_flat = @fee_flat, fee_payer = @fee_payer,
                blackout_days = @blackout_days, waiting_days = @waiting_days, attendance_overdue_days = @attendance_overdue_days,
                updated_at_us = @updated_at_us
            WHERE tenant_id = @tenant_id AND id = @id
            """, EmployerRow.From(e), tx, cancellationToken: ct));

#pragma warning disable IDE1006 // Dapper maps snake_case columns onto these names.
    sealed class EmployerRow
    {
        public string tenant_id { get; set; } = "";
        public string id { get; set; } = "";
        public string name { get; set; } = "";
        public string time_zone { get; set; } = "";
        public int payday_day { get; set; }
        public string holidays { get; set; } = "[]";
        public int max_percent_bps { get; set; }
        public long cycle_cap { get; set; }
        public long withdrawal_min { get; set; }
        public long withdrawal_max { get; set; }
        public int withdrawals_per_cycle_max { get; set; }
        public long fee_flat { get; set; }
        public string fee_payer { get; set; } = "";
        public int blackout_days { get; set; }
        public int waiting_days { get; set; }
        public string funding { get; set; } = "";
        public int attendance_overdue_days { get; set; }
        public string? nightly_date { get; set; }
        public long? attendance_at_us { get; set; }
        public long created_at_us { get; set; }
        public long updated_at_us { get; set; }

        public Employer ToEmployer() => new()
        {
            TenantId = tenant_id, Id = id, Name = name, TimeZoneId = time_zone, PaydayDay = payday_day,
            Holidays = [.. (JsonSerializer.Deserialize<string[]>(holidays) ?? []).Select(Dates.Parse)],
            Policy = new Policy(max_percent_bps, cycle_cap, withdrawal_min, withdrawal_max, withdrawals_per_cycle_max, fee_flat, fee_payer,
                blackout_days, waiting_days, funding, attendance_overdue_days),
            NightlyDate = nightly_date,
            AttendanceAt = attendance_at_us is { } a ? DbTime.FromMicros(a) : null,
            CreatedAt = DbTime.FromMicros(created_at_us), UpdatedAt = DbTime.FromMicros(updated_at_us),
        };

        public static EmployerRow From(Employer e) => new()
        {
            tenant_id = e.TenantId, id = e.Id, name = e.Name, time_zone = e.TimeZoneId, payday_day = e.PaydayDay,
            holidays = e.HolidaysJson,
            max_percent_bps = e.Policy.MaxPercentBps, cycle_cap = e.Policy.CycleCap, withdrawal_min = e.Policy.WithdrawalMin,
            withdrawal_max = e.Policy.WithdrawalMax, withdrawals_per_cycle_max = e.Policy.WithdrawalsPerCycleMax, fee_flat = e.Policy.FeeFlat,
            fee_payer = e.Policy.FeePayer, blackout_days = e.Policy.BlackoutDays, waiting_days = e.Policy.WaitingDays, funding = e.Policy.Funding,
            attendance_overdue_days = e.Policy.AttendanceOverdueDays, nightly_date = e.NightlyDate,
            attendance_at_us = e.AttendanceAt is { } a ? DbTime.ToMicros(a) : null,
            created_at_us = DbTime.ToMicros(e.CreatedAt), updated_at_us = DbTime.ToMicros(e.UpdatedAt),
        };
    }
#pragma warning restore IDE1006
}
