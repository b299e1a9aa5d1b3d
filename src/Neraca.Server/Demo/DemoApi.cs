using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Neraca.Demo;

/// <summary>A request of the demo that the server refused: the demo stops and names it.</summary>
public sealed class DemoException(string message) : Exception(message);

/// <summary>The demo's HTTP client of the products' own API: JSON in snake_case, a fixed <c>Idempotency-Key</c> on every
/// POST (the same key and body again replays the first answer), and success checked on every call.</summary>
sealed class DemoApi(HttpClient http)
{
    static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public HttpClient Http => http;

    public Task<JsonNode> PostAsync(string path, object body, string? key) =>
        SendAsync(HttpMethod.Post, path, new StringContent(JsonSerializer.Serialize(body, Json), Encoding.UTF8, "application/json"), key);

    public Task<JsonNode> PostRawAsync(string path, byte[] body, string mediaType, string key)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
        return SendAsync(HttpMethod.Post, path, content, key);
    }

    public Task<JsonNode> PatchAsync(string path, object body) =>
        SendAsync(HttpMethod.Patch, path, new StringContent(JsonSerializer.Serialize(body, Json), Encoding.UTF8, "application/json"), null);

    public Task<JsonNode> GetAsync(string path) => SendAsync(HttpMethod.Get, path, null, null);

    /// <summary>The status and body of a GET, for reads that may answer 404 or 409 while background work finishes.</summary>
    public async Task<(HttpStatusCode Status, JsonNode? Body)> TryGetAsync(string path)
    {
        using var response = await http.GetAsync(path);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text));
    }

    /// <summary>Reads <paramref name="path"/> until <paramref name="done"/> holds (background work: imports, payouts,
    /// closes, statements), for at most <paramref name="timeout"/> of real time; the server's clock follows real time
    /// meanwhile.</summary>
    public async Task<JsonNode> UntilAsync(string path, Func<JsonNode, bool> done, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        JsonNode? last = null;
        while (DateTime.UtcNow < deadline)
        {
            var (status, body) = await TryGetAsync(path);
            if (status == HttpStatusCode.OK && body is not null)
            {
                last = body;
                if (done(body)) return body;
            }
            await Task.Delay(100);
        }
        throw new DemoException($"timed out waiting for {what} (GET {path}: {last?.ToJsonString() ?? "no answer"})");
    }

    async Task<JsonNode> SendAsync(HttpMethod method, string path, HttpContent? content, string? key)
    {
        using var request = new HttpRequestMessage(method, path) { Content = content };
        if (key is not null) request.Headers.Add("Idempotency-Key", "demo:" + key);
        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
            throw new DemoException($"{method} {path} answered {(int)response.StatusCode}: {(text.Length > 1500 ? text[..1500] + "..." : text)}");
        return text.Length == 0 ? new JsonObject() : JsonNode.Parse(text)!;
    }
}
