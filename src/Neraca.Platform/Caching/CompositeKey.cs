using System.Globalization;
using System.Text;

namespace Neraca.Caching;

/// <summary>Builds keys out of several parts (tenant, account, subject...) so that two different part lists can never
/// give the same key: every part is written as <c>:LENGTH:PART</c> after a fixed family name, so a part may contain any
/// character, <c>:</c> included. Joining parts with a bare separator let tenant <c>default</c> with account
/// <c>eu:alice</c> read tenant <c>default:eu</c>'s <c>alice</c>. Every cache key, cache version scope and rate-limit
/// bucket name is built here.</summary>
/// <remarks>The result is self-delimiting: a reader can always tell where the last part ends, so appending a suffix
/// after it (such as <c>@version</c>) or prefixing it (such as <c>Redis:KeyPrefix</c>) keeps keys distinct.</remarks>
public static class CompositeKey
{
    /// <summary>Longest family name: families are short constants of the code, never data.</summary>
    const int FamilyLengthMax = 16;

    /// <summary><paramref name="family"/> (a constant such as <c>acct</c>, without <c>:</c>) followed by every part,
    /// length-prefixed.</summary>
    public static string Of(string family, params ReadOnlySpan<string> parts)
    {
        ArgumentException.ThrowIfNullOrEmpty(family);
        if (family.Length > FamilyLengthMax || family.Contains(':', StringComparison.Ordinal) || family.Contains('@', StringComparison.Ordinal))
            throw new ArgumentException($"A key family is a short constant without ':' or '@', not '{family}'.", nameof(family));
        var length = family.Length;
        foreach (var part in parts)
        {
            ArgumentNullException.ThrowIfNull(part, nameof(parts));
            length += part.Length + 12;
        }
        var key = new StringBuilder(family, length);
        foreach (var part in parts)
            key.Append(':').Append(part.Length.ToString(CultureInfo.InvariantCulture)).Append(':').Append(part);
        return key.ToString();
    }
}
