using System.Net;
using System.Security.Cryptography;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Ledger;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Ledger;

public sealed class AuditTests
{
    static readonly string ServerDll = Path.Combine(AppContext.BaseDirectory, "Neraca.Server.dll");

    [Fact]
    public async Task Audit_verify_command_checks_chains_offline_and_fails_on_tampering()
    {
        var database = await TestStores.NewDatabaseAsync(StoreKind.Sqlite);
        string tenantId;
        await using (var server = await NeracaServer.StartAsync(database))
        {
            var tenant = await server.NewTenantAsync();
            tenantId = tenant.Id;
            var l = new LedgerClient(tenant.Http);
            await l.LedgerAsync();
            await l.AccountAsync("bank", normal: "debit");
            await l.AccountAsync("alice");
            Assert.Equal(HttpStatusCode.Created, (await l.TransferAsync("t1", "bank", "alice", 5)).Response.StatusCode);
            Assert.Equal(HttpStatusCode.Created, (await l.TransferAsync("t2", "bank", "alice", 7)).Response.StatusCode);
        }
        var ok = await ProcessRunner.RunForExitAsync("dotnet", [ServerDll, "audit", "verify", "--database", database, "--tenant", tenantId]);
        Assert.True(ok.ExitCode == 0, ok.Output);
        Assert.Contains("ok ", ok.Output, StringComparison.Ordinal);

        await using (var db = Database.Create(database, "unused"))
        await using (var c = await db.OpenAsync(CancellationToken.None))
        {
            await c.ExecuteAsync("DROP TRIGGER transfers_no_update");
            await c.ExecuteAsync("UPDATE transfers SET amount = 700 WHERE id = 't2'");
        }
        var bad = await ProcessRunner.RunForExitAsync("dotnet", [ServerDll, "audit", "verify", "--database", database, "--tenant", tenantId]);
        Assert.True(bad.ExitCode == 1, bad.Output);
        Assert.Contains("first bad link 2", bad.Output, StringComparison.Ordinal);
    }

    // Golden: the canonical bytes and their hash are persisted forever in chain_links. Changing the encoding would
    // make every existing chain fail verification, so it must never change silently.
    [Fact]
    public void Canonical_chain_bytes_are_frozen()
    {
        var transfer = new TransferRecord
        {
            Id = "t1", LedgerId = "led_1", Seq = 1, DebitAccountId = "bank", CreditAccountId = "alice", Amount = 1_000, Pending = false,
            Code = 7, Description = "fund", Metadata = """{"k":"v"}""", EffectiveAtUs = 1_700_000_000_000_000, CreatedAtUs = 1_700_000_000_000_001,
        };
        var entries = new[]
        {
            new EntryRow("bank", 1, 1, "t1", EntryDirection.Debit, 1_000, 1_000, 1_700_000_000_000_001, 1_700_000_000_000_000),
            new EntryRow("alice", 1, 1, "t1", EntryDirection.Credit, 1_000, 1_000, 1_700_000_000_000_001, 1_700_000_000_000_000),
        };
        var resolution = new ResolutionRow("p1", 2, ResolutionKind.Voided, 0, 1_700_000_000_000_002);
        var bytes = AuditChain.Canonical([transfer], [resolution], entries);
        var link = AuditChain.Link(AuditChain.Genesis, bytes);
        Assert.Equal("5b6ce88c2da3e5d5", Convert.ToHexStringLower(SHA256.HashData(bytes))[..16]);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData([.. AuditChain.Genesis, .. bytes])), Convert.ToHexStringLower(link));
    }

    // Golden: these numbers are stored in the database.
    [Fact]
    public void Persisted_enum_values_are_frozen()
    {
        Assert.Equal([1, 2], Enum.GetValues<NormalBalance>().Select(v => (int)v));
        Assert.Equal([0, 1, 2], Enum.GetValues<AccountFlags>().Select(v => (int)v));
        Assert.Equal([1, 2, 3], Enum.GetValues<ResolutionKind>().Select(v => (int)v));
        Assert.Equal([1, 2], Enum.GetValues<EntryDirection>().Select(v => (int)v));
    }
}
