using Neraca.Events;

namespace Neraca.Banking;

/// <summary>The event types banking emits (persisted and published: never renamed; golden tests freeze them). Payloads
/// carry ids, amounts and states, never personal data.</summary>
public static class BankingEventTypes
{
    public static readonly EventType CustomerCreated = new("customer.created");
    public static readonly EventType CustomerUpdated = new("customer.updated");
    public static readonly EventType PaymentCompleted = new("payment.completed");
    public static readonly EventType PaymentFailed = new("payment.failed");
    public static readonly EventType PaymentReversed = new("payment.reversed");
    public static readonly EventType StatementReady = new("statement.ready");
    public static readonly EventType WithdrawalRequested = new("withdrawal.requested");
    public static readonly EventType WithdrawalSucceeded = new("withdrawal.succeeded");
    public static readonly EventType WithdrawalFailed = new("withdrawal.failed");

    public static readonly IReadOnlyList<EventType> All = [CustomerCreated, CustomerUpdated, PaymentCompleted, PaymentFailed, PaymentReversed, StatementReady,
        WithdrawalRequested, WithdrawalSucceeded, WithdrawalFailed];
}
