using System.Security.Cryptography;
using Dapper;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using Neraca.Storage;

namespace Neraca.Auth;

/// <summary>The HS256 key of built-in tokens: configured, or generated once and kept in the database so that every
/// replica signs and validates with the same key. Loaded once per process (it is configuration, not session state).</summary>
public sealed class SigningKeys(Database database, IOptions<AuthOptions> options, TimeProvider clock)
{
    const int KeyBytes = 32;
    readonly SemaphoreSlim _gate = new(1, 1);
    SymmetricSecurityKey? _key;

    /// <summary>The key if already loaded (token validation resolves keys synchronously after <see cref="GetAsync"/>).</summary>
    public SymmetricSecurityKey? Loaded => _key;

    public async ValueTask<SymmetricSecurityKey> GetAsync(CancellationToken ct)
    {
        if (_key is not null) return _key;
        await _gate.WaitAsync(ct);
        try
        {
            return _key ??= await LoadAsync(ct);
        }
        finally
        {
            _gate.Release();
        }
    }

    async Task<SymmetricSecurityKey> LoadAsync(CancellationToken ct)
    {
        var configured = options.Value.SigningKey;
        if (!string.IsNullOrWhiteSpace(configured)) return new SymmetricSecurityKey(Convert.FromBase64String(configured)) { KeyId = "configured" };
        await using var connection = await database.OpenAsync(ct);
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO auth_signing_keys (id, algorithm, secret, created_at_us) VALUES ('default', 'HS256', @secret, @at)
            ON CONFLICT (id) DO NOTHING
            """, new { secret = RandomNumberGenerator.GetBytes(KeyBytes), at = DbTime.ToMicros(clock.GetUtcNow()) }, cancellationToken: ct));
        var secret = await connection.QuerySingleAsync<byte[]>(new CommandDefinition(
            "SELECT secret FROM auth_signing_keys WHERE id = 'default'", cancellationToken: ct));
        return new SymmetricSecurityKey(secret) { KeyId = "default" };
    }

    /// <summary>Whether a configured key is valid base64 of at least 32 bytes.</summary>
    public static bool IsValidConfiguredKey(string? value)
    {
        if (string.IsNullOrWhiteSpace(value)) return true;
        var buffer = new byte[value.Length];
        return Convert.TryFromBase64String(value, buffer, out var n) && n >= KeyBytes;
    }
}
