using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Banking;

/// <summary>What every banking contract class has: its server (from the store's fixture), a new tenant with banking in
/// use per test, and raw reads of the server's database for what the API must not show.</summary>
public abstract class BankingTests(ServerFixture fixture)
{
    protected ServerFixture Fixture => fixture;

    protected NeracaServer Server => fixture.Server;

    protected Task<BankingWorld> WorldAsync() => BankingWorld.StartAsync(Server);

    protected async Task<List<IDictionary<string, object?>>> RawAsync(string sql, object args)
    {
        await using var c = await Server.Services.GetRequiredService<Database>().OpenAsync(CancellationToken.None);
        return (await c.QueryAsync(sql, args)).Cast<IDictionary<string, object?>>().ToList();
    }

    /// <summary>The tenant's events of one type, oldest first: (subject, data).</summary>
    protected async Task<List<(string Subject, string Data)>> EventsAsync(BankingWorld w, string type) =>
        (await RawAsync("SELECT subject, payload FROM events WHERE tenant_id = @t AND type = @type ORDER BY seq", new { t = w.Tenant.Id, type }))
        .Select(e => ((string)e["subject"]!, Convert.ToString(e["payload"], System.Globalization.CultureInfo.InvariantCulture)!)).ToList();
}

/// <summary>A tenant with the banking product in use: helpers that read like the API.</summary>
public sealed class BankingWorld(NeracaServer server, TestTenant tenant)
{
    public NeracaServer Server { get; } = server;
    public TestTenant Tenant { get; } = tenant;
    public HttpClient Http => Tenant.Http;

    /// <summary>The tenant's bank/switch account in the IDR banking ledger (debit-normal: top-ups come from it).</summary>
    public const string Switch = "switch";

    public static async Task<BankingWorld> StartAsync(NeracaServer server)
    {
        var w = new BankingWorld(server, await server.NewTenantAsync());
        // The ledger 'bank-idr' appears with the first account; the switch account joins it.
        await w.CustomerAsync("cus_house", kyc: "full");
        await w.AccountAsync("cus_house", "acc_house");
        var r = await w.Http.PostJsonAsync("/v1/accounts", new { id = Switch, ledger = "bank-idr", normal_balance = "debit" });
        Assert.Equal(HttpStatusCode.Created, r.Response.StatusCode);
        return w;
    }

    public async Task<JsonNode> CustomerAsync(string id, string kyc = "basic", string? phone = null, string name = "Budi Santoso", string? email = null,
        string? nationalId = null)
    {
        var body = new JsonObject { ["id"] = id, ["name"] = name, ["kyc_level"] = kyc, ["phone"] = phone ?? "+62812" + Math.Abs(id.GetHashCode(StringComparison.Ordinal) % 10_000_000).ToString("0000000", System.Globalization.CultureInfo.InvariantCulture) };
        if (email is not null) body["email"] = email;
        if (nationalId is not null) body["national_id"] = nationalId;
        var r = await Http.PostJsonAsync("/v1/customers", body);
        Assert.True(r.Response.StatusCode == HttpStatusCode.Created, r.Body?.ToJsonString());
        return r.Body!;
    }

    public async Task AccountAsync(string customer, string id, string product = "wallet")
    {
        var r = await Http.PostJsonAsync($"/v1/customers/{customer}/accounts", new { id, product, currency = "IDR" });
        Assert.True(r.Response.StatusCode == HttpStatusCode.Created, r.Body?.ToJsonString());
    }

    /// <summary>A customer with one wallet, topped up with <paramref name="topUp"/> from the switch (none when 0).</summary>
    public async Task WalletAsync(string customer, string account, long topUp = 0, string kyc = "basic", string name = "Budi Santoso")
    {
        await CustomerAsync(customer, kyc: kyc, name: name);
        await AccountAsync(customer, account);
        if (topUp > 0) await TopUpAsync(account, topUp, id: "top-" + account);
    }

    public async Task<(HttpResponseMessage Response, JsonNode? Body)> PatchJsonAsync(string path, object body, HttpClient? as_ = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Patch, path) { Content = System.Net.Http.Json.JsonContent.Create(body) };
        var response = await (as_ ?? Http).SendAsync(request);
        return (response, await Infrastructure.Http.ReadAsync(response));
    }

    public Task<(HttpResponseMessage Response, JsonNode? Body)> PayAsync(string id, string from, string to, long amount, string? reference = null,
        string? description = null, HttpClient? as_ = null) =>
        (as_ ?? Http).PostJsonAsync("/v1/payments", new { id, from_account = from, to_account = to, amount, reference, description });

    public async Task TopUpAsync(string account, long amount, string? id = null)
    {
        var r = await PayAsync(id ?? "top-" + Guid.NewGuid().ToString("N")[..12], Switch, account, amount, "TOPUP", "Top-up from bank");
        Assert.True(r.Response.StatusCode == HttpStatusCode.Created, r.Body?.ToJsonString());
    }

    public async Task<JsonNode> SummaryAsync(string account, string? at = null)
    {
        var r = await Http.GetJsonAsync($"/v1/accounts/{account}/summary" + (at is null ? "" : "?at=" + Uri.EscapeDataString(at)));
        Assert.True(r.Response.StatusCode == HttpStatusCode.OK, r.Body?.ToJsonString());
        return r.Body!;
    }

    /// <summary>A client with an end-user token for <paramref name="subject"/> (banking and ledger scopes).</summary>
    public async Task<HttpClient> EndUserAsync(string subject)
    {
        var (response, body) = await Http.PostJsonAsync("/v1/auth/tokens",
            new { subject, scopes = new[] { "banking:read", "banking:write", "ledger:read", "ledger:write" } });
        Assert.True(response.StatusCode == HttpStatusCode.Created, body?.ToJsonString());
        var client = Server.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", (string)body!["access_token"]!);
        return client;
    }
}
