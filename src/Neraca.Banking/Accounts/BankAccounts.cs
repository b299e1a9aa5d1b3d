using System.Collections.Concurrent;
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

public sealed record OpenAccountRequest(string? Id = null, string? Product = null, string? Currency = null);

public sealed record BankAccountResponse(string Id, string CustomerId, string Product, string Currency, string Ledger, string Status, long OverdraftLimit,
    DateTimeOffset CreatedAt, DateTimeOffset? ClosedAt);

/// <summary><c>current</c> = posted balance; <c>available</c> = current - holds - other pending debits + unused overdraft.
/// With <c>at</c>: the balances as they stood then (pending debits other than holds are not kept over time: 0).</summary>
public sealed record AccountSummary(string Account, string Currency, long Current, long Available, long Holds, long PendingDebits, long OverdraftLimit,
    string Status, DateTimeOffset At);

public sealed record AccountStatusRequest(string? Reason = null);

/// <summary>A banking account: the ledger account of the same id and what banking knows about it.</summary>
public sealed record BankAccount(string Id, string CustomerId, string CustomerSubject, string Product, string Currency, string Ledger, string Status,
    long OverdraftLimit, long CreatedAtUs, long? ClosedAtUs)
{
    /// <summary>The customer's KYC level (which daily limit applies) and status, read with the account.</summary>
    public string CustomerKyc { get; init; } = "basic";
    public string CustomerStatus { get; init; } = "active";

    public BankAccountResponse ToResponse() => new(Id, CustomerId, Product, Currency, Ledger, Status, OverdraftLimit, DbTime.FromMicros(CreatedAtUs),
        ClosedAtUs is { } c ? DbTime.FromMicros(c) : null);
}

/// <summary>Customer accounts (wallet, savings): each opens a credit-normal ledger account owned by the customer's subject,
/// in the tenant's banking ledger of its currency (<c>bank-idr</c>), which also holds the holds account. Status
/// <c>active | frozen | closed</c>; closing needs a zero balance and nothing pending.</summary>
public sealed class BankAccounts(Database database, SqlDialect dialect, ILedger ledger, Customers.Customers customers, NeracaCache cache,
    IOptions<BankingOptions> options, TimeProvider clock)
{
    static readonly string[] Products = ["wallet", "savings"];
    readonly ConcurrentDictionary<(string, string), bool> _ledgersReady = new();

    const string Select = """
        SELECT a.id, a.customer_id, c.subject AS customer_subject, c.kyc_level AS customer_kyc, c.status AS customer_status, a.product, a.currency, a.ledger, a.status, a.overdraft_limit, a.created_at_us, a.closed_at_us
        FROM banking_accounts a JOIN banking_customers c ON c.tenant_id = a.tenant_id AND c.id = a.customer_id
        """;

    public async Task<BankResult<BankAccountResponse>> OpenAsync(BankCaller caller, string customerId, OpenAccountRequest body, CancellationToken ct)
    {
        if (caller.IsEndUser) return BankError.ServerOnly("open accounts");
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        if (!BankIds.IsValid(body.Id)) errors["id"] = [$"Required: 1-{BankIds.LengthMax} characters of A-Z a-z 0-9 . _ : -"];
        if (body.Product is null || !Products.Contains(body.Product)) errors["product"] = ["Required: \"wallet\" or \"savings\"."];
        if (body.Currency is null) errors["currency"] = ["Required: an ISO 4217 code such as IDR."];
        if (errors.Count > 0) return BankError.Invalid(errors);
        if (!options.Value.Currencies.TryGetValue(body.Currency!, out var currency))
            return BankError.Unprocessable(BankingCodes.UnsupportedCurrency, $"Accounts are opened in {string.Join(", ", options.Value.Currencies.Keys)}.");
        var customer = await customers.FindAsync(caller.TenantId, customerId, ct);
        if (customer is null) return BankError.NotFound(BankingCodes.CustomerNotFound, $"No customer '{customerId}'.");
        if (customer.Status != "active") return BankError.Unprocessable(BankingCodes.CustomerNotActive, $"Customer '{customerId}' is {customer.Status}.");
        if (await EnsureLedgerAsync(caller.TenantId, body.Currency!, currency.Scale, ct) is { } problem) return problem;

        var overdraft = body.Product == "wallet" ? options.Value.WalletOverdraftLimit : options.Value.SavingsOverdraftLimit;
        var existing = await FindAsync(caller.TenantId, body.Id!, ct);
        if (existing is not null)
            return existing.CustomerId == customerId && existing.Product == body.Product && existing.Currency == body.Currency
                ? BankResult<BankAccountResponse>.Replayed(existing.ToResponse())
                : BankError.Conflict(BankingCodes.AccountExists, $"Account '{body.Id}' exists with different fields.");
        var created = await ledger.CreateAccountAsync(caller.TenantId, new CreateAccountRequest(body.Id, BankIds.Ledger(body.Currency!), "credit",
            Name: $"{body.Product} {customerId}", Flags: ["debits_must_not_exceed_credits"], OverdraftLimit: overdraft,
            Metadata: new JsonObject { ["banking_customer"] = customerId, ["product"] = body.Product }, Owner: customer.Subject), ct);
        if (!created.Succeeded) return BankError.FromLedger(created.Error!);

        var now = DbTime.ToMicros(clock.GetUtcNow());
        var account = new BankAccount(body.Id!, customerId, customer.Subject, body.Product!, body.Currency!, BankIds.Ledger(body.Currency!), "active", overdraft,
            now, null);
        await using var connection = await database.OpenAsync(ct);
        await using var tx = await dialect.BeginWriteAsync(connection, ct);
        var inserted = await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO banking_accounts (tenant_id, id, customer_id, product, currency, ledger, status, overdraft_limit, created_at_us)
            VALUES (@tenantId, @Id, @CustomerId, @Product, @Currency, @Ledger, @Status, @OverdraftLimit, @CreatedAtUs)
            ON CONFLICT (tenant_id, id) DO NOTHING
            """, new { tenantId = caller.TenantId, account.Id, account.CustomerId, account.Product, account.Currency, account.Ledger, account.Status,
            account.OverdraftLimit, account.CreatedAtUs }, tx, cancellationToken: ct));
        if (inserted == 0)
        {
            await tx.RollbackAsync(ct);
            return await OpenAsync(caller, customerId, body, ct); // a concurrent open of the same id won: answer as its replay
        }
        await AuditLog.AppendAsync(connection, tx, caller, "account.opened", "account", account.Id,
            [new("customer", customerId), new("product", account.Product), new("currency", account.Currency)], now, ct);
        await tx.CommitAsync(ct);
        return BankResult<BankAccountResponse>.Created(account.ToResponse());
    }

    /// <summary>The tenant's banking ledger of the currency and its holds account (idempotent; remembered per process).</summary>
    async Task<BankError?> EnsureLedgerAsync(string tenantId, string currency, int scale, CancellationToken ct)
    {
        if (_ledgersReady.ContainsKey((tenantId, currency))) return null;
        var code = BankIds.Ledger(currency);
        var made = await ledger.CreateLedgerAsync(tenantId, new CreateLedgerRequest(code, currency, scale, $"Banking {currency}"), ct);
        if (!made.Succeeded)
        {
            var found = await ledger.GetLedgerAsync(tenantId, code, ct);
            if (!found.Succeeded || found.Value!.Asset != currency || found.Value.Scale != scale)
                return BankError.Unprocessable(BankingCodes.LedgerCurrencyMismatch, $"Ledger '{code}' exists and is not {currency} with scale {scale}.");
        }
        var holds = await ledger.CreateAccountAsync(tenantId, new CreateAccountRequest(BankIds.HoldsAccount(currency), code, "credit", Name: $"Captured holds {currency}"), ct);
        if (!holds.Succeeded) return BankError.FromLedger(holds.Error!);
        _ledgersReady[(tenantId, currency)] = true;
        return null;
    }

    public async Task<BankAccount?> FindAsync(string tenantId, string id, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return await FindAsync(connection, null, tenantId, id, ct);
    }

    static async Task<BankAccount?> FindAsync(DbConnection connection, DbTransaction? tx, string tenantId, string id, CancellationToken ct) =>
        (await connection.QuerySingleOrDefaultAsync<Row>(new CommandDefinition($"{Select} WHERE a.tenant_id = @tenantId AND a.id = @id",
            new { tenantId, id }, tx, cancellationToken: ct)))?.ToAccount();

    /// <summary>The account if the caller reaches it (a server any of the tenant's, an end user its customer's own).</summary>
    public async Task<BankResult<BankAccount>> ReachAsync(BankCaller caller, string id, CancellationToken ct) =>
        await FindAsync(caller.TenantId, id, ct) is { } a && (caller.Subject is null || caller.Subject == a.CustomerSubject)
            ? BankResult<BankAccount>.Ok(a)
            : BankError.NotFound(BankingCodes.AccountNotFound, $"No account '{id}'.");

    /// <summary>Several accounts in one query (payments: both sides).</summary>
    public async Task<Dictionary<string, BankAccount>> FindManyAsync(string tenantId, string[] ids, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var rows = await connection.QueryAsync<Row>(new CommandDefinition($"{Select} WHERE a.tenant_id = @tenantId AND {dialect.InIdList("a.id", "ids")}",
            new { tenantId, ids = dialect.IdListValue(ids) }, cancellationToken: ct));
        return rows.Select(r => r.ToAccount()).ToDictionary(a => a.Id, StringComparer.Ordinal);
    }

    public async Task<BankResult<Page<BankAccountResponse>>> ListAsync(BankCaller caller, string customerId, int? limit, string? after, CancellationToken ct)
    {
        if (limit is < 1 or > 1000) return BankError.Invalid("limit", "Must be from 1 to 1000.");
        var customer = await customers.FindAsync(caller.TenantId, customerId, ct);
        if (customer is null || !Customers.Customers.Reaches(caller, customer)) return BankError.NotFound(BankingCodes.CustomerNotFound, $"No customer '{customerId}'.");
        var take = limit ?? 100;
        await using var connection = await database.OpenReadAsync(ct);
        var rows = (await connection.QueryAsync<Row>(new CommandDefinition(
            $"{Select} WHERE a.tenant_id = @tenantId AND a.customer_id = @customerId AND (@afterId IS NULL OR a.id > @afterId) ORDER BY a.id LIMIT @take",
            new { tenantId = caller.TenantId, customerId, afterId = Cursor.Decode(after), take = take + 1 }, cancellationToken: ct))).ToList();
        var more = rows.Count > take;
        if (more) rows.RemoveAt(rows.Count - 1);
        return BankResult<Page<BankAccountResponse>>.Ok(new(rows.Select(r => r.ToAccount().ToResponse()).ToList(), more ? Cursor.Encode(rows[^1].id) : null));
    }

    public async Task<BankResult<BankAccountResponse>> GetAsync(BankCaller caller, string id, CancellationToken ct)
    {
        var a = await ReachAsync(caller, id, ct);
        return a.Succeeded ? BankResult<BankAccountResponse>.Ok(a.Value!.ToResponse()) : a.Error!;
    }

    public async Task<BankResult<AccountSummary>> SummaryAsync(BankCaller caller, string id, DateTimeOffset? at, CancellationToken ct)
    {
        var reached = await ReachAsync(caller, id, ct);
        if (!reached.Succeeded) return reached.Error!;
        var a = reached.Value!;
        var view = caller.Subject is { } s ? ledger.For(s) : ledger;
        if (at is { } when)
        {
            var point = await view.GetBalanceAtAsync(caller.TenantId, id, when, "posted", ct);
            if (!point.Succeeded) return BankError.FromLedger(point.Error!);
            var heldThen = await HoldsAtAsync(caller.TenantId, id, DbTime.ToMicros(when), ct);
            var unusedThen = Math.Min(a.OverdraftLimit, checked(a.OverdraftLimit + point.Value!.Balance));
            return BankResult<AccountSummary>.Ok(new AccountSummary(id, a.Currency, point.Value.Balance,
                checked(point.Value.Balance - heldThen + Math.Max(0, unusedThen)), heldThen, 0, a.OverdraftLimit, a.Status, when));
        }
        var account = await view.GetAccountAsync(caller.TenantId, id, ct);
        if (!account.Succeeded) return BankError.FromLedger(account.Error!);
        var b = account.Value!.Balance;
        var holds = await ActiveHoldsAsync(caller.TenantId, id, ct);
        var otherPending = Math.Max(0, checked(b.DebitsPending - holds));
        // Unused overdraft: all of it while the balance is not negative, what is left of it when it is.
        var unused = Math.Max(0, Math.Min(a.OverdraftLimit, checked(a.OverdraftLimit + b.Posted)));
        var available = checked(b.Posted - holds - otherPending + unused);
        return BankResult<AccountSummary>.Ok(new AccountSummary(id, a.Currency, b.Posted, available, holds, otherPending, a.OverdraftLimit, a.Status,
            clock.GetUtcNow()));
    }

    /// <summary>Sum of the account's active holds: cached under the account's scope, which the ledger retires on every
    /// posting of the account and banking on every hold change.</summary>
    async Task<long> ActiveHoldsAsync(string tenantId, string id, CancellationToken ct)
    {
        var total = await cache.GetOrLoadAsync("banking-holds", CacheScopes.Account(tenantId, id), CompositeKey.Of("bank-holds", tenantId, id),
            async token =>
            {
                await using var connection = await database.OpenAsync(token);
                return new HoldTotal(await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
                    "SELECT sum(amount) FROM banking_holds WHERE tenant_id = @tenantId AND account_id = @id AND status = 'active' AND expires_at_us > @nowUs",
                    new { tenantId, id, nowUs = DbTime.ToMicros(clock.GetUtcNow()) }, cancellationToken: token)) ?? 0);
            }, ct);
        return total!.Amount;
    }

    sealed record HoldTotal(long Amount);

    /// <summary>Holds that were active at <paramref name="atUs"/>: created by then, not resolved and not expired by then.</summary>
    async Task<long> HoldsAtAsync(string tenantId, string id, long atUs, CancellationToken ct)
    {
        await using var connection = await database.OpenReadAsync(ct);
        return await connection.ExecuteScalarAsync<long?>(new CommandDefinition("""
            SELECT sum(amount) FROM banking_holds WHERE tenant_id = @tenantId AND account_id = @id AND created_at_us <= @atUs
              AND (resolved_at_us IS NULL OR resolved_at_us > @atUs) AND expires_at_us > @atUs
            """, new { tenantId, id, atUs }, cancellationToken: ct)) ?? 0;
    }

    public Task<BankResult<BankAccountResponse>> FreezeAsync(BankCaller caller, string id, AccountStatusRequest? body, CancellationToken ct) =>
        SetStatusAsync(caller, id, "frozen", body?.Reason, ct);

    public Task<BankResult<BankAccountResponse>> UnfreezeAsync(BankCaller caller, string id, AccountStatusRequest? body, CancellationToken ct) =>
        SetStatusAsync(caller, id, "active", body?.Reason, ct);

    public Task<BankResult<BankAccountResponse>> CloseAsync(BankCaller caller, string id, AccountStatusRequest? body, CancellationToken ct) =>
        SetStatusAsync(caller, id, "closed", body?.Reason, ct);

    async Task<BankResult<BankAccountResponse>> SetStatusAsync(BankCaller caller, string id, string status, string? reason, CancellationToken ct)
    {
        if (caller.IsEndUser) return BankError.ServerOnly($"set an account {status}");
        if (reason is { Length: > 200 }) return BankError.Invalid("reason", "At most 200 characters.");
        var reached = await ReachAsync(caller, id, ct);
        if (!reached.Succeeded) return reached.Error!;
        var a = reached.Value!;
        if (a.Status == status) return BankResult<BankAccountResponse>.Ok(a.ToResponse());
        if (a.Status == "closed") return BankError.Unprocessable(BankingCodes.AccountClosed, $"Account '{id}' is closed.");
        if (status == "closed")
        {
            // A closed account takes no payments, so nothing may be left in it or reserved from or for it.
            var state = await ledger.GetAccountAsync(caller.TenantId, id, ct);
            if (!state.Succeeded) return BankError.FromLedger(state.Error!);
            var b = state.Value!.Balance;
            if (b.Posted != 0 || b.DebitsPending != 0 || b.CreditsPending != 0)
                return BankError.Unprocessable(BankingCodes.AccountNotEmpty,
                    $"Account '{id}' holds {b.Posted} with {b.DebitsPending} pending out and {b.CreditsPending} pending in: move it out first.",
                    new Dictionary<string, object?> { ["balance"] = b.Posted, ["pending_debits"] = b.DebitsPending, ["pending_credits"] = b.CreditsPending });
        }
        var now = DbTime.ToMicros(clock.GetUtcNow());
        await using var connection = await database.OpenAsync(ct);
        await using var tx = await dialect.BeginWriteAsync(connection, ct);
        var changed = await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE banking_accounts SET status = @status, closed_at_us = CASE WHEN @status = 'closed' THEN @now ELSE closed_at_us END
            WHERE tenant_id = @tenantId AND id = @id AND status = @from
            """, new { tenantId = caller.TenantId, id, status, now, from = a.Status }, tx, cancellationToken: ct));
        if (changed == 0) return BankError.Conflict("conflict", $"Account '{id}' changed meanwhile; read it and retry.");
        await AuditLog.AppendAsync(connection, tx, caller, status switch { "frozen" => "account.frozen", "active" => "account.unfrozen", _ => "account.closed" },
            "account", id, [new("from", a.Status), new("to", status), new("reason", reason)], now, ct);
        await tx.CommitAsync(ct);
        return BankResult<BankAccountResponse>.Ok((a with { Status = status, ClosedAtUs = status == "closed" ? now : a.ClosedAtUs }).ToResponse());
    }

    internal sealed class Row
    {
        public string id { get; set; } = "";
        public string customer_id { get; set; } = "";
        public string customer_subject { get; set; } = "";
        public string customer_kyc { get; set; } = "";
        public string customer_status { get; set; } = "";
        public string product { get; set; } = "";
        public string currency { get; set; } = "";
        public string ledger { get; set; } = "";
        public string status { get; set; } = "";
        public long overdraft_limit { get; set; }
        public long created_at_us { get; set; }
        public long? closed_at_us { get; set; }

        public BankAccount ToAccount() => new(id, customer_id, customer_subject, product, currency, ledger, status, overdraft_limit, created_at_us, closed_at_us)
        {
            CustomerKyc = customer_kyc, CustomerStatus = customer_status,
        };
    }
}
