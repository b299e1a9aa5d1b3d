using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Ledger;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Settlement;

/// <summary>A tenant with an IDR ledger and one bank counterparty: its cash (nostro) account <c>bank-bca</c> (debit-normal),
/// its settlement account <c>due-bca</c> (credit-normal), a suspense account and customer wallets, all in
/// Asia/Jakarta with a 17:00 cut-off. <see cref="Day"/> is a business date two days back, so its window is closed.</summary>
public sealed class SettlementWorld
{
    public static readonly TimeZoneInfo Jakarta = TimeZoneInfo.FindSystemTimeZoneById("Asia/Jakarta");

    SettlementWorld(NeracaServer server, TestTenant tenant, DateOnly day)
    {
        Server = server;
        Tenant = tenant;
        Day = day;
    }

    public NeracaServer Server { get; }
    public TestTenant Tenant { get; }
    public HttpClient Http => Tenant.Http;
    public string TenantId => Tenant.Id;
    public DateOnly Day { get; }
    public ILedger Ledger => Server.Services.GetRequiredService<ILedger>();

    public static async Task<SettlementWorld> CreateAsync(ServerFixture fixture, object? counterparty = null)
    {
        var tenant = await fixture.Server.NewTenantAsync();
        var today = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(fixture.Clock.UtcNow, Jakarta).DateTime);
        var w = new SettlementWorld(fixture.Server, tenant, today.AddDays(-2));
        var l = w.Ledger;
        Ok(await l.CreateLedgerAsync(w.TenantId, new CreateLedgerRequest("idr", "IDR", 2), default));
        foreach (var (id, normal) in new[] { ("bank-bca", "debit"), ("due-bca", "credit"), ("suspense", "debit"), ("alice", "credit"), ("bob", "credit"), ("fees", "credit") })
            Ok(await l.CreateAccountAsync(w.TenantId, new CreateAccountRequest(id, "idr", normal), default));
        var created = await w.Http.PostJsonAsync("/v1/settlement/counterparties", counterparty ?? DefaultCounterparty());
        Assert.True(created.Response.StatusCode == HttpStatusCode.Created, created.Body?.ToJsonString());
        return w;
    }

    public static object DefaultCounterparty(string id = "bca", string cash = "bank-bca", string settlement = "due-bca") => new
    {
        id, name = "Bank Central Asia", type = "bank", settlement_account = settlement, cash_account = cash, suspense_account = "suspense",
        cutoff_local_time = "17:00", time_zone = "Asia/Jakarta",
        csv_mapping = new
        {
            delimiter = ";", date_format = "dd/MM/yyyy", decimal_separator = ",", currency = "IDR",
            columns = new { value_date = "Tanggal", amount = "Jumlah", balance = "Saldo", reference = "Referensi", description = "Keterangan" },
        },
    };

    static void Ok<T>(LedgerResult<T> r) => Assert.True(r.Succeeded, r.Error?.Code + " " + r.Error?.Detail);

    /// <summary>A moment of <paramref name="day"/> at <paramref name="hour"/>:<paramref name="minute"/> Jakarta time.</summary>
    public static DateTimeOffset At(DateOnly day, int hour, int minute = 0) =>
        new(TimeZoneInfo.ConvertTimeToUtc(day.ToDateTime(new TimeOnly(hour, minute)), Jakarta), TimeSpan.Zero);

    public async Task<TransferResponse> TransferAsync(string id, string debit, string credit, long amount, DateTimeOffset effective, object? metadata = null)
    {
        var r = await Ledger.CreateTransferAsync(TenantId, new CreateTransferRequest(id, debit, credit, amount, EffectiveAt: effective,
            Metadata: metadata is null ? null : (JsonObject)System.Text.Json.JsonSerializer.SerializeToNode(metadata)!), default);
        Assert.True(r.Succeeded, r.Error?.Code + " " + r.Error?.Detail);
        return r.Value!;
    }

    public async Task<long> BalanceAsync(string account) => (await Ledger.GetAccountAsync(TenantId, account, default)).Value!.Balance.Posted;

    public Task<(HttpResponseMessage Response, JsonNode? Body)> ImportAsync(string content, string contentType, string counterparty = "bca") =>
        Http.PostRawAsync($"/v1/reconciliation/statements?counterparty={counterparty}", content, contentType);

    /// <summary>Imports and waits for the matching job's first pass.</summary>
    public async Task<JsonNode> ImportAndMatchAsync(string content, string contentType, string counterparty = "bca")
    {
        var r = await ImportAsync(content, contentType, counterparty);
        Assert.True(r.Response.StatusCode == HttpStatusCode.Created, r.Body?.ToJsonString());
        var id = (string)r.Body!["id"]!;
        return await Polling.Eventually(async () => (await Http.GetJsonAsync($"/v1/reconciliation/statements/{id}")).Body!,
            s => (string?)s["status"] != "matching", $"statement {id} matched");
    }

    public async Task<Dictionary<int, JsonNode>> LinesAsync(string statement)
    {
        var r = await Http.GetJsonAsync($"/v1/reconciliation/statements/{statement}/lines?limit=1000");
        Assert.Equal(HttpStatusCode.OK, r.Response.StatusCode);
        return r.Body!["data"]!.AsArray().ToDictionary(l => (int)l!["line_no"]!, l => l!);
    }

    public async Task<List<JsonNode>> ExceptionsAsync(string query = "")
    {
        var r = await Http.GetJsonAsync($"/v1/reconciliation/exceptions?limit=1000{query}");
        Assert.Equal(HttpStatusCode.OK, r.Response.StatusCode);
        return r.Body!["data"]!.AsArray().Select(x => x!).ToList();
    }

    public static string Yymmdd(DateOnly d) => d.ToString("yyMMdd", CultureInfo.InvariantCulture);

    public static string Iso(DateOnly d) => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    public async Task<(HttpResponseMessage Response, JsonNode? Body)> UploadAsync(string fileName, string content, string? mediaType, string counterparty = "bca")
    {
        using var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(Encoding.UTF8.GetBytes(content));
        if (mediaType is not null) file.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
        form.Add(file, "file", fileName);
        var response = await Http.PostAsync($"/v1/reconciliation/statements?counterparty={counterparty}", form);
        return (response, await Infrastructure.Http.ReadAsync(response));
    }
}
