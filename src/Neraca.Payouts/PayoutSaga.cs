using System.Text.Json;
using Microsoft.Extensions.Options;
using Neraca.Events;
using Neraca.Hosting;
using Neraca.Jobs;
using Neraca.Ledger;
using Neraca.Payouts.Provider;
using Neraca.Security;
using Neraca.Storage;

namespace Neraca.Payouts;

/// <summary>The steps of a payout after its reservation, each run by a job and each safe to run again: a step reads the
/// persisted state, does its one outside effect idempotently (the provider call carries the payout's provider key; the
/// ledger call the reserve transfer's id), and commits the next state with the next step's job.</summary>
/// <remarks>
/// <code>
/// requested ──reserve (pending transfer)──> reserved ──submit job──> submitted ──callback / status query──> outcome
///     │ refused: nothing left behind            │ create timed out / 5xx          │
///     ▼                                         └────────> unknown ──resolve job───┘
/// (no payout)                                                  outcome ──complete job──> succeeded (posted) | failed (voided)
/// </code>
/// </remarks>
internal sealed partial class PayoutSaga(
    PayoutStore store, PayoutService payouts, ILedger ledger, IServiceProvider services, FieldEncryption encryption, JobStore jobs,
    SqlDialect dialect, PayoutMetrics metrics, IOptions<PayoutsOptions> options, ILogger<PayoutSaga> logger)
{
    static readonly JsonSerializerOptions Json = CreateJson();

    static JsonSerializerOptions CreateJson()
    {
        var o = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        ServiceDefaults.ConfigureJson(o);
        return o;
    }

    ProviderClient Provider => services.GetRequiredService<ProviderClient>();

    // ---------------- submit ----------------

    public async Task SubmitAsync(string tenantId, string id, CancellationToken ct)
    {
        var row = await store.GetAsync(tenantId, id, ct);
        if (row is null || row.IsFinished || row.provider_outcome is not null) return;
        if (row.status == PayoutStatuses.Reserved)
        {
            // Committed before the call: from here on the provider may have the payout, and every later step knows to
            // ask it (with the same key) instead of assuming nothing was sent.
            await using var connection = await store.Database.OpenAsync(ct);
            await using var tx = await dialect.BeginWriteAsync(connection, ct);
            await store.MoveAsync(connection, tx, tenantId, id, [PayoutStatuses.Reserved], PayoutStatuses.Submitted, "submitted_at_us = @now", null, ct);
            await tx.CommitAsync(ct);
            row.status = PayoutStatuses.Submitted;
        }
        // unknown: the resolve job has it; requested: not reserved yet (the recovery sweep reserves it).
        if (row.status != PayoutStatuses.Submitted) return;
        var answer = await CreateAsync(row, ct);
        await HandleCreateAnswerAsync(row, answer, ct);
    }

    async Task<ProviderAnswer> CreateAsync(PayoutRow row, CancellationToken ct)
    {
        var ring = await encryption.GetAsync(ct);
        var number = ring.Decrypt(row.destination_account_number, PayoutService.Context("destination_account_number", row.tenant_id, row.id));
        var name = row.destination_account_name is { } n ? ring.Decrypt(n, PayoutService.Context("destination_account_name", row.tenant_id, row.id)) : null;
        return await Provider.CreateAsync(new CreateDisbursement(row.provider_key, row.amount, row.currency,
            new ProviderDestination(row.destination_type, row.destination_code, number, name), row.reference), ct);
    }

    /// <summary>Returns the state the provider reported when it is not final (<c>pending</c>, <c>unknown</c>), else null.</summary>
    async Task<string?> HandleCreateAnswerAsync(PayoutRow row, ProviderAnswer answer, CancellationToken ct)
    {
        switch (answer.Kind)
        {
            case ProviderAnswerKind.Found when IsFinal(answer.Disbursement!):
                await RecordOutcomeAsync(row, answer.Disbursement!, ct);
                return null;
            case ProviderAnswerKind.Found:
                await AcceptedAsync(row, answer.Disbursement!, ct);
                return ProviderStatuses.Pending;
            case ProviderAnswerKind.Rejected:
                await RecordOutcomeAsync(row, ProviderStatuses.Failed, answer.Code, answer.Message, null, ct);
                return null;
            default:
                LogUnknown(logger, row.tenant_id, row.id, answer.Message);
                await MarkUnknownAsync(row, ct);
                return PayoutStatuses.Unknown;
        }
    }

    /// <summary>The provider has it and is working on it: keep its reference; an <c>unknown</c> payout is known again.</summary>
    async Task AcceptedAsync(PayoutRow row, Disbursement d, CancellationToken ct)
    {
        if (row.status == PayoutStatuses.Unknown)
        {
            await using var connection = await store.Database.OpenAsync(ct);
            await using var tx = await dialect.BeginWriteAsync(connection, ct);
            await store.MoveAsync(connection, tx, row.tenant_id, row.id, [PayoutStatuses.Unknown], PayoutStatuses.Submitted,
                "unknown_since_us = NULL, provider_reference = coalesce(provider_reference, @reference)", new { reference = d.Id }, ct);
            await tx.CommitAsync(ct);
            row.status = PayoutStatuses.Submitted;
        }
        else if (row.provider_reference is null)
        {
            await store.SetProviderReferenceAsync(row.tenant_id, row.id, d.Id, ct);
        }
    }

    /// <summary>submitted → unknown, with the resolve job: the provider's answer is asked for, never assumed.</summary>
    async Task MarkUnknownAsync(PayoutRow row, CancellationToken ct)
    {
        await using var connection = await store.Database.OpenAsync(ct);
        await using var tx = await dialect.BeginWriteAsync(connection, ct);
        await store.MoveAsync(connection, tx, row.tenant_id, row.id, [PayoutStatuses.Submitted], PayoutStatuses.Unknown, "unknown_since_us = @now", null, ct);
        await jobs.EnqueueAsync(connection, tx, PayoutJobs.Step(row.tenant_id, PayoutJobs.Resolve, row.id), ct);
        await tx.CommitAsync(ct);
        row.status = PayoutStatuses.Unknown;
    }

    // ---------------- resolve ----------------

    public async Task ResolveAsync(string tenantId, string id, bool lastAttempt, CancellationToken ct)
    {
        var row = await store.GetAsync(tenantId, id, ct);
        if (row is null || row.IsFinished) return;
        if (row.provider_outcome is not null)
        {
            await EnqueueCompleteAsync(row, ct);
            return;
        }
        if (row.status is not (PayoutStatuses.Submitted or PayoutStatuses.Unknown)) return;

        var answer = await Provider.GetAsync(row.provider_key, ct);
        string? state;
        if (answer.Kind == ProviderAnswerKind.NotFound)
        {
            // The provider never got it (or lost it): sending again under the same key cannot pay twice.
            LogResent(logger, tenantId, id);
            state = await HandleCreateAnswerAsync(row, await CreateAsync(row, ct), ct);
        }
        else if (answer.Kind == ProviderAnswerKind.Found)
        {
            state = await HandleCreateAnswerAsync(row, answer, ct);
        }
        else
        {
            state = PayoutStatuses.Unknown; // the status query itself failed: ask again later
        }
        if (state is null) return;
        if (lastAttempt && row.status != PayoutStatuses.Unknown) await MarkUnknownAsync(row, ct);
        throw new PayoutPendingException(id, state);
    }

    // ---------------- outcome and completion ----------------

    static bool IsFinal(Disbursement d) => d.Status is ProviderStatuses.Succeeded or ProviderStatuses.Failed;

    /// <summary>A callback's or a status query's final answer about a payout.</summary>
    public Task<bool> RecordOutcomeAsync(PayoutRow row, Disbursement d, CancellationToken ct) =>
        RecordOutcomeAsync(row, d.Status, d.FailureCode, d.FailureMessage, d.Id, ct);

    /// <summary>Records the provider's final word once, with the complete job; false when it was already recorded.</summary>
    async Task<bool> RecordOutcomeAsync(PayoutRow row, string providerStatus, string? providerCode, string? message, string? reference,
        CancellationToken ct)
    {
        var succeeded = providerStatus == ProviderStatuses.Succeeded;
        var code = succeeded ? null : providerCode switch
        {
            ProviderErrorCodes.InvalidDestination => PayoutCodes.InvalidDestination,
            ProviderErrorCodes.InsufficientBalance => PayoutCodes.ProviderInsufficientBalance,
            _ => PayoutCodes.ProviderRejected,
        };
        var reason = succeeded ? null : Truncate(message ?? providerCode ?? "The provider refused the payout.", 200);
        await using var connection = await store.Database.OpenAsync(ct);
        await using var tx = await dialect.BeginWriteAsync(connection, ct);
        var recorded = await PayoutStore.RecordOutcomeAsync(connection, tx, row.tenant_id, row.id, succeeded ? ProviderStatuses.Succeeded : ProviderStatuses.Failed,
            code, reason, reference, store.NowUs, ct);
        if (recorded) await jobs.EnqueueAsync(connection, tx, PayoutJobs.Step(row.tenant_id, PayoutJobs.Complete, row.id), ct);
        await tx.CommitAsync(ct);
        return recorded;
    }

    async Task EnqueueCompleteAsync(PayoutRow row, CancellationToken ct) =>
        await jobs.EnqueueAsync(PayoutJobs.Step(row.tenant_id, PayoutJobs.Complete, row.id), ct);

    public async Task CompleteAsync(string tenantId, string id, CancellationToken ct)
    {
        var row = await store.GetAsync(tenantId, id, ct);
        if (row is null || row.IsFinished || row.provider_outcome is null) return;
        var paid = row.provider_outcome == ProviderStatuses.Succeeded;
        // Idempotent: posting (or voiding) the same pending transfer again replays the first result.
        var resolved = paid
            ? await ledger.PostPendingAsync(tenantId, row.ReserveTransferId, null, ct)
            : await ledger.VoidPendingAsync(tenantId, row.ReserveTransferId, ct);
        if (!resolved.Succeeded)
        {
            // The reservation was resolved the other way by someone else: the books and the provider disagree. A person
            // must look (retrying cannot fix it); the job is dead-lettered, which alerts.
            LogReservationMismatch(logger, tenantId, id, row.provider_outcome, resolved.Error!.Code);
            throw new PermanentJobFailureException(
                $"payout {id}: the provider says {row.provider_outcome} but the reservation could not be {(paid ? "posted" : "voided")}: {resolved.Error.Code}");
        }
        await FinishAsync(row, paid ? PayoutStatuses.Succeeded : PayoutStatuses.Failed, null, null, ct);
    }

    /// <summary>Ends the payout: the final status, its event and the caller's notify job in one transaction.</summary>
    async Task FinishAsync(PayoutRow row, string final, string? failureCode, string? failureReason, CancellationToken ct)
    {
        var ring = await encryption.GetAsync(ct);
        await using var connection = await store.Database.OpenAsync(ct);
        await using var tx = await dialect.BeginWriteAsync(connection, ct);
        var set = "finished_at_us = @now, unknown_since_us = NULL" + (failureCode is null ? "" : ", failure_code = @failureCode, failure_reason = @failureReason");
        var moved = await store.MoveAsync(connection, tx, row.tenant_id, row.id,
            [PayoutStatuses.Requested, PayoutStatuses.Reserved, PayoutStatuses.Submitted, PayoutStatuses.Unknown], final, set,
            new { failureCode, failureReason }, ct);
        if (!moved) return; // another worker ended it first
        var ended = (await PayoutStore.GetAsync(connection, tx, row.tenant_id, row.id, ct))!;
        var view = PayoutService.ToView(ring, ended);
        var type = final == PayoutStatuses.Succeeded ? PayoutEventTypes.PayoutSucceeded : PayoutEventTypes.PayoutFailed;
        await EventLog.AppendAsync(connection, tx, row.tenant_id, row.ledger_id, new NewEvent(type, row.id, JsonSerializer.Serialize(view, Json)),
            ended.updated_at_us, ct);
        if (row.notify_job_type is { } notify)
            await jobs.EnqueueAsync(connection, tx, new JobRequest(row.tenant_id, notify,
                JsonSerializer.Serialize(new { payout_id = row.id, status = final }), Key: "payout:" + row.id), ct);
        await tx.CommitAsync(ct);
        metrics.Finished(final);
        LogFinished(logger, row.tenant_id, row.id, final, ended.failure_code);
    }

    // ---------------- recovery ----------------

    /// <summary>The backstop for what a crash or a lost callback leaves behind: payouts still <c>requested</c> after
    /// <see cref="PayoutsOptions.RecoverAfterSeconds"/> are reserved (or failed when the ledger refuses now), accepted
    /// payouts without an answer after <see cref="PayoutsOptions.CallbackGraceSeconds"/> get a resolve job.</summary>
    public async Task RecoverAsync(int limit, CancellationToken ct)
    {
        var o = options.Value;
        var now = store.NowUs;
        foreach (var (tenantId, id) in await store.StaleAsync(PayoutStatuses.Requested, now - o.RecoverAfterSeconds * 1_000_000L, limit, ct))
        {
            var row = await store.GetAsync(tenantId, id, ct);
            if (row is null || row.status != PayoutStatuses.Requested) continue;
            var reserved = await payouts.ReserveAsync(row, ct);
            if (reserved.Succeeded) await payouts.MarkReservedAsync(row, ct);
            else await FinishAsync(row, PayoutStatuses.Failed, PayoutCodes.ReserveFailed, Truncate($"{reserved.Error!.Code}: {reserved.Error.Detail}", 200), ct);
        }
        foreach (var (tenantId, id) in await store.StaleAsync(PayoutStatuses.Submitted, now - o.CallbackGraceSeconds * 1_000_000L, limit, ct))
            await jobs.EnqueueAsync(PayoutJobs.Step(tenantId, PayoutJobs.Resolve, id), ct);
    }

    static string Truncate(string text, int max) => text.Length <= max ? text : text[..max];

    [LoggerMessage(1, LogLevel.Warning, "Payout {PayoutId} of tenant {TenantId}: the provider's answer is unknown ({Reason}); asking with the status query")]
    static partial void LogUnknown(ILogger logger, string tenantId, string payoutId, string? reason);

    [LoggerMessage(2, LogLevel.Warning, "Payout {PayoutId} of tenant {TenantId}: the provider has no record of it; sending it again under the same idempotency key")]
    static partial void LogResent(ILogger logger, string tenantId, string payoutId);

    [LoggerMessage(3, LogLevel.Critical, "Payout {PayoutId} of tenant {TenantId}: the provider says {Outcome} but the ledger refused to resolve the reservation ({Code}); reconcile by hand")]
    static partial void LogReservationMismatch(ILogger logger, string tenantId, string payoutId, string outcome, string code);

    [LoggerMessage(4, LogLevel.Information, "Payout {PayoutId} of tenant {TenantId} {Status} ({FailureCode})")]
    static partial void LogFinished(ILogger logger, string tenantId, string payoutId, string status, string? failureCode);
}
