using System.Text.Json;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Npgsql;

namespace Neraca.Bench.Baseline;

public sealed record LedgerRequest(string Code, string Asset, short Scale, string? Name, JsonElement? Metadata);

public sealed record AccountRequest(string? Id, string Ledger, string NormalBalance);

public sealed record TransferRequest(string? Id, string DebitAccount, string CreditAccount, long Amount);

public sealed record BatchRequest(List<TransferRequest> Transfers);

public sealed record BatchItemResult(int Index, string Status, string? Code, NaiveTransfer? Transfer);

public sealed record BatchResponse(List<BatchItemResult> Results);

public sealed record LedgerResponse(string Id, string Code, string Asset, short Scale);

/// <summary>The naive baseline behind the same HTTP contract as Neraca (the part the benchmark calls), served by
/// Kestrel on loopback inside the benchmark process, so that both sides pay HTTP and JSON.</summary>
public sealed class NaiveLedgerServer : IAsyncDisposable
{
    public const int BatchSizeMax = 8000;
    readonly WebApplication _app;
    readonly NpgsqlDataSource _db;

    NaiveLedgerServer(WebApplication app, NpgsqlDataSource db, Uri baseAddress)
    {
        _app = app;
        _db = db;
        BaseAddress = baseAddress;
    }

    public Uri BaseAddress { get; }

    public static async Task<NaiveLedgerServer> StartAsync(string connectionString, string apiKey, CancellationToken ct)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = 8 * 1024 * 1024;
            k.AddServerHeader = false;
        });
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower);
        var db = NpgsqlDataSource.Create(connectionString);
        builder.Services.AddSingleton(db);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<NaiveLedger>();

        var app = builder.Build();
        var expected = "Bearer " + apiKey;
        app.Use(async (context, next) =>
        {
            if (!string.Equals(context.Request.Headers.Authorization, expected, StringComparison.Ordinal))
            {
                context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                return;
            }
            await next(context);
        });
        var v1 = app.MapGroup("/v1");
        v1.MapPost("/ledgers", CreateLedgerAsync);
        v1.MapPost("/accounts", CreateAccountAsync);
        v1.MapGet("/accounts/{id}", GetAccountAsync);
        v1.MapPost("/transfers", CreateTransferAsync);
        v1.MapPost("/transfers/batch", CreateBatchAsync);

        await app.Services.GetRequiredService<NaiveLedger>().CreateSchemaAsync(ct);
        await app.StartAsync(ct);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new NaiveLedgerServer(app, db, new Uri(address));
    }

    static async Task<Results<Created<LedgerResponse>, Ok<LedgerResponse>>> CreateLedgerAsync(LedgerRequest request, NaiveLedger ledger, CancellationToken ct)
    {
        var (id, created) = await ledger.CreateLedgerAsync(request.Code, request.Asset, request.Scale, ct);
        var body = new LedgerResponse(id, request.Code, request.Asset, request.Scale);
        return created ? TypedResults.Created("/v1/ledgers/" + id, body) : TypedResults.Ok(body);
    }

    static async Task<Results<Created<NaiveAccount>, Ok<NaiveAccount>, ProblemHttpResult>> CreateAccountAsync(AccountRequest request, NaiveLedger ledger, CancellationToken ct)
    {
        var normal = NaiveLedger.ParseNormal(request.NormalBalance);
        if (normal == 0) return Problem(400, "validation_failed");
        var ledgerId = await ledger.FindLedgerAsync(request.Ledger, ct);
        if (ledgerId is null) return Problem(422, "ledger_not_found");
        var id = request.Id ?? "acc_" + Guid.NewGuid().ToString("N");
        var created = await ledger.CreateAccountAsync(id, ledgerId, normal, ct);
        var account = await ledger.GetAccountAsync(id, ct);
        if (account is null) return Problem(500, "account_vanished");
        return created ? TypedResults.Created("/v1/accounts/" + id, account) : TypedResults.Ok(account);
    }

    static async Task<Results<Ok<NaiveAccount>, ProblemHttpResult>> GetAccountAsync(string id, NaiveLedger ledger, CancellationToken ct)
    {
        var account = await ledger.GetAccountAsync(id, ct);
        return account is null ? Problem(404, "account_not_found") : TypedResults.Ok(account);
    }

    static async Task<Results<Created<NaiveTransfer>, Ok<NaiveTransfer>, ProblemHttpResult>> CreateTransferAsync(TransferRequest request, NaiveLedger ledger,
        HttpResponse response, CancellationToken ct)
    {
        var outcome = await ledger.TransferAsync(request.Id, request.DebitAccount, request.CreditAccount, request.Amount, ct);
        if (outcome.Transfer is null) return Problem(outcome.Code == "validation_failed" ? 400 : 422, outcome.Code!);
        if (!outcome.Replayed) return TypedResults.Created("/v1/transfers/" + outcome.Transfer.Id, outcome.Transfer);
        response.Headers["Idempotent-Replayed"] = "true";
        return TypedResults.Ok(outcome.Transfer);
    }

    /// <summary>A loop over the items, each in its own transaction, as a CRUD backend would write a batch endpoint.</summary>
    static async Task<Results<Ok<BatchResponse>, ProblemHttpResult>> CreateBatchAsync(BatchRequest request, NaiveLedger ledger, CancellationToken ct)
    {
        if (request.Transfers.Count is 0 or > BatchSizeMax) return Problem(400, "validation_failed");
        var results = new List<BatchItemResult>(request.Transfers.Count);
        for (var i = 0; i < request.Transfers.Count; i++)
        {
            var t = request.Transfers[i];
            var outcome = await ledger.TransferAsync(t.Id, t.DebitAccount, t.CreditAccount, t.Amount, ct);
            results.Add(outcome.Transfer is null ? new BatchItemResult(i, "failed", outcome.Code, null)
                : new BatchItemResult(i, outcome.Replayed ? "exists" : "created", null, outcome.Transfer));
        }
        return TypedResults.Ok(new BatchResponse(results));
    }

    static ProblemHttpResult Problem(int status, string code) =>
        TypedResults.Problem(statusCode: status, title: code, extensions: new Dictionary<string, object?> { ["code"] = code });

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        await _db.DisposeAsync();
    }
}
