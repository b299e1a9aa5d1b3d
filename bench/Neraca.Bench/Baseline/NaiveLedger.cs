using Npgsql;

namespace Neraca.Bench.Baseline;

public sealed record NaiveTransfer(string Id, string Ledger, string DebitAccount, string CreditAccount, long Amount, string Status, int Code,
    string? Description, object? Metadata, DateTimeOffset CreatedAt, DateTimeOffset EffectiveAt);

public sealed record NaiveBalance(long DebitsPosted, long CreditsPosted, long DebitsPending, long CreditsPending, long Posted, long Available);

public sealed record NaiveAccount(string Id, string Ledger, string NormalBalance, int Code, string? Name, string[] Flags, long OverdraftLimit,
    object? Metadata, NaiveBalance Balance, DateTimeOffset CreatedAt);

/// <summary>Outcome of a transfer: the transfer, or the failure code of the contract.</summary>
public readonly record struct NaiveOutcome(NaiveTransfer? Transfer, bool Replayed, string? Code);

/// <summary>The way a typical CRUD backend keeps a ledger in PostgreSQL: one database transaction per transfer
/// that locks both accounts with <c>SELECT ... FOR UPDATE</c> (in id order, so it never deadlocks), inserts the
/// transfer and its two entries with running balances, updates both balances, and commits. The writes go in
/// one round trip, as an ORM's SaveChanges would send them. No batching across requests, no audit chain, no events.</summary>
public sealed class NaiveLedger(NpgsqlDataSource db, TimeProvider time)
{
    public const string Schema = """
        CREATE TABLE IF NOT EXISTS ledgers (
            id text PRIMARY KEY, code text NOT NULL UNIQUE, asset text NOT NULL, scale smallint NOT NULL, created_at timestamptz NOT NULL);
        CREATE TABLE IF NOT EXISTS accounts (
            id text PRIMARY KEY, ledger_id text NOT NULL REFERENCES ledgers (id), normal_balance smallint NOT NULL,
            debits_posted bigint NOT NULL DEFAULT 0, credits_posted bigint NOT NULL DEFAULT 0, created_at timestamptz NOT NULL);
        CREATE INDEX IF NOT EXISTS accounts_ledger ON accounts (ledger_id, id);
        CREATE TABLE IF NOT EXISTS transfers (
            id text PRIMARY KEY, ledger_id text NOT NULL, debit_account_id text NOT NULL, credit_account_id text NOT NULL,
            amount bigint NOT NULL CHECK (amount > 0), created_at timestamptz NOT NULL);
        CREATE TABLE IF NOT EXISTS entries (
            id bigserial PRIMARY KEY, ledger_id text NOT NULL, account_id text NOT NULL, transfer_id text NOT NULL,
            direction smallint NOT NULL, amount bigint NOT NULL, balance_after bigint NOT NULL, posted_at timestamptz NOT NULL);
        CREATE INDEX IF NOT EXISTS entries_account ON entries (account_id, id);
        """;

    const short Debit = 1;
    const short Credit = 2;

    public async Task CreateSchemaAsync(CancellationToken ct)
    {
        await using var command = db.CreateCommand(Schema);
        await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Creates the ledger or returns the existing one with that code; its id.</summary>
    public async Task<(string Id, bool Created)> CreateLedgerAsync(string code, string asset, short scale, CancellationToken ct)
    {
        await using var command = db.CreateCommand("""
            INSERT INTO ledgers (id, code, asset, scale, created_at) VALUES (@id, @code, @asset, @scale, @now)
            ON CONFLICT (code) DO NOTHING RETURNING id
            """);
        command.Parameters.AddWithValue("id", "ldg_" + Guid.NewGuid().ToString("N"));
        command.Parameters.AddWithValue("code", code);
        command.Parameters.AddWithValue("asset", asset);
        command.Parameters.AddWithValue("scale", scale);
        command.Parameters.AddWithValue("now", time.GetUtcNow());
        if (await command.ExecuteScalarAsync(ct) is string id) return (id, true);
        return (await FindLedgerAsync(code, ct) ?? throw new InvalidOperationException("ledger vanished"), false);
    }

    public async Task<string?> FindLedgerAsync(string codeOrId, CancellationToken ct)
    {
        await using var command = db.CreateCommand("SELECT id FROM ledgers WHERE code = @key OR id = @key");
        command.Parameters.AddWithValue("key", codeOrId);
        return await command.ExecuteScalarAsync(ct) as string;
    }

    public async Task<bool> CreateAccountAsync(string id, string ledgerId, short normalBalance, CancellationToken ct)
    {
        await using var command = db.CreateCommand("""
            INSERT INTO accounts (id, ledger_id, normal_balance, created_at) VALUES (@id, @ledger, @normal, @now) ON CONFLICT (id) DO NOTHING
            """);
        command.Parameters.AddWithValue("id", id);
        command.Parameters.AddWithValue("ledger", ledgerId);
        command.Parameters.AddWithValue("normal", normalBalance);
        command.Parameters.AddWithValue("now", time.GetUtcNow());
        return await command.ExecuteNonQueryAsync(ct) == 1;
    }

    public async Task<NaiveAccount?> GetAccountAsync(string id, CancellationToken ct)
    {
        await using var command = db.CreateCommand("""
            SELECT a.ledger_id, l.code, a.normal_balance, a.debits_posted, a.credits_posted, a.created_at
            FROM accounts a JOIN ledgers l ON l.id = a.ledger_id WHERE a.id = @id
            """);
        command.Parameters.AddWithValue("id", id);
        await using var reader = await command.ExecuteReaderAsync(ct);
        if (!await reader.ReadAsync(ct)) return null;
        var normal = reader.GetInt16(2);
        long debits = reader.GetInt64(3), credits = reader.GetInt64(4);
        var posted = normal == Credit ? credits - debits : debits - credits;
        return new NaiveAccount(id, reader.GetString(1), normal == Credit ? "credit" : "debit", 0, null, [], 0, null,
            new NaiveBalance(debits, credits, 0, 0, posted, posted), reader.GetFieldValue<DateTimeOffset>(5));
    }

    /// <summary>One transfer, one transaction.</summary>
    public async Task<NaiveOutcome> TransferAsync(string? id, string debitId, string creditId, long amount, CancellationToken ct)
    {
        if (amount <= 0) return new(null, false, "validation_failed");
        if (string.Equals(debitId, creditId, StringComparison.Ordinal)) return new(null, false, "accounts_must_be_different");
        id ??= "trf_" + Guid.NewGuid().ToString("N");
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);

        string? debitLedger = null, creditLedger = null;
        short debitNormal = 0, creditNormal = 0;
        long debitDebits = 0, debitCredits = 0, creditDebits = 0, creditCredits = 0;
        await using (var lockCommand = new NpgsqlCommand("""
            SELECT id, ledger_id, normal_balance, debits_posted, credits_posted FROM accounts
            WHERE id = ANY(@ids) ORDER BY id FOR UPDATE
            """, connection, tx))
        {
            lockCommand.Parameters.AddWithValue("ids", new[] { debitId, creditId });
            await using var reader = await lockCommand.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                var accountId = reader.GetString(0);
                if (accountId == debitId)
                    (debitLedger, debitNormal, debitDebits, debitCredits) = (reader.GetString(1), reader.GetInt16(2), reader.GetInt64(3), reader.GetInt64(4));
                else
                    (creditLedger, creditNormal, creditDebits, creditCredits) = (reader.GetString(1), reader.GetInt16(2), reader.GetInt64(3), reader.GetInt64(4));
            }
        }
        if (debitLedger is null || creditLedger is null) return new(null, false, "account_not_found");
        if (debitLedger != creditLedger) return new(null, false, "ledger_mismatch");
        long newDebitDebits, newCreditCredits;
        try
        {
            newDebitDebits = checked(debitDebits + amount);
            newCreditCredits = checked(creditCredits + amount);
        }
        catch (OverflowException)
        {
            return new(null, false, "overflow");
        }

        var now = time.GetUtcNow();
        await using var batch = new NpgsqlBatch(connection, tx);
        batch.BatchCommands.Add(Command("""
            INSERT INTO transfers (id, ledger_id, debit_account_id, credit_account_id, amount, created_at) VALUES ($1, $2, $3, $4, $5, $6)
            """, id, debitLedger, debitId, creditId, amount, now));
        batch.BatchCommands.Add(Command("UPDATE accounts SET debits_posted = $2 WHERE id = $1", debitId, newDebitDebits));
        batch.BatchCommands.Add(Command("UPDATE accounts SET credits_posted = $2 WHERE id = $1", creditId, newCreditCredits));
        batch.BatchCommands.Add(Command("""
            INSERT INTO entries (ledger_id, account_id, transfer_id, direction, amount, balance_after, posted_at)
            VALUES ($1, $2, $3, 1, $4, $5, $7), ($1, $6, $3, 2, $4, $8, $7)
            """, debitLedger, debitId, id, amount, Balance(debitNormal, newDebitDebits, debitCredits), creditId, now,
            Balance(creditNormal, creditDebits, newCreditCredits)));
        try
        {
            await batch.ExecuteNonQueryAsync(ct);
            await tx.CommitAsync(ct);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            await tx.RollbackAsync(ct);
            return await ReplayAsync(id, debitId, creditId, amount, ct);
        }
        return new(new NaiveTransfer(id, debitLedger, debitId, creditId, amount, "posted", 0, null, null, now, now), false, null);
    }

    async Task<NaiveOutcome> ReplayAsync(string id, string debitId, string creditId, long amount, CancellationToken ct)
    {
        await using var command = db.CreateCommand("SELECT ledger_id, debit_account_id, credit_account_id, amount, created_at FROM transfers WHERE id = @id");
        command.Parameters.AddWithValue("id", id);
        await using var reader = await command.ExecuteReaderAsync(ct);
        if (!await reader.ReadAsync(ct)) return new(null, false, "transfer_exists_with_different_fields");
        if (reader.GetString(1) != debitId || reader.GetString(2) != creditId || reader.GetInt64(3) != amount)
            return new(null, false, "transfer_exists_with_different_fields");
        var at = reader.GetFieldValue<DateTimeOffset>(4);
        return new(new NaiveTransfer(id, reader.GetString(0), debitId, creditId, amount, "posted", 0, null, null, at, at), true, null);
    }

    static long Balance(short normal, long debits, long credits) => normal == Credit ? credits - debits : debits - credits;

    static NpgsqlBatchCommand Command(string sql, params object[] values)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var v in values) command.Parameters.Add(new NpgsqlParameter { Value = v });
        return command;
    }

    public static short ParseNormal(string? text) => text switch
    {
        "debit" => Debit,
        "credit" => Credit,
        _ => 0,
    };
}
