using System.Text.Json;
using ZiggyCreatures.Caching.Fusion.Serialization;

namespace Neraca.Caching;

/// <summary>Serializes L2 entries with System.Text.Json (default options: the entries are internal records, not the
/// HTTP contract).</summary>
public sealed class JsonCacheSerializer : IFusionCacheSerializer
{
    // Fields too: cached pages are value tuples.
    static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.General) { IncludeFields = true };

    public byte[] Serialize<T>(T? obj) => JsonSerializer.SerializeToUtf8Bytes(obj, Options);

    public T? Deserialize<T>(byte[] data) => JsonSerializer.Deserialize<T>(data, Options);

    public ValueTask<byte[]> SerializeAsync<T>(T? obj, CancellationToken token = default) => new(Serialize(obj));

    public ValueTask<T?> DeserializeAsync<T>(byte[] data, CancellationToken token = default) => new(Deserialize<T>(data));
}
