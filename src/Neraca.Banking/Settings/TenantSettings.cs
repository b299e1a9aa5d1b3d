using Dapper;
using Microsoft.Extensions.Options;
using Neraca.Banking.Audit;
using Neraca.Caching;
using Neraca.Storage;

namespace Neraca.Banking.Settings;

public sealed record BankingSettingsRequest(string? TimeZone = null);

/// <summary>A tenant's banking settings. <c>source</c>: <c>tenant</c> (set with <c>PATCH /v1/banking/settings</c>),
/// <c>configuration</c> (<c>Banking:TenantTimeZones:&lt;tenant&gt;</c>) or <c>default</c> (<c>Banking:TimeZone</c>).</summary>
public sealed record BankingSettingsResponse(string TimeZone, string Source, DateTimeOffset? UpdatedAt);

/// <summary>Per-tenant banking settings (<c>banking_settings</c>): the time zone of the tenant's business days, which
/// decides daily limits, statement periods, the monthly run and date-only history filters. Read on every payment and
/// statement, so it is cached under the tenant's settings scope and retired on change across replicas.</summary>
public sealed class TenantSettings(Database database, SqlDialect dialect, NeracaCache cache, IOptions<BankingOptions> options, TimeProvider clock)
{
    public const int TimeZoneLengthMax = 64;

    static string Scope(string tenantId) => CompositeKey.Of("bank-settings", tenantId);

    /// <summary>The tenant's time zone: its own setting, else the configured one, else <c>Asia/Jakarta</c>.</summary>
    public async Task<TimeZoneInfo> ZoneAsync(string tenantId, CancellationToken ct) =>
        TimeZoneInfo.FindSystemTimeZoneById((await CurrentAsync(tenantId, ct)).TimeZone);

    public async Task<BankResult<BankingSettingsResponse>> GetAsync(BankCaller caller, CancellationToken ct) =>
        BankResult<BankingSettingsResponse>.Ok(await CurrentAsync(caller.TenantId, ct));

    async Task<BankingSettingsResponse> CurrentAsync(string tenantId, CancellationToken ct)
    {
        var stored = await cache.GetOrLoadAsync("banking-settings", Scope(tenantId), Scope(tenantId), async token =>
        {
            await using var connection = await database.OpenAsync(token);
            var row = await connection.QuerySingleOrDefaultAsync<Row>(new CommandDefinition(
                "SELECT time_zone, updated_at_us FROM banking_settings WHERE tenant_id = @tenantId", new { tenantId }, cancellationToken: token));
            return row is null ? new Stored(null, null) : new Stored(row.time_zone, row.updated_at_us);
        }, ct);
        if (stored?.TimeZone is { } own) return new BankingSettingsResponse(own, "tenant", DbTime.FromMicros(stored.UpdatedAtUs!.Value));
        var o = options.Value;
        return o.TenantTimeZones.TryGetValue(tenantId, out var configured)
            ? new BankingSettingsResponse(configured, "configuration", null)
            : new BankingSettingsResponse(o.TimeZone, "default", null);
    }

    /// <summary>Sets the tenant's time zone (server keys only; audited). Statements already issued keep the period they
    /// were issued for; a day's limit usage is counted under the day it was spent in.</summary>
    public async Task<BankResult<BankingSettingsResponse>> UpdateAsync(BankCaller caller, BankingSettingsRequest body, CancellationToken ct)
    {
        if (caller.IsEndUser) return BankError.ServerOnly("change banking settings");
        if (body.TimeZone is not { Length: > 0 and <= TimeZoneLengthMax } id || !TimeZoneInfo.TryFindSystemTimeZoneById(id, out _))
            return BankError.Invalid("time_zone", "Required: an IANA time zone such as Asia/Jakarta, Asia/Makassar or UTC.");
        var before = await CurrentAsync(caller.TenantId, ct);
        var nowUs = DbTime.ToMicros(clock.GetUtcNow());
        await using (var connection = await database.OpenAsync(ct))
        {
            await using var tx = await dialect.BeginWriteAsync(connection, ct);
            await connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO banking_settings (tenant_id, time_zone, updated_at_us) VALUES (@tenantId, @id, @nowUs)
                ON CONFLICT (tenant_id) DO UPDATE SET time_zone = excluded.time_zone, updated_at_us = excluded.updated_at_us
                """, new { tenantId = caller.TenantId, id, nowUs }, tx, cancellationToken: ct));
            await AuditLog.AppendAsync(connection, tx, caller, "settings.updated", "settings", caller.TenantId,
                [new("time_zone_from", before.TimeZone), new("time_zone", id)], nowUs, ct);
            await tx.CommitAsync(ct);
        }
        await cache.InvalidateAsync([Scope(caller.TenantId)]);
        return BankResult<BankingSettingsResponse>.Ok(new BankingSettingsResponse(id, "tenant", DbTime.FromMicros(nowUs)));
    }

    sealed record Stored(string? TimeZone, long? UpdatedAtUs);

    sealed class Row
    {
        public string time_zone { get; set; } = "";
        public long updated_at_us { get; set; }
    }
}
