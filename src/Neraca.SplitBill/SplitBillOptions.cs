using System.ComponentModel.DataAnnotations;

namespace Neraca.SplitBill;

/// <summary>Settings of split bills (section <c>SplitBill</c>, environment <c>NERACA_SPLIT_BILL__...</c>).</summary>
public sealed class SplitBillOptions
{
    /// <summary>Folder of receipt images. Default: a <c>receipts</c> folder next to the SQLite file (<c>./data/receipts</c>),
    /// also with PostgreSQL; several replicas need a shared folder (or another blob store, docs/split-bill.md).</summary>
    public string? ReceiptsPath { get; set; }

    /// <summary>Largest receipt upload, in bytes. Default 10 MiB.</summary>
    [Range(1024, 64L * 1024 * 1024)]
    public long ReceiptBytesMax { get; set; } = 10 * 1024 * 1024;

    /// <summary>Largest decoded receipt, in pixels (width × height): bigger images are refused before they are decoded,
    /// so a small file that claims huge dimensions cannot exhaust memory. Default 50 megapixels.</summary>
    [Range(1, 500_000_000)]
    public long ReceiptPixelsMax { get; set; } = 50_000_000;

    /// <summary>The thumbnail's longer side, in pixels. Default 320.</summary>
    [Range(16, 4096)]
    public int ThumbnailSizePx { get; set; } = 320;

    /// <summary>Members per group, active and inactive (members who left do not count). Default 50.</summary>
    [Range(2, 50)]
    public int MembersMax { get; set; } = 50;
}
