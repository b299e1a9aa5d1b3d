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
    public void Banking_event_type_names_are_frozen() =>
        Assert.Equal(["customer.created", "customer.updated", "payment.completed", "payment.failed", "payment.reversed", "statement.ready"],
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
}
