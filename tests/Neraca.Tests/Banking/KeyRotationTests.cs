using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Jobs;
using Neraca.Security;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Banking;

/// <summary>A server whose key ring is a file (as a mounted secret would be), which the test rewrites to rotate keys.</summary>
public abstract class KeyFileServerFixture(StoreKind kind) : ServerFixture(kind)
{
    public string KeysFile { get; } = Path.Combine(ProcessRunner.NewTempDirectory("keys"), "keys.json");
    public string LookupKey { get; } = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
    public string K1 { get; } = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    public void WriteKeys(string active, Dictionary<string, string> keys) =>
        File.WriteAllText(KeysFile, JsonSerializer.Serialize(new Dictionary<string, object> { ["active_key"] = active, ["keys"] = keys, ["lookup_key"] = LookupKey }));

    protected override async Task<(NeracaServer Server, string AdminDatabase)> StartAsync()
    {
        WriteKeys("k1", new() { ["k1"] = K1 });
        var database = await TestStores.NewDatabaseAsync(Kind);
        return (await NeracaServer.StartAsync(database, Clock.Time, "--Encryption:KeysFile=" + KeysFile), database);
    }
}

public sealed class SqliteKeyFileServerFixture() : KeyFileServerFixture(StoreKind.Sqlite);

public sealed class PostgresKeyFileServerFixture() : KeyFileServerFixture(StoreKind.Postgres);

public abstract class KeyRotationContract(KeyFileServerFixture fixture)
{
    async Task<List<(string Id, string Name, string? Phone)>> StoredAsync(string tenantId)
    {
        await using var c = await fixture.Server.Services.GetRequiredService<Database>().OpenAsync(CancellationToken.None);
        return (await c.QueryAsync<(string, string, string?)>("SELECT id, name, phone FROM banking_customers WHERE tenant_id = @t ORDER BY id", new { t = tenantId })).ToList();
    }

    [Fact]
    public async Task Rotated_key_keeps_old_values_readable_and_the_reencryption_job_moves_them_to_the_new_key()
    {
        var w = await BankingWorld.StartAsync(fixture.Server);
        await w.CustomerAsync("cus_r1", name: "Rina Wati", phone: "+628120000001");
        await w.CustomerAsync("cus_r2", name: "Dewi Lestari", phone: "+628120000002");
        Assert.All(await StoredAsync(w.Tenant.Id), r => Assert.StartsWith("e1:k1:", r.Name, StringComparison.Ordinal));

        // Add k2 and make it active; the file is re-read within seconds (of the server's clock).
        fixture.WriteKeys("k2", new() { ["k1"] = fixture.K1, ["k2"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)) });
        fixture.Clock.Jump(TimeSpan.FromSeconds(10));
        await Polling.Eventually(async () =>
        {
            var ring = await fixture.Server.Services.GetRequiredService<FieldEncryption>().GetAsync(CancellationToken.None);
            return ring.ActiveKeyId == "k2";
        }, "the key ring file was reloaded");
        await w.CustomerAsync("cus_r3", name: "Agus Salim", phone: "+628120000003");
        var stored = (await StoredAsync(w.Tenant.Id)).ToDictionary(r => r.Id, r => r.Name);
        Assert.StartsWith("e1:k1:", stored["cus_r1"], StringComparison.Ordinal);
        Assert.StartsWith("e1:k2:", stored["cus_r3"], StringComparison.Ordinal);
        Assert.Equal("Rina Wati", (string?)(await w.Http.GetJsonAsync("/v1/customers/cus_r1")).Body!["name"]);
        Assert.Single((await w.Http.GetJsonAsync("/v1/customers?phone=%2B628120000001")).Body!["data"]!.AsArray());

        await fixture.Server.Services.GetRequiredService<JobStore>().EnqueueAsync(new JobRequest("default", ReencryptJob.TypeName, Key: "rotate-" + w.Tenant.Id),
            CancellationToken.None);
        await Polling.Eventually(async () => (await StoredAsync(w.Tenant.Id)).All(r => r.Name.StartsWith("e1:k2:", StringComparison.Ordinal)
            && r.Phone!.StartsWith("e1:k2:", StringComparison.Ordinal)), "every value was re-encrypted with k2");
        Assert.Equal("Rina Wati", (string?)(await w.Http.GetJsonAsync("/v1/customers/cus_r1")).Body!["name"]);
        Assert.Equal("+628120000002", (string?)(await w.Http.GetJsonAsync("/v1/customers/cus_r2")).Body!["phone"]);
        Assert.Equal(HttpStatusCode.OK, (await w.Http.GetJsonAsync("/v1/customers?phone=%2B628120000002")).Response.StatusCode);
        Assert.Single((await w.Http.GetJsonAsync("/v1/customers?phone=%2B628120000002")).Body!["data"]!.AsArray());
    }
}

[Collection(BankingCollection.Name)]
public sealed class SqliteKeyRotationTests(SqliteKeyFileServerFixture fixture) : KeyRotationContract(fixture), IClassFixture<SqliteKeyFileServerFixture>;

[Collection(BankingCollection.Name)]
public sealed class PostgresKeyRotationTests(PostgresKeyFileServerFixture fixture) : KeyRotationContract(fixture), IClassFixture<PostgresKeyFileServerFixture>;
