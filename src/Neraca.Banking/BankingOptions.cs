using System.ComponentModel.DataAnnotations;

namespace Neraca.Banking;

/// <summary>A currency banking accounts may be opened in, and the daily payment limits of its customers (section
/// <c>Banking:Currencies:&lt;ISO code&gt;</c>). Amounts in the currency's minor units.</summary>
public sealed class BankingCurrency
{
    /// <summary>ISO 4217 minor units (IDR 2, JPY 0).</summary>
    [Range(0, 6)]
    public int Scale { get; set; } = 2;

    /// <summary>What a <c>basic</c> (unverified) customer may pay out of their accounts per day in the tenant's time zone.</summary>
    [Range(0, long.MaxValue)]
    public long DailyLimitBasic { get; set; }

    /// <summary>The same for a <c>full</c> (verified) customer.</summary>
    [Range(0, long.MaxValue)]
    public long DailyLimitFull { get; set; }
}

/// <summary>Banking settings (section <c>Banking</c>; environment <c>NERACA_BANKING__TIMEZONE=Asia/Jakarta</c>).</summary>
public sealed class BankingOptions
{
    /// <summary>Time zone of a tenant's business days (daily limits, statement dates) unless <see cref="TenantTimeZones"/>
    /// names another. Default <c>Asia/Jakarta</c>.</summary>
    public string TimeZone { get; set; } = "Asia/Jakarta";

    /// <summary>Per-tenant time zones (tenant id → IANA id).</summary>
    public Dictionary<string, string> TenantTimeZones { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Currencies accounts may be opened in. The defaults follow Bank Indonesia's e-money tiers in spirit:
    /// IDR basic Rp 2,000,000 and full Rp 20,000,000 per day; USD/SGD 150 and 1,500.</summary>
    public Dictionary<string, BankingCurrency> Currencies { get; set; } = new(StringComparer.Ordinal)
    {
        ["IDR"] = new() { Scale = 2, DailyLimitBasic = 2_000_000_00, DailyLimitFull = 20_000_000_00 },
        ["USD"] = new() { Scale = 2, DailyLimitBasic = 150_00, DailyLimitFull = 1_500_00 },
        ["SGD"] = new() { Scale = 2, DailyLimitBasic = 150_00, DailyLimitFull = 1_500_00 },
    };

    /// <summary>Overdraft a <c>wallet</c> account gets (minor units). Default 0: no overdraft.</summary>
    [Range(0, long.MaxValue)]
    public long WalletOverdraftLimit { get; set; }

    /// <summary>Overdraft a <c>savings</c> account gets. Default 0.</summary>
    [Range(0, long.MaxValue)]
    public long SavingsOverdraftLimit { get; set; }

    /// <summary>A hold without <c>expires_at</c> expires after this many days. Default 7.</summary>
    [Range(1, 365)]
    public int HoldExpiryDaysDefault { get; set; } = 7;

    /// <summary>Latest a hold may expire, in days from its creation. Default 30.</summary>
    [Range(1, 3650)]
    public int HoldExpiryDaysMax { get; set; } = 30;

    /// <summary>Longest statement period, in days. Default 366.</summary>
    [Range(1, 3660)]
    public int StatementDaysMax { get; set; } = 366;

    /// <summary><c>max-age</c> of statement files (immutable once issued). Default one year.</summary>
    [Range(0, 31_536_000)]
    public int StatementMaxAgeSeconds { get; set; } = 31_536_000;

    public TimeZoneInfo ZoneOf(string tenantId) =>
        TimeZoneInfo.FindSystemTimeZoneById(TenantTimeZones.TryGetValue(tenantId, out var id) ? id : TimeZone);

    /// <summary>Why the settings are unusable, or null.</summary>
    public string? Problem()
    {
        foreach (var id in TenantTimeZones.Values.Append(TimeZone))
            if (!TimeZoneInfo.TryFindSystemTimeZoneById(id, out _)) return $"Banking: '{id}' is not a known time zone (use an IANA id such as Asia/Jakarta).";
        foreach (var (code, c) in Currencies)
        {
            if (code.Length != 3 || !code.All(char.IsAsciiLetterUpper)) return $"Banking:Currencies: '{code}' is not an ISO 4217 code.";
            if (c.Scale is < 0 or > 6 || c.DailyLimitBasic < 0 || c.DailyLimitFull < 0) return $"Banking:Currencies:{code}: scale 0-6 and limits of 0 or more.";
        }
        return HoldExpiryDaysDefault > HoldExpiryDaysMax ? "Banking: HoldExpiryDaysDefault must not exceed HoldExpiryDaysMax." : null;
    }
}
