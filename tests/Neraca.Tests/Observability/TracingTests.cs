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
        await using var collector = new TestHttpReceiver();
        await using var server = await NeracaServer.StartAsync(await TestStores.NewDatabaseAsync(StoreKind.Sqlite),
            $"--Observability:OtlpEndpoint={collector.Url}", "--Observability:OtlpProtocol=http/protobuf",
            "--Observability:ReplicaId=replica-under-test");
        var tenant = await server.NewTenantAsync();

        using var caller = new Activity("test-caller").SetParentId(ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), ActivityTraceFlags.Recorded).Start();
        var response = await tenant.Http.GetAsync("/v1/ledgers");
        caller.Stop();
        var requestId = response.Headers.GetValues("X-Request-Id").Single();
        Assert.True(server.Services.GetRequiredService<TracerProvider>().ForceFlush(30_000), "trace export did not finish");

        // OTLP/protobuf carries ids as raw bytes and strings as UTF-8: find them in the exported batch.
        var traceIdBytes = new byte[16];
        caller.TraceId.CopyTo(traceIdBytes);
        var export = collector.All.Where(r => r.Path == "/v1/traces").FirstOrDefault(r => Contains(r.Body, traceIdBytes));
        Assert.NotNull(export);
        Assert.Equal("application/x-protobuf", export.ContentType);
        foreach (var expected in new[] { "service.name", "neraca", "service.instance.id", "replica-under-test",
                     NeracaTelemetry.TenantIdTag, tenant.Id, NeracaTelemetry.RequestIdTag, requestId })
            Assert.True(Contains(export.Body, Encoding.UTF8.GetBytes(expected)), $"'{expected}' is not in the exported spans");
    }

    [Fact]
    public async Task Posting_pipeline_source_is_recorded_and_its_spans_are_exported()
    {
        await using var collector = new TestHttpReceiver();
        await using var server = await NeracaServer.StartAsync(await TestStores.NewDatabaseAsync(StoreKind.Sqlite),
            $"--Observability:OtlpEndpoint={collector.Url}", "--Observability:OtlpProtocol=http/protobuf");

        // The ledger's batch span is started on the shared "Neraca" source; any span there must be sampled and exported.
        using (var batch = NeracaTelemetry.ActivitySource.StartActivity("posting.batch"))
        {
            Assert.NotNull(batch);
            Assert.True(batch.Recorded);
            batch.SetTag("neraca.batch.size", 3);
        }
        Assert.True(server.Services.GetRequiredService<TracerProvider>().ForceFlush(30_000));
        Assert.Contains(collector.All, r => r.Path == "/v1/traces" && Contains(r.Body, Encoding.UTF8.GetBytes("posting.batch")));
    }

    static bool Contains(byte[] haystack, byte[] needle) => haystack.AsSpan().IndexOf(needle) >= 0;
}
