using System.Data;
using System.Data.Common;
using Dapper;

namespace Neraca.Storage;

/// <summary>What the two stores spell differently: id-list predicates, row locks, how a write transaction begins and
/// how concurrent writers are serialized. One instance per process, registered by <see cref="StorageModule.AddStorage"/>
/// from the configured <see cref="Database"/>; stores take it instead of testing <see cref="Database.Kind"/>. Where a
/// whole algorithm differs (group commit with <c>NpgsqlBatch</c>, the snapshot-horizon feed), the store keeps two
/// implementations and picks one once with <see cref="Choose{T}"/>.</summary>
public abstract class SqlDialect
{
    private protected SqlDialect() { }

    /// <summary>The dialect of <paramref name="database"/>: the only place that maps a store kind to its SQL.</summary>
    public static SqlDialect For(Database database) => database.Kind switch
    {
        StoreKind.Postgres => PostgresDialect.Instance,
        StoreKind.Sqlite => SqliteDialect.Instance,
        _ => throw new ArgumentOutOfRangeException(nameof(database), database.Kind, "Unknown store kind."),
    };

    public abstract StoreKind Kind { get; }

    /// <summary>Picks the implementation of an algorithm that differs as a whole between the stores. Call it once
    /// (in a constructor or a DI registration), not per statement.</summary>
    public abstract T Choose<T>(Func<T> postgres, Func<T> sqlite);

    /// <summary><c>column</c> is one of the values of the array parameter <c>@parameter</c>:
    /// <c>= ANY(@p)</c> on PostgreSQL (one parameter, one plan), <c>IN @p</c> on SQLite (Dapper expands the list).</summary>
    public abstract string InList(string column, string parameter);

    /// <summary>For long id lists (a batch's thousands of accounts): <c>column</c> is one of the ids in <c>@parameter</c>,
    /// bound to <see cref="IdListValue"/>. PostgreSQL takes the array; SQLite a JSON array read with <c>json_each</c>,
    /// which, unlike an expanded <c>IN</c> list, has no parameter-count limit.</summary>
    public abstract string InIdList(string column, string parameter);

    /// <summary>The value to bind for <see cref="InIdList"/>.</summary>
    public abstract object IdListValue(string[] ids);

    /// <summary>The JSON text column's top-level field named by <c>@keyParameter</c> equals <c>@valueParameter</c>.</summary>
    public abstract string JsonFieldEquals(string column, string keyParameter, string valueParameter);

    /// <summary>Appended to a <c>SELECT</c> that claims rows other workers may claim too: <c>FOR UPDATE SKIP LOCKED</c>
    /// on PostgreSQL (optionally <c>OF alias</c>); nothing on SQLite, whose write transaction already excludes every
    /// other writer.</summary>
    public abstract string SkipLocked(string? of = null);

    /// <summary>Appended to a <c>SELECT</c> whose rows the transaction must hold until it ends: <c>FOR UPDATE</c> on
    /// PostgreSQL; nothing on SQLite (see <see cref="BeginWriteAsync"/>).</summary>
    public abstract string ForUpdate { get; }

    /// <summary>Begins a transaction that writes. SQLite takes the write lock up front (<c>BEGIN IMMEDIATE</c>), so a
    /// read-then-write cannot fail half-way on a lock upgrade; PostgreSQL uses its default (read committed).</summary>
    public abstract Task<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken ct);

    /// <summary>Waits for the transaction-scoped lock named by <paramref name="key"/> (<c>pg_advisory_xact_lock</c>).
    /// A no-op on SQLite: the write transaction is already the only writer.</summary>
    public abstract Task LockAsync(DbConnection connection, DbTransaction tx, long key, CancellationToken ct);

    /// <summary>Takes the transaction-scoped lock named by <paramref name="key"/> if it is free
    /// (<c>pg_try_advisory_xact_lock</c>); always true on SQLite (the write transaction is the lock).</summary>
    public abstract Task<bool> TryLockAsync(DbConnection connection, DbTransaction tx, long key, CancellationToken ct);

    /// <summary>The count of tables named <c>@name</c> in the current schema.</summary>
    public abstract string TableExistsSql { get; }

    /// <summary>The <c>schema_migrations</c> table, created if missing.</summary>
    public abstract string CreateSchemaMigrationsSql { get; }

    /// <summary>Serializes migration runners (replicas starting together) until the returned lock is disposed. On
    /// PostgreSQL a transaction-scoped advisory lock held by an open transaction on a second connection of
    /// <paramref name="database"/> (a session lock would stay behind on a pooler's server connection), and each migration
    /// on <paramref name="connection"/> commits on its own; on SQLite one immediate transaction on
    /// <paramref name="connection"/> that every migration joins (<see cref="MigrationLock.Transaction"/>) and that
    /// commits as a whole.</summary>
    public abstract Task<MigrationLock> LockMigrationsAsync(Database database, DbConnection connection, long key, CancellationToken ct);
}

/// <summary>Held while migrations run. <see cref="Transaction"/> is the transaction every statement joins, or null
/// when each migration runs in its own.</summary>
public abstract class MigrationLock : IAsyncDisposable
{
    public abstract DbTransaction? Transaction { get; }

    /// <summary>Makes the work done under the lock durable (commits the shared transaction, if any).</summary>
    public abstract Task CommitAsync(CancellationToken ct);

    public abstract ValueTask DisposeAsync();
}

public sealed class PostgresDialect : SqlDialect
{
    public static readonly PostgresDialect Instance = new();

    PostgresDialect() { }

    public override StoreKind Kind => StoreKind.Postgres;

    public override T Choose<T>(Func<T> postgres, Func<T> sqlite) => postgres();

    public override string InList(string column, string parameter) => $"{column} = ANY(@{parameter})";

    public override string InIdList(string column, string parameter) => $"{column} = ANY(@{parameter})";

    public override object IdListValue(string[] ids) => ids;

    public override string JsonFieldEquals(string column, string keyParameter, string valueParameter) =>
        $"({column}::jsonb ->> @{keyParameter}) = @{valueParameter}";

    public override string SkipLocked(string? of = null) => of is null ? " FOR UPDATE SKIP LOCKED" : $" FOR UPDATE OF {of} SKIP LOCKED";

    public override string ForUpdate => " FOR UPDATE";

    public override async Task<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken ct) =>
        await connection.BeginTransactionAsync(ct);

    public override Task LockAsync(DbConnection connection, DbTransaction tx, long key, CancellationToken ct) =>
        connection.ExecuteAsync(new CommandDefinition("SELECT pg_advisory_xact_lock(@key)", new { key }, tx, cancellationToken: ct));

    public override Task<bool> TryLockAsync(DbConnection connection, DbTransaction tx, long key, CancellationToken ct) =>
        connection.ExecuteScalarAsync<bool>(new CommandDefinition("SELECT pg_try_advisory_xact_lock(@key)", new { key }, tx, cancellationToken: ct));

    public override string TableExistsSql =>
        "SELECT count(*) FROM pg_tables WHERE tablename = @name AND schemaname = current_schema()";

    public override string CreateSchemaMigrationsSql => """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version integer PRIMARY KEY,
            name text NOT NULL,
            checksum text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now())
        """;

    public override async Task<MigrationLock> LockMigrationsAsync(Database database, DbConnection connection, long key, CancellationToken ct)
    {
        var holder = await database.OpenAsync(ct);
        try
        {
            var tx = await holder.BeginTransactionAsync(ct);
            await holder.ExecuteAsync(new CommandDefinition("SELECT pg_advisory_xact_lock(@key)", new { key }, tx, cancellationToken: ct));
            return new AdvisoryLock(holder, tx);
        }
        catch
        {
            await holder.DisposeAsync();
            throw;
        }
    }

    /// <summary>Ending the holder's transaction releases the lock; closing the connection ends the transaction too.</summary>
    sealed class AdvisoryLock(DbConnection holder, DbTransaction tx) : MigrationLock
    {
        public override DbTransaction? Transaction => null;

        public override Task CommitAsync(CancellationToken ct) => Task.CompletedTask;

        public override async ValueTask DisposeAsync()
        {
            await tx.DisposeAsync();
            await holder.DisposeAsync();
        }
    }
}

public sealed class SqliteDialect : SqlDialect
{
    public static readonly SqliteDialect Instance = new();

    SqliteDialect() { }

    public override StoreKind Kind => StoreKind.Sqlite;

    public override T Choose<T>(Func<T> postgres, Func<T> sqlite) => sqlite();

    public override string InList(string column, string parameter) => $"{column} IN @{parameter}";

    public override string InIdList(string column, string parameter) => $"{column} IN (SELECT value FROM json_each(@{parameter}))";

    public override object IdListValue(string[] ids) => System.Text.Json.JsonSerializer.Serialize(ids);

    public override string JsonFieldEquals(string column, string keyParameter, string valueParameter) =>
        $"json_extract({column}, '$.\"' || @{keyParameter} || '\"') = @{valueParameter}";

    public override string SkipLocked(string? of = null) => "";

    public override string ForUpdate => "";

    // Microsoft.Data.Sqlite begins a Serializable transaction with BEGIN IMMEDIATE.
    public override async Task<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken ct) =>
        await connection.BeginTransactionAsync(IsolationLevel.Serializable, ct);

    public override Task LockAsync(DbConnection connection, DbTransaction tx, long key, CancellationToken ct) => Task.CompletedTask;

    public override Task<bool> TryLockAsync(DbConnection connection, DbTransaction tx, long key, CancellationToken ct) => Task.FromResult(true);

    public override string TableExistsSql => "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = @name";

    public override string CreateSchemaMigrationsSql => """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version integer PRIMARY KEY,
            name text NOT NULL,
            checksum text NOT NULL,
            applied_at text NOT NULL)
        """;

    public override async Task<MigrationLock> LockMigrationsAsync(Database database, DbConnection connection, long key, CancellationToken ct) =>
        new WriteTransactionLock(await BeginWriteAsync(connection, ct));

    sealed class WriteTransactionLock(DbTransaction tx) : MigrationLock
    {
        public override DbTransaction? Transaction => tx;

        public override Task CommitAsync(CancellationToken ct) => tx.CommitAsync(ct);

        public override ValueTask DisposeAsync() => tx.DisposeAsync();
    }
}
