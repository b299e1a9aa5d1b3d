using System.Data.Common;
using Dapper;
using Neraca.Banking.Accounts;
using Neraca.Hosting;
using Neraca.Ledger;
using Neraca.Storage;

namespace Neraca.Banking.History;

/// <summary>One line of an account's history: the ledger entry (direction, positive amount, running balance) and what
/// banking knows of it (reference, description, counterparty). Entries banking did not make (a transfer posted straight
/// through the ledger API) have no reference, description or counterparty.</summary>
public sealed record HistoryItem(string TransferId, string Direction, long Amount, long BalanceAfter, string? Reference, string? Description,
    string? Counterparty, string? Kind, DateTimeOffset PostedAt, DateTimeOffset EffectiveAt);

/// <summary><c>From</c>/<c>To</c>: instants with an offset (<c>2026-11-01T00:00:00+07:00</c>), or dates (<c>2026-11-01</c>): a
/// date is a whole day in the tenant's time zone, <c>to</c> inclusive, as statement periods are.</summary>
public sealed record HistoryQuery(string? From = null, string? To = null, string? Q = null, long? MinAmount = null, long? MaxAmount = null,
    int? Limit = null, string? After = null);

/// <summary>The query with its bounds read as instants: [<c>From</c>, <c>To</c>) by posting time.</summary>
internal sealed record HistoryWindow(DateTimeOffset? From, DateTimeOffset? To);

/// <summary>What a transfer means to each banking account (<c>banking_transactions</c>), and the account history that joins
/// it to the ledger's entries: a page is one ledger read plus one query of this table, never one query per line.</summary>
public sealed class Transactions(Database database, SqlDialect dialect, ILedger ledger, BankAccounts accounts, Settings.TenantSettings settings)
{
    public const int QLengthMax = 200;

    public static Task RecordAsync(DbConnection connection, DbTransaction tx, string tenantId, string accountId, string transferId, string kind, string direction,
        long amount, string? counterparty, string? reference, string? description, long postedAtUs, CancellationToken ct) =>
        connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO banking_transactions (tenant_id, account_id, transfer_id, kind, direction, amount, counterparty, reference, description, posted_at_us)
            VALUES (@tenantId, @accountId, @transferId, @kind, @direction, @amount, @counterparty, @reference, @description, @postedAtUs)
            ON CONFLICT (tenant_id, account_id, transfer_id) DO NOTHING
            """, new { tenantId, accountId, transferId, kind, direction, amount, counterparty, reference, description, postedAtUs }, tx, cancellationToken: ct));

    /// <summary>The account's history, oldest first. Without <c>q</c> or an amount filter it walks the ledger's entries
    /// (every entry, in journal order); with one it walks the matching rows of <c>banking_transactions</c> (full-text index)
    /// and reads their entries in one ledger call. Cursors belong to the query that returned them.</summary>
    public async Task<BankResult<Page<HistoryItem>>> ListAsync(BankCaller caller, string accountId, HistoryQuery query, CancellationToken ct)
    {
        if (query.Limit is < 1 or > 1000) return BankError.Invalid("limit", "Must be from 1 to 1000.");
        if (query.Q is { } q && (q.Trim().Length is 0 or > QLengthMax || q.Any(char.IsControl))) return BankError.Invalid("q", $"1-{QLengthMax} characters.");
        if (query.MinAmount is < 0) return BankError.Invalid("min_amount", "Must be 0 or more.");
        if (query.MaxAmount is < 0) return BankError.Invalid("max_amount", "Must be 0 or more.");
        var zone = query.From is not null || query.To is not null ? await settings.ZoneAsync(caller.TenantId, ct) : TimeZoneInfo.Utc;
        if (!TryBound(query.From, zone, endOfDay: false, out var from)) return BankError.Invalid("from", "An instant (2026-11-01T00:00:00+07:00) or a date (2026-11-01).");
        if (!TryBound(query.To, zone, endOfDay: true, out var to)) return BankError.Invalid("to", "An instant (2026-11-30T23:59:59+07:00) or a date (2026-11-30).");
        if (from is { } f && to is { } t && t < f) return BankError.Invalid("to", "Must not be before 'from'.");
        var window = new HistoryWindow(from, to);
        var reached = await accounts.ReachAsync(caller, accountId, ct);
        if (!reached.Succeeded) return reached.Error!;
        var view = caller.Subject is { } s ? ledger.For(s) : ledger;
        var take = query.Limit ?? 100;
        var after = Cursor.Decode(query.After);
        var searching = query.Q is not null || query.MinAmount is not null || query.MaxAmount is not null;
        if (after is not null && !after.StartsWith(searching ? "s:" : "e:", StringComparison.Ordinal)) throw new InvalidCursorException("after");
        return searching
            ? await SearchAsync(caller, view, accountId, query, window, take, after?[2..], ct)
            : await WalkAsync(caller, view, accountId, window, take, after?[2..], ct);
    }

    /// <summary>A date is midnight in the tenant's zone (the end bound: the next midnight, so the day is included);
    /// an instant is itself. Empty: no bound.</summary>
    static bool TryBound(string? text, TimeZoneInfo zone, bool endOfDay, out DateTimeOffset? bound)
    {
        bound = null;
        if (string.IsNullOrEmpty(text)) return true;
        if (DateOnly.TryParseExact(text, "yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.None, out var day))
        {
            if (endOfDay && day == DateOnly.MaxValue) return false;
            bound = Statements.Statements.Midnight(endOfDay ? day.AddDays(1) : day, zone);
            return true;
        }
        if (!DateTimeOffset.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var at))
            return false;
        bound = at;
        return true;
    }

    async Task<BankResult<Page<HistoryItem>>> WalkAsync(BankCaller caller, ILedger view, string accountId, HistoryWindow window, int take, string? after,
        CancellationToken ct)
    {
        var entries = await view.ListEntriesAsync(caller.TenantId, accountId, new EntryQuery(window.From, window.To, take, after), ct);
        if (!entries.Succeeded) return BankError.FromLedger(entries.Error!);
        var page = entries.Value!;
        var details = await DetailsAsync(caller.TenantId, accountId, page.Data.Select(e => e.TransferId).Distinct(StringComparer.Ordinal).ToArray(), ct);
        var items = page.Data.Select(e =>
        {
            var d = details.GetValueOrDefault(e.TransferId);
            return new HistoryItem(e.TransferId, e.Direction, e.Amount, e.BalanceAfter, d?.reference, d?.description, d?.counterparty, d?.kind, e.PostedAt,
                e.EffectiveAt);
        }).ToList();
        return BankResult<Page<HistoryItem>>.Ok(new(items, page.NextCursor is { } next ? Cursor.Encode("e:" + next) : null));
    }

    async Task<BankResult<Page<HistoryItem>>> SearchAsync(BankCaller caller, ILedger view, string accountId, HistoryQuery query, HistoryWindow window, int take,
        string? after, CancellationToken ct)
    {
        var (afterAt, afterId) = after is null ? (long.MinValue, "") : BankIds.ParseCursorKey(after);
        var args = new DynamicParameters(new
        {
            tenantId = caller.TenantId, accountId, afterAt, afterId, take = take + 1,
            fromUs = window.From is { } f ? DbTime.ToMicros(f) : (long?)null, toUs = window.To is { } t ? DbTime.ToMicros(t) : (long?)null,
            min = query.MinAmount, max = query.MaxAmount,
        });
        var text = "";
        if (query.Q is { } q)
        {
            text = dialect.Choose(() => " AND search @@ plainto_tsquery('simple', @q)",
                () => " AND rowid IN (SELECT rowid FROM banking_transactions_fts WHERE banking_transactions_fts MATCH @q)");
            args.Add("q", dialect.Choose(() => q, () => Fts5Query(q)));
        }
        await using var connection = await database.OpenReadAsync(ct);
        var rows = (await connection.QueryAsync<DetailRow>(new CommandDefinition($"""
            SELECT transfer_id, kind, counterparty, reference, description, posted_at_us FROM banking_transactions
            WHERE tenant_id = @tenantId AND account_id = @accountId
              AND (posted_at_us > @afterAt OR (posted_at_us = @afterAt AND transfer_id > @afterId))
              AND (@fromUs IS NULL OR posted_at_us >= @fromUs) AND (@toUs IS NULL OR posted_at_us < @toUs)
              AND (@min IS NULL OR amount >= @min) AND (@max IS NULL OR amount <= @max){text}
            ORDER BY posted_at_us, transfer_id LIMIT @take
            """, args, cancellationToken: ct))).ToList();
        var more = rows.Count > take;
        if (more) rows.RemoveAt(rows.Count - 1);
        var entries = await view.ListEntriesOfTransfersAsync(caller.TenantId, accountId, new EntriesOfTransfersQuery(rows.Select(r => r.transfer_id).ToArray()), ct);
        if (!entries.Succeeded) return BankError.FromLedger(entries.Error!);
        var byTransfer = entries.Value!.ToLookup(e => e.TransferId, StringComparer.Ordinal);
        var items = rows.SelectMany(r => byTransfer[r.transfer_id].Select(e =>
            new HistoryItem(e.TransferId, e.Direction, e.Amount, e.BalanceAfter, r.reference, r.description, r.counterparty, r.kind, e.PostedAt, e.EffectiveAt)))
            .ToList();
        return BankResult<Page<HistoryItem>>.Ok(new(items, more ? Cursor.Encode("s:" + BankIds.CursorKey(rows[^1].posted_at_us, rows[^1].transfer_id)) : null));
    }

    /// <summary>Each whitespace-separated word as an FTS5 string (all must match), so operators in the input are text.</summary>
    internal static string Fts5Query(string q) =>
        string.Join(' ', q.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Select(w => "\"" + w.Replace("\"", "\"\"", StringComparison.Ordinal) + "\""));

    /// <summary>Banking's details of the given transfers on the account (one query).</summary>
    public async Task<Dictionary<string, DetailRow>> DetailsAsync(string tenantId, string accountId, string[] transferIds, CancellationToken ct)
    {
        if (transferIds.Length == 0) return new Dictionary<string, DetailRow>(StringComparer.Ordinal);
        await using var connection = await database.OpenReadAsync(ct);
        var rows = await connection.QueryAsync<DetailRow>(new CommandDefinition($"""
            SELECT transfer_id, kind, counterparty, reference, description, posted_at_us FROM banking_transactions
            WHERE tenant_id = @tenantId AND account_id = @accountId AND {dialect.InIdList("transfer_id", "ids")}
            """, new { tenantId, accountId, ids = dialect.IdListValue(transferIds) }, cancellationToken: ct));
        return rows.ToDictionary(r => r.transfer_id, StringComparer.Ordinal);
    }

    public sealed class DetailRow
    {
        public string transfer_id { get; set; } = "";
        public string? kind { get; set; }
        public string? counterparty { get; set; }
        public string? reference { get; set; }
        public string? description { get; set; }
        public long posted_at_us { get; set; }
    }
}
