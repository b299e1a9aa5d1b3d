using Neraca.Events;
using Neraca.Storage;
using System.Data.Common;
using Dapper;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Neraca.Ledger;


internal sealed record ChainLinkRow(long Link, byte[] PrevHash, byte[] Hash, long FirstSeq, long LastSeq, long CommittedAtUs);

/// <summary>Reads and locks what a batch needs, and writes what it produced, inside the batch's one transaction.
/// Two implementations because the fast paths differ: PostgreSQL takes arrays (one round trip to read, one to write),
/// SQLite takes prepared single-row statements (in-process, no round trips to save).</summary>
internal abstract class PostingStore
{
    public abstract Task<BatchState> LoadAsync(DbConnection connection, DbTransaction tx, string tenantId, LedgerRecord ledger,
        string[] accountIds, string[] transferIds, string[] reverseTargets, CancellationToken ct);

    public abstract Task WriteAsync(DbConnection connection, DbTransaction tx, BatchState state, BatchWrites writes,
        ChainLinkRow link, IReadOnlyList<NewEvent> events, long nowUs, CancellationToken ct);

    protected const string HeadSql = "SELECT last_link, head, last_seq FROM ledger_heads WHERE tenant_id = @t AND ledger_id = @l";

    protected static void ReadHead(DbDataReader r, BatchState state)
    {
        if (!r.Read()) throw new InvalidOperationException($"Ledger {state.Ledger.Id} has no head row.");
        state.LastLink = r.GetInt64(0);
        state.Head = (byte[])r.GetValue(1);
        state.LastSeq = r.GetInt64(2);
    }

    protected static void ReadAccounts(DbDataReader r, BatchState state)
    {
        while (r.Read())
        {
            var a = new AccountState
            {
                Id = r.GetString(0), LedgerId = r.GetString(1), NormalBalance = (NormalBalance)r.GetInt32(2), Code = r.GetInt32(3),
                Name = r.IsDBNull(4) ? null : r.GetString(4), Flags = (AccountFlags)r.GetInt32(5), OverdraftLimit = r.GetInt64(6),
                Metadata = r.IsDBNull(7) ? null : r.GetString(7), DebitsPosted = r.GetInt64(8), CreditsPosted = r.GetInt64(9),
                DebitsPending = r.GetInt64(10), CreditsPending = r.GetInt64(11), EntryCount = r.GetInt64(12), CreatedAtUs = r.GetInt64(13),
            };
            state.Accounts[a.Id] = a;
        }
    }

    protected static void ReadTransfers(DbDataReader r, BatchState state)
    {
        while (r.Read())
        {
            var t = new TransferRecord
            {
                Id = r.GetString(0), LedgerId = r.GetString(1), Seq = r.GetInt64(2), DebitAccountId = r.GetString(3), CreditAccountId = r.GetString(4),
                Amount = r.GetInt64(5), Pending = r.GetBoolean(6), TimeoutAtUs = r.IsDBNull(7) ? null : r.GetInt64(7), Code = r.GetInt32(8),
                Description = r.IsDBNull(9) ? null : r.GetString(9), Metadata = r.IsDBNull(10) ? null : r.GetString(10),
                Reverses = r.IsDBNull(11) ? null : r.GetString(11), EffectiveAtUs = r.GetInt64(12), CreatedAtUs = r.GetInt64(13),
                Resolution = r.IsDBNull(14) ? null : (ResolutionKind)r.GetInt32(14), ResolvedAmount = r.IsDBNull(15) ? 0 : r.GetInt64(15),
                ResolvedAtUs = r.IsDBNull(16) ? null : r.GetInt64(16),
            };
            state.Transfers[t.Id] = t;
        }
    }

    protected static void ReadReversed(DbDataReader r, BatchState state)
    {
        while (r.Read()) state.Reversed[r.GetString(0)] = r.GetInt64(1);
    }

    /// <summary>The two entries of each posting of the batch, by the posting's seq. A posting's entries are stored on the row
    /// that causes them (the transfer created posted, or the resolution posting a pending transfer) and read back through
    /// the <c>entries</c> view, so they must be exactly what that row's columns yield: checked here.</summary>
    protected static Dictionary<long, EntryPair> EntriesBySeq(BatchWrites writes, long nowUs)
    {
        var entries = writes.Entries;
        if (entries.Count % 2 != 0) throw new InvalidOperationException($"A batch has {entries.Count} entries: postings write two each.");
        var bySeq = new Dictionary<long, EntryPair>(entries.Count / 2);
        for (var i = 0; i < entries.Count; i += 2)
        {
            var (debit, credit) = (entries[i], entries[i + 1]);
            if (debit.Direction != EntryDirection.Debit || credit.Direction != EntryDirection.Credit || debit.Seq != credit.Seq
                || debit.TransferId != credit.TransferId || debit.Amount != credit.Amount || debit.EffectiveAtUs != credit.EffectiveAtUs
                || debit.PostedAtUs != nowUs || credit.PostedAtUs != nowUs)
                throw new InvalidOperationException($"The entries of seq {debit.Seq} are not a debit and its credit posted now.");
            bySeq.Add(debit.Seq, new EntryPair(debit, credit));
        }
        // Every posted row carries its pair and every pair has its row: a transfer created posted, or the post of a pending one.
        var carried = 0;
        foreach (var t in writes.Transfers)
        {
            var found = bySeq.TryGetValue(t.Seq, out var pair);
            if (found == t.Pending || (found && (pair.Debit.TransferId != t.Id || pair.Debit.AccountId != t.DebitAccountId
                || pair.Credit.AccountId != t.CreditAccountId || pair.Debit.Amount != t.Amount || pair.Debit.EffectiveAtUs != t.EffectiveAtUs)))
                throw new InvalidOperationException($"The entries of seq {t.Seq} do not match transfer {t.Id}.");
            if (found) carried++;
        }
        foreach (var r in writes.Resolutions)
        {
            var found = bySeq.TryGetValue(r.Seq, out var pair);
            if (found != (r.Kind == ResolutionKind.Posted) || (found && (pair.Debit.TransferId != r.TransferId || pair.Debit.Amount != r.Amount)))
                throw new InvalidOperationException($"The entries of seq {r.Seq} do not match the resolution of {r.TransferId}.");
            if (found) carried++;
        }
        if (carried != bySeq.Count) throw new InvalidOperationException($"{bySeq.Count - carried} postings' entries have no journal row to carry them.");
        return bySeq;
    }

    protected readonly record struct EntryPair(EntryRow Debit, EntryRow Credit);

    /// <summary>The entries the row of <paramref name="seq"/> carries, or null when it posts nothing.</summary>
    protected static EntryPair? Carried(Dictionary<long, EntryPair> entries, long seq) => entries.TryGetValue(seq, out var pair) ? pair : null;

    protected const string TransferSelect =
        "SELECT t.id, t.ledger_id, t.seq, t.debit_account_id, t.credit_account_id, t.amount, t.pending, t.timeout_at_us, t.code, t.description, t.metadata, t.reverses, t.effective_at_us, t.created_at_us, r.kind, r.amount, r.resolved_at_us FROM transfers t LEFT JOIN transfer_resolutions r ON r.tenant_id = t.tenant_id AND r.transfer_id = t.id";
}

/// <param name="rowLevelSecurity">Run each batch as the ledger's tenant (<see cref="RowLevelSecurity"/>), as requests do.</param>
internal sealed class PostgresPostingStore(bool rowLevelSecurity) : PostingStore
{
    public override async Task<BatchState> LoadAsync(DbConnection connection, DbTransaction tx, string tenantId, LedgerRecord ledger,
        string[] accountIds, string[] transferIds, string[] reverseTargets, CancellationToken ct)
    {
        var state = new BatchState { TenantId = tenantId, Ledger = ledger };
        await using var batch = new NpgsqlBatch((NpgsqlConnection)connection, (NpgsqlTransaction)tx);
        // Npgsql prepares these statements; left to choose, PostgreSQL re-plans them for every batch whenever earlier
        // batches were small (a custom plan per execution), which doubled its CPU per transfer at 64 clients. One
        // generic plan fits every batch size here: every statement is keyed lookups and inserts driven by the arrays.
        batch.BatchCommands.Add(new NpgsqlBatchCommand("SET LOCAL plan_cache_mode = force_generic_plan"));
        // The relays are woken after the commit instead of by the outbox trigger's NOTIFY, which would make the
        // commits of all ledgers take turns (see OutboxNotifier).
        batch.BatchCommands.Add(new NpgsqlBatchCommand(OutboxNotifier.SuppressTriggerSql));
        if (rowLevelSecurity) batch.BatchCommands.Add(Command($"CALL {RowLevelSecurity.EnterProcedure}($1)", tenantId));
        // The head row first: it serializes every writer of this ledger (in any process), so what follows is read fresh.
        // The accounts need no row locks of their own (locking writes every row): only posting transactions change
        // balances, and they all hold the head.
        batch.BatchCommands.Add(Command("SELECT last_link, head, last_seq FROM ledger_heads WHERE tenant_id = $1 AND ledger_id = $2 FOR UPDATE",
            tenantId, ledger.Id));
        batch.BatchCommands.Add(Command($"SELECT {LedgerStore.AccountColumns} FROM accounts WHERE tenant_id = $1 AND id = ANY($2)",
            tenantId, accountIds));
        batch.BatchCommands.Add(Command($"{TransferSelect} WHERE t.tenant_id = $1 AND t.id = ANY($2)", tenantId, transferIds));
        if (reverseTargets.Length > 0)
            batch.BatchCommands.Add(Command("SELECT reverses, sum(amount)::bigint FROM transfers WHERE tenant_id = $1 AND reverses = ANY($2) GROUP BY reverses",
                tenantId, reverseTargets));
        // (The SETs and the CALL return no rows, so the reader starts at the head row.)
        await using var reader = await batch.ExecuteReaderAsync(ct);
        ReadHead(reader, state);
        await reader.NextResultAsync(ct);
        ReadAccounts(reader, state);
        await reader.NextResultAsync(ct);
        ReadTransfers(reader, state);
        if (reverseTargets.Length > 0)
        {
            await reader.NextResultAsync(ct);
            ReadReversed(reader, state);
        }
        return state;
    }

    static NpgsqlBatchCommand Command(string sql, params object[] values)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var v in values) command.Parameters.Add(new NpgsqlParameter { Value = v });
        return command;
    }

    public override async Task WriteAsync(DbConnection connection, DbTransaction tx, BatchState state, BatchWrites writes,
        ChainLinkRow link, IReadOnlyList<NewEvent> events, long nowUs, CancellationToken ct)
    {
        var tenant = state.TenantId;
        var ledger = state.Ledger.Id;
        // A posting's two entries go on the row that causes them (see migration 0104): no entries rows of their own.
        var entries = EntriesBySeq(writes, nowUs);
        await using var batch = new NpgsqlBatch((NpgsqlConnection)connection, (NpgsqlTransaction)tx);
        var t = writes.Transfers;
        if (t.Count > 0)
        {
            var posted = t.Select(x => Carried(entries, x.Seq)).ToArray();
            batch.BatchCommands.Add(Command("""
                INSERT INTO transfers (tenant_id, id, ledger_id, seq, link, debit_account_id, credit_account_id, amount, pending, timeout_at_us,
                                       code, description, metadata, reverses, effective_at_us, created_at_us,
                                       debit_entry_no, credit_entry_no, debit_balance_after, credit_balance_after)
                SELECT $1, u.id, $2, u.seq, $3, u.d, u.c, u.amount, u.pending, u.timeout, u.code, u.description, u.metadata, u.reverses, u.eff, $4,
                       u.dn, u.cn, u.db, u.cb
                FROM unnest($5::text[], $6::bigint[], $7::text[], $8::text[], $9::bigint[], $10::boolean[], $11::bigint[], $12::integer[],
                            $13::text[], $14::text[], $15::text[], $16::bigint[], $17::bigint[], $18::bigint[], $19::bigint[], $20::bigint[])
                     AS u(id, seq, d, c, amount, pending, timeout, code, description, metadata, reverses, eff, dn, cn, db, cb)
                """, tenant, ledger, link.Link, nowUs,
                t.Select(x => x.Id).ToArray(), t.Select(x => x.Seq).ToArray(), t.Select(x => x.DebitAccountId).ToArray(),
                t.Select(x => x.CreditAccountId).ToArray(), t.Select(x => x.Amount).ToArray(), t.Select(x => x.Pending).ToArray(),
                t.Select(x => x.TimeoutAtUs).ToArray(), t.Select(x => x.Code).ToArray(), t.Select(x => x.Description).ToArray(),
                t.Select(x => x.Metadata).ToArray(), t.Select(x => x.Reverses).ToArray(), t.Select(x => x.EffectiveAtUs).ToArray(),
                posted.Select(p => p?.Debit.EntryNo).ToArray(), posted.Select(p => p?.Credit.EntryNo).ToArray(),
                posted.Select(p => p?.Debit.BalanceAfter).ToArray(), posted.Select(p => p?.Credit.BalanceAfter).ToArray()));
        }
        var opened = t.Where(x => x.Pending).ToArray();
        if (opened.Length > 0)
            batch.BatchCommands.Add(Command("""
                INSERT INTO open_pendings (tenant_id, transfer_id, ledger_id, timeout_at_us)
                SELECT $1, u.id, $2, u.timeout FROM unnest($3::text[], $4::bigint[]) AS u(id, timeout)
                """, tenant, ledger, opened.Select(x => x.Id).ToArray(), opened.Select(x => x.TimeoutAtUs).ToArray()));
        var r = writes.Resolutions;
        if (r.Count > 0)
        {
            batch.BatchCommands.Add(Command("DELETE FROM open_pendings WHERE tenant_id = $1 AND transfer_id = ANY($2)",
                tenant, r.Select(x => x.TransferId).ToArray()));
            var posted = r.Select(x => Carried(entries, x.Seq)).ToArray();
            batch.BatchCommands.Add(Command("""
                INSERT INTO transfer_resolutions (tenant_id, transfer_id, ledger_id, seq, link, kind, amount, resolved_at_us,
                                                  debit_account_id, credit_account_id, effective_at_us,
                                                  debit_entry_no, credit_entry_no, debit_balance_after, credit_balance_after)
                SELECT $1, u.id, $2, u.seq, $3, u.kind, u.amount, $4, u.d, u.c, u.eff, u.dn, u.cn, u.db, u.cb
                FROM unnest($5::text[], $6::bigint[], $7::smallint[], $8::bigint[], $9::text[], $10::text[], $11::bigint[],
                            $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[])
                     AS u(id, seq, kind, amount, d, c, eff, dn, cn, db, cb)
                """, tenant, ledger, link.Link, nowUs, r.Select(x => x.TransferId).ToArray(), r.Select(x => x.Seq).ToArray(),
                r.Select(x => (short)x.Kind).ToArray(), r.Select(x => x.Amount).ToArray(),
                posted.Select(p => p?.Debit.AccountId).ToArray(), posted.Select(p => p?.Credit.AccountId).ToArray(),
                posted.Select(p => p?.Debit.EffectiveAtUs).ToArray(),
                posted.Select(p => p?.Debit.EntryNo).ToArray(), posted.Select(p => p?.Credit.EntryNo).ToArray(),
                posted.Select(p => p?.Debit.BalanceAfter).ToArray(), posted.Select(p => p?.Credit.BalanceAfter).ToArray()));
        }
        var accounts = writes.ChangedAccounts.Select(id => state.Accounts[id]).ToArray();
        batch.BatchCommands.Add(Command("""
            UPDATE accounts a SET debits_posted = u.dp, credits_posted = u.cp, debits_pending = u.dpen, credits_pending = u.cpen, entry_count = u.n
            FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[]) AS u(id, dp, cp, dpen, cpen, n)
            WHERE a.tenant_id = $1 AND a.id = u.id
            """, tenant, accounts.Select(x => x.Id).ToArray(), accounts.Select(x => x.DebitsPosted).ToArray(), accounts.Select(x => x.CreditsPosted).ToArray(),
            accounts.Select(x => x.DebitsPending).ToArray(), accounts.Select(x => x.CreditsPending).ToArray(), accounts.Select(x => x.EntryCount).ToArray()));
        if (events.Count > 0) batch.BatchCommands.Add(EventLog.PostgresAppendCommitCommand(tenant, ledger, events, nowUs));
        batch.BatchCommands.Add(Command("""
            INSERT INTO chain_links (tenant_id, ledger_id, link, prev_hash, hash, first_seq, last_seq, committed_at_us)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            """, tenant, ledger, link.Link, link.PrevHash, link.Hash, link.FirstSeq, link.LastSeq, link.CommittedAtUs));
        batch.BatchCommands.Add(Command("UPDATE ledger_heads SET last_link = $3, head = $4, last_seq = $5 WHERE tenant_id = $1 AND ledger_id = $2",
            tenant, ledger, link.Link, link.Hash, state.LastSeq));
        await batch.ExecuteNonQueryAsync(ct);
    }
}

internal sealed class SqlitePostingStore : PostingStore
{
    public override async Task<BatchState> LoadAsync(DbConnection connection, DbTransaction tx, string tenantId, LedgerRecord ledger,
        string[] accountIds, string[] transferIds, string[] reverseTargets, CancellationToken ct)
    {
        // The batch transaction is BEGIN IMMEDIATE: SQLite's write lock is held from the start, so these reads are fresh.
        var state = new BatchState { TenantId = tenantId, Ledger = ledger };
        await ReadAsync(HeadSql, r => ReadHead(r, state));
        await ReadAsync($"SELECT {LedgerStore.AccountColumns} FROM accounts WHERE tenant_id = @t AND id IN (SELECT value FROM json_each(@ids))",
            r => ReadAccounts(r, state), accountIds);
        await ReadAsync($"{TransferSelect} WHERE t.tenant_id = @t AND t.id IN (SELECT value FROM json_each(@ids))", r => ReadTransfers(r, state), transferIds);
        if (reverseTargets.Length > 0)
            await ReadAsync("SELECT reverses, sum(amount) FROM transfers WHERE tenant_id = @t AND reverses IN (SELECT value FROM json_each(@ids)) GROUP BY reverses",
                r => ReadReversed(r, state), reverseTargets);
        return state;

        async Task ReadAsync(string sql, Action<DbDataReader> read, string[]? ids = null)
        {
            await using var command = (SqliteCommand)connection.CreateCommand();
            command.Transaction = (SqliteTransaction)tx;
            command.CommandText = sql;
            command.Parameters.AddWithValue("@t", tenantId);
            command.Parameters.AddWithValue("@l", ledger.Id);
            if (ids is not null) command.Parameters.AddWithValue("@ids", System.Text.Json.JsonSerializer.Serialize(ids));
            await using var reader = await command.ExecuteReaderAsync(ct);
            read(reader);
        }
    }

    public override async Task WriteAsync(DbConnection connection, DbTransaction tx, BatchState state, BatchWrites writes,
        ChainLinkRow link, IReadOnlyList<NewEvent> events, long nowUs, CancellationToken ct)
    {
        var common = new { t = state.TenantId, l = state.Ledger.Id, link = link.Link, now = nowUs };
        // A posting's two entries go on the row that causes them (see migration 0104): no entries rows of their own.
        var entries = EntriesBySeq(writes, nowUs);
        foreach (var x in writes.Transfers)
        {
            var posted = Carried(entries, x.Seq);
            await connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO transfers (tenant_id, id, ledger_id, seq, link, debit_account_id, credit_account_id, amount, pending, timeout_at_us,
                                       code, description, metadata, reverses, effective_at_us, created_at_us,
                                       debit_entry_no, credit_entry_no, debit_balance_after, credit_balance_after)
                VALUES (@t, @Id, @l, @Seq, @link, @DebitAccountId, @CreditAccountId, @Amount, @Pending, @TimeoutAtUs, @Code, @Description, @Metadata, @Reverses, @EffectiveAtUs, @now,
                        @dn, @cn, @db, @cb)
                """, new { common.t, common.l, common.link, common.now, x.Id, x.Seq, x.DebitAccountId, x.CreditAccountId, x.Amount, x.Pending, x.TimeoutAtUs,
                x.Code, x.Description, x.Metadata, x.Reverses, x.EffectiveAtUs, dn = posted?.Debit.EntryNo, cn = posted?.Credit.EntryNo,
                db = posted?.Debit.BalanceAfter, cb = posted?.Credit.BalanceAfter }, tx, cancellationToken: ct));
        }
        foreach (var x in writes.Transfers.Where(x => x.Pending))
            await connection.ExecuteAsync(new CommandDefinition(
                "INSERT INTO open_pendings (tenant_id, transfer_id, ledger_id, timeout_at_us) VALUES (@t, @Id, @l, @TimeoutAtUs)",
                new { common.t, common.l, x.Id, x.TimeoutAtUs }, tx, cancellationToken: ct));
        foreach (var x in writes.Resolutions)
            await connection.ExecuteAsync(new CommandDefinition(
                "DELETE FROM open_pendings WHERE tenant_id = @t AND transfer_id = @TransferId", new { common.t, x.TransferId }, tx, cancellationToken: ct));
        foreach (var x in writes.Resolutions)
        {
            var posted = Carried(entries, x.Seq);
            await connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO transfer_resolutions (tenant_id, transfer_id, ledger_id, seq, link, kind, amount, resolved_at_us,
                                                  debit_account_id, credit_account_id, effective_at_us,
                                                  debit_entry_no, credit_entry_no, debit_balance_after, credit_balance_after)
                VALUES (@t, @TransferId, @l, @Seq, @link, @kind, @Amount, @now, @d, @c, @eff, @dn, @cn, @db, @cb)
                """, new { common.t, common.l, common.link, common.now, x.TransferId, x.Seq, kind = (int)x.Kind, x.Amount,
                d = posted?.Debit.AccountId, c = posted?.Credit.AccountId, eff = posted?.Debit.EffectiveAtUs, dn = posted?.Debit.EntryNo,
                cn = posted?.Credit.EntryNo, db = posted?.Debit.BalanceAfter, cb = posted?.Credit.BalanceAfter }, tx, cancellationToken: ct));
        }
        foreach (var id in writes.ChangedAccounts)
        {
            var a = state.Accounts[id];
            await connection.ExecuteAsync(new CommandDefinition("""
                UPDATE accounts SET debits_posted = @DebitsPosted, credits_posted = @CreditsPosted, debits_pending = @DebitsPending,
                       credits_pending = @CreditsPending, entry_count = @EntryCount WHERE tenant_id = @t AND id = @Id
                """, new { common.t, a.Id, a.DebitsPosted, a.CreditsPosted, a.DebitsPending, a.CreditsPending, a.EntryCount }, tx, cancellationToken: ct));
        }
        await EventLog.AppendCommitAsync(connection, tx, state.TenantId, state.Ledger.Id, events, nowUs, ct);
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO chain_links (tenant_id, ledger_id, link, prev_hash, hash, first_seq, last_seq, committed_at_us)
            VALUES (@t, @l, @Link, @PrevHash, @Hash, @FirstSeq, @LastSeq, @CommittedAtUs);
            UPDATE ledger_heads SET last_link = @Link, head = @Hash, last_seq = @lastSeq WHERE tenant_id = @t AND ledger_id = @l;
            """, new { common.t, common.l, link.Link, link.PrevHash, link.Hash, link.FirstSeq, link.LastSeq, link.CommittedAtUs, lastSeq = state.LastSeq },
            tx, cancellationToken: ct));
    }
}
