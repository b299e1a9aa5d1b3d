using System.Data.Common;
using System.Text;
using Dapper;
using Microsoft.Extensions.Caching.Memory;
using Neraca.Caching;
using Neraca.Events;
using Neraca.Storage;

namespace Neraca.Ledger;

internal enum CreateOutcome
{
    Created,
    Replayed,
    Conflict,
}

/// <summary>Ledger and account definitions, and every read of the ledger. Definitions are immutable once created
/// (ledger code/asset, an account's ledger, a transfer's accounts), so they are cached in process without invalidation.</summary>
internal sealed class LedgerStore(Database database, SqlDialect dialect, TimeProvider clock, NeracaCache cache)
{
    /// <summary>Immutable facts only: ledger rows, account → ledger, transfer → (ledger, accounts).</summary>
    readonly MemoryCache _definitions = new(new MemoryCacheOptions { SizeLimit = 500_000 });

    internal const string TransferColumns =
        "t.id, t.ledger_id, t.seq, t.debit_account_id, t.credit_account_id, t.amount, t.pending, t.timeout_at_us, t.code, t.description, t.metadata, t.reverses, t.effective_at_us, t.created_at_us";

    const string TransferSelect =
        $"SELECT {TransferColumns}, r.kind, r.amount AS resolved_amount, r.resolved_at_us FROM transfers t LEFT JOIN transfer_resolutions r ON r.tenant_id = t.tenant_id AND r.transfer_id = t.id";

    internal const string AccountColumns =
        "id, ledger_id, normal_balance, code, name, flags, overdraft_limit, metadata, debits_posted, credits_posted, debits_pending, credits_pending, entry_count, created_at_us";

    /// <summary>What the API shows of an account: <see cref="AccountColumns"/> (which the posting pipeline reads) and the owner.</summary>
    const string AccountReadColumns = AccountColumns + ", owner";

    public Database Database => database;

    // ---------- ledgers ----------

    public async Task<(CreateOutcome Outcome, LedgerRecord Ledger)> CreateLedgerAsync(string tenantId, LedgerRecord wanted, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var existing = await FindLedgerAsync(connection, tenantId, wanted.Code, ct);
        if (existing is null)
        {
            try
            {
                await using var tx = await connection.BeginTransactionAsync(ct);
                await connection.ExecuteAsync(new CommandDefinition("""
                    INSERT INTO ledgers (tenant_id, id, code, asset, scale, name, metadata, created_at_us)
                    VALUES (@tenantId, @Id, @Code, @Asset, @Scale, @Name, @Metadata, @CreatedAtUs)
                    """, new { tenantId, wanted.Id, wanted.Code, wanted.Asset, wanted.Scale, wanted.Name, wanted.Metadata, wanted.CreatedAtUs }, tx, cancellationToken: ct));
                await connection.ExecuteAsync(new CommandDefinition(
                    "INSERT INTO ledger_heads (tenant_id, ledger_id, last_link, head, last_seq) VALUES (@tenantId, @id, 0, @head, 0)",
                    new { tenantId, id = wanted.Id, head = AuditChain.Genesis }, tx, cancellationToken: ct));
                await tx.CommitAsync(ct);
                return (CreateOutcome.Created, wanted);
            }
            catch (DbException e) when (Database.IsUniqueViolation(e))
            {
                existing = await FindLedgerAsync(connection, tenantId, wanted.Code, ct);
                if (existing is null) throw;
            }
        }
        var same = existing.Asset == wanted.Asset && existing.Scale == wanted.Scale && existing.Name == wanted.Name && existing.Metadata == wanted.Metadata;
        return (same ? CreateOutcome.Replayed : CreateOutcome.Conflict, existing);
    }

    /// <summary>By id or by code.</summary>
    public async Task<LedgerRecord?> GetLedgerAsync(string tenantId, string idOrCode, CancellationToken ct)
    {
        var key = ("ledger", tenantId, idOrCode);
        if (_definitions.TryGetValue(key, out LedgerRecord? cached)) return cached;
        await using var connection = await database.OpenAsync(ct);
        var ledger = await FindLedgerAsync(connection, tenantId, idOrCode, ct);
        if (ledger is not null)
        {
            _definitions.Set(("ledger", tenantId, ledger.Id), ledger, new MemoryCacheEntryOptions { Size = 1 });
            _definitions.Set(("ledger", tenantId, ledger.Code), ledger, new MemoryCacheEntryOptions { Size = 1 });
        }
        return ledger;
    }

    static async Task<LedgerRecord?> FindLedgerAsync(DbConnection connection, string tenantId, string idOrCode, CancellationToken ct)
    {
        var row = await connection.QueryFirstOrDefaultAsync<LedgerRow>(new CommandDefinition(
            "SELECT id, code, asset, scale, name, metadata, created_at_us FROM ledgers WHERE tenant_id = @tenantId AND (id = @idOrCode OR code = @idOrCode) ORDER BY (id = @idOrCode) DESC",
            new { tenantId, idOrCode }, cancellationToken: ct));
        return row?.ToRecord();
    }

    public async Task<(List<LedgerRecord> Items, bool More)> ListLedgersAsync(string tenantId, int limit, string? afterCode, CancellationToken ct)
    {
        await using var connection = await database.OpenReadAsync(ct);
        var rows = await connection.QueryAsync<LedgerRow>(new CommandDefinition("""
            SELECT id, code, asset, scale, name, metadata, created_at_us FROM ledgers
            WHERE tenant_id = @tenantId AND (@afterCode IS NULL OR code > @afterCode) ORDER BY code LIMIT @take
            """, new { tenantId, afterCode, take = limit + 1 }, cancellationToken: ct));
        var list = rows.Select(r => r.ToRecord()).ToList();
        return Trim(list, limit);
    }

    // ---------- accounts ----------

    public async Task<(CreateOutcome Outcome, AccountState Account)> CreateAccountAsync(string tenantId, AccountState wanted, string eventPayload, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        try
        {
            await using var tx = await connection.BeginTransactionAsync(ct);
            await connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO accounts (tenant_id, id, ledger_id, normal_balance, code, name, flags, overdraft_limit, metadata, owner, created_at_us)
                VALUES (@tenantId, @Id, @LedgerId, @nb, @Code, @Name, @flags, @OverdraftLimit, @Metadata, @Owner, @CreatedAtUs)
                """, new { tenantId, wanted.Id, wanted.LedgerId, nb = (int)wanted.NormalBalance, wanted.Code, wanted.Name, flags = (int)wanted.Flags, wanted.OverdraftLimit, wanted.Metadata, wanted.Owner, wanted.CreatedAtUs },
                tx, cancellationToken: ct));
            await EventLog.AppendAsync(connection, tx, tenantId, wanted.LedgerId, new NewEvent(LedgerEventTypes.AccountCreated, wanted.Id, eventPayload), wanted.CreatedAtUs, ct);
            await tx.CommitAsync(ct);
            _definitions.Set(("account-ledger", tenantId, wanted.Id), wanted.LedgerId, new MemoryCacheEntryOptions { Size = 1 });
            return (CreateOutcome.Created, wanted);
        }
        catch (DbException e) when (Database.IsUniqueViolation(e))
        {
            var existing = await GetAccountAsync(tenantId, wanted.Id, ct) ?? throw new InvalidOperationException("account vanished", e);
            var same = existing.LedgerId == wanted.LedgerId && existing.NormalBalance == wanted.NormalBalance && existing.Code == wanted.Code
                && existing.Name == wanted.Name && existing.Flags == wanted.Flags && existing.OverdraftLimit == wanted.OverdraftLimit && existing.Metadata == wanted.Metadata
                && existing.Owner == wanted.Owner;
            return (same ? CreateOutcome.Replayed : CreateOutcome.Conflict, existing);
        }
    }

    /// <summary>The account with its current balance: from the cache, else the primary. Never older than a transfer
    /// acknowledged before the call (the posting pipeline retires the entry before acknowledging). Do not mutate it.</summary>
    public async Task<AccountState?> GetAccountAsync(string tenantId, string accountId, CancellationToken ct) =>
        await cache.GetOrLoadAsync("account", CacheScopes.Account(tenantId, accountId), CacheScopes.Account(tenantId, accountId),
            token => LoadAccountAsync(tenantId, accountId, token), ct);

    async Task<AccountState?> LoadAccountAsync(string tenantId, string accountId, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var row = await connection.QuerySingleOrDefaultAsync<AccountRow>(new CommandDefinition(
            $"SELECT {AccountReadColumns} FROM accounts WHERE tenant_id = @tenantId AND id = @accountId", new { tenantId, accountId }, cancellationToken: ct));
        return row?.ToState();
    }

    /// <summary>The ledger an account belongs to (immutable, cached), or null when the tenant has no such account.</summary>
    public async Task<string?> GetAccountLedgerIdAsync(string tenantId, string accountId, CancellationToken ct)
    {
        var key = ("account-ledger", tenantId, accountId);
        if (_definitions.TryGetValue(key, out string? cached)) return cached;
        await using var connection = await database.OpenAsync(ct);
        var ledgerId = await connection.QuerySingleOrDefaultAsync<string>(new CommandDefinition(
            "SELECT ledger_id FROM accounts WHERE tenant_id = @tenantId AND id = @accountId", new { tenantId, accountId }, cancellationToken: ct));
        if (ledgerId is not null) _definitions.Set(key, ledgerId, new MemoryCacheEntryOptions { Size = 1 });
        return ledgerId;
    }

    /// <summary>Loads the ledgers of many accounts into the definition cache with one query (batch requests).</summary>
    public async Task WarmAccountLedgersAsync(string tenantId, IEnumerable<string> accountIds, CancellationToken ct)
    {
        var missing = accountIds.Distinct(StringComparer.Ordinal).Where(id => !_definitions.TryGetValue(("account-ledger", tenantId, id), out _)).ToArray();
        if (missing.Length == 0) return;
        await using var connection = await database.OpenAsync(ct);
        var sql = $"SELECT id, ledger_id FROM accounts WHERE tenant_id = @tenantId AND {dialect.InIdList("id", "missing")}";
        var rows = await connection.QueryAsync<(string Id, string LedgerId)>(new CommandDefinition(sql,
            new { tenantId, missing = dialect.IdListValue(missing) }, cancellationToken: ct));
        foreach (var (id, ledgerId) in rows) _definitions.Set(("account-ledger", tenantId, id), ledgerId, new MemoryCacheEntryOptions { Size = 1 });
    }

    /// <summary>Which of <paramref name="accountIds"/> the subject <paramref name="owner"/> owns (one query; batch requests).</summary>
    public async Task<HashSet<string>> OwnedAccountIdsAsync(string tenantId, string owner, IEnumerable<string> accountIds, CancellationToken ct)
    {
        var ids = accountIds.Distinct(StringComparer.Ordinal).ToArray();
        if (ids.Length == 0) return new HashSet<string>(StringComparer.Ordinal);
        await using var connection = await database.OpenAsync(ct);
        var sql = $"SELECT id FROM accounts WHERE tenant_id = @tenantId AND owner = @owner AND {dialect.InIdList("id", "ids")}";
        var rows = await connection.QueryAsync<string>(new CommandDefinition(sql,
            new { tenantId, owner, ids = dialect.IdListValue(ids) }, cancellationToken: ct));
        return rows.ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>A page of accounts by id; with an owner only the accounts that subject owns (index <c>accounts_owner</c>).</summary>
    public async Task<(List<AccountState> Items, bool More)> ListAccountsAsync(string tenantId, string? ledgerId, string? owner,
        IReadOnlyList<(string Key, string Value)> metadata, int limit, string? afterId, CancellationToken ct)
    {
        var sql = new StringBuilder($"SELECT {AccountReadColumns} FROM accounts WHERE tenant_id = @tenantId");
        var args = new DynamicParameters(new { tenantId, take = limit + 1 });
        if (owner is not null) { sql.Append(" AND owner = @owner"); args.Add("owner", owner); }
        if (ledgerId is not null) { sql.Append(" AND ledger_id = @ledgerId"); args.Add("ledgerId", ledgerId); }
        if (afterId is not null) { sql.Append(" AND id > @afterId"); args.Add("afterId", afterId); }
        for (var i = 0; i < metadata.Count; i++)
        {
            // Keys are validated to [A-Za-z0-9_-] by the API, and still passed as parameters.
            sql.Append(" AND ").Append(dialect.JsonFieldEquals("metadata", $"mk{i}", $"mv{i}"));
            args.Add($"mk{i}", metadata[i].Key);
            args.Add($"mv{i}", metadata[i].Value);
        }
        sql.Append(" ORDER BY id LIMIT @take");
        await using var connection = await database.OpenReadAsync(ct);
        var rows = await connection.QueryAsync<AccountRow>(new CommandDefinition(sql.ToString(), args, cancellationToken: ct));
        return Trim(rows.Select(r => r.ToState()).ToList(), limit);
    }

    // ---------- transfers ----------

    public async Task<TransferRecord?> GetTransferAsync(string tenantId, string transferId, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var row = await connection.QuerySingleOrDefaultAsync<TransferRow>(new CommandDefinition(
            $"{TransferSelect} WHERE t.tenant_id = @tenantId AND t.id = @transferId", new { tenantId, transferId }, cancellationToken: ct));
        return row?.ToRecord();
    }

    /// <summary>Transfers with their resolutions, on the caller's connection and transaction (the event data source reads
    /// the journal in the same snapshot as the events it renders).</summary>
    /// <remarks>In chunks: given the 8,000 ids of a batch's events at once, PostgreSQL plans parallel scans of both tables
    /// and a hash join (218 ms against 36 ms for index lookups on a million transfers); up to 500 it looks them up.</remarks>
    public async Task<List<TransferRecord>> ReadTransfersAsync(DbConnection connection, DbTransaction? tx, string tenantId, string[] transferIds,
        CancellationToken ct)
    {
        var records = new List<TransferRecord>(transferIds.Length);
        foreach (var chunk in transferIds.Chunk(500))
        {
            var rows = await connection.QueryAsync<TransferRow>(new CommandDefinition(
                $"{TransferSelect} WHERE t.tenant_id = @tenantId AND {dialect.InIdList("t.id", "ids")}",
                new { tenantId, ids = dialect.IdListValue(chunk) }, tx, cancellationToken: ct));
            records.AddRange(rows.Select(r => r.ToRecord()));
        }
        return records;
    }

    /// <summary>Immutable routing facts of a transfer (its ledger and accounts), cached.</summary>
    public async Task<(string LedgerId, string DebitAccountId, string CreditAccountId)?> GetTransferRouteAsync(string tenantId, string transferId, CancellationToken ct)
    {
        var key = ("transfer-route", tenantId, transferId);
        if (_definitions.TryGetValue(key, out (string, string, string)? cached)) return cached;
        var t = await GetTransferAsync(tenantId, transferId, ct);
        if (t is null) return null;
        (string, string, string)? route = (t.LedgerId, t.DebitAccountId, t.CreditAccountId);
        _definitions.Set(key, route, new MemoryCacheEntryOptions { Size = 1 });
        return route;
    }

    /// <summary>A page of transfers by creation time; with an owner only those with a side on an account that subject owns.</summary>
    public async Task<(List<TransferRecord> Items, bool More)> ListTransfersAsync(string tenantId, string? ledgerId, string? accountId, string? owner,
        long? fromUs, long? toUs, int limit, (long CreatedAtUs, string Id)? after, CancellationToken ct)
    {
        var sql = new StringBuilder($"{TransferSelect} WHERE t.tenant_id = @tenantId");
        var args = new DynamicParameters(new { tenantId, take = limit + 1 });
        if (owner is not null)
        {
            sql.Append("""
                 AND (t.debit_account_id IN (SELECT o.id FROM accounts o WHERE o.tenant_id = @tenantId AND o.owner = @owner)
                  OR t.credit_account_id IN (SELECT o.id FROM accounts o WHERE o.tenant_id = @tenantId AND o.owner = @owner))
                """);
            args.Add("owner", owner);
        }
        if (ledgerId is not null) { sql.Append(" AND t.ledger_id = @ledgerId"); args.Add("ledgerId", ledgerId); }
        if (accountId is not null) { sql.Append(" AND (t.debit_account_id = @accountId OR t.credit_account_id = @accountId)"); args.Add("accountId", accountId); }
        if (fromUs is not null) { sql.Append(" AND t.created_at_us >= @fromUs"); args.Add("fromUs", fromUs); }
        if (toUs is not null) { sql.Append(" AND t.created_at_us < @toUs"); args.Add("toUs", toUs); }
        if (after is { } a)
        {
            sql.Append(" AND (t.created_at_us > @afterAt OR (t.created_at_us = @afterAt AND t.id > @afterId))");
            args.Add("afterAt", a.CreatedAtUs);
            args.Add("afterId", a.Id);
        }
        sql.Append(" ORDER BY t.created_at_us, t.id LIMIT @take");
        await using var connection = await database.OpenReadAsync(ct);
        var rows = await connection.QueryAsync<TransferRow>(new CommandDefinition(sql.ToString(), args, cancellationToken: ct));
        return Trim(rows.Select(r => r.ToRecord()).ToList(), limit);
    }

    // ---------- history ----------

    public async Task<(List<EntryRow> Items, bool More)> ListEntriesAsync(string tenantId, string accountId, long? fromUs, long? toUs,
        int limit, long afterEntryNo, CancellationToken ct)
    {
        if (fromUs is not null || toUs is not null || afterEntryNo != 0)
            return await LoadEntriesAsync(tenantId, accountId, fromUs, toUs, limit, afterEntryNo, primary: false, ct);
        // The first page is what apps poll: cached, retired with the balance. It is loaded from the primary so that the
        // cache never keeps a lagging replica's page under a version that already covers a newer write.
        var page = await cache.GetOrLoadAsync("history", CacheScopes.Account(tenantId, accountId), CacheScopes.History(tenantId, accountId, limit),
            async token => new EntriesPage(await LoadEntriesAsync(tenantId, accountId, null, null, limit, 0, primary: true, token)), ct);
        return page!.Page;
    }

    sealed record EntriesPage((List<EntryRow> Items, bool More) Page);

    async Task<(List<EntryRow> Items, bool More)> LoadEntriesAsync(string tenantId, string accountId, long? fromUs, long? toUs,
        int limit, long afterEntryNo, bool primary, CancellationToken ct)
    {
        await using var connection = primary ? await database.OpenAsync(ct) : await database.OpenReadAsync(ct);
        var rows = await connection.QueryAsync<AuditChain.EntryDbRow>(new CommandDefinition(HistorySql(database.Kind),
            new { tenantId, accountId, afterEntryNo, fromUs, toUs, take = limit + 1 }, cancellationToken: ct));
        return Trim(rows.Select(e => new EntryRow(e.account_id, e.entry_no, e.seq, e.transfer_id, (EntryDirection)e.direction, e.amount,
            e.balance_after, e.posted_at_us, e.effective_at_us)).ToList(), limit);
    }

    const string EntryColumns = "account_id, entry_no, seq, transfer_id, direction, amount, balance_after, posted_at_us, effective_at_us";

    /// <summary>An account's entries after <c>@afterEntryNo</c>, optionally posted in [<c>@fromUs</c>, <c>@toUs</c>), by number.</summary>
    internal static string HistorySql(StoreKind kind) => kind == StoreKind.Sqlite
        ? SqliteEntries("{0} > @afterEntryNo AND (@fromUs IS NULL OR +{1} >= @fromUs) AND (@toUs IS NULL OR +{1} < @toUs)", "ORDER BY entry_no LIMIT @take")
        : $"""
            SELECT {EntryColumns} FROM entries
            WHERE tenant_id = @tenantId AND account_id = @accountId AND entry_no > @afterEntryNo
              AND (@fromUs IS NULL OR posted_at_us >= @fromUs) AND (@toUs IS NULL OR posted_at_us < @toUs)
            ORDER BY entry_no LIMIT @take
            """;

    /// <summary>The running balance of an account's last entry posted by <c>@atUs</c>.</summary>
    internal static string BalancePostedAtSql(StoreKind kind) => kind == StoreKind.Sqlite
        ? $"SELECT balance_after FROM ({SqliteEntries("+{1} <= @atUs", "ORDER BY entry_no DESC LIMIT 1")})"
        : "SELECT balance_after FROM entries WHERE tenant_id = @tenantId AND account_id = @accountId AND posted_at_us <= @atUs ORDER BY entry_no DESC LIMIT 1";

    // The branches of the entries view (migration 0104): table, the columns that play account, entry number and
    // posting time, then the other columns (named by the first branch). PostgreSQL merges the branches' index order under the view's
    // filter; SQLite sorts all of the account's entries for every page instead, but merges the same union written out
    // with the filter in each branch ('+' keeps it off the posting-time indexes, which would need a sort).
    static readonly (string Table, string Account, string EntryNo, string PostedAt, string Others)[] SqliteEntryBranches =
    [
        ("entries_v1", "account_id", "entry_no", "posted_at_us", "seq, transfer_id, direction, amount, balance_after, effective_at_us"),
        ("transfers", "debit_account_id", "debit_entry_no", "created_at_us", "seq, id, 1, amount, debit_balance_after, effective_at_us"),
        ("transfers", "credit_account_id", "credit_entry_no", "created_at_us", "seq, id, 2, amount, credit_balance_after, effective_at_us"),
        ("transfer_resolutions", "debit_account_id", "debit_entry_no", "resolved_at_us", "seq, transfer_id, 1, amount, debit_balance_after, effective_at_us"),
        ("transfer_resolutions", "credit_account_id", "credit_entry_no", "resolved_at_us", "seq, transfer_id, 2, amount, credit_balance_after, effective_at_us"),
    ];

    /// <summary>The entries of <c>@accountId</c> on SQLite matching <paramref name="filter"/> ({0} = entry number, {1} =
    /// posting time of the branch), in <paramref name="order"/>, with the columns of <see cref="EntryColumns"/>.</summary>
    static string SqliteEntries(string filter, string order) =>
        string.Join(" UNION ALL ", SqliteEntryBranches.Select(b =>
            $"SELECT {b.Account} AS account_id, {b.EntryNo} AS entry_no, {b.PostedAt} AS posted_at_us, {b.Others} FROM {b.Table} " +
            $"WHERE tenant_id = @tenantId AND {b.Account} = @accountId AND {b.EntryNo} IS NOT NULL AND " + string.Format(filter, b.EntryNo, b.PostedAt)))
        + " " + order;

    /// <summary>The posted balance as it stood at a time: by posting time it is the running balance of the last entry
    /// posted by then; by business (effective) time it is the signed sum of entries effective by then.</summary>
    public async Task<long> BalanceAtAsync(string tenantId, AccountState account, long atUs, bool effectiveBasis, CancellationToken ct)
    {
        await using var connection = await database.OpenReadAsync(ct);
        if (!effectiveBasis)
        {
            return await connection.ExecuteScalarAsync<long?>(new CommandDefinition(BalancePostedAtSql(database.Kind),
                new { tenantId, accountId = account.Id, atUs }, cancellationToken: ct)) ?? 0;
        }
        var growing = account.NormalBalance == NormalBalance.Credit ? (int)EntryDirection.Credit : (int)EntryDirection.Debit;
        return await connection.ExecuteScalarAsync<long?>(new CommandDefinition("""
            SELECT sum(CASE WHEN direction = @growing THEN amount ELSE -amount END) FROM entries
            WHERE tenant_id = @tenantId AND account_id = @id AND effective_at_us <= @atUs
            """, new { tenantId, id = account.Id, atUs, growing }, cancellationToken: ct)) ?? 0;
    }

    public long NowUs() => DbTime.ToMicros(clock.GetUtcNow());

    static (List<T> Items, bool More) Trim<T>(List<T> list, int limit)
    {
        var more = list.Count > limit;
        if (more) list.RemoveAt(list.Count - 1);
        return (list, more);
    }

    // ---------- rows (Dapper maps columns to these by name) ----------

    internal sealed class LedgerRow
    {
        public string id { get; set; } = "";
        public string code { get; set; } = "";
        public string asset { get; set; } = "";
        public int scale { get; set; }
        public string? name { get; set; }
        public string? metadata { get; set; }
        public long created_at_us { get; set; }

        public LedgerRecord ToRecord() => new(id, code, asset, scale, name, metadata, created_at_us);
    }

    internal sealed class AccountRow
    {
        public string id { get; set; } = "";
        public string ledger_id { get; set; } = "";
        public int normal_balance { get; set; }
        public int code { get; set; }
        public string? name { get; set; }
        public int flags { get; set; }
        public long overdraft_limit { get; set; }
        public string? metadata { get; set; }
        public long debits_posted { get; set; }
        public long credits_posted { get; set; }
        public long debits_pending { get; set; }
        public long credits_pending { get; set; }
        public long entry_count { get; set; }
        public long created_at_us { get; set; }
        public string? owner { get; set; }

        public AccountState ToState() => new()
        {
            Id = id, LedgerId = ledger_id, NormalBalance = (NormalBalance)normal_balance, Code = code, Name = name, Flags = (AccountFlags)flags,
            OverdraftLimit = overdraft_limit, Metadata = metadata, Owner = owner, DebitsPosted = debits_posted, CreditsPosted = credits_posted,
            DebitsPending = debits_pending, CreditsPending = credits_pending, EntryCount = entry_count, CreatedAtUs = created_at_us,
        };
    }

    internal sealed class TransferRow
    {
        public string id { get; set; } = "";
        public string ledger_id { get; set; } = "";
        public long seq { get; set; }
        public string debit_account_id { get; set; } = "";
        public string credit_account_id { get; set; } = "";
        public long amount { get; set; }
        public bool pending { get; set; }
        public long? timeout_at_us { get; set; }
        public int code { get; set; }
        public string? description { get; set; }
        public string? metadata { get; set; }
        public string? reverses { get; set; }
        public long effective_at_us { get; set; }
        public long created_at_us { get; set; }
        public int? kind { get; set; }
        public long? resolved_amount { get; set; }
        public long? resolved_at_us { get; set; }

        public TransferRecord ToRecord() => new()
        {
            Id = id, LedgerId = ledger_id, Seq = seq, DebitAccountId = debit_account_id, CreditAccountId = credit_account_id, Amount = amount,
            Pending = pending, TimeoutAtUs = timeout_at_us, Code = code, Description = description, Metadata = metadata, Reverses = reverses,
            EffectiveAtUs = effective_at_us, CreatedAtUs = created_at_us, Resolution = kind is { } k ? (ResolutionKind)k : null,
            ResolvedAmount = resolved_amount ?? 0, ResolvedAtUs = resolved_at_us,
        };
    }

    // ---------- set-based reads for settlement and reconciliation (issue #17) ----------

    /// <summary>Posted totals per account and side for entries effective in [<paramref name="fromUs"/>, <paramref name="toUs"/>):
    /// one grouped query over the entries view (its per-account indexes), the sums checked for overflow by the store.</summary>
    public async Task<Dictionary<string, (long Debits, long Credits, long DebitCount, long CreditCount)>> AccountActivityAsync(string tenantId,
        string[] accountIds, long fromUs, long toUs, CancellationToken ct)
    {
        var sql = $"""
            SELECT account_id, CAST(direction AS integer) AS direction, CAST(sum(amount) AS bigint) AS total, count(*) AS n FROM entries
            WHERE tenant_id = @tenantId AND {dialect.InIdList("account_id", "ids")} AND effective_at_us >= @fromUs AND effective_at_us < @toUs
            GROUP BY account_id, direction
            """;
        await using var connection = await database.OpenReadAsync(ct);
        var rows = await connection.QueryAsync<(string Account, int Direction, long Total, long Count)>(new CommandDefinition(sql,
            new { tenantId, ids = dialect.IdListValue(accountIds), fromUs, toUs }, cancellationToken: ct));
        var totals = new Dictionary<string, (long Debits, long Credits, long DebitCount, long CreditCount)>(StringComparer.Ordinal);
        foreach (var r in rows)
        {
            var t = totals.GetValueOrDefault(r.Account);
            totals[r.Account] = r.Direction == (int)EntryDirection.Debit ? (r.Total, t.Credits, r.Count, t.CreditCount) : (t.Debits, r.Total, t.DebitCount, r.Count);
        }
        return totals;
    }

    /// <summary>A page of the transfers with a side on <paramref name="accountId"/> effective in [from, to), by (effective time, id).</summary>
    public async Task<(List<TransferRecord> Items, bool More)> ListAccountTransfersAsync(string tenantId, string accountId, long fromUs, long toUs,
        int limit, (long EffectiveAtUs, string Id)? after, CancellationToken ct)
    {
        var sql = $"""
            {TransferSelect}
            WHERE t.tenant_id = @tenantId AND (t.debit_account_id = @accountId OR t.credit_account_id = @accountId)
              AND t.effective_at_us >= @fromUs AND t.effective_at_us < @toUs
              AND (@afterAt IS NULL OR t.effective_at_us > @afterAt OR (t.effective_at_us = @afterAt AND t.id > @afterId))
            ORDER BY t.effective_at_us, t.id LIMIT @take
            """;
        await using var connection = await database.OpenReadAsync(ct);
        var rows = await connection.QueryAsync<TransferRow>(new CommandDefinition(sql,
            new { tenantId, accountId, fromUs, toUs, afterAt = after?.EffectiveAtUs, afterId = after?.Id ?? "", take = limit + 1 }, cancellationToken: ct));
        return Trim(rows.Select(r => r.ToRecord()).ToList(), limit);
    }

    // ---------- banking reads (issue #16) ----------

    /// <summary>The entries of <paramref name="accountId"/> posted by the given transfers, by entry number. The view's
    /// filter reaches each journal table's primary key (tenant, transfer id).</summary>
    public async Task<List<EntryRow>> ListEntriesOfTransfersAsync(string tenantId, string accountId, string[] transferIds, CancellationToken ct)
    {
        var sql = $"SELECT {EntryColumns} FROM entries WHERE tenant_id = @tenantId AND account_id = @accountId AND {dialect.InIdList("transfer_id", "ids")} ORDER BY entry_no";
        await using var connection = await database.OpenReadAsync(ct);
        var rows = await connection.QueryAsync<AuditChain.EntryDbRow>(new CommandDefinition(sql,
            new { tenantId, accountId, ids = dialect.IdListValue(transferIds) }, cancellationToken: ct));
        return rows.Select(e => new EntryRow(e.account_id, e.entry_no, e.seq, e.transfer_id, (EntryDirection)e.direction, e.amount,
            e.balance_after, e.posted_at_us, e.effective_at_us)).ToList();
    }
}
