using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Neraca.Observability;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Observability;

public sealed class ErrorAlertTests
{
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Trace_id_of_a_failing_request_is_in_its_log_lines_and_in_the_chat_alert()
    {
        await using var chat = await TestHttpReceiver.StartAsync();
        await using var server = await NeracaServer.StartAsync(await TestStores.NewDatabaseAsync(StoreKind.Sqlite),
            "--Observability:TestEndpoints=true",
            $"--Observability:ErrorAlerts:WebhookUrl={chat.Url}/api/webhooks/1/discord-token",
            "--Observability:ErrorAlerts:Format=discord",
            "--Observability:ErrorAlerts:WindowSeconds=1");
        var logs = new CapturingLoggerProvider();
        server.Services.GetRequiredService<ILoggerFactory>().AddProvider(logs);
        var tenant = await server.NewTenantAsync();

        // The caller's trace continues on the server: HttpClient sends it as traceparent.
        using var caller = new Activity("test-caller").SetParentId(ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), ActivityTraceFlags.Recorded).Start();
        var traceId = caller.TraceId.ToString();
        var response = await tenant.Http.GetAsync("/_test/fail");
        caller.Stop();
        var body = await Http.ReadAsync(response);

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Equal(traceId, (string?)body!["trace_id"]);
        var requestId = response.Headers.GetValues("X-Request-Id").Single();

        var lines = logs.Entries.Where(e => e.Fields.GetValueOrDefault("request_id") == requestId).ToList();
        Assert.NotEmpty(lines);
        Assert.All(lines, line => Assert.Equal(traceId, line.Fields.GetValueOrDefault("TraceId")));
        var unhandled = Assert.Single(lines, l => l.Category == "Neraca.Hosting.ProblemExceptionHandler");
        Assert.Equal(LogLevel.Error, unhandled.Level);
        Assert.Contains(traceId, unhandled.Message, StringComparison.Ordinal);

        var message = await chat.NextAsync(Deadline);
        Assert.Equal("/api/webhooks/1/discord-token", message.Path);
        var content = (string?)JsonNode.Parse(message.Text)!["content"];
        Assert.NotNull(content);
        Assert.Contains($"trace id: {traceId}", content, StringComparison.Ordinal);
        Assert.Contains(requestId, content, StringComparison.Ordinal);
        Assert.Contains("System.InvalidOperationException", content, StringComparison.Ordinal);
        Assert.Contains("occurrences: 1 ", content, StringComparison.Ordinal);
        Assert.Contains("GET /_test/fail", content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_storm_of_1000_identical_errors_sends_one_chat_message_with_the_count()
    {
        const int errors = 1000;
        await using var chat = await TestHttpReceiver.StartAsync();
        await using var server = await NeracaServer.StartAsync(await TestStores.NewDatabaseAsync(StoreKind.Sqlite),
            "--Observability:TestEndpoints=true",
            $"--Observability:ErrorAlerts:WebhookUrl={chat.Url}/services/T000/B000/slack-token",
            // Long enough that the whole storm lands in one window on a busy machine.
            "--Observability:ErrorAlerts:WindowSeconds=20",
            // A thousand stack traces on the test output help nobody; the alert pipeline still sees every entry.
            "--Logging:Console:LogLevel:Default=None");
        var client = server.CreateClient();

        var statuses = new int[errors];
        await Parallel.ForEachAsync(Enumerable.Range(0, errors), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) =>
        {
            using var response = await client.GetAsync("/_test/fail", ct);
            statuses[i] = (int)response.StatusCode;
        });
        Assert.All(statuses, s => Assert.Equal(500, s));

        var message = await chat.NextAsync(Deadline);
        var text = (string?)JsonNode.Parse(message.Text)!["text"];
        Assert.NotNull(text);
        Assert.Contains($"occurrences: {errors} ", text, StringComparison.Ordinal);
        // Every error is accounted for in that one message, and nothing is left to send.
        Assert.Equal(0, server.Services.GetRequiredService<ErrorAlerts>().OpenWindows);
        Assert.Single(chat.All);
    }

    [Fact]
    public async Task With_a_Sentry_DSN_an_unhandled_exception_is_sent_to_Sentry()
    {
        await using var sentry = await TestHttpReceiver.StartAsync();
        await using var server = await NeracaServer.StartAsync(await TestStores.NewDatabaseAsync(StoreKind.Sqlite),
            "--Observability:TestEndpoints=true", $"--Observability:SentryDsn=http://publickey@127.0.0.1:{sentry.Port}/42");

        var response = await server.CreateClient().GetAsync("/_test/fail");
        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);

        var envelope = await sentry.NextAsync(Deadline);
        Assert.Equal("POST", envelope.Method);
        Assert.Equal("/api/42/envelope/", envelope.Path);
    }

    [Fact]
    public void Different_errors_get_their_own_messages_and_the_per_minute_limit_holds_the_rest()
    {
        var clock = new ManualClock(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var options = Options.Create(new ObservabilityOptions { ErrorAlerts = { WindowSeconds = 10, MessagesPerMinuteMax = 2 } });
        var alerts = new ErrorAlerts(options, clock);

        for (var i = 0; i < 5; i++) alerts.Record("Neraca.Test", Thrown(() => throw new InvalidOperationException("a")), "GET /a", "req_a");
        alerts.Record("Neraca.Test", Thrown(() => throw new ArgumentException("b")), "GET /b", "req_b");
        alerts.Record("Neraca.Test", Thrown(() => throw new InvalidOperationException("c")), "GET /c", "req_c");
        Assert.Empty(alerts.TakeDue());

        clock.Advance(TimeSpan.FromSeconds(10));
        var first = alerts.TakeDue();
        Assert.Equal(2, first.Count);
        Assert.Equal(5, first.Single(m => m.First.Route == "GET /a").Count);
        Assert.Equal(1, alerts.OpenWindows);

        clock.Advance(TimeSpan.FromSeconds(30));
        Assert.Empty(alerts.TakeDue()); // two sent this minute already
        clock.Advance(TimeSpan.FromSeconds(30));
        var second = Assert.Single(alerts.TakeDue());
        Assert.Equal("GET /c", second.First.Route);
    }

    [Fact]
    public void A_database_outage_failing_every_route_is_one_message()
    {
        var clock = new ManualClock(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var alerts = new ErrorAlerts(Options.Create(new ObservabilityOptions { ErrorAlerts = { WindowSeconds = 10 } }), clock);
        const string category = "Neraca.Hosting.ProblemExceptionHandler";
        alerts.Record(category, new Neraca.Storage.DatabaseUnavailableException(Thrown(() => throw new IOException("refused"))), "POST /v1/transfers", "r1");
        alerts.Record(category, new Neraca.Storage.DatabaseUnavailableException(Thrown(() => throw new TimeoutException("slow"))), "GET /v1/accounts/{id}", "r2");
        alerts.Record(category, new Neraca.Storage.DatabaseUnavailableException(Thrown(() => throw new IOException("refused"))), "GET /v1/ledgers", "r3");

        clock.Advance(TimeSpan.FromSeconds(10));
        var message = Assert.Single(alerts.TakeDue());
        Assert.Equal(3, message.Count);
        Assert.Null(message.First.Route);
    }

    [Fact]
    public void Chat_format_follows_the_webhook_host_unless_set()
    {
        Assert.Equal("discord", ErrorAlerts.ResolveFormat("auto", "https://discord.com/api/webhooks/1/x"));
        Assert.Equal("slack", ErrorAlerts.ResolveFormat("auto", "https://hooks.slack.com/services/T/B/x"));
        Assert.Equal("discord", ErrorAlerts.ResolveFormat("discord", "https://chat.example/hook"));
    }

    static Exception Thrown(Action action)
    {
        try
        {
            action();
        }
        catch (Exception e)
        {
            return e;
        }
        throw new InvalidOperationException("nothing thrown");
    }

    sealed class ManualClock(DateTimeOffset start) : TimeProvider
    {
        DateTimeOffset _now = start;

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }
}
