using System.Net;
using System.Text.RegularExpressions;

namespace Neraca.Tests.Web;

/// <summary>A browser without a browser: keeps cookies by hand (so the test sees every Set-Cookie) and posts the
/// server-rendered forms with their hidden fields (antiforgery token, form name).</summary>
public sealed partial class WebFormsClient(Uri baseAddress) : IDisposable
{
    readonly HttpClient _http = new(new HttpClientHandler { UseCookies = false, AllowAutoRedirect = false }) { BaseAddress = baseAddress };
    public Dictionary<string, string> Cookies { get; } = new(StringComparer.Ordinal);
    public List<string> SetCookies { get; } = [];

    public async Task<(HttpResponseMessage Response, string Body)> GetAsync(string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        return await SendAsync(request);
    }

    /// <summary>Posts a form of
    /// <paramref name="page"/> with its hidden fields, plus <paramref name="fields"/>.</summary>
    public async Task<(HttpResponseMessage Response, string Body)> PostFormAsync(string path, string page, IDictionary<string, string> fields,
        bool withHiddenFields = true)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        if (withHiddenFields)
            foreach (Match m in HiddenInput().Matches(page))
                values.TryAdd(WebUtility.HtmlDecode(m.Groups["name"].Value), WebUtility.HtmlDecode(m.Groups["value"].Value));
        foreach (var (k, v) in fields) values[k] = v;
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new FormUrlEncodedContent(values) };
        return await SendAsync(request);
    }

    async Task<(HttpResponseMessage, string)> SendAsync(HttpRequestMessage request)
    {
        if (Cookies.Count > 0) request.Headers.Add("Cookie", string.Join("; ", Cookies.Select(c => $"{c.Key}={c.Value}")));
        var response = await _http.SendAsync(request);
        if (response.Headers.TryGetValues("Set-Cookie", out var set))
            foreach (var cookie in set)
            {
                SetCookies.Add(cookie);
                var pair = cookie.Split(';')[0];
                var eq = pair.IndexOf('=', StringComparison.Ordinal);
                var (name, value) = (pair[..eq], pair[(eq + 1)..]);
                if (value.Length == 0 || cookie.Contains("expires=Thu, 01 Jan 1970", StringComparison.OrdinalIgnoreCase)) Cookies.Remove(name);
                else Cookies[name] = value;
            }
        return (response, await response.Content.ReadAsStringAsync());
    }

    public string? SetCookie(string name) => SetCookies.LastOrDefault(c => c.StartsWith(name + "=", StringComparison.Ordinal));

    public void Dispose() => _http.Dispose();

    [GeneratedRegex("""<input type="hidden" name="(?<name>[^"]+)" value="(?<value>[^"]*)"\s*/?>""")]
    private static partial Regex HiddenInput();
}
