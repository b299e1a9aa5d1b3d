using System.Data.Common;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Neraca.Storage;

/// <summary>The two stores Neraca runs on. Both pass one contract suite; PostgreSQL is the production store.</summary>
public enum StoreKind
{
    Sqlite,
    Postgres,
}

/// <summary>Opens connections to the system of record (and the optional read replica). One per process.</summary>
public sealed class Database : IAsyncDisposable
{
    readonly NpgsqlDataSource? _postgres;
    readonly NpgsqlDataSource? _postgresRead;
    readonly string? _sqliteConnectionString;
    readonly bool _passwordFromFile;

    Database(StoreKind kind, NpgsqlDataSource? postgres, NpgsqlDataSource? postgresRead, string? sqlite, string description,
        bool behindTransactionPooler = false, bool passwordFromFile = false)
    {
        Kind = kind;
        _passwordFromFile = passwordFromFile;
        BehindTransactionPooler = behindTransactionPooler;
        _postgres = postgres;
        _postgresRead = postgresRead;
        _sqliteConnectionString = sqlite;
        Description = description;
    }

    public StoreKind Kind { get; }

    /// <summary>Where the data lives, without credentials: safe to log.</summary>
    public string Description { get; }

    /// <summary>The PostgreSQL data source (null on SQLite). The ledger's hot path uses it directly.</summary>
    public NpgsqlDataSource? Postgres => _postgres;

    /// <summary>Connections go through a pooler in transaction mode (<c>DatabasePooler=transaction</c>): nothing may rely
    /// on session state (LISTEN, session advisory locks, prepared statements).</summary>
    public bool BehindTransactionPooler { get; }

    /// <summary>Whether connections opened in a <see cref="TenantScope"/> are confined to its tenant by row-level security
    /// (PostgreSQL; setting <c>RowLevelSecurity</c>, default on). The policies are in place either way.</summary>
    public bool RowLevelSecurity { get; private set; } = true;

    /// <summary>Whether reads may go to a replica (<c>ReadDatabase</c> is set).</summary>
    public bool HasReadReplica => _postgresRead is not null;

    /// <summary>The store the settings name: <c>Database</c> or the file <c>DatabaseFile</c> (whose password is re-read
    /// for every new connection, so that rotating it needs no restart), the same for the read replica, and the pooler mode.</summary>
    public static Database Create(Hosting.NeracaOptions o)
    {
        var setting = SettingOrFile(o.Database, o.DatabaseFile, nameof(o.Database));
        var read = SettingOrFile(o.ReadDatabase, o.ReadDatabaseFile, nameof(o.ReadDatabase));
        var pooler = string.Equals(o.DatabasePooler, "transaction", StringComparison.OrdinalIgnoreCase);
        var database = Create(setting, o.SqlitePath, read, o.DatabasePoolSizeMax, pooler, o.DatabaseFile, o.ReadDatabaseFile);
        database.RowLevelSecurity = o.RowLevelSecurity;
        return database;
    }

    /// <summary>The setting, or the content of its file when the file is named (not both).</summary>
    public static string? SettingOrFile(string? setting, string? file, string name)
    {
        if (string.IsNullOrWhiteSpace(file)) return setting;
        if (!string.IsNullOrWhiteSpace(setting)) throw new ArgumentException($"Set {name} or {name}File, not both.", name);
        try
        {
            return File.ReadAllText(file).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"{name}File: cannot read '{file}': {e.Message}", name, e);
        }
    }

    /// <summary>Parses the <c>Database</c> setting. Throws <see cref="ArgumentException"/> naming what is wrong.
    /// <paramref name="passwordFile"/>/<paramref name="readPasswordFile"/>: files holding the setting, re-read for the password.</summary>
    public static Database Create(string? setting, string sqlitePath, string? readSetting = null, int poolSizeMax = 50,
        bool behindTransactionPooler = false, string? passwordFile = null, string? readPasswordFile = null)
    {
        setting = setting?.Trim();
        if (string.IsNullOrEmpty(setting) || setting.StartsWith("sqlite:", StringComparison.OrdinalIgnoreCase))
        {
            var path = string.IsNullOrEmpty(setting) ? sqlitePath : setting["sqlite:".Length..];
            if (!string.IsNullOrEmpty(readSetting))
                throw new ArgumentException("ReadDatabase is only supported with PostgreSQL.", nameof(readSetting));
            return CreateSqlite(path);
        }
        var connectionString = ToNpgsqlConnectionString(setting, "Database");
        var read = string.IsNullOrEmpty(readSetting) ? null : ToNpgsqlConnectionString(readSetting.Trim(), "ReadDatabase");
        return new Database(StoreKind.Postgres, BuildDataSource(connectionString, poolSizeMax, behindTransactionPooler, passwordFile, "Database"),
            read is null ? null : BuildDataSource(read, poolSizeMax, behindTransactionPooler, readPasswordFile, "ReadDatabase"), null,
            DescribePostgres(connectionString), behindTransactionPooler, passwordFile is not null || readPasswordFile is not null);
    }

    static Database CreateSqlite(string path)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var builder = new SqliteConnectionStringBuilder
        {
            DataSource = full,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            ForeignKeys = true,
            Pooling = true,
            // Microsoft.Data.Sqlite retries SQLITE_BUSY for the command timeout: writers from several
            // connections queue instead of failing.
            DefaultTimeout = 30,
        };
        return new Database(StoreKind.Sqlite, null, null, builder.ToString(), "sqlite:" + full);
    }

    static NpgsqlDataSource BuildDataSource(string connectionString, int poolSizeMax, bool behindTransactionPooler, string? passwordFile,
        string settingName)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        if (!connectionString.Contains("Maximum Pool Size", StringComparison.OrdinalIgnoreCase)
            && !connectionString.Contains("MaxPoolSize", StringComparison.OrdinalIgnoreCase))
            builder.MaxPoolSize = poolSizeMax;
        builder.NoResetOnClose = true;
        var autoPrepareSet = connectionString.Contains("Max Auto Prepare", StringComparison.OrdinalIgnoreCase)
            || connectionString.Contains("MaxAutoPrepare", StringComparison.OrdinalIgnoreCase);
        // The ledger's hot statements repeat with the same text: let Npgsql prepare them once per connection. Behind a
        // transaction pooler a prepared statement lives on a server connection the next transaction may not get, so
        // none unless the connection string asks (PgBouncer 1.21+ with max_prepared_statements tracks them).
        if (behindTransactionPooler) { if (!autoPrepareSet) builder.MaxAutoPrepare = 0; }
        else if (builder.MaxAutoPrepare == 0) builder.MaxAutoPrepare = 64;
        if (passwordFile is null) return new NpgsqlDataSourceBuilder(builder.ConnectionString).Build();
        // Npgsql asks for the password whenever it opens a physical connection: a rotated secret is picked up by the
        // next one, and pooled connections already logged in keep working.
        builder.Password = null;
        var source = new NpgsqlDataSourceBuilder(builder.ConnectionString);
        source.UsePasswordProvider(_ => PasswordFromFile(passwordFile, settingName),
            (_, _) => ValueTask.FromResult(PasswordFromFile(passwordFile, settingName)));
        return source.Build();
    }

    static string PasswordFromFile(string file, string settingName) =>
        new NpgsqlConnectionStringBuilder(ToNpgsqlConnectionString(SettingOrFile(null, file, settingName) ?? "", settingName)).Password ?? "";

    /// <summary>Accepts <c>postgres://user:pass@host:port/db?sslmode=require</c> or an Npgsql connection string.</summary>
    internal static string ToNpgsqlConnectionString(string setting, string settingName)
    {
        if (setting.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase)
            || setting.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase))
        {
            if (!Uri.TryCreate(setting, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
                throw new ArgumentException($"{settingName} is not a valid postgres:// URL.", settingName);
            var b = new NpgsqlConnectionStringBuilder { Host = uri.Host, Port = uri.IsDefaultPort || uri.Port <= 0 ? 5432 : uri.Port };
            var database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/'));
            if (database.Length > 0) b.Database = database;
            if (uri.UserInfo.Length > 0)
            {
                var parts = uri.UserInfo.Split(':', 2);
                b.Username = Uri.UnescapeDataString(parts[0]);
                if (parts.Length == 2) b.Password = Uri.UnescapeDataString(parts[1]);
            }
            foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
            {
                var kv = pair.Split('=', 2);
                var key = Uri.UnescapeDataString(kv[0]);
                var value = kv.Length == 2 ? Uri.UnescapeDataString(kv[1]) : "";
                try { b[key.Equals("sslmode", StringComparison.OrdinalIgnoreCase) ? "SSL Mode" : key] = value; }
                catch (ArgumentException e) { throw new ArgumentException($"{settingName}: unknown URL parameter '{key}'.", settingName, e); }
            }
            return b.ConnectionString;
        }
        try
        {
            var builder = new NpgsqlConnectionStringBuilder(setting);
            if (string.IsNullOrEmpty(builder.Host))
                throw new ArgumentException($"{settingName} has no Host; expected an Npgsql connection string or a postgres:// URL.", settingName);
            return builder.ConnectionString;
        }
        catch (ArgumentException e) when (e.ParamName != settingName)
        {
            throw new ArgumentException($"{settingName} is neither an Npgsql connection string nor a postgres:// URL: {e.Message}", settingName, e);
        }
    }

    static string DescribePostgres(string connectionString)
    {
        var b = new NpgsqlConnectionStringBuilder(connectionString);
        return $"postgres://{b.Host}:{b.Port}/{b.Database}";
    }

    /// <summary>A connection to the primary, opened; in a <see cref="TenantScope"/>, confined to its tenant.</summary>
    public async ValueTask<DbConnection> OpenAsync(CancellationToken ct)
    {
        if (_postgres is not null) return Confined(await OpenPostgresAsync(_postgres, ct));
        var connection = new SqliteConnection(_sqliteConnectionString);
        await connection.OpenAsync(ct);
        await using var pragma = connection.CreateCommand();
        // WAL with synchronous=FULL: a commit is on disk before it is acknowledged. SQLite's own busy handler waits
        // for a writer in small steps (Microsoft.Data.Sqlite's fallback sleeps 150 ms per retry).
        pragma.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=30000;";
        await pragma.ExecuteNonQueryAsync(ct);
        return connection;
    }

    /// <summary>A connection for reads that may lag slightly (history, lists, statements): the replica when configured,
    /// unless the caller of the current request wrote something the replica has not replayed yet (then the primary:
    /// see <see cref="ReadYourWrites"/>).</summary>
    public async ValueTask<DbConnection> OpenReadAsync(CancellationToken ct)
    {
        if (_postgresRead is null) return await OpenAsync(ct);
        var floor = ReadYourWrites.Current is { } caller ? await caller.FloorAsync() : 0UL;
        var connection = await OpenPostgresAsync(_postgresRead, ct);
        if (floor == 0) return Confined(connection);
        bool replayed;
        await using (var check = new NpgsqlCommand(
            // On a primary (a ReadDatabase that is not in recovery) the replay position is null: it has everything.
            "SELECT COALESCE(pg_last_wal_replay_lsn(), pg_current_wal_lsn()) >= @floor", connection))
        {
            check.Parameters.Add(new NpgsqlParameter("floor", NpgsqlTypes.NpgsqlDbType.PgLsn) { Value = new NpgsqlTypes.NpgsqlLogSequenceNumber(floor) });
            replayed = (bool)(await check.ExecuteScalarAsync(ct))!;
        }
        if (replayed) return Confined(connection);
        await connection.DisposeAsync();
        return await OpenAsync(ct);
    }

    DbConnection Confined(NpgsqlConnection connection) =>
        RowLevelSecurity && TenantScope.Current is { } tenant ? new TenantConnection(connection, tenant) : connection;

    /// <summary>Opens a connection. With the password in a file, a rejected password is retried for about two seconds:
    /// a rotation changes the role's password and the secret one after the other, and a connection opened in between
    /// waits for the second step instead of failing its request.</summary>
    async ValueTask<NpgsqlConnection> OpenPostgresAsync(NpgsqlDataSource source, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await source.OpenConnectionAsync(ct);
            }
            catch (PostgresException e) when (_passwordFromFile && attempt < 10 && IsPasswordRejected(e))
            {
                await Task.Delay(200, ct);
            }
        }
    }

    // PgBouncer 1.18 reports a bad password as a protocol violation (08P01): "password authentication failed" or
    // "SASL authentication failed".
    static bool IsPasswordRejected(PostgresException e) =>
        e.SqlState is PostgresErrorCodes.InvalidPassword or PostgresErrorCodes.InvalidAuthorizationSpecification
        || e.MessageText.Contains("authentication failed", StringComparison.OrdinalIgnoreCase);

    /// <summary>The primary's current WAL position (0 on SQLite): every transaction committed before the call is at or
    /// below it.</summary>
    public async ValueTask<ulong> WritePositionAsync(CancellationToken ct)
    {
        if (_postgres is null) return 0;
        await using var connection = await OpenPostgresAsync(_postgres, ct);
        await using var command = new NpgsqlCommand("SELECT pg_current_wal_lsn()", connection);
        return (ulong)(NpgsqlTypes.NpgsqlLogSequenceNumber)(await command.ExecuteScalarAsync(ct))!;
    }

    /// <summary>Whether a write conflicted with a concurrent one and the whole transaction can be retried.</summary>
    public static bool IsTransient(Exception e) => e switch
    {
        PostgresException pg => pg.SqlState is PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected
            or PostgresErrorCodes.UniqueViolation,
        SqliteException sq => sq.SqliteErrorCode is 5 /* BUSY */ or 6 /* LOCKED */,
        _ => false,
    };

    /// <summary>Whether the database could not do the work at all (down, restarting, failing over, out of connections or
    /// disk, the connection broken or timed out, SQLite locked past its busy timeout), as opposed to refusing this
    /// request: the same request may succeed when retried later.</summary>
    public static bool IsUnavailable(Exception e) => e switch
    {
        PostgresException pg => pg.SqlState.StartsWith("08", StringComparison.Ordinal) // connection exceptions
            || pg.SqlState is PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown or PostgresErrorCodes.CannotConnectNow
                or PostgresErrorCodes.TooManyConnections or PostgresErrorCodes.DiskFull or PostgresErrorCodes.ReadOnlySqlTransaction,
        NpgsqlException => true, // not from the server: the connection failed, broke or timed out
        SqliteException sq => sq.SqliteErrorCode is 5 /* BUSY */ or 6 /* LOCKED */ or 13 /* FULL */ or 10 /* IOERR */,
        _ => e.InnerException is { } inner && IsUnavailable(inner),
    };

    /// <summary>Whether the error is a unique-key violation (an insert raced with an identical one).</summary>
    public static bool IsUniqueViolation(Exception e) => e switch
    {
        PostgresException pg => pg.SqlState == PostgresErrorCodes.UniqueViolation,
        SqliteException sq => sq.SqliteErrorCode == 19 && sq.SqliteExtendedErrorCode is 2067 or 1555,
        _ => false,
    };

    public async ValueTask DisposeAsync()
    {
        if (_postgres is not null) await _postgres.DisposeAsync();
        if (_postgresRead is not null) await _postgresRead.DisposeAsync();
        if (_sqliteConnectionString is not null) SqliteConnection.ClearAllPools();
    }
}

/// <summary>What the error log and alerts see when requests fail because the database is unavailable: one type for every
/// driver error behind it, so an outage is one alert, not one per endpoint and exception.</summary>
public sealed class DatabaseUnavailableException(Exception inner) : Exception("The database is unavailable: " + inner.Message, inner)
{
    /// <summary>The problem code of requests answered while the database is unavailable.</summary>
    public const string Code = "database_unavailable";
}
