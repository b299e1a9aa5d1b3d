using Microsoft.Extensions.DependencyInjection;
using Neraca.Ledger;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Ledger;

/// <summary>The in-process ledger API as a product calls it: ids derived from the product's keys, results and codes
/// as over HTTP, and a bad operation that fails alone instead of failing the group commit it would have joined.</summary>
public sealed class InProcessLedgerTests(PostgresServerFixture fixture) : IClassFixture<PostgresServerFixture>
{
    ILedger Ledger => fixture.Server.Services.GetRequiredService<ILedger>();

    async Task<string> FundedTenantAsync()
    {
        var tenant = (await fixture.Server.NewTenantAsync()).Id;
        Assert.Equal(LedgerOutcome.Created, (await Ledger.CreateLedgerAsync(tenant, new CreateLedgerRequest("wallets", "IDR", 2), default)).Outcome);
        Assert.True((await Ledger.CreateAccountAsync(tenant, new CreateAccountRequest("bank", "wallets", "debit"), default)).Succeeded);
        Assert.True((await Ledger.CreateAccountAsync(tenant, new CreateAccountRequest("alice", "wallets", "credit",
            Flags: ["debits_must_not_exceed_credits"]), default)).Succeeded);
        Assert.True((await Ledger.CreateAccountAsync(tenant, new CreateAccountRequest("bob", "wallets", "credit"), default)).Succeeded);
        Assert.True((await Ledger.CreateTransferAsync(tenant, new CreateTransferRequest("fund", "bank", "alice", 1_000), default)).Succeeded);
        return tenant;
    }

    [Fact]
    public async Task A_retried_step_with_a_derived_id_posts_once()
    {
        var tenant = await FundedTenantAsync();
        var step = new CreateTransferRequest("ewa:wd_123:advance", "alice", "bob", 300);
        var first = await Ledger.CreateTransferAsync(tenant, step, default);
        var retry = await Ledger.CreateTransferAsync(tenant, step, default);
        Assert.Equal(LedgerOutcome.Created, first.Outcome);
        Assert.Equal(LedgerOutcome.Replayed, retry.Outcome);
        Assert.Equal(700, (await Ledger.GetAccountAsync(tenant, "alice", default)).Value!.Balance.Posted);
        var changed = await Ledger.CreateTransferAsync(tenant, step with { Amount = 301 }, default);
        Assert.Equal(LedgerErrorKind.Conflict, changed.Error!.Kind);
        Assert.Equal(LedgerCodes.TransferExistsWithDifferentFields, changed.Error.Code);
        Assert.Equal("amount", changed.Error.Field);
    }

    // Found in CI: a hold's expiry job voided a transfer whose timeout had passed before the ledger's sweep reached it;
    // the void was refused (pending_transfer_expired), the transfer stayed pending and the hold active until the next
    // minute. The job now expires it through this call.
    [Fact]
    public async Task A_timed_out_pending_that_the_sweep_has_not_reached_can_be_expired_at_once_but_not_voided()
    {
        var tenant = await FundedTenantAsync();
        Assert.True((await Ledger.CreateTransferAsync(tenant, new CreateTransferRequest("hold", "alice", "bob", 400, Pending: true, TimeoutSeconds: 2), default)).Succeeded);
        var early = await Ledger.ExpirePendingAsync(tenant, "hold", default);
        Assert.Equal(LedgerCodes.PendingTransferNotPending, early.Error!.Code);
        Assert.Equal("pending", (await Ledger.GetTransferAsync(tenant, "hold", default)).Value!.Status);

        fixture.Clock.Jump(TimeSpan.FromSeconds(3));
        var voided = await Ledger.VoidPendingAsync(tenant, "hold", default);
        Assert.Equal(LedgerCodes.PendingTransferExpired, voided.Error!.Code);
        var expired = await Ledger.ExpirePendingAsync(tenant, "hold", default);
        Assert.True(expired.Succeeded, expired.Error?.Detail);
        Assert.Equal("expired", expired.Value!.Status);
        Assert.Equal("expired", (await Ledger.ExpirePendingAsync(tenant, "hold", default)).Value!.Status);
        Assert.Equal(1_000, (await Ledger.GetAccountAsync(tenant, "alice", default)).Value!.Balance.Available);
        await Conservation.AssertAsync(fixture.Server, tenant);
    }

    [Fact]
    public async Task An_in_process_transfer_without_an_id_is_refused_before_any_work()
    {
        var tenant = await FundedTenantAsync();
        var r = await Ledger.CreateTransferAsync(tenant, new CreateTransferRequest(null, "alice", "bob", 1), default);
        Assert.Equal(LedgerCodes.ValidationFailed, r.Error!.Code);
        Assert.Contains("id", r.Error.Errors!.Keys);
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(-5L)]
    public async Task A_non_positive_amount_is_a_validation_error_not_a_failed_batch(long amount)
    {
        var tenant = await FundedTenantAsync();
        var r = await Ledger.CreateTransferAsync(tenant, new CreateTransferRequest("bad", "alice", "bob", amount), default);
        Assert.Equal(LedgerCodes.ValidationFailed, r.Error!.Code);
        Assert.Contains("amount", r.Error.Errors!.Keys);
    }

    [Fact]
    public async Task A_bad_operation_submitted_past_validation_fails_alone_and_its_neighbours_commit()
    {
        var tenant = await FundedTenantAsync();
        var pipeline = fixture.Server.Services.GetRequiredService<PostingPipeline>();
        var store = fixture.Server.Services.GetRequiredService<LedgerStore>();
        var ledger = (await store.GetLedgerAsync(tenant, "wallets", default))!;
        var good = Enumerable.Range(0, 20).Select(i => Ledger.CreateTransferAsync(tenant, new CreateTransferRequest($"good-{i}", "alice", "bob", 1), default)).ToList();
        var bad = new PostingOp { Kind = OpKind.Create, TransferId = "same-account", DebitAccountId = "alice", CreditAccountId = "alice", Amount = 1 };
        await Assert.ThrowsAsync<ArgumentException>(() => pipeline.SubmitAsync(tenant, ledger, [bad], default));
        var zero = new PostingOp { Kind = OpKind.Create, TransferId = "zero", DebitAccountId = "alice", CreditAccountId = "bob", Amount = 0 };
        await Assert.ThrowsAsync<ArgumentException>(() => pipeline.SubmitAsync(tenant, ledger, [zero], default));
        Assert.All(await Task.WhenAll(good), r => Assert.Equal(LedgerOutcome.Created, r.Outcome));
        Assert.Equal(980, (await Ledger.GetAccountAsync(tenant, "alice", default)).Value!.Balance.Posted);
        await Conservation.AssertAsync(fixture.Server, tenant);
    }

    [Fact]
    public async Task Errors_carry_the_same_codes_as_the_http_api()
    {
        var tenant = await FundedTenantAsync();
        Assert.Equal(LedgerCodes.InsufficientFunds,
            (await Ledger.CreateTransferAsync(tenant, new CreateTransferRequest("too-much", "alice", "bob", 5_000), default)).Error!.Code);
        Assert.Equal(LedgerCodes.AccountNotFound,
            (await Ledger.CreateTransferAsync(tenant, new CreateTransferRequest("ghost", "alice", "nobody", 1), default)).Error!.Code);
        var missing = await Ledger.GetTransferAsync(tenant, "never", default);
        Assert.Equal((LedgerErrorKind.NotFound, LedgerCodes.TransferNotFound), (missing.Error!.Kind, missing.Error.Code));
    }
}
