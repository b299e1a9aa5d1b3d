using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dapper;
using Microsoft.Extensions.Options;
using Neraca.Banking.Accounts;
using Neraca.Banking.History;
using Neraca.Events;
using Neraca.Ledger;
using Neraca.Storage;

namespace Neraca.Banking.Payments;

public sealed record PaymentRequest(string? Id = null, string? FromAccount = null, string? ToAccount = null, long? Amount = null, string? Reference = null,
    string? Description = null);

public sealed record ReversePaymentRequest(long? Amount = null, string? Description = null);

/// <summary>A payment: <c>processing</c> (the ledger transfer is under way; a retry with the same id finishes it),
/// <c>completed</c>, <c>failed</c> (with the ledger's or banking's code) or <c>reversed</c>.</summary>
public sealed record PaymentResponse(string Id, string FromAccount, string ToAccount, long Amount, string? Reference, string? Description, string Status,
    string TransferId, string? FailureCode, string? FailureDetail, DateTimeOffset CreatedAt, DateTimeOffset? CompletedAt);

/// <summary>Payments between accounts of one banking ledger, and top-ups from a tenant's bank/switch account (a
/// debit-normal ledger account of the same ledger). Before any money moves: the accounts' status and blocks, then the
/// payer customer's daily limit, reserved atomically with the payment row (two concurrent payments cannot together pass
/// it). The ledger transfer id is <c>bank:pay:&lt;id&gt;</c>: a retry neither pays twice nor counts twice.</summary>
public sealed class Payments(Database database, SqlDialect dialect, ILedger ledger, BankAccounts accounts, BlocksAndHolds blocks,
    Settings.TenantSettings settings, IOptions<BankingOptions> options, TimeProvider clock)
{
    public const int ReferenceLengthMax = 140;
    public const int DescriptionLengthMax = 500;

    const string Columns = "id, from_account, to_account, amount, reference, description, status, failure_code, failure_detail, limit_customer, limit_day, created_at_us, completed_at_us";

    public async Task<BankResult<PaymentResponse>> CreateAsync(BankCaller caller, PaymentRequest body, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        if (!BankIds.IsValid(body.Id)) errors["id"] = [$"Required: 1-{BankIds.LengthMax} characters of A-Z a-z 0-9 . _ : -"];
        if (!Ids.IsValid(body.FromAccount)) errors["from_account"] = ["Required: an account id."];
        if (!Ids.IsValid(body.ToAccount)) errors["to_account"] = ["Required: an account id."];
        if (body.Amount is not > 0) errors["amount"] = ["Required: a positive integer in minor units."];
        if (body.Reference is { } r && (r.Length > ReferenceLengthMax || r.Any(char.IsControl))) errors["reference"] = [$"At most {ReferenceLengthMax} characters."];
        if (body.Description is { } d && (d.Length > DescriptionLengthMax || d.Any(char.IsControl))) errors["description"] = [$"At most {DescriptionLengthMax} characters."];
        if (errors.Count == 0 && body.FromAccount == body.ToAccount) errors["to_account"] = ["Must differ from from_account."];
        if (errors.Count > 0) return BankError.Invalid(errors);

        var existing = await FindAsync(caller.TenantId, body.Id!, ct);
        if (existing is not null) return await ReplayAsync(caller, existing, body, ct);

        var found = await accounts.FindManyAsync(caller.TenantId, [body.FromAccount!, body.ToAccount!], ct);
        var from = found.GetValueOrDefault(body.FromAccount!);
        var to = found.GetValueOrDefault(body.ToAccount!);
        // An end user pays only from its own customer's accounts (the ledger would refuse too; this answers first).
        if (caller.Subject is { } subject && (from is null || from.CustomerSubject != subject))
            return BankError.NotFound(BankingCodes.AccountNotFound, $"No account '{body.FromAccount}'.");
        var blocked = await blocks.ActiveBlocksAsync(caller.TenantId, found.Keys.ToArray(), ct);
        if (from is not null && BlocksAndHolds.Refusal(from, blocked, debit: true) is { } outRefused) return outRefused;
        if (to is not null && BlocksAndHolds.Refusal(to, blocked, debit: false) is { } inRefused) return inRefused;
        if (from is not null && from.CustomerStatus != "active")
            return BankError.Unprocessable(BankingCodes.CustomerNotActive, $"Customer '{from.CustomerId}' is {from.CustomerStatus}.");

        var now = clock.GetUtcNow();
        var nowUs = DbTime.ToMicros(now);
        var payment = new PaymentResponse(body.Id!, body.FromAccount!, body.ToAccount!, body.Amount!.Value, body.Reference, body.Description, "processing",
            BankIds.PaymentTransfer(body.Id!), null, null, now, null);
        // The payer customer's limit for the day in the tenant's time zone; none for a top-up from a tenant account.
        var limit = from is null ? null : await DailyLimitAsync(caller.TenantId, from, now, ct);
        await using (var connection = await database.OpenAsync(ct))
        {
            await using var tx = await dialect.BeginWriteAsync(connection, ct);
            var inserted = await connection.ExecuteAsync(new CommandDefinition($"""
                INSERT INTO banking_payments (tenant_id, {Columns})
                VALUES (@tenantId, @Id, @FromAccount, @ToAccount, @Amount, @Reference, @Description, 'processing', NULL, NULL, @customer, @day, @nowUs, NULL)
                ON CONFLICT (tenant_id, id) DO NOTHING
                """, new { tenantId = caller.TenantId, payment.Id, payment.FromAccount, payment.ToAccount, payment.Amount, payment.Reference, payment.Description,
                customer = limit?.Customer, day = limit?.Day, nowUs }, tx, cancellationToken: ct));
            if (inserted == 0)
            {
                await tx.RollbackAsync(ct);
                return await ReplayAsync(caller, (await FindAsync(caller.TenantId, payment.Id, ct))!, body, ct);
            }
            if (limit is { } lim && await ReserveLimitAsync(connection, tx, caller.TenantId, lim, payment.Amount, ct) is { } exceeded) return exceeded;
            await tx.CommitAsync(ct);
        }
        return await TransferAsync(caller, payment, limit is not null, ct);
    }

    /// <summary>The daily limit that money out of <paramref name="from"/> counts against: its customer's, by KYC level and
    /// currency, for the day of <paramref name="now"/> in the tenant's time zone (payments and withdrawals share it).</summary>
    internal async Task<(string Customer, string Day, long Limit)?> DailyLimitAsync(string tenantId, BankAccount from, DateTimeOffset now, CancellationToken ct)
    {
        var currency = options.Value.Currencies.GetValueOrDefault(from.Currency);
        var daily = from.CustomerKyc == "full" ? currency?.DailyLimitFull : currency?.DailyLimitBasic;
        if (daily is not { } l) return null;
        return (from.CustomerId, TimeZoneInfo.ConvertTime(now, await settings.ZoneAsync(tenantId, ct)).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), l);
    }

    /// <summary>Gives back what a payment or withdrawal that moved nothing had counted against its day.</summary>
    internal static Task ReleaseLimitAsync(DbConnection connection, DbTransaction tx, string tenantId, string customer, string day, long amount,
        CancellationToken ct) =>
        connection.ExecuteAsync(new CommandDefinition(
            "UPDATE banking_limit_usage SET used = used - @amount WHERE tenant_id = @tenantId AND customer_id = @customer AND day = @day",
            new { tenantId, customer, day, amount }, tx, cancellationToken: ct));

    /// <summary>Counts the amount against the day's usage if it fits under the limit, in the payment's transaction: the
    /// conditional UPDATE is atomic on both stores (a row lock on PostgreSQL, the write lock on SQLite). On refusal the
    /// transaction is rolled back.</summary>
    internal static async Task<BankError?> ReserveLimitAsync(DbConnection connection, DbTransaction tx, string tenantId, (string Customer, string Day, long Limit) lim,
        long amount, CancellationToken ct)
    {
        var key = new { tenantId, customer = lim.Customer, day = lim.Day, amount, limit = lim.Limit };
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO banking_limit_usage (tenant_id, customer_id, day, used) VALUES (@tenantId, @customer, @day, 0) ON CONFLICT DO NOTHING
            """, key, tx, cancellationToken: ct));
        // used <= limit - amount: no sum that could overflow.
        var counted = amount <= lim.Limit && await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE banking_limit_usage SET used = used + @amount
            WHERE tenant_id = @tenantId AND customer_id = @customer AND day = @day AND used <= @limit - @amount
            """, key, tx, cancellationToken: ct)) == 1;
        if (counted) return null;
        var used = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT used FROM banking_limit_usage WHERE tenant_id = @tenantId AND customer_id = @customer AND day = @day", key, tx, cancellationToken: ct));
        await tx.RollbackAsync(ct);
        var remaining = Math.Max(0, lim.Limit - used);
        return BankError.Unprocessable(BankingCodes.LimitExceeded,
            $"The daily limit of customer '{lim.Customer}' is {lim.Limit}; {remaining} is left today ({lim.Day}).",
            new Dictionary<string, object?> { ["limit"] = lim.Limit, ["remaining"] = remaining, ["day"] = lim.Day });
    }

    async Task<BankResult<PaymentResponse>> ReplayAsync(BankCaller caller, PaymentResponse existing, PaymentRequest body, CancellationToken ct)
    {
        if (existing.FromAccount != body.FromAccount || existing.ToAccount != body.ToAccount || existing.Amount != body.Amount
            || existing.Reference != body.Reference || existing.Description != body.Description)
            return BankError.Conflict(BankingCodes.PaymentExists, $"Payment '{existing.Id}' exists with different fields.");
        if (caller.Subject is not null && !await SeesAsync(caller, existing, ct))
            return BankError.Conflict(BankingCodes.PaymentExists, $"Payment '{existing.Id}' exists.");
        return existing.Status switch
        {
            // The first attempt stopped between reserving and transferring: finish it with the same transfer id.
            "processing" => await TransferAsync(caller, existing, await LimitCountedAsync(caller.TenantId, existing.Id, ct), ct),
            "failed" => Failed(existing),
            _ => BankResult<PaymentResponse>.Replayed(existing),
        };
    }

    async Task<bool> LimitCountedAsync(string tenantId, string id, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return await connection.ExecuteScalarAsync<string?>(new CommandDefinition(
            "SELECT limit_customer FROM banking_payments WHERE tenant_id = @tenantId AND id = @id", new { tenantId, id }, cancellationToken: ct)) is not null;
    }

    async Task<BankResult<PaymentResponse>> TransferAsync(BankCaller caller, PaymentResponse p, bool limitCounted, CancellationToken ct)
    {
        var view = caller.Subject is { } s ? ledger.For(s) : ledger;
        var result = await view.CreateTransferAsync(caller.TenantId, new CreateTransferRequest(p.TransferId, p.FromAccount, p.ToAccount, p.Amount,
            Description: p.Description ?? p.Reference, Metadata: new JsonObject { ["banking_payment"] = p.Id, ["reference"] = p.Reference }), ct);
        var nowUs = DbTime.ToMicros(clock.GetUtcNow());
        var kind = (await accounts.FindManyAsync(caller.TenantId, [p.FromAccount], ct)).ContainsKey(p.FromAccount) ? "payment" : "top_up";
        await using var connection = await database.OpenAsync(ct);
        await using var tx = await dialect.BeginWriteAsync(connection, ct);
        if (result.Succeeded)
        {
            var postedUs = DbTime.ToMicros(result.Value!.CreatedAt);
            var done = await connection.ExecuteAsync(new CommandDefinition(
                "UPDATE banking_payments SET status = 'completed', completed_at_us = @postedUs WHERE tenant_id = @tenantId AND id = @id AND status = 'processing'",
                new { tenantId = caller.TenantId, id = p.Id, postedUs }, tx, cancellationToken: ct));
            var completed = p with { Status = "completed", CompletedAt = result.Value.CreatedAt };
            if (done == 1)
            {
                await Transactions.RecordAsync(connection, tx, caller.TenantId, p.FromAccount, p.TransferId, kind, "debit", p.Amount, p.ToAccount, p.Reference,
                    p.Description, postedUs, ct);
                await Transactions.RecordAsync(connection, tx, caller.TenantId, p.ToAccount, p.TransferId, kind, "credit", p.Amount, p.FromAccount, p.Reference,
                    p.Description, postedUs, ct);
                await EventLog.AppendAsync(connection, tx, caller.TenantId, null, new NewEvent(BankingEventTypes.PaymentCompleted, p.Id, EventPayload(completed)),
                    nowUs, ct);
            }
            await tx.CommitAsync(ct);
            return BankResult<PaymentResponse>.Created(completed);
        }
        var e = result.Error!;
        var failed = p with { Status = "failed", FailureCode = e.Code, FailureDetail = e.Detail };
        var marked = await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE banking_payments SET status = 'failed', failure_code = @code, failure_detail = @detail, completed_at_us = @nowUs
            WHERE tenant_id = @tenantId AND id = @id AND status = 'processing'
            """, new { tenantId = caller.TenantId, id = p.Id, code = e.Code, detail = e.Detail, nowUs }, tx, cancellationToken: ct));
        if (marked == 1)
        {
            // A payment that moved nothing does not use the day's limit.
            if (limitCounted)
                await connection.ExecuteAsync(new CommandDefinition("""
                    UPDATE banking_limit_usage SET used = used - @amount
                    WHERE tenant_id = @tenantId AND customer_id = (SELECT limit_customer FROM banking_payments WHERE tenant_id = @tenantId AND id = @id)
                      AND day = (SELECT limit_day FROM banking_payments WHERE tenant_id = @tenantId AND id = @id)
                    """, new { tenantId = caller.TenantId, id = p.Id, amount = p.Amount }, tx, cancellationToken: ct));
            await EventLog.AppendAsync(connection, tx, caller.TenantId, null, new NewEvent(BankingEventTypes.PaymentFailed, p.Id, EventPayload(failed)), nowUs, ct);
        }
        await tx.CommitAsync(ct);
        return Failed(failed, e);
    }

    static BankResult<PaymentResponse> Failed(PaymentResponse p, LedgerError? e = null)
    {
        var error = e is not null ? BankError.FromLedger(e) : new BankError(422, p.FailureCode!, p.FailureDetail ?? p.FailureCode!);
        var extra = new Dictionary<string, object?>(error.Extra ?? new Dictionary<string, object?>()) { ["payment_id"] = p.Id };
        return error with { Extra = extra };
    }

    public async Task<BankResult<PaymentResponse>> ReverseAsync(BankCaller caller, string id, ReversePaymentRequest? body, CancellationToken ct)
    {
        if (caller.IsEndUser) return BankError.ServerOnly("reverse payments");
        if (body?.Amount is <= 0) return BankError.Invalid("amount", "Must be a positive integer in minor units.");
        if (body?.Description is { Length: > DescriptionLengthMax }) return BankError.Invalid("description", $"At most {DescriptionLengthMax} characters.");
        var p = await FindAsync(caller.TenantId, id, ct);
        if (p is null) return BankError.NotFound(BankingCodes.PaymentNotFound, $"No payment '{id}'.");
        if (p.Status is not ("completed" or "reversed"))
            return BankError.Unprocessable("payment_not_completed", $"Payment '{id}' is {p.Status}; only completed payments are reversed.");
        var reversalId = "bank:rev:" + id;
        var description = body?.Description ?? $"Reversal of {p.Reference ?? id}";
        var result = await ledger.ReverseAsync(caller.TenantId, p.TransferId, new ReverseRequest(reversalId, body?.Amount, description), ct);
        if (!result.Succeeded) return BankError.FromLedger(result.Error!);
        var t = result.Value!;
        var nowUs = DbTime.ToMicros(clock.GetUtcNow());
        await using var connection = await database.OpenAsync(ct);
        await using var tx = await dialect.BeginWriteAsync(connection, ct);
        var changed = await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE banking_payments SET status = 'reversed' WHERE tenant_id = @tenantId AND id = @id AND status = 'completed'",
            new { tenantId = caller.TenantId, id }, tx, cancellationToken: ct));
        var postedUs = DbTime.ToMicros(t.CreatedAt);
        await Transactions.RecordAsync(connection, tx, caller.TenantId, p.ToAccount, reversalId, "reversal", "debit", t.Amount, p.FromAccount, p.Reference,
            description, postedUs, ct);
        await Transactions.RecordAsync(connection, tx, caller.TenantId, p.FromAccount, reversalId, "reversal", "credit", t.Amount, p.ToAccount, p.Reference,
            description, postedUs, ct);
        var reversed = p with { Status = "reversed" };
        if (changed == 1)
            await EventLog.AppendAsync(connection, tx, caller.TenantId, null, new NewEvent(BankingEventTypes.PaymentReversed, id, EventPayload(reversed)), nowUs, ct);
        await tx.CommitAsync(ct);
        return BankResult<PaymentResponse>.Ok(reversed);
    }

    public async Task<BankResult<PaymentResponse>> GetAsync(BankCaller caller, string id, CancellationToken ct) =>
        await FindAsync(caller.TenantId, id, ct) is { } p && await SeesAsync(caller, p, ct)
            ? BankResult<PaymentResponse>.Ok(p)
            : BankError.NotFound(BankingCodes.PaymentNotFound, $"No payment '{id}'.");

    /// <summary>A server sees every payment; an end user those from or to its customer's accounts.</summary>
    async Task<bool> SeesAsync(BankCaller caller, PaymentResponse p, CancellationToken ct) =>
        caller.Subject is not { } subject
        || (await accounts.FindManyAsync(caller.TenantId, [p.FromAccount, p.ToAccount], ct)).Values.Any(a => a.CustomerSubject == subject);

    async Task<PaymentResponse?> FindAsync(string tenantId, string id, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var row = await connection.QuerySingleOrDefaultAsync<Row>(new CommandDefinition(
            $"SELECT {Columns} FROM banking_payments WHERE tenant_id = @tenantId AND id = @id", new { tenantId, id }, cancellationToken: ct));
        return row?.ToResponse();
    }

    /// <summary>The <c>data</c> of <c>payment.*</c> events (golden test: never change a field).</summary>
    internal static string EventPayload(PaymentResponse p) => JsonSerializer.Serialize(new
    {
        id = p.Id, from_account = p.FromAccount, to_account = p.ToAccount, amount = p.Amount, reference = p.Reference, status = p.Status,
        transfer_id = p.TransferId, failure_code = p.FailureCode,
    });

    sealed class Row
    {
        public string id { get; set; } = "";
        public string from_account { get; set; } = "";
        public string to_account { get; set; } = "";
        public long amount { get; set; }
        public string? reference { get; set; }
        public string? description { get; set; }
        public string status { get; set; } = "";
        public string? failure_code { get; set; }
        public string? failure_detail { get; set; }
        public string? limit_customer { get; set; }
        public string? limit_day { get; set; }
        public long created_at_us { get; set; }
        public long? completed_at_us { get; set; }

        public PaymentResponse ToResponse() => new(id, from_account, to_account, amount, reference, description, status, BankIds.PaymentTransfer(id), failure_code,
            failure_detail, DbTime.FromMicros(created_at_us), completed_at_us is { } c ? DbTime.FromMicros(c) : null);
    }
}
