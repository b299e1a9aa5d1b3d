using Microsoft.Extensions.DependencyInjection;
using Neraca.Ledger;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Ledger;

/// <summary>Issue #16's ledger read: an account's entries of a list of transfers, on both stores.</summary>
public abstract class LedgerBankingReadsContract(ServerFixture fixture)
{
    [Fact]
    public async Task Entries_of_given_transfers_carry_running_balances_and_respect_ownership()
    {
        var ledger = fixture.Server.Services.GetRequiredService<ILedger>();
        var tenant = (await fixture.Server.NewTenantAsync()).Id;
        var ct = CancellationToken.None;
        Assert.True((await ledger.CreateLedgerAsync(tenant, new CreateLedgerRequest("l", "IDR", 2), ct)).Succeeded);
        Assert.True((await ledger.CreateAccountAsync(tenant, new CreateAccountRequest("bank", "l", "debit"), ct)).Succeeded);
        Assert.True((await ledger.CreateAccountAsync(tenant, new CreateAccountRequest("alice", "l", "credit", Owner: "u-alice"), ct)).Succeeded);
        Assert.True((await ledger.CreateAccountAsync(tenant, new CreateAccountRequest("bob", "l", "credit", Owner: "u-bob"), ct)).Succeeded);
        foreach (var (id, from, to, amount) in new[] { ("t1", "bank", "alice", 1_000L), ("t2", "alice", "bob", 300L), ("t3", "bank", "bob", 50L), ("t4", "bank", "alice", 7L) })
            Assert.True((await ledger.CreateTransferAsync(tenant, new CreateTransferRequest(id, from, to, amount), ct)).Succeeded);
        // A pending transfer posts nothing until it is posted.
        Assert.True((await ledger.CreateTransferAsync(tenant, new CreateTransferRequest("p1", "alice", "bob", 5, Pending: true), ct)).Succeeded);

        var found = await ledger.ListEntriesOfTransfersAsync(tenant, "alice", new EntriesOfTransfersQuery(["t4", "t2", "t3", "p1", "missing"]), ct);
        Assert.True(found.Succeeded);
        Assert.Equal(["t2", "t4"], found.Value!.Select(e => e.TransferId));
        Assert.Equal([700L, 707L], found.Value!.Select(e => e.BalanceAfter));
        Assert.Equal(["debit", "credit"], found.Value!.Select(e => e.Direction));

        Assert.Single((await ledger.For("u-alice").ListEntriesOfTransfersAsync(tenant, "alice", new EntriesOfTransfersQuery(["t2"]), ct)).Value!);
        Assert.Equal(LedgerCodes.AccountNotFound,
            (await ledger.For("u-bob").ListEntriesOfTransfersAsync(tenant, "alice", new EntriesOfTransfersQuery(["t2"]), ct)).Error!.Code);
        Assert.Equal(LedgerCodes.AccountNotFound, (await ledger.ListEntriesOfTransfersAsync(tenant, "nobody", new EntriesOfTransfersQuery(["t2"]), ct)).Error!.Code);
        Assert.Empty((await ledger.ListEntriesOfTransfersAsync(tenant, "alice", new EntriesOfTransfersQuery([]), ct)).Value!);
        var tooMany = Enumerable.Range(0, EntriesOfTransfersQuery.TransferIdsMax + 1).Select(i => "t" + i).ToArray();
        Assert.Equal(LedgerCodes.ValidationFailed, (await ledger.ListEntriesOfTransfersAsync(tenant, "alice", new EntriesOfTransfersQuery(tooMany), ct)).Error!.Code);
        // Another tenant sees nothing of it.
        var other = (await fixture.Server.NewTenantAsync()).Id;
        Assert.Equal(LedgerCodes.AccountNotFound, (await ledger.ListEntriesOfTransfersAsync(other, "alice", new EntriesOfTransfersQuery(["t2"]), ct)).Error!.Code);
    }
}

public sealed class SqliteLedgerBankingReadsTests(SqliteServerFixture fixture) : LedgerBankingReadsContract(fixture), IClassFixture<SqliteServerFixture>;

public sealed class PostgresLedgerBankingReadsTests(PostgresServerFixture fixture) : LedgerBankingReadsContract(fixture), IClassFixture<PostgresServerFixture>;
