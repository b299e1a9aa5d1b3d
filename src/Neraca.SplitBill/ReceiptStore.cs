using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using Neraca.Hosting;
using Neraca.Storage;

namespace Neraca.SplitBill;

/// <summary>Receipt blobs on the local file system: raw uploads while they wait for the background job, then the
/// cleaned image and its thumbnail stored by content (the file name is the SHA-256 of the bytes, which is also the
/// HTTP <c>ETag</c>). Another store (S3-compatible, docs/split-bill.md) would offer the same five operations.</summary>
public sealed partial class ReceiptStore
{
    public ReceiptStore(IOptions<SplitBillOptions> options, IOptions<NeracaOptions> neraca, Database database)
    {
        var configured = options.Value.ReceiptsPath;
        var sqliteFile = database.Kind == StoreKind.Sqlite ? database.Description["sqlite:".Length..] : neraca.Value.SqlitePath;
        Root = Path.GetFullPath(string.IsNullOrWhiteSpace(configured)
            ? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(sqliteFile)) ?? ".", "receipts")
            : configured);
    }

    public string Root { get; }

    /// <summary>Tenant ids may contain dots; a hash of the id keeps every tenant in a folder of its own.</summary>
    static string TenantFolder(string tenantId) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(tenantId)))[..32];

    /// <summary>Copies an upload to disk, at most <paramref name="bytesMax"/> bytes. Null when the body is longer (nothing is kept).</summary>
    public async Task<string?> SaveUploadAsync(string tenantId, Stream body, long bytesMax, CancellationToken ct)
    {
        var key = $"{TenantFolder(tenantId)}/uploads/{Ids.NewUlid()}.bin";
        var path = PathOf(key);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var buffer = new byte[81920];
        long total = 0;
        await using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 81920, FileOptions.Asynchronous))
        {
            int read;
            while ((read = await body.ReadAsync(buffer, ct)) > 0)
            {
                total += read;
                if (total > bytesMax) break;
                await file.WriteAsync(buffer.AsMemory(0, read), ct);
            }
        }
        if (total <= bytesMax) return key;
        File.Delete(path);
        return null;
    }

    /// <summary>Stores bytes under their hash; returns the key and the hash.</summary>
    public async Task<(string Key, string Hash)> PutAsync(string tenantId, byte[] bytes, string extension, CancellationToken ct)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(bytes));
        var key = $"{TenantFolder(tenantId)}/{hash}.{extension}";
        var path = PathOf(key);
        if (File.Exists(path)) return (key, hash);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = path + "." + Ids.NewUlid() + ".tmp";
        await File.WriteAllBytesAsync(temporary, bytes, ct);
        File.Move(temporary, path, overwrite: true); // readers never see half a file
        return (key, hash);
    }

    public Stream? OpenRead(string key)
    {
        var path = PathOf(key);
        return File.Exists(path) ? new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 81920, FileOptions.Asynchronous) : null;
    }

    public void Delete(string key)
    {
        var path = PathOf(key);
        if (File.Exists(path)) File.Delete(path);
    }

    /// <summary>The hash a content key names (its ETag).</summary>
    public static string HashOf(string key) => Path.GetFileNameWithoutExtension(key);

    string PathOf(string key)
    {
        if (!KeyShape().IsMatch(key)) throw new ArgumentException("Not a receipt blob key.", nameof(key));
        return Path.Combine(Root, key);
    }

    [GeneratedRegex("^[0-9a-f]{32}/(uploads/[0-9A-Z]{26}\\.bin|[0-9a-f]{64}\\.(jpg|png|webp))$", RegexOptions.CultureInvariant)]
    private static partial Regex KeyShape();
}
