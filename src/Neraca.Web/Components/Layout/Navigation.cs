using System.Reflection;
using Microsoft.AspNetCore.Components;

namespace Neraca.Web.Components.Layout;

/// <summary>The menu of each area, read once from the pages' <see cref="WebNavAttribute"/> and <c>@page</c> routes.</summary>
public static class Navigation
{
    public sealed record Item(string Href, string TextKey, int Order, string? Scope);

    static readonly Dictionary<string, Item[]> ByArea = typeof(App).Assembly.GetTypes()
        .Select(t => (Nav: t.GetCustomAttribute<WebNavAttribute>(), Route: t.GetCustomAttributes<RouteAttribute>()
            .Select(r => r.Template).FirstOrDefault(template => !template.Contains('{'))))
        .Where(x => x.Nav is not null && x.Route is not null)
        .GroupBy(x => x.Nav!.Area)
        .ToDictionary(g => g.Key, g => g.Select(x => new Item(x.Route!, x.Nav!.TextKey, x.Nav.Order, x.Nav.Scope))
            .OrderBy(i => i.Order).ToArray());

    public static IReadOnlyList<Item> Of(string area) => ByArea.TryGetValue(area, out var items) ? items : [];
}
