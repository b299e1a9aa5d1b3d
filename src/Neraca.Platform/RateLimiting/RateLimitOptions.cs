using System.ComponentModel.DataAnnotations;

namespace Neraca.RateLimiting;

/// <summary>Rate limits (section <c>RateLimits</c>). Token buckets hold across replicas through Redis; without Redis
/// (or while it is down) each replica enforces its share (<see cref="ReplicasWhenRedisDown"/>) locally.</summary>
public sealed class RateLimitOptions
{
    /// <summary>Enforce limits at all. Default true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Requests per minute per API key. Default 600,000 (10,000/s): a ceiling for a runaway server-side client
    /// that leaves the posting pipeline's group commit room to work; set tenants' own limits below it.</summary>
    [Range(1, 100_000_000)]
    public int ApiKeyPerMinute { get; set; } = 600_000;

    /// <summary>Bucket size per API key (requests allowed at once after a quiet spell). Default: <see cref="ApiKeyPerMinute"/>.</summary>
    [Range(1, 100_000_000)]
    public int? ApiKeyBurst { get; set; }

    /// <summary>Requests per minute per end user (JWT subject). Default 600.</summary>
    [Range(1, 10_000_000)]
    public int UserPerMinute { get; set; } = 600;

    /// <summary>Bucket size per end user. Default: <see cref="UserPerMinute"/>.</summary>
    [Range(1, 10_000_000)]
    public int? UserBurst { get; set; }

    /// <summary>Requests per minute per client IP on routes that need no credentials (refreshing a token). Default 60.</summary>
    [Range(1, 10_000_000)]
    public int IpPerMinute { get; set; } = 60;

    /// <summary>Write requests (POST, PUT, PATCH, DELETE) one API key or end user may have in flight at once. Default 1000:
    /// concurrency is what group commit batches, so keep it well above a client's connection pool.</summary>
    [Range(1, 100_000)]
    public int WriteConcurrency { get; set; } = 1000;

    /// <summary>How many replicas share the limits when Redis is unavailable: each replica then allows
    /// limit / this locally. Default 1 (each replica enforces the full limit: at most replicas × limit in total).</summary>
    [Range(1, 1000)]
    public int ReplicasWhenRedisDown { get; set; } = 1;

    /// <summary>Per-tenant overrides, by tenant id (<c>RateLimits:Tenants:acme:ApiKeyPerMinute=100</c>).</summary>
    public Dictionary<string, TenantRateLimits> Tenants { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>A tenant's own limits; unset values take the defaults.</summary>
public sealed class TenantRateLimits
{
    [Range(1, 100_000_000)] public int? ApiKeyPerMinute { get; set; }
    [Range(1, 100_000_000)] public int? ApiKeyBurst { get; set; }
    [Range(1, 10_000_000)] public int? UserPerMinute { get; set; }
    [Range(1, 10_000_000)] public int? UserBurst { get; set; }
    [Range(1, 100_000)] public int? WriteConcurrency { get; set; }
}

/// <summary>One token bucket: <see cref="Name"/> is what the <c>RateLimit</c> headers call it.</summary>
public readonly record struct BucketPolicy(string Name, int PerMinute, int Burst)
{
    /// <summary>Time between two tokens: the bucket refills one token at a time, continuously.</summary>
    public TimeSpan TokenInterval => TimeSpan.FromMinutes(1) / PerMinute;
}
