using System.Data.Common;
using System.Text.Json;
using Dapper;
using Neraca.Banking.Accounts;
using Neraca.Banking.History;
using Neraca.Events;
using Neraca.Hosting;
using Neraca.Jobs;
using Neraca.Ledger;
using Neraca.Payouts;
using Neraca.Security;
using Neraca.Storage;

namespace Neraca.Banking.Withdrawals;

public sealed record WithdrawalDestinationRequest(string? Type = null, string? Code = null, string? AccountNumber = null, string? AccountName = null);

public sealed record WithdrawalRequest(string? Id = null, long? Amount = null, WithdrawalDestinationRequest? Destination = null, string? Reference = null,
    string? Description = null);

/// <summary>Where the money went, as responses, events and the history show it: the account number masked.</summary>
public sealed record WithdrawalDestinationView(string Type, string Code, string AccountNumberMasked);

/// <summary>A withdrawal: <c>requested</c> (written, the payout not asked yet), <c>processing</c> (the payout holds the
/// money and is on its way), <c>succeeded</c> (paid out; a line of the history) or <c>failed</c> (refused, or failed at
/// the provider: the money is back, the limit given back).</summary>
public sealed record WithdrawalResponse(string Id, string Account, long Amount, WithdrawalDestinationView Destination, string Reference, string? Description,
    string Status, string? PayoutId, string TransferId, string? FailureCode, string? FailureDetail, DateTimeOffset CreatedAt, DateTimeOffset? CompletedAt);

/// <summary>Withdrawals from a customer's account to a bank account or e-wallet through the payouts capability
/// (<see cref="PayoutService"/>, in process), as earned wage access does it. Before any money moves: the account's
/// status and blocks, the customer's daily limit (shared with payments, counted in the transaction that writes the
/// withdrawal). The payout <c>bank:wd:&lt;id&gt;</c> then reserves the money from the account itself (a pending ledger
/// transfer, so holds and the balance decide <c>insufficient_funds</c>), sends it, and posts or voids the reservation;
/// its notify job ends the withdrawal. A retry with the same id asks payouts with the same payout id: nothing is sent
/// twice.</summary>
public sealed partial class Withdrawals(Database database, SqlDialect dialect, ILedger ledger, PayoutService payouts, JobStore jobs, FieldEncryption encryption,
    BankAccounts accounts, BlocksAndHolds blocks, Payments.Payments payments, TimeProvider clock, ILogger<Withdrawals> logger)
{
    public const string Table = "banking_withdrawals";
    public const string ProcessJobType = "banking.withdrawal.process";
    public const string PayoutDoneJobType = "banking.withdrawal.payout_done";
    public const string PayoutPrefix = "bank:wd:";

    /// <summary>Shorter than other banking ids: <c>bank:wd:</c> + id is the payout id (at most 48), and payouts name
    /// their reservation <c>payout:{payout id}:reserve</c> (at most 64).</summary>
    public const int IdLengthMax = PayoutService.IdLengthMax - 8;

    public static readonly EncryptedColumns Encrypted = new(Table, "id", ["destination_enc"]);

    /// <summary>The job that finishes a withdrawal whose request stopped before payouts was asked (a crash): it runs
    /// after this delay and does nothing if the request finished.</summary>
    static readonly TimeSpan BackstopDelay = TimeSpan.FromSeconds(30);

    public static string PayoutId(string withdrawalId) => PayoutPrefix + withdrawalId;

    /// <summary>The ledger transfer the payout reserves and then posts or voids (docs/payouts.md, "Money"): the history line.</summary>
    public static string TransferId(string withdrawalId) => "payout:" + PayoutId(withdrawalId) + ":reserve";

    const string Columns = """
        id, account_id, customer_id, amount, destination_type, destination_code, destination_masked, destination_enc, reference, description, request_hash,
        status, payout_id, failure_code, failure_detail, limit_customer, limit_day, created_at_us, updated_at_us, completed_at_us
        """;

    public async Task<BankResult<WithdrawalResponse>> CreateAsync(BankCaller caller, string accountId, WithdrawalRequest body, CancellationToken ct)
    {
        var destination = new PayoutDestination(body.Destination?.Type!, body.Destination?.Code!, body.Destination?.AccountNumber!, body.Destination?.AccountName);
        var reference = body.Reference ?? "Withdrawal";
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        if (body.Id is not { Length: > 0 and <= IdLengthMax } || !BankIds.IsValid(body.Id)) errors["id"] = [$"Required: 1-{IdLengthMax} characters of A-Z a-z 0-9 . _ : -"];
        if (body.Amount is not > 0) errors["amount"] = ["Required: a positive integer in minor units."];
        // Payouts' own rules for the destination, reference and description (the id, account and amount are banking's).
        foreach (var (field, messages) in PayoutService.Validate(new PayoutRequest("x", "x", 1, body.Destination is null ? null! : destination, reference,
                     body.Description)))
            errors.TryAdd(field, messages);
        if (errors.Count > 0) return BankError.Invalid(errors);

        var reached = await accounts.ReachAsync(caller, accountId, ct);
        if (!reached.Succeeded) return reached.Error!;
        var account = reached.Value!;
        var ring = await encryption.GetAsync(ct);
        var hash = ring.LookupHash("banking.withdrawal", caller.TenantId, JsonSerializer.Serialize(new object?[]
        {
            accountId, body.Amount, destination.Type, destination.Code, destination.AccountNumber, destination.AccountName, reference, body.Description,
        }));
        if (await FindAsync(caller.TenantId, body.Id!, ct) is { } existing) return await ReplayAsync(existing, hash, ct);

        var blocked = await blocks.ActiveBlocksAsync(caller.TenantId, [accountId], ct);
        if (BlocksAndHolds.Refusal(account, blocked, debit: true) is { } refused) return refused;
        if (account.CustomerStatus != "active")
            return BankError.Unprocessable(BankingCodes.CustomerNotActive, $"Customer '{account.CustomerId}' is {account.CustomerStatus}.");

        var now = clock.GetUtcNow();
        var nowUs = DbTime.ToMicros(now);
        var limit = await payments.DailyLimitAsync(caller.TenantId, account, now, ct);
        var row = new Row
        {
            id = body.Id!, account_id = accountId, customer_id = account.CustomerId, amount = body.Amount!.Value, destination_type = destination.Type,
            destination_code = destination.Code, destination_masked = Masking.Tail(destination.AccountNumber),
            destination_enc = ring.Encrypt(JsonSerializer.Serialize(destination), KeyRing.Context(Table, "destination_enc", caller.TenantId, body.Id!)),
            reference = reference, description = body.Description, request_hash = hash, status = "requested", limit_customer = limit?.Customer,
            limit_day = limit?.Day, created_at_us = nowUs, updated_at_us = nowUs,
        };
        var args = new DynamicParameters(row);
        args.Add("tenantId", caller.TenantId);
        await using (var connection = await database.OpenAsync(ct))
        {
            await using var tx = await dialect.BeginWriteAsync(connection, ct);
            var inserted = await connection.ExecuteAsync(new CommandDefinition($"""
                INSERT INTO banking_withdrawals (tenant_id, {Columns})
                VALUES (@tenantId, @id, @account_id, @customer_id, @amount, @destination_type, @destination_code, @destination_masked, @destination_enc,
                        @reference, @description, @request_hash, @status, NULL, NULL, NULL, @limit_customer, @limit_day, @created_at_us, @updated_at_us, NULL)
                ON CONFLICT (tenant_id, id) DO NOTHING
                """, args, tx, cancellationToken: ct));
            if (inserted == 0)
            {
                await tx.RollbackAsync(ct);
                return await ReplayAsync((await FindAsync(caller.TenantId, row.id, ct))!, hash, ct); // a concurrent request with the same id won
            }
            if (limit is { } lim && await Payments.Payments.ReserveLimitAsync(connection, tx, caller.TenantId, lim, row.amount, ct) is { } exceeded)
                return exceeded with { Extra = new Dictionary<string, object?>(exceeded.Extra!) { ["withdrawal_id"] = row.id } };
            await jobs.EnqueueAsync(connection, tx, new JobRequest(caller.TenantId, ProcessJobType, Payload(row.id), Key: PayoutId(row.id), RunAt: now + BackstopDelay), ct);
            await tx.CommitAsync(ct);
        }
        return await RequestPayoutAsync(caller.TenantId, row, ct, fresh: true);
    }

    async Task<BankResult<WithdrawalResponse>> ReplayAsync(Row existing, string hash, CancellationToken ct)
    {
        if (existing.request_hash != hash)
            return BankError.Conflict(BankingCodes.WithdrawalExists, $"Withdrawal '{existing.id}' exists with different fields.");
        return existing.status switch
        {
            // The first request stopped before payouts answered: ask again with the same payout id.
            "requested" => await RequestPayoutAsync(existing.tenant_id, existing, ct),
            // Refused when asked (nothing was ever reserved): the same answer again.
            "failed" when existing.payout_id is null => Refusal(existing.failure_code!, existing.failure_detail, existing.id),
            _ => BankResult<WithdrawalResponse>.Replayed(existing.ToResponse()),
        };
    }

    /// <summary>Asks payouts for the withdrawal's payout (idempotent by its id) and records the answer: the money held
    /// (<c>processing</c>) or the request refused (<c>failed</c>, the limit given back).</summary>
    async Task<BankResult<WithdrawalResponse>> RequestPayoutAsync(string tenantId, Row w, CancellationToken ct, bool fresh = false)
    {
        var ring = await encryption.GetAsync(ct);
        var destination = JsonSerializer.Deserialize<PayoutDestination>(ring.Decrypt(w.destination_enc, KeyRing.Context(Table, "destination_enc", tenantId, w.id)))!;
        var result = await payouts.RequestAsync(tenantId, new PayoutRequest(PayoutId(w.id), w.account_id, w.amount, destination, w.reference, w.description,
            PayoutDoneJobType), ct);
        if (result.Payout is not { } payout)
        {
            var code = result.ErrorCode ?? "payout_refused";
            await FailAsync(tenantId, w.id, code, result.ErrorDetail, ct);
            return Refusal(code, result.ErrorDetail, w.id, result.Errors);
        }
        await using (var connection = await database.OpenAsync(ct))
        {
            await using var tx = await dialect.BeginWriteAsync(connection, ct);
            var nowUs = DbTime.ToMicros(clock.GetUtcNow());
            var moved = await connection.ExecuteAsync(new CommandDefinition("""
                UPDATE banking_withdrawals SET status = 'processing', payout_id = @payoutId, updated_at_us = @nowUs
                WHERE tenant_id = @tenantId AND id = @id AND status = 'requested'
                """, new { tenantId, id = w.id, payoutId = payout.Id, nowUs }, tx, cancellationToken: ct));
            if (moved == 1)
                await EventLog.AppendAsync(connection, tx, tenantId, null, Event(BankingEventTypes.WithdrawalRequested,
                    w.ToResponse() with { Status = "processing", PayoutId = payout.Id }), nowUs, ct);
            await tx.CommitAsync(ct);
        }
        // A payout that had already ended (its notify job may not have run yet) ends the withdrawal now; doing it twice is harmless.
        if (payout.Status is PayoutStatuses.Succeeded or PayoutStatuses.Failed) await CompleteAsync(tenantId, payout.Id, payout.Status, ct);
        LogRequested(logger, tenantId, w.id, w.amount, w.destination_code, w.destination_masked);
        var now = (await FindAsync(tenantId, w.id, ct))!.ToResponse();
        return fresh ? BankResult<WithdrawalResponse>.Created(now) : BankResult<WithdrawalResponse>.Replayed(now);
    }

    static BankError Refusal(string code, string? detail, string id, IReadOnlyDictionary<string, string[]>? errors = null) => new(code switch
    {
        LedgerCodes.ValidationFailed => 400,
        "payout_conflict" => 409,
        _ => 422,
    }, code, detail ?? code, new Dictionary<string, object?> { ["withdrawal_id"] = id }, errors);

    /// <summary>The payout ended (its notify job, or a replay that found it ended): paid, a line of the history and
    /// <c>withdrawal.succeeded</c>; or failed, the reservation voided by payouts, the limit given back and
    /// <c>withdrawal.failed</c>. Once: the status moves only from an unfinished one.</summary>
    public async Task CompleteAsync(string tenantId, string payoutId, string? payoutStatus, CancellationToken ct)
    {
        if (!payoutId.StartsWith(PayoutPrefix, StringComparison.Ordinal)) throw new PermanentJobFailureException($"Payout '{payoutId}' is not a banking withdrawal's.");
        var w = await FindAsync(tenantId, payoutId[PayoutPrefix.Length..], ct) ?? throw new PermanentJobFailureException($"No withdrawal of payout '{payoutId}'.");
        if (w.status is "succeeded" or "failed") return;
        if (payoutStatus != PayoutStatuses.Succeeded)
        {
            var payout = await payouts.GetAsync(tenantId, payoutId, ct);
            await FailAsync(tenantId, w.id, payout?.FailureCode ?? "payout_failed", payout?.FailureReason, ct, payoutId);
            return;
        }
        var transferId = TransferId(w.id);
        var entries = await ledger.ListEntriesOfTransfersAsync(tenantId, w.account_id, new EntriesOfTransfersQuery([transferId]), ct);
        if (!entries.Succeeded || entries.Value!.Count == 0)
            throw new InvalidOperationException($"Withdrawal {w.id}: payout {payoutId} succeeded but {transferId} has no entry on {w.account_id} yet.");
        var postedUs = DbTime.ToMicros(entries.Value[0].PostedAt);
        await using var connection = await database.OpenAsync(ct);
        await using var tx = await dialect.BeginWriteAsync(connection, ct);
        var nowUs = DbTime.ToMicros(clock.GetUtcNow());
        var done = await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE banking_withdrawals SET status = 'succeeded', payout_id = @payoutId, completed_at_us = @postedUs, updated_at_us = @nowUs
            WHERE tenant_id = @tenantId AND id = @id AND status IN ('requested', 'processing')
            """, new { tenantId, id = w.id, payoutId, postedUs, nowUs }, tx, cancellationToken: ct));
        if (done == 1)
        {
            await Transactions.RecordAsync(connection, tx, tenantId, w.account_id, transferId, "withdrawal", "debit", w.amount,
                $"{w.destination_code} {w.destination_masked}", w.reference, w.description, postedUs, ct);
            await EventLog.AppendAsync(connection, tx, tenantId, null, Event(BankingEventTypes.WithdrawalSucceeded,
                w.ToResponse() with { Status = "succeeded", PayoutId = payoutId }), nowUs, ct);
        }
        await tx.CommitAsync(ct);
    }

    async Task FailAsync(string tenantId, string id, string code, string? detail, CancellationToken ct, string? payoutId = null)
    {
        await using var connection = await database.OpenAsync(ct);
        await using var tx = await dialect.BeginWriteAsync(connection, ct);
        var nowUs = DbTime.ToMicros(clock.GetUtcNow());
        var failed = await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE banking_withdrawals SET status = 'failed', failure_code = @code, failure_detail = @detail, payout_id = coalesce(payout_id, @payoutId),
                completed_at_us = @nowUs, updated_at_us = @nowUs
            WHERE tenant_id = @tenantId AND id = @id AND status IN ('requested', 'processing')
            """, new { tenantId, id, code, detail, payoutId, nowUs }, tx, cancellationToken: ct));
        if (failed == 1)
        {
            var w = (await FindAsync(connection, tx, tenantId, id, ct))!;
            // Nothing left the account: the day's limit is given back.
            if (w.limit_customer is { } customer)
                await Payments.Payments.ReleaseLimitAsync(connection, tx, tenantId, customer, w.limit_day!, w.amount, ct);
            await EventLog.AppendAsync(connection, tx, tenantId, null, Event(BankingEventTypes.WithdrawalFailed, w.ToResponse()), nowUs, ct);
            LogFailed(logger, tenantId, id, code);
        }
        await tx.CommitAsync(ct);
    }

    /// <summary>The backstop: finishes the request of a withdrawal still <c>requested</c> (its process died before payouts
    /// answered); any other state has nothing left to do here.</summary>
    public async Task ProcessAsync(string tenantId, string id, CancellationToken ct)
    {
        var w = await FindAsync(tenantId, id, ct) ?? throw new PermanentJobFailureException($"No withdrawal '{id}'.");
        if (w.status == "requested") await RequestPayoutAsync(tenantId, w, ct);
    }

    public async Task<BankResult<WithdrawalResponse>> GetAsync(BankCaller caller, string accountId, string id, CancellationToken ct)
    {
        var reached = await accounts.ReachAsync(caller, accountId, ct);
        if (!reached.Succeeded) return reached.Error!;
        return await FindAsync(caller.TenantId, id, ct) is { } w && w.account_id == accountId
            ? BankResult<WithdrawalResponse>.Ok(w.ToResponse())
            : BankError.NotFound(BankingCodes.WithdrawalNotFound, $"No withdrawal '{id}' of account '{accountId}'.");
    }

    /// <summary>The account's withdrawals, newest first.</summary>
    public async Task<BankResult<Page<WithdrawalResponse>>> ListAsync(BankCaller caller, string accountId, int? limit, string? after, CancellationToken ct)
    {
        if (limit is < 1 or > 1000) return BankError.Invalid("limit", "Must be from 1 to 1000.");
        var reached = await accounts.ReachAsync(caller, accountId, ct);
        if (!reached.Succeeded) return reached.Error!;
        var take = limit ?? 100;
        var (beforeUs, beforeId) = Cursor.Decode(after) is { } key ? BankIds.ParseCursorKey(key) : (long.MaxValue, "");
        await using var connection = await database.OpenReadAsync(ct);
        var rows = (await connection.QueryAsync<Row>(new CommandDefinition($"""
            SELECT tenant_id, {Columns} FROM banking_withdrawals
            WHERE tenant_id = @tenantId AND account_id = @accountId AND (created_at_us < @beforeUs OR (created_at_us = @beforeUs AND id < @beforeId))
            ORDER BY created_at_us DESC, id DESC LIMIT @take
            """, new { tenantId = caller.TenantId, accountId, beforeUs, beforeId, take = take + 1 }, cancellationToken: ct))).ToList();
        var more = rows.Count > take;
        if (more) rows.RemoveAt(rows.Count - 1);
        return BankResult<Page<WithdrawalResponse>>.Ok(new(rows.Select(r => r.ToResponse()).ToList(),
            more ? Cursor.Encode(BankIds.CursorKey(rows[^1].created_at_us, rows[^1].id)) : null));
    }

    async Task<Row?> FindAsync(string tenantId, string id, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return await FindAsync(connection, null, tenantId, id, ct);
    }

    static Task<Row?> FindAsync(DbConnection connection, DbTransaction? tx, string tenantId, string id, CancellationToken ct) =>
        connection.QuerySingleOrDefaultAsync<Row>(new CommandDefinition(
            $"SELECT tenant_id, {Columns} FROM banking_withdrawals WHERE tenant_id = @tenantId AND id = @id", new { tenantId, id }, tx, cancellationToken: ct));

    static string Payload(string id) => JsonSerializer.Serialize(new { withdrawal = id });

    static NewEvent Event(EventType type, WithdrawalResponse w) => new(type, w.Id, EventPayload(w));

    /// <summary>The <c>data</c> of <c>withdrawal.*</c> events (golden test: never change a field). No personal data: the
    /// destination's number masked, no holder name.</summary>
    internal static string EventPayload(WithdrawalResponse w) => JsonSerializer.Serialize(new
    {
        id = w.Id, account = w.Account, amount = w.Amount,
        destination = new { type = w.Destination.Type, code = w.Destination.Code, account_number_masked = w.Destination.AccountNumberMasked },
        reference = w.Reference, status = w.Status, payout_id = w.PayoutId, transfer_id = w.TransferId, failure_code = w.FailureCode,
    });

    [LoggerMessage(Level = LogLevel.Information, Message = "Withdrawal {WithdrawalId} of tenant {TenantId}: {Amount} to {Code} {AccountMasked}, payout asked")]
    static partial void LogRequested(ILogger logger, string tenantId, string withdrawalId, long amount, string code, string accountMasked);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Withdrawal {WithdrawalId} of tenant {TenantId} failed: {Code}")]
    static partial void LogFailed(ILogger logger, string tenantId, string withdrawalId, string code);

    internal sealed class Row
    {
        public string tenant_id { get; set; } = "";
        public string id { get; set; } = "";
        public string account_id { get; set; } = "";
        public string customer_id { get; set; } = "";
        public long amount { get; set; }
        public string destination_type { get; set; } = "";
        public string destination_code { get; set; } = "";
        public string destination_masked { get; set; } = "";
        public string destination_enc { get; set; } = "";
        public string reference { get; set; } = "";
        public string? description { get; set; }
        public string request_hash { get; set; } = "";
        public string status { get; set; } = "";
        public string? payout_id { get; set; }
        public string? failure_code { get; set; }
        public string? failure_detail { get; set; }
        public string? limit_customer { get; set; }
        public string? limit_day { get; set; }
        public long created_at_us { get; set; }
        public long updated_at_us { get; set; }
        public long? completed_at_us { get; set; }

        public WithdrawalResponse ToResponse() => new(id, account_id, amount, new WithdrawalDestinationView(destination_type, destination_code, destination_masked),
            reference, description, status, payout_id, TransferId(id), failure_code, failure_detail, DbTime.FromMicros(created_at_us),
            completed_at_us is { } c ? DbTime.FromMicros(c) : null);
    }
}

/// <summary><c>banking.withdrawal.process</c>: the backstop of a withdrawal's request (payload <c>{"withdrawal": id}</c>).</summary>
/// <remarks>Resolved on use: withdrawals depend on payouts, which depend on the job store, which depends on every handler.</remarks>
internal sealed class ProcessWithdrawalJob(IServiceProvider services) : IJobHandler
{
    public string Type => Withdrawals.ProcessJobType;

    public JobTypeDefaults Defaults => new() { ConcurrencyMax = 4, AttemptsMax = 20 };

    public Task ExecuteAsync(JobExecution job, CancellationToken ct) =>
        services.GetRequiredService<Withdrawals>().ProcessAsync(job.TenantId, JsonPayload.String(job.Payload, "withdrawal"), ct);
}

/// <summary><c>banking.withdrawal.payout_done</c>: payouts tells how a withdrawal's payout ended
/// (<c>{"payout_id", "status": "succeeded"|"failed"}</c>, at least once).</summary>
internal sealed class WithdrawalPayoutDoneJob(IServiceProvider services) : IJobHandler
{
    public string Type => Withdrawals.PayoutDoneJobType;

    public JobTypeDefaults Defaults => new() { ConcurrencyMax = 8, AttemptsMax = 20 };

    public Task ExecuteAsync(JobExecution job, CancellationToken ct) =>
        services.GetRequiredService<Withdrawals>().CompleteAsync(job.TenantId, JsonPayload.String(job.Payload, "payout_id"),
            JsonPayload.String(job.Payload, "status"), ct);
}

/// <summary>Reads a string member of a job's payload; a payload without it can never succeed.</summary>
internal static class JsonPayload
{
    public static string String(string payload, string name)
    {
        try
        {
            return JsonDocument.Parse(payload).RootElement.GetProperty(name).GetString()
                ?? throw new PermanentJobFailureException($"The payload's '{name}' is null.");
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new PermanentJobFailureException($"The payload names no '{name}'.", e);
        }
    }
}
