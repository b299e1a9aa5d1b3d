using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Neraca.Auth;

namespace Neraca.Events;

/// <summary>What a client sees of a <see cref="FeedCursor"/>: the four numbers sealed with AES-256-GCM under a key
/// derived (HKDF-SHA256) from the server's shared signing key, with the tenant id as associated data. A cursor
/// therefore reveals nothing (neither the global event sequence, which counts every tenant's activity, nor the
/// PostgreSQL transaction horizon), cannot be forged or edited, and is refused by every other tenant. Every replica
/// derives the same key, so any replica resumes any cursor.</summary>
public sealed class FeedCursorCodec(SigningKeys keys)
{
    const byte Version = 1;
    const int NonceBytes = 12;
    const int TagBytes = 16;
    const int PlainBytes = 32;
    const int SealedBytes = 1 + NonceBytes + PlainBytes + TagBytes;
    const int TextLengthMax = 100;
    static readonly byte[] KeyInfo = "neraca/events/feed-cursor/v1"u8.ToArray();

    byte[]? _key;

    async ValueTask<byte[]> KeyAsync(CancellationToken ct)
    {
        if (Volatile.Read(ref _key) is { } key) return key;
        var root = await keys.GetAsync(ct);
        key = HKDF.DeriveKey(HashAlgorithmName.SHA256, root.Key, 32, salt: [], info: KeyInfo);
        Volatile.Write(ref _key, key);
        return key;
    }

    /// <summary>Seals a position of <paramref name="tenantId"/>'s feed.</summary>
    public async ValueTask<string> ProtectAsync(string tenantId, FeedCursor cursor, CancellationToken ct)
    {
        var key = await KeyAsync(ct);
        return Protect(key, tenantId, cursor);
    }

    /// <summary>A sealer for many cursors of one tenant (an SSE page), with the key loaded once.</summary>
    public async ValueTask<Func<FeedCursor, string>> ProtectorAsync(string tenantId, CancellationToken ct)
    {
        var key = await KeyAsync(ct);
        return cursor => Protect(key, tenantId, cursor);
    }

    static string Protect(byte[] key, string tenantId, FeedCursor cursor)
    {
        Span<byte> plain = stackalloc byte[PlainBytes];
        BinaryPrimitives.WriteInt64BigEndian(plain, cursor.S1);
        BinaryPrimitives.WriteInt64BigEndian(plain[8..], cursor.X1);
        BinaryPrimitives.WriteInt64BigEndian(plain[16..], cursor.S2);
        BinaryPrimitives.WriteInt64BigEndian(plain[24..], cursor.X2);
        var sealedBytes = new byte[SealedBytes];
        sealedBytes[0] = Version;
        var nonce = sealedBytes.AsSpan(1, NonceBytes);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(key, TagBytes);
        aes.Encrypt(nonce, plain, sealedBytes.AsSpan(1 + NonceBytes, PlainBytes), sealedBytes.AsSpan(1 + NonceBytes + PlainBytes, TagBytes),
            Encoding.UTF8.GetBytes(tenantId));
        return Convert.ToBase64String(sealedBytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    /// <summary>The position a cursor of <paramref name="tenantId"/> holds, or null when it is not one this server sealed
    /// for that tenant. Plain cursors of earlier versions (<c>S</c>, <c>S.X</c>, <c>S1.X1.S2.X2</c>) are still read, so
    /// consumers keep their place across the upgrade; they reveal nothing the client did not send.</summary>
    public async ValueTask<FeedCursor?> UnprotectAsync(string tenantId, string text, CancellationToken ct)
    {
        if (text.Length is 0 or > TextLengthMax) return null;
        if (text.AsSpan().IndexOfAnyExcept("0123456789.") < 0)
            return FeedCursor.TryParse(text, out var legacy) ? legacy : null;
        var s = text.Replace('-', '+').Replace('_', '/');
        if (s.Length % 4 == 1) return null;
        s += new string('=', (4 - s.Length % 4) % 4);
        var sealedBytes = new byte[s.Length];
        if (!Convert.TryFromBase64String(s, sealedBytes, out var n) || n != SealedBytes || sealedBytes[0] != Version) return null;
        var key = await KeyAsync(ct);
        Span<byte> plain = stackalloc byte[PlainBytes];
        try
        {
            using var aes = new AesGcm(key, TagBytes);
            aes.Decrypt(sealedBytes.AsSpan(1, NonceBytes), sealedBytes.AsSpan(1 + NonceBytes, PlainBytes),
                sealedBytes.AsSpan(1 + NonceBytes + PlainBytes, TagBytes), plain, Encoding.UTF8.GetBytes(tenantId));
        }
        catch (AuthenticationTagMismatchException)
        {
            return null; // edited, forged, or another tenant's
        }
        var cursor = new FeedCursor(BinaryPrimitives.ReadInt64BigEndian(plain), BinaryPrimitives.ReadInt64BigEndian(plain[8..]),
            BinaryPrimitives.ReadInt64BigEndian(plain[16..]), BinaryPrimitives.ReadInt64BigEndian(plain[24..]));
        return cursor.S1 >= 0 && cursor.S2 >= 0 && cursor.X1 <= cursor.X2 && cursor.S2 <= cursor.S1 ? cursor : null;
    }
}
