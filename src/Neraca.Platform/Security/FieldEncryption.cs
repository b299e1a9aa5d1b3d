using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Dapper;
using Microsoft.Extensions.Options;
using Neraca.Storage;

namespace Neraca.Security;

/// <summary>Field encryption (section <c>Encryption</c>): the one key ring that protects personal and bank data at
/// rest (payouts, earned wage access, banking). Values are AES-256-GCM with the key id stored in each value, so keys
/// rotate without downtime: add the new key everywhere, make it active, and let <c>encryption.reencrypt</c> rewrite
/// the old values. Exact lookups use a keyed hash (HMAC-SHA256) that never needs the data key.</summary>
public sealed class EncryptionOptions
{
    /// <summary>A key-ring file (JSON <c>{"active_key": "k2", "keys": {"k1": "&lt;base64 32 bytes&gt;", "k2": ...},
    /// "lookup_key": "&lt;base64 32+ bytes&gt;"}</c>), e.g. a mounted Kubernetes secret. Re-read when it changes.</summary>
    public string? KeysFile { get; set; }

    /// <summary>Inline keys, id → base64 of 32 bytes (<c>NERACA_ENCRYPTION__KEYS__k1=...</c>). Ignored with
    /// <see cref="KeysFile"/>.</summary>
    public Dictionary<string, string> Keys { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Id of the key new values are encrypted with (one of <see cref="Keys"/>).</summary>
    public string? ActiveKey { get; set; }

    /// <summary>Base64 (32+ bytes) key of the lookup hashes. It cannot rotate without recomputing every hash.</summary>
    public string? LookupKey { get; set; }

    /// <summary>Neither a file nor inline keys: a key ring generated once and kept in the database (zero set-up; the
    /// keys then sit beside the data they protect, so configure a file for production).</summary>
    public bool IsConfigured => !string.IsNullOrWhiteSpace(KeysFile) || Keys.Count > 0;

    /// <summary>Why the inline settings are unusable, or null.</summary>
    public string? InlineProblem()
    {
        if (!string.IsNullOrWhiteSpace(KeysFile) || Keys.Count == 0) return null;
        try
        {
            KeyRing.Create(ActiveKey, Keys, LookupKey);
            return null;
        }
        catch (FormatException e)
        {
            return e.Message;
        }
    }
}

/// <summary>An immutable snapshot of the key ring: encrypts, decrypts and hashes synchronously.</summary>
public sealed class KeyRing
{
    const string Version = "e1";
    const int KeyBytes = 32, NonceBytes = 12, TagBytes = 16;
    static readonly Encoding Utf8 = new UTF8Encoding(false, true);

    readonly Dictionary<string, byte[]> _keys;
    readonly byte[] _lookupKey;

    KeyRing(string activeKeyId, Dictionary<string, byte[]> keys, byte[] lookupKey)
    {
        ActiveKeyId = activeKeyId;
        _keys = keys;
        _lookupKey = lookupKey;
    }

    public string ActiveKeyId { get; }

    /// <summary>The prefix of every value encrypted with the active key (values without it need re-encryption).</summary>
    public string ActivePrefix => $"{Version}:{ActiveKeyId}:";

    /// <exception cref="FormatException">A key is missing, not base64, or the wrong size.</exception>
    public static KeyRing Create(string? activeKeyId, IReadOnlyDictionary<string, string> keys, string? lookupKey)
    {
        if (keys.Count == 0) throw new FormatException("Encryption: no keys are configured.");
        var parsed = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var (id, value) in keys)
        {
            if (string.IsNullOrWhiteSpace(id) || id.Length > 32 || !id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
                throw new FormatException($"Encryption: key id '{id}' must be 1-32 letters, digits, '-' or '_'.");
            parsed[id] = Decode(value, $"key '{id}'", exact: true);
        }
        if (string.IsNullOrWhiteSpace(activeKeyId) || !parsed.ContainsKey(activeKeyId))
            throw new FormatException($"Encryption: the active key '{activeKeyId}' is not one of the keys ({string.Join(", ", parsed.Keys)}).");
        return new KeyRing(activeKeyId, parsed, Decode(lookupKey, "lookup key", exact: false));
    }

    static byte[] Decode(string? base64, string what, bool exact)
    {
        byte[] bytes;
        try
        {
            bytes = Convert.FromBase64String(base64 ?? "");
        }
        catch (FormatException)
        {
            throw new FormatException($"Encryption: the {what} is not base64.");
        }
        if (exact ? bytes.Length != KeyBytes : bytes.Length < KeyBytes)
            throw new FormatException($"Encryption: the {what} must be {(exact ? "exactly" : "at least")} {KeyBytes} bytes (base64 of {bytes.Length} given).");
        return bytes;
    }

    /// <summary>The associated data convention for a column of a table: binds a value to its tenant and row, so a
    /// value copied to another row or tenant does not decrypt.</summary>
    public static string Context(string table, string column, string tenantId, string rowId) => $"{table}.{column}|{tenantId}|{rowId}";

    /// <summary><c>e1:&lt;key id&gt;:&lt;base64(nonce ‖ ciphertext ‖ tag)&gt;</c>.</summary>
    public string Encrypt(string plaintext, string context)
    {
        var plain = Utf8.GetBytes(plaintext);
        var sealedBytes = new byte[NonceBytes + plain.Length + TagBytes];
        var nonce = sealedBytes.AsSpan(0, NonceBytes);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(_keys[ActiveKeyId], TagBytes);
        aes.Encrypt(nonce, plain, sealedBytes.AsSpan(NonceBytes, plain.Length), sealedBytes.AsSpan(NonceBytes + plain.Length), Utf8.GetBytes(context));
        return ActivePrefix + Convert.ToBase64String(sealedBytes);
    }

    /// <exception cref="CryptographicException">The value was tampered with, belongs to another context, or its key is
    /// not in the ring.</exception>
    public string Decrypt(string stored, string context)
    {
        var parts = stored.Split(':', 3);
        if (parts.Length != 3 || parts[0] != Version) throw new CryptographicException("Not an encrypted value.");
        if (!_keys.TryGetValue(parts[1], out var key)) throw new CryptographicException($"Encryption key '{parts[1]}' is not in the key ring.");
        var sealedBytes = Convert.FromBase64String(parts[2]);
        if (sealedBytes.Length < NonceBytes + TagBytes) throw new CryptographicException("Encrypted value too short.");
        var length = sealedBytes.Length - NonceBytes - TagBytes;
        var plain = new byte[length];
        using var aes = new AesGcm(key, TagBytes);
        aes.Decrypt(sealedBytes.AsSpan(0, NonceBytes), sealedBytes.AsSpan(NonceBytes, length), sealedBytes.AsSpan(NonceBytes + length), plain,
            Utf8.GetBytes(context));
        return Utf8.GetString(plain);
    }

    /// <summary>A keyed hash (hex HMAC-SHA256) for exact lookups of a normalised value, per tenant and purpose, so the
    /// same phone number hashes differently in two tenants.</summary>
    public string LookupHash(string purpose, string tenantId, string normalizedValue) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(_lookupKey, Utf8.GetBytes($"{purpose}\0{tenantId}\0{normalizedValue}")));

    public bool IsActive(string stored) => stored.StartsWith(ActivePrefix, StringComparison.Ordinal);
}

/// <summary>The key ring of this process: from <see cref="EncryptionOptions.KeysFile"/> (re-read when the file
/// changes, checked at most every few seconds), the inline keys, or the database-kept ring.</summary>
public sealed partial class FieldEncryption(Database database, IOptions<EncryptionOptions> options, TimeProvider clock, ILogger<FieldEncryption> logger)
{
    static readonly TimeSpan FileCheckInterval = TimeSpan.FromSeconds(5);
    readonly SemaphoreSlim _gate = new(1, 1);
    KeyRing? _ring;
    DateTime _fileWrittenUtc;
    long _nextFileCheckTicks;

    public async ValueTask<KeyRing> GetAsync(CancellationToken ct)
    {
        var ring = _ring;
        if (ring is not null && (string.IsNullOrWhiteSpace(options.Value.KeysFile) || clock.GetTimestamp() < Volatile.Read(ref _nextFileCheckTicks)))
            return ring;
        await _gate.WaitAsync(ct);
        try
        {
            return _ring = await LoadAsync(ct);
        }
        finally
        {
            _gate.Release();
        }
    }

    async Task<KeyRing> LoadAsync(CancellationToken ct)
    {
        var o = options.Value;
        if (!string.IsNullOrWhiteSpace(o.KeysFile))
        {
            Volatile.Write(ref _nextFileCheckTicks, clock.GetTimestamp() + (long)(FileCheckInterval.TotalSeconds * clock.TimestampFrequency));
            var written = File.GetLastWriteTimeUtc(o.KeysFile);
            if (_ring is not null && written == _fileWrittenUtc) return _ring;
            var ring = ReadFile(o.KeysFile);
            if (_ring is not null) LogKeyRingReloaded(logger, o.KeysFile, ring.ActiveKeyId);
            _fileWrittenUtc = written;
            return ring;
        }
        if (o.Keys.Count > 0) return _ring ?? KeyRing.Create(o.ActiveKey, o.Keys, o.LookupKey);
        return _ring ?? await LoadStoredAsync(ct);
    }

    static KeyRing ReadFile(string path)
    {
        KeyRingFile? file;
        try
        {
            file = JsonSerializer.Deserialize<KeyRingFile>(File.ReadAllText(path));
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            throw new FormatException($"Encryption: the key ring file {path} cannot be read: {e.Message}", e);
        }
        if (file is null) throw new FormatException($"Encryption: the key ring file {path} is empty.");
        return KeyRing.Create(file.ActiveKey, file.Keys ?? [], file.LookupKey);
    }

    /// <summary>Generated once: INSERT ... ON CONFLICT DO NOTHING makes concurrent first starts agree on one ring.</summary>
    async Task<KeyRing> LoadStoredAsync(CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var at = DbTime.ToMicros(clock.GetUtcNow());
        foreach (var id in new[] { "data:default", "lookup" })
            await connection.ExecuteAsync(new CommandDefinition(
                "INSERT INTO encryption_keys (id, secret, created_at_us) VALUES (@id, @secret, @at) ON CONFLICT (id) DO NOTHING",
                new { id, secret = RandomNumberGenerator.GetBytes(32), at }, cancellationToken: ct));
        var rows = (await connection.QueryAsync<(string Id, byte[] Secret)>(new CommandDefinition(
            "SELECT id, secret FROM encryption_keys", cancellationToken: ct))).ToDictionary(r => r.Id, r => r.Secret);
        var keys = rows.Where(r => r.Key.StartsWith("data:", StringComparison.Ordinal))
            .ToDictionary(r => r.Key["data:".Length..], r => Convert.ToBase64String(r.Value));
        return KeyRing.Create("default", keys, Convert.ToBase64String(rows["lookup"]));
    }

    sealed class KeyRingFile
    {
        [JsonPropertyName("active_key")] public string? ActiveKey { get; set; }
        [JsonPropertyName("keys")] public Dictionary<string, string>? Keys { get; set; }
        [JsonPropertyName("lookup_key")] public string? LookupKey { get; set; }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Encryption key ring reloaded from {Path}: active key {KeyId}")]
    static partial void LogKeyRingReloaded(ILogger logger, string path, string keyId);
}
