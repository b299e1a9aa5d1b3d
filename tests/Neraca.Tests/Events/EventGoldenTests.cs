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
}
