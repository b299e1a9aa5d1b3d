using System.Data.Common;
using Dapper;
using Neraca.Storage;

namespace Neraca.Tenancy;

/// <summary>A key as resolved on each request. Never holds the clear key.</summary>
public sealed record ApiKeyIdentity(string KeyId, string TenantId, IReadOnlyList<string> ScopeList, DateTimeOffset? ExpiresAt, DateTimeOffset? RevokedAt)
{
    public bool IsUsableAt(DateTimeOffset now) => RevokedAt is null && (ExpiresAt is null || ExpiresAt > now);
}

/// <summary>Tenants and their API keys.</summary>
public sealed class TenantStore(Database database, TimeProvider clock)
{
    public const string DefaultTenantId = "default";

    /// <summary>Creates a tenant if absent. Returns whether this call created it.</summary>
    public async Task<bool> CreateTenantAsync(DbConnection connection, DbTransaction? tx, string id, string name, CancellationToken ct)
    {
        var rows = await connection.ExecuteAsync(new CommandDefinition(
            "INSERT INTO tenants (id, name, created_at) VALUES (@id, @name, @at) ON CONFLICT (id) DO NOTHING",
            new { id, name, at = clock.GetUtcNow() }, tx, cancellationToken: ct));
        return rows == 1;
    }

    public async Task<bool> CreateTenantAsync(string id, string name, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return await CreateTenantAsync(connection, null, id, name, ct);
    }

    /// <summary>Stores a key (by hash). Inserting a key that already exists is a no-op, so bootstrap can repeat.</summary>
    public async Task<string> AddKeyAsync(DbConnection connection, DbTransaction? tx, string tenantId, string name, string key,
        IEnumerable<string> scopes, DateTimeOffset? expiresAt, CancellationToken ct)
    {
        var id = "key_" + Ids.NewUlid();
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes, created_at, expires_at)
            VALUES (@id, @tenantId, @name, @prefix, @hash, @scopes, @at, @expiresAt)
            ON CONFLICT (key_hash) DO NOTHING
            """,
            new { id, tenantId, name, prefix = ApiKey.DisplayPrefix(key), hash = ApiKey.Hash(key), scopes = string.Join(' ', scopes), at = clock.GetUtcNow(), expiresAt },
            tx, cancellationToken: ct));
        return id;
    }

    public async Task<string> AddKeyAsync(string tenantId, string name, string key, IEnumerable<string> scopes, DateTimeOffset? expiresAt, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return await AddKeyAsync(connection, null, tenantId, name, key, scopes, expiresAt, ct);
    }

    public Task<ApiKeyIdentity?> FindKeyAsync(string key, CancellationToken ct) => FindKeyByHashAsync(ApiKey.Hash(key), ct);

    /// <summary>The key whose SHA-256 is <paramref name="hash"/>: for sessions that keep the hash, never the key (the web
    /// console's operator cookie re-checks its key this way on every request).</summary>
    public async Task<ApiKeyIdentity?> FindKeyByHashAsync(byte[] hash, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var row = await connection.QuerySingleOrDefaultAsync<KeyRow>(new CommandDefinition(
            "SELECT id, tenant_id, scopes, expires_at, revoked_at FROM api_keys WHERE key_hash = @hash",
            new { hash }, cancellationToken: ct));
        return row is null ? null : new ApiKeyIdentity(row.id, row.tenant_id, row.scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries),
            DbTime.FromDb(row.expires_at), DbTime.FromDb(row.revoked_at));
    }

    sealed class KeyRow
    {
        public string id { get; set; } = "";
        public string tenant_id { get; set; } = "";
        public string scopes { get; set; } = "";
        public object? expires_at { get; set; }
        public object? revoked_at { get; set; }
    }
}
