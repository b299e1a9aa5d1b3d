using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Ledger;
using Neraca.Events;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Events;

/// <summary>A server with the worker role, fast retries and loopback receivers allowed.</summary>
public abstract class EventsServerFixture(StoreKind kind) : IAsyncLifetime
{
    NeracaServer? _server;

    public NeracaServer Server => _server ?? throw new InvalidOperationException("fixture not started");

    /// <summary>The server's clock: jump it forward instead of sleeping until a retry or timeout is due.</summary>
    public TestClock Clock { get; } = new();

    public async ValueTask InitializeAsync() => _server = await StartAsync(kind);

    protected virtual async Task<NeracaServer> StartAsync(StoreKind store) =>
        await NeracaServer.StartAsync(await TestStores.NewDatabaseAsync(store), Clock.Time, EventsTestKit.FastWorkerArgs);

    public async ValueTask DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
        Clock.Dispose();
    }
}

public sealed class PostgresEventsServerFixture() : EventsServerFixture(StoreKind.Postgres);

public sealed class SqliteEventsServerFixture() : EventsServerFixture(StoreKind.Sqlite);

/// <summary>PostgreSQL with the server connected as the application role (see <see cref="LeastPrivilege"/>).</summary>
public sealed class PostgresAppRoleEventsServerFixture() : EventsServerFixture(StoreKind.Postgres)
{
    protected override async Task<NeracaServer> StartAsync(StoreKind store) =>
        await NeracaServer.StartAsync((await LeastPrivilege.CreateMigratedDatabaseAsync()).App, Clock.Time, [.. LeastPrivilege.AppServerArgs, .. EventsTestKit.FastWorkerArgs]);
}

public abstract class WebhookDeliveryTests(EventsServerFixture fixture)
{
    NeracaServer Server => fixture.Server;

    static async Task<(string Id, string Secret)> RegisterAsync(TestTenant tenant, string url, params string[] types)
    {
        var created = await tenant.Http.PostJsonAsync("/v1/webhooks", new { url, event_types = types.Length == 0 ? ["*"] : types });
        Assert.Equal(HttpStatusCode.Created, created.Response.StatusCode);
        return ((string)created.Body!["id"]!, (string)created.Body!["secret"]!);
    }

    [Fact]
    public async Task Receiver_failing_three_times_gets_the_event_on_the_fourth_attempt_with_a_valid_signature()
    {
        var tenant = await Server.NewTenantAsync();
        await using var receiver = await WebhookReceiver.StartAsync();
        receiver.Respond = r => Task.FromResult(r.Attempt <= 3 ? 500 : 200);
        var (webhookId, secret) = await RegisterAsync(tenant, receiver.Url);

        var eventId = (await EventsTestKit.AppendAsync(Server, tenant.Id, (LedgerEventTypes.TransferPosted.Name, "trf_1")))[0];

        await Polling.Eventually(() => receiver.Accepted.Contains(eventId), "the event was never accepted");
        var requests = receiver.Requests.Where(r => r.EventId == eventId).ToList();
        Assert.Equal(4, requests.Count);
        var fourth = requests[3];
        Assert.True(WebhookSignature.Verify(secret, fourth.Signature, fourth.RawBody, DateTimeOffset.UtcNow, WebhookSignature.ToleranceDefault));
        Assert.False(WebhookSignature.Verify("whsec_wrong", fourth.Signature, fourth.RawBody, DateTimeOffset.UtcNow, WebhookSignature.ToleranceDefault));
        // Verified independently of the helper: HMAC-SHA256(secret, "t.body") as documented.
        var parts = fourth.Signature!.Split(',').ToDictionary(p => p.Split('=')[0], p => p.Split('=')[1]);
        var expected = Convert.ToHexStringLower(System.Security.Cryptography.HMACSHA256.HashData(
            System.Text.Encoding.UTF8.GetBytes(secret), System.Text.Encoding.UTF8.GetBytes(parts["t"] + "." + fourth.Body)));
        Assert.Equal(expected, parts["v1"]);
        var body = JsonNode.Parse(fourth.Body)!;
        Assert.Equal(eventId, (string?)body["id"]);
        Assert.Equal(LedgerEventTypes.TransferPosted.Name, (string?)body["type"]);
        Assert.Equal("trf_1", (string?)body["data"]!["id"]);

        await Polling.Eventually(async () =>
        {
            var list = await tenant.Http.GetJsonAsync($"/v1/webhooks/{webhookId}/deliveries");
            return (string?)list.Body!["data"]![0]!["state"] == "delivered";
        }, "the delivery was not recorded as delivered");
        var deliveries = await tenant.Http.GetJsonAsync($"/v1/webhooks/{webhookId}/deliveries");
        var delivery = deliveries.Body!["data"]![0]!;
        Assert.Equal(4, (int)delivery["attempt_count"]!);
        var attempts = delivery["attempts"]!.AsArray();
        Assert.Equal([500, 500, 500, 200], attempts.Select(a => (int)a!["status_code"]!));
        Assert.Equal("receiver says no", (string?)attempts[0]!["response_body"]);
    }

    [Fact]
    public async Task Always_failing_receiver_ends_in_the_dead_letter_queue_and_the_gauge_shows_it_then_replay_delivers()
    {
        var tenant = await Server.NewTenantAsync();
        await using var receiver = await WebhookReceiver.StartAsync();
        var failing = true;
        receiver.Respond = _ => Task.FromResult(Volatile.Read(ref failing) ? 503 : 200);
        var (webhookId, _) = await RegisterAsync(tenant, receiver.Url, "transfer.*");

        var ids = await EventsTestKit.AppendAsync(Server, tenant.Id, (LedgerEventTypes.TransferPosted.Name, "trf_a"), (LedgerEventTypes.TransferVoided.Name, "trf_b"));

        await Polling.Eventually(async () =>
        {
            var dead = await tenant.Http.GetJsonAsync($"/v1/webhooks/{webhookId}/deliveries?state=dead");
            return dead.Body!["data"]!.AsArray().Count == 2;
        }, "the deliveries did not reach the dead-letter queue");
        Assert.Equal(8, receiver.Requests.Count); // 4 attempts each, then no more
        await Polling.Eventually(() => EventsTestKit.ReadGauge(Server, "neraca.webhook.dead_letters") >= 2,
            "the dead-letter gauge did not show the dead letters");

        Volatile.Write(ref failing, false);
        var replay = await tenant.Http.PostJsonAsync($"/v1/webhooks/{webhookId}/dead-letters/replay", new { });
        Assert.Equal(HttpStatusCode.OK, replay.Response.StatusCode);
        Assert.Equal(2, (long)replay.Body!["replayed"]!);
        await Polling.Eventually(() => ids.All(receiver.Accepted.Contains), "replayed dead letters were not delivered");

        // A single delivery can be sent again on request, too.
        var delivered = await tenant.Http.GetJsonAsync($"/v1/webhooks/{webhookId}/deliveries?state=delivered");
        await Polling.Eventually(async () =>
        {
            delivered = await tenant.Http.GetJsonAsync($"/v1/webhooks/{webhookId}/deliveries?state=delivered");
            return delivered.Body!["data"]!.AsArray().Count == 2;
        }, "the replayed deliveries were not recorded as delivered");
        var deliveryId = (string)delivered.Body!["data"]![0]!["id"]!;
        var before = receiver.Requests.Count;
        var retry = await tenant.Http.PostJsonAsync($"/v1/webhooks/{webhookId}/deliveries/{deliveryId}/retry", new { });
        Assert.Equal(HttpStatusCode.Accepted, retry.Response.StatusCode);
        await Polling.Eventually(() => receiver.Requests.Count > before, "the retried delivery was not sent");
        (await tenant.Http.PostJsonAsync($"/v1/webhooks/{webhookId}/deliveries/whd_nope/retry", new { })).AssertProblem(404, "delivery_not_found");
    }

    [Fact]
    public async Task Deliveries_of_one_subject_arrive_in_event_order_even_when_the_first_needs_retries()
    {
        var tenant = await Server.NewTenantAsync();
        await using var receiver = await WebhookReceiver.StartAsync();
        // The first event (payload n = 0) fails twice before it is accepted; the later ones of its subject must wait.
        receiver.Respond = r => Task.FromResult((int)JsonNode.Parse(r.Body)!["data"]!["n"]! == 0 && r.Attempt <= 2 ? 500 : 200);
        await RegisterAsync(tenant, receiver.Url);

        var ids = await EventsTestKit.AppendAsync(Server, tenant.Id,
            Enumerable.Range(0, 6).Select(i => (LedgerEventTypes.TransferPosted.Name, i % 2 == 0 ? "acc_even" : "acc_odd")).ToArray());

        await Polling.Eventually(() => ids.All(receiver.Accepted.Contains), "not every event was delivered");
        var accepted = receiver.Accepted.ToList();
        Assert.Equal(ids.Where((_, i) => i % 2 == 0), accepted.Where(id => ids.IndexOf(id) % 2 == 0));
        Assert.Equal(ids.Where((_, i) => i % 2 == 1), accepted.Where(id => ids.IndexOf(id) % 2 == 1));
    }

    // Found by the 30-minute fault soak: one delivery in flight per account and claim meant a hot account's events went
    // out at one per claim round (~30/s), behind the ~85/s the workload produced. A round now sends chains.
    [Fact]
    public async Task A_hot_accounts_backlog_goes_out_in_order_per_account_even_when_some_deliveries_fail_first()
    {
        var tenant = await Server.NewTenantAsync();
        await using var receiver = await WebhookReceiver.StartAsync();
        // Every seventh event fails its first attempt: what shares an account with it must wait for its retry.
        receiver.Respond = r => Task.FromResult((int)JsonNode.Parse(r.Body)!["data"]!["n"]! % 7 == 3 && r.Attempt == 1 ? 500 : 200);
        await RegisterAsync(tenant, receiver.Url);
        string[] accounts = ["hot", "hot", "hot", "a", "b", "c", "d", "e"];
        var random = new Random(20);
        var transfers = Enumerable.Range(0, 120).Select(_ =>
        {
            var debit = accounts[random.Next(accounts.Length)];
            var credit = accounts.Where(a => a != debit).ElementAt(random.Next(accounts.Count(a => a != debit)));
            return (debit, credit);
        }).ToArray();
        var ids = await EventsTestKit.AppendTransfersAsync(Server, tenant.Id, transfers);

        await Polling.Eventually(() => ids.All(receiver.Accepted.Contains), "not every event was delivered", timeout: TimeSpan.FromSeconds(60));
        var accepted = receiver.Accepted.ToList();
        Assert.Equal(ids.Count, accepted.Count);
        foreach (var account in accounts.Distinct())
        {
            var touching = ids.Where((_, i) => transfers[i].debit == account || transfers[i].credit == account).ToList();
            Assert.Equal(touching, accepted.Where(touching.Contains));
        }
        // Each event was accepted once; only the planned first failures were sent twice.
        Assert.Equal(ids.Count + ids.Where((_, i) => i % 7 == 3).Count(), receiver.Requests.Count);
    }

    [Fact]
    public async Task Endpoint_failing_past_the_threshold_is_disabled_and_the_tenant_gets_an_event()
    {
        var tenant = await Server.NewTenantAsync();
        await using var failingReceiver = await WebhookReceiver.StartAsync();
        failingReceiver.Respond = _ => Task.FromResult(500);
        await using var watcher = await WebhookReceiver.StartAsync();
        var (failingId, _) = await RegisterAsync(tenant, failingReceiver.Url, "transfer.*");
        await RegisterAsync(tenant, watcher.Url, EventTypes.WebhookEndpointDisabled.Name);

        var options = Server.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<EventsOptions>>().Value;
        var needed = (int)Math.Ceiling(options.WebhookDisableAfterFailures / (double)options.WebhookAttemptsMax);
        await EventsTestKit.AppendAsync(Server, tenant.Id,
            Enumerable.Range(0, needed + 1).Select(i => (LedgerEventTypes.TransferPosted.Name, $"trf_{i}")).ToArray());

        await Polling.Eventually(async () =>
        {
            var endpoint = await tenant.Http.GetJsonAsync($"/v1/webhooks/{failingId}");
            return (string?)endpoint.Body!["state"] == "disabled";
        }, "the endpoint was not disabled", timeout: TimeSpan.FromSeconds(60));
        await Polling.Eventually(() => !watcher.Accepted.IsEmpty, "the tenant was not told");
        var told = JsonNode.Parse(watcher.Requests.First().Body)!;
        Assert.Equal(EventTypes.WebhookEndpointDisabled.Name, (string?)told["type"]);
        Assert.Equal(failingId, (string?)told["data"]!["id"]);

        Assert.Single(await tenant.Http.EventsAsync("?type=webhook.endpoint.disabled", 1));
        var replay = await tenant.Http.PostJsonAsync($"/v1/webhooks/{failingId}/dead-letters/replay", new { });
        replay.AssertProblem(409, "webhook_disabled");
        var enabled = await tenant.Http.PostJsonAsync($"/v1/webhooks/{failingId}/enable", new { });
        Assert.Equal("enabled", (string?)enabled.Body!["state"]);
        Assert.Equal(0, (int)enabled.Body!["consecutive_failures"]!);
    }
}

public sealed class PostgresWebhookDeliveryTests(PostgresEventsServerFixture fixture)
    : WebhookDeliveryTests(fixture), IClassFixture<PostgresEventsServerFixture>;

public sealed class SqliteWebhookDeliveryTests(SqliteEventsServerFixture fixture)
    : WebhookDeliveryTests(fixture), IClassFixture<SqliteEventsServerFixture>;

public sealed class WebhookApiTests(SqliteServerFixture fixture) : IClassFixture<SqliteServerFixture>
{
    [Fact]
    public async Task Secret_is_shown_once_and_endpoints_can_be_listed_read_and_deleted()
    {
        var tenant = await fixture.Server.NewTenantAsync();
        var created = await tenant.Http.PostJsonAsync("/v1/webhooks",
            new { url = "https://8.8.8.8/hooks", event_types = new[] { "transfer.posted", "account.*" }, description = "ops" });
        Assert.Equal(HttpStatusCode.Created, created.Response.StatusCode);
        var id = (string)created.Body!["id"]!;
        Assert.StartsWith(WebhookSignature.SecretPrefix, (string)created.Body!["secret"]!, StringComparison.Ordinal);
        Assert.Equal($"/v1/webhooks/{id}", created.Response.Headers.Location?.ToString());

        var read = await tenant.Http.GetJsonAsync($"/v1/webhooks/{id}");
        Assert.Equal("enabled", (string?)read.Body!["state"]);
        Assert.Null(read.Body!["secret"]);
        Assert.Equal(["transfer.posted", "account.*"], read.Body!["event_types"]!.AsArray().Select(t => (string)t!));
        var list = await tenant.Http.GetJsonAsync("/v1/webhooks");
        Assert.Null(Assert.Single(list.Body!["data"]!.AsArray())!["secret"]);

        var other = await fixture.Server.NewTenantAsync();
        (await other.Http.GetJsonAsync($"/v1/webhooks/{id}")).AssertProblem(404, "webhook_not_found");

        Assert.Equal(HttpStatusCode.NoContent, (await tenant.Http.DeleteAsync($"/v1/webhooks/{id}")).StatusCode);
        (await tenant.Http.GetJsonAsync($"/v1/webhooks/{id}")).AssertProblem(404, "webhook_not_found");
    }

    [Theory]
    [InlineData("http://127.0.0.1:8080/hook")]
    [InlineData("http://localhost/hook")]
    [InlineData("http://10.1.2.3/hook")]
    [InlineData("http://192.168.0.10/hook")]
    [InlineData("http://169.254.169.254/latest/meta-data")]
    [InlineData("http://[::1]/hook")]
    [InlineData("http://[::ffff:127.0.0.1]/hook")]
    [InlineData("http://[fd00::1]/hook")]
    public async Task Webhook_urls_pointing_at_private_or_loopback_addresses_are_refused(string url)
    {
        var tenant = await fixture.Server.NewTenantAsync();
        (await tenant.Http.PostJsonAsync("/v1/webhooks", new { url, event_types = new[] { "*" } })).AssertProblem(422, "webhook_target_forbidden");
    }

    [Fact]
    public async Task Invalid_webhook_requests_are_validation_problems()
    {
        var tenant = await fixture.Server.NewTenantAsync();
        (await tenant.Http.PostJsonAsync("/v1/webhooks", new { url = "ftp://8.8.8.8/x", event_types = new[] { "*" } })).AssertProblem(400, "validation_failed");
        (await tenant.Http.PostJsonAsync("/v1/webhooks", new { url = "https://8.8.8.8/x", event_types = Array.Empty<string>() })).AssertProblem(400, "validation_failed");
        (await tenant.Http.PostJsonAsync("/v1/webhooks", new { url = "https://8.8.8.8/x", event_types = new[] { "Transfer Posted" } })).AssertProblem(400, "validation_failed");
        (await tenant.Http.PostJsonAsync("/v1/webhooks", new { url = "https://8.8.8.8/x", event_types = new[] { "*" }, color = "red" })).AssertProblem(400, "validation_failed");
    }

    [Fact]
    public async Task Webhooks_need_the_webhooks_scope_and_the_feed_the_events_scope()
    {
        var reader = await fixture.Server.NewTenantAsync(Neraca.Tenancy.Scopes.EventsRead);
        (await reader.Http.GetJsonAsync("/v1/webhooks")).AssertProblem(403, "insufficient_scope");
        Assert.Equal(HttpStatusCode.OK, (await reader.Http.GetJsonAsync("/v1/events")).Response.StatusCode);
        var writer = await fixture.Server.NewTenantAsync(Neraca.Tenancy.Scopes.WebhooksWrite);
        (await writer.Http.GetJsonAsync("/v1/events")).AssertProblem(403, "insufficient_scope");
    }
}

public sealed class WebhookSecurityTests
{
    [Theory]
    [InlineData("8.8.8.8", true)]
    [InlineData("1.1.1.1", true)]
    [InlineData("2606:4700:4700::1111", true)]
    [InlineData("127.0.0.1", false)]
    [InlineData("0.0.0.0", false)]
    [InlineData("10.0.0.1", false)]
    [InlineData("172.16.5.4", false)]
    [InlineData("172.32.0.1", true)]
    [InlineData("192.168.1.1", false)]
    [InlineData("169.254.169.254", false)]
    [InlineData("100.64.0.1", false)]
    [InlineData("224.0.0.1", false)]
    [InlineData("::1", false)]
    [InlineData("::", false)]
    [InlineData("fe80::1", false)]
    [InlineData("fc00::1", false)]
    [InlineData("::ffff:10.0.0.1", false)]
    [InlineData("64:ff9b::a00:1", false)]
    public void Only_public_addresses_are_webhook_targets(string address, bool isPublic) =>
        Assert.Equal(isPublic, WebhookTargets.IsPublic(IPAddress.Parse(address)));

    [Fact]
    public void Signature_outside_the_replay_window_or_over_another_body_is_rejected()
    {
        var body = "{\"id\":\"evt_1\"}"u8.ToArray();
        var now = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);
        var header = WebhookSignature.HeaderValue("whsec_test", now.ToUnixTimeSeconds(), body);
        Assert.True(WebhookSignature.Verify("whsec_test", header, body, now.AddMinutes(4), WebhookSignature.ToleranceDefault));
        Assert.False(WebhookSignature.Verify("whsec_test", header, body, now.AddMinutes(6), WebhookSignature.ToleranceDefault));
        Assert.False(WebhookSignature.Verify("whsec_test", header, "{\"id\":\"evt_2\"}"u8.ToArray(), now, WebhookSignature.ToleranceDefault));
        Assert.False(WebhookSignature.Verify("whsec_test", "v1=abc", body, now, WebhookSignature.ToleranceDefault));
    }

    [Fact]
    public void Signature_is_frozen_for_a_known_secret_timestamp_and_body()
    {
        // Golden value: receivers in other languages implement this exact computation.
        var header = WebhookSignature.HeaderValue("whsec_golden", 1_700_000_000, "{\"a\":1}"u8);
        Assert.Equal("t=1700000000,v1=" + Convert.ToHexStringLower(System.Security.Cryptography.HMACSHA256.HashData(
            "whsec_golden"u8, "1700000000.{\"a\":1}"u8)), header);
    }
}
