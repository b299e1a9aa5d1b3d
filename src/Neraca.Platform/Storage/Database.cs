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

    Database(StoreKind kind, NpgsqlDataSource? postgres, NpgsqlDataSource? postgresRead, string? sqlite, string description)
    {
        Kind = kind;
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

    /// <summary>Parses the <c>Database</c> setting. Throws <see cref="ArgumentException"/> naming what is wrong.</summary>
    public static Database Create(string? setting, string sqlitePath, string? readSetting = null, int poolSizeMax = 50)
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
        return new Database(StoreKind.Postgres, BuildDataSource(connectionString, poolSizeMax),
            read is null ? null : BuildDataSource(read, poolSizeMax), null, DescribePostgres(connectionString));
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

    static NpgsqlDataSource BuildDataSource(string connectionString, int poolSizeMax)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        if (!connectionString.Contains("Maximum Pool Size", StringComparison.OrdinalIgnoreCase)
            && !connectionString.Contains("MaxPoolSize", StringComparison.OrdinalIgnoreCase))
            builder.MaxPoolSize = poolSizeMax;
        builder.NoResetOnClose = true;
        // The ledger's hot statements repeat with the same text: let Npgsql prepare them once per connection.
        if (builder.MaxAutoPrepare == 0) builder.MaxAutoPrepare = 64;
        return new NpgsqlDataSourceBuilder(builder.ConnectionString).Build();
    }

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

    /// <summary>A connection to the primary, opened.</summary>
    public async ValueTask<DbConnection> OpenAsync(CancellationToken ct)
    {
        if (_postgres is not null) return await _postgres.OpenConnectionAsync(ct);
        var connection = new SqliteConnection(_sqliteConnectionString);
        await connection.OpenAsync(ct);
        await using var pragma = connection.CreateCommand();
        // WAL with synchronous=FULL: a commit is on disk before it is acknowledged. SQLite's own busy handler waits
        // for a writer in small steps (Microsoft.Data.Sqlite's fallback sleeps 150 ms per retry).
        pragma.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=30000;";
        await pragma.ExecuteNonQueryAsync(ct);
        return connection;
    }

    /// <summary>A connection for reads that may lag slightly (history, lists, statements): the replica when configured.</summary>
    public async ValueTask<DbConnection> OpenReadAsync(CancellationToken ct) =>
        _postgresRead is not null ? await _postgresRead.OpenConnectionAsync(ct) : await OpenAsync(ct);

    /// <summary>Whether a write conflicted with a concurrent one and the whole transaction can be retried.</summary>
    public static bool IsTransient(Exception e) => e switch
    {
        PostgresException pg => pg.SqlState is PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected
            or PostgresErrorCodes.UniqueViolation,
        SqliteException sq => sq.SqliteErrorCode is 5 /* BUSY */ or 6 /* LOCKED */,
        _ => false,
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
