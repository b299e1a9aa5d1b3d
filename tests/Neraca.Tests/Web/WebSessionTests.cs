using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Tests.Infrastructure;
using Neraca.Web.Sessions;

namespace Neraca.Tests.Web;

/// <summary>The web app's sessions, forms and assets over plain HTTP: cookie flags, what a cookie holds, revocation,
/// CSRF refusal, replicas sharing sessions, one-time sign-in codes, fingerprinted assets cached for a year.</summary>
public sealed partial class WebSessionTests(SqliteServerFixture fixture) : IClassFixture<SqliteServerFixture>
{
    NeracaServer Server => fixture.Server;

    static async Task<WebFormsClient> SignedInAsync(Uri server, string key, WebFormsClient? client = null)
    {
        client ??= new WebFormsClient(server);
        var (_, page) = await client.GetAsync("/operator/sign-in");
        var (response, _) = await client.PostFormAsync("/operator/sign-in", page, new Dictionary<string, string> { ["Form.ApiKey"] = key });
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/operator", PathOf(response.Headers.Location));
        return client;
    }

    [Fact]
    public async Task Operator_cookie_is_httponly_strict_scoped_to_the_console_and_does_not_hold_the_api_key()
    {
        var tenant = await Server.NewTenantAsync();
        using var client = await SignedInAsync(Server.BaseAddress, tenant.ApiKey);
        var cookie = client.SetCookie(WebAuth.OperatorCookie);
        Assert.NotNull(cookie);
        var attributes = cookie.ToLowerInvariant();
        Assert.Contains("httponly", attributes, StringComparison.Ordinal);
        Assert.Contains("samesite=strict", attributes, StringComparison.Ordinal);
        Assert.Contains("path=/operator", attributes, StringComparison.Ordinal);
        Assert.DoesNotContain("secure", attributes, StringComparison.Ordinal); // plain HTTP here; HTTPS requests get Secure
        var value = client.Cookies[WebAuth.OperatorCookie];
        Assert.DoesNotContain(tenant.ApiKey["nrc_".Length..][..16], value, StringComparison.Ordinal);
        Assert.DoesNotContain(tenant.Id, value, StringComparison.Ordinal);
        var (home, body) = await client.GetAsync("/operator");
        Assert.Equal(HttpStatusCode.OK, home.StatusCode);
        Assert.Contains(tenant.Id, body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Revoking_the_api_key_ends_its_console_sessions_at_once()
    {
        var tenant = await Server.NewTenantAsync();
        var created = await tenant.Http.PostJsonAsync("/v1/api-keys", new { name = "console", scopes = new[] { "admin" } });
        Assert.Equal(HttpStatusCode.Created, created.Response.StatusCode);
        using var client = await SignedInAsync(Server.BaseAddress, (string)created.Body!["key"]!);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/operator/jobs")).Response.StatusCode);

        var revoked = await tenant.Http.PostJsonAsync($"/v1/api-keys/{(string)created.Body!["id"]!}/revoke", new { });
        Assert.True(revoked.Response.IsSuccessStatusCode, revoked.Response.StatusCode.ToString());
        var (after, _) = await client.GetAsync("/operator/jobs");
        Assert.Equal(HttpStatusCode.Redirect, after.StatusCode);
        Assert.StartsWith("/operator/sign-in", PathOf(after.Headers.Location), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_wrong_key_is_refused_with_its_problem_code_and_sets_no_session()
    {
        using var client = new WebFormsClient(Server.BaseAddress);
        var (_, page) = await client.GetAsync("/operator/sign-in");
        var (response, body) = await client.PostFormAsync("/operator/sign-in", page,
            new Dictionary<string, string> { ["Form.ApiKey"] = "nrc_" + new string('x', 40) });
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("invalid_api_key", body, StringComparison.Ordinal);
        Assert.Null(client.SetCookie(WebAuth.OperatorCookie));
    }

    [Fact]
    public async Task Forms_posted_without_their_antiforgery_token_are_refused()
    {
        var tenant = await Server.NewTenantAsync();
        using var client = new WebFormsClient(Server.BaseAddress);
        var (_, page) = await client.GetAsync("/operator/sign-in");
        var fields = new Dictionary<string, string> { ["_handler"] = "operator-sign-in", ["Form.ApiKey"] = tenant.ApiKey };
        var (signIn, _) = await client.PostFormAsync("/operator/sign-in", page, fields, withHiddenFields: false);
        Assert.Equal(HttpStatusCode.BadRequest, signIn.StatusCode);
        Assert.Null(client.SetCookie(WebAuth.OperatorCookie));
        var (language, _) = await client.PostFormAsync("/language", page, new Dictionary<string, string> { ["lang"] = "id", ["return"] = "/" }, withHiddenFields: false);
        Assert.Equal(HttpStatusCode.BadRequest, language.StatusCode);

        // A token from another visitor (another antiforgery cookie) is refused too.
        using var other = new WebFormsClient(Server.BaseAddress);
        var (_, otherPage) = await other.GetAsync("/operator/sign-in");
        var (crossed, _) = await client.PostFormAsync("/operator/sign-in", otherPage, new Dictionary<string, string> { ["Form.ApiKey"] = tenant.ApiKey });
        Assert.Equal(HttpStatusCode.BadRequest, crossed.StatusCode);
    }

    [Fact]
    public async Task A_session_and_a_form_token_from_one_replica_are_accepted_by_another()
    {
        var tenant = await Server.NewTenantAsync();
        await using var replica = await NeracaServer.StartAsync(fixture.AdminDatabase, "--role", "api");
        using var client = await SignedInAsync(Server.BaseAddress, tenant.ApiKey);
        using var onReplica = new WebFormsClient(replica.BaseAddress);
        foreach (var (name, value) in client.Cookies) onReplica.Cookies[name] = value;
        var (home, body) = await onReplica.GetAsync("/operator");
        Assert.Equal(HttpStatusCode.OK, home.StatusCode);
        Assert.Contains(tenant.Id, body, StringComparison.Ordinal);

        // The sign-in form rendered by the first replica, posted to the second.
        using var visitor = new WebFormsClient(Server.BaseAddress);
        var (_, page) = await visitor.GetAsync("/operator/sign-in");
        using var same = new WebFormsClient(replica.BaseAddress);
        foreach (var (name, value) in visitor.Cookies) same.Cookies[name] = value;
        var (signIn, _) = await same.PostFormAsync("/operator/sign-in", page, new Dictionary<string, string> { ["Form.ApiKey"] = tenant.ApiKey });
        Assert.Equal(HttpStatusCode.Redirect, signIn.StatusCode);
    }

    [Fact]
    public async Task Sign_in_codes_need_an_admin_key_carry_only_end_user_scopes_and_work_once()
    {
        var tenant = await Server.NewTenantAsync();
        (await tenant.Http.PostJsonAsync("/v1/web/sign-in-codes", new { })).AssertProblem(400, "validation_failed");
        (await tenant.Http.PostJsonAsync("/v1/web/sign-in-codes", new { subject = "u1", scopes = new[] { "admin" } })).AssertProblem(400, "validation_failed");
        (await tenant.Http.PostJsonAsync("/v1/web/sign-in-codes", new { subject = "u1", unknown = 1 })).AssertProblem(400, "validation_failed");
        var reader = await Server.NewTenantAsync(Neraca.Tenancy.Scopes.LedgerRead);
        (await reader.Http.PostJsonAsync("/v1/web/sign-in-codes", new { subject = "u1" })).AssertProblem(403, "insufficient_scope");
        (await Server.CreateClient().PostJsonAsync("/v1/web/sign-in-codes", new { subject = "u1" })).AssertProblem(401, "unauthorized");

        var created = await tenant.Http.PostJsonAsync("/v1/web/sign-in-codes", new { subject = "u1", scopes = new[] { "ledger:read", "banking:read" } });
        Assert.Equal(HttpStatusCode.Created, created.Response.StatusCode);
        Assert.Contains("no-store", created.Response.Headers.CacheControl?.ToString() ?? "", StringComparison.Ordinal);
        var code = (string)created.Body!["code"]!;
        Assert.StartsWith(SignInCodes.Prefix, code, StringComparison.Ordinal);
        Assert.Equal("/app/sign-in?code=" + code, (string)created.Body!["url"]!);

        var codes = Server.Services.GetRequiredService<SignInCodes>();
        var redeemed = await codes.RedeemAsync(code, CancellationToken.None);
        Assert.NotNull(redeemed);
        Assert.Equal((tenant.Id, "u1"), (redeemed.TenantId, redeemed.Subject));
        Assert.Equal("ledger:read banking:read", redeemed.Tokens.Scope);
        Assert.Null(await codes.RedeemAsync(code, CancellationToken.None));
    }

    [Fact]
    public async Task Revoking_the_subjects_sessions_signs_the_browser_out()
    {
        var tenant = await Server.NewTenantAsync();
        var created = await tenant.Http.PostJsonAsync("/v1/web/sign-in-codes", new { subject = "u2" });
        using var client = new WebFormsClient(Server.BaseAddress);
        var (_, page) = await client.GetAsync((string)created.Body!["url"]!);
        var (redeemed, _) = await client.PostFormAsync("/app/sign-in", page, new Dictionary<string, string> { ["Form.Code"] = (string)created.Body!["code"]! });
        Assert.Equal(HttpStatusCode.Redirect, redeemed.StatusCode);
        var cookie = client.SetCookie(WebAuth.UserCookie)!.ToLowerInvariant();
        Assert.Contains("httponly", cookie, StringComparison.Ordinal);
        Assert.Contains("samesite=strict", cookie, StringComparison.Ordinal);
        Assert.Contains("path=/app", cookie, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/app")).Response.StatusCode);

        var revoked = await tenant.Http.PostJsonAsync("/v1/auth/subjects/u2/revoke", new { });
        Assert.Equal(1, (int)revoked.Body!["revoked"]!);
        var (after, _) = await client.GetAsync("/app");
        Assert.Equal(HttpStatusCode.Redirect, after.StatusCode);
        Assert.StartsWith("/app/sign-in", PathOf(after.Headers.Location), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Retrying_a_job_through_the_api_takes_only_dead_jobs_of_the_callers_tenant()
    {
        var tenant = await Server.NewTenantAsync();
        var other = await Server.NewTenantAsync();
        // A type no worker knows stays queued: never dead, so it cannot be retried.
        var queued = await Server.Services.GetRequiredService<Neraca.Jobs.JobStore>().EnqueueAsync(
            new Neraca.Jobs.JobRequest(tenant.Id, "web_test.unknown"), CancellationToken.None);
        (await tenant.Http.PostJsonAsync($"/v1/jobs/{queued.JobId}/retry", new { })).AssertProblem(409, "job_not_dead");
        (await other.Http.PostJsonAsync($"/v1/jobs/{queued.JobId}/retry", new { })).AssertProblem(404, "job_not_found");
        (await tenant.Http.PostJsonAsync("/v1/jobs/job_nope/retry", new { })).AssertProblem(404, "job_not_found");
    }

    [Fact]
    public async Task Static_assets_are_fingerprinted_and_cached_for_a_year()
    {
        using var client = new WebFormsClient(Server.BaseAddress);
        var (_, html) = await client.GetAsync("/");
        var assets = Asset().Matches(html).Select(m => m.Groups["path"].Value).ToList();
        Assert.Equal(3, assets.Count); // stylesheet, icon, script
        foreach (var path in assets)
        {
            var (response, body) = await client.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.NotEmpty(body);
            Assert.Equal("public, max-age=31536000, immutable", response.Headers.CacheControl?.ToString());
        }
        var (page, _) = await client.GetAsync("/operator/sign-in");
        Assert.Contains("no-store", page.Headers.CacheControl?.ToString() ?? "", StringComparison.Ordinal);
        Assert.StartsWith("default-src 'self'", page.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
    }

    static string PathOf(Uri? location) => location is null ? "" : location.IsAbsoluteUri ? location.PathAndQuery : location.OriginalString;

    [GeneratedRegex("""(?:href|src)="(?<path>/_content/Neraca\.Web/[a-z]+\.[a-z0-9]+\.(?:css|js|svg))" """)]
    private static partial Regex Asset();
}
