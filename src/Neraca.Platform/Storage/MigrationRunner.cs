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

/// <summary>Applies versioned, checksummed migrations exactly once, even when replicas start together: runners
/// serialize on <see cref="SqlDialect.LockMigrationsAsync"/> (an advisory lock on PostgreSQL, an immediate write
/// transaction on SQLite).</summary>
public sealed partial class MigrationRunner(Database database, SqlDialect dialect, IReadOnlyList<Migration> migrations, ILogger<MigrationRunner> logger, TimeProvider? time = null)
{
    /// <summary>Arbitrary but fixed: every Neraca process contends on this advisory lock key.</summary>
    const long AdvisoryLockKey = 0x4E65726163614D67; // "NeracaMg"

    /// <summary>The migrations the given capability assemblies embed for the store (files
    /// <c>Migrations/postgres/NNNN_name.sql</c> and <c>Migrations/sqlite/NNNN_name.sql</c> in any folder), in version
    /// order. Versions are global: each capability takes its own hundred (docs/architecture.md).</summary>
    public static IReadOnlyList<Migration> Embedded(StoreKind kind, IEnumerable<Assembly> assemblies)
    {
        var folder = kind switch
        {
            StoreKind.Postgres => ".postgres.",
            StoreKind.Sqlite => ".sqlite.",
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown store kind."),
        };
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

    /// <summary>Applies what is pending, then puts row-level security in place where missing (PostgreSQL: see
    /// <see cref="RowLevelSecurity"/>); returns the versions this call applied (empty when up to date).</summary>
    public async Task<IReadOnlyList<int>> ApplyAsync(CancellationToken ct, Func<DbConnection, DbTransaction?, Task>? whileLocked = null)
    {
        await using var connection = await database.OpenAsync(ct);
        // A second runner waits here, then finds nothing to do.
        await using var held = await dialect.LockMigrationsAsync(database, connection, AdvisoryLockKey, ct);
        await connection.ExecuteAsync(new CommandDefinition(dialect.CreateSchemaMigrationsSql, transaction: held.Transaction, cancellationToken: ct));
        var applied = new List<int>();
        foreach (var migration in await PendingAsync(connection, held.Transaction, ct))
        {
            await using var own = held.Transaction is null ? await connection.BeginTransactionAsync(ct) : null;
            var tx = held.Transaction ?? own!;
            await connection.ExecuteAsync(new CommandDefinition(migration.Sql, transaction: tx, cancellationToken: ct));
            await RecordAsync(connection, tx, migration, ct);
            if (own is not null) await own.CommitAsync(ct);
            applied.Add(migration.Version);
            Log.Applied(logger, migration.Version, migration.Name);
        }
        if (dialect.Kind == StoreKind.Postgres) await RowLevelSecurity.EnsureAsync(connection, held.Transaction, ct);
        if (whileLocked is not null) await whileLocked(connection, held.Transaction);
        await held.CommitAsync(ct);
        return applied;
    }

    /// <summary>Names of migrations not yet applied (checks applied ones for edits too).</summary>
    public async Task<IReadOnlyList<string>> PendingAsync(CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var exists = await connection.ExecuteScalarAsync<long>(new CommandDefinition(dialect.TableExistsSql,
            new { name = "schema_migrations" }, cancellationToken: ct));
        var pending = exists == 0 ? migrations : await PendingAsync(connection, null, ct);
        return pending.Select(m => $"{m.Version:D4}_{m.Name}").ToList();
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
