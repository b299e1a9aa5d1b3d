using System.Data.Common;
using System.Security.Cryptography;
using System.Text;
using Dapper;
using Microsoft.Extensions.Options;
using Neraca.Events;
using Neraca.Jobs;
using Neraca.Ledger;
using Neraca.Settlement.Counterparties;
using Neraca.Storage;

namespace Neraca.Settlement.Statements;

/// <summary>Statement import: the file is spooled to a temporary file while its SHA-256 is computed (the same content is
/// the same statement), then parsed streaming and written in chunks inside one transaction with its matching job: a file
/// that breaks its format or whose balances do not add up changes nothing.</summary>
internal sealed class StatementImporter(ReconciliationStore store, CounterpartyDirectory counterparties, ILedger ledger, JobStore jobs,
    IOptions<SettlementOptions> options, TimeProvider clock)
{
    public const string MatchJobType = "reconciliation.match";

    public static readonly string[] Formats = ["csv", "mt940", "camt053"];

    /// <summary>The format named by <paramref name="format"/>, else by the media type, else sniffed from the first
    /// character (<c>&lt;</c> XML, <c>:</c> or <c>{</c> MT940, anything else CSV). Null: a media type this does not read.</summary>
    public static string? FormatOf(string? format, string? mediaType, int firstChar) => format ?? mediaType?.ToLowerInvariant() switch
    {
        "application/xml" or "text/xml" => "camt053",
        "text/plain" or "application/x-mt940" => "mt940",
        "text/csv" => "csv",
        null or "application/octet-stream" => firstChar switch { '<' => "camt053", ':' or '{' => "mt940", _ => "csv" },
        _ => null,
    };

    public async Task<SettlementResult<StatementResponse>> ImportAsync(string tenantId, string? counterpartyId, string? format, string? mediaType, Stream body,
        CancellationToken ct)
    {
        var v = new FieldErrors();
        if (counterpartyId is null) v.Add("counterparty", "Required: the counterparty whose statement this is (?counterparty=).");
        if (format is not null && !Formats.Contains(format)) v.Add("format", "csv, mt940 or camt053 (omit to use the media type).");
        if (!v.Ok) return v.ToError();
        if (await counterparties.GetAsync(tenantId, counterpartyId!, ct) is not { } counterparty)
            return SettlementError.Unprocessable(SettlementCodes.CounterpartyNotFound, $"No counterparty '{counterpartyId}'.");

        await using var spool = new FileStream(Path.Combine(Path.GetTempPath(), "neraca-statement-" + Guid.NewGuid().ToString("N")), FileMode.CreateNew,
            FileAccess.ReadWrite, FileShare.None, 81920, FileOptions.DeleteOnClose | FileOptions.Asynchronous);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[81920];
        long size = 0;
        int read, first = -1;
        while ((read = await body.ReadAsync(buffer, ct)) > 0)
        {
            size += read;
            if (size > options.Value.StatementBytesMax)
                return new SettlementError(413, SettlementCodes.StatementTooLarge, $"Statements are limited to {options.Value.StatementBytesMax} bytes.");
            if (first < 0) first = FirstCharacter(buffer.AsSpan(0, read));
            hash.AppendData(buffer, 0, read);
            await spool.WriteAsync(buffer.AsMemory(0, read), ct);
        }
        if (size == 0) return SettlementError.Unprocessable(SettlementCodes.StatementInvalid, "The statement is empty.", Line(1));
        var kind = FormatOf(format, mediaType, first);
        if (kind is null) return new SettlementError(415, "unsupported_media_type", $"'{mediaType}' is not a statement type: send application/xml (camt.053), text/plain (MT940) or text/csv.");
        if (kind == "csv" && counterparty.CsvMapping is null)
            return SettlementError.Unprocessable(SettlementCodes.CsvMappingRequired, $"Counterparty '{counterparty.Id}' has no csv_mapping: set one to import CSV statements.");
        var sha = Convert.ToHexStringLower(hash.GetHashAndReset());
        if (await store.FindByContentAsync(tenantId, sha, ct) is { } seen) return SettlementResult<StatementResponse>.Again(seen.ToResponse());

        var cash = await ledger.GetAccountAsync(tenantId, counterparty.CashAccount, ct);
        var book = cash.Succeeded ? await ledger.GetLedgerAsync(tenantId, cash.Value!.Ledger, ct) : null;
        if (book is not { Succeeded: true })
            return SettlementError.Unprocessable(SettlementCodes.CounterpartyAccountInvalid, $"The cash account '{counterparty.CashAccount}' is not in the ledger.");
        var (asset, scale) = (book.Value!.Asset, book.Value.Scale);

        spool.Position = 0;
        var id = "stm_" + Ids.NewUlid();
        var nowUs = DbTime.ToMicros(clock.GetUtcNow());
        using var text = new StreamReader(spool, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 65536, leaveOpen: true);
        StatementParser parser = kind switch
        {
            "mt940" => new Mt940Parser(text, scale),
            "camt053" => new Camt053Parser(spool, scale, options.Value.StatementBytesMax),
            _ => new CsvStatementParser(text, counterparty.CsvMapping!, scale),
        };
        await using var connection = await store.Database.OpenAsync(ct);
        await using var tx = await store.Dialect.BeginWriteAsync(connection, ct);
        try
        {
            await connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO recon_statements (tenant_id, id, counterparty_id, format, content_sha256, opening_balance, closing_balance, period_from, period_to,
                    line_count, status, imported_at_us)
                VALUES (@tenantId, @id, @counterparty, @kind, @sha, 0, 0, '', '', 0, 'matching', @nowUs)
                """, new { tenantId, id, counterparty = counterparty.Id, kind, sha, nowUs }, tx, cancellationToken: ct));
        }
        catch (DbException e) when (Database.IsUniqueViolation(e))
        {
            // The same file raced in: the first import answers.
            await tx.RollbackAsync(ct);
            var existing = await store.FindByContentAsync(tenantId, sha, ct) ?? throw new InvalidOperationException("statement vanished", e);
            return SettlementResult<StatementResponse>.Again(existing.ToResponse());
        }

        long count = 0, sum = 0;
        DateOnly? from = null, to = null;
        var chunk = new List<ParsedLine>(ReconciliationStore.WriteChunk);
        try
        {
            foreach (var line in parser.ReadLines())
            {
                if (++count > options.Value.StatementLinesMax)
                    return SettlementError.Unprocessable(SettlementCodes.StatementInvalid, $"More than {options.Value.StatementLinesMax} lines.", Line(line.SourceLine));
                sum = checked(sum + line.Amount);
                var day = line.BookingDate ?? line.ValueDate;
                if (from is null || day < from) from = day;
                if (to is null || day > to) to = day;
                chunk.Add(line);
                if (chunk.Count == ReconciliationStore.WriteChunk)
                {
                    await store.InsertLinesAsync(connection, tx, tenantId, id, chunk, (int)(count - chunk.Count + 1), ct);
                    chunk.Clear();
                }
            }
            await store.InsertLinesAsync(connection, tx, tenantId, id, chunk, (int)(count - chunk.Count + 1), ct);
        }
        catch (StatementFormatException e)
        {
            var extra = new Dictionary<string, object?> { ["line"] = e.Line, ["format"] = kind };
            if (e.Element is not null) extra["element"] = e.Element;
            return SettlementError.Unprocessable(SettlementCodes.StatementInvalid, $"Line {e.Line}: {e.Message}", extra);
        }
        catch (UnbalancedStatementException e)
        {
            return SettlementError.Unprocessable(SettlementCodes.StatementUnbalanced, $"Line {e.Line}: {e.Message}", Line(e.Line));
        }
        catch (UnsupportedStatementException e)
        {
            return SettlementError.Unprocessable(SettlementCodes.StatementFormatUnsupported, e.Message);
        }
        catch (OverflowException)
        {
            return SettlementError.Unprocessable(SettlementCodes.StatementUnbalanced, "The lines' total overflows 64-bit minor units.");
        }

        var h = parser.Header;
        if (h.Currency is { } currency && currency != asset)
            return SettlementError.Unprocessable(SettlementCodes.StatementCurrencyMismatch,
                $"The statement is in {currency}; the cash account '{counterparty.CashAccount}' is in {asset}.");
        long expected;
        try { expected = checked(h.Opening!.Value + sum); }
        catch (OverflowException) { return SettlementError.Unprocessable(SettlementCodes.StatementUnbalanced, "Opening balance plus lines overflows."); }
        if (expected != h.Closing)
            return SettlementError.Unprocessable(SettlementCodes.StatementUnbalanced,
                $"Opening balance {Amounts.Format(h.Opening.Value, scale)} plus the lines ({Amounts.Format(sum, scale)}) is {Amounts.Format(expected, scale)}, not the closing balance {Amounts.Format(h.Closing!.Value, scale)}.",
                new Dictionary<string, object?> { ["line"] = h.ClosingLine, ["expected_closing_balance"] = expected, ["closing_balance"] = h.Closing });
        var periodFrom = from is { } f && (h.ClosingDate is null || f < h.ClosingDate) ? f : h.ClosingDate!.Value;
        var periodTo = h.ClosingDate is { } c && (to is null || c > to) ? c : to!.Value;

        await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE recon_statements SET statement_ref = @Reference, account_ref = @Account, currency = @currency, opening_balance = @Opening, closing_balance = @Closing,
                period_from = @periodFrom, period_to = @periodTo, line_count = @count, status = @status
            WHERE tenant_id = @tenantId AND id = @id
            """, new { tenantId, id, h.Reference, h.Account, currency = h.Currency ?? asset, h.Opening, h.Closing, periodFrom = Dates.Format(periodFrom),
            periodTo = Dates.Format(periodTo), count, status = StatementStatus.Matching }, tx, cancellationToken: ct));
        await jobs.EnqueueAsync(connection, tx, new JobRequest(tenantId, MatchJobType, SettlementJson.Serialize(new MatchJobPayload(id)), Key: id), ct);
        var statement = (await store.GetStatementAsync(connection, tx, tenantId, id, ct))!;
        await EventLog.AppendAsync(connection, tx, tenantId, null, new NewEvent(SettlementEventTypes.StatementImported, id, SettlementJson.Serialize(statement.ToResponse())),
            nowUs, ct);
        await tx.CommitAsync(ct);
        return SettlementResult<StatementResponse>.New(statement.ToResponse());
    }

    static Dictionary<string, object?> Line(int line) => new() { ["line"] = line };

    static int FirstCharacter(ReadOnlySpan<byte> bytes)
    {
        if (bytes.StartsWith("\uFEFF"u8)) bytes = bytes[3..];
        foreach (var b in bytes)
            if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n')) return b;
        return -1;
    }
}

/// <summary>The matching job's payload: the statement to match (or, once all its lines are settled, to sweep for unmatched transfers).</summary>
internal sealed record MatchJobPayload(string Statement);
