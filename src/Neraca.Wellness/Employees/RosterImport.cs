using System.Text.Json;
using Dapper;
using Neraca.Jobs;
using Neraca.Security;
using Neraca.Storage;

namespace Neraca.Wellness.Employees;

public sealed record ImportError(int Line, string? EmployeeId, string Reason);

public sealed record ImportView(string Id, string EmployerId, string Status, int TotalRows, int Processed, int Created, int Updated, int Unchanged,
    int Rejected, IReadOnlyList<string> IgnoredColumns, IReadOnlyList<ImportError> Errors, string? NextErrorsCursor, string? JobId,
    DateTimeOffset CreatedAt, DateTimeOffset? FinishedAt);

/// <summary><c>ewa.roster.import</c>: applies an uploaded roster in chunks (one transaction each, with the job's
/// checkpoint), so 50,000 rows show progress and a crash resumes at the last committed chunk. Upsert by
/// <c>employee_id</c>: new rows are created, changed rows updated, identical rows (same keyed hash) left alone; bad rows
/// are recorded with their line number and never stop the others.</summary>
public sealed class RosterImportJob(Database database, SqlDialect dialect, FieldEncryption encryption) : IJobHandler
{
    public const string TypeName = "ewa.roster.import";
    public const string Table = "ewa_imports";
    public const int RowsPerChunkMax = 1_000;

    public static readonly EncryptedColumns Encrypted = new(Table, "id", ["content_enc"]);

    public string Type => TypeName;

    public JobTypeDefaults Defaults => new() { ConcurrencyMax = 2, ChunkSize = RowsPerChunkMax, ItemsPerSecondMax = 5_000, AttemptsMax = 5 };

    public async Task ExecuteAsync(JobExecution job, CancellationToken ct)
    {
        var importId = JsonDocument.Parse(job.Payload).RootElement.GetProperty("import_id").GetString()
            ?? throw new PermanentJobFailureException("payload has no import_id");
        string? content;
        string employerId;
        await using (var connection = await database.OpenAsync(ct))
        {
            var row = await connection.QuerySingleOrDefaultAsync<(string, string?)?>(new CommandDefinition(
                "SELECT employer_id, content_enc FROM ewa_imports WHERE tenant_id = @tenant AND id = @importId",
                new { tenant = job.TenantId, importId }, cancellationToken: ct)) ?? throw new PermanentJobFailureException($"import {importId} not found");
            (employerId, content) = row;
        }
        if (content is null) return; // completed by an earlier attempt
        var ring = await encryption.GetAsync(ct);
        var text = ring.Decrypt(content, KeyRing.Context(Table, "content_enc", job.TenantId, importId));
        // The upload was checked already; the same text parses the same way, so every attempt sees the same rows.
        var file = RosterCsv.Parse(text, int.MaxValue);
        if (file.Problem is not null) throw new PermanentJobFailureException(file.Problem);
        var rows = file.Rows;

        await job.RunChunksAsync(async (chunk, token) =>
        {
            var offset = chunk.Checkpoint is { } c ? int.Parse(c, System.Globalization.CultureInfo.InvariantCulture) : 0;
            var slice = rows.Skip(offset).Take(Math.Min(chunk.ChunkSize, RowsPerChunkMax)).ToList();
            var nowUs = DbTime.ToMicros(chunk.Now);
            int created = 0, updated = 0, unchanged = 0, rejected = 0;
            var valid = slice.Where(r => r.Fields is not null).ToList();
            var hashes = valid.Count == 0 ? [] : await EmployeeStore.HashesAsync(chunk.Connection, chunk.Transaction, dialect, job.TenantId, employerId,
                [.. valid.Select(r => r.EmployeeId!)], token);
            var fresh = new List<(string, EmployeeFields)>();
            foreach (var r in slice)
            {
                if (r.Fields is null)
                {
                    rejected++;
                    await chunk.Connection.ExecuteAsync(new CommandDefinition("""
                        INSERT INTO ewa_import_errors (tenant_id, import_id, line, employee_id, reason) VALUES (@tenant, @importId, @line, @employeeId, @reason)
                        """, new { tenant = job.TenantId, importId, line = r.Line, employeeId = r.EmployeeId, reason = r.Rejection }, chunk.Transaction,
                        cancellationToken: token));
                    continue;
                }
                if (!hashes.TryGetValue(r.EmployeeId!, out var hash))
                {
                    fresh.Add((r.EmployeeId!, r.Fields));
                    created++;
                }
                else if (hash != EmployeeStore.RowHash(ring, job.TenantId, employerId, r.EmployeeId!, r.Fields)) 
                {
                    await EmployeeStore.UpdateAsync(chunk.Connection, chunk.Transaction, ring, job.TenantId, employerId, r.EmployeeId!, r.Fields, nowUs, token);
                    updated++;
                }
                else unchanged++;
            }
            await EmployeeStore.InsertAsync(chunk.Connection, chunk.Transaction, dialect, ring, job.TenantId, employerId, fresh, nowUs, token);
            var done = offset + slice.Count >= rows.Count;
            await chunk.Connection.ExecuteAsync(new CommandDefinition($"""
                UPDATE ewa_imports SET processed = processed + @n, created = created + @created, updated = updated + @updated,
                    unchanged = unchanged + @unchanged, rejected = rejected + @rejected,
                    status = @status, finished_at_us = @finished, content_enc = {(done ? "NULL" : "content_enc")}
                WHERE tenant_id = @tenant AND id = @importId
                """, new { n = slice.Count, created, updated, unchanged, rejected, status = done ? "completed" : "running",
                    finished = done ? nowUs : (long?)null, tenant = job.TenantId, importId }, chunk.Transaction, cancellationToken: token));
            return new ChunkResult((offset + slice.Count).ToString(System.Globalization.CultureInfo.InvariantCulture), slice.Count, done);
        }, ct);
    }

    public static async Task<ImportView?> GetAsync(Database database, string tenantId, string employerId, string importId, int? errorsAfter, int errorsLimit,
        CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var row = await connection.QuerySingleOrDefaultAsync<ImportRow>(new CommandDefinition("""
            SELECT id, employer_id, status, total_rows, processed, created, updated, unchanged, rejected, job_id, created_at_us, finished_at_us, ignored_columns
            FROM ewa_imports WHERE tenant_id = @tenantId AND employer_id = @employerId AND id = @importId
            """, new { tenantId, employerId, importId }, cancellationToken: ct));
        if (row is null) return null;
        var errors = (await connection.QueryAsync<(int, string?, string)>(new CommandDefinition("""
            SELECT line, employee_id, reason FROM ewa_import_errors WHERE tenant_id = @tenantId AND import_id = @importId AND line > @after
            ORDER BY line LIMIT @limit
            """, new { tenantId, importId, after = errorsAfter ?? 0, limit = errorsLimit + 1 }, cancellationToken: ct)))
            .Select(e => new ImportError(e.Item1, e.Item2, e.Item3)).ToList();
        var more = errors.Count > errorsLimit;
        if (more) errors.RemoveAt(errors.Count - 1);
        return new ImportView(row.id, row.employer_id, row.status, row.total_rows, row.processed, row.created, row.updated, row.unchanged, row.rejected,
            JsonSerializer.Deserialize<string[]>(row.ignored_columns) ?? [], errors,
            more ? Neraca.Hosting.Cursor.Encode(errors[^1].Line.ToString(System.Globalization.CultureInfo.InvariantCulture)) : null,
            row.job_id, DbTime.FromMicros(row.created_at_us), row.finished_at_us is { } f ? DbTime.FromMicros(f) : null);
    }

#pragma warning disable IDE1006 // Dapper maps snake_case columns onto these names.
    sealed class ImportRow
    {
        public string id { get; set; } = "";
        public string employer_id { get; set; } = "";
        public string status { get; set; } = "";
        public int total_rows { get; set; }
        public int processed { get; set; }
        public int created { get; set; }
        public int updated { get; set; }
        public int unchanged { get; set; }
        public int rejected { get; set; }
        public string? job_id { get; set; }
        public long created_at_us { get; set; }
        public long? finished_at_us { get; set; }
        public string ignored_columns { get; set; } = "[]";
    }
#pragma warning restore IDE1006
}
