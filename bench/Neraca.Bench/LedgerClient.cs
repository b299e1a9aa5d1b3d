using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;

namespace Neraca.Bench;

/// <summary>What one request did: transfers acknowledged, reads answered, items failed, money acknowledged.</summary>
public readonly record struct OpResult(int Transfers, int Reads, int Failed, long AckedAmount, string? Error, bool Uncertain)
{
    public static OpResult Fail(string error, bool uncertain = false) => new(0, 0, 1, 0, error, uncertain);
}

/// <summary>The HTTP contract of issue #3, as much of it as the benchmark calls. Speaks to Neraca and to the naive
/// baseline alike, so both pay the same client-side costs.</summary>
public sealed class LedgerClient : IDisposable
{
    static readonly MediaTypeHeaderValue Json = new("application/json");
    readonly HttpClient _http;

    public LedgerClient(Uri baseAddress, string apiKey)
    {
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = int.MaxValue,
            UseProxy = false,
            UseCookies = false,
            AutomaticDecompression = DecompressionMethods.None,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
        };
        _http = new HttpClient(handler) { BaseAddress = baseAddress, Timeout = TimeSpan.FromMinutes(5) };
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
    }

    public Uri BaseAddress => _http.BaseAddress!;

    /// <summary>Creates the ledger (or finds it again); its id.</summary>
    public async Task<string> CreateLedgerAsync(string code, CancellationToken ct)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object> { ["code"] = code, ["asset"] = "IDR", ["scale"] = 2 });
        using var response = await PostAsync("/v1/ledgers", body, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"POST /v1/ledgers: {(int)response.StatusCode} {text}");
        using var doc = JsonDocument.Parse(text);
        return doc.RootElement.GetProperty("id").GetString()!;
    }

    /// <summary>Creates credit-normal accounts without flags (transfers between them never fail for funds).</summary>
    public async Task CreateAccountsAsync(string ledger, IReadOnlyList<string> ids, int concurrency, CancellationToken ct)
    {
        await Parallel.ForEachAsync(ids, new ParallelOptions { MaxDegreeOfParallelism = concurrency, CancellationToken = ct }, async (id, token) =>
        {
            var body = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object> { ["id"] = id, ["ledger"] = ledger, ["normal_balance"] = "credit" });
            using var response = await PostAsync("/v1/accounts", body, token);
            if (!response.IsSuccessStatusCode)
                throw new InvalidOperationException($"POST /v1/accounts {id}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(token)}");
        });
    }

    /// <summary><c>POST /v1/transfers</c> with a body built by <see cref="WriteTransfer"/>.</summary>
    public async Task<OpResult> TransferAsync(ReadOnlyMemory<byte> body, long amount, CancellationToken ct)
    {
        try
        {
            using var response = await PostAsync("/v1/transfers", body, ct);
            if (response.StatusCode == HttpStatusCode.Created)
            {
                await response.Content.CopyToAsync(Stream.Null, ct);
                return new OpResult(1, 0, 0, amount, null, false);
            }
            return OpResult.Fail(await DescribeAsync(response, ct));
        }
        catch (HttpRequestException e)
        {
            return OpResult.Fail("transport: " + e.HttpRequestError, uncertain: true);
        }
    }

    /// <summary><c>POST /v1/transfers/batch</c>; counts per item what was created.</summary>
    public async Task<OpResult> BatchAsync(ReadOnlyMemory<byte> body, long[] amounts, int count, CancellationToken ct)
    {
        try
        {
            using var response = await PostAsync("/v1/transfers/batch", body, ct);
            if (response.StatusCode != HttpStatusCode.OK) return OpResult.Fail(await DescribeAsync(response, ct));
            await using var stream = await response.Content.ReadAsStreamAsync(ct);
            using var doc = await JsonDocument.ParseAsync(stream, cancellationToken: ct);
            int created = 0, failed = 0;
            long acked = 0;
            string? error = null;
            foreach (var item in doc.RootElement.GetProperty("results").EnumerateArray())
            {
                var index = item.GetProperty("index").GetInt32();
                if (item.GetProperty("status").ValueEquals("created"))
                {
                    created++;
                    acked += amounts[index];
                }
                else
                {
                    failed++;
                    error ??= "item " + (item.TryGetProperty("code", out var code) ? code.GetString() : item.GetProperty("status").GetString());
                }
            }
            if (created + failed != count) return new OpResult(created, 0, failed + 1, acked, "results missing", true);
            return new OpResult(created, 0, failed, acked, error, false);
        }
        catch (HttpRequestException e)
        {
            return OpResult.Fail("transport: " + e.HttpRequestError, uncertain: true);
        }
    }

    /// <summary><c>GET /v1/accounts/{id}</c>.</summary>
    public async Task<OpResult> GetAccountAsync(string id, CancellationToken ct)
    {
        try
        {
            using var response = await _http.GetAsync("/v1/accounts/" + id, HttpCompletionOption.ResponseContentRead, ct);
            if (response.StatusCode == HttpStatusCode.OK) return new OpResult(0, 1, 0, 0, null, false);
            return OpResult.Fail(await DescribeAsync(response, ct));
        }
        catch (HttpRequestException e)
        {
            return OpResult.Fail("transport: " + e.HttpRequestError);
        }
    }

    public static void WriteTransfer(Utf8JsonWriter w, string id, string debit, string credit, long amount)
    {
        w.WriteStartObject();
        w.WriteString("id"u8, id);
        w.WriteString("debit_account"u8, debit);
        w.WriteString("credit_account"u8, credit);
        w.WriteNumber("amount"u8, amount);
        w.WriteEndObject();
    }

    /// <summary>Writes <c>{"transfers":[...]}</c> from the items <paramref name="next"/> yields.</summary>
    public static void WriteBatch(IBufferWriter<byte> buffer, int count, Action<Utf8JsonWriter, int> next)
    {
        using var w = new Utf8JsonWriter(buffer);
        w.WriteStartObject();
        w.WriteStartArray("transfers"u8);
        for (var i = 0; i < count; i++) next(w, i);
        w.WriteEndArray();
        w.WriteEndObject();
    }

    Task<HttpResponseMessage> PostAsync(string path, ReadOnlyMemory<byte> body, CancellationToken ct)
    {
        var content = new ReadOnlyMemoryContent(body);
        content.Headers.ContentType = Json;
        return _http.PostAsync(path, content, ct);
    }

    static async Task<string> DescribeAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var status = ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var text = await response.Content.ReadAsStringAsync(ct);
        try
        {
            using var doc = JsonDocument.Parse(text);
            return doc.RootElement.TryGetProperty("code", out var code) ? $"{status} {code.GetString()}" : status;
        }
        catch (JsonException)
        {
            return status;
        }
    }

    public void Dispose() => _http.Dispose();
}
