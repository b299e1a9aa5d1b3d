using Microsoft.Extensions.DependencyInjection;
using Neraca.Storage;
using Neraca.Tenancy;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Replicas;

/// <summary>Three Neraca servers (each its own DI container, L1 cache and rate limiter) sharing one PostgreSQL database
/// and one Redis, as replicas behind a load balancer would.</summary>
public sealed class ReplicaCluster : IAsyncDisposable
{
    /// <summary>A tenant whose API keys may make <see cref="LimitedPerMinute"/> requests per minute (configured at start).</summary>
    public const string LimitedTenant = "limited-tenant";
    public const int LimitedPerMinute = 30;

    ReplicaCluster(IReadOnlyList<NeracaServer> servers, RedisServer redis)
    {
        Servers = servers;
        Redis = redis;
    }

    public IReadOnlyList<NeracaServer> Servers { get; }
    public NeracaServer A => Servers[0];
    public NeracaServer B => Servers[1];
    public NeracaServer C => Servers[2];
    public RedisServer Redis { get; }

    public static async Task<ReplicaCluster> StartAsync(RedisServer redis, params string[] extraArgs)
    {
        var database = await TestStores.NewDatabaseAsync(StoreKind.Postgres);
        string[] args = ["--Redis:Url=" + redis.Url, $"--RateLimits:Tenants:{LimitedTenant}:ApiKeyPerMinute={LimitedPerMinute}", .. extraArgs];
        var servers = new List<NeracaServer>();
        // Sequentially: the first applies the migrations, the others find them applied.
        for (var i = 0; i < 3; i++) servers.Add(await NeracaServer.StartAsync(database, args));
        return new ReplicaCluster(servers, redis);
    }

    /// <summary>A fresh tenant with an admin key, and a client for that key on every replica.</summary>
    public async Task<(TestTenant Tenant, HttpClient[] Clients)> NewTenantAsync(string? id = null)
    {
        var tenant = id is null ? await A.NewTenantAsync() : await NamedTenantAsync(id);
        return (tenant, Servers.Select(s => s.CreateClient(tenant.ApiKey)).ToArray());
    }

    async Task<TestTenant> NamedTenantAsync(string id)
    {
        var tenants = A.Services.GetRequiredService<TenantStore>();
        await tenants.CreateTenantAsync(id, id, CancellationToken.None);
        var key = ApiKey.Generate();
        await tenants.AddKeyAsync(id, "test", key, [Scopes.Admin], null, CancellationToken.None);
        return new TestTenant(id, key, A.CreateClient(key));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var s in Servers) await s.DisposeAsync();
    }
}

/// <summary>The cluster on the shared Redis, one per test class.</summary>
public sealed class ReplicaClusterFixture : IAsyncLifetime
{
    ReplicaCluster? _cluster;

    public ReplicaCluster Cluster => _cluster ?? throw new InvalidOperationException("fixture not started");

    /// <summary>Redis answers these replicas within a second: on two busy cores the default 250 ms timeout made a version
    /// bump time out now and then (about one full run in seven), and what a lost bump costs is the outage tests' subject
    /// (RedisOutageTests), not this fixture's.</summary>
    public async ValueTask InitializeAsync() => _cluster = await ReplicaCluster.StartAsync(await RedisServer.SharedAsync(), "--Redis:OperationTimeoutMs=1000");

    public async ValueTask DisposeAsync()
    {
        if (_cluster is not null) await _cluster.DisposeAsync();
    }
}
