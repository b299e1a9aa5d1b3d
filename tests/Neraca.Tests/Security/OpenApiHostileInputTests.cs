using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Ledger;

namespace Neraca.Tests.Security;

/// <summary>Hostile input for every operation of the server's own OpenAPI document, so an endpoint added tomorrow is
/// covered without new test code: wrong types, huge and overflowing numbers, huge strings, deep nesting, invalid UTF-8,
/// duplicate keys, 8,001 items, unknown fields, odd ids and query parameters. None may answer 5xx, and a refused request
/// must not change what the tenant has.</summary>
public sealed class OpenApiHostileInputTests(SqliteServerFixture fixture) : IClassFixture<SqliteServerFixture>
{
    static readonly string[] BodyMethods = ["post", "put", "patch"];

    [Fact]
    public async Task No_operation_answers_hostile_bodies_ids_or_parameters_with_a_5xx_or_changes_state_when_refusing()
    {
        var tenant = await fixture.Server.NewTenantAsync();
        var ledger = new LedgerClient(tenant.Http);
        await ledger.LedgerAsync();
        await ledger.AccountAsync("bank", normal: "debit");
        await ledger.AccountAsync("alice");
        Assert.Equal(HttpStatusCode.Created, (await ledger.TransferAsync("seed", "bank", "alice", 1_000)).Response.StatusCode);
        var before = await SnapshotAsync(tenant.Http);

        using var anonymous = fixture.Server.CreateClient();
        var document = (await anonymous.GetJsonAsync("/openapi/v1.json")).Body!;
        var operations = (from path in document["paths"]!.AsObject()
                          from method in path.Value!.AsObject()
                          select (Method: method.Key, Path: path.Key)).ToList();
        Assert.True(operations.Count > 50, $"the OpenAPI document lists only {operations.Count} operations");

        var failures = new List<string>();
        var accepted = new List<string>();
        foreach (var (method, path) in operations)
        {
            foreach (var (name, target) in Targets(path))
            {
                var requests = BodyMethods.Contains(method)
                    // No body, null or {} is a valid request for operations whose body is optional (reverse a transfer).
                    ? Bodies().Where(b => name != "seeded ids" || b.Name is not ("empty object" or "null" or "empty")).Select(b => (Name: $"{name} body {b.Name}", Build: (Func<HttpRequestMessage>)(() => Request(method, target, b.Content()))))
                    : Queries().Select(q => (Name: $"{name} query {q}", Build: (Func<HttpRequestMessage>)(() => Request(method, target + q, null))));
                foreach (var (variant, build) in requests)
                {
                    using var request = build();
                    // Headers only: a stream (server-sent events) answers at once and then stays open.
                    using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(15));
                    HttpResponseMessage response;
                    try { response = await tenant.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, deadline.Token); }
                    catch (OperationCanceledException)
                    {
                        failures.Add($"{method.ToUpperInvariant()} {path} [{variant}]: no answer in 15 s");
                        continue;
                    }
                    using var _ = response;
                    var status = (int)response.StatusCode;
                    if (status >= 500)
                    {
                        var text = await response.Content.ReadAsStringAsync();
                        failures.Add($"{method.ToUpperInvariant()} {path} [{variant}]: {status} {text[..Math.Min(200, text.Length)]}");
                    }
                    else if (status < 300 && method != "get" && method != "head")
                        accepted.Add($"{method.ToUpperInvariant()} {path} [{variant}]: {status}");
                }
            }
        }
        Assert.True(failures.Count == 0, $"{failures.Count} hostile requests answered 5xx:\n" + string.Join('\n', failures.Take(40)));
        // Revoking a subject's tokens takes no body, so any body is fine there; nothing else may accept hostile input.
        var unexpected = accepted.Where(a => !a.StartsWith("POST /v1/auth/subjects/{subject}/revoke ", StringComparison.Ordinal)).ToList();
        Assert.True(unexpected.Count == 0, "hostile requests were accepted:\n" + string.Join('\n', unexpected.Take(40)));
        Assert.Equal(before, await SnapshotAsync(tenant.Http));
        Assert.Equal(1_000, await ledger.PostedAsync("alice"));
        await Conservation.AssertAsync(fixture.Server, tenant.Id);
    }

    static async Task<string> SnapshotAsync(HttpClient http)
    {
        var text = new StringBuilder();
        foreach (var list in new[] { "/v1/ledgers", "/v1/accounts?limit=200", "/v1/transfers?limit=200" })
            text.Append((await http.GetJsonAsync(list)).Body?.ToJsonString()).Append('\n');
        return text.ToString();
    }

    // Each path once with ids that exist (where the seed has them) and once with hostile ids.
    static IEnumerable<(string Name, string Target)> Targets(string path)
    {
        if (!path.Contains('{', StringComparison.Ordinal)) { yield return ("plain", path); yield break; }
        yield return ("seeded ids", Fill(path, p => p switch
        {
            "code" or "ledger" => "wallets",
            "id" when path.StartsWith("/v1/transfers", StringComparison.Ordinal) => "seed",
            _ => "alice",
        }));
        yield return ("long id", Fill(path, _ => new string('x', 2_000)));
        yield return ("odd id", Fill(path, _ => Uri.EscapeDataString("../\u202e%00'\";--\u00e9")));
        yield return ("numeric id", Fill(path, _ => "99999999999999999999999"));
    }

    /// <summary>The OpenAPI path with each <c>{parameter}</c> replaced by <paramref name="value"/> of its name.</summary>
    internal static string Fill(string path, Func<string, string> value) =>
        System.Text.RegularExpressions.Regex.Replace(path, @"\{([^}:]+)(:[^}]*)?\}", m => value(m.Groups[1].Value));

    static string[] Queries() =>
    [
        "", "?limit=-1", "?limit=0", "?limit=99999999999999999999", "?after=%%%garbage", "?after=" + new string('z', 3_000),
        "?from=not-a-date&to=2026-13-45", "?at=yesterday", "?q=" + Uri.EscapeDataString("' OR 1=1 --"), "?status=%FF%FE",
    ];

    static IEnumerable<(string Name, Func<HttpContent> Content)> Bodies()
    {
        yield return ("empty object", () => Json("{}"));
        yield return ("array", () => Json("[]"));
        yield return ("string", () => Json("\"text\""));
        yield return ("null", () => Json("null"));
        yield return ("empty", () => Json(""));
        yield return ("wrong types", () => Json("""{"id":1,"amount":"ten","name":[],"currency":{},"members":"all","status":7,"date":true}"""));
        yield return ("negative", () => Json("""{"id":"neg","amount":-1,"debit_account":"bank","credit_account":"alice","limit":-5}"""));
        yield return ("overflow", () => Json("""{"id":"big","amount":9223372036854775808,"debit_account":"bank","credit_account":"alice"}"""));
        yield return ("huge number", () => Json("""{"amount":1e400,"scale":123456789012345678901234567890}"""));
        yield return ("huge string", () => Json($$"""{"id":"{{new string('a', 200_000)}}","name":"{{new string('b', 200_000)}}"}"""));
        yield return ("deep nesting", () => Json(string.Concat(Enumerable.Repeat("{\"a\":", 300)) + "1" + new string('}', 300)));
        yield return ("invalid utf-8", () =>
        {
            var bytes = Encoding.UTF8.GetBytes("{\"id\":\"x\",\"name\":\"").Concat(new byte[] { 0xC3, 0x28, 0xFF }).Concat(Encoding.UTF8.GetBytes("\"}")).ToArray();
            var content = new ByteArrayContent(bytes);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            return content;
        });
        yield return ("duplicate keys", () => Json("""{"id":"dup","id":"other","amount":1,"amount":2}"""));
        yield return ("8001 items", () => Json("{\"transfers\":[" + string.Join(',', Enumerable.Repeat("{}", 8_001)) + "],\"items\":["
            + string.Join(',', Enumerable.Repeat("{}", 8_001)) + "],\"members\":[" + string.Join(',', Enumerable.Repeat("{}", 8_001)) + "]}"));
        yield return ("8001-item array", () => Json("[" + string.Join(',', Enumerable.Repeat("{}", 8_001)) + "]"));
        yield return ("unknown field", () => Json("""{"zz_unknown_field":1}"""));
        yield return ("text/plain", () => new StringContent("amount=1", Encoding.UTF8, "text/plain"));
        yield return ("csv garbage", () => new StringContent("\"unterminated,\u0000,\r\n,,,", Encoding.UTF8, "text/csv"));
    }

    static StringContent Json(string text) => new(text, Encoding.UTF8, "application/json");

    static HttpRequestMessage Request(string method, string target, HttpContent? content) =>
        new(new HttpMethod(method.ToUpperInvariant()), target) { Content = content };
}
