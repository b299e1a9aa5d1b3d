using System.Data.Common;
using System.Text.Json.Serialization;
using Dapper;
using Neraca.Hosting;
using Neraca.Ledger;
using Neraca.Storage;

namespace Neraca.Banking.Audit;

/// <summary>One record of the admin audit log: who did what to which customer, account, block or hold, with the
/// changed fields (personal data masked).</summary>
public sealed record AuditRecord(long Seq, string Actor, string Action, string TargetType, string TargetId,
    [property: JsonPropertyName("details")] System.Text.Json.JsonElement Details, DateTimeOffset CreatedAt);

/// <summary>The append-only admin audit log (<c>banking_audit_log</c>): written in the same transaction as the change it
/// records, read by <c>GET /v1/audit-log</c>. The table refuses UPDATE and DELETE (triggers; the application role may
/// only insert and read).</summary>
public sealed class AuditLog(Database database)
{
    public static async Task AppendAsync(DbConnection connection, DbTransaction tx, BankCaller caller, string action, string targetType, string targetId,
        IEnumerable<KeyValuePair<string, object?>> details, long nowUs, CancellationToken ct) =>
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO banking_audit_log (tenant_id, actor, action, target_type, target_id, details, created_at_us)
            VALUES (@tenantId, @actor, @action, @targetType, @targetId, @details, @nowUs)
            """, new { tenantId = caller.TenantId, actor = caller.Actor, action, targetType, targetId, details = BankIds.Json(details), nowUs }, tx,
            cancellationToken: ct));

    public async Task<BankResult<Page<AuditRecord>>> ListAsync(BankCaller caller, string? targetType, string? targetId, int? limit, string? after,
        CancellationToken ct)
    {
        if (caller.IsEndUser) return BankError.ServerOnly("read the audit log");
        if (limit is < 1 or > 1000) return BankError.Invalid("limit", "Must be from 1 to 1000.");
        var take = limit ?? 100;
        var afterSeq = Cursor.DecodeLong(after);
        await using var connection = await database.OpenReadAsync(ct);
        var rows = (await connection.QueryAsync<Row>(new CommandDefinition("""
            SELECT seq, actor, action, target_type, target_id, details, created_at_us FROM banking_audit_log
            WHERE tenant_id = @tenantId AND seq > @afterSeq AND (@targetType IS NULL OR target_type = @targetType) AND (@targetId IS NULL OR target_id = @targetId)
            ORDER BY seq LIMIT @take
            """, new { tenantId = caller.TenantId, afterSeq, targetType, targetId, take = take + 1 }, cancellationToken: ct))).ToList();
        var more = rows.Count > take;
        if (more) rows.RemoveAt(rows.Count - 1);
        var data = rows.Select(r => new AuditRecord(r.seq, r.actor, r.action, r.target_type, r.target_id,
            System.Text.Json.JsonElement.Parse(r.details), DbTime.FromMicros(r.created_at_us))).ToList();
        return BankResult<Page<AuditRecord>>.Ok(new Page<AuditRecord>(data,
            more ? Cursor.Encode(rows[^1].seq.ToString(System.Globalization.CultureInfo.InvariantCulture)) : null));
    }

    sealed class Row
    {
        public long seq { get; set; }
        public string actor { get; set; } = "";
        public string action { get; set; } = "";
        public string target_type { get; set; } = "";
        public string target_id { get; set; } = "";
        public string details { get; set; } = "";
        public long created_at_us { get; set; }
    }
}
