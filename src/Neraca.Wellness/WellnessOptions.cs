using System.ComponentModel.DataAnnotations;

namespace Neraca.Wellness;

/// <summary>Settings of earned wage access (section <c>Wellness</c>).</summary>
public sealed class WellnessOptions
{
    /// <summary>Each employer's nightly work starts at a stable offset within this window after its local midnight is
    /// noticed (hash of the employer id), so a thousand employers do not all start at once. Default 2 h.</summary>
    [Range(0, 86_400)] public int EmployerSpreadSeconds { get; set; } = 7_200;

    /// <summary>How often the tenant-wide dispatcher looks for employers whose local day changed (cron, UTC).
    /// Hourly by default: Indonesia alone has three time zones.</summary>
    public string NightlyCron { get; set; } = "0 * * * *";

    /// <summary>Largest roster file accepted (bytes). 50,000 rows are about 6 MB.</summary>
    [Range(1_024, 256 * 1024 * 1024)] public int ImportBytesMax { get; set; } = 32 * 1024 * 1024;

    /// <summary>Most rows of one roster file.</summary>
    [Range(1, 1_000_000)] public int ImportRowsMax { get; set; } = 200_000;

    /// <summary>Most attendance records in one upload.</summary>
    [Range(1, 100_000)] public int AttendanceRecordsMax { get; set; } = 20_000;

    /// <summary>When set, withdrawals are paid by the job only (no inline attempt after the request commits): for
    /// tests of the saga's recovery.</summary>
    public bool ProcessWithdrawalsInline { get; set; } = true;
}
