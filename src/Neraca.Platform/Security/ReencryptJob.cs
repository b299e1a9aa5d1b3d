using System.Text.RegularExpressions;
using Dapper;
using Neraca.Jobs;

namespace Neraca.Security;

/// <summary>Columns a capability encrypts with <see cref="KeyRing.Context"/> (table, column, tenant, row id), declared
/// with <c>services.AddEncryptedColumns(...)</c> so that <see cref="ReencryptJob"/> can rewrite them after a key rotation.
/// The capability still owns the table; this only names it. Ids and tenants are text columns.</summary>
public sealed partial record EncryptedColumns(string Table, string IdColumn, IReadOnlyList<string> Columns, string TenantColumn = "tenant_id")
{
    [GeneratedRegex("^[a-z_][a-z0-9_]{0,62}$")]
    private static partial Regex Identifier();

    /// <summary>Names are written into SQL: only plain identifiers are accepted.</summary>
    public void Validate()
    {
        foreach (var name in Columns.Append(Table).Append(IdColumn).Append(TenantColumn))
            if (!Identifier().IsMatch(name)) throw new ArgumentException($"'{name}' is not a plain SQL identifier.");
        if (Columns.Count == 0) throw new ArgumentException($"{Table}: no encrypted columns named.");
    }
}

/// <summary><c>encryption.reencrypt</c>: rewrites every registered value not encrypted with the active key, in chunks
/// (each chunk one transaction; a value is decrypted with its own key id and encrypted with the active one). Runs
/// daily and after a rotation when enqueued by hand (<c>POST /v1/jobs</c> is not needed: the daily run catches up).</summary>
public sealed class ReencryptJob(FieldEncryption encryption, IEnumerable<EncryptedColumns> tables) : IJobHandler
{
    public const string TypeName = "encryption.reencrypt";

    public string Type => TypeName;

    public JobTypeDefaults Defaults => new() { ConcurrencyMax = 1, ChunkSize = 500, ItemsPerSecondMax = 2_000 };

    public async Task ExecuteAsync(JobExecution job, CancellationToken ct)
    {
        var ring = await encryption.GetAsync(ct);
        foreach (var table in tables)
        {
            table.Validate();
            await job.RunChunksAsync((chunk, token) => RewriteChunkAsync(chunk, table, ring, token), ct);
        }
    }

    static async Task<ChunkResult> RewriteChunkAsync(ChunkContext chunk, EncryptedColumns t, KeyRing ring, CancellationToken ct)
    {
        // A rewritten row no longer matches, so each chunk takes the next stale rows without a checkpoint.
        var stale = string.Join(" OR ", t.Columns.Select(c => $"({c} IS NOT NULL AND substr({c}, 1, @prefixLength) <> @prefix)"));
        var columns = string.Join(", ", t.Columns);
        var rows = (await chunk.Connection.QueryAsync(new CommandDefinition(
            $"SELECT {t.TenantColumn} AS tenant, {t.IdColumn} AS id, {columns} FROM {t.Table} WHERE {stale} LIMIT @limit",
            new { prefix = ring.ActivePrefix, prefixLength = ring.ActivePrefix.Length, limit = chunk.ChunkSize }, chunk.Transaction,
            cancellationToken: ct))).Cast<IDictionary<string, object?>>().ToList();
        foreach (var row in rows)
        {
            var tenant = (string)row["tenant"]!;
            var id = (string)row["id"]!;
            var values = new DynamicParameters(new { tenant, id });
            foreach (var column in t.Columns)
            {
                var stored = row[column] as string;
                var context = KeyRing.Context(t.Table, column, tenant, id);
                values.Add(column, stored is null || ring.IsActive(stored) ? stored : ring.Encrypt(ring.Decrypt(stored, context), context));
            }
            await chunk.Connection.ExecuteAsync(new CommandDefinition(
                $"UPDATE {t.Table} SET {string.Join(", ", t.Columns.Select(c => $"{c} = @{c}"))} WHERE {t.TenantColumn} = @tenant AND {t.IdColumn} = @id",
                values, chunk.Transaction, cancellationToken: ct));
        }
        return new ChunkResult(null, rows.Count, rows.Count < chunk.ChunkSize);
    }
}
