using System.Globalization;
using System.Numerics;
using CsvHelper;
using Dapper;
using Neraca.Storage;

namespace Neraca.SplitBill;

// CSV in Splitwise's layout, both ways: Date,Description,Category,Cost,Currency,<one column per member>, where a
// member's column is what the row does to their balance (positive: paid more than their share; negative: owes).
public sealed partial class SplitBills
{
    public const int ImportRowsMax = 5000;
    static readonly string[] FixedColumns = ["Date", "Description", "Category", "Cost", "Currency"];

    /// <summary>The group as CSV: each live expense (category <c>General</c>) and completed settlement (category
    /// <c>Payment</c>), amounts in the group currency's major units, then a blank line and the <c>Total balance</c> row.
    /// The file imports back into an empty group as the same balances.</summary>
    public async Task<SplitResult<string>> ExportCsvAsync(SplitCaller caller, string groupId, CancellationToken ct) =>
        await ReadAsync(async c =>
        {
            if (await LoadGroupAsync(c, null, caller, groupId, ct) is not { } g) return GroupNotFound(groupId);
            var members = g.Members.Where(m => m.status != Removed).ToList();
            var columns = new Dictionary<string, int>(StringComparer.Ordinal);
            for (var i = 0; i < members.Count; i++) columns[members[i].id] = i;
            var expenses = (await c.QueryAsync<(string Id, string Description, string Date, long Amount)>(new CommandDefinition("""
                SELECT id, description, expense_date, group_amount FROM split_expenses WHERE tenant_id = @tenant AND group_id = @groupId AND deleted_at_us IS NULL
                ORDER BY expense_date, created_at_us, id
                """, new { tenant = caller.TenantId, groupId }, cancellationToken: ct))).ToList();
            var shares = (await c.QueryAsync<ShareRow>(new CommandDefinition(
                $"SELECT s.expense_id, s.member_id, s.paid, s.owed {LiveShares}", new { tenantId = caller.TenantId, groupId }, cancellationToken: ct)))
                .ToLookup(s => s.expense_id);
            var settlements = (await c.QueryAsync<(string From, string To, long Amount, long At)>(new CommandDefinition(
                "SELECT from_member, to_member, amount, completed_at_us FROM split_settlements WHERE tenant_id = @tenant AND group_id = @groupId AND status = 2 ORDER BY completed_at_us, id",
                new { tenant = caller.TenantId, groupId }, cancellationToken: ct))).ToList();

            using var text = new StringWriter(CultureInfo.InvariantCulture);
            using (var csv = CsvWriter.Create(text, null, leaveOpen: true))
            {
                foreach (var f in FixedColumns) csv.WriteField(f);
                foreach (var m in members) csv.WriteField(members.Count(x => x.name == m.name) > 1 ? $"{m.name} ({m.id})" : m.name);
                csv.EndRecord();
                var totals = new long[members.Count];
                void Row(string date, string description, string category, long cost, long[] nets)
                {
                    csv.WriteField(date);
                    csv.WriteField(description);
                    csv.WriteField(category);
                    csv.WriteField(Currencies.FormatMajor(cost, g.Scale));
                    csv.WriteField(g.Group.currency);
                    foreach (var n in nets) csv.WriteField(Currencies.FormatMajor(n, g.Scale));
                    csv.EndRecord();
                }
                foreach (var e in expenses)
                {
                    var nets = new long[members.Count];
                    foreach (var s in shares[e.Id])
                        if (columns.TryGetValue(s.member_id, out var i)) nets[i] = s.paid - s.owed;
                    for (var i = 0; i < nets.Length; i++) totals[i] = checked(totals[i] + nets[i]);
                    Row(e.Date, e.Description, "General", e.Amount, nets);
                }
                foreach (var s in settlements)
                {
                    var nets = new long[members.Count];
                    if (columns.TryGetValue(s.From, out var f)) nets[f] = s.Amount;
                    if (columns.TryGetValue(s.To, out var t)) nets[t] = -s.Amount;
                    for (var i = 0; i < nets.Length; i++) totals[i] = checked(totals[i] + nets[i]);
                    Row(DateText(DateOnly.FromDateTime(DbTime.FromMicros(s.At).UtcDateTime)), $"{g.Member(s.From)?.name} paid {g.Member(s.To)?.name}", "Payment", s.Amount, nets);
                }
                Row(DateText(Today), "Total balance", "", 0, totals);
            }
            return SplitResult<string>.Ok(text.ToString());
        }, ct);

    /// <summary>Imports a Splitwise CSV export into the group. Members are matched by name (new names become members
    /// unless <paramref name="createMembers"/> is false); bad rows are reported one by one with their line number
    /// (header = line 1) and the rest imported; a file that is not such a CSV changes nothing. Rows are identified by
    /// their content, so importing the same file again adds nothing.</summary>
    public async Task<SplitResult<ImportResponse>> ImportCsvAsync(SplitCaller caller, string groupId, string text, bool createMembers, CancellationToken ct)
    {
        var rows = new List<(int Line, string[] Fields)>();
        string[] header;
        try
        {
            // Broken quoting is an error, not silently "recovered" into other amounts.
            var config = new CsvReaderOptions { TrackLineNumbers = true, MalformedData = CsvMalformedDataHandling.Throw, SkipEmptyLines = true };
            using var csv = CsvReader.FromText(text, config);
            header = csv.Headers.Select(x => x.Trim()).ToArray();
            if (header.Length == 0) return InvalidCsv("The file is empty.");
            while (csv.Read())
            {
                if (rows.Count >= ImportRowsMax) return InvalidCsv($"At most {ImportRowsMax} rows per import.");
                var fields = new string[csv.FieldCount];
                for (var i = 0; i < fields.Length; i++) fields[i] = csv.GetString(i);
                rows.Add((checked((int)csv.LineNumber), fields));
            }
        }
        catch (CsvFormatException e)
        {
            return InvalidCsv("The file is not valid CSV: " + e.Message.Split('\n')[0]);
        }
        if (header.Length < FixedColumns.Length + 1 || !FixedColumns.Select((f, i) => string.Equals(header[i], f, StringComparison.OrdinalIgnoreCase)).All(x => x))
            return InvalidCsv($"The header must start with {string.Join(',', FixedColumns)} and name at least one member.");
        var names = header[FixedColumns.Length..];
        if (names.Any(string.IsNullOrWhiteSpace) || names.Distinct(StringComparer.OrdinalIgnoreCase).Count() != names.Length)
            return InvalidCsv("Member columns must have distinct, non-empty names.");

        return await WriteAsync(async (c, tx) =>
        {
            if (await LoadGroupAsync(c, tx, caller, groupId, ct) is not { } g) return GroupNotFound(groupId);
            var created = new List<string>();
            var memberIds = new string[names.Length];
            for (var i = 0; i < names.Length; i++)
            {
                var match = g.Members.Where(m => m.status != Removed && string.Equals(m.name.Trim(), names[i], StringComparison.OrdinalIgnoreCase)).ToList();
                if (match.Count > 1) return InvalidCsv($"Several members are named '{names[i]}'; rename them before importing.");
                if (match.Count == 1) { memberIds[i] = match[0].id; continue; }
                if (!createMembers || names[i].Length > NameLengthMax)
                    return SplitError.Unprocessable("member_not_found", $"No member is named '{names[i]}' (column {FixedColumns.Length + i + 1}).");
                var row = new MemberRow
                {
                    group_id = groupId, id = "m_" + Ids.NewUlid(), name = names[i], status = Active,
                    position = g.Members.Count == 0 ? 0 : g.Members.Max(m => m.position) + 1, created_at_us = NowUs,
                };
                var added = await AddMemberRowAsync(c, tx, caller, g, row, ct);
                if (added.Error is not null) return added.Error;
                memberIds[i] = row.id;
                created.Add(row.id);
            }

            int expenses = 0, settlements = 0, skipped = 0;
            var errors = new List<ImportLineError>();
            var seen = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var (line, fields) in rows)
            {
                string Field(int i) => i < fields.Length ? fields[i].Trim() : "";
                if (string.Equals(Field(1), "Total balance", StringComparison.OrdinalIgnoreCase)) continue;
                var occurrence = seen[string.Join('\u001f', fields)] = seen.GetValueOrDefault(string.Join('\u001f', fields)) + 1;
                if (!DateOnly.TryParseExact(Field(0), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date))
                { errors.Add(new ImportLineError(line, "Date must be yyyy-mm-dd.")); continue; }
                if (Field(1).Length is 0 or > SplitModes.DescriptionLengthMax)
                { errors.Add(new ImportLineError(line, $"Description must have 1-{SplitModes.DescriptionLengthMax} characters.")); continue; }
                if (Field(4) != g.Group.currency)
                { errors.Add(new ImportLineError(line, $"Currency {Field(4)} is not the group's ({g.Group.currency}): convert the row first.")); continue; }
                if (!Currencies.TryParseMajor(Field(3), g.Scale, out var cost) || cost < 1 || cost > SplitModes.AmountMax)
                { errors.Add(new ImportLineError(line, $"Cost must be a positive amount with at most {g.Scale} decimals.")); continue; }
                var nets = new Dictionary<string, long>(StringComparer.Ordinal);
                var bad = false;
                for (var i = 0; i < names.Length; i++)
                {
                    var v = Field(FixedColumns.Length + i);
                    if (v.Length == 0) continue;
                    if (!Currencies.TryParseMajor(v, g.Scale, out var n) || Math.Abs(n) > SplitModes.AmountMax)
                    { errors.Add(new ImportLineError(line, $"'{names[i]}': not an amount with at most {g.Scale} decimals.")); bad = true; break; }
                    nets[memberIds[i]] = n;
                }
                if (bad) continue;
                if (nets.Values.Sum() != 0) { errors.Add(new ImportLineError(line, $"The member columns sum to {Currencies.FormatMajor(nets.Values.Sum(), g.Scale)}, not 0.")); continue; }
                var id = DerivedId("imp_", groupId, string.Join('\u001f', fields), occurrence.ToString(CultureInfo.InvariantCulture));

                if (string.Equals(Field(2), "Payment", StringComparison.OrdinalIgnoreCase))
                {
                    // The member who paid has the positive column.
                    var pairs = Splitting.PairwiseWithin(nets);
                    for (var k = 0; k < pairs.Count; k++)
                    {
                        var sid = k == 0 ? id : DerivedId("imp_", id, k.ToString(CultureInfo.InvariantCulture));
                        var exists = await LoadSettlementAsync(c, tx, caller.TenantId, groupId, sid, ct) is not null;
                        if (exists) { skipped++; continue; }
                        var now = NowUs;
                        await c.ExecuteAsync(new CommandDefinition($"""
                            INSERT INTO split_settlements (tenant_id, {SettlementColumns})
                            VALUES (@tenant, @groupId, @sid, @from, @to, @amount, 1, 2, NULL, NULL, NULL, @fingerprint, @actor, NULL, @now, @now)
                            """, new { tenant = caller.TenantId, groupId, sid, from = pairs[k].To, to = pairs[k].From, amount = pairs[k].Amount, fingerprint = sid,
                            actor = caller.Actor, now }, tx, cancellationToken: ct));
                        await ActivityAsync(c, tx, caller, groupId, "settlement", sid, "imported", null, new { line, from = pairs[k].To, to = pairs[k].From, amount = pairs[k].Amount }, ct);
                        settlements++;
                    }
                    continue;
                }

                if (ImportedSplit(nets, cost) is not { } split) { errors.Add(new ImportLineError(line, "Cost is less than what the members are owed.")); continue; }
                var input = new ExpenseInput(id, Field(1), cost, g.Group.currency, null, date,
                    split.Paid.Where(p => p.Value > 0).Select(p => new PayerInput(p.Key, p.Value)).ToArray(),
                    new SplitInput("exact", Shares: split.Owed.Select(o => new ShareInput(o.Key, o.Value)).ToArray()));
                var result = await InsertExpenseAsync(c, tx, caller, g, input, null, ct);
                if (result.Error is { } error) errors.Add(new ImportLineError(line, error.Detail ?? error.Code));
                else if (result.Replayed) skipped++;
                else expenses++;
            }
            return SplitResult<ImportResponse>.Ok(new ImportResponse(expenses, settlements, skipped, created, errors));
        }, ct);
    }

    static SplitError InvalidCsv(string detail) => new(400, "invalid_csv", detail);

    /// <summary>Paid and owed that give each member the row's net: those who owe pay nothing and owe their debt; what
    /// the cost leaves over is owed by those who are owed money (they paid it), in equal parts.</summary>
    internal static (SortedDictionary<string, long> Paid, SortedDictionary<string, long> Owed)? ImportedSplit(IReadOnlyDictionary<string, long> nets, long cost)
    {
        var positive = nets.Where(n => n.Value > 0).Sum(n => n.Value);
        if (cost < positive) return null;
        var paid = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var owed = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var (m, n) in nets.Where(n => n.Value < 0)) { owed[m] = -n; paid[m] = 0; }
        var sharers = nets.Where(n => n.Value > 0).Select(n => n.Key).OrderBy(k => k, StringComparer.Ordinal).ToArray();
        if (sharers.Length == 0) sharers = nets.Keys.OrderBy(k => k, StringComparer.Ordinal).ToArray();
        if (sharers.Length == 0) return null;
        var rest = Splitting.Allocate(cost - positive, sharers.Select(_ => BigInteger.One).ToArray(), sharers, string.Join(',', sharers));
        for (var i = 0; i < sharers.Length; i++)
        {
            owed[sharers[i]] = rest[i];
            paid[sharers[i]] = rest[i] + Math.Max(0, nets.GetValueOrDefault(sharers[i]));
        }
        return (paid, owed);
    }
}
