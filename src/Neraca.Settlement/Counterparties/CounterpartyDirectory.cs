using System.Data.Common;
using Dapper;
using Neraca.Hosting;
using Neraca.Ledger;
using Neraca.Storage;

namespace Neraca.Settlement.Counterparties;

/// <summary>The tenant's counterparties: validation (accounts checked through <see cref="ILedger"/>), storage, lists.</summary>
internal sealed class CounterpartyDirectory(Database database, ILedger ledger, TimeProvider clock)
{
    const string Columns = "id, name, type, settlement_account, cash_account, suspense_account, cutoff_local_time, time_zone, closed_weekdays, csv_mapping, matching_rules, closed_through, created_at_us, updated_at_us";

    public async Task<SettlementResult<CounterpartyResponse>> CreateAsync(string tenantId, CounterpartyRequest body, CancellationToken ct)
    {
        if (await ValidateAsync(tenantId, body, ct) is { } error) return error;
        var now = DbTime.ToMicros(clock.GetUtcNow());
        var wanted = ToRecord(body, now, now, null);
        await using var connection = await database.OpenAsync(ct);
        try
        {
            await connection.ExecuteAsync(new CommandDefinition($"""
                INSERT INTO settlement_counterparties (tenant_id, {Columns})
                VALUES (@tenantId, @Id, @Name, @Type, @SettlementAccount, @CashAccount, @SuspenseAccount, @cutoff, @TimeZone, @closed, @csv, @rules, NULL, @CreatedAtUs, @UpdatedAtUs)
                """, Args(tenantId, wanted), cancellationToken: ct));
            return SettlementResult<CounterpartyResponse>.New(ToResponse(wanted));
        }
        catch (DbException e) when (Database.IsUniqueViolation(e))
        {
            var existing = await FindAsync(connection, tenantId, wanted.Id, ct) ?? throw new InvalidOperationException("counterparty vanished", e);
            return SameFields(existing, wanted) ? SettlementResult<CounterpartyResponse>.Again(ToResponse(existing))
                : SettlementError.Conflict(SettlementCodes.CounterpartyExists, $"Counterparty '{wanted.Id}' exists with different fields.");
        }
    }

    /// <summary>Replaces a counterparty's settings (its id and creation time stay). Runs already made keep the accounts
    /// and windows they were made with.</summary>
    public async Task<SettlementResult<CounterpartyResponse>> UpdateAsync(string tenantId, string id, CounterpartyRequest body, CancellationToken ct)
    {
        if (body.Id is not null && body.Id != id) return SettlementError.Invalid("id", "Must be the id of the path (or omitted).");
        body = body with { Id = id };
        if (await ValidateAsync(tenantId, body, ct) is { } error) return error;
        await using var connection = await database.OpenAsync(ct);
        if (await FindAsync(connection, tenantId, id, ct) is not { } existing) return NotFound(id);
        var wanted = ToRecord(body, existing.CreatedAtUs, DbTime.ToMicros(clock.GetUtcNow()), existing.ClosedThrough);
        await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE settlement_counterparties SET name = @Name, type = @Type, settlement_account = @SettlementAccount, cash_account = @CashAccount,
                suspense_account = @SuspenseAccount, cutoff_local_time = @cutoff, time_zone = @TimeZone, closed_weekdays = @closed, csv_mapping = @csv,
                matching_rules = @rules, updated_at_us = @UpdatedAtUs
            WHERE tenant_id = @tenantId AND id = @Id
            """, Args(tenantId, wanted), cancellationToken: ct));
        return SettlementResult<CounterpartyResponse>.Ok(ToResponse(wanted));
    }

    public async Task<SettlementResult<CounterpartyResponse>> GetResponseAsync(string tenantId, string id, CancellationToken ct) =>
        await GetAsync(tenantId, id, ct) is { } c ? SettlementResult<CounterpartyResponse>.Ok(ToResponse(c)) : NotFound(id);

    public async Task<Counterparty?> GetAsync(string tenantId, string id, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return await FindAsync(connection, tenantId, id, ct);
    }

    public async Task<SettlementResult<Page<CounterpartyResponse>>> ListAsync(string tenantId, int? limit, string? after, CancellationToken ct)
    {
        if (Paging.Limit(limit) is not { } take) return Paging.LimitProblem();
        var afterId = Cursor.Decode(after);
        await using var connection = await database.OpenReadAsync(ct);
        var rows = (await connection.QueryAsync<Row>(new CommandDefinition($"""
            SELECT {Columns} FROM settlement_counterparties
            WHERE tenant_id = @tenantId AND (@afterId IS NULL OR id > @afterId) ORDER BY id LIMIT @n
            """, new { tenantId, afterId, n = take + 1 }, cancellationToken: ct))).Select(r => r.ToRecord()).ToList();
        var more = rows.Count > take;
        if (more) rows.RemoveAt(rows.Count - 1);
        return SettlementResult<Page<CounterpartyResponse>>.Ok(new(rows.Select(ToResponse).ToList(), more ? Cursor.Encode(rows[^1].Id) : null));
    }

    /// <summary>Every counterparty of the tenant (a run over all of them, the close-of-business sweep), by id.</summary>
    public async Task<List<Counterparty>> AllAsync(string tenantId, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return (await connection.QueryAsync<Row>(new CommandDefinition($"""
            SELECT {Columns} FROM settlement_counterparties
            WHERE tenant_id = @tenantId ORDER BY id
            """, new { tenantId }, cancellationToken: ct))).Select(r => r.ToRecord()).ToList();
    }

    /// <summary>Moves the close-of-business mark of a counterparty forward in the caller's transaction, if nobody moved it
    /// further meanwhile. Returns whether it moved.</summary>
    public static async Task<bool> AdvanceClosedThroughAsync(DbConnection connection, DbTransaction tx, string tenantId, string id, string? from, string to,
        CancellationToken ct) =>
        await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE settlement_counterparties SET closed_through = @to
            WHERE tenant_id = @tenantId AND id = @id AND (closed_through = @from OR (closed_through IS NULL AND @from IS NULL))
            """, new { tenantId, id, from, to }, tx, cancellationToken: ct)) == 1;

    static async Task<Counterparty?> FindAsync(DbConnection connection, string tenantId, string id, CancellationToken ct) =>
        (await connection.QuerySingleOrDefaultAsync<Row>(new CommandDefinition($"""
            SELECT {Columns} FROM settlement_counterparties
            WHERE tenant_id = @tenantId AND id = @id
            """, new { tenantId, id }, cancellationToken: ct)))?.ToRecord();

    static SettlementError NotFound(string id) => SettlementError.NotFound(SettlementCodes.CounterpartyNotFound, $"No counterparty '{id}'.");

    async Task<SettlementError?> ValidateAsync(string tenantId, CounterpartyRequest b, CancellationToken ct)
    {
        var v = new FieldErrors();
        if (!Ids.IsValid(b.Id) || b.Id!.Length > Counterparty.IdLengthMax)
            v.Add("id", $"Required: 1-{Counterparty.IdLengthMax} characters of A-Z a-z 0-9 . _ : -");
        if (string.IsNullOrWhiteSpace(b.Name) || b.Name.Length > Counterparty.NameLengthMax) v.Add("name", $"Required: 1-{Counterparty.NameLengthMax} characters.");
        if (b.Type is null || !Counterparty.Types.Contains(b.Type)) v.Add("type", "Required: bank, ewallet or switch.");
        foreach (var (field, value, required) in new[] { ("settlement_account", b.SettlementAccount, true), ("cash_account", b.CashAccount, true), ("suspense_account", b.SuspenseAccount, false) })
            if ((required || value is not null) && !Ids.IsValid(value)) v.Add(field, required ? "Required: a ledger account id." : "A ledger account id.");
        if (b.SettlementAccount is not null && b.SettlementAccount == b.CashAccount) v.Add("cash_account", "Must differ from settlement_account.");
        if (Counterparty.ParseCutoff(b.CutoffLocalTime) is null) v.Add("cutoff_local_time", "Required: HH:mm from 00:01 to 24:00.");
        if (b.TimeZone is null || b.TimeZone.Length > 64 || !TimeZoneInfo.TryFindSystemTimeZoneById(b.TimeZone, out _))
            v.Add("time_zone", "Required: an IANA time zone such as Asia/Jakarta.");
        var closed = b.ClosedWeekdays ?? [];
        if (closed.Any(d => BusinessCalendar.ParseWeekday(d) is null)) v.Add("closed_weekdays", "Lower-case English weekday names (saturday, sunday...).");
        else if (closed.Distinct(StringComparer.Ordinal).Count() >= 7) v.Add("closed_weekdays", "At least one weekday must be open.");
        ValidateCsv(v, b.CsvMapping);
        ValidateRules(v, b.MatchingRules);
        if (!v.Ok) return v.ToError();

        string? ledgerId = null;
        foreach (var (field, account) in new[] { ("settlement_account", b.SettlementAccount), ("cash_account", b.CashAccount), ("suspense_account", b.SuspenseAccount) })
        {
            if (account is null) continue;
            var found = await ledger.GetAccountAsync(tenantId, account, ct);
            if (!found.Succeeded)
                return SettlementError.Unprocessable(SettlementCodes.CounterpartyAccountInvalid, $"The ledger has no account '{account}'.",
                    new Dictionary<string, object?> { ["field"] = field });
            if (ledgerId is not null && found.Value!.Ledger != ledgerId)
                return SettlementError.Unprocessable(SettlementCodes.CounterpartyAccountInvalid, "All accounts of a counterparty must belong to one ledger.",
                    new Dictionary<string, object?> { ["field"] = field });
            ledgerId = found.Value!.Ledger;
        }
        return null;
    }

    static void ValidateCsv(FieldErrors v, CsvMapping? m)
    {
        if (m is null) return;
        if (m.Delimiter is not null && (m.Delimiter.Length != 1 || m.Delimiter is "\"" or "\r" or "\n")) v.Add("csv_mapping.delimiter", "One character (default ',').");
        if (m.DecimalSeparator is not (null or "." or ",")) v.Add("csv_mapping.decimal_separator", "'.' (default) or ','.");
        if (m.DecimalSeparator is not null && m.DecimalSeparator == m.Delimiter) v.Add("csv_mapping.decimal_separator", "Must differ from the delimiter.");
        if (m.DateFormat is not null && (m.DateFormat.Length > 32 || !IsDateFormat(m.DateFormat))) v.Add("csv_mapping.date_format", "A .NET date format such as yyyy-MM-dd or dd/MM/yyyy.");
        if (m.Currency is not null && (m.Currency.Length is < 2 or > 12 || !m.Currency.All(c => char.IsAsciiLetterUpper(c) || char.IsAsciiDigit(c))))
            v.Add("csv_mapping.currency", "An ISO 4217 code such as IDR.");
        var c = m.Columns;
        if (c is null) { v.Add("csv_mapping.columns", "Required."); return; }
        foreach (var (name, value) in new[] { ("value_date", c.ValueDate), ("booking_date", c.BookingDate), ("amount", c.Amount), ("debit", c.Debit), ("credit", c.Credit),
                     ("balance", c.Balance), ("reference", c.Reference), ("bank_reference", c.BankReference), ("description", c.Description) })
            if (value is not null && (value.Length is 0 or > 100)) v.Add("csv_mapping.columns." + name, "A header name of 1-100 characters.");
        if (c.ValueDate is null) v.Add("csv_mapping.columns.value_date", "Required.");
        if (c.Balance is null) v.Add("csv_mapping.columns.balance", "Required: the running balance checks the file's integrity.");
        if ((c.Amount is null) == (c.Debit is null || c.Credit is null) || (c.Amount is not null && (c.Debit ?? c.Credit) is not null))
            v.Add("csv_mapping.columns.amount", "Either amount (signed) or both debit and credit.");
    }

    static bool IsDateFormat(string format)
    {
        if (!format.Contains('y', StringComparison.Ordinal) || !format.Contains('M', StringComparison.Ordinal) || !format.Contains('d', StringComparison.Ordinal)) return false;
        try
        {
            var sample = new DateTime(2026, 12, 31, 0, 0, 0, DateTimeKind.Unspecified).ToString(format, System.Globalization.CultureInfo.InvariantCulture);
            return DateTime.TryParseExact(sample, format, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.None, out _);
        }
        catch (FormatException) { return false; }
    }

    static void ValidateRules(FieldErrors v, MatchingRule[]? rules)
    {
        if (rules is null) return;
        if (rules.Length is 0 or > 10) v.Add("matching_rules", "1 to 10 rules (omit for the defaults).");
        for (var i = 0; i < rules.Length; i++)
        {
            var r = rules[i];
            if (r is null) { v.Add($"matching_rules[{i}]", "Required."); continue; }
            if (r.Type is not (MatchingRule.ExactReference or MatchingRule.AmountDate or MatchingRule.ManyToOne))
                v.Add($"matching_rules[{i}].type", "exact_reference, amount_date or many_to_one.");
            if (r.WindowDays is < 0 or > 31) v.Add($"matching_rules[{i}].window_days", "From 0 to 31.");
            if (r.Tolerance is < 0 or > 1_000_000_000) v.Add($"matching_rules[{i}].tolerance", "From 0 to 1,000,000,000 minor units.");
            if (r.MinPrefixLength is < 1 or > 64) v.Add($"matching_rules[{i}].min_prefix_length", "From 1 to 64.");
        }
    }

    static Counterparty ToRecord(CounterpartyRequest b, long createdAtUs, long updatedAtUs, string? closedThrough) => new(
        b.Id!, b.Name!, b.Type!, b.SettlementAccount!, b.CashAccount!, b.SuspenseAccount, Counterparty.ParseCutoff(b.CutoffLocalTime)!.Value, b.TimeZone!,
        (b.ClosedWeekdays ?? []).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray(), b.CsvMapping,
        b.MatchingRules?.Select(r => r with { WindowDays = r.WindowDays ?? (r.Type == MatchingRule.AmountDate ? 1 : 0), Tolerance = r.Tolerance ?? 0,
            MinPrefixLength = r.Type == MatchingRule.ManyToOne ? r.MinPrefixLength ?? 4 : null }).ToArray(),
        closedThrough, createdAtUs, updatedAtUs);

    static bool SameFields(Counterparty a, Counterparty b) =>
        a.Name == b.Name && a.Type == b.Type && a.SettlementAccount == b.SettlementAccount && a.CashAccount == b.CashAccount
        && a.SuspenseAccount == b.SuspenseAccount && a.CutoffMinutes == b.CutoffMinutes && a.TimeZone == b.TimeZone
        && a.ClosedWeekdays.SequenceEqual(b.ClosedWeekdays) && SettlementJson.Serialize(a.CsvMapping) == SettlementJson.Serialize(b.CsvMapping)
        && SettlementJson.Serialize(a.MatchingRules) == SettlementJson.Serialize(b.MatchingRules);

    public static CounterpartyResponse ToResponse(Counterparty c) => new(
        c.Id, c.Name, c.Type, c.SettlementAccount, c.CashAccount, c.SuspenseAccount, Counterparty.FormatCutoff(c.CutoffMinutes), c.TimeZone,
        c.ClosedWeekdays, c.CsvMapping, c.Rules, DbTime.FromMicros(c.CreatedAtUs), DbTime.FromMicros(c.UpdatedAtUs));

    static object Args(string tenantId, Counterparty c) => new
    {
        tenantId, c.Id, c.Name, c.Type, c.SettlementAccount, c.CashAccount, c.SuspenseAccount, cutoff = Counterparty.FormatCutoff(c.CutoffMinutes),
        c.TimeZone, closed = SettlementJson.Serialize(c.ClosedWeekdays), csv = c.CsvMapping is null ? null : SettlementJson.Serialize(c.CsvMapping),
        rules = c.MatchingRules is null ? null : SettlementJson.Serialize(c.MatchingRules), c.CreatedAtUs, c.UpdatedAtUs,
    };

    sealed class Row
    {
        public string id { get; set; } = "";
        public string name { get; set; } = "";
        public string type { get; set; } = "";
        public string settlement_account { get; set; } = "";
        public string cash_account { get; set; } = "";
        public string? suspense_account { get; set; }
        public string cutoff_local_time { get; set; } = "";
        public string time_zone { get; set; } = "";
        public string closed_weekdays { get; set; } = "[]";
        public string? csv_mapping { get; set; }
        public string? matching_rules { get; set; }
        public string? closed_through { get; set; }
        public long created_at_us { get; set; }
        public long updated_at_us { get; set; }

        public Counterparty ToRecord() => new(id, name, type, settlement_account, cash_account, suspense_account, Counterparty.ParseCutoff(cutoff_local_time)!.Value,
            time_zone, SettlementJson.Deserialize<string[]>(closed_weekdays) ?? [], SettlementJson.Deserialize<CsvMapping>(csv_mapping),
            SettlementJson.Deserialize<MatchingRule[]>(matching_rules), closed_through, created_at_us, updated_at_us);
    }
}
