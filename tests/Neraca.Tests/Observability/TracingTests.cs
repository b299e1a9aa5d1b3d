using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Observability;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;
using OpenTelemetry.Trace;

namespace Neraca.Tests.Observability;

public sealed class TracingTests
{
    [Fact]
    public async Task Request_spans_reach_the_OTLP_collector_with_service_replica_tenant_and_request_id()
    {
        await using var collector = await TestHttpReceiver.StartAsync();
        await using var server = await NeracaServer.StartAsync(await TestStores.NewDatabaseAsync(StoreKind.Sqlite),
            $"--Observability:OtlpEndpoint={collector.Url}", "--Observability:OtlpProtocol=http/protobuf",
            "--Observability:ReplicaId=replica-under-test");
        var tenant = await server.NewTenantAsync();

        using var caller = new Activity("test-caller").SetParentId(ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), ActivityTraceFlags.Recorded).Start();
        var response = await tenant.Http.GetAsync("/v1/ledgers");
        caller.Stop();
        var requestId = response.Headers.GetValues("X-Request-Id").Single();

        // OTLP/protobuf carries ids as raw bytes and strings as UTF-8: find them in the exported batches of this trace.
        // The test's own HttpClient span (same process, same trace) may travel in an earlier batch than the server's
        // request span, so the server span is the export that carries the request id. The server's span ends after
        // the client has its response, so a flush can run before it exists: flush until it has been exported.
        var traceIdBytes = new byte[16];
        caller.TraceId.CopyTo(traceIdBytes);
        var tracer = server.Services.GetRequiredService<TracerProvider>();
        ReceivedRequest? export = null;
        await Polling.Eventually(() =>
        {
            Assert.True(tracer.ForceFlush(30_000), "trace export did not finish");
            export = collector.All.Where(r => r.Path == "/v1/traces")
                .FirstOrDefault(r => Contains(r.Body, traceIdBytes) && Contains(r.Body, Encoding.UTF8.GetBytes(requestId)));
            return export is not null;
        }, "the server's request span is exported");
        Assert.NotNull(export);
        Assert.Equal("application/x-protobuf", export.ContentType);
        foreach (var expected in new[] { "service.name", "neraca", "service.instance.id", "replica-under-test",
                     NeracaTelemetry.TenantIdTag, tenant.Id, NeracaTelemetry.RequestIdTag })
            Assert.True(Contains(export.Body, Encoding.UTF8.GetBytes(expected)), $"'{expected}' is not in the exported request span");
    }

    [Fact]
    public async Task A_posting_batch_span_is_exported_linked_to_the_request_that_it_carried()
    {
        await using var collector = await TestHttpReceiver.StartAsync();
        await using var server = await NeracaServer.StartAsync(await TestStores.NewDatabaseAsync(StoreKind.Sqlite),
            $"--Observability:OtlpEndpoint={collector.Url}", "--Observability:OtlpProtocol=http/protobuf");
        var tenant = await server.NewTenantAsync();
        await tenant.Http.PostJsonAsync("/v1/ledgers", new { code = "trace-idr", asset = "IDR", scale = 2 });
        await tenant.Http.PostJsonAsync("/v1/accounts", new { id = "t-bank", ledger = "trace-idr", normal_balance = "debit" });
        await tenant.Http.PostJsonAsync("/v1/accounts", new { id = "t-alice", ledger = "trace-idr", normal_balance = "credit" });

        using var caller = new Activity("test-caller").SetParentId(ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), ActivityTraceFlags.Recorded).Start();
        var posted = await tenant.Http.PostJsonAsync("/v1/transfers", new { id = "t-1", debit_account = "t-bank", credit_account = "t-alice", amount = 100 });
        caller.Stop();
        Assert.True(posted.Response.IsSuccessStatusCode, posted.Body?.ToJsonString());
        Assert.True(server.Services.GetRequiredService<TracerProvider>().ForceFlush(30_000), "trace export did not finish");

        // The batch span starts its own trace (a batch carries many requests) and links to each request's span,
        // so the request's trace id is in the exported batch span as a link.
        var traceIdBytes = new byte[16];
        caller.TraceId.CopyTo(traceIdBytes);
        var batchSpanName = Encoding.UTF8.GetBytes("ledger.post_batch");
        Assert.Contains(collector.All, r => r.Path == "/v1/traces" && Contains(r.Body, batchSpanName) && Contains(r.Body, traceIdBytes));
    }

    [Fact]
    public async Task Redis_commands_are_exported_as_spans_in_the_trace_of_the_request_that_sent_them()
    {
        var redis = await RedisServer.SharedAsync();
        await using var collector = await TestHttpReceiver.StartAsync();
        await using var server = await NeracaServer.StartAsync(await TestStores.NewDatabaseAsync(StoreKind.Sqlite),
            $"--Observability:OtlpEndpoint={collector.Url}", "--Observability:OtlpProtocol=http/protobuf", "--Redis:Url=" + redis.Url);
        var tenant = await server.NewTenantAsync();

        using var caller = new Activity("test-caller").SetParentId(ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), ActivityTraceFlags.Recorded).Start();
        // Authenticating the key reads its cache version token: an EVAL (EVALSHA once the script is cached) on Redis.
        Assert.True((await tenant.Http.GetAsync("/v1/ledgers")).IsSuccessStatusCode);
        caller.Stop();

        var traceIdBytes = new byte[16];
        caller.TraceId.CopyTo(traceIdBytes);
        var command = Encoding.UTF8.GetBytes("EVAL");
        // The instrumentation turns finished commands into spans on its own schedule (every 10 s by default).
        var deadline = DateTime.UtcNow.AddSeconds(40);
        while (!collector.All.Any(r => r.Path == "/v1/traces" && Contains(r.Body, traceIdBytes) && Contains(r.Body, command)))
        {
            Assert.True(DateTime.UtcNow < deadline, "no Redis span of the request's trace was exported");
            server.Services.GetRequiredService<TracerProvider>().ForceFlush(5_000);
            await Task.Delay(500);
        }
    }

    static bool Contains(byte[] haystack, byte[] needle) => haystack.AsSpan().IndexOf(needle) >= 0;
}
