using System.Net;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Auth;

public abstract class ApiKeysApiTests(ServerFixture fixture)
{
    NeracaServer Server => fixture.Server;

    [Fact]
    public async Task Created_key_is_shown_once_listed_without_it_and_works_with_its_scopes_only()
    {
        var admin = await Server.NewTenantAsync();
        var (created, body) = await admin.Http.PostJsonAsync("/v1/api-keys", new { name = "reporting", scopes = new[] { "ledger:read" } });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var key = (string)body!["key"]!;
        Assert.StartsWith("nrc_", key, StringComparison.Ordinal);
        Assert.Equal("active", (string)body["status"]!);
        Assert.Equal(["ledger:read"], body["scopes"]!.AsArray().Select(s => (string)s!));

        var (_, list) = await admin.Http.GetJsonAsync("/v1/api-keys");
        var listed = list!["data"]!.AsArray().Single(k => (string)k!["id"]! == (string)body["id"]!)!;
        Assert.Null(listed["key"]);
        Assert.Equal(key[..10], (string)listed["prefix"]!);

        using var reader = Server.CreateClient(key);
        Assert.Equal(HttpStatusCode.OK, (await reader.GetAsync("/v1/ledgers")).StatusCode);
        (await reader.PostJsonAsync("/v1/ledgers", new { code = "x", asset = "IDR", scale = 2 })).AssertProblem(403, "insufficient_scope");
        (await reader.GetJsonAsync("/v1/api-keys")).AssertProblem(403, "insufficient_scope");
    }

    [Fact]
    public async Task Revoked_key_is_refused_at_once_and_revoking_again_is_harmless()
    {
        var admin = await Server.NewTenantAsync();
        var (_, body) = await admin.Http.PostJsonAsync("/v1/api-keys", new { name = "temp", scopes = new[] { "ledger:read" } });
        using var client = Server.CreateClient((string)body!["key"]!);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/ledgers")).StatusCode);

        var (revoked, info) = await admin.Http.PostJsonAsync($"/v1/api-keys/{(string)body["id"]!}/revoke", new { });
        Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        Assert.Equal("revoked", (string)info!["status"]!);
        (await client.GetJsonAsync("/v1/ledgers")).AssertProblem(401, "unauthorized");
        Assert.Equal(HttpStatusCode.OK, (await admin.Http.PostJsonAsync($"/v1/api-keys/{(string)body["id"]!}/revoke", new { })).Response.StatusCode);
        (await admin.Http.PostJsonAsync("/v1/api-keys/key_nope/revoke", new { })).AssertProblem(404, "api_key_not_found");
    }

    [Fact]
    public async Task Rotation_keeps_the_old_key_working_during_the_overlap_only()
    {
        var admin = await Server.NewTenantAsync();
        var (_, first) = await admin.Http.PostJsonAsync("/v1/api-keys", new { name = "svc", scopes = new[] { "ledger:read", "ledger:write" } });
        var firstId = (string)first!["id"]!;
        using var oldClient = Server.CreateClient((string)first["key"]!);

        var (rotated, second) = await admin.Http.PostJsonAsync($"/v1/api-keys/{firstId}/rotate", new { overlap_seconds = 600 });
        Assert.Equal(HttpStatusCode.Created, rotated.StatusCode);
        Assert.Equal("svc", (string)second!["name"]!);
        Assert.Equal(["ledger:read", "ledger:write"], second["scopes"]!.AsArray().Select(s => (string)s!));
        Assert.Equal(firstId, (string)second["replaces"]!["id"]!);
        Assert.NotNull(second["replaces"]!["expires_at"]);
        using var newClient = Server.CreateClient((string)second["key"]!);
        Assert.Equal(HttpStatusCode.OK, (await oldClient.GetAsync("/v1/ledgers")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await newClient.GetAsync("/v1/ledgers")).StatusCode);

        // No overlap: the old key stops at once.
        var (_, third) = await admin.Http.PostJsonAsync($"/v1/api-keys/{(string)second["id"]!}/rotate", new { overlap_seconds = 0 });
        (await newClient.GetJsonAsync("/v1/ledgers")).AssertProblem(401, "unauthorized");
        using var thirdClient = Server.CreateClient((string)third!["key"]!);
        Assert.Equal(HttpStatusCode.OK, (await thirdClient.GetAsync("/v1/ledgers")).StatusCode);
        (await admin.Http.PostJsonAsync($"/v1/api-keys/{(string)second["id"]!}/rotate", new { })).AssertProblem(409, "api_key_inactive");
    }

    [Fact]
    public async Task Key_past_its_expiry_is_refused_and_bad_requests_name_the_field()
    {
        var admin = await Server.NewTenantAsync();
        var r = await admin.Http.PostJsonAsync("/v1/api-keys", new { name = "", scopes = new[] { "root" }, expires_at = fixture.Clock.UtcNow.AddMinutes(-1) });
        r.AssertProblem(400, "validation_failed");
        var errors = r.Body!["errors"]!.AsObject();
        Assert.True(errors.ContainsKey("name") && errors.ContainsKey("scopes") && errors.ContainsKey("expires_at"), errors.ToJsonString());

        var (_, body) = await admin.Http.PostJsonAsync("/v1/api-keys", new { name = "soon", scopes = new[] { "admin" }, expires_at = fixture.Clock.UtcNow.AddSeconds(2) });
        using var client = Server.CreateClient((string)body!["key"]!);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/api-keys")).StatusCode);
        fixture.Clock.Jump(TimeSpan.FromSeconds(3)); // past expires_at on the server's clock
        (await client.GetJsonAsync("/v1/api-keys")).AssertProblem(401, "unauthorized");
    }

    [Fact]
    public async Task Keys_list_in_pages_of_one_tenant_only()
    {
        var admin = await Server.NewTenantAsync();
        var other = await Server.NewTenantAsync();
        for (var i = 0; i < 4; i++) await admin.Http.PostJsonAsync("/v1/api-keys", new { name = $"k{i}", scopes = new[] { "ledger:read" } });
        var seen = new List<string>();
        string? cursor = null;
        do
        {
            var (_, page) = await admin.Http.GetJsonAsync("/v1/api-keys?limit=2" + (cursor is null ? "" : "&after=" + cursor));
            seen.AddRange(page!["data"]!.AsArray().Select(k => (string)k!["name"]!));
            cursor = (string?)page["next_cursor"];
        } while (cursor is not null);
        Assert.Equal(["test", "k0", "k1", "k2", "k3"], seen);
        var (_, theirs) = await other.Http.GetJsonAsync("/v1/api-keys");
        Assert.Equal(["test"], theirs!["data"]!.AsArray().Select(k => (string)k!["name"]!));
        (await admin.Http.GetJsonAsync("/v1/api-keys?limit=1000")).AssertProblem(400, "validation_failed");
    }
}

public sealed class SqliteApiKeysApiTests(SqliteServerFixture fixture) : ApiKeysApiTests(fixture), IClassFixture<SqliteServerFixture>;

public sealed class PostgresApiKeysApiTests(PostgresServerFixture fixture) : ApiKeysApiTests(fixture), IClassFixture<PostgresServerFixture>;
