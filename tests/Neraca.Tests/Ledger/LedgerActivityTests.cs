using Microsoft.Extensions.DependencyInjection;
using Neraca.Hosting;
using Neraca.Ledger;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Ledger;

/// <summary>The two set-based reads settlement and reconciliation use (<see cref="ILedger.GetAccountActivityAsync"/>,
/// <see cref="ILedger.ListAccountTransfersAsync"/>), on both stores (classes at the end).</summary>
public abstract class LedgerActivityContract(ServerFixture fixture)
{
    ILedger Ledger => fixture.Server.Services.GetRequiredService<ILedger>();

    static readonly DateTimeOffset T0 = new(2026, 11, 30, 0, 0, 0, TimeSpan.Zero);

    async Task<string> TenantAsync()
    {
        var tenant = (await fixture.Server.NewTenantAsync()).Id;
        Assert.True((await Ledger.CreateLedgerAsync(tenant, new CreateLedgerRequest("idr", "IDR", 2), default)).Succeeded);
        foreach (var (id, normal, owner) in new[] { ("bank", "debit", (string?)null), ("settle", "credit", null), ("alice", "credit", "user-alice") })
            Assert.True((await Ledger.CreateAccountAsync(tenant, new CreateAccountRequest(id, "idr", normal, Owner: owner), default)).Succeeded);
        // In the window [T0, T0+1d): two credits and a debit on settle; one just before and one exactly at the end (both outside).
        foreach (var (id, debit, credit, amount, at) in new[]
                 {
                     ("a", "alice", "settle", 1_000L, T0), ("b", "alice", "settle", 2_500L, T0.AddHours(5)), ("c", "settle", "bank", 700L, T0.AddHours(23)),
                     ("before", "alice", "settle", 9L, T0.AddTicks(-10)), ("end", "alice", "settle", 11L, T0.AddDays(1)),
                 })
            Assert.True((await Ledger.CreateTransferAsync(tenant, new CreateTransferRequest(id, debit, credit, amount, EffectiveAt: at), default)).Succeeded);
        // A pending transfer moves nothing until posted; a voided one never.
        Assert.True((await Ledger.CreateTransferAsync(tenant, new CreateTransferRequest("p", "alice", "settle", 50, Pending: true, EffectiveAt: T0.AddHours(1)), default)).Succeeded);
        return tenant;
    }

    [Fact]
    public async Task Activity_sums_posted_entries_per_account_and_side_inside_the_effective_window()
    {
        var tenant = await TenantAsync();
        var r = await Ledger.GetAccountActivityAsync(tenant, new AccountActivityQuery(["settle", "bank", "alice"], T0, T0.AddDays(1)), default);
        Assert.True(r.Succeeded, r.Error?.Code);
        var by = r.Value!.ToDictionary(a => a.Account);
        Assert.Equal(new AccountActivityResponse("settle", 700, 3_500, 1, 2), by["settle"]);
        Assert.Equal(new AccountActivityResponse("bank", 0, 700, 0, 1), by["bank"]);
        Assert.Equal(new AccountActivityResponse("alice", 3_500, 0, 2, 0), by["alice"]);
        Assert.True((await Ledger.PostPendingAsync(tenant, "p", null, default)).Succeeded);
        var posted = await Ledger.GetAccountActivityAsync(tenant, new AccountActivityQuery(["settle"], T0, T0.AddDays(1)), default);
        Assert.Equal(new AccountActivityResponse("settle", 700, 3_550, 1, 3), posted.Value![0]);
        var empty = await Ledger.GetAccountActivityAsync(tenant, new AccountActivityQuery(["settle"], T0.AddDays(-9), T0.AddDays(-8)), default);
        Assert.Equal(new AccountActivityResponse("settle", 0, 0, 0, 0), empty.Value![0]);
    }

    [Fact]
    public async Task Activity_refuses_unknown_accounts_bad_windows_and_other_owners()
    {
        var tenant = await TenantAsync();
        Assert.Equal(LedgerCodes.AccountNotFound, (await Ledger.GetAccountActivityAsync(tenant, new AccountActivityQuery(["settle", "nope"], T0, T0.AddDays(1)), default)).Error!.Code);
        Assert.Equal(LedgerCodes.ValidationFailed, (await Ledger.GetAccountActivityAsync(tenant, new AccountActivityQuery(["settle"], T0, T0), default)).Error!.Code);
        Assert.Equal(LedgerCodes.ValidationFailed, (await Ledger.GetAccountActivityAsync(tenant, new AccountActivityQuery([], T0, T0.AddDays(1)), default)).Error!.Code);
        var alice = Ledger.For("user-alice");
        Assert.True((await alice.GetAccountActivityAsync(tenant, new AccountActivityQuery(["alice"], T0, T0.AddDays(1)), default)).Succeeded);
        Assert.Equal(LedgerCodes.AccountNotFound, (await alice.GetAccountActivityAsync(tenant, new AccountActivityQuery(["settle"], T0, T0.AddDays(1)), default)).Error!.Code);
        var other = (await fixture.Server.NewTenantAsync()).Id;
        Assert.Equal(LedgerCodes.AccountNotFound, (await Ledger.GetAccountActivityAsync(other, new AccountActivityQuery(["settle"], T0, T0.AddDays(1)), default)).Error!.Code);
    }

    [Fact]
    public async Task Account_transfers_come_by_effective_time_in_pages_every_status_included()
    {
        var tenant = await TenantAsync();
        var ids = new List<string>();
        string? after = null;
        do
        {
            var page = await Ledger.ListAccountTransfersAsync(tenant, new AccountTransferQuery("settle", T0, T0.AddDays(1), 2, after), default);
            Assert.True(page.Succeeded, page.Error?.Code);
            Assert.True(page.Value!.Data.Count <= 2);
            ids.AddRange(page.Value.Data.Select(t => t.Id));
            after = page.Value.NextCursor;
        } while (after is not null);
        Assert.Equal(["a", "p", "b", "c"], ids);
        Assert.Equal(LedgerCodes.AccountNotFound, (await Ledger.ListAccountTransfersAsync(tenant, new AccountTransferQuery("nope", T0, T0.AddDays(1)), default)).Error!.Code);
        Assert.Equal(LedgerCodes.ValidationFailed, (await Ledger.ListAccountTransfersAsync(tenant, new AccountTransferQuery("settle", T0, T0.AddDays(1), 0), default)).Error!.Code);
        await Assert.ThrowsAsync<InvalidCursorException>(() => Ledger.ListAccountTransfersAsync(tenant, new AccountTransferQuery("settle", T0, T0.AddDays(1), 2, "!!"), default));
        Assert.Equal(LedgerCodes.AccountNotFound,
            (await Ledger.For("user-alice").ListAccountTransfersAsync(tenant, new AccountTransferQuery("settle", T0, T0.AddDays(1)), default)).Error!.Code);
    }
}

public sealed class SqliteLedgerActivityTests(SqliteServerFixture fixture) : LedgerActivityContract(fixture), IClassFixture<SqliteServerFixture>;

public sealed class PostgresLedgerActivityTests(PostgresServerFixture fixture) : LedgerActivityContract(fixture), IClassFixture<PostgresServerFixture>;
