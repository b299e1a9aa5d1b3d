using Neraca.Events;

namespace Neraca.Ledger;

/// <summary>The event types the ledger emits; the payload of each is the transfer or account as the API returns it.
/// Persisted and published: never rename one (<c>EventGoldenTests</c> freezes them).</summary>
internal static class LedgerEventTypes
{
    public static readonly EventType AccountCreated = new("account.created");
    public static readonly EventType TransferPending = new("transfer.pending");
    public static readonly EventType TransferPosted = new("transfer.posted");
    public static readonly EventType TransferVoided = new("transfer.voided");
    public static readonly EventType TransferExpired = new("transfer.expired");
}
