using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Http.Headers;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Neraca.Observability;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;
using Npgsql;

namespace Neraca.Tests.Observability;

/// <summary>Runs alone, after the parallel tests: every server in this process publishes meters with the same names
/// (ASP.NET Core's, Npgsql's, "Neraca"), and when another test's server is disposed the OpenTelemetry SDK retires the
/// shared metric streams in every provider of the process. One process runs one server in production.</summary>
[CollectionDefinition(nameof(MetricsRunAlone), DisableParallelization = true)]
public sealed class MetricsRunAlone;

[Collection(nameof(MetricsRunAlone))]
public sealed class MetricsEndpointTests
{
    /// <summary>The instruments the capabilities publish on the "Neraca" meter (the contract in docs/operations.md#metrics);
    /// the names test asserts the server's own code creates each of them.</summary>
    static readonly string[] BusinessInstruments =
    [
        "neraca.transfers.posted",
        "neraca.transfers.failed",
        "neraca.posting.batch.size",
        "neraca.posting.commit.duration",
        "neraca.transfers.pending",
        "neraca.posting.queue.depth",
        "neraca.outbox.lag",
        "neraca.webhook.delivery.attempts",
        "neraca.webhook.delivery.failures",
        "neraca.webhook.dead_letters",
        "neraca.cache.requests",
        "neraca.rate_limit.decisions",
        "neraca.job.runs",
        "neraca.job.duration",
        "neraca.job.failures",
        "neraca.audit.verification.failures",
    ];

    /// <summary>Series Prometheus itself makes: not expected from the application.</summary>
    static readonly HashSet<string> PrometheusOwn = new(StringComparer.Ordinal) { "up", "ALERTS" };

    [Fact]
    public async Task Every_metric_named_by_the_rules_and_dashboards_is_in_metrics()
    {
        var database = await TestStores.NewDatabaseAsync(StoreKind.Postgres);
        await using var server = await NeracaServer.StartAsync(database, "--Observability:TestEndpoints=true", "--Events:AllowPrivateWebhookTargets=true");
        await using var receiver = await TestHttpReceiver.StartAsync();
        await using var failingReceiver = await TestHttpReceiver.StartAsync(status: 500);
        var tenant = await server.NewTenantAsync();
        // Real traffic first: webhook deliveries (one endpoint answers, one fails), postings through the ledger,
        // database work, a handled exception, a pool wait.
        foreach (var url in new[] { receiver.Url + "/hook", failingReceiver.Url + "/hook" })
        {
            var webhook = await tenant.Http.PostJsonAsync("/v1/webhooks", new { url, event_types = new[] { "transfer.*" } });
            Assert.True(webhook.Response.IsSuccessStatusCode, webhook.Body?.ToJsonString());
        }
        await PostTransfersAsync(tenant.Http);
        await receiver.NextAsync(TimeSpan.FromSeconds(60));
        await failingReceiver.NextAsync(TimeSpan.FromSeconds(60));
        await ScrapeUntilAsync(server, "neraca_webhook_delivery_attempts_total", "neraca_webhook_delivery_failures_total");
        await server.CreateClient().GetAsync("/health/ready");
        await server.CreateClient().GetAsync("/_test/fail");
        await WaitForAPooledConnectionAsync(server, database);
        // A real job run (the worker role of the test server executes it).
        await server.Services.GetRequiredService<Neraca.Jobs.JobStore>().EnqueueAsync(
            new Neraca.Jobs.JobRequest(tenant.Id, Neraca.Jobs.PruneIdempotencyKeysJob.TypeName), CancellationToken.None);
        await ScrapeUntilAsync(server, "neraca_job_runs_total", "neraca_job_duration_seconds_bucket");
        // A real audit failure: rewrite history behind the append-only guard, then run the verification job.
        await using (var c = new NpgsqlConnection(database))
        {
            await c.OpenAsync();
            await using var tamper = new NpgsqlCommand("SET session_replication_role = replica; UPDATE transfers SET amount = amount + 1 WHERE tenant_id = @t", c);
            tamper.Parameters.AddWithValue("t", tenant.Id);
            await tamper.ExecuteNonQueryAsync();
        }
        await server.Services.GetRequiredService<Neraca.Jobs.JobStore>().EnqueueAsync(
            new Neraca.Jobs.JobRequest(tenant.Id, Neraca.Ledger.VerifyLedgersJob.TypeName), CancellationToken.None);
        await ScrapeUntilAsync(server, "neraca_job_failures_total", "neraca_audit_verification_failures_total");
        AssertEveryContractInstrumentIsPublished();

        var exposition = await ScrapeAsync(server.CreateClient());
        var exposed = SampleNames(exposition);
        // The posting latency SLO selects these routes by their templates.
        var counts = exposition.Split('\n').Where(l => l.StartsWith("http_server_request_duration_seconds_count{", StringComparison.Ordinal)).ToList();
        foreach (var route in new[] { "/v1/transfers", "/v1/transfers/batch" })
            Assert.True(counts.Any(l => l.Contains("http_request_method=\"POST\"", StringComparison.Ordinal) && l.Contains($"http_route=\"{route}\"", StringComparison.Ordinal)),
                $"no POST {route} in:\n" + string.Join('\n', counts));

        var wanted = DeployArtefacts.RuleExpressions().Concat(DeployArtefacts.DashboardExpressions().Select(d => d.Expr))
            .SelectMany(DeployArtefacts.MetricNames).Where(n => !PrometheusOwn.Contains(n)).ToHashSet(StringComparer.Ordinal);
        Assert.True(wanted.Count > 30, $"only {wanted.Count} metric names found in deploy/: the extraction is broken");
        var missing = wanted.Where(n => !exposed.Contains(n)).Order(StringComparer.Ordinal).ToList();
        Assert.True(missing.Count == 0, "named in deploy/ but not in /metrics: " + string.Join(", ", missing) + "; exposed: " + string.Join(" ", exposed.Order(StringComparer.Ordinal)));
    }

    [Fact]
    public async Task Http_server_metrics_carry_route_and_status_and_scrapes_are_not_counted()
    {
        await using var server = await NeracaServer.StartAsync(await TestStores.NewDatabaseAsync(StoreKind.Sqlite));
        var client = server.CreateClient();
        await client.GetAsync("/health/live");
        await ScrapeAsync(client);
        var text = await ScrapeAsync(client);

        Assert.Contains(text.Split('\n'), l => l.StartsWith("http_server_request_duration_seconds_count{", StringComparison.Ordinal)
            && l.Contains("http_route=\"/health/live\"", StringComparison.Ordinal)
            && l.Contains("http_response_status_code=\"200\"", StringComparison.Ordinal));
        Assert.DoesNotContain("http_route=\"/metrics\"", text, StringComparison.Ordinal);
        Assert.Contains("le=\"0.25\"", text, StringComparison.Ordinal); // the posting latency SLO's threshold is a bucket
        Assert.Contains("service_name=\"neraca\"", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Metrics_on_the_main_port_are_for_loopback_callers_only_by_default()
    {
        await using var server = await NeracaServer.StartAsync(await TestStores.NewDatabaseAsync(StoreKind.Sqlite));
        var client = server.CreateClient();

        var direct = await client.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, direct.StatusCode);
        Assert.Equal("text/plain", direct.Content.Headers.ContentType?.MediaType);

        // A reverse proxy on the same machine makes everyone look local; its forwarding header gives it away.
        using var relayed = new HttpRequestMessage(HttpMethod.Get, "/metrics");
        relayed.Headers.Add("X-Forwarded-For", "203.0.113.7");
        (await client.SendAsync(relayed) is var response ? (response, await Http.ReadAsync(response)) : default).AssertProblem(404, "not_found");
    }

    [Fact]
    public async Task Bearer_token_lets_a_remote_scraper_in_and_a_wrong_one_is_refused()
    {
        const string token = "metrics-token-for-tests-0123456789";
        await using var server = await NeracaServer.StartAsync(await TestStores.NewDatabaseAsync(StoreKind.Sqlite), $"--Observability:Metrics:BearerToken={token}");
        var client = server.CreateClient();

        async Task<HttpResponseMessage> RelayedAsync(string? bearer)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/metrics");
            request.Headers.Add("X-Forwarded-For", "203.0.113.7");
            if (bearer is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
            return await client.SendAsync(request);
        }

        var withToken = await RelayedAsync(token);
        Assert.Equal(HttpStatusCode.OK, withToken.StatusCode);
        Assert.Contains("target_info", await withToken.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var wrong = await RelayedAsync(token + "x");
        (wrong, await Http.ReadAsync(wrong)).AssertProblem(401, "unauthorized");
        var none = await RelayedAsync(null);
        (none, await Http.ReadAsync(none)).AssertProblem(401, "unauthorized");
    }

    [Fact]
    public async Task Separate_metrics_port_serves_metrics_and_nothing_else()
    {
        var port = ProcessRunner.FreePort();
        await using var server = await NeracaServer.StartAsync(await TestStores.NewDatabaseAsync(StoreKind.Sqlite),
            $"--Observability:Metrics:Port={port}", "--Observability:Metrics:Host=127.0.0.1");
        var main = server.BaseAddress.Port == port
            ? throw new InvalidOperationException("the server's first address is the metrics port")
            : server.CreateClient();
        using var metrics = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };

        using var forwarded = new HttpRequestMessage(HttpMethod.Get, "/metrics");
        forwarded.Headers.Add("X-Forwarded-For", "203.0.113.7");
        Assert.Equal(HttpStatusCode.OK, (await metrics.SendAsync(forwarded)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await main.GetAsync("/metrics")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await metrics.GetAsync("/health/live")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await metrics.GetAsync("/v1/ledgers")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await main.GetAsync("/health/live")).StatusCode);
    }

    /// <summary>A ledger, two accounts, a posted transfer, a refused one (overdraft) and a pending one, through the API.</summary>
    static async Task PostTransfersAsync(HttpClient http)
    {
        var ledger = await http.PostJsonAsync("/v1/ledgers", new { code = "metrics-idr", asset = "IDR", scale = 2 });
        Assert.True(ledger.Response.IsSuccessStatusCode, ledger.Body?.ToJsonString());
        await http.PostJsonAsync("/v1/accounts", new { id = "m-bank", ledger = "metrics-idr", normal_balance = "debit" });
        await http.PostJsonAsync("/v1/accounts", new { id = "m-alice", ledger = "metrics-idr", normal_balance = "credit", flags = new[] { "debits_must_not_exceed_credits" } });
        var posted = await http.PostJsonAsync("/v1/transfers", new { id = "m-topup", debit_account = "m-bank", credit_account = "m-alice", amount = 1000 });
        Assert.True(posted.Response.IsSuccessStatusCode, posted.Body?.ToJsonString());
        var refused = await http.PostJsonAsync("/v1/transfers", new { id = "m-overdraft", debit_account = "m-alice", credit_account = "m-bank", amount = 5000 });
        Assert.False(refused.Response.IsSuccessStatusCode, refused.Body?.ToJsonString());
        var pending = await http.PostJsonAsync("/v1/transfers/batch", new
        {
            transfers = new[] { new { id = "m-hold", debit_account = "m-alice", credit_account = "m-bank", amount = 10, pending = true, timeout_seconds = 3600 } },
        });
        Assert.True(pending.Response.IsSuccessStatusCode, pending.Body?.ToJsonString());
    }

    /// <summary>Npgsql reports requests waiting for a connection only once one has waited. The server's own pool is
    /// shared with background work (the outbox relay), so a pool of one connection on the same database is made to
    /// wait instead: same driver, same meter, same series name.</summary>
    static async Task WaitForAPooledConnectionAsync(NeracaServer server, string connectionString)
    {
        var ct = TestContext.Current.CancellationToken;
        var builder = new NpgsqlConnectionStringBuilder(connectionString) { MaxPoolSize = 1, Timeout = 60, ApplicationName = "neraca-metrics-test" };
        await using var pool = NpgsqlDataSource.Create(builder.ConnectionString);
        var first = await pool.OpenConnectionAsync(ct);
        var second = pool.OpenConnectionAsync(ct).AsTask();
        try
        {
            await ScrapeUntilAsync(server, "db_client_connection_npgsql_pending_requests");
        }
        finally
        {
            await first.DisposeAsync();
            await (await second).DisposeAsync();
        }
    }

    [Fact]
    public async Task A_short_metrics_token_stops_start_up_naming_the_setting()
    {
        string[] args = ["--database", await TestStores.NewDatabaseAsync(StoreKind.Sqlite), "--Observability:Metrics:BearerToken=short"];
        // NeracaApp.RunAsync turns this into "Invalid configuration: ..." and exit code 2.
        var error = Assert.Throws<OptionsValidationException>(() => Neraca.Hosting.NeracaApp.Create(args));
        Assert.Contains("Observability:Metrics:BearerToken", error.Message, StringComparison.Ordinal);
    }

    /// <summary>Scrapes until the series appear (work finishing in the background), for at most 10 s; the names
    /// test then reports what is still missing.</summary>
    static async Task ScrapeUntilAsync(NeracaServer server, params string[] names)
    {
        for (var i = 0; i < 100 && !names.All(SampleNames(await ScrapeAsync(server.CreateClient())).Contains); i++)
            await Task.Delay(100, TestContext.Current.CancellationToken);
    }

    static async Task<string> ScrapeAsync(HttpClient client)
    {
        var response = await client.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    static HashSet<string> SampleNames(string exposition) =>
        exposition.Split('\n').Where(l => l.Length > 0 && l[0] != '#')
            .Select(l => l[..l.IndexOfAny(['{', ' '])]).ToHashSet(StringComparer.Ordinal);

    /// <summary>Every instrument of the metrics contract is created by the server's own code (no stand-ins).</summary>
    static void AssertEveryContractInstrumentIsPublished()
    {
        var published = new HashSet<string>(StringComparer.Ordinal);
        using (var listener = new MeterListener())
        {
            listener.InstrumentPublished = (instrument, _) =>
            {
                if (instrument.Meter.Name == NeracaTelemetry.Name) lock (published) published.Add(instrument.Name);
            };
            listener.Start();
        }
        var missing = BusinessInstruments.Where(n => !published.Contains(n)).ToList();
        Assert.True(missing.Count == 0, "contract instruments no code publishes: " + string.Join(", ", missing));
    }
}
