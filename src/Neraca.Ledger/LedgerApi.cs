using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using Neraca.Hosting;
using Neraca.Idempotency;
using Neraca.Storage;
using Neraca.Tenancy;

namespace Neraca.Ledger;

/// <summary>Services every ledger handler needs, bundled for <c>[AsParameters]</c>.</summary>
internal sealed record LedgerServices(ILedger TenantLedger, CurrentCaller Caller, HttpContext Http)
{
    public string TenantId => Caller.TenantId;

    /// <summary>The ledger as the caller may use it: tenant-wide for a server key, the subject's own view for an end user.</summary>
    public ILedger Ledger => Caller.Subject is { } subject ? TenantLedger.For(subject) : TenantLedger;

    /// <summary>An id for a resource the client did not name. With an <c>Idempotency-Key</c> it is derived from the caller
    /// and the key (keys are scoped per caller, as in the idempotency store), so a retry re-creates nothing even if the
    /// first response was lost, and two callers using the same key get different ids; without a key it is new.</summary>
    public string NewId(string prefix, int index = 0) => Http.Request.Headers["Idempotency-Key"].FirstOrDefault() is { Length: > 0 } key
        ? prefix + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(
            $"{TenantId}\n{Http.Request.Path}\n{IdempotencyMiddleware.CallerScoped(Http.User, key)}\n{index}")))[..26]
        : prefix + Ids.NewUlid();
}

/// <summary>The ledger's HTTP API: a thin mapping of <see cref="ILedger"/> onto routes, status codes and problem+json.</summary>
internal static class LedgerApi
{
    public static IEndpointRouteBuilder MapLedgerApi(this IEndpointRouteBuilder app)
    {
        var read = app.MapGroup("/v1").WithTags("Ledger").RequireAuthorization(Scopes.LedgerRead);
        var write = app.MapGroup("/v1").WithTags("Ledger").RequireAuthorization(Scopes.LedgerWrite);

        write.MapPost("/ledgers", CreateLedger).Produces<LedgerResponse>(201).Produces<LedgerResponse>();
        read.MapGet("/ledgers", ListLedgers).Produces<Page<LedgerResponse>>();
        read.MapGet("/ledgers/{idOrCode}", GetLedger).Produces<LedgerResponse>();
        // Recomputing hashes is an operator's question: server keys with audit:read (or admin), never end-user tokens.
        app.MapGroup("/v1").WithTags("Ledger").RequireAuthorization(Scopes.AuditRead).MapGet("/ledgers/{idOrCode}/audit", AuditLedger)
            .Produces<AuditResponse>().ProducesProblem(404);

        write.MapPost("/accounts", CreateAccount).Produces<AccountResponse>(201).Produces<AccountResponse>();
        read.MapGet("/accounts", ListAccounts).Produces<Page<AccountResponse>>();
        read.MapGet("/accounts/{id}", GetAccount).Produces<AccountResponse>();
        read.MapGet("/accounts/{id}/entries", ListEntries).Produces<Page<EntryResponse>>();
        read.MapGet("/accounts/{id}/balance", GetBalanceAt).Produces<PointBalanceResponse>();

        write.MapPost("/transfers", CreateTransfer).Produces<TransferResponse>(201).Produces<TransferResponse>();
        var batchBodyMax = app.ServiceProvider.GetRequiredService<IOptions<NeracaOptions>>().Value.BatchRequestBodyBytesMax;
        write.MapPost("/transfers/batch", CreateBatch).WithMetadata(new RequestSizeLimitAttribute(batchBodyMax)).Produces<BatchResponse>();
        write.MapPost("/transfers/{id}/post", PostPending).Produces<TransferResponse>();
        write.MapPost("/transfers/{id}/void", VoidPending).Produces<TransferResponse>();
        write.MapPost("/transfers/{id}/reverse", Reverse).Produces<TransferResponse>(201).Produces<TransferResponse>();
        read.MapGet("/transfers", ListTransfers).Produces<Page<TransferResponse>>();
        read.MapGet("/transfers/{id}", GetTransfer).Produces<TransferResponse>();
        // Every route answers problem+json on failure (docs/errors.md).
        read.ProducesProblem(400).ProducesProblem(404);
        write.ProducesProblem(400).ProducesProblem(403).ProducesProblem(404).ProducesProblem(409).ProducesProblem(422);
        return app;
    }

    static async Task<IResult> CreateLedger(CreateLedgerRequest body, [AsParameters] LedgerServices s, CancellationToken ct) =>
        Respond(s, await s.Ledger.CreateLedgerAsync(s.TenantId, body, ct), l => $"/v1/ledgers/{l.Code}");

    static async Task<IResult> ListLedgers([AsParameters] LedgerServices s, int? limit, string? after, CancellationToken ct) =>
        Respond(s, await s.Ledger.ListLedgersAsync(s.TenantId, new PageRequest(limit, after), ct));

    static async Task<IResult> GetLedger(string idOrCode, [AsParameters] LedgerServices s, CancellationToken ct) =>
        Respond(s, await s.Ledger.GetLedgerAsync(s.TenantId, idOrCode, ct));

    static async Task<IResult> AuditLedger(string idOrCode, [AsParameters] LedgerServices s, CancellationToken ct) =>
        Respond(s, await s.Ledger.VerifyAuditAsync(s.TenantId, idOrCode, ct));

    static async Task<IResult> CreateAccount(CreateAccountRequest body, [AsParameters] LedgerServices s, CancellationToken ct) =>
        Respond(s, await s.Ledger.CreateAccountAsync(s.TenantId, body with { Id = body.Id ?? s.NewId("acc_") }, ct), a => $"/v1/accounts/{a.Id}");

    static async Task<IResult> ListAccounts([AsParameters] LedgerServices s, string? ledger, int? limit, string? after, CancellationToken ct)
    {
        var metadata = s.Http.Request.Query
            .Where(q => q.Key.StartsWith("metadata.", StringComparison.Ordinal))
            .Select(q => KeyValuePair.Create(q.Key["metadata.".Length..], q.Value.ToString()))
            .ToList();
        return Respond(s, await s.Ledger.ListAccountsAsync(s.TenantId, new AccountQuery(ledger, metadata, limit, after), ct));
    }

    static async Task<IResult> GetAccount(string id, [AsParameters] LedgerServices s, CancellationToken ct) =>
        Respond(s, await s.Ledger.GetAccountAsync(s.TenantId, id, ct));

    static async Task<IResult> ListEntries(string id, [AsParameters] LedgerServices s, DateTimeOffset? from, DateTimeOffset? to, int? limit, string? after,
        CancellationToken ct) =>
        Respond(s, await s.Ledger.ListEntriesAsync(s.TenantId, id, new EntryQuery(from, to, limit, after), ct));

    static async Task<IResult> GetBalanceAt(string id, [AsParameters] LedgerServices s, DateTimeOffset? at, string? basis, CancellationToken ct) =>
        Respond(s, await s.Ledger.GetBalanceAtAsync(s.TenantId, id, at, basis, ct));

    static async Task<IResult> CreateTransfer(CreateTransferRequest body, [AsParameters] LedgerServices s, CancellationToken ct) =>
        Respond(s, await s.Ledger.CreateTransferAsync(s.TenantId, body with { Id = body.Id ?? s.NewId("trf_") }, ct), t => $"/v1/transfers/{t.Id}");

    static async Task<IResult> CreateBatch(BatchRequest body, [AsParameters] LedgerServices s, CancellationToken ct)
    {
        var named = body.Transfers?.Select((t, i) => t is null ? null! : t with { Id = t.Id ?? s.NewId("trf_", i) }).ToArray();
        return Respond(s, await s.Ledger.CreateBatchAsync(s.TenantId, body with { Transfers = named }, ct));
    }

    static async Task<IResult> PostPending(string id, PostPendingRequest? body, [AsParameters] LedgerServices s, CancellationToken ct) =>
        Respond(s, await s.Ledger.PostPendingAsync(s.TenantId, id, body?.Amount, ct));

    static async Task<IResult> VoidPending(string id, [AsParameters] LedgerServices s, CancellationToken ct) =>
        Respond(s, await s.Ledger.VoidPendingAsync(s.TenantId, id, ct));

    static async Task<IResult> Reverse(string id, ReverseRequest? body, [AsParameters] LedgerServices s, CancellationToken ct)
    {
        body ??= new ReverseRequest();
        return Respond(s, await s.Ledger.ReverseAsync(s.TenantId, id, body with { Id = body.Id ?? s.NewId("trf_") }, ct), t => $"/v1/transfers/{t.Id}");
    }

    static async Task<IResult> GetTransfer(string id, [AsParameters] LedgerServices s, CancellationToken ct) =>
        Respond(s, await s.Ledger.GetTransferAsync(s.TenantId, id, ct));

    static async Task<IResult> ListTransfers([AsParameters] LedgerServices s, string? ledger, string? account, DateTimeOffset? from, DateTimeOffset? to,
        int? limit, string? after, CancellationToken ct) =>
        Respond(s, await s.Ledger.ListTransfersAsync(s.TenantId, new TransferQuery(ledger, account, from, to, limit, after), ct));

    /// <summary>Created → 201 with Location (when the route has one), Replayed → 200 with <c>Idempotent-Replayed</c>,
    /// Ok → 200, a failure → problem+json with the ledger's code.</summary>
    static IResult Respond<T>(LedgerServices s, LedgerResult<T> result, Func<T, string>? location = null)
    {
        switch (result.Outcome)
        {
            case LedgerOutcome.Created when location is not null:
                return TypedResults.Created(location(result.Value!), result.Value);
            case LedgerOutcome.Replayed:
                s.Http.Response.Headers["Idempotent-Replayed"] = "true";
                return TypedResults.Ok(result.Value);
            case LedgerOutcome.Failed:
                return Problem(result.Error!);
            default:
                return TypedResults.Ok(result.Value);
        }
    }

    static IResult Problem(LedgerError e)
    {
        if (e.Kind == LedgerErrorKind.Invalid) return Problems.Validation(new Dictionary<string, string[]>(e.Errors ?? new Dictionary<string, string[]>()));
        var status = e.Kind switch
        {
            LedgerErrorKind.NotFound => StatusCodes.Status404NotFound,
            LedgerErrorKind.Conflict => StatusCodes.Status409Conflict,
            LedgerErrorKind.Forbidden => StatusCodes.Status403Forbidden,
            _ => StatusCodes.Status422UnprocessableEntity,
        };
        var extra = e.Field is null ? null : new Dictionary<string, object?> { ["field"] = e.Field };
        return Problems.Of(status, e.Code, Title(e), e.Detail, extra);
    }

    static string Title(LedgerError e) => e.Code switch
    {
        LedgerCodes.LedgerExists => "Ledger exists",
        LedgerCodes.AccountExistsWithDifferentFields => "Account exists",
        LedgerCodes.PendingTransferNotFound => "Pending transfer not found",
        _ when e.Kind == LedgerErrorKind.NotFound => "Not found",
        _ => char.ToUpperInvariant(e.Code[0]) + e.Code[1..].Replace('_', ' '),
    };
}
