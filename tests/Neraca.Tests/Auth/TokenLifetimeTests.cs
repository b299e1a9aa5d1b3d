using System.Net;
using System.Net.Http.Headers;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Auth;

/// <summary>Token lifetimes follow the server's clock: the clock that mints tokens is the one that expires them.</summary>
public sealed class TokenLifetimeTests(SqliteServerFixture fixture) : IClassFixture<SqliteServerFixture>
{
    [Fact]
    public async Task A_token_expires_when_the_server_clock_passes_its_lifetime_and_skew_and_a_new_one_works()
    {
        var tenant = await fixture.Server.NewTenantAsync();
        var before = await IssueAsync(tenant);
        using (var user = Bearer(before))
            Assert.Equal(HttpStatusCode.OK, (await user.GetAsync("/v1/ledgers")).StatusCode);

        // 300 s lifetime + 30 s skew: past both by the server's clock, though the wall clock moved a few milliseconds.
        fixture.Clock.Jump(TimeSpan.FromSeconds(331));
        using (var user = Bearer(before))
            (await user.GetJsonAsync("/v1/ledgers")).AssertProblem(401, "unauthorized");

        // Minted after the jump, a token is valid at once: it would be "not yet valid" by a library reading the wall clock.
        using (var user = Bearer(await IssueAsync(tenant)))
            Assert.Equal(HttpStatusCode.OK, (await user.GetAsync("/v1/ledgers")).StatusCode);
    }

    HttpClient Bearer(string token)
    {
        var client = fixture.Server.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    static async Task<string> IssueAsync(TestTenant tenant)
    {
        var (response, body) = await tenant.Http.PostJsonAsync("/v1/auth/tokens", new { subject = "clock-user", scopes = new[] { "ledger:read" } });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (string)body!["access_token"]!;
    }
}
