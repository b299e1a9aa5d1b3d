using System.ComponentModel.DataAnnotations;

namespace Neraca.Settlement;

/// <summary>Limits and defaults of settlement and reconciliation (section <c>Settlement</c>).</summary>
public sealed class SettlementOptions
{
    /// <summary>Largest statement file accepted by <c>POST /v1/reconciliation/statements</c>, in bytes. Default 256 MiB
    /// (a 100,000-entry camt.053 is about 100 MB; MT940 and CSV are far smaller).</summary>
    [Range(1024, 4L * 1024 * 1024 * 1024)]
    public long StatementBytesMax { get; set; } = 256L * 1024 * 1024;

    /// <summary>Most lines in one statement. Default 1,000,000.</summary>
    [Range(1, 10_000_000)]
    public int StatementLinesMax { get; set; } = 1_000_000;

    /// <summary>Business dates the close-of-business sweep enqueues per counterparty and sweep after an outage (the rest
    /// follow on the next sweeps, oldest first). Default 31.</summary>
    [Range(1, 366)]
    public int CatchUpDaysMax { get; set; } = 31;

    /// <summary>How far ahead of a cut-off the sweep enqueues its settlement job (due exactly at the cut-off), in minutes.
    /// Default 60; the sweep itself runs every minute.</summary>
    [Range(1, 1440)]
    public int ScheduleAheadMinutes { get; set; } = 60;

    /// <summary>How often the worker role refreshes the reconciliation gauges from the database, in milliseconds. Default 15,000.</summary>
    [Range(100, 3_600_000)]
    public int MonitorIntervalMs { get; set; } = 15_000;

    /// <summary>Transfers read per ledger page while matching. Fixed by the ledger's page limit.</summary>
    public const int TransferPageSize = 1_000;

    /// <summary>Counterparties in one settlement run (one atomic ledger batch holds at most 8,000 transfers).</summary>
    public const int RunCounterpartiesMax = 1_000;

    /// <summary>Largest page of any settlement or reconciliation list.</summary>
    public const int PageLimitMax = 1_000;

    public const int PageLimitDefault = 100;
}
