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

    public static Task<NeracaServer> StartAsync(string database, params string[] extraArgs) => StartAsync(database, time: null, extraArgs);

    /// <summary>A server whose every clock reading and timer comes from <paramref name="time"/> (a
    /// <c>FakeTimeProvider</c>: advance it instead of sleeping).</summary>
    public static async Task<NeracaServer> StartAsync(string database, TimeProvider? time, params string[] extraArgs)
    {
        string[] args = ["--database", database, "--urls", "http://127.0.0.1:0", "--bootstrap-api-key", BootstrapKey,
            "--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:Microsoft.Hosting.Lifetime=Warning",
            // Tests run in the Production environment; on PostgreSQL payouts refuse the built-in sandbox there unless allowed.
            "--Payouts:AllowBuiltInSandbox=true", .. extraArgs];
        WebApplication app;
        using (time is null ? null : ServiceOverrides.Clock(time))
            app = NeracaApp.Create(args);
        if (time is not null && !ReferenceEquals(app.Services.GetRequiredService<TimeProvider>(), time))
            throw new InvalidOperationException("the server did not take the test's TimeProvider");
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
    string? _adminDatabase;

    public StoreKind Kind { get; } = kind;
    public NeracaServer Server => _server ?? throw new InvalidOperationException("fixture not started");

    /// <summary>The server's clock: jump it forward instead of sleeping until a timeout passes.</summary>
    public TestClock Clock { get; } = new();

    /// <summary>The server's database with every right (the server's own setting, unless it connects with fewer):
    /// for tests that play an attacker or an operator.</summary>
    public string AdminDatabase => _adminDatabase ?? throw new InvalidOperationException("fixture not started");

    public async ValueTask InitializeAsync() => (_server, _adminDatabase) = await StartAsync();

    protected virtual async Task<(NeracaServer Server, string AdminDatabase)> StartAsync()
    {
        var database = await TestStores.NewDatabaseAsync(Kind);
        return (await NeracaServer.StartAsync(database, Clock.Time), database);
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
        Clock.Dispose();
    }
}

public sealed class SqliteServerFixture() : ServerFixture(StoreKind.Sqlite);

public sealed class PostgresServerFixture() : ServerFixture(StoreKind.Postgres);

/// <summary>PostgreSQL with the server connected as the application role of <c>deploy/postgres-roles.sql</c>,
/// migrations run as the owner.</summary>
public sealed class PostgresAppRoleServerFixture() : ServerFixture(StoreKind.Postgres)
{
    protected override async Task<(NeracaServer Server, string AdminDatabase)> StartAsync()
    {
        var database = await LeastPrivilege.CreateMigratedDatabaseAsync();
        return (await NeracaServer.StartAsync(database.App, Clock.Time, LeastPrivilege.AppServerArgs), database.Admin);
    }
}
