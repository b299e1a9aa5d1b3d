using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Neraca.Events;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Events;

/// <summary>Helpers shared by the event tests.</summary>
public static class EventsTestKit
{
    /// <summary>Fast retries, quick polling, loopback receivers allowed.</summary>
    public static readonly string[] FastWorkerArgs =
    [
        "--Events:AllowPrivateWebhookTargets=true",
        "--Events:WebhookRetryBaseDelayMs=20",
        "--Events:WebhookRetryDelayMaxMs=100",
        "--Events:WebhookAttemptsMax=4",
        "--Events:WebhookDisableAfterFailures=10",
        "--Events:WebhookPollIntervalMs=50",
        "--Events:WebhookTimeoutMs=2000",
        "--Events:WebhookLeaseMs=3000",
        "--Events:RelayPollIntervalMs=100",
        "--Events:RelayRetryDelayMaxMs=300",
        "--Events:StreamPollIntervalMs=100",
        "--Events:MetricsRefreshMs=100",
    ];

    /// <summary>Writes events and their outbox rows in one transaction, as the ledger's posting transaction does.</summary>
    public static Task<List<string>> AppendAsync(NeracaServer server, string tenantId, params (string Type, string Subject)[] events) =>
        AppendAsync(server, tenantId, events.Select(e => (e.Type, e.Subject, (string?)null, (string?)null)).ToArray());

    /// <summary>Ledger-shaped <c>transfer.posted</c> events between two accounts: each delivery has both as ordering keys.</summary>
    public static Task<List<string>> AppendTransfersAsync(NeracaServer server, string tenantId, params (string Debit, string Credit)[] transfers) =>
        AppendAsync(server, tenantId, transfers.Select(t => (Neraca.Ledger.LedgerEventTypes.TransferPosted.Name, "trf", (string?)t.Debit, (string?)t.Credit)).ToArray());

    static async Task<List<string>> AppendAsync(NeracaServer server, string tenantId, (string Type, string Subject, string? Debit, string? Credit)[] events)
    {
        var database = server.Services.GetRequiredService<Database>();
        await using var connection = await database.OpenAsync(CancellationToken.None);
        await using var tx = await server.Services.GetRequiredService<SqlDialect>().BeginWriteAsync(connection, CancellationToken.None);
        var ids = new List<string>();
        foreach (var (type, subject, debit, credit) in events)
        {
            var payload = new JsonObject { ["id"] = subject, ["n"] = ids.Count };
            if (debit is not null) (payload["debit_account"], payload["credit_account"]) = (debit, credit);
            var seq = await EventLog.AppendAsync(connection, tx, tenantId, "ldg_test", new NewEvent(new EventType(type), subject,
                payload.ToJsonString()), DbTime.ToMicros(DateTimeOffset.UtcNow), CancellationToken.None);
            ids.Add(await EventIdAsync(connection, tx, seq));
        }
        await tx.CommitAsync();
        return ids;
    }

    static async Task<string> EventIdAsync(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction tx, long seq)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = tx;
        command.CommandText = "SELECT id FROM events WHERE seq = " + seq.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return (string)(await command.ExecuteScalarAsync())!;
    }

    public static async Task<long> OutboxCountAsync(NeracaServer server)
    {
        var database = server.Services.GetRequiredService<Database>();
        await using var connection = await database.OpenAsync(CancellationToken.None);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT count(*) FROM outbox";
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The current value of an observable gauge of this server's <c>Neraca</c> meter.</summary>
    public static double? ReadGauge(NeracaServer server, string name)
    {
        var factory = server.Services.GetRequiredService<IMeterFactory>();
        double? value = null;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == EventsMetrics.MeterName && ReferenceEquals(instrument.Meter.Scope, factory) && instrument.Name == name)
                l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<double>((_, v, _, _) => value = v);
        listener.SetMeasurementEventCallback<long>((_, v, _, _) => value = v);
        listener.Start();
        listener.RecordObservableInstruments();
        return value;
    }
}

/// <summary>A webhook receiver: a real HTTP listener on loopback. <see cref="Respond"/> decides each answer from the
/// request and how many times this event id has been seen (1 for the first attempt).</summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    readonly WebApplication _app;
    readonly ConcurrentDictionary<string, int> _seen = new();

    public sealed record Received(string EventId, string Body, byte[] RawBody, string? Signature, string? DeliveryId, int Attempt, DateTimeOffset At);

    WebhookReceiver(WebApplication app, string url)
    {
        _app = app;
        Url = url;
    }

    public string Url { get; }
    public ConcurrentQueue<Received> Requests { get; } = new();
    public Func<Received, Task<int>> Respond { get; set; } = _ => Task.FromResult(200);

    /// <summary>Event ids in the order they were first received with a 2xx answer: what a consumer deduplicating by id sees.</summary>
    public ConcurrentQueue<string> Accepted { get; } = new();
    readonly ConcurrentDictionary<string, byte> _accepted = new();

    public static async Task<WebhookReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        WebhookReceiver? receiver = null;
        app.MapPost("/hook", async (HttpContext context) =>
        {
            using var buffer = new MemoryStream();
            await context.Request.Body.CopyToAsync(buffer);
            var raw = buffer.ToArray();
            var eventId = context.Request.Headers[WebhookSignature.EventIdHeader].ToString();
            var attempt = receiver!._seen.AddOrUpdate(eventId, 1, (_, n) => n + 1);
            var received = new Received(eventId, System.Text.Encoding.UTF8.GetString(raw), raw,
                context.Request.Headers[WebhookSignature.Header].ToString(), context.Request.Headers[WebhookSignature.DeliveryIdHeader].ToString(),
                attempt, DateTimeOffset.UtcNow);
            receiver.Requests.Enqueue(received);
            var status = await receiver.Respond(received);
            if (status is >= 200 and < 300 && receiver._accepted.TryAdd(eventId, 0)) receiver.Accepted.Enqueue(eventId);
            context.Response.StatusCode = status;
            await context.Response.WriteAsync(status >= 300 ? "receiver says no" : "ok");
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        receiver = new WebhookReceiver(app, address + "/hook");
        return receiver;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
