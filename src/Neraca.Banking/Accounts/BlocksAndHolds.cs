using System.Data.Common;
using System.Text.Json.Nodes;
using Dapper;
using Microsoft.Extensions.Options;
using Neraca.Banking.Audit;
using Neraca.Caching;
using Neraca.Hosting;
using Neraca.Ledger;
using Neraca.Storage;

namespace Neraca.Banking.Accounts;

public sealed record BlockRequest(string? Id = null, string? Type = null, string? Reason = null);

public sealed record BlockResponse(string Id, string Account, string Type, string Reason, DateTimeOffset CreatedAt, DateTimeOffset? RemovedAt);

public sealed record HoldRequest(string? Id = null, long? Amount = null, string? Reason = null, DateTimeOffset? ExpiresAt = null);

public sealed record CaptureRequest(long? Amount = null);

/// <summary>A hold: <c>active</c> until captured (<c>captured</c>, with <c>captured_amount</c>; the rest released),
/// <c>released</c> or <c>expired</c>.</summary>
public sealed record HoldResponse(string Id, string Account, long Amount, long CapturedAmount, string Reason, string Status, string TransferId,
    DateTimeOffset ExpiresAt, DateTimeOffset CreatedAt, DateTimeOffset? ResolvedAt);

/// <summary>Blocks (<c>debit | credit | all</c>) that banking checks before it moves money, and holds: pending ledger
/// transfers (<c>bank:hold:&lt;id&gt;</c>) from the account to its ledger's holds account, captured with a (partial)
/// post, released with a void, expired by the ledger's pending timeout and the <c>banking.expire_holds</c> job. Transfers
/// made directly through the ledger API do not see blocks (docs/banking.md).</summary>
public sealed class BlocksAndHolds(Database database, SqlDialect dialect, ILedger ledger, BankAccounts accounts, NeracaCache cache,
    IOptions<BankingOptions> options, TimeProvider clock)
{
    static readonly string[] BlockTypes = ["debit", "credit", "all"];
    public const int ReasonLengthMax = 200;

    // ---------------- blocks ----------------

    public async Task<BankResult<BlockResponse>> AddBlockAsync(BankCaller caller, string accountId, BlockRequest body, CancellationToken ct)
    {
        if (caller.IsEndUser) return BankError.ServerOnly("block accounts");
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        if (!BankIds.IsValid(body.Id)) errors["id"] = [$"Required: 1-{BankIds.LengthMax} characters of A-Z a-z 0-9 . _ : -"];
        if (body.Type is null || !BlockTypes.Contains(body.Type)) errors["type"] = ["Required: \"debit\", \"credit\" or \"all\"."];
        if (string.IsNullOrWhiteSpace(body.Reason) || body.Reason.Length > ReasonLengthMax) errors["reason"] = [$"Required: 1-{ReasonLengthMax} characters."];
        if (errors.Count > 0) return BankError.Invalid(errors);
        var reached = await accounts.ReachAsync(caller, accountId, ct);
        if (!reached.Succeeded) return reached.Error!;
        var now = DbTime.ToMicros(clock.GetUtcNow());
        await using var connection = await database.OpenAsync(ct);
        await using var tx = await dialect.BeginWriteAsync(connection, ct);
        var inserted = await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO banking_blocks (tenant_id, id, account_id, type, reason, created_at_us) VALUES (@tenantId, @id, @accountId, @type, @reason, @now)
            ON CONFLICT (tenant_id, id) DO NOTHING
            """, new { tenantId = caller.TenantId, id = body.Id, accountId, type = body.Type, reason = body.Reason, now }, tx, cancellationToken: ct));
        if (inserted == 0)
        {
            await tx.RollbackAsync(ct);
            var existing = await FindBlockAsync(connection, caller.TenantId, body.Id!, ct);
            return existing is not null && existing.Account == accountId && existing.Type == body.Type && existing.Reason == body.Reason
                ? BankResult<BlockResponse>.Replayed(existing)
                : BankError.Conflict("block_exists_with_different_fields", $"Block '{body.Id}' exists with different fields.");
        }
        await AuditLog.AppendAsync(connection, tx, caller, "block.added", "account", accountId, [new("block", body.Id), new("type", body.Type), new("reason", body.Reason)],
            now, ct);
        await tx.CommitAsync(ct);
        return BankResult<BlockResponse>.Created(new BlockResponse(body.Id!, accountId, body.Type!, body.Reason!, DbTime.FromMicros(now), null));
    }

    public async Task<BankResult<BlockResponse>> RemoveBlockAsync(BankCaller caller, string accountId, string blockId, CancellationToken ct)
    {
        if (caller.IsEndUser) return BankError.ServerOnly("unblock accounts");
        var reached = await accounts.ReachAsync(caller, accountId, ct);
        if (!reached.Succeeded) return reached.Error!;
        var now = DbTime.ToMicros(clock.GetUtcNow());
        await using var connection = await database.OpenAsync(ct);
        await using var tx = await dialect.BeginWriteAsync(connection, ct);
        var existing = await FindBlockAsync(connection, caller.TenantId, blockId, ct, tx);
        if (existing is null || existing.Account != accountId) return BankError.NotFound(BankingCodes.BlockNotFound, $"No block '{blockId}' on account '{accountId}'.");
        if (existing.RemovedAt is not null) return BankResult<BlockResponse>.Ok(existing);
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE banking_blocks SET removed_at_us = @now WHERE tenant_id = @tenantId AND id = @blockId AND removed_at_us IS NULL",
            new { tenantId = caller.TenantId, blockId, now }, tx, cancellationToken: ct));
        await AuditLog.AppendAsync(connection, tx, caller, "block.removed", "account", accountId, [new("block", blockId), new("type", existing.Type)], now, ct);
        await tx.CommitAsync(ct);
        return BankResult<BlockResponse>.Ok(existing with { RemovedAt = DbTime.FromMicros(now) });
    }

    public async Task<BankResult<Page<BlockResponse>>> ListBlocksAsync(BankCaller caller, string accountId, CancellationToken ct)
    {
        var reached = await accounts.ReachAsync(caller, accountId, ct);
        if (!reached.Succeeded) return reached.Error!;
        await using var connection = await database.OpenReadAsync(ct);
        var rows = await connection.QueryAsync<BlockRow>(new CommandDefinition(
            "SELECT id, account_id, type, reason, created_at_us, removed_at_us FROM banking_blocks WHERE tenant_id = @tenantId AND account_id = @accountId AND removed_at_us IS NULL ORDER BY created_at_us, id LIMIT 1000",
            new { tenantId = caller.TenantId, accountId }, cancellationToken: ct));
        return BankResult<Page<BlockResponse>>.Ok(new(rows.Select(r => r.ToResponse()).ToList(), null));
    }

    static async Task<BlockResponse?> FindBlockAsync(DbConnection connection, string tenantId, string id, CancellationToken ct, DbTransaction? tx = null) =>
        (await connection.QuerySingleOrDefaultAsync<BlockRow>(new CommandDefinition(
            "SELECT id, account_id, type, reason, created_at_us, removed_at_us FROM banking_blocks WHERE tenant_id = @tenantId AND id = @id",
            new { tenantId, id }, tx, cancellationToken: ct)))?.ToResponse();

    /// <summary>The active block types of the given accounts (one query), e.g. <c>{acc_1: [debit]}</c>.</summary>
    public async Task<ILookup<string, string>> ActiveBlocksAsync(string tenantId, string[] accountIds, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var rows = await connection.QueryAsync<(string Account, string Type)>(new CommandDefinition(
            $"SELECT account_id, type FROM banking_blocks WHERE tenant_id = @tenantId AND removed_at_us IS NULL AND {dialect.InIdList("account_id", "ids")}",
            new { tenantId, ids = dialect.IdListValue(accountIds) }, cancellationToken: ct));
        return rows.ToLookup(r => r.Account, r => r.Type, StringComparer.Ordinal);
    }

    /// <summary>Why money may not leave (<paramref name="debit"/>) or enter the account, or null: its status and blocks.</summary>
    public static BankError? Refusal(BankAccount a, ILookup<string, string> blocks, bool debit)
    {
        if (a.Status == "closed") return BankError.Unprocessable(BankingCodes.AccountClosed, $"Account '{a.Id}' is closed.");
        if (a.Status == "frozen") return BankError.Unprocessable(BankingCodes.AccountFrozen, $"Account '{a.Id}' is frozen.");
        var blocking = blocks[a.Id].FirstOrDefault(t => t == "all" || t == (debit ? "debit" : "credit"));
        return blocking is null ? null
            : BankError.Unprocessable(BankingCodes.AccountBlocked, $"Account '{a.Id}' is blocked for {(blocking == "all" ? "all movements" : blocking + "s")}.",
                new Dictionary<string, object?> { ["account"] = a.Id, ["block_type"] = blocking });
    }

    // ---------------- holds ----------------

    public async Task<BankResult<HoldResponse>> PlaceHoldAsync(BankCaller caller, string accountId, HoldRequest body, CancellationToken ct)
    {
        if (caller.IsEndUser) return BankError.ServerOnly("place holds");
        var now = clock.GetUtcNow();
        var o = options.Value;
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        if (!BankIds.IsValid(body.Id)) errors["id"] = [$"Required: 1-{BankIds.LengthMax} characters of A-Z a-z 0-9 . _ : -"];
        if (body.Amount is not > 0) errors["amount"] = ["Required: a positive integer in minor units."];
        if (string.IsNullOrWhiteSpace(body.Reason) || body.Reason.Length > ReasonLengthMax) errors["reason"] = [$"Required: 1-{ReasonLengthMax} characters."];
        if (body.ExpiresAt is { } e && (e <= now.AddSeconds(1) || e > now.AddDays(o.HoldExpiryDaysMax)))
            errors["expires_at"] = [$"Must be in the future and at most {o.HoldExpiryDaysMax} days away."];
        if (errors.Count > 0) return BankError.Invalid(errors);
        var reached = await accounts.ReachAsync(caller, accountId, ct);
        if (!reached.Succeeded) return reached.Error!;
        var account = reached.Value!;

        await using var connection = await database.OpenAsync(ct);
        if (await FindHoldAsync(connection, null, caller.TenantId, body.Id!, ct) is { } existing)
            return existing.Account == accountId && existing.Amount == body.Amount && existing.Reason == body.Reason
                ? BankResult<HoldResponse>.Replayed(existing)
                : BankError.Conflict(BankingCodes.HoldExists, $"Hold '{body.Id}' exists with different fields.");
        if (Refusal(account, await ActiveBlocksAsync(caller.TenantId, [accountId], ct), debit: true) is { } refused) return refused;

        var expires = body.ExpiresAt ?? now.AddDays(o.HoldExpiryDaysDefault);
        var transferId = BankIds.HoldTransfer(body.Id!);
        // The ledger reserves the money (and its own timeout voids it at expiry even if this job is late).
        var pending = await ledger.CreateTransferAsync(caller.TenantId, new CreateTransferRequest(transferId, accountId, BankIds.HoldsAccount(account.Currency),
            body.Amount, Description: body.Reason, Metadata: new JsonObject { ["banking_hold"] = body.Id }, Pending: true,
            TimeoutSeconds: (long)Math.Ceiling((expires - now).TotalSeconds)), ct);
        if (!pending.Succeeded) return BankError.FromLedger(pending.Error!);

        var nowUs = DbTime.ToMicros(now);
        var hold = new HoldResponse(body.Id!, accountId, body.Amount!.Value, 0, body.Reason!, "active", transferId, pending.Value!.TimeoutAt ?? expires,
            DbTime.FromMicros(nowUs), null);
        await using (var tx = await dialect.BeginWriteAsync(connection, ct))
        {
            var inserted = await connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO banking_holds (tenant_id, id, account_id, amount, reason, status, expires_at_us, created_at_us)
                VALUES (@tenantId, @Id, @Account, @Amount, @Reason, 'active', @expires, @nowUs) ON CONFLICT (tenant_id, id) DO NOTHING
                """, new { tenantId = caller.TenantId, hold.Id, hold.Account, hold.Amount, hold.Reason, expires = DbTime.ToMicros(hold.ExpiresAt), nowUs }, tx,
                cancellationToken: ct));
            if (inserted == 0) return BankResult<HoldResponse>.Replayed((await FindHoldAsync(connection, tx, caller.TenantId, hold.Id, ct))!);
            await AuditLog.AppendAsync(connection, tx, caller, "hold.placed", "account", accountId,
                [new("hold", hold.Id), new("amount", hold.Amount), new("reason", hold.Reason), new("expires_at", hold.ExpiresAt)], nowUs, ct);
            await tx.CommitAsync(ct);
        }
        await cache.InvalidateAsync([CacheScopes.Account(caller.TenantId, accountId)]);
        return BankResult<HoldResponse>.Created(hold);
    }

    public Task<BankResult<HoldResponse>> CaptureAsync(BankCaller caller, string accountId, string holdId, CaptureRequest? body, CancellationToken ct) =>
        ResolveAsync(caller, accountId, holdId, capture: true, body?.Amount, ct);

    public Task<BankResult<HoldResponse>> ReleaseAsync(BankCaller caller, string accountId, string holdId, CancellationToken ct) =>
        ResolveAsync(caller, accountId, holdId, capture: false, null, ct);

    async Task<BankResult<HoldResponse>> ResolveAsync(BankCaller caller, string accountId, string holdId, bool capture, long? amount, CancellationToken ct)
    {
        if (caller.IsEndUser) return BankError.ServerOnly(capture ? "capture holds" : "release holds");
        if (amount is <= 0) return BankError.Invalid("amount", "Must be a positive integer in minor units.");
        var reached = await accounts.ReachAsync(caller, accountId, ct);
        if (!reached.Succeeded) return reached.Error!;
        HoldResponse? hold;
        await using (var connection = await database.OpenAsync(ct))
            hold = await FindHoldAsync(connection, null, caller.TenantId, holdId, ct);
        if (hold is null || hold.Account != accountId) return BankError.NotFound(BankingCodes.HoldNotFound, $"No hold '{holdId}' on account '{accountId}'.");
        if (hold.Status != "active")
            return hold.Status == (capture ? "captured" : "released") && (!capture || amount is null || amount == hold.CapturedAmount)
                ? BankResult<HoldResponse>.Ok(hold)
                : BankError.Unprocessable(BankingCodes.HoldNotActive, $"Hold '{holdId}' is {hold.Status}.", new Dictionary<string, object?> { ["hold_status"] = hold.Status });
        if (capture && amount > hold.Amount)
            return BankError.Unprocessable(LedgerCodes.AmountExceedsPending, $"At most {hold.Amount} can be captured.", new Dictionary<string, object?> { ["field"] = "amount" });

        var result = capture
            ? await ledger.PostPendingAsync(caller.TenantId, hold.TransferId, amount, ct)
            : await ledger.VoidPendingAsync(caller.TenantId, hold.TransferId, ct);
        var synced = await SyncAsync(caller, hold, ct);
        if (!result.Succeeded && synced.Status == "active") return BankError.FromLedger(result.Error!);
        if (synced.Status != (capture ? "captured" : "released"))
            return BankError.Unprocessable(BankingCodes.HoldNotActive, $"Hold '{holdId}' is {synced.Status}.", new Dictionary<string, object?> { ["hold_status"] = synced.Status });
        return BankResult<HoldResponse>.Ok(synced);
    }

    /// <summary>Brings the hold's status in line with its ledger transfer (posted → captured, voided → released,
    /// expired → expired), records a capture in the account's history, audits the change. Idempotent.</summary>
    public async Task<HoldResponse> SyncAsync(BankCaller caller, HoldResponse hold, CancellationToken ct, bool expiring = false)
    {
        var transfer = await ledger.GetTransferAsync(caller.TenantId, hold.TransferId, ct);
        if (!transfer.Succeeded) return hold;
        var t = transfer.Value!;
        var status = t.Status switch { "posted" => "captured", "voided" => expiring ? "expired" : "released", "expired" => "expired", _ => "active" };
        if (status == "active" || status == hold.Status) return hold;
        var nowUs = DbTime.ToMicros(clock.GetUtcNow());
        await using var connection = await database.OpenAsync(ct);
        await using (var tx = await dialect.BeginWriteAsync(connection, ct))
        {
            var changed = await connection.ExecuteAsync(new CommandDefinition("""
                UPDATE banking_holds SET status = @status, captured_amount = @captured, resolved_at_us = @nowUs
                WHERE tenant_id = @tenantId AND id = @id AND status = 'active'
                """, new { tenantId = caller.TenantId, id = hold.Id, status, captured = t.PostedAmount, nowUs }, tx, cancellationToken: ct));
            if (changed == 0) return (await FindHoldAsync(connection, tx, caller.TenantId, hold.Id, ct))!;
            if (status == "captured")
                await History.Transactions.RecordAsync(connection, tx, caller.TenantId, hold.Account, hold.TransferId, "hold_capture", "debit", t.PostedAmount,
                    t.CreditAccount, hold.Id, hold.Reason, nowUs, ct);
            await AuditLog.AppendAsync(connection, tx, caller, "hold." + status, "account", hold.Account,
                [new("hold", hold.Id), new("amount", hold.Amount), new("captured_amount", t.PostedAmount)], nowUs, ct);
            await tx.CommitAsync(ct);
        }
        await cache.InvalidateAsync([CacheScopes.Account(caller.TenantId, hold.Account)]);
        return hold with { Status = status, CapturedAmount = t.PostedAmount, ResolvedAt = DbTime.FromMicros(nowUs) };
    }

    public async Task<BankResult<Page<HoldResponse>>> ListHoldsAsync(BankCaller caller, string accountId, string? status, int? limit, string? after,
        CancellationToken ct)
    {
        if (limit is < 1 or > 1000) return BankError.Invalid("limit", "Must be from 1 to 1000.");
        if (status is not (null or "active" or "captured" or "released" or "expired"))
            return BankError.Invalid("status", "One of \"active\", \"captured\", \"released\", \"expired\".");
        var reached = await accounts.ReachAsync(caller, accountId, ct);
        if (!reached.Succeeded) return reached.Error!;
        var take = limit ?? 100;
        var (afterAt, afterId) = Cursor.Decode(after) is { } c ? BankIds.ParseCursorKey(c) : (long.MinValue, "");
        await using var connection = await database.OpenReadAsync(ct);
        var rows = (await connection.QueryAsync<HoldRow>(new CommandDefinition($"""
            SELECT {HoldColumns} FROM banking_holds WHERE tenant_id = @tenantId AND account_id = @accountId AND (@status IS NULL OR status = @status)
              AND (created_at_us > @afterAt OR (created_at_us = @afterAt AND id > @afterId))
            ORDER BY created_at_us, id LIMIT @take
            """, new { tenantId = caller.TenantId, accountId, status, afterAt, afterId, take = take + 1 }, cancellationToken: ct))).ToList();
        var more = rows.Count > take;
        if (more) rows.RemoveAt(rows.Count - 1);
        return BankResult<Page<HoldResponse>>.Ok(new(rows.Select(r => r.ToResponse()).ToList(),
            more ? Cursor.Encode(BankIds.CursorKey(rows[^1].created_at_us, rows[^1].id)) : null));
    }

    public async Task<BankResult<HoldResponse>> GetHoldAsync(BankCaller caller, string accountId, string holdId, CancellationToken ct)
    {
        var reached = await accounts.ReachAsync(caller, accountId, ct);
        if (!reached.Succeeded) return reached.Error!;
        await using var connection = await database.OpenAsync(ct);
        var hold = await FindHoldAsync(connection, null, caller.TenantId, holdId, ct);
        return hold is not null && hold.Account == accountId ? BankResult<HoldResponse>.Ok(hold)
            : BankError.NotFound(BankingCodes.HoldNotFound, $"No hold '{holdId}' on account '{accountId}'.");
    }

    /// <summary>Active holds past their expiry, across tenants, oldest first (the expiry job).</summary>
    internal async Task<List<(string TenantId, HoldResponse Hold)>> DueHoldsAsync(int limit, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var rows = await connection.QueryAsync<HoldRow>(new CommandDefinition($"""
            SELECT tenant_id, {HoldColumns} FROM banking_holds WHERE status = 'active' AND expires_at_us <= @nowUs ORDER BY expires_at_us LIMIT @limit
            """, new { nowUs = DbTime.ToMicros(clock.GetUtcNow()), limit }, cancellationToken: ct));
        return rows.Select(r => (r.tenant_id, r.ToResponse())).ToList();
    }

    const string HoldColumns = "id, account_id, amount, captured_amount, reason, status, expires_at_us, created_at_us, resolved_at_us";

    static async Task<HoldResponse?> FindHoldAsync(DbConnection connection, DbTransaction? tx, string tenantId, string id, CancellationToken ct) =>
        (await connection.QuerySingleOrDefaultAsync<HoldRow>(new CommandDefinition(
            $"SELECT {HoldColumns} FROM banking_holds WHERE tenant_id = @tenantId AND id = @id", new { tenantId, id }, tx, cancellationToken: ct)))?.ToResponse();

    sealed class BlockRow
    {
        public string id { get; set; } = "";
        public string account_id { get; set; } = "";
        public string type { get; set; } = "";
        public string reason { get; set; } = "";
        public long created_at_us { get; set; }
        public long? removed_at_us { get; set; }

        public BlockResponse ToResponse() => new(id, account_id, type, reason, DbTime.FromMicros(created_at_us), removed_at_us is { } r ? DbTime.FromMicros(r) : null);
    }

    sealed class HoldRow
    {
        public string tenant_id { get; set; } = "";
        public string id { get; set; } = "";
        public string account_id { get; set; } = "";
        public long amount { get; set; }
        public long captured_amount { get; set; }
        public string reason { get; set; } = "";
        public string status { get; set; } = "";
        public long expires_at_us { get; set; }
        public long created_at_us { get; set; }
        public long? resolved_at_us { get; set; }

        public HoldResponse ToResponse() => new(id, account_id, amount, captured_amount, reason, status, BankIds.HoldTransfer(id), DbTime.FromMicros(expires_at_us),
            DbTime.FromMicros(created_at_us), resolved_at_us is { } r ? DbTime.FromMicros(r) : null);
    }
}
