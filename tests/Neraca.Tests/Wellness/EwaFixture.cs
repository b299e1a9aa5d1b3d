using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Wellness;

/// <summary>One server per test class, its clock starting on Tuesday 2026-03-10 at 10:00 in Jakarta (03:00 UTC), its
/// jobs polled fast and employers' nightly work not spread, so tests see the nightly close within seconds.</summary>
public abstract class EwaFixture(StoreKind kind) : IAsyncLifetime
{
    public static readonly DateTimeOffset Start = new(2026, 3, 10, 3, 0, 0, TimeSpan.Zero);

    NeracaServer? _server;

    public StoreKind Kind { get; } = kind;
    public TestClock Clock { get; } = new(Start);
    public NeracaServer Server => _server ?? throw new InvalidOperationException("fixture not started");

    protected virtual string[] ExtraArgs => [];

    public async ValueTask InitializeAsync()
    {
        var database = await TestStores.NewDatabaseAsync(Kind);
        _server = await NeracaServer.StartAsync(database, Clock.Time, ["--Wellness:EmployerSpreadSeconds=0", "--Jobs:PollIntervalMs=50",
            "--Jobs:SchedulerIntervalMs=200", .. ExtraArgs]);
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
        Clock.Dispose();
    }
}

public sealed class SqliteEwaFixture() : EwaFixture(StoreKind.Sqlite);

public sealed class PostgresEwaFixture() : EwaFixture(StoreKind.Postgres);

/// <summary>A tenant set up for earned wage access, with helpers that read like the API walk-through in docs/ewa.md.</summary>
public sealed class Ewa(NeracaServer server, TestTenant tenant)
{
    public NeracaServer Server => server;
    public TestTenant Tenant => tenant;
    public HttpClient Http => tenant.Http;

    public static async Task<Ewa> NewAsync(NeracaServer server) => new(server, await server.NewTenantAsync());

    public const string Header = "employee_id,name,email,phone,pay_type,pay_rate,start_date,bank_code,bank_account";

    /// <summary>Creates an employer (defaults: payday the 25th, 50%, fee Rp 15.000 paid by the employee, prefunded) and
    /// tops its float up with Rp 100.000.000.</summary>
    public async Task<string> EmployerAsync(object? policy = null, int paydayDay = 25, string[]? holidays = null, string timeZone = "Asia/Jakarta",
        long fund = 10_000_000_000)
    {
        var id = "er-" + Guid.NewGuid().ToString("N")[..10];
        var r = await Http.PostJsonAsync("/v1/ewa/employers", new { id, name = "PT Maju " + id, time_zone = timeZone, payday_day = paydayDay,
            holidays = holidays ?? [], policy = policy ?? new { } });
        Assert.True(r.Response.StatusCode == System.Net.HttpStatusCode.Created, r.Body?.ToJsonString());
        if (fund > 0)
        {
            var f = await Http.PostJsonAsync($"/v1/ewa/employers/{id}/funding", new { amount = fund }, idempotencyKey: "fund-" + id);
            Assert.True(f.Response.IsSuccessStatusCode, f.Body?.ToJsonString());
        }
        return id;
    }

    /// <summary>Imports roster lines (after the header) and waits for the import to complete.</summary>
    public async Task<JsonNode> ImportAsync(string employer, params string[] lines)
    {
        var r = await Http.PostRawAsync($"/v1/ewa/employers/{employer}/employees/import", Header + "\n" + string.Join("\n", lines) + "\n", "text/csv");
        Assert.True(r.Response.StatusCode == System.Net.HttpStatusCode.Accepted, r.Body?.ToJsonString());
        var id = (string)r.Body!["id"]!;
        return (await Polling.Eventually(() => Http.GetJsonAsync($"/v1/ewa/employers/{employer}/imports/{id}"),
            x => (string?)x.Body?["status"] == "completed", "the roster import completes")).Body!;
    }

    public async Task<JsonNode> BalanceAsync(string employer, string employee, HttpClient? as_ = null)
    {
        var r = await (as_ ?? Http).GetJsonAsync($"/v1/ewa/employers/{employer}/employees/{employee}/balance");
        Assert.True(r.Response.IsSuccessStatusCode, r.Body?.ToJsonString());
        return r.Body!;
    }

    public Task<(HttpResponseMessage Response, JsonNode? Body)> WithdrawAsync(string employer, string employee, long amount, string? key = null,
        HttpClient? as_ = null) =>
        (as_ ?? Http).PostJsonAsync($"/v1/ewa/employers/{employer}/employees/{employee}/withdrawals", new { amount }, key ?? Guid.NewGuid().ToString("N"));

    /// <summary>An end-user token for the employee (subject <c>ewa:{employer}:{employee}</c>).</summary>
    public async Task<HttpClient> EmployeeClientAsync(string employer, string employee) => await EndUserAsync($"ewa:{employer}:{employee}");

    public async Task<HttpClient> EndUserAsync(string subject)
    {
        var r = await Http.PostJsonAsync("/v1/auth/tokens", new { subject, scopes = new[] { "ewa:read", "ewa:write" } });
        Assert.True(r.Response.IsSuccessStatusCode, r.Body?.ToJsonString());
        var client = server.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", (string)r.Body!["access_token"]!);
        return client;
    }

    /// <summary>A new server API key with the EWA scopes; bound to <paramref name="employer"/> with <paramref name="role"/> when given.</summary>
    public async Task<HttpClient> KeyClientAsync(string? employer = null, string role = "admin")
    {
        var r = await Http.PostJsonAsync("/v1/api-keys", new { name = "ewa-" + role, scopes = new[] { "ewa:read", "ewa:write" } });
        Assert.True(r.Response.IsSuccessStatusCode, r.Body?.ToJsonString());
        if (employer is not null)
        {
            var g = await Http.PostJsonAsync($"/v1/ewa/employers/{employer}/access", new { principal = "key:" + (string)r.Body!["id"]!, role });
            Assert.True(g.Response.IsSuccessStatusCode, g.Body?.ToJsonString());
        }
        return server.CreateClient((string)r.Body!["key"]!);
    }

    public async Task<long> AccountBalanceAsync(string account)
    {
        var r = await Http.GetJsonAsync($"/v1/accounts/{account}");
        Assert.True(r.Response.IsSuccessStatusCode, r.Body?.ToJsonString());
        return (long)r.Body!["balance"]!["posted"]!;
    }
}
