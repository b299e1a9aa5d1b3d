using System.Globalization;
using System.Numerics;
using System.Text.RegularExpressions;

namespace Neraca.SplitBill;

/// <summary>ISO 4217 minor units and the strict decimal texts the API accepts (exchange rates, CSV amounts).</summary>
public static partial class Currencies
{
    // ISO 4217 currencies whose minor unit is not 2 decimals. Every other well-formed code has 2 (IDR included).
    static readonly Dictionary<string, int> Exceptions = new(StringComparer.Ordinal)
    {
        ["BIF"] = 0, ["CLP"] = 0, ["DJF"] = 0, ["GNF"] = 0, ["ISK"] = 0, ["JPY"] = 0, ["KMF"] = 0, ["KRW"] = 0, ["PYG"] = 0,
        ["RWF"] = 0, ["UGX"] = 0, ["UYI"] = 0, ["VND"] = 0, ["VUV"] = 0, ["XAF"] = 0, ["XOF"] = 0, ["XPF"] = 0,
        ["BHD"] = 3, ["IQD"] = 3, ["JOD"] = 3, ["KWD"] = 3, ["LYD"] = 3, ["OMR"] = 3, ["TND"] = 3,
        ["CLF"] = 4, ["UYW"] = 4,
    };

    /// <summary>Three upper-case letters.</summary>
    public static bool IsCode(string? code) => code is { Length: 3 } && code.All(char.IsAsciiLetterUpper);

    /// <summary>Decimals of the currency's minor unit.</summary>
    public static int Scale(string code) => Exceptions.TryGetValue(code, out var s) ? s : 2;

    /// <summary>A positive rate written as plain digits with an optional fraction (<c>15400</c>, <c>0.0000649</c>): no
    /// sign, exponent, grouping or spaces; at most 12 integer and 12 fraction digits.</summary>
    public static bool TryParseRate(string? text, out decimal rate)
    {
        rate = 0;
        if (text is null || !RateText().IsMatch(text)) return false;
        if (!decimal.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out rate)) return false;
        return rate > 0;
    }

    [GeneratedRegex(@"^[0-9]{1,12}(\.[0-9]{1,12})?$", RegexOptions.CultureInvariant)]
    private static partial Regex RateText();

    /// <summary>A decimal amount in major units (<c>-12.50</c>, <c>1000</c>) as minor units of a currency with
    /// <paramref name="scale"/> decimals. Refuses more decimals than the currency has, thousands separators, exponents.</summary>
    public static bool TryParseMajor(string? text, int scale, out long minor)
    {
        minor = 0;
        if (string.IsNullOrWhiteSpace(text)) return false;
        var t = text.Trim();
        var negative = t.StartsWith('-');
        if (negative) t = t[1..];
        var m = MajorText().Match(t);
        if (!m.Success) return false;
        var fraction = m.Groups[2].Success ? m.Groups[2].Value : "";
        if (fraction.Length > scale) return false;
        var digits = m.Groups[1].Value + fraction.PadRight(scale, '0');
        if (!BigInteger.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value > long.MaxValue) return false;
        minor = negative ? -(long)value : (long)value;
        return true;
    }

    [GeneratedRegex(@"^([0-9]{1,18})(?:\.([0-9]{1,4}))?$", RegexOptions.CultureInvariant)]
    private static partial Regex MajorText();

    /// <summary>Minor units as a plain decimal in major units (<c>-12.50</c>).</summary>
    public static string FormatMajor(long minor, int scale)
    {
        if (scale == 0) return minor.ToString(CultureInfo.InvariantCulture);
        var abs = BigInteger.Abs(minor);
        var unit = BigInteger.Pow(10, scale);
        var whole = BigInteger.DivRem(abs, unit, out var frac);
        return (minor < 0 ? "-" : "") + whole.ToString(CultureInfo.InvariantCulture) + "." + frac.ToString(CultureInfo.InvariantCulture).PadLeft(scale, '0');
    }
}
