using System.Net.Http.Headers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Hosting;
using Neraca.Storage;
using Neraca.Tenancy;

namespace Neraca.Tests.Infrastructure;

/// <summary>A real Neraca server (Kestrel on a loopback port) running in the test process.</summary>
public sealed class NeracaServer : IAsyncDisposable
{
    public const string BootstrapKey = "nrc_testbootstrapkey0000000000000000000000";

    NeracaServer(WebApplication app, Uri baseAddress)
    {
        App = app;
        BaseAddress = baseAddress;
    }

    public WebApplication App { get; }
    public Uri BaseAddress { get; }
    public IServiceProvider Services => App.Services;

    public static async Task<NeracaServer> StartAsync(string database, params string[] extraArgs)
    {
        string[] args = ["--database", database, "--urls", "http://127.0.0.1:0", "--bootstrap-api-key", BootstrapKey,
            "--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:Microsoft.Hosting.Lifetime=Warning", .. extraArgs];
        var app = NeracaApp.Create(args);
        await app.Services.GetRequiredService<StorageStartup>().PrepareAsync(CancellationToken.None);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new NeracaServer(app, new Uri(address));
    }

    public HttpClient CreateClient(string? apiKey = null)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        if (apiKey is not null) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        return client;
    }

    /// <summary>A fresh tenant with an admin key: tests isolate themselves by tenant instead of wiping tables.</summary>
    public async Task<TestTenant> NewTenantAsync(params string[] scopes)
    {
        var tenants = Services.GetRequiredService<TenantStore>();
        var id = "t_" + Ids.NewUlid().ToLowerInvariant();
        await tenants.CreateTenantAsync(id, id, CancellationToken.None);
        var key = ApiKey.Generate();
        await tenants.AddKeyAsync(id, "test", key, scopes.Length == 0 ? [Scopes.Admin] : scopes, null, CancellationToken.None);
        return new TestTenant(id, key, CreateClient(key));
    }

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
    }
}

public sealed record TestTenant(string Id, string ApiKey, HttpClient Http);

/// <summary>Where a test class's server keeps its data.</summary>
public static class TestStores
{
    public static async Task<string> NewDatabaseAsync(StoreKind kind) => kind switch
    {
        StoreKind.Postgres => await (await PostgresServer.SharedAsync()).CreateDatabaseAsync(),
        _ => "sqlite:" + Path.Combine(ProcessRunner.NewTempDirectory("sqlite"), "neraca.db"),
    };
}

/// <summary>One server per test class on a fresh database of the given store.</summary>
public abstract class ServerFixture(StoreKind kind) : IAsyncLifetime
{
    NeracaServer? _server;

    public StoreKind Kind { get; } = kind;
    public NeracaServer Server => _server ?? throw new InvalidOperationException("fixture not started");

    public async ValueTask InitializeAsync() => _server = await NeracaServer.StartAsync(await TestStores.NewDatabaseAsync(Kind));

    public async ValueTask DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
    }
}

public sealed class SqliteServerFixture() : ServerFixture(StoreKind.Sqlite);

public sealed class PostgresServerFixture() : ServerFixture(StoreKind.Postgres);
