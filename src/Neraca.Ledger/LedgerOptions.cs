using System.ComponentModel.DataAnnotations;

namespace Neraca.Ledger;

/// <summary>Limits of the posting pipeline (section <c>Ledger</c>).</summary>
internal sealed class LedgerOptions
{
    /// <summary>Most operations one database transaction carries. Default 8,000 (one full batch request).</summary>
    [Range(1, 100_000)]
    public int BatchOperationsMax { get; set; } = 8_000;

    /// <summary>Requests waiting per ledger before callers get 503 <c>overloaded</c>. Default 20,000.</summary>
    [Range(1, 1_000_000)]
    public int QueueRequestsMax { get; set; } = 20_000;

    /// <summary>Times a batch is retried after a serialization failure, deadlock or racing insert. Default 8.</summary>
    [Range(0, 100)]
    public int RetriesMax { get; set; } = 8;

    /// <summary>How often the worker role looks for pending transfers past their timeout, in milliseconds. Default 1,000.</summary>
    [Range(50, 3_600_000)]
    public int ExpiryIntervalMs { get; set; } = 1_000;

    /// <summary>Most pending transfers expired per sweep. Default 5,000.</summary>
    [Range(1, 100_000)]
    public int ExpiryBatchMax { get; set; } = 5_000;

    /// <summary>Largest batch request, in transfers. Fixed by the API contract.</summary>
    public const int BatchRequestTransfersMax = 8_000;

    /// <summary>Largest page of any list.</summary>
    public const int PageLimitMax = 1_000;
}
