using System.Data.Common;
using Dapper;
using Neraca.Storage;

namespace Neraca.Payouts;

/// <summary>One row of <c>payouts</c>: the payout and its saga's persisted state.</summary>
#pragma warning disable IDE1006 // Dapper maps snake_case columns onto these names.
internal sealed class PayoutRow
{
    public string tenant_id { get; set; } = "";
    public string id { get; set; } = "";
    public string status { get; set; } = "";
    public string request_hash { get; set; } = "";
    public string ledger_id { get; set; } = "";
    public string currency { get; set; } = "";
    public string source_account { get; set; } = "";
    public string clearing_account { get; set; } = "";
    public long amount { get; set; }
    public string destination_type { get; set; } = "";
    public string destination_code { get; set; } = "";
    public string destination_account_number { get; set; } = "";
    public string destination_account_masked { get; set; } = "";
    public string? destination_account_name { get; set; }
    public string reference { get; set; } = "";
    public string? description { get; set; }
    public string? notify_job_type { get; set; }
    public string provider_key { get; set; } = "";
    public string? provider_reference { get; set; }
    public string? provider_outcome { get; set; }
    public string? failure_code { get; set; }
    public string? failure_reason { get; set; }
    public long created_at_us { get; set; }
    public long updated_at_us { get; set; }
    public long? submitted_at_us { get; set; }
    public long? unknown_since_us { get; set; }
    public long? finished_at_us { get; set; }

    public bool IsFinished => status is PayoutStatuses.Succeeded or PayoutStatuses.Failed;

    /// <summary>The ledger transfer that holds the money while the provider works: posted on success, voided on failure.</summary>
    public string ReserveTransferId => PayoutStore.ReserveTransferId(id);
}
#pragma warning restore IDE1006

/// <summary>The <c>payouts</c> table. Every statement carries the tenant, except the lookup by provider key that a
/// callback needs (the key is derived from tenant and id, so it names one tenant's payout).</summary>
internal sealed class PayoutStore(Database database, TimeProvider time)
{
    const string Columns = """
        tenant_id, id, status, request_hash, ledger_id, currency, source_account, clearing_account, amount, destination_type,
        destination_code, destination_account_number, destination_account_masked, destination_account_name, reference, description,
        notify_job_type, provider_key, provider_reference, provider_outcome, failure_code, failure_reason, created_at_us, updated_at_us,
        submitted_at_us, unknown_since_us, finished_at_us
        """;

    public static string ReserveTransferId(string payoutId) => $"payout:{payoutId}:reserve";

    public Database Database => database;

    public long NowUs => DbTime.ToMicros(time.GetUtcNow());

    public async Task<PayoutRow?> GetAsync(string tenantId, string id, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return await GetAsync(connection, null, tenantId, id, ct);
    }

    public static Task<PayoutRow?> GetAsync(DbConnection connection, DbTransaction? tx, string tenantId, string id, CancellationToken ct) =>
        connection.QuerySingleOrDefaultAsync<PayoutRow>(new CommandDefinition(
            $"SELECT {Columns} FROM payouts WHERE tenant_id = @tenantId AND id = @id", new { tenantId, id }, tx, cancellationToken: ct));

    public async Task<PayoutRow?> GetByProviderKeyAsync(string providerKey, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return await connection.QuerySingleOrDefaultAsync<PayoutRow>(new CommandDefinition(
            $"SELECT {Columns} FROM payouts WHERE provider_key = @providerKey", new { providerKey }, cancellationToken: ct));
    }

    /// <summary>False when a payout with this id exists already (a concurrent request with the same id).</summary>
    public async Task<bool> InsertAsync(PayoutRow row, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return await connection.ExecuteAsync(new CommandDefinition($"""
            INSERT INTO payouts ({Columns})
            VALUES (@tenant_id, @id, @status, @request_hash, @ledger_id, @currency, @source_account, @clearing_account, @amount, @destination_type,
                    @destination_code, @destination_account_number, @destination_account_masked, @destination_account_name, @reference, @description,
                    @notify_job_type, @provider_key, @provider_reference, @provider_outcome, @failure_code, @failure_reason, @created_at_us,
                    @updated_at_us, @submitted_at_us, @unknown_since_us, @finished_at_us)
            ON CONFLICT DO NOTHING
            """, row, cancellationToken: ct)) == 1;
    }

    /// <summary>A request the ledger refused leaves nothing behind.</summary>
    public async Task DeleteRequestedAsync(string tenantId, string id, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        await connection.ExecuteAsync(new CommandDefinition(
            "DELETE FROM payouts WHERE tenant_id = @tenantId AND id = @id AND status = 'requested'", new { tenantId, id }, cancellationToken: ct));
    }

    /// <summary>Moves the payout from one of <paramref name="from"/> to <paramref name="to"/>, setting the extra columns of
    /// <paramref name="set"/> (an SQL fragment over the parameters of <paramref name="values"/>). False when it was not in
    /// one of those states (another worker moved it first).</summary>
    public async Task<bool> MoveAsync(DbConnection connection, DbTransaction tx, string tenantId, string id, string[] from, string to,
        string? set, object? values, CancellationToken ct)
    {
        var parameters = new DynamicParameters(values);
        parameters.AddDynamicParams(new { tenantId, id, to, now = NowUs });
        var states = string.Join(", ", from.Select(s => $"'{s}'"));
        return await connection.ExecuteAsync(new CommandDefinition($"""
            UPDATE payouts SET status = @to, updated_at_us = @now{(set is null ? "" : ", " + set)}
            WHERE tenant_id = @tenantId AND id = @id AND status IN ({states})
            """, parameters, tx, cancellationToken: ct)) == 1;
    }

    /// <summary>Records the provider's final word once; false when it was recorded before (a duplicated callback).</summary>
    public static async Task<bool> RecordOutcomeAsync(DbConnection connection, DbTransaction tx, string tenantId, string id, string outcome,
        string? failureCode, string? failureReason, string? providerReference, long nowUs, CancellationToken ct) =>
        await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE payouts SET provider_outcome = @outcome, failure_code = @failureCode, failure_reason = @failureReason,
                               provider_reference = coalesce(@providerReference, provider_reference), updated_at_us = @nowUs
            WHERE tenant_id = @tenantId AND id = @id AND provider_outcome IS NULL AND status NOT IN ('succeeded', 'failed')
            """, new { tenantId, id, outcome, failureCode, failureReason, providerReference, nowUs }, tx, cancellationToken: ct)) == 1;

    public async Task SetProviderReferenceAsync(string tenantId, string id, string reference, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE payouts SET provider_reference = @reference, updated_at_us = @now
            WHERE tenant_id = @tenantId AND id = @id AND provider_reference IS NULL
            """, new { tenantId, id, reference, now = NowUs }, cancellationToken: ct));
    }

    /// <summary>Newest first; <paramref name="after"/> is the (created_at_us, id) of the previous page's last row.</summary>
    public async Task<IReadOnlyList<PayoutRow>> ListAsync(string tenantId, string? status, (long CreatedAtUs, string Id)? after, int limit, CancellationToken ct)
    {
        await using var connection = await database.OpenReadAsync(ct);
        var sql = $"""
            SELECT {Columns} FROM payouts
            WHERE tenant_id = @tenantId {(status is null ? "" : "AND status = @status")}
              {(after is null ? "" : "AND (created_at_us < @afterAt OR (created_at_us = @afterAt AND id < @afterId))")}
            ORDER BY created_at_us DESC, id DESC LIMIT @limit
            """;
        return (await connection.QueryAsync<PayoutRow>(new CommandDefinition(sql,
            new { tenantId, status, afterAt = after?.CreatedAtUs, afterId = after?.Id, limit }, cancellationToken: ct))).ToList();
    }

    /// <summary>Payouts in <paramref name="status"/> not touched since <paramref name="beforeUs"/>, oldest first (the recovery sweep).</summary>
    public async Task<IReadOnlyList<(string TenantId, string Id)>> StaleAsync(string status, long beforeUs, int limit, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return (await connection.QueryAsync<(string, string)>(new CommandDefinition("""
            SELECT tenant_id, id FROM payouts WHERE status = @status AND updated_at_us < @beforeUs AND provider_outcome IS NULL
            ORDER BY updated_at_us LIMIT @limit
            """, new { status, beforeUs, limit }, cancellationToken: ct))).ToList();
    }

    /// <summary>Counts of unfinished payouts by status and the start of the oldest <c>unknown</c> (all tenants: the gauges).</summary>
    public async Task<(Dictionary<string, long> Open, long? OldestUnknownUs)> GaugesAsync(CancellationToken ct)
    {
        await using var connection = await database.OpenReadAsync(ct);
        var open = (await connection.QueryAsync<(string Status, long Count)>(new CommandDefinition("""
            SELECT status, count(*) FROM payouts WHERE status IN ('requested', 'reserved', 'submitted', 'unknown') GROUP BY status
            """, cancellationToken: ct))).ToDictionary(r => r.Status, r => r.Count, StringComparer.Ordinal);
        var oldest = await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
            "SELECT min(unknown_since_us) FROM payouts WHERE status = 'unknown'", cancellationToken: ct));
        return (open, oldest);
    }
}
