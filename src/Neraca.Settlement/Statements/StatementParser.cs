using System.Globalization;
using System.Text;

namespace Neraca.Settlement.Statements;

/// <summary>One booked line of a statement, amounts signed in minor units (money in positive).</summary>
internal sealed record ParsedLine(int SourceLine, DateOnly ValueDate, DateOnly? BookingDate, long Amount, string? Reference, string? BankReference, string? Description);

/// <summary>What a statement says about itself; complete once its lines have been read to the end.</summary>
internal sealed class StatementHeader
{
    public string? Reference { get; set; }
    public string? Account { get; set; }
    public string? Currency { get; set; }
    public long? Opening { get; set; }
    public long? Closing { get; set; }
    public DateOnly? ClosingDate { get; set; }
    /// <summary>The source line of the closing balance (where an unbalanced file is reported).</summary>
    public int ClosingLine { get; set; }
}

/// <summary>The file breaks its format: the message names what, <see cref="Line"/> where (1-based), and for XML the element.</summary>
internal sealed class StatementFormatException(string message, int line, string? element = null) : Exception(message)
{
    public int Line { get; } = line;
    public string? Element { get; } = element;
}

/// <summary>A streaming reader of one statement format: lines are produced as the file is read (never all held as text),
/// the header is complete after the last line.</summary>
internal abstract class StatementParser
{
    public const int LineLengthMax = 16 * 1024;

    public StatementHeader Header { get; } = new();

    public abstract string Format { get; }

    public abstract IEnumerable<ParsedLine> ReadLines();
}

/// <summary>Decimal amounts as text to integer minor units, without floating point. The text has digits, at most one
/// decimal separator and at most <c>scale</c> decimals; anything else (or an overflow) is refused.</summary>
internal static class Amounts
{
    public static long? Parse(ReadOnlySpan<char> text, char separator, int scale)
    {
        if (text.IsEmpty) return null;
        long value = 0;
        var decimals = -1;
        var digits = 0;
        try
        {
            foreach (var c in text)
            {
                if (c == separator)
                {
                    if (decimals >= 0) return null;
                    decimals = 0;
                    continue;
                }
                if (!char.IsAsciiDigit(c)) return null;
                if (decimals >= 0 && ++decimals > scale) return null;
                value = checked(value * 10 + (c - '0'));
                digits++;
            }
            if (digits == 0) return null;
            for (var i = Math.Max(decimals, 0); i < scale; i++) value = checked(value * 10);
        }
        catch (OverflowException) { return null; }
        return value;
    }

    /// <summary>With an optional leading '-' (CSV amounts and balances).</summary>
    public static long? ParseSigned(ReadOnlySpan<char> text, char separator, int scale)
    {
        text = text.Trim();
        var negative = text.StartsWith("-");
        if (negative || text.StartsWith("+")) text = text[1..];
        return Parse(text, separator, scale) is { } v ? negative ? -v : v : null;
    }

    public static string Format(long minor, int scale)
    {
        var s = Math.Abs(minor).ToString(CultureInfo.InvariantCulture).PadLeft(scale + 1, '0');
        var text = scale == 0 ? s : s[..^scale] + "." + s[^scale..];
        return minor < 0 ? "-" + text : text;
    }
}

/// <summary>Reads text lines with a length limit, counting them: a file without line breaks cannot make one huge string.</summary>
internal sealed class LineReader(TextReader reader)
{
    readonly StringBuilder _line = new();

    public int Number { get; private set; }

    public string? Next()
    {
        _line.Clear();
        while (true)
        {
            var c = reader.Read();
            if (c < 0)
            {
                if (_line.Length == 0) return null;
                break;
            }
            if (c == '\n') break;
            if (c == '\r')
            {
                if (reader.Peek() == '\n') reader.Read();
                break;
            }
            if (_line.Length >= StatementParser.LineLengthMax)
                throw new StatementFormatException($"Line longer than {StatementParser.LineLengthMax} characters.", Number + 1);
            _line.Append((char)c);
        }
        Number++;
        return _line.ToString();
    }
}
