using System.Text;
using Neraca.Events;
using Neraca.Ledger;

namespace Neraca.Tests.Events;

/// <summary>Event names and JSON are persisted and published: consumers in other languages parse them. These golden
/// values change only with a documented, versioned contract change.</summary>
public sealed class EventGoldenTests
{
    [Fact]
    public void Event_type_names_are_frozen()
    {
        Assert.Equal(
            ["account.created", "transfer.pending", "transfer.posted", "transfer.voided", "transfer.expired", "webhook.endpoint.disabled"],
            new[] { LedgerEventTypes.AccountCreated, LedgerEventTypes.TransferPending, LedgerEventTypes.TransferPosted, LedgerEventTypes.TransferVoided,
                LedgerEventTypes.TransferExpired, EventTypes.WebhookEndpointDisabled }.Select(t => t.Name));
    }

    [Theory]
    [InlineData("Transfer.Posted")]
    [InlineData("transfer..posted")]
    [InlineData("transfer.*")]
    [InlineData("")]
    public void An_event_type_name_that_breaks_the_naming_rule_is_refused(string name) =>
        Assert.Throws<ArgumentException>(() => new EventType(name));

    [Fact]
    public void Transfer_event_envelope_json_is_frozen()
    {
        var transfer = new TransferRecord
        {
            Id = "trf_1", LedgerId = "led_1", Seq = 7, DebitAccountId = "bank", CreditAccountId = "alice", Amount = 150000, Pending = true,
            TimeoutAtUs = 1_700_000_060_000_000, Code = 3, Description = "top-up", Metadata = "{\"k\":\"v\"}",
            EffectiveAtUs = 1_700_000_000_000_000, CreatedAtUs = 1_700_000_000_000_000,
        };
        var payload = LedgerJson.Serialize(LedgerJson.ToResponse(transfer, "wallets-idr"));
        var row = new EventRow(42, "evt_1", "default", "led_1", LedgerEventTypes.TransferPending.Name, "trf_1", payload, 1_700_000_000_000_000);
        Assert.Equal(
            """{"id":"evt_1","type":"transfer.pending","subject":"trf_1","ledger_id":"led_1","created_at":"2023-11-14T22:13:20+00:00","data":{"id":"trf_1","ledger":"wallets-idr","debit_account":"bank","credit_account":"alice","amount":150000,"status":"pending","posted_amount":0,"code":3,"description":"top-up","metadata":{"k":"v"},"pending":true,"timeout_at":"2023-11-14T22:14:20+00:00","reverses":null,"created_at":"2023-11-14T22:13:20+00:00","effective_at":"2023-11-14T22:13:20+00:00"}}""",
            Encoding.UTF8.GetString(EventEnvelope.ToJsonBytes(row)));
    }

    [Fact]
    public void Split_bill_event_type_names_are_frozen() =>
        Assert.Equal(
            ["split.group.created", "split.group.updated", "split.member.added", "split.member.updated", "split.member.removed",
                "split.expense.created", "split.expense.updated", "split.expense.deleted", "split.settlement.created", "split.settlement.completed",
                "split.settlement.failed", "split.receipt.ready", "split.receipt.rejected"],
            Neraca.SplitBill.SplitEventTypes.All.Select(t => t.Name));

    [Fact]
    public void Settlement_and_reconciliation_event_type_names_are_frozen() =>
        Assert.Equal(
            ["settlement.run.created", "settlement.run.posted", "settlement.run.failed", "reconciliation.statement.imported", "reconciliation.statement.matched",
                "reconciliation.exception.resolved"],
            new[] { Neraca.Settlement.SettlementEventTypes.RunCreated, Neraca.Settlement.SettlementEventTypes.RunPosted, Neraca.Settlement.SettlementEventTypes.RunFailed,
                Neraca.Settlement.SettlementEventTypes.StatementImported, Neraca.Settlement.SettlementEventTypes.StatementMatched,
                Neraca.Settlement.SettlementEventTypes.ExceptionResolved }.Select(t => t.Name));

    [Fact]
    public void Settlement_run_event_json_is_frozen()
    {
        var run = new Neraca.Settlement.Runs.RunResponse("run_1", "2026-11-30", "posted", "api", null, null,
            [new("bca", "due-bca", "bank-bca", DateTimeOffset.FromUnixTimeSeconds(1_764_410_400), DateTimeOffset.FromUnixTimeSeconds(1_764_496_800), 100, 30, 2, 70, "settle:bca:2026-11-30")],
            DateTimeOffset.FromUnixTimeSeconds(1_764_500_000), DateTimeOffset.FromUnixTimeSeconds(1_764_500_000));
        Assert.Equal(
            """{"id":"run_1","business_date":"2026-11-30","status":"posted","trigger":"api","failure_code":null,"failure_detail":null,"items":[{"counterparty":"bca","settlement_account":"due-bca","cash_account":"bank-bca","window_from":"2025-11-29T10:00:00+00:00","window_to":"2025-11-30T10:00:00+00:00","credits":100,"debits":30,"count":2,"net":70,"transfer_id":"settle:bca:2026-11-30"}],"created_at":"2025-11-30T10:53:20+00:00","updated_at":"2025-11-30T10:53:20+00:00"}""",
            Neraca.Settlement.SettlementJson.Serialize(run));
    }

    [Fact]
    public void Payout_event_type_names_are_frozen() =>
        Assert.Equal(["payout.succeeded", "payout.failed"],
            new[] { global::Neraca.Payouts.PayoutEventTypes.PayoutSucceeded, global::Neraca.Payouts.PayoutEventTypes.PayoutFailed }.Select(t => t.Name));

    [Fact]
    public void Payout_event_data_json_is_frozen()
    {
        var view = new global::Neraca.Payouts.PayoutView("ewa:wd_1", "failed", "alice", 150000,
            new global::Neraca.Payouts.PayoutDestinationView("bank", "BCA", "******7890", "B*** S******"), "Withdrawal", null,
            "invalid_destination", "The destination account does not exist.", "disb_1",
            DateTimeOffset.FromUnixTimeSeconds(1_700_000_000), DateTimeOffset.FromUnixTimeSeconds(1_700_000_002));
        var options = new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web);
        Neraca.Hosting.ServiceDefaults.ConfigureJson(options);
        Assert.Equal(
            """{"id":"ewa:wd_1","status":"failed","source_account":"alice","amount":150000,"destination":{"type":"bank","code":"BCA","account_number_masked":"******7890","account_name":"B*** S******"},"reference":"Withdrawal","description":null,"failure_code":"invalid_destination","failure_reason":"The destination account does not exist.","provider_reference":"disb_1","created_at":"2023-11-14T22:13:20+00:00","updated_at":"2023-11-14T22:13:22+00:00"}""",
            System.Text.Json.JsonSerializer.Serialize(view, options));
    }

    [Fact]
    public void Ewa_event_type_names_and_payloads_are_frozen()
    {
        Assert.Equal(["ewa.withdrawal.requested", "ewa.withdrawal.paid", "ewa.withdrawal.failed", "ewa.cycle.closed", "ewa.attendance.overdue"],
            new[] { Neraca.Wellness.EwaEventTypes.WithdrawalRequested, Neraca.Wellness.EwaEventTypes.WithdrawalPaid, Neraca.Wellness.EwaEventTypes.WithdrawalFailed,
                Neraca.Wellness.EwaEventTypes.CycleClosed, Neraca.Wellness.EwaEventTypes.AttendanceOverdue }.Select(t => t.Name));
        Assert.Equal("""{"withdrawal_id":"wd_1","employer_id":"er_1","employee_id":"e1","cycle":"2026-03-25","amount":10000000,"fee":1500000,"fee_payer":"employee","status":"failed","failure_code":"payout_failed"}""",
            Neraca.Wellness.EwaEventPayloads.Serialize(new Neraca.Wellness.EwaEventPayloads.Withdrawal("wd_1", "er_1", "e1", "2026-03-25", 10_000_000, 1_500_000, "employee", "failed", "payout_failed")));
        Assert.Equal("""{"employer_id":"er_1","cycle":"2026-03-13","start":"2026-02-14","employees":2,"advances":70000000,"fees":2000000,"due":72000000,"recovered":71000000,"carried":1000000}""",
            Neraca.Wellness.EwaEventPayloads.Serialize(new Neraca.Wellness.EwaEventPayloads.CycleClosed("er_1", "2026-03-13", "2026-02-14", 2, 70_000_000, 2_000_000, 72_000_000, 71_000_000, 1_000_000)));
    }

    [Fact]
    public void Banking_event_type_names_are_frozen() =>
        Assert.Equal(["customer.created", "customer.updated", "payment.completed", "payment.failed", "payment.reversed", "statement.ready",
                "withdrawal.requested", "withdrawal.succeeded", "withdrawal.failed"],
            Neraca.Banking.BankingEventTypes.All.Select(t => t.Name));

    [Fact]
    public void Banking_payment_event_json_is_frozen()
    {
        var payment = new Neraca.Banking.Payments.PaymentResponse("pay_1", "acc_a", "acc_b", 4_500_000, "INV-1", "Coffee", "completed", "bank:pay:pay_1", null, null,
            DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch);
        Assert.Equal(
            """{"id":"pay_1","from_account":"acc_a","to_account":"acc_b","amount":4500000,"reference":"INV-1","status":"completed","transfer_id":"bank:pay:pay_1","failure_code":null}""",
            Neraca.Banking.Payments.Payments.EventPayload(payment));
    }

    [Fact]
    public void Banking_withdrawal_event_json_is_frozen()
    {
        var withdrawal = new Neraca.Banking.Withdrawals.WithdrawalResponse("wd_1", "acc_a", 20_000_000, new("bank", "BCA", "******7890"), "Cash out", "To BCA",
            "failed", "bank:wd:wd_1", "payout:bank:wd:wd_1:reserve", "invalid_destination", "No such account", DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch);
        Assert.Equal(
            """{"id":"wd_1","account":"acc_a","amount":20000000,"destination":{"type":"bank","code":"BCA","account_number_masked":"******7890"},"reference":"Cash out","status":"failed","payout_id":"bank:wd:wd_1","transfer_id":"payout:bank:wd:wd_1:reserve","failure_code":"invalid_destination"}""",
            Neraca.Banking.Withdrawals.Withdrawals.EventPayload(withdrawal));
    }
}
