using Dapper;
using Neraca.Caching;
using Neraca.Storage;
using Neraca.Tenancy;

namespace Neraca.Auth;

/// <summary>An API key as the admin API shows it (never the key itself, which is shown once at creation).</summary>
public sealed record ApiKeyInfo(string Id, string Name, string Prefix, IReadOnlyList<string> Scopes, DateTimeOffset CreatedAt,
    DateTimeOffset? ExpiresAt, DateTimeOffset? RevokedAt)
{
    public string Status(DateTimeOffset now) => RevokedAt is not null ? "revoked" : ExpiresAt is { } e && e <= now ? "expired" : "active";
}

/// <summary>Lists, revokes and rotates a tenant's API keys. Every change retires the key's cached lookup on every
/// replica before it returns (<see cref="NeracaCache.InvalidateAsync"/>).</summary>
public sealed class ApiKeyStore(Database database, TenantStore tenants, NeracaCache cache, TimeProvider clock)
{
    public const int PageSizeMax = 100;

    const string Columns = "id, name, prefix, scopes, created_at, expires_at, revoked_at, key_hash";

    public async Task<(ApiKeyInfo Info, string Key)> CreateAsync(string tenantId, string name, IReadOnlyList<string> scopes, DateTimeOffset? expiresAt, CancellationToken ct)
    {
        var key = ApiKey.Generate();
        var id = await tenants.AddKeyAsync(tenantId, name, key, scopes, expiresAt, ct);
        var info = await GetAsync(tenantId, id, ct) ?? throw new InvalidOperationException("created key not found");
        return (info, key);
    }

    public async Task<ApiKeyInfo?> GetAsync(string tenantId, string id, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var row = await connection.QuerySingleOrDefaultAsync<Row>(new CommandDefinition(
            $"SELECT {Columns} FROM api_keys WHERE tenant_id = @tenantId AND id = @id", new { tenantId, id }, cancellationToken: ct));
        return row?.ToInfo();
    }

    /// <summary>One page in creation order, <paramref name="limit"/> + 1 rows read to know whether more follow.</summary>
    public async Task<(IReadOnlyList<ApiKeyInfo> Page, string? NextCursor)> ListAsync(string tenantId, int limit, string? after, CancellationToken ct)
    {
        await using var connection = await database.OpenReadAsync(ct);
        var rows = (await connection.QueryAsync<Row>(new CommandDefinition($"""
            SELECT {Columns} FROM api_keys
            WHERE tenant_id = @tenantId AND id > @after
            ORDER BY id
            LIMIT @take
            """, new { tenantId, after = after ?? "", take = limit + 1 }, cancellationToken: ct))).ToList();
        var more = rows.Count > limit;
        var page = rows.Take(limit).Select(r => r.ToInfo()).ToList();
        return (page, more ? page[^1].Id : null);
    }

    /// <summary>Revokes the key (idempotent); null when the tenant has no such key.</summary>
    public async Task<ApiKeyInfo?> RevokeAsync(string tenantId, string id, CancellationToken ct)
    {
        await using (var connection = await database.OpenAsync(ct))
        {
            await connection.ExecuteAsync(new CommandDefinition(
                "UPDATE api_keys SET revoked_at = @now WHERE tenant_id = @tenantId AND id = @id AND revoked_at IS NULL",
                new { tenantId, id, now = clock.GetUtcNow() }, cancellationToken: ct));
        }
        return await RetireAsync(tenantId, id, ct);
    }

    /// <summary>Issues a new key with the same name, scopes and expiry; the old one keeps working for
    /// <paramref name="overlap"/> (at most until its own expiry), so clients can switch without downtime.</summary>
    public async Task<(ApiKeyInfo Info, string Key, ApiKeyInfo Old)?> RotateAsync(string tenantId, string id, TimeSpan overlap, CancellationToken ct)
    {
        var old = await GetAsync(tenantId, id, ct);
        if (old is null) return null;
        var now = clock.GetUtcNow();
        var oldUntil = now + overlap;
        if (old.ExpiresAt is { } e && e < oldUntil) oldUntil = e;
        var key = ApiKey.Generate();
        string newId;
        await using (var connection = await database.OpenAsync(ct))
        await using (var tx = await connection.BeginTransactionAsync(ct))
        {
            newId = await tenants.AddKeyAsync(connection, tx, tenantId, old.Name, key, old.Scopes, old.ExpiresAt, ct);
            await connection.ExecuteAsync(new CommandDefinition(
                "UPDATE api_keys SET expires_at = @oldUntil WHERE tenant_id = @tenantId AND id = @id",
                new { tenantId, id, oldUntil }, tx, cancellationToken: ct));
            await tx.CommitAsync(ct);
        }
        var retired = await RetireAsync(tenantId, id, ct);
        var info = await GetAsync(tenantId, newId, ct);
        return (info!, key, retired!);
    }

    // Reads the key back (with its hash) and retires its cached lookup everywhere before the caller answers.
    async Task<ApiKeyInfo?> RetireAsync(string tenantId, string id, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var row = await connection.QuerySingleOrDefaultAsync<Row>(new CommandDefinition(
            $"SELECT {Columns} FROM api_keys WHERE tenant_id = @tenantId AND id = @id", new { tenantId, id }, cancellationToken: ct));
        if (row is null) return null;
        await cache.InvalidateAsync([ApiKeyAuthenticationHandler.CacheScope(Convert.ToHexString(row.key_hash))]);
        return row.ToInfo();
    }

    sealed class Row
    {
        public string id { get; set; } = "";
        public string name { get; set; } = "";
        public string prefix { get; set; } = "";
        public string scopes { get; set; } = "";
        public object? created_at { get; set; }
        public object? expires_at { get; set; }
        public object? revoked_at { get; set; }
        public byte[] key_hash { get; set; } = [];

        public ApiKeyInfo ToInfo() => new(id, name, prefix, scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries),
            DbTime.FromDb(created_at)!.Value, DbTime.FromDb(expires_at), DbTime.FromDb(revoked_at));
    }
}
