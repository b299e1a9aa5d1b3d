using System.Text.Json;
using Neraca.Events;
using Neraca.Jobs;

namespace Neraca.Payouts;

/// <summary>Event types of payouts (frozen by the golden tests): emitted through the outbox in the transaction that
/// ends the payout; <c>data</c> is the payout as <c>GET /v1/payouts/{id}</c> shows it.</summary>
public static class PayoutEventTypes
{
    public static readonly EventType PayoutSucceeded = new("payout.succeeded");
    public static readonly EventType PayoutFailed = new("payout.failed");
}

// Handlers resolve the saga when they run: the saga enqueues jobs, and the job store needs every handler first.

/// <summary>The saga's job types. Each step is a job keyed by the payout id (enqueued once), committed in the
/// transaction of the state change that needs it, so a worker killed between two steps leaves the next one queued.</summary>
public static class PayoutJobs
{
    /// <summary>reserved → submitted → (the provider's answer) accepted, final, or unknown.</summary>
    public const string Submit = "payouts.submit";
    /// <summary>Asks the provider (status query) until it gives a final answer; retried with backoff.</summary>
    public const string Resolve = "payouts.resolve";
    /// <summary>The provider's final word is recorded: post or void the reservation, end the payout.</summary>
    public const string Complete = "payouts.complete";
    /// <summary>Recurring sweep: payouts left <c>requested</c> by a crash, accepted ones whose callback never came.</summary>
    public const string Recover = "payouts.recover";

    internal static JobRequest Step(string tenantId, string type, string payoutId, DateTimeOffset? runAt = null) =>
        new(tenantId, type, JsonSerializer.Serialize(new { payout_id = payoutId }), Key: payoutId, RunAt: runAt);

    internal static string PayoutId(JobExecution job)
    {
        try
        {
            using var doc = JsonDocument.Parse(job.Payload);
            if (doc.RootElement.TryGetProperty("payout_id", out var id) && id.ValueKind == JsonValueKind.String) return id.GetString()!;
        }
        catch (JsonException e)
        {
            throw new PermanentJobFailureException("payload is not JSON", e);
        }
        throw new PermanentJobFailureException("payload has no payout_id");
    }
}

internal sealed class SubmitPayoutJob(IServiceProvider services, Microsoft.Extensions.Options.IOptions<PayoutsOptions> options) : IJobHandler
{
    public string Type => PayoutJobs.Submit;
    public JobTypeDefaults Defaults => new() { ConcurrencyMax = options.Value.StepConcurrencyMax, AttemptsMax = 20 };
    public Task ExecuteAsync(JobExecution job, CancellationToken ct) => services.GetRequiredService<PayoutSaga>().SubmitAsync(job.TenantId, PayoutJobs.PayoutId(job), ct);
}

internal sealed class ResolvePayoutJob(IServiceProvider services, Microsoft.Extensions.Options.IOptions<PayoutsOptions> options) : IJobHandler
{
    public const int AttemptsMax = 30;
    public string Type => PayoutJobs.Resolve;
    // With the default backoff (2 s doubling, capped at an hour) 30 attempts ask for about a day.
    public JobTypeDefaults Defaults => new() { ConcurrencyMax = options.Value.StepConcurrencyMax, AttemptsMax = AttemptsMax };
    public Task ExecuteAsync(JobExecution job, CancellationToken ct) =>
        services.GetRequiredService<PayoutSaga>().ResolveAsync(job.TenantId, PayoutJobs.PayoutId(job), lastAttempt: job.Attempt >= job.Settings.AttemptsMax, ct);
}

internal sealed class CompletePayoutJob(IServiceProvider services, Microsoft.Extensions.Options.IOptions<PayoutsOptions> options) : IJobHandler
{
    public string Type => PayoutJobs.Complete;
    public JobTypeDefaults Defaults => new() { ConcurrencyMax = options.Value.StepConcurrencyMax, AttemptsMax = 20 };
    public Task ExecuteAsync(JobExecution job, CancellationToken ct) => services.GetRequiredService<PayoutSaga>().CompleteAsync(job.TenantId, PayoutJobs.PayoutId(job), ct);
}

internal sealed class RecoverPayoutsJob(IServiceProvider services) : IJobHandler
{
    public string Type => PayoutJobs.Recover;
    public JobTypeDefaults Defaults => new() { ConcurrencyMax = 1, AttemptsMax = 3, ChunkSize = 500 };
    public Task ExecuteAsync(JobExecution job, CancellationToken ct) => services.GetRequiredService<PayoutSaga>().RecoverAsync(job.Settings.ChunkSize, ct);
}

/// <summary>A status query found the payout still in progress: the resolve job is retried with backoff.</summary>
public sealed class PayoutPendingException(string payoutId, string state)
    : Exception($"Payout {payoutId}: the provider's answer is {state}; asking again after the backoff.");
