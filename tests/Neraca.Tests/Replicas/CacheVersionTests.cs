using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Caching;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Replicas;

/// <summary>The race that eviction cannot close: a reader loads the old row, the writer commits and invalidates, then the
/// reader stores what it loaded. Version tokens make that stored value unreachable for every later read.</summary>
public sealed class CacheVersionTests
{
    static async Task AssertSlowReaderCannotPutAnOldValueBackAsync(NeracaServer server)
    {
        var cache = server.Services.GetRequiredService<NeracaCache>();
        var scope = "test:" + Guid.NewGuid().ToString("N");
        var loading = new TaskCompletionSource();
        var release = new TaskCompletionSource();
        var slowRead = cache.GetOrLoadAsync<string>("test", scope, scope + ":value", async _ =>
        {
            loading.SetResult();
            await release.Task;
            return "old";
        }, CancellationToken.None).AsTask();
        await loading.Task; // the reader has read the database (before the write)
        await cache.InvalidateAsync([scope]); // the writer committed; invalidation precedes its acknowledgement
        release.SetResult();
        Assert.Equal("old", await slowRead); // the racing read itself may see the old value...

        var after = await cache.GetOrLoadAsync<string>("test", scope, scope + ":value", _ => Task.FromResult<string?>("new"), CancellationToken.None);
        Assert.Equal("new", after); // ...but no read that starts after the acknowledgement does
        var cached = await cache.GetOrLoadAsync<string>("test", scope, scope + ":value", _ => Task.FromResult<string?>("reloaded"), CancellationToken.None);
        Assert.Equal("new", cached);
    }

    [Fact]
    public async Task Slow_reader_cannot_put_an_old_value_back_in_process()
    {
        await using var server = await NeracaServer.StartAsync(await TestStores.NewDatabaseAsync(StoreKind.Sqlite));
        await AssertSlowReaderCannotPutAnOldValueBackAsync(server);
    }

    [Fact]
    public async Task Slow_reader_cannot_put_an_old_value_back_with_redis()
    {
        var redis = await RedisServer.SharedAsync();
        await using var server = await NeracaServer.StartAsync(await TestStores.NewDatabaseAsync(StoreKind.Sqlite), "--Redis:Url=" + redis.Url);
        await AssertSlowReaderCannotPutAnOldValueBackAsync(server);
    }

    [Fact]
    public async Task Server_starts_and_serves_when_the_configured_redis_is_unreachable()
    {
        await using var server = await NeracaServer.StartAsync(await TestStores.NewDatabaseAsync(StoreKind.Sqlite),
            "--Redis:Url=127.0.0.1:" + ProcessRunner.FreePort());
        var tenant = await server.NewTenantAsync();
        for (var i = 0; i < 3; i++) Assert.Equal(HttpStatusCode.OK, (await tenant.Http.GetAsync("/v1/api-keys")).StatusCode);
        var (_, health) = await server.CreateClient().GetJsonAsync("/health/ready");
        Assert.Equal("degraded", (string)health!["checks"]!["redis"]!["status"]!);
    }
}
