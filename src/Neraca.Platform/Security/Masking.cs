namespace Neraca.Security;

/// <summary>How personal and bank data appears in lists, logs and audit records: enough to recognise, not to use.</summary>
public static class Masking
{
    /// <summary><c>1234567890</c> → <c>******7890</c>: only the last <paramref name="visible"/> characters.</summary>
    public static string Tail(string? value, int visible = 4)
    {
        if (string.IsNullOrEmpty(value)) return "";
        if (value.Length <= visible) return new string('*', value.Length);
        return new string('*', value.Length - visible) + value[^visible..];
    }

    /// <summary><c>Budi Santoso</c> → <c>B*** S******</c>: each word's first letter.</summary>
    public static string Name(string? value) =>
        string.IsNullOrEmpty(value) ? "" : string.Join(' ', value.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(w => w[0] + new string('*', w.Length - 1)));

    /// <summary><c>budi@example.co.id</c> → <c>b***@example.co.id</c>.</summary>
    public static string Email(string? value)
    {
        if (string.IsNullOrEmpty(value)) return "";
        var at = value.IndexOf('@', StringComparison.Ordinal);
        return at <= 0 ? Tail(value) : value[0] + new string('*', Math.Max(3, at - 1)) + value[at..];
    }
}
