using System.ComponentModel.DataAnnotations;
using Neraca.Payouts.Sandbox;

namespace Neraca.Payouts;

/// <summary>Settings of payouts (section <c>Payouts</c>, e.g. <c>NERACA_PAYOUTS__PROVIDER__URL=https://...</c>).</summary>
public sealed class PayoutsOptions
{
    /// <summary>The payout provider. Without <see cref="ProviderOptions.Url"/> the built-in sandbox pays (in memory, in
    /// this process): the embedded default's demo. Production on PostgreSQL refuses to start with it unless
    /// <see cref="AllowBuiltInSandbox"/>.</summary>
    public ProviderOptions Provider { get; set; } = new();

    /// <summary>The built-in sandbox's behaviour when no provider is configured. Default: every payout succeeds 500 ms
    /// after it was submitted.</summary>
    public SandboxOptions BuiltInSandbox { get; set; } = new() { LatencyMs = 500 };

    /// <summary>Allow the built-in sandbox in the Production environment on PostgreSQL (a staging system that looks
    /// like production). Default false: there, a missing provider is a mistake, and a sandbox "pays" nobody.</summary>
    public bool AllowBuiltInSandbox { get; set; }

    /// <summary>A payout the provider accepted but whose callback has not come within this many seconds is asked
    /// about (the status query) by the recovery sweep. Default 60.</summary>
    [Range(1, 86_400)]
    public int CallbackGraceSeconds { get; set; } = 60;

    /// <summary>A payout still <c>requested</c> this many seconds after it was written (its process died before the
    /// reservation) is reserved by the recovery sweep. Default 30.</summary>
    [Range(1, 86_400)]
    public int RecoverAfterSeconds { get; set; } = 30;

    /// <summary>How far a callback's signed timestamp may be from this server's clock, in seconds: older ones are
    /// refused as replays. Default 300.</summary>
    [Range(10, 3600)]
    public int CallbackToleranceSeconds { get; set; } = 300;

    /// <summary>Jobs of one saga step running at once across the cluster. Default 32 (they wait on the provider).</summary>
    [Range(1, 10_000)]
    public int StepConcurrencyMax { get; set; } = 32;

    /// <summary>Largest page of <c>GET /v1/payouts</c>. Default 1000.</summary>
    [Range(1, 10_000)]
    public int PageSizeMax { get; set; } = 1000;

    /// <summary>How often a worker refreshes the payout gauges, in milliseconds. Default 5000.</summary>
    [Range(100, 600_000)]
    public int MetricsRefreshMs { get; set; } = 5000;
}

/// <summary>Where and how to reach the payout provider's HTTP API (docs/payouts.md, "Provider API").</summary>
public sealed class ProviderOptions
{
    /// <summary>Base URL of the provider API (the sandbox process: <c>http://127.0.0.1:7070</c>). Empty: the built-in sandbox.</summary>
    public string? Url { get; set; }

    /// <summary>Sent as <c>Authorization: Bearer</c>.</summary>
    public string? ApiKey { get; set; }

    /// <summary>Shared secret of the callbacks' HMAC-SHA256 signature (<c>X-Callback-Signature</c>). Required with a
    /// <see cref="Url"/>; at least 16 characters.</summary>
    public string? CallbackSecret { get; set; }

    /// <summary>Time one HTTP attempt may take, in milliseconds. Default 10000.</summary>
    [Range(50, 120_000)]
    public int AttemptTimeoutMs { get; set; } = 10_000;

    /// <summary>Retries of a call after a timeout, a connection failure, 429 or 5xx (status queries, inquiries, and
    /// creates, which carry the provider's idempotency key). Default 2.</summary>
    [Range(0, 10)]
    public int RetriesMax { get; set; } = 2;

    /// <summary>Delay before the first retry, in milliseconds (exponential with jitter). Default 200.</summary>
    [Range(1, 60_000)]
    public int RetryDelayMs { get; set; } = 200;
}
