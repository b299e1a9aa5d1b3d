namespace Neraca.Web.Text;

/// <summary>The languages of the web app. The chosen one is kept in the <c>neraca_lang</c> cookie; without it the
/// browser's <c>Accept-Language</c> decides (Indonesian when it prefers <c>id</c>), else English.</summary>
public enum Language
{
    English,
    Indonesian,
}

public static class Languages
{
    public const string CookieName = "neraca_lang";

    /// <summary>The BCP 47 tag shown in <c>&lt;html lang&gt;</c> and kept in the cookie.</summary>
    public static string Tag(this Language language) => language == Language.Indonesian ? "id" : "en";

    public static Language? Parse(string? tag) => tag switch
    {
        "id" or "id-ID" => Language.Indonesian,
        "en" or "en-US" or "en-GB" => Language.English,
        _ => null,
    };

    public static Language Of(HttpContext? context)
    {
        if (context is null) return Language.English;
        if (Parse(context.Request.Cookies[CookieName]) is { } chosen) return chosen;
        foreach (var value in context.Request.GetTypedHeaders().AcceptLanguage.OrderByDescending(l => l.Quality ?? 1))
        {
            var tag = value.Value.Value ?? "";
            if (tag.StartsWith("id", StringComparison.OrdinalIgnoreCase)) return Language.Indonesian;
            if (tag.StartsWith("en", StringComparison.OrdinalIgnoreCase)) return Language.English;
        }
        return Language.English;
    }
}
