namespace Neraca.Web.Text;

/// <summary>Amounts in minor units shown in the reader's language, at the ledger's scale, with integer arithmetic only:
/// Bahasa Indonesia <c>Rp 1.500.000</c> / <c>Rp 1.500.000,50</c>, English <c>IDR 1,500,000</c> / <c>IDR 1,500,000.50</c>.
/// The fraction is shown only when it is not zero (then with all of the scale's digits).</summary>
public static class Money
{
    public const int ScaleMax = 18;

    public static string Format(long minorUnits, string asset, int scale, Language language)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(scale);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(scale, ScaleMax);
        Int128 value = minorUnits; // Int128: the magnitude of long.MinValue fits
        var negative = value < 0;
        if (negative) value = -value;
        Int128 unit = 1;
        for (var i = 0; i < scale; i++) unit *= 10;
        var whole = value / unit;
        var fraction = value % unit;
        var (group, point) = language == Language.Indonesian ? ('.', ',') : (',', '.');
        var digits = whole.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var text = new System.Text.StringBuilder(digits.Length + digits.Length / 3 + scale + 8);
        if (negative) text.Append('-');
        text.Append(Symbol(asset, language)).Append(' ');
        for (var i = 0; i < digits.Length; i++)
        {
            if (i > 0 && (digits.Length - i) % 3 == 0) text.Append(group);
            text.Append(digits[i]);
        }
        if (fraction != 0)
            text.Append(point).Append(fraction.ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(scale, '0'));
        return text.ToString();
    }

    /// <summary>The rupiah is <c>Rp</c> in Indonesian; other assets (and IDR in English) by their code.</summary>
    static string Symbol(string asset, Language language) => asset == "IDR" && language == Language.Indonesian ? "Rp" : asset;
}
