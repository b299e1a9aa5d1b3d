using System.Globalization;
using System.Text;
using Neraca.Settlement.Counterparties;

namespace Neraca.Settlement.Statements;

/// <summary>A CSV statement read with the counterparty's <see cref="CsvMapping"/>: a header row naming the columns, one
/// row per line. The running <c>balance</c> column is the file's integrity: every row's balance must be the previous
/// balance plus the row's amount; the opening balance is the first balance minus its amount, the closing the last.</summary>
internal sealed class CsvStatementParser(TextReader text, CsvMapping mapping, int scale) : StatementParser
{
    public override string Format => "csv";

    public override IEnumerable<ParsedLine> ReadLines()
    {
        var c = mapping.Columns!;
        var separator = (mapping.DecimalSeparator ?? ".")[0];
        var dateFormat = mapping.DateFormat ?? "yyyy-MM-dd";
        var parser = new CsvRecords(text, (mapping.Delimiter ?? ",")[0]);
        if (!parser.Read()) throw new StatementFormatException("The file is empty: expected a header row.", 1);
        var header = parser.Record!;
        int Column(string? name, string field, bool required)
        {
            if (name is null) return -1;
            var i = Array.FindIndex(header, h => string.Equals(h.Trim(), name, StringComparison.OrdinalIgnoreCase));
            if (i < 0 && required) throw new StatementFormatException($"The header has no column '{name}' (csv_mapping.columns.{field}).", 1);
            return i;
        }
        var valueDate = Column(c.ValueDate, "value_date", true);
        var bookingDate = Column(c.BookingDate, "booking_date", true);
        var amountAt = Column(c.Amount, "amount", true);
        var debitAt = Column(c.Debit, "debit", true);
        var creditAt = Column(c.Credit, "credit", true);
        var balanceAt = Column(c.Balance, "balance", true);
        var referenceAt = Column(c.Reference, "reference", true);
        var bankReferenceAt = Column(c.BankReference, "bank_reference", true);
        var descriptionAt = Column(c.Description, "description", true);
        Header.Currency = mapping.Currency;
        long? balance = null;
        var lines = 0;
        while (parser.Read())
        {
            var row = parser.Record!;
            var line = parser.RawRow;
            if (row.Length == 1 && row[0].Trim().Length == 0) continue;
            if (row.Length != header.Length) throw new StatementFormatException($"The row has {row.Length} columns, the header {header.Length}.", line);
            var date = ParseDate(row[valueDate], dateFormat, line, c.ValueDate!);
            DateOnly? booked = bookingDate < 0 || row[bookingDate].Trim().Length == 0 ? null : ParseDate(row[bookingDate], dateFormat, line, c.BookingDate!);
            long amount;
            if (amountAt >= 0) amount = Amount(row[amountAt], separator, line, c.Amount!);
            else
            {
                var debit = row[debitAt].Trim();
                var credit = row[creditAt].Trim();
                if ((debit.Length == 0) == (credit.Length == 0))
                    throw new StatementFormatException($"Exactly one of '{c.Debit}' and '{c.Credit}' must have an amount.", line);
                amount = debit.Length > 0 ? -Math.Abs(Amount(debit, separator, line, c.Debit!)) : Math.Abs(Amount(credit, separator, line, c.Credit!));
            }
            if (amount == 0) throw new StatementFormatException($"Column '{c.Amount ?? c.Credit}' must not be zero.", line);
            var after = Amounts.ParseSigned(row[balanceAt], separator, scale)
                ?? throw new StatementFormatException($"Column '{c.Balance}': '{row[balanceAt]}' is not an amount with at most {scale} decimals.", line);
            long expected;
            try { expected = checked((balance ?? checked(after - amount)) + amount); }
            catch (OverflowException) { throw new StatementFormatException("Balance overflow.", line); }
            if (balance is null) Header.Opening = checked(after - amount);
            if (expected != after)
                throw new UnbalancedStatementException(
                    $"The balance {Amounts.Format(after, scale)} is not the previous balance {Amounts.Format(balance!.Value, scale)} plus the amount {Amounts.Format(amount, scale)}.", line);
            balance = after;
            lines++;
            Header.Closing = after;
            Header.ClosingDate = booked ?? date;
            Header.ClosingLine = line;
            yield return new ParsedLine(line, date, booked, amount, Optional(row, referenceAt, 35), Optional(row, bankReferenceAt, 35), Optional(row, descriptionAt, 500));
        }
        if (lines == 0) throw new StatementFormatException("No lines after the header: a CSV statement's balances come from its lines.", parser.RawRow);
    }

    static DateOnly ParseDate(string text, string format, int line, string column) =>
        DateOnly.TryParseExact(text.Trim(), format, CultureInfo.InvariantCulture, DateTimeStyles.None, out var d) ? d
            : throw new StatementFormatException($"Column '{column}': '{text}' is not a date ({format}).", line);

    long Amount(string text, char separator, int line, string column) =>
        Amounts.ParseSigned(text, separator, scale) ?? throw new StatementFormatException($"Column '{column}': '{text}' is not an amount with at most {scale} decimals.", line);

    static string? Optional(string[] row, int at, int lengthMax)
    {
        if (at < 0) return null;
        var t = row[at].Trim();
        return t.Length == 0 ? null : t.Length > lengthMax ? t[..lengthMax] : t;
    }
}

/// <summary>The file's own balances do not add up (opening + lines != closing, or a running balance).</summary>
internal sealed class UnbalancedStatementException(string message, int line) : Exception(message)
{
    public int Line { get; } = line;
}

/// <summary>RFC 4180 records read one at a time: fields split by the delimiter, double quotes around a field that holds
/// delimiters, quotes ("") or line breaks. <see cref="RawRow"/> is the file line the record starts on. Fields are
/// limited to <see cref="StatementParser.LineLengthMax"/> characters and records to <see cref="FieldsMax"/> fields.</summary>
internal sealed class CsvRecords(TextReader reader, char delimiter)
{
    public const int FieldsMax = 256;

    readonly StringBuilder _field = new();
    readonly List<string> _record = [];
    int _line = 1;

    public string[]? Record { get; private set; }

    public int RawRow { get; private set; }

    public bool Read()
    {
        _record.Clear();
        _field.Clear();
        RawRow = _line;
        var c = reader.Read();
        if (c < 0) return false;
        var quoted = false;
        var wasQuoted = false;
        while (true)
        {
            if (quoted)
            {
                if (c < 0) throw new StatementFormatException("A quoted field is not closed.", RawRow);
                if (c == '"')
                {
                    if (reader.Peek() == '"') { reader.Read(); Append('"'); }
                    else { quoted = false; wasQuoted = true; }
                }
                else
                {
                    if (c == '\n') _line++;
                    Append((char)c);
                }
            }
            else if (c == '"')
            {
                if (_field.Length > 0 || wasQuoted) throw new StatementFormatException("A quote inside an unquoted field (quote the whole field).", _line);
                quoted = true;
            }
            else if (c == delimiter) { EndField(); wasQuoted = false; }
            else if (c is '\r' or '\n' || c < 0)
            {
                if (c == '\r' && reader.Peek() == '\n') reader.Read();
                if (c >= 0) _line++;
                EndField();
                Record = [.. _record];
                return true;
            }
            else
            {
                if (wasQuoted) throw new StatementFormatException("Text after a closing quote (quote the whole field).", _line);
                Append((char)c);
            }
            c = reader.Read();
        }
    }

    void Append(char c)
    {
        if (_field.Length >= StatementParser.LineLengthMax) throw new StatementFormatException($"A field longer than {StatementParser.LineLengthMax} characters.", _line);
        _field.Append(c);
    }

    void EndField()
    {
        if (_record.Count >= FieldsMax) throw new StatementFormatException($"More than {FieldsMax} fields in a row.", RawRow);
        _record.Add(_field.ToString());
        _field.Clear();
    }
}
