using System.Data.Common;
using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Dapper;

namespace Neraca.Storage;

/// <summary>One versioned schema change. The checksum freezes its text once applied.</summary>
public sealed record Migration(int Version, string Name, string Sql)
{
    public string Checksum => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Sql.ReplaceLineEndings("\n"))));
}

/// <summary>A migration that was applied and then edited, or a database newer than this binary. Start-up stops.</summary>
public sealed class MigrationException(string message) : Exception(message);

/// <summary>Applies versioned, checksummed migrations exactly once, even when replicas start together:
/// PostgreSQL serializes runners on an advisory lock, SQLite on an immediate (write) transaction.</summary>
public sealed partial class MigrationRunner(Database database, IReadOnlyList<Migration> migrations, ILogger<MigrationRunner> logger, TimeProvider? time = null)
{
    /// <summary>Arbitrary but fixed: every Neraca process contends on this advisory lock key.</summary>
    const long AdvisoryLockKey = 0x4E65726163614D67; // "NeracaMg"

    /// <summary>The migrations the given capability assemblies embed for the store (files
    /// <c>Migrations/postgres/NNNN_name.sql</c> and <c>Migrations/sqlite/NNNN_name.sql</c> in any folder), in version
    /// order. Versions are global: each capability takes its own hundred (docs/architecture.md).</summary>
    public static IReadOnlyList<Migration> Embedded(StoreKind kind, IEnumerable<Assembly> assemblies)
    {
        var folder = kind == StoreKind.Postgres ? ".postgres." : ".sqlite.";
        var list = new List<Migration>();
        foreach (var assembly in assemblies.Distinct())
        {
            foreach (var resource in assembly.GetManifestResourceNames())
            {
                var at = resource.IndexOf(".Migrations" + folder, StringComparison.Ordinal);
                if (at < 0 || !resource.EndsWith(".sql", StringComparison.Ordinal)) continue;
                var file = resource[(at + ".Migrations".Length + folder.Length)..^4]; // 0001_foundation
                var underscore = file.IndexOf('_', StringComparison.Ordinal);
                var version = int.Parse(file.AsSpan(0, underscore), CultureInfo.InvariantCulture);
                list.Add(new Migration(version, file[(underscore + 1)..], Read(assembly, resource)));
            }
        }
        list.Sort((a, b) => a.Version.CompareTo(b.Version));
        for (var i = 1; i < list.Count; i++)
            if (list[i].Version == list[i - 1].Version)
                throw new MigrationException($"Two migrations share version {list[i].Version}: {list[i - 1].Name} and {list[i].Name}.");
        return list;
    }

    static string Read(Assembly assembly, string resource)
    {
        using var stream = assembly.GetManifestResourceStream(resource)!;
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    /// <summary>Applies what is pending; returns the versions this call applied (empty when up to date).</summary>
    public async Task<IReadOnlyList<int>> ApplyAsync(CancellationToken ct, Func<DbConnection, DbTransaction?, Task>? whileLocked = null)
    {
        await using var connection = await database.OpenAsync(ct);
        return database.Kind == StoreKind.Postgres
            ? await ApplyPostgresAsync(connection, whileLocked, ct)
            : await ApplySqliteAsync(connection, whileLocked, ct);
    }

    /// <summary>Names of migrations not yet applied (checks applied ones for edits too).</summary>
    public async Task<IReadOnlyList<string>> PendingAsync(CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var exists = await connection.ExecuteScalarAsync<long>(new CommandDefinition(database.Kind == StoreKind.Postgres
            ? "SELECT count(*) FROM pg_tables WHERE tablename = 'schema_migrations' AND schemaname = current_schema()"
            : "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'", cancellationToken: ct));
        var pending = exists == 0 ? migrations : await PendingAsync(connection, null, ct);
        return pending.Select(m => $"{m.Version:D4}_{m.Name}").ToList();
    }

    async Task<IReadOnlyList<int>> ApplyPostgresAsync(DbConnection connection, Func<DbConnection, DbTransaction?, Task>? whileLocked, CancellationToken ct)
    {
        await connection.ExecuteAsync(new CommandDefinition("SELECT pg_advisory_lock(@key)", new { key = AdvisoryLockKey }, cancellationToken: ct));
        try
        {
            await connection.ExecuteAsync(new CommandDefinition("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    checksum text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now())
                """, cancellationToken: ct));
            var applied = new List<int>();
            foreach (var migration in await PendingAsync(connection, null, ct))
            {
                await using var tx = await connection.BeginTransactionAsync(ct);
                await connection.ExecuteAsync(new CommandDefinition(migration.Sql, transaction: tx, cancellationToken: ct));
                await RecordAsync(connection, tx, migration, ct);
                await tx.CommitAsync(ct);
                applied.Add(migration.Version);
                Log.Applied(logger, migration.Version, migration.Name);
            }
            if (whileLocked is not null) await whileLocked(connection, null);
            return applied;
        }
        finally
        {
            await connection.ExecuteAsync(new CommandDefinition("SELECT pg_advisory_unlock(@key)", new { key = AdvisoryLockKey }, cancellationToken: CancellationToken.None));
        }
    }

    async Task<IReadOnlyList<int>> ApplySqliteAsync(DbConnection connection, Func<DbConnection, DbTransaction?, Task>? whileLocked, CancellationToken ct)
    {
        // BEGIN IMMEDIATE takes SQLite's write lock up front: a second runner waits here, then finds nothing to do.
        await using var tx = await connection.BeginTransactionAsync(System.Data.IsolationLevel.Serializable, ct);
        await connection.ExecuteAsync(new CommandDefinition("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at text NOT NULL)
            """, transaction: tx, cancellationToken: ct));
        var applied = new List<int>();
        foreach (var migration in await PendingAsync(connection, tx, ct))
        {
            await connection.ExecuteAsync(new CommandDefinition(migration.Sql, transaction: tx, cancellationToken: ct));
            await RecordAsync(connection, tx, migration, ct);
            applied.Add(migration.Version);
            Log.Applied(logger, migration.Version, migration.Name);
        }
        if (whileLocked is not null) await whileLocked(connection, tx);
        await tx.CommitAsync(ct);
        return applied;
    }

    async Task<List<Migration>> PendingAsync(DbConnection connection, DbTransaction? tx, CancellationToken ct)
    {
        var rows = await connection.QueryAsync<(int Version, string Name, string Checksum)>(new CommandDefinition(
            "SELECT version, name, checksum FROM schema_migrations ORDER BY version", transaction: tx, cancellationToken: ct));
        var known = migrations.ToDictionary(m => m.Version);
        var done = new HashSet<int>();
        foreach (var row in rows)
        {
            if (!known.TryGetValue(row.Version, out var migration))
                throw new MigrationException($"The database has migration {row.Version:D4}_{row.Name}, which this build of Neraca does not know. Is an older binary running against a newer database?");
            if (migration.Checksum != row.Checksum)
                throw new MigrationException($"Migration {row.Version:D4}_{row.Name} was edited after it was applied (checksum {row.Checksum[..12]}… in the database, {migration.Checksum[..12]}… in this build). Add a new migration instead of editing an applied one.");
            done.Add(row.Version);
        }
        return migrations.Where(m => !done.Contains(m.Version)).ToList();
    }

    Task RecordAsync(DbConnection connection, DbTransaction tx, Migration migration, CancellationToken ct) =>
        connection.ExecuteAsync(new CommandDefinition(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (@Version, @Name, @Checksum, @At)",
            new { migration.Version, migration.Name, migration.Checksum, At = (time ?? TimeProvider.System).GetUtcNow() }, tx, cancellationToken: ct));

    static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Applied migration {Version} {Name}")]
        public static partial void Applied(ILogger logger, int version, string name);
    }
}
