using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.DataProtection;
using Neraca.Auth;

namespace Neraca.Web.Sessions;

/// <summary>ASP.NET Core Data Protection for the web app (session cookies, antiforgery tokens) with keys every replica
/// derives alike: AES-256-GCM under HKDF-SHA256 of the shared JWT signing key (<see cref="SigningKeys"/>: configured, or
/// generated once into the database), one key per purpose chain. So a cookie or a form token issued by one replica is
/// accepted by every other, with no key ring to share or persist; rotating <c>Auth:SigningKey</c> signs everyone out.</summary>
/// <remarks>Protectors work synchronously (the cookie and antiforgery handlers call them so): <see cref="WebModule"/>
/// loads the signing key asynchronously at the start of every request, after which this is a field read.</remarks>
public sealed class DerivedDataProtectionProvider(SigningKeys keys) : IDataProtectionProvider
{
    public IDataProtector CreateProtector(string purpose) => new Protector(keys, [purpose]);

    sealed class Protector(SigningKeys keys, string[] purposes) : IDataProtector
    {
        const byte Version = 1;
        const int NonceBytes = 12;
        const int TagBytes = 16;
        byte[]? _key;

        public IDataProtector CreateProtector(string purpose) => new Protector(keys, [.. purposes, purpose]);

        byte[] Key()
        {
            if (Volatile.Read(ref _key) is { } key) return key;
            var root = keys.Loaded ?? throw new InvalidOperationException("The signing key is not loaded yet: the web app's middleware loads it before any protector runs.");
            var info = Encoding.UTF8.GetBytes("neraca/web/data-protection/v1\0" + string.Join('\0', purposes));
            key = HKDF.DeriveKey(HashAlgorithmName.SHA256, root.Key, 32, salt: [], info: info);
            Volatile.Write(ref _key, key);
            return key;
        }

        public byte[] Protect(byte[] plaintext)
        {
            var sealedBytes = new byte[1 + NonceBytes + plaintext.Length + TagBytes];
            sealedBytes[0] = Version;
            var nonce = sealedBytes.AsSpan(1, NonceBytes);
            RandomNumberGenerator.Fill(nonce);
            using var aes = new AesGcm(Key(), TagBytes);
            aes.Encrypt(nonce, plaintext, sealedBytes.AsSpan(1 + NonceBytes, plaintext.Length), sealedBytes.AsSpan(1 + NonceBytes + plaintext.Length));
            return sealedBytes;
        }

        public byte[] Unprotect(byte[] protectedData)
        {
            if (protectedData.Length < 1 + NonceBytes + TagBytes || protectedData[0] != Version)
                throw new CryptographicException("Not data this application protected.");
            var length = protectedData.Length - 1 - NonceBytes - TagBytes;
            var plain = new byte[length];
            using var aes = new AesGcm(Key(), TagBytes);
            // Throws AuthenticationTagMismatchException (a CryptographicException) for edited, foreign or other-purpose data.
            aes.Decrypt(protectedData.AsSpan(1, NonceBytes), protectedData.AsSpan(1 + NonceBytes, length),
                protectedData.AsSpan(1 + NonceBytes + length), plain);
            return plain;
        }
    }
}
