using System.Globalization;
using System.Text;

namespace Neraca.Settlement.Statements;

/// <summary>SWIFT MT940 (customer statement), one statement per file: fields :20: (reference), :25: (account), :28C:
/// (statement number), :60F:/:60M: (opening), :61: (line) with its :86: (information), :62F:/:62M: (closing), and the
/// optional :64:/:65: (available balances, ignored). SWIFT block wrappers (<c>{1:...}{2:...}{4:</c> ... <c>-}</c>) are
/// accepted. A :61: line is <c>YYMMDD[MMDD](C|D|RC|RD)[funds code]amount,decimals NTTT reference[//bank reference]</c>,
/// RC (reversal of a credit) is money out and RD money in.</summary>
internal sealed class Mt940Parser(TextReader text, int scale) : StatementParser
{
    public override string Format => "mt940";

    static readonly HashSet<string> KnownTags = ["20", "21", "25", "28C", "60F", "60M", "61", "86", "62F", "62M", "64", "65"];

    public override IEnumerable<ParsedLine> ReadLines()
    {
        var reader = new LineReader(text);
        string? tag = null;
        var value = new StringBuilder();
        var tagLine = 0;
        ParsedLine? held = null;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var ended = false;
        while (true)
        {
            var line = reader.Next();
            if (line is not null)
            {
                if (line.Length == 0 || ended && line.Trim().Length == 0) continue;
                if (ended) throw new StatementFormatException("Text after the end of the statement block.", reader.Number);
                if (line.StartsWith('{'))
                {
                    // Application header blocks: the text block {4: starts the fields.
                    var body = line.IndexOf("{4:", StringComparison.Ordinal);
                    if (body < 0) continue;
                    line = line[(body + 3)..];
                    if (line.Length == 0) continue;
                }
                if (line.StartsWith("-}", StringComparison.Ordinal)) { ended = true; line = null; }
            }
            var isTag = line is not null && TryTag(line, out _, out _);
            if (line is not null && !isTag)
            {
                if (tag is null) throw new StatementFormatException("Expected a field such as :20: at the start of the statement.", reader.Number);
                value.Append('\n').Append(line);
                continue;
            }
            // A field ended: handle it.
            if (tag is not null)
            {
                if (tag == "61")
                {
                    if (held is not null) yield return held;
                    held = ParseLine(value.ToString(), tagLine);
                }
                else if (tag == "86")
                {
                    if (held is not null) { yield return held with { Description = Clean(value.ToString()) }; held = null; }
                }
                else
                {
                    if (held is not null) { yield return held; held = null; }
                    Field(tag, value.ToString(), tagLine);
                }
            }
            if (line is null) break;
            TryTag(line, out tag, out var rest);
            if (!KnownTags.Contains(tag!)) throw new StatementFormatException($"Unknown MT940 field :{tag}:.", reader.Number);
            if (tag is not ("61" or "86") && !seen.Add(tag![..2]) && tag is not ("64" or "65"))
                throw new StatementFormatException($"Field :{tag}: appears twice (one statement per file).", reader.Number);
            if (tag == "61" && !seen.Contains("60")) throw new StatementFormatException("A :61: line before the opening balance :60F:.", reader.Number);
            if (tag == "61" && seen.Contains("62")) throw new StatementFormatException("A :61: line after the closing balance :62F:.", reader.Number);
            tagLine = reader.Number;
            value.Clear().Append(rest);
        }
        if (held is not null) yield return held;
        foreach (var (required, name) in new[] { ("20", ":20: (reference)"), ("25", ":25: (account)"), ("60", ":60F: (opening balance)"), ("62", ":62F: (closing balance)") })
            if (!seen.Contains(required)) throw new StatementFormatException($"Missing field {name}.", reader.Number);
    }

    static bool TryTag(string line, out string? tag, out string rest)
    {
        tag = null;
        rest = "";
        if (line.Length < 4 || line[0] != ':') return false;
        var end = line.IndexOf(':', 1);
        if (end is < 3 or > 4) return false;
        var t = line[1..end];
        if (!char.IsAsciiDigit(t[0]) || !char.IsAsciiDigit(t[1]) || (t.Length == 3 && !char.IsAsciiLetterUpper(t[2]))) return false;
        tag = t;
        rest = line[(end + 1)..];
        return true;
    }

    void Field(string tag, string value, int line)
    {
        switch (tag)
        {
            case "20": Header.Reference = Required(value, line, ":20:", 16); break;
            case "25": Header.Account = Required(value, line, ":25:", 35); break;
            case "60F" or "60M":
                var (opening, openingCurrency, _) = Balance(value, line, tag);
                Header.Opening = opening;
                Header.Currency = openingCurrency;
                break;
            case "62F" or "62M":
                var (closing, closingCurrency, date) = Balance(value, line, tag);
                if (closingCurrency != Header.Currency)
                    throw new StatementFormatException($":{tag}: currency {closingCurrency} differs from the opening balance's {Header.Currency}.", line);
                Header.Closing = closing;
                Header.ClosingDate = date;
                Header.ClosingLine = line;
                break;
        }
    }

    static string Required(string value, int line, string field, int lengthMax)
    {
        var v = value.Trim();
        if (v.Length == 0 || v.Length > lengthMax) throw new StatementFormatException($"{field} must have 1-{lengthMax} characters.", line);
        return v;
    }

    /// <summary><c>C|D YYMMDD CCY amount</c>, e.g. <c>C261130IDR1000000,00</c>.</summary>
    (long Amount, string Currency, DateOnly Date) Balance(string value, int line, string tag)
    {
        var v = value.Trim();
        if (v.Length < 11 || v[0] is not ('C' or 'D')) throw new StatementFormatException($":{tag}: must be C|D, YYMMDD, currency and amount.", line);
        var date = Date(v.AsSpan(1, 6), line, tag);
        var currency = v.Substring(7, 3);
        if (!currency.All(char.IsAsciiLetterUpper)) throw new StatementFormatException($":{tag}: currency '{currency}' is not an ISO 4217 code.", line);
        var amount = Amounts.Parse(v.AsSpan(10), ',', scale)
            ?? throw new StatementFormatException($":{tag}: amount '{v[10..]}' is not an amount with at most {scale} decimals.", line);
        return (v[0] == 'D' ? -amount : amount, currency, date);
    }

    ParsedLine ParseLine(string value, int line)
    {
        var newline = value.IndexOf('\n', StringComparison.Ordinal);
        var first = (newline < 0 ? value : value[..newline]).TrimEnd();
        var details = newline < 0 ? null : Clean(value[(newline + 1)..]);
        var s = first.AsSpan();
        if (s.Length < 6) throw new StatementFormatException(":61: is too short: expected YYMMDD and more.", line);
        var valueDate = Date(s[..6], line, "61");
        var p = 6;
        DateOnly? booking = null;
        if (s.Length >= p + 4 && char.IsAsciiDigit(s[p]) && char.IsAsciiDigit(s[p + 1]) && char.IsAsciiDigit(s[p + 2]) && char.IsAsciiDigit(s[p + 3]))
        {
            var month = (s[p] - '0') * 10 + (s[p + 1] - '0');
            var day = (s[p + 2] - '0') * 10 + (s[p + 3] - '0');
            var year = valueDate.Year + (month == 1 && valueDate.Month == 12 ? 1 : month == 12 && valueDate.Month == 1 ? -1 : 0);
            if (month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month))
                throw new StatementFormatException($":61: entry date '{s.Slice(p, 4)}' is not a date (MMDD).", line);
            booking = new DateOnly(year, month, day);
            p += 4;
        }
        int sign;
        if (s[p..].StartsWith("RC")) { sign = -1; p += 2; }
        else if (s[p..].StartsWith("RD")) { sign = 1; p += 2; }
        else if (p < s.Length && s[p] == 'C') { sign = 1; p++; }
        else if (p < s.Length && s[p] == 'D') { sign = -1; p++; }
        else throw new StatementFormatException(":61: needs the mark C, D, RC or RD after the dates.", line);
        if (p < s.Length && char.IsAsciiLetter(s[p])) p++; // funds code (third character of the currency)
        var start = p;
        while (p < s.Length && (char.IsAsciiDigit(s[p]) || s[p] == ',')) p++;
        var amount = Amounts.Parse(s[start..p], ',', scale)
            ?? throw new StatementFormatException($":61: amount '{s[start..p]}' is not an amount with at most {scale} decimals.", line);
        if (amount == 0) throw new StatementFormatException(":61: amount must not be zero.", line);
        if (s.Length < p + 4 || s[p] is not ('N' or 'F' or 'S')) throw new StatementFormatException(":61: needs a transaction type such as NTRF after the amount.", line);
        p += 4;
        var rest = s[p..].ToString();
        var split = rest.IndexOf("//", StringComparison.Ordinal);
        var reference = (split < 0 ? rest : rest[..split]).Trim();
        var bankReference = split < 0 ? null : rest[(split + 2)..].Trim();
        if (reference.Length is 0 or > 16) throw new StatementFormatException(":61: customer reference must have 1-16 characters (NONREF when none).", line);
        if (bankReference is { Length: > 16 }) throw new StatementFormatException(":61: bank reference must have at most 16 characters.", line);
        return new ParsedLine(line, valueDate, booking, sign * amount, reference == "NONREF" ? null : reference,
            string.IsNullOrEmpty(bankReference) ? null : bankReference, details);
    }

    static DateOnly Date(ReadOnlySpan<char> yymmdd, int line, string tag)
    {
        if (!DateOnly.TryParseExact(yymmdd, "yyMMdd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var d))
            throw new StatementFormatException($":{tag}: '{yymmdd}' is not a date (YYMMDD).", line);
        // Two-digit years are this century's.
        return d.Year < 2000 ? d.AddYears(100) : d;
    }

    static string? Clean(string text)
    {
        var t = text.Replace('\n', ' ').Trim();
        return t.Length == 0 ? null : t.Length > 500 ? t[..500] : t;
    }
}
