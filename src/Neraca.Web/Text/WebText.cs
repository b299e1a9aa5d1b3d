using System.Globalization;

namespace Neraca.Web.Text;

/// <summary>The texts, money and times of one request, in the reader's language (<see cref="Languages.Of"/>). Razor
/// components inject it as <c>T</c>: <c>@T["nav.jobs"]</c>, <c>@T.Format("jobs.retried", id)</c>, <c>@T.Money(...)</c>.</summary>
public sealed class WebText(IHttpContextAccessor accessor)
{
    Language? _language;

    public Language Language => _language ??= Languages.Of(accessor.HttpContext);

    /// <summary>The text for <paramref name="key"/>; English when the Indonesian one is missing (a test keeps both
    /// dictionaries complete), the key itself when neither has it, so a slip shows instead of an empty label.</summary>
    public string this[string key] =>
        (Language == Language.Indonesian ? Texts.Indonesian : Texts.English).TryGetValue(key, out var text) ? text
        : Texts.English.TryGetValue(key, out var english) ? english : key;

    public bool Has(string key) => Texts.English.ContainsKey(key);

    public string Format(string key, params object?[] args) => string.Format(CultureInfo.InvariantCulture, this[key], args);

    public string Money(long minorUnits, string asset, int scale) => Text.Money.Format(minorUnits, asset, scale, Language);

    /// <summary>Times are shown in UTC, the way the API returns them, so an operator can match them with logs.</summary>
    public static string Time(DateTimeOffset? at) => at is { } t ? t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture) : "—";

    public string Number(long value) =>
        value.ToString("#,0", CultureInfo.InvariantCulture).Replace(",", Language == Language.Indonesian ? "." : ",", StringComparison.Ordinal);
}
