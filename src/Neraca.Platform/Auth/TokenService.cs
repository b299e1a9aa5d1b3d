using System.Security.Cryptography;
using Dapper;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Neraca.Caching;
using Neraca.Storage;
using Neraca.Tenancy;

namespace Neraca.Auth;

/// <summary>A pair handed to an end user's app.</summary>
public sealed record TokenPair(string AccessToken, string TokenType, int ExpiresIn, string RefreshToken, int RefreshTokenExpiresIn, string Scope);

/// <summary>Outcome of presenting a refresh token.</summary>
public enum RefreshOutcome
{
    Issued,
    Invalid,
    /// <summary>The token was already used: someone replayed it, so its whole session was revoked.</summary>
    Reused,
}

/// <summary>Issues built-in JWTs and server-side refresh tokens. A session (<c>sid</c>, a refresh-token family) is
/// revoked in the database; access tokens of a revoked session are refused on every replica at once, because token
/// validation checks the session through the versioned cache (<see cref="IsSessionActiveAsync"/>).</summary>
public sealed class TokenService(Database database, SigningKeys keys, NeracaCache cache, IOptions<AuthOptions> options, TimeProvider clock)
{
    public const string RefreshPrefix = "nrt_";
    const int RefreshRandomLength = 48;
    public const int SubjectLengthMax = 200;

    static readonly JsonWebTokenHandler Handler = new();

    /// <summary>Starts a session for <paramref name="subject"/> of <paramref name="tenantId"/>.</summary>
    public async Task<TokenPair> IssueAsync(string tenantId, string subject, IReadOnlyList<string> scopes, CancellationToken ct)
    {
        var family = "ses_" + Ids.NewUlid();
        var refresh = await StoreRefreshAsync(tenantId, family, subject, scopes, ct);
        return await PairAsync(tenantId, subject, scopes, family, refresh, ct);
    }

    /// <summary>Rotation: a valid, unused refresh token is marked used and replaced by a new one of the same session.</summary>
    public async Task<(RefreshOutcome Outcome, TokenPair? Pair)> RefreshAsync(string refreshToken, CancellationToken ct)
    {
        if (!IsWellFormed(refreshToken)) return (RefreshOutcome.Invalid, null);
        var now = DbTime.ToMicros(clock.GetUtcNow());
        var hash = SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(refreshToken));
        Row? used;
        await using (var connection = await database.OpenAsync(ct))
        {
            // One statement marks it used, so two replicas presented the same token cannot both rotate it.
            used = await connection.QuerySingleOrDefaultAsync<Row>(new CommandDefinition("""
                UPDATE refresh_tokens SET used_at_us = @now
                WHERE token_hash = @hash AND used_at_us IS NULL AND revoked_at_us IS NULL AND expires_at_us > @now
                RETURNING tenant_id, family_id, subject, scopes
                """, new { hash, now }, cancellationToken: ct));
            if (used is null)
            {
                var known = await connection.QuerySingleOrDefaultAsync<Row>(new CommandDefinition(
                    "SELECT tenant_id, family_id, subject, scopes FROM refresh_tokens WHERE token_hash = @hash AND used_at_us IS NOT NULL",
                    new { hash }, cancellationToken: ct));
                if (known is null) return (RefreshOutcome.Invalid, null);
                await RevokeFamilyAsync(known.tenant_id, known.family_id, ct);
                return (RefreshOutcome.Reused, null);
            }
        }
        var scopes = used.scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var next = await StoreRefreshAsync(used.tenant_id, used.family_id, used.subject, scopes, ct);
        return (RefreshOutcome.Issued, await PairAsync(used.tenant_id, used.subject, scopes, used.family_id, next, ct));
    }

    /// <summary>Revokes the session a refresh token belongs to (RFC 7009: unknown tokens are not an error).</summary>
    public async Task<bool> RevokeAsync(string refreshToken, CancellationToken ct)
    {
        if (!IsWellFormed(refreshToken)) return false;
        var hash = SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(refreshToken));
        Row? row;
        await using (var connection = await database.OpenAsync(ct))
        {
            row = await connection.QuerySingleOrDefaultAsync<Row>(new CommandDefinition(
                "SELECT tenant_id, family_id, subject, scopes FROM refresh_tokens WHERE token_hash = @hash", new { hash }, cancellationToken: ct));
        }
        if (row is null) return false;
        await RevokeFamilyAsync(row.tenant_id, row.family_id, ct);
        return true;
    }

    /// <summary>Revokes every session of a subject; returns how many were active.</summary>
    public async Task<int> RevokeSubjectAsync(string tenantId, string subject, CancellationToken ct)
    {
        List<string> families;
        await using (var connection = await database.OpenAsync(ct))
        {
            families = (await connection.QueryAsync<string>(new CommandDefinition(
                "SELECT DISTINCT family_id FROM refresh_tokens WHERE tenant_id = @tenantId AND subject = @subject AND revoked_at_us IS NULL",
                new { tenantId, subject }, cancellationToken: ct))).ToList();
        }
        foreach (var family in families) await RevokeFamilyAsync(tenantId, family, ct);
        return families.Count;
    }

    async Task RevokeFamilyAsync(string tenantId, string family, CancellationToken ct)
    {
        await using (var connection = await database.OpenAsync(ct))
        {
            await connection.ExecuteAsync(new CommandDefinition(
                "UPDATE refresh_tokens SET revoked_at_us = @now WHERE tenant_id = @tenantId AND family_id = @family AND revoked_at_us IS NULL",
                new { tenantId, family, now = DbTime.ToMicros(clock.GetUtcNow()) }, cancellationToken: ct));
        }
        await cache.InvalidateAsync([SessionScope(tenantId, family)]);
    }

    /// <summary>Whether access tokens of this session are still honoured (cached, retired on revocation everywhere).</summary>
    public async ValueTask<bool> IsSessionActiveAsync(string tenantId, string family, CancellationToken ct)
    {
        var state = await cache.GetOrLoadAsync("session", SessionScope(tenantId, family), SessionScope(tenantId, family), async token =>
        {
            await using var connection = await database.OpenAsync(token);
            // Fail closed: a session id this tenant never issued (or one whose rows were pruned) is not active.
            var (rows, revoked) = await connection.QuerySingleAsync<(long, long)>(new CommandDefinition("""
                SELECT COUNT(*), COUNT(revoked_at_us) FROM refresh_tokens WHERE tenant_id = @tenantId AND family_id = @family
                """, new { tenantId, family }, cancellationToken: token));
            return rows == 0 ? "unknown" : revoked == 0 ? "active" : "revoked";
        }, ct);
        return state == "active";
    }

    static string SessionScope(string tenantId, string family) => CacheScopes.Session(tenantId, family);

    async Task<string> StoreRefreshAsync(string tenantId, string family, string subject, IEnumerable<string> scopes, CancellationToken ct)
    {
        var token = SecretToken.New(RefreshPrefix, RefreshRandomLength);
        var now = clock.GetUtcNow();
        await using var connection = await database.OpenAsync(ct);
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO refresh_tokens (id, tenant_id, family_id, subject, scopes, token_hash, created_at_us, expires_at_us)
            VALUES (@id, @tenantId, @family, @subject, @scopes, @hash, @at, @expires)
            """, new
        {
            id = "rt_" + Ids.NewUlid(), tenantId, family, subject, scopes = string.Join(' ', scopes),
            hash = SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(token)),
            at = DbTime.ToMicros(now), expires = DbTime.ToMicros(now.AddSeconds(options.Value.RefreshTokenSeconds)),
        }, cancellationToken: ct));
        return token;
    }

    async Task<TokenPair> PairAsync(string tenantId, string subject, IReadOnlyList<string> scopes, string family, string refresh, CancellationToken ct)
    {
        var o = options.Value;
        var now = clock.GetUtcNow();
        var key = await keys.GetAsync(ct);
        var scope = string.Join(' ', scopes);
        var access = Handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = o.Issuer,
            Audience = o.Audience,
            IssuedAt = now.UtcDateTime,
            NotBefore = now.UtcDateTime,
            Expires = now.AddSeconds(o.AccessTokenSeconds).UtcDateTime,
            Claims = new Dictionary<string, object>
            {
                [JwtRegisteredClaimNames.Sub] = subject,
                [JwtRegisteredClaimNames.Jti] = Ids.NewUlid(),
                [EndUserClaims.Tenant] = tenantId,
                [EndUserClaims.Scope] = scope,
                [EndUserClaims.Session] = family,
            },
            SigningCredentials = new SigningCredentials(key, SecurityAlgorithms.HmacSha256),
        });
        return new TokenPair(access, "Bearer", o.AccessTokenSeconds, refresh, o.RefreshTokenSeconds, scope);
    }

    static bool IsWellFormed(string? token) =>
        token is { Length: > 4 and < 100 } && token.StartsWith(RefreshPrefix, StringComparison.Ordinal)
        && token.AsSpan(RefreshPrefix.Length).IndexOfAnyExcept(SecretToken.Alphabet) < 0;

    sealed class Row
    {
        public string tenant_id { get; set; } = "";
        public string family_id { get; set; } = "";
        public string subject { get; set; } = "";
        public string scopes { get; set; } = "";
    }
}

/// <summary>Claims of the built-in tokens.</summary>
public static class EndUserClaims
{
    public const string Tenant = "tid";
    public const string Scope = "scope";
    public const string Session = "sid";
    /// <summary>Put on the principal: the end user's id (the token's <c>sub</c>).</summary>
    public const string Subject = NeracaClaims.Subject;
}
