using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Neraca.Auth;
using Neraca.Events;
using Neraca.Hosting;
using Neraca.Ledger;
using Neraca.Storage;
using Neraca.Tenancy;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Ledger;

namespace Neraca.Tests.Security;

/// <summary>Regression tests for the findings of the hostile-tenant probe (issue 23), on both stores.</summary>
public abstract class HostileTenantTests(ServerFixture fixture)
{
    NeracaServer Server => fixture.Server;

    async Task<(TestTenant Tenant, LedgerClient L)> FundedAsync()
    {
        var tenant = await Server.NewTenantAsync();
        var l = new LedgerClient(tenant.Http);
        await l.LedgerAsync();
        await l.AccountAsync("bank", normal: "debit");
        await l.AccountAsync("alice");
        return (tenant, l);
    }

    async Task<TestTenant> KeyOfAsync(TestTenant tenant, params string[] scopes)
    {
        var key = ApiKey.Generate();
        await Server.Services.GetRequiredService<TenantStore>().AddKeyAsync(tenant.Id, "k", key, scopes, null, CancellationToken.None);
        return tenant with { ApiKey = key, Http = Server.CreateClient(key) };
    }

    // ---------------- finding 3: duplicate and case-variant JSON keys ----------------

    [Fact]
    public async Task Duplicate_json_property_is_refused_with_400()
    {
        var (_, l) = await FundedAsync();
        var r = await l.Http.PostRawAsync("/v1/transfers", """{"id":"dup","debit_account":"bank","credit_account":"alice","amount":1,"amount":1000000}""");
        r.AssertProblem(400, "duplicate_field");
        Assert.True(r.Body!["errors"]!.AsObject().ContainsKey("amount"), r.Body.ToJsonString());
        (await l.Http.PostRawAsync("/v1/accounts", """{"id":"carol","ledger":"wallets","normal_balance":"credit","metadata":{"tier":"a","tier":"b"}}"""))
            .AssertProblem(400, "duplicate_field");
        (await l.Http.PostRawAsync("/v1/ledgers", """{"code":"x","code":"y","asset":"IDR","scale":2}""")).AssertProblem(400, "duplicate_field");
        Assert.Equal(0L, await l.PostedAsync("alice"));
        (await l.Http.GetJsonAsync("/v1/transfers/dup")).AssertProblem(404, "transfer_not_found");
    }

    [Fact]
    public async Task Case_variant_json_property_is_refused()
    {
        var (_, l) = await FundedAsync();
        var r = await l.Http.PostRawAsync("/v1/transfers", """{"id":"case","debit_account":"bank","credit_account":"alice","amount":1,"AMOUNT":777}""");
        r.AssertProblem(400, "validation_failed");
        Assert.True(r.Body!["errors"]!.AsObject().ContainsKey("AMOUNT"), r.Body.ToJsonString());
        (await l.Http.PostRawAsync("/v1/transfers", """{"id":"case","Debit_Account":"bank","credit_account":"alice","amount":5}""")).AssertProblem(400, "validation_failed");
        Assert.Equal(0L, await l.PostedAsync("alice"));
    }

    // ---------------- finding 2: secrets in the idempotency store, headers ----------------

    async Task<List<string>> StoredResponsesAsync(string tenantId)
    {
        await using var c = await Server.Services.GetRequiredService<Database>().OpenAsync(CancellationToken.None);
        var rows = await c.QueryAsync<(string Key, byte[]? Body, string? Headers)>(
            "SELECT key, response_body, response_headers FROM idempotency_keys WHERE tenant_id = @t", new { t = tenantId });
        return rows.Select(r => r.Key + "\n" + (r.Body is null ? "" : Encoding.UTF8.GetString(r.Body)) + "\n" + r.Headers).ToList();
    }

    [Fact]
    public async Task Idempotent_replay_of_api_key_creation_does_not_store_the_secret()
    {
        var admin = await Server.NewTenantAsync();
        var first = await admin.Http.PostJsonAsync("/v1/api-keys", new { name = "ci", scopes = new[] { "ledger:read" } }, idempotencyKey: "create-key-1");
        Assert.Equal(HttpStatusCode.Created, first.Response.StatusCode);
        var key = (string)first.Body!["key"]!;
        Assert.StartsWith("nrc_", key, StringComparison.Ordinal);
        Assert.True(first.Response.Headers.CacheControl?.NoStore, "a response with a secret must say Cache-Control: no-store");

        var stored = Assert.Single(await StoredResponsesAsync(admin.Id));
        Assert.DoesNotContain(key, stored, StringComparison.Ordinal);
        Assert.DoesNotContain(key[10..], stored, StringComparison.Ordinal); // not even the part after the display prefix
        Assert.DoesNotContain("\"key\"", stored, StringComparison.Ordinal);
        Assert.Contains((string)first.Body!["id"]!, stored, StringComparison.Ordinal);

        var again = await admin.Http.PostJsonAsync("/v1/api-keys", new { name = "ci", scopes = new[] { "ledger:read" } }, idempotencyKey: "create-key-1");
        again.AssertProblem(409, "idempotent_replay_unavailable");
        Assert.DoesNotContain(key[10..], again.Body!.ToJsonString(), StringComparison.Ordinal);
        Assert.Equal($"/v1/api-keys/{first.Body!["id"]}", (string)again.Body!["location"]!);

        var rotated = await admin.Http.PostJsonAsync($"/v1/api-keys/{first.Body!["id"]}/rotate", new { overlap_seconds = 0 }, idempotencyKey: "rotate-1");
        Assert.Equal(HttpStatusCode.Created, rotated.Response.StatusCode);
        Assert.True(rotated.Response.Headers.CacheControl?.NoStore);
        var rotatedKey = (string)rotated.Body!["key"]!;
        Assert.All(await StoredResponsesAsync(admin.Id), s => Assert.DoesNotContain(rotatedKey[10..], s, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Idempotent_replay_of_token_and_webhook_creation_does_not_store_the_secret()
    {
        var admin = await Server.NewTenantAsync();
        var tokens = await admin.Http.PostJsonAsync("/v1/auth/tokens", new { subject = "user-1", scopes = new[] { "ledger:read" } }, idempotencyKey: "tok-1");
        Assert.Equal(HttpStatusCode.Created, tokens.Response.StatusCode);
        Assert.True(tokens.Response.Headers.CacheControl?.NoStore);
        var webhook = await admin.Http.PostJsonAsync("/v1/webhooks", new { url = "https://93.184.215.14/hook", event_types = new[] { "*" } }, idempotencyKey: "wh-1");
        Assert.Equal(HttpStatusCode.Created, webhook.Response.StatusCode);
        Assert.True(webhook.Response.Headers.CacheControl?.NoStore);

        var stored = await StoredResponsesAsync(admin.Id);
        Assert.Equal(2, stored.Count);
        foreach (var secret in new[] { (string)tokens.Body!["refresh_token"]!, (string)tokens.Body!["access_token"]!, (string)webhook.Body!["secret"]! })
            Assert.All(stored, s => Assert.DoesNotContain(secret, s, StringComparison.Ordinal));
        Assert.All(stored, s => Assert.DoesNotContain("nrt_", s, StringComparison.Ordinal));
        Assert.All(stored, s => Assert.DoesNotContain("whsec_", s, StringComparison.Ordinal));

        (await admin.Http.PostJsonAsync("/v1/webhooks", new { url = "https://93.184.215.14/hook", event_types = new[] { "*" } }, idempotencyKey: "wh-1"))
            .AssertProblem(409, "idempotent_replay_unavailable");
        // A response without a secret has neither no-store nor the refusal.
        var ledger = await admin.Http.GetAsync("/v1/ledgers");
        Assert.NotEqual(true, ledger.Headers.CacheControl?.NoStore);
    }

    [Fact]
    public async Task Every_response_says_nosniff()
    {
        var tenant = await Server.NewTenantAsync();
        using var anonymous = Server.CreateClient();
        foreach (var response in new[]
                 {
                     await anonymous.GetAsync("/health/live"), await anonymous.GetAsync("/v1/ledgers"), await tenant.Http.GetAsync("/v1/ledgers"),
                     await tenant.Http.GetAsync("/v1/nope"), (await tenant.Http.PostRawAsync("/v1/ledgers", "{")).Response,
                 })
            Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
    }

    // ---------------- finding 7: Idempotency-Key scoped per caller ----------------

    [Fact]
    public async Task Idempotency_key_is_scoped_per_caller()
    {
        var tenant = await Server.NewTenantAsync();
        var other = await KeyOfAsync(tenant, Scopes.WebhooksWrite);
        var mine = await tenant.Http.PostJsonAsync("/v1/webhooks", new { url = "https://93.184.215.14/a", event_types = new[] { "*" } }, idempotencyKey: "same");
        Assert.Equal(HttpStatusCode.Created, mine.Response.StatusCode);
        // Another caller of the same tenant with the same key runs its own request: it neither sees the first
        // response nor is refused as a reuse of someone else's key.
        var theirs = await other.Http.PostJsonAsync("/v1/webhooks", new { url = "https://93.184.215.14/b", event_types = new[] { "*" } }, idempotencyKey: "same");
        Assert.Equal(HttpStatusCode.Created, theirs.Response.StatusCode);
        Assert.NotEqual((string)mine.Body!["id"]!, (string)theirs.Body!["id"]!);
        (await tenant.Http.PostJsonAsync("/v1/webhooks", new { url = "https://93.184.215.14/b", event_types = new[] { "*" } }, idempotencyKey: "same"))
            .AssertProblem(422, "idempotency_key_reused");
    }

    // ---------------- finding 5: audit verification on demand ----------------

    [Fact]
    public async Task Audit_endpoint_needs_operator_scope()
    {
        var (tenant, l) = await FundedAsync();
        Assert.Equal(HttpStatusCode.Created, (await l.TransferAsync("t1", "bank", "alice", 5)).Response.StatusCode);
        var reader = await KeyOfAsync(tenant, Scopes.LedgerRead, Scopes.LedgerWrite, Scopes.EventsRead, Scopes.WebhooksWrite);
        (await reader.Http.GetJsonAsync("/v1/ledgers/wallets/audit")).AssertProblem(403, "insufficient_scope");
        var auditor = await KeyOfAsync(tenant, Scopes.AuditRead);
        var ok = await auditor.Http.GetJsonAsync("/v1/ledgers/wallets/audit");
        Assert.Equal(HttpStatusCode.OK, ok.Response.StatusCode);
        Assert.True((bool)ok.Body!["verified"]!);
        (await auditor.Http.GetJsonAsync("/v1/ledgers")).AssertProblem(403, "insufficient_scope");
        // End users never get it.
        (await tenant.Http.PostJsonAsync("/v1/auth/tokens", new { subject = "u", scopes = new[] { "audit:read" } })).AssertProblem(400, "validation_failed");
    }

    [Fact]
    public async Task Audit_endpoint_verifies_from_the_checkpoint_and_detects_a_rewritten_chain()
    {
        var (tenant, l) = await FundedAsync();
        for (var i = 0; i < 3; i++) Assert.Equal(HttpStatusCode.Created, (await l.TransferAsync($"t{i}", "bank", "alice", 5)).Response.StatusCode);
        var database = Server.Services.GetRequiredService<Database>();
        await using var c = await database.OpenAsync(CancellationToken.None);
        var ledgerId = (string)(await l.Http.GetJsonAsync("/v1/ledgers/wallets")).Body!["id"]!;
        // What the hourly checkpoint job records.
        await c.ExecuteAsync("""
            INSERT INTO audit_checkpoints (tenant_id, ledger_id, link, head, last_seq, recorded_at_us)
            SELECT tenant_id, ledger_id, last_link, head, last_seq, 0 FROM ledger_heads WHERE tenant_id = @t AND ledger_id = @l
            """, new { t = tenant.Id, l = ledgerId });
        Assert.Equal(HttpStatusCode.Created, (await l.TransferAsync("after-checkpoint", "bank", "alice", 5)).Response.StatusCode);
        var audit = (await l.Http.GetJsonAsync("/v1/ledgers/wallets/audit")).Body!;
        Assert.True((bool)audit["verified"]!, audit.ToJsonString());
        Assert.Equal(4L, (long)audit["links"]!);
        Assert.Equal(audit.ToJsonString(), (await l.Http.GetJsonAsync("/v1/ledgers/wallets/audit")).Body!.ToJsonString()); // same head: remembered

        // Rewriting the chain (every hash recomputed to hide an edit) no longer matches the checkpoint.
        await TamperAsync(c, database.Kind, "UPDATE chain_links SET hash = @h WHERE tenant_id = @t AND link = 3", tenant.Id, new byte[32]);
        Assert.Equal(HttpStatusCode.Created, (await l.TransferAsync("next", "bank", "alice", 5)).Response.StatusCode);
        audit = (await l.Http.GetJsonAsync("/v1/ledgers/wallets/audit")).Body!;
        Assert.False((bool)audit["verified"]!, audit.ToJsonString());
        Assert.False((await Server.Services.GetRequiredService<AuditChain>().VerifyAsync(tenant.Id, ledgerId, CancellationToken.None)).Verified);
    }

    static async Task TamperAsync(System.Data.Common.DbConnection c, StoreKind kind, string sql, string tenantId, byte[] h)
    {
        if (kind == StoreKind.Postgres)
        {
            await c.ExecuteAsync("SET session_replication_role = replica");
            await c.ExecuteAsync(sql, new { t = tenantId, h });
            await c.ExecuteAsync("SET session_replication_role = origin");
            return;
        }
        var triggers = (await c.QueryAsync<(string Name, string Sql)>("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")).ToList();
        foreach (var t in triggers) await c.ExecuteAsync($"DROP TRIGGER {t.Name}");
        await c.ExecuteAsync(sql, new { t = tenantId, h });
        foreach (var t in triggers) await c.ExecuteAsync(t.Sql);
    }

    // ---------------- finding 6: feed cursors reveal nothing of other tenants ----------------

    [Fact]
    public async Task Event_feed_cursor_reveals_nothing_and_is_bound_to_the_tenant()
    {
        var (mine, _) = await FundedAsync();
        var (theirs, _) = await FundedAsync();
        await mine.Http.EventsAsync("", 2); // both account.created events are served before the paging starts
        var page = await mine.Http.GetJsonAsync("/v1/events?limit=1");
        Assert.Equal(HttpStatusCode.OK, page.Response.StatusCode);
        var cursor = (string)page.Body!["next_cursor"]!;
        Assert.False(FeedCursor.TryParse(cursor, out _), cursor); // no sequence numbers or transaction ids in clear
        Assert.DoesNotMatch("^[0-9.]+$", cursor);
        var rest = await mine.Http.GetJsonAsync("/v1/events?after=" + cursor);
        Assert.Equal(HttpStatusCode.OK, rest.Response.StatusCode);
        Assert.Single(rest.Body!["data"]!.AsArray()); // gap-free: the other account.created event
        (await theirs.Http.GetJsonAsync("/v1/events?after=" + cursor)).AssertProblem(400, "invalid_cursor");
        var edited = cursor[..^2] + (cursor[^2] == 'A' ? 'B' : 'A') + cursor[^1];
        (await mine.Http.GetJsonAsync("/v1/events?after=" + edited)).AssertProblem(400, "invalid_cursor");
        using var stream = new HttpRequestMessage(HttpMethod.Get, "/v1/events/stream");
        stream.Headers.Add("Last-Event-ID", cursor);
        using var refused = await theirs.Http.SendAsync(stream);
        (refused, await Http.ReadAsync(refused)).AssertProblem(400, "invalid_cursor");
    }

    // ---------------- finding 7: invalid cursors, unknown sessions, binding errors ----------------

    [Fact]
    public async Task Invalid_cursor_is_400_on_every_list()
    {
        var (tenant, l) = await FundedAsync();
        var webhook = await tenant.Http.PostJsonAsync("/v1/webhooks", new { url = "https://93.184.215.14/hook", event_types = new[] { "*" } });
        var lists = new[]
        {
            "/v1/ledgers", "/v1/accounts", "/v1/accounts/alice/entries", "/v1/transfers", "/v1/api-keys", "/v1/jobs", "/v1/events",
            $"/v1/webhooks/{webhook.Body!["id"]}/deliveries",
        };
        foreach (var list in lists)
            foreach (var bad in new[] { "!!!", "A", "%00", "nonsense-cursor" })
                (await tenant.Http.GetJsonAsync($"{list}?after={bad}")).AssertProblem(400, "invalid_cursor");
        // Well-formed base64 that holds no key of that list.
        (await l.Http.GetJsonAsync("/v1/accounts/alice/entries?after=" + Cursor.Encode("abc"))).AssertProblem(400, "invalid_cursor");
        (await l.Http.GetJsonAsync("/v1/transfers?after=" + Cursor.Encode("no-colon"))).AssertProblem(400, "invalid_cursor");
        (await l.Http.GetJsonAsync("/v1/accounts?after=" + Cursor.Encode("alice"))).Response.EnsureSuccessStatusCode();
        foreach (var list in lists) // an empty after is no cursor: the first page
            Assert.Equal(HttpStatusCode.OK, (await tenant.Http.GetAsync($"{list}?after=")).StatusCode);
    }

    [Fact]
    public async Task Jwt_with_unknown_session_is_refused()
    {
        var tenant = await Server.NewTenantAsync();
        var key = await Server.Services.GetRequiredService<SigningKeys>().GetAsync(CancellationToken.None);
        string Token(string session) => new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = "neraca",
            Audience = "neraca-api",
            Expires = DateTime.UtcNow.AddMinutes(5),
            Claims = new Dictionary<string, object> { ["sub"] = "user-1", ["tid"] = tenant.Id, ["sid"] = session, ["scope"] = "ledger:read" },
            SigningCredentials = new SigningCredentials(key, SecurityAlgorithms.HmacSha256),
        });
        using var unknown = Server.CreateClient();
        unknown.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token("ses_01NEVERISSUED0000000000000"));
        (await unknown.GetJsonAsync("/v1/ledgers")).AssertProblem(401, "unauthorized");

        // The same token with a session the server did issue is accepted: the refusal is about the session only.
        var issued = await tenant.Http.PostJsonAsync("/v1/auth/tokens", new { subject = "user-1", scopes = new[] { "ledger:read" } });
        var sid = new JsonWebToken((string)issued.Body!["access_token"]!).GetClaim("sid").Value;
        using var known = Server.CreateClient();
        known.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token(sid));
        Assert.Equal(HttpStatusCode.OK, (await known.GetAsync("/v1/ledgers")).StatusCode);
    }

    [Fact]
    public async Task Binding_errors_say_what_is_expected_without_dotnet_type_names()
    {
        var (_, l) = await FundedAsync();
        var r = await l.Http.GetJsonAsync("/v1/accounts/alice/entries?from=yesterday");
        r.AssertProblem(400, "validation_failed");
        Assert.Contains("RFC 3339", (string)r.Body!["errors"]!["from"]![0]!, StringComparison.Ordinal);
        var text = r.Body.ToJsonString();
        Assert.DoesNotContain("Nullable", text, StringComparison.Ordinal);
        Assert.DoesNotContain("DateTimeOffset", text, StringComparison.Ordinal);
        var limit = await l.Http.GetJsonAsync("/v1/transfers?limit=ten");
        limit.AssertProblem(400, "validation_failed");
        Assert.Contains("integer", (string)limit.Body!["errors"]!["limit"]![0]!, StringComparison.Ordinal);
        Assert.DoesNotContain("Int32", limit.Body.ToJsonString(), StringComparison.Ordinal);
    }
}

public sealed class SqliteHostileTenantTests(SqliteServerFixture fixture) : HostileTenantTests(fixture), IClassFixture<SqliteServerFixture>;

public sealed class PostgresHostileTenantTests(PostgresServerFixture fixture) : HostileTenantTests(fixture), IClassFixture<PostgresServerFixture>;

/// <summary>Store-independent findings: the SSRF guard's address classes, SSE slots per tenant.</summary>
public sealed class HostileTenantProcessTests
{
    [Theory]
    [InlineData("::127.0.0.1")]          // IPv4-compatible loopback ([::127.0.0.1] in a URL)
    [InlineData("::7f00:1")]
    [InlineData("::10.0.0.1")]           // IPv4-compatible private
    [InlineData("::ffff:127.0.0.1")]     // IPv4-mapped
    [InlineData("::ffff:169.254.169.254")]
    [InlineData("::ffff:0:127.0.0.1")]   // SIIT IPv4-translated
    [InlineData("2002:7f00:1::")]        // 6to4 of 127.0.0.1
    [InlineData("2002:7f00:0001:0:0:0:0:1")]
    [InlineData("2002:a00:1::1")]        // 6to4 of 10.0.0.1
    [InlineData("2002:a9fe:a9fe::")]     // 6to4 of the cloud metadata address
    [InlineData("64:ff9b::7f00:1")]      // NAT64 of 127.0.0.1
    [InlineData("64:ff9b::8.8.8.8")]     // NAT64 at all: the translator reaches whatever it is given
    [InlineData("64:ff9b:1::a00:1")]     // local-use NAT64
    [InlineData("2001:0:4136:e378:8000:63bf:80ff:fffe")] // Teredo (client 127.0.0.1 obfuscated)
    [InlineData("2001::1")]
    [InlineData("::1")]
    [InlineData("::")]
    [InlineData("fe80::1")]
    [InlineData("fc00::1")]
    [InlineData("fd12:3456::1")]
    [InlineData("fec0::1")]
    [InlineData("ff02::1")]
    [InlineData("100::1")]               // discard-only
    [InlineData("2001:db8::1")]
    [InlineData("3fff::1")]
    public async Task Ssrf_guard_refuses_ipv6_forms_of_loopback(string address)
    {
        Assert.False(WebhookTargets.IsPublic(System.Net.IPAddress.Parse(address)), address);
        Assert.NotNull(await WebhookTargets.ProblemWithAsync($"http://[{address}]/hook", allowPrivate: false, CancellationToken.None));
    }

    [Theory]
    [InlineData("2606:4700:4700::1111")]
    [InlineData("2a00:1450:4001:82a::200e")]
    [InlineData("2002:808:808::1")]      // 6to4 of 8.8.8.8
    [InlineData("::ffff:8.8.8.8")]
    [InlineData("8.8.8.8")]
    public void Ssrf_guard_still_allows_public_addresses(string address) =>
        Assert.True(WebhookTargets.IsPublic(System.Net.IPAddress.Parse(address)), address);

    [Fact]
    public async Task Webhook_host_names_are_not_metric_labels()
    {
        await using var receiver = await Observability.TestHttpReceiver.StartAsync();
        await using var server = await NeracaServer.StartAsync(await TestStores.NewDatabaseAsync(StoreKind.Sqlite),
            [.. Events.EventsTestKit.FastWorkerArgs]);
        var tenant = await server.NewTenantAsync();
        var host = "localhost";
        var created = await tenant.Http.PostJsonAsync("/v1/webhooks", new { url = $"http://{host}:{receiver.Port}/tenant-secret-path", event_types = new[] { "*" } });
        Assert.Equal(HttpStatusCode.Created, created.Response.StatusCode);
        var l = new LedgerClient(tenant.Http);
        await l.LedgerAsync();
        await l.AccountAsync("alice");
        await receiver.NextAsync(TimeSpan.FromSeconds(30));
        using var scraper = server.CreateClient();
        string text = "";
        for (var attempt = 0; attempt < 50 && !text.Contains("http_client_request_duration_seconds", StringComparison.Ordinal); attempt++)
        {
            await Task.Delay(100);
            text = await scraper.GetStringAsync("/metrics");
        }
        Assert.Contains("http_client_request_duration_seconds", text, StringComparison.Ordinal);
        // Outgoing metrics only: Kestrel's own listening address (server_address of the server itself) is no tenant data.
        var outgoing = text.Split('\n').Where(line => line.StartsWith("http_client_", StringComparison.Ordinal) || line.StartsWith("dns_", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(outgoing);
        var labelled = outgoing.Where(line => line.Contains("server_address", StringComparison.Ordinal) || line.Contains("dns_question_name", StringComparison.Ordinal)
            || line.Contains($"\"{host}\"", StringComparison.Ordinal)).ToList();
        Assert.True(labelled.Count == 0, string.Join('\n', labelled.Take(5)));
        Assert.DoesNotContain("tenant-secret-path", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sse_slots_are_limited_per_tenant()
    {
        await using var server = await NeracaServer.StartAsync(await TestStores.NewDatabaseAsync(StoreKind.Sqlite),
            "--Events:StreamConnectionsPerTenantMax=2", "--Events:StreamConnectionsMax=10");
        var greedy = await server.NewTenantAsync();
        var other = await server.NewTenantAsync();
        var open = new List<HttpResponseMessage>();
        try
        {
            for (var i = 0; i < 2; i++)
            {
                var stream = await greedy.Http.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/v1/events/stream"), HttpCompletionOption.ResponseHeadersRead);
                Assert.Equal(HttpStatusCode.OK, stream.StatusCode);
                open.Add(stream);
            }
            using var third = await greedy.Http.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/v1/events/stream"), HttpCompletionOption.ResponseHeadersRead);
            (third, await Http.ReadAsync(third)).AssertProblem(503, "too_many_streams");
            var theirs = await other.Http.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/v1/events/stream"), HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.OK, theirs.StatusCode);
            open.Add(theirs);
        }
        finally
        {
            foreach (var r in open) r.Dispose();
        }
        // Closed streams give their slots back.
        HttpStatusCode status = 0;
        for (var attempt = 0; attempt < 50 && status != HttpStatusCode.OK; attempt++)
        {
            using var again = await greedy.Http.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/v1/events/stream"), HttpCompletionOption.ResponseHeadersRead);
            status = again.StatusCode;
            if (status != HttpStatusCode.OK) await Task.Delay(100);
        }
        Assert.Equal(HttpStatusCode.OK, status);
    }
}
