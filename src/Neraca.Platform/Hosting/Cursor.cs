using System.Globalization;
using System.Text;

namespace Neraca.Hosting;

/// <summary>Opaque pagination cursors (base64url of the last key of the page). A cursor that does not decode is refused
/// with 400 <c>invalid_cursor</c> (through <see cref="InvalidCursorException"/>) on every list: silently restarting
/// from the beginning would make a client walk the same pages forever.</summary>
public static class Cursor
{
    public const int LengthMax = 1024;

    public static string Encode(string key) => Convert.ToBase64String(Encoding.UTF8.GetBytes(key)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>The key inside <paramref name="cursor"/>, or null when there is none (start at the beginning).</summary>
    /// <exception cref="InvalidCursorException">The text is not a cursor this server wrote.</exception>
    public static string? Decode(string? cursor, string parameter = "after")
    {
        if (string.IsNullOrEmpty(cursor)) return null; // ?after= with nothing: the first page, as before
        if (cursor.Length > LengthMax) throw new InvalidCursorException(parameter);
        var s = cursor.Replace('-', '+').Replace('_', '/');
        if (s.Length % 4 == 1) throw new InvalidCursorException(parameter);
        s += new string('=', (4 - s.Length % 4) % 4);
        byte[] bytes;
        try { bytes = Convert.FromBase64String(s); }
        catch (FormatException) { throw new InvalidCursorException(parameter); }
        try { return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes); }
        catch (DecoderFallbackException) { throw new InvalidCursorException(parameter); }
    }

    /// <summary>A cursor holding a non-negative integer key (0 when absent).</summary>
    public static long DecodeLong(string? cursor, string parameter = "after") =>
        Decode(cursor, parameter) is not { } key ? 0
        : long.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n
        : throw new InvalidCursorException(parameter);
}

/// <summary>A list was given a cursor it did not return; answered as 400 <c>invalid_cursor</c>.</summary>
public sealed class InvalidCursorException(string parameter)
    : Exception($"'{parameter}' is not a cursor this list returned.")
{
    public string Parameter { get; } = parameter;
}
