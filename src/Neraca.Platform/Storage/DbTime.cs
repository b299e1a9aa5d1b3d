using System.Globalization;

namespace Neraca.Storage;

/// <summary>Times as the two stores return them: PostgreSQL gives <see cref="DateTime"/> (UTC) for timestamptz,
/// SQLite gives the text Microsoft.Data.Sqlite wrote. Ledger tables use integer microseconds instead.</summary>
public static class DbTime
{
    public static DateTimeOffset? FromDb(object? value) => value switch
    {
        null or DBNull => null,
        DateTimeOffset d => d.ToUniversalTime(),
        DateTime d => new DateTimeOffset(DateTime.SpecifyKind(d, DateTimeKind.Utc)),
        string s => DateTimeOffset.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal).ToUniversalTime(),
        _ => throw new InvalidCastException($"Cannot read a time from {value.GetType().Name}."),
    };

    /// <summary>Microseconds since the Unix epoch: the ledger's time unit on both stores.</summary>
    public static long ToMicros(DateTimeOffset t) => (t.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10;

    public static DateTimeOffset FromMicros(long micros) => new(DateTimeOffset.UnixEpoch.UtcTicks + micros * 10, TimeSpan.Zero);
}

/// <summary>Identifiers the server makes: a type prefix and a ULID (sortable by creation time).</summary>
public static class Ids
{
    public const int LengthMax = 64;

    public static string NewUlid() => Ulid.NewUlid().ToString();

    /// <summary>Client-chosen ids: 1-64 characters of <c>A-Z a-z 0-9 . _ : -</c>.</summary>
    public static bool IsValid(string? id)
    {
        if (id is null || id.Length is 0 or > LengthMax) return false;
        foreach (var c in id)
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or ':' or '-')) return false;
        return true;
    }
}
