using Neraca.Events;

namespace Neraca.Settlement;

/// <summary>The event types settlement and reconciliation emit. Persisted and published: never rename one
/// (<c>EventGoldenTests</c> freezes them).</summary>
public static class SettlementEventTypes
{
    /// <summary>A run was created (status pending) with its items.</summary>
    public static readonly EventType RunCreated = new("settlement.run.created");
    /// <summary>Every net transfer of the run committed (one atomic ledger batch).</summary>
    public static readonly EventType RunPosted = new("settlement.run.posted");
    /// <summary>The ledger refused the batch: nothing moved, the dates are free to be settled again.</summary>
    public static readonly EventType RunFailed = new("settlement.run.failed");
    public static readonly EventType StatementImported = new("reconciliation.statement.imported");
    /// <summary>A matching pass ended: counts, and whether every line is matched or ignored.</summary>
    public static readonly EventType StatementMatched = new("reconciliation.statement.matched");
    public static readonly EventType ExceptionResolved = new("reconciliation.exception.resolved");
}
