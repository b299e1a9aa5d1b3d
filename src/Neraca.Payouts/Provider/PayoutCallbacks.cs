using System.Text.Json;
using Microsoft.Extensions.Options;

namespace Neraca.Payouts.Provider;

/// <summary>How a callback was answered: HTTP status, a stable code, and what it changed.</summary>
public readonly record struct CallbackResult(int Status, string Code, string Detail);

/// <summary>The provider's callbacks (<c>POST /v1/payouts/callbacks</c>, anonymous). Trust comes from the signature
/// alone: an HMAC-SHA256 over timestamp and raw body with the shared secret, the timestamp within
/// <see cref="PayoutsOptions.CallbackToleranceSeconds"/> (older ones are replays). The payout, and with it the tenant,
/// is found by the provider key inside the signed body; nothing unsigned (headers, query) names it. A callback only
/// records the provider's final word (once: a duplicate changes nothing); the complete job does the rest.</summary>
internal sealed partial class PayoutCallbacks(PayoutStore store, IServiceProvider services, IOptions<PayoutsOptions> options, TimeProvider time,
    ILogger<PayoutCallbacks> logger)
{
    string? Secret => services.GetService<Sandbox.BuiltInSandbox>()?.CallbackSecret ?? options.Value.Provider.CallbackSecret;

    public async Task<CallbackResult> HandleAsync(byte[] body, string? signature, CancellationToken ct)
    {
        var secret = Secret;
        if (string.IsNullOrEmpty(secret)
            || !CallbackSignature.Verify(secret, signature, body, time.GetUtcNow(), TimeSpan.FromSeconds(options.Value.CallbackToleranceSeconds)))
        {
            LogRefused(logger, signature is null ? "no signature" : "bad or stale signature");
            return new CallbackResult(401, "invalid_signature", "The callback's signature is missing, wrong, or outside the replay window.");
        }
        ProviderCallback? callback;
        try
        {
            callback = JsonSerializer.Deserialize<ProviderCallback>(body, ProviderJson.Options);
        }
        catch (JsonException)
        {
            callback = null;
        }
        if (callback?.Disbursement is not { ExternalId.Length: > 0 } d)
            return new CallbackResult(400, "validation_failed", "The body is not a disbursement callback.");

        var row = await store.GetByProviderKeyAsync(d.ExternalId, ct);
        if (row is null)
        {
            LogUnknownPayout(logger, d.ExternalId);
            return new CallbackResult(200, "ignored", "No payout has this external_id.");
        }
        if (d.Amount != row.amount)
        {
            LogAmountMismatch(logger, row.tenant_id, row.id, d.Amount, row.amount);
            return new CallbackResult(422, "callback_mismatch", "The amount does not match the payout's.");
        }
        if (d.Status is not (ProviderStatuses.Succeeded or ProviderStatuses.Failed))
            return new CallbackResult(200, "pending", "Not final yet; nothing changed.");
        var recorded = await services.GetRequiredService<PayoutSaga>().RecordOutcomeAsync(row, d, ct);
        return recorded
            ? new CallbackResult(200, "accepted", $"Recorded: {d.Status}.")
            : new CallbackResult(200, "duplicate", "Already recorded; nothing changed.");
    }

    [LoggerMessage(1, LogLevel.Warning, "Payout callback refused: {Reason}")]
    static partial void LogRefused(ILogger logger, string reason);

    [LoggerMessage(2, LogLevel.Warning, "Payout callback for an unknown external_id {ExternalId} ignored")]
    static partial void LogUnknownPayout(ILogger logger, string externalId);

    [LoggerMessage(3, LogLevel.Error, "Payout callback for {PayoutId} of tenant {TenantId} names amount {Amount}, the payout has {Expected}: ignored")]
    static partial void LogAmountMismatch(ILogger logger, string tenantId, string payoutId, long amount, long expected);
}
