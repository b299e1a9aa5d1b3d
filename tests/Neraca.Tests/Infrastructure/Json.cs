using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Neraca.Tests.Infrastructure;

/// <summary>Small helpers so tests read like the HTTP contract they check.</summary>
public static class Http
{
    public static async Task<(HttpResponseMessage Response, JsonNode? Body)> PostJsonAsync(this HttpClient client, string path, object body, string? idempotencyKey = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        if (idempotencyKey is not null) request.Headers.Add("Idempotency-Key", idempotencyKey);
        var response = await client.SendAsync(request);
        return (response, await ReadAsync(response));
    }

    public static async Task<(HttpResponseMessage Response, JsonNode? Body)> PostRawAsync(this HttpClient client, string path, string body, string contentType = "application/json")
    {
        // Expect: 100-continue lets the server refuse an oversized body before the client sends it, instead of
        // racing the client's upload against the 413 (a broken pipe on the client side).
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, contentType) };
        request.Headers.ExpectContinue = true;
        var response = await client.SendAsync(request);
        return (response, await ReadAsync(response));
    }

    public static async Task<(HttpResponseMessage Response, JsonNode? Body)> GetJsonAsync(this HttpClient client, string path)
    {
        var response = await client.GetAsync(path);
        return (response, await ReadAsync(response));
    }

    /// <summary>The event feed's <c>data</c> once it holds at least <paramref name="count"/> events. On PostgreSQL the
    /// feed serves an event once every older transaction in the cluster has ended (other tests' included), so a
    /// just-committed event can take a moment to appear.</summary>
    public static async Task<JsonArray> EventsAsync(this HttpClient client, string query, int count) =>
        await Polling.Eventually(async () => (await client.GetJsonAsync("/v1/events" + query)).Body!["data"]!.AsArray(),
            events => events.Count >= count, $"the feed serving {count} event(s) for '{query}'");

    public static async Task<JsonNode?> ReadAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        if (text.Length == 0) return null;
        try { return JsonNode.Parse(text); }
        catch (JsonException) { return JsonValue.Create(text); }
    }

    /// <summary>Asserts a problem+json response with the given status and code.</summary>
    public static void AssertProblem(this (HttpResponseMessage Response, JsonNode? Body) result, int status, string code)
    {
        Assert.True((int)result.Response.StatusCode == status, $"expected {status} {code}, got {(int)result.Response.StatusCode}: {result.Body?.ToJsonString()}");
        Assert.Equal("application/problem+json", result.Response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(code, (string?)result.Body?["code"]);
    }
}
