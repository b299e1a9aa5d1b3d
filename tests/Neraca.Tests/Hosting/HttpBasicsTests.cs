using System.Net;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Hosting;

public sealed class HttpBasicsTests(SqliteServerFixture fixture) : IClassFixture<SqliteServerFixture>
{
    HttpClient Anonymous => fixture.Server.CreateClient();

    [Fact]
    public async Task Health_endpoints_answer_and_ready_checks_the_database()
    {
        var live = await Anonymous.GetJsonAsync("/health/live");
        Assert.Equal(HttpStatusCode.OK, live.Response.StatusCode);
        var ready = await Anonymous.GetJsonAsync("/health/ready");
        Assert.Equal(HttpStatusCode.OK, ready.Response.StatusCode);
        Assert.Equal("healthy", (string?)ready.Body!["checks"]!["database"]!["status"]);
    }

    [Fact]
    public async Task OpenApi_document_and_reference_page_are_served()
    {
        var doc = await Anonymous.GetJsonAsync("/openapi/v1.json");
        Assert.Equal(HttpStatusCode.OK, doc.Response.StatusCode);
        Assert.NotNull(doc.Body!["openapi"]);
        var page = await Anonymous.GetAsync("/docs/");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("text/html", page.Content.Headers.ContentType?.MediaType, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_route_is_problem_not_found()
    {
        var tenant = await fixture.Server.NewTenantAsync();
        (await tenant.Http.GetJsonAsync("/v1/no-such-thing")).AssertProblem(404, "not_found");
        (await Anonymous.GetJsonAsync("/nothing-here")).AssertProblem(404, "not_found");
    }

    [Fact]
    public async Task Wrong_method_is_problem_method_not_allowed()
    {
        var response = await Anonymous.DeleteAsync("/health/live");
        (response, await Http.ReadAsync(response)).AssertProblem(405, "method_not_allowed");
    }

    [Fact]
    public async Task Request_id_is_echoed_when_given_and_generated_otherwise()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/health/live");
        request.Headers.Add("X-Request-Id", "my-request-42");
        var given = await Anonymous.SendAsync(request);
        Assert.Equal("my-request-42", given.Headers.GetValues("X-Request-Id").Single());

        var generated = await Anonymous.GetAsync("/health/live");
        Assert.StartsWith("req_", generated.Headers.GetValues("X-Request-Id").Single(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Problem_responses_carry_the_request_id()
    {
        var result = await Anonymous.GetJsonAsync("/v1/whatever");
        Assert.Equal(result.Response.Headers.GetValues("X-Request-Id").Single(), (string?)result.Body!["request_id"]);
    }

    [Fact]
    public async Task Request_without_key_is_401_problem()
    {
        (await Anonymous.GetJsonAsync("/v1/ledgers")).AssertProblem(401, "unauthorized");
    }

    [Fact]
    public async Task Wrong_key_does_not_reveal_whether_the_tenant_exists()
    {
        var tenant = await fixture.Server.NewTenantAsync();
        var almost = tenant.ApiKey[..^1] + (tenant.ApiKey[^1] == 'a' ? 'b' : 'a');
        var wrongKey = await fixture.Server.CreateClient(almost).GetJsonAsync("/v1/ledgers");
        var unknown = await fixture.Server.CreateClient("nrc_thisKeyBelongsToNobodyAtAll000000000000").GetJsonAsync("/v1/ledgers");
        var malformed = await fixture.Server.CreateClient("not-a-key").GetJsonAsync("/v1/ledgers");
        foreach (var r in new[] { wrongKey, unknown, malformed })
        {
            r.AssertProblem(401, "unauthorized");
            Assert.Equal(unknown.Body!["detail"]!.ToString(), r.Body!["detail"]!.ToString());
        }
    }
}
