using System.Data.Common;
using Dapper;
using Neraca.Hosting;
using Neraca.Storage;

namespace Neraca.Settlement.Statements;

public sealed record StatementResponse(
    string Id, string Counterparty, string Format, string ContentSha256, string? StatementRef, string? AccountRef, string? Currency,
    long OpeningBalance, long ClosingBalance, string PeriodFrom, string PeriodTo, long LineCount, long MatchedCount, long ExceptionCount,
    string Status, DateTimeOffset ImportedAt, DateTimeOffset? FullyMatchedAt);

public sealed record LineResponse(int LineNo, int SourceLine, string ValueDate, string? BookingDate, long Amount, string? Reference, string? BankReference,
    string? Description, string Status, string? Rule, IReadOnlyList<string> TransferIds);

/// <summary>Line and statement states. Stored as text: never rename one.</summary>
internal static class LineStatus
{
    public const string Unmatched = "unmatched";
    public const string Matched = "matched";
    public const string Exception = "exception";
    public const string Ignored = "ignored";

    public static readonly string[] All = [Unmatched, Matched, Exception, Ignored];
}

internal static class StatementStatus
{
    /// <summary>Imported; the matching job has not finished its first pass.</summary>
    public const string Matching = "matching";
    /// <summary>Every line is matched or ignored.</summary>
    public const string Matched = "matched";
    /// <summary>Some lines wait in the exception queue.</summary>
    public const string Exceptions = "exceptions";
}

/// <summary>Reads and writes of the reconciliation tables shared by import, matching and the exception queue. The two
/// stores differ only in how many rows one statement writes (PostgreSQL: arrays with <c>unnest</c>; SQLite: one prepared
/// statement per row inside the transaction, which is in-process and fast).</summary>
internal sealed class ReconciliationStore(Database database, SqlDialect dialect)
{
    public const int WriteChunk = 2_000;

    public Database Database => database;

    public SqlDialect Dialect => dialect;

    internal const string StatementColumns =
        "id, counterparty_id, format, content_sha256, statement_ref, account_ref, currency, opening_balance, closing_balance, period_from, period_to, line_count, matched_count, exception_count, status, imported_at_us, fully_matched_at_us";

    const string LineColumns = "line_no, source_line, value_date, booking_date, amount, reference, bank_reference, description, status, rule, transfer_ids";

    public async Task<StatementRow?> GetStatementAsync(DbConnection connection, DbTransaction? tx, string tenantId, string id, CancellationToken ct) =>
        await connection.QuerySingleOrDefaultAsync<StatementRow>(new CommandDefinition(
            $"SELECT {StatementColumns} FROM recon_statements WHERE tenant_id = @tenantId AND id = @id", new { tenantId, id }, tx, cancellationToken: ct));

    public async Task<StatementRow?> GetStatementAsync(string tenantId, string id, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return await GetStatementAsync(connection, null, tenantId, id, ct);
    }

    public async Task<StatementRow?> FindByContentAsync(string tenantId, string sha256, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return await connection.QuerySingleOrDefaultAsync<StatementRow>(new CommandDefinition(
            $"SELECT {StatementColumns} FROM recon_statements WHERE tenant_id = @tenantId AND content_sha256 = @sha256", new { tenantId, sha256 }, cancellationToken: ct));
    }

    public async Task<(List<StatementRow> Items, string? Next)> ListStatementsAsync(string tenantId, string? counterparty, int take, string? afterId, CancellationToken ct)
    {
        await using var connection = await database.OpenReadAsync(ct);
        var rows = (await connection.QueryAsync<StatementRow>(new CommandDefinition($"""
            SELECT {StatementColumns} FROM recon_statements
            WHERE tenant_id = @tenantId AND (@counterparty IS NULL OR counterparty_id = @counterparty) AND (@afterId IS NULL OR id > @afterId)
            ORDER BY id LIMIT @n
            """, new { tenantId, counterparty, afterId, n = take + 1 }, cancellationToken: ct))).ToList();
        return Trim(rows, take, r => r.id);
    }

    public async Task<(List<LineRow> Items, string? Next)> ListLinesAsync(string tenantId, string statementId, string? status, int take, long afterNo, CancellationToken ct)
    {
        await using var connection = await database.OpenReadAsync(ct);
        var rows = (await connection.QueryAsync<LineRow>(new CommandDefinition($"""
            SELECT {LineColumns} FROM recon_lines
            WHERE tenant_id = @tenantId AND statement_id = @statementId AND (@status IS NULL OR status = @status) AND line_no > @afterNo
            ORDER BY line_no LIMIT @n
            """, new { tenantId, statementId, status, afterNo, n = take + 1 }, cancellationToken: ct))).ToList();
        return Trim(rows, take, r => r.line_no.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>All lines of a statement in one status (the matching pass reads its unmatched lines).</summary>
    public async Task<List<LineRow>> LinesInStatusAsync(string tenantId, string statementId, string status, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return (await connection.QueryAsync<LineRow>(new CommandDefinition(
            $"SELECT {LineColumns} FROM recon_lines WHERE tenant_id = @tenantId AND statement_id = @statementId AND status = @status ORDER BY line_no",
            new { tenantId, statementId, status }, cancellationToken: ct))).ToList();
    }

    public async Task<LineRow?> GetLineAsync(DbConnection connection, DbTransaction? tx, string tenantId, string statementId, int lineNo, CancellationToken ct) =>
        await connection.QuerySingleOrDefaultAsync<LineRow>(new CommandDefinition(
            $"SELECT {LineColumns} FROM recon_lines WHERE tenant_id = @tenantId AND statement_id = @statementId AND line_no = @lineNo",
            new { tenantId, statementId, lineNo }, tx, cancellationToken: ct));

    /// <summary>Which of <paramref name="transferIds"/> are matched already.</summary>
    public async Task<HashSet<string>> MatchedAsync(DbConnection connection, DbTransaction? tx, string tenantId, string[] transferIds, CancellationToken ct)
    {
        if (transferIds.Length == 0) return new HashSet<string>(StringComparer.Ordinal);
        var rows = await connection.QueryAsync<string>(new CommandDefinition(
            $"SELECT transfer_id FROM recon_matches WHERE tenant_id = @tenantId AND {dialect.InIdList("transfer_id", "ids")}",
            new { tenantId, ids = dialect.IdListValue(transferIds) }, tx, cancellationToken: ct));
        return rows.ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>Which of <paramref name="transferIds"/> already have an exception (open or resolved).</summary>
    public async Task<HashSet<string>> WithExceptionAsync(DbConnection connection, DbTransaction? tx, string tenantId, string[] transferIds, CancellationToken ct)
    {
        if (transferIds.Length == 0) return new HashSet<string>(StringComparer.Ordinal);
        var rows = await connection.QueryAsync<string>(new CommandDefinition(
            $"SELECT transfer_id FROM recon_exceptions WHERE tenant_id = @tenantId AND {dialect.InIdList("transfer_id", "ids")}",
            new { tenantId, ids = dialect.IdListValue(transferIds) }, tx, cancellationToken: ct));
        return rows.ToHashSet(StringComparer.Ordinal);
    }

    public async Task InsertLinesAsync(DbConnection connection, DbTransaction tx, string tenantId, string statementId, IReadOnlyList<ParsedLine> lines, int firstNo,
        CancellationToken ct)
    {
        if (lines.Count == 0) return;
        if (dialect.Kind == StoreKind.Postgres)
        {
            await connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO recon_lines (tenant_id, statement_id, line_no, source_line, value_date, booking_date, amount, reference, bank_reference, description, status)
                SELECT @tenantId, @statementId, u.no, u.src, u.vd, u.bd, u.amount, u.ref, u.bref, u.descr, 'unmatched'
                FROM unnest(@nos, @srcs, @vds, @bds, @amounts, @refs, @brefs, @descrs) AS u(no, src, vd, bd, amount, ref, bref, descr)
                """, new
            {
                tenantId, statementId, nos = lines.Select((_, i) => firstNo + i).ToArray(), srcs = lines.Select(l => l.SourceLine).ToArray(),
                vds = lines.Select(l => Dates(l.ValueDate)).ToArray(), bds = lines.Select(l => l.BookingDate is { } b ? Dates(b) : null).ToArray(),
                amounts = lines.Select(l => l.Amount).ToArray(), refs = lines.Select(l => l.Reference).ToArray(), brefs = lines.Select(l => l.BankReference).ToArray(),
                descrs = lines.Select(l => l.Description).ToArray(),
            }, tx, cancellationToken: ct));
            return;
        }
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO recon_lines (tenant_id, statement_id, line_no, source_line, value_date, booking_date, amount, reference, bank_reference, description, status)
            VALUES (@tenantId, @statementId, @no, @src, @vd, @bd, @amount, @ref, @bref, @descr, 'unmatched')
            """, lines.Select((l, i) => new
        {
            tenantId, statementId, no = firstNo + i, src = l.SourceLine, vd = Dates(l.ValueDate), bd = l.BookingDate is { } b ? Dates(b) : null,
            amount = l.Amount, @ref = l.Reference, bref = l.BankReference, descr = l.Description,
        }), tx, cancellationToken: ct));
    }

    /// <summary>Records matches: one row per matched transfer (its primary key makes a second match of it fail the
    /// transaction) and the line's status, rule and transfers.</summary>
    public async Task WriteMatchesAsync(DbConnection connection, DbTransaction tx, string tenantId, string statementId, IReadOnlyList<LineMatch> matches,
        long nowUs, CancellationToken ct)
    {
        foreach (var chunk in matches.Chunk(WriteChunk))
        {
            var pairs = chunk.SelectMany(m => m.TransferIds.Select(t => (m.LineNo, m.Rule, Transfer: t))).ToArray();
            if (dialect.Kind == StoreKind.Postgres)
            {
                await connection.ExecuteAsync(new CommandDefinition("""
                    INSERT INTO recon_matches (tenant_id, transfer_id, statement_id, line_no, rule, matched_at_us)
                    SELECT @tenantId, u.t, @statementId, u.no, u.rule, @nowUs FROM unnest(@ts, @nos, @rules) AS u(t, no, rule)
                    """, new { tenantId, statementId, nowUs, ts = pairs.Select(p => p.Transfer).ToArray(), nos = pairs.Select(p => p.LineNo).ToArray(),
                    rules = pairs.Select(p => p.Rule).ToArray() }, tx, cancellationToken: ct));
                await connection.ExecuteAsync(new CommandDefinition("""
                    UPDATE recon_lines l SET status = 'matched', rule = u.rule, transfer_ids = u.ids
                    FROM unnest(@nos, @rules, @ids) AS u(no, rule, ids)
                    WHERE l.tenant_id = @tenantId AND l.statement_id = @statementId AND l.line_no = u.no
                    """, new { tenantId, statementId, nos = chunk.Select(m => m.LineNo).ToArray(), rules = chunk.Select(m => m.Rule).ToArray(),
                    ids = chunk.Select(m => SettlementJson.Serialize(m.TransferIds)).ToArray() }, tx, cancellationToken: ct));
                continue;
            }
            await connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO recon_matches (tenant_id, transfer_id, statement_id, line_no, rule, matched_at_us)
                VALUES (@tenantId, @Transfer, @statementId, @LineNo, @Rule, @nowUs)
                """, pairs.Select(p => new { tenantId, statementId, nowUs, p.Transfer, p.LineNo, p.Rule }), tx, cancellationToken: ct));
            await connection.ExecuteAsync(new CommandDefinition("""
                UPDATE recon_lines SET status = 'matched', rule = @Rule, transfer_ids = @ids
                WHERE tenant_id = @tenantId AND statement_id = @statementId AND line_no = @LineNo
                """, chunk.Select(m => new { tenantId, statementId, m.LineNo, m.Rule, ids = SettlementJson.Serialize(m.TransferIds) }), tx, cancellationToken: ct));
        }
    }

    /// <summary>Opens exceptions (one per line or transfer, however often asked: unique indexes) and marks their lines.</summary>
    public async Task OpenExceptionsAsync(DbConnection connection, DbTransaction tx, string tenantId, IReadOnlyList<ExceptionRow> exceptions, CancellationToken ct)
    {
        foreach (var chunk in exceptions.Chunk(WriteChunk))
        {
            if (dialect.Kind == StoreKind.Postgres)
            {
                await connection.ExecuteAsync(new CommandDefinition("""
                    INSERT INTO recon_exceptions (tenant_id, id, counterparty_id, kind, statement_id, line_no, transfer_id, amount, value_date, reference, status, created_at_us)
                    SELECT @tenantId, u.id, u.cp, u.kind, u.st, u.no, u.t, u.amount, u.vd, u.ref, 'open', u.at
                    FROM unnest(@ids, @cps, @kinds, @sts, @nos, @ts, @amounts, @vds, @refs, @ats) AS u(id, cp, kind, st, no, t, amount, vd, ref, at)
                    ON CONFLICT DO NOTHING
                    """, new
                {
                    tenantId, ids = chunk.Select(e => e.id).ToArray(), cps = chunk.Select(e => e.counterparty_id).ToArray(), kinds = chunk.Select(e => e.kind).ToArray(),
                    sts = chunk.Select(e => e.statement_id).ToArray(), nos = chunk.Select(e => e.line_no).ToArray(), ts = chunk.Select(e => e.transfer_id).ToArray(),
                    amounts = chunk.Select(e => e.amount).ToArray(), vds = chunk.Select(e => e.value_date).ToArray(), refs = chunk.Select(e => e.reference).ToArray(),
                    ats = chunk.Select(e => e.created_at_us).ToArray(),
                }, tx, cancellationToken: ct));
            }
            else
            {
                await connection.ExecuteAsync(new CommandDefinition("""
                    INSERT INTO recon_exceptions (tenant_id, id, counterparty_id, kind, statement_id, line_no, transfer_id, amount, value_date, reference, status, created_at_us)
                    VALUES (@tenantId, @id, @counterparty_id, @kind, @statement_id, @line_no, @transfer_id, @amount, @value_date, @reference, 'open', @created_at_us)
                    ON CONFLICT DO NOTHING
                    """, chunk.Select(e => new { tenantId, e.id, e.counterparty_id, e.kind, e.statement_id, e.line_no, e.transfer_id, e.amount, e.value_date, e.reference, e.created_at_us }),
                    tx, cancellationToken: ct));
            }
            var lines = chunk.Where(e => e.line_no is not null).ToList();
            if (lines.Count == 0) continue;
            await connection.ExecuteAsync(new CommandDefinition("""
                UPDATE recon_lines SET status = 'exception' WHERE tenant_id = @tenantId AND statement_id = @statement_id AND line_no = @line_no AND status = 'unmatched'
                """, lines.Select(e => new { tenantId, e.statement_id, e.line_no }), tx, cancellationToken: ct));
        }
    }

    /// <summary>Recounts a statement's lines and sets its status; stamps the first time it became fully matched. Returns
    /// the statement as it now is and whether this call made it fully matched.</summary>
    public async Task<(StatementRow Statement, bool BecameMatched)> RefreshStatementAsync(DbConnection connection, DbTransaction tx, string tenantId, string statementId,
        long nowUs, CancellationToken ct)
    {
        var counts = (await connection.QueryAsync<(string Status, long Count)>(new CommandDefinition(
            "SELECT status, count(*) FROM recon_lines WHERE tenant_id = @tenantId AND statement_id = @statementId GROUP BY status",
            new { tenantId, statementId }, tx, cancellationToken: ct))).ToDictionary(c => c.Status, c => c.Count, StringComparer.Ordinal);
        var matched = counts.GetValueOrDefault(LineStatus.Matched) + counts.GetValueOrDefault(LineStatus.Ignored);
        var exceptions = counts.GetValueOrDefault(LineStatus.Exception);
        var unmatched = counts.GetValueOrDefault(LineStatus.Unmatched);
        var status = exceptions + unmatched == 0 ? StatementStatus.Matched : unmatched > 0 ? StatementStatus.Matching : StatementStatus.Exceptions;
        var before = await GetStatementAsync(connection, tx, tenantId, statementId, ct) ?? throw new InvalidOperationException("statement vanished");
        var became = status == StatementStatus.Matched && before.fully_matched_at_us is null;
        await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE recon_statements SET matched_count = @matched, exception_count = @exceptions, status = @status,
                fully_matched_at_us = CASE WHEN @became THEN @nowUs ELSE fully_matched_at_us END
            WHERE tenant_id = @tenantId AND id = @statementId
            """, new { tenantId, statementId, matched, exceptions, status, became, nowUs }, tx, cancellationToken: ct));
        var after = await GetStatementAsync(connection, tx, tenantId, statementId, ct);
        return (after!, became);
    }

    static string Dates(DateOnly d) => Counterparties.Dates.Format(d);

    static (List<T> Items, string? Next) Trim<T>(List<T> rows, int take, Func<T, string> key)
    {
        var more = rows.Count > take;
        if (more) rows.RemoveAt(rows.Count - 1);
        return (rows, more ? Cursor.Encode(key(rows[^1])) : null);
    }

    internal sealed class StatementRow
    {
        public string id { get; set; } = "";
        public string counterparty_id { get; set; } = "";
        public string format { get; set; } = "";
        public string content_sha256 { get; set; } = "";
        public string? statement_ref { get; set; }
        public string? account_ref { get; set; }
        public string? currency { get; set; }
        public long opening_balance { get; set; }
        public long closing_balance { get; set; }
        public string period_from { get; set; } = "";
        public string period_to { get; set; } = "";
        public long line_count { get; set; }
        public long matched_count { get; set; }
        public long exception_count { get; set; }
        public string status { get; set; } = "";
        public long imported_at_us { get; set; }
        public long? fully_matched_at_us { get; set; }

        public StatementResponse ToResponse() => new(id, counterparty_id, format, content_sha256, statement_ref, account_ref, currency, opening_balance, closing_balance,
            period_from, period_to, line_count, matched_count, exception_count, status, DbTime.FromMicros(imported_at_us),
            fully_matched_at_us is { } f ? DbTime.FromMicros(f) : null);
    }

    internal sealed class LineRow
    {
        public int line_no { get; set; }
        public int source_line { get; set; }
        public string value_date { get; set; } = "";
        public string? booking_date { get; set; }
        public long amount { get; set; }
        public string? reference { get; set; }
        public string? bank_reference { get; set; }
        public string? description { get; set; }
        public string status { get; set; } = "";
        public string? rule { get; set; }
        public string? transfer_ids { get; set; }

        public LineResponse ToResponse() => new(line_no, source_line, value_date, booking_date, amount, reference, bank_reference, description, status, rule,
            SettlementJson.Deserialize<string[]>(transfer_ids) ?? []);
    }

    internal sealed class ExceptionRow
    {
        public string id { get; set; } = "";
        public string counterparty_id { get; set; } = "";
        public string kind { get; set; } = "";
        public string statement_id { get; set; } = "";
        public int? line_no { get; set; }
        public string? transfer_id { get; set; }
        public long amount { get; set; }
        public string value_date { get; set; } = "";
        public string? reference { get; set; }
        public string status { get; set; } = "open";
        public string? resolution { get; set; }
        public string? note { get; set; }
        public string? resolved_transfer_ids { get; set; }
        public long created_at_us { get; set; }
        public long? resolved_at_us { get; set; }
    }
}

/// <summary>A line and the transfers a rule matched it with.</summary>
internal sealed record LineMatch(int LineNo, string Rule, string[] TransferIds);
