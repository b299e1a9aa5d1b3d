using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http.HttpResults;
using Neraca.Hosting;
using Neraca.Idempotency;
using Neraca.Ledger;
using Neraca.Payouts.Provider;
using Neraca.Security;
using Neraca.Storage;
using Neraca.Tenancy;

namespace Neraca.Payouts;

/// <summary><c>POST /v1/payouts</c>: <c>id</c> is optional (derived from the <c>Idempotency-Key</c> when there is one,
/// new otherwise). Amounts are minor units of the source account's ledger currency.</summary>
public sealed record CreatePayoutBody(string? Id = null, string? SourceAccount = null, long? Amount = null, DestinationBody? Destination = null,
    string? Reference = null, string? Description = null);

public sealed record DestinationBody(string? Type = null, string? Code = null, string? AccountNumber = null, string? AccountName = null);

/// <summary><c>POST /v1/payouts/account-inquiries</c>: who holds this account (before paying to it).</summary>
public sealed record AccountInquiryBody(DestinationBody? Destination = null);

/// <summary>The answer of an inquiry: the holder's name masked (<c>B*** S******</c>), enough to confirm, not to harvest.</summary>
public sealed record AccountInquiryView(bool Valid, string? AccountNameMasked, string? FailureCode);

/// <summary>Services every payout handler needs, bundled for <c>[AsParameters]</c>.</summary>
internal sealed record PayoutServices(PayoutService Payouts, CurrentCaller Caller, HttpContext Http)
{
    public string TenantId => Caller.TenantId;

    /// <summary>As the ledger does: an id derived from the caller-scoped <c>Idempotency-Key</c>, so a retry re-creates
    /// nothing even if the first response was lost; without a key a new one.</summary>
    public string NewId() => Http.Request.Headers["Idempotency-Key"].FirstOrDefault() is { Length: > 0 } key
        ? "po_" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(
            $"{TenantId}\n{Http.Request.Path}\n{IdempotencyMiddleware.CallerScoped(Http.User, key)}")))[..26]
        : "po_" + Ids.NewUlid();
}

internal static class PayoutsApi
{
    public static IEndpointRouteBuilder MapPayoutsApi(this IEndpointRouteBuilder app)
    {
        var read = app.MapGroup("/v1/payouts").WithTags("Payouts").RequireAuthorization(Scopes.PayoutsRead);
        var write = app.MapGroup("/v1/payouts").WithTags("Payouts").RequireAuthorization(Scopes.PayoutsWrite);
        write.MapPost("", Create).Produces<PayoutView>(201).Produces<PayoutView>();
        write.MapPost("/account-inquiries", Inquire).Produces<AccountInquiryView>();
        read.MapGet("", List).Produces<Page<PayoutView>>();
        read.MapGet("/{id}", Get).Produces<PayoutView>();
        read.ProducesProblem(400).ProducesProblem(403).ProducesProblem(404);
        write.ProducesProblem(400).ProducesProblem(403).ProducesProblem(404).ProducesProblem(409).ProducesProblem(422);

        // The provider calls this without a key: it is trusted by the signature over its body (PayoutCallbacks).
        app.MapGroup("/v1/payouts").WithTags("Payouts").AllowAnonymous().MapPost("/callbacks", Callback)
            .ProducesProblem(400).ProducesProblem(401);
        return app;
    }

    static async Task<IResult> Create(CreatePayoutBody body, [AsParameters] PayoutServices s, CancellationToken ct)
    {
        if (s.Caller.IsEndUser) return ServerKeyRequired();
        var d = body.Destination;
        var request = new PayoutRequest(body.Id ?? s.NewId(), body.SourceAccount!, body.Amount ?? 0,
            d is null ? null! : new PayoutDestination(d.Type!, d.Code!, d.AccountNumber!, d.AccountName), body.Reference!, body.Description);
        var result = await s.Payouts.RequestAsync(s.TenantId, request, ct);
        if (result.Payout is { } payout)
        {
            if (result.Created) return TypedResults.Created($"/v1/payouts/{payout.Id}", payout);
            s.Http.Response.Headers["Idempotent-Replayed"] = "true";
            return TypedResults.Ok(payout);
        }
        return Problem(result.ErrorCode!, result.ErrorDetail, result.Errors);
    }

    static async Task<IResult> Get(string id, [AsParameters] PayoutServices s, CancellationToken ct)
    {
        if (s.Caller.IsEndUser) return ServerKeyRequired();
        return await s.Payouts.GetAsync(s.TenantId, id, ct) is { } payout
            ? TypedResults.Ok(payout)
            : Problems.NotFound(PayoutCodes.PayoutNotFound, $"No payout '{id}'.");
    }

    static async Task<IResult> List([AsParameters] PayoutServices s, string? status, int? limit, string? after, CancellationToken ct)
    {
        if (s.Caller.IsEndUser) return ServerKeyRequired();
        var page = await s.Payouts.ListAsync(s.TenantId, status, limit, after, ct);
        return page.Succeeded ? TypedResults.Ok(page.Value) : Problems.Validation(new Dictionary<string, string[]>(page.Errors!));
    }

    static async Task<IResult> Inquire(AccountInquiryBody body, [AsParameters] PayoutServices s, ProviderClient provider, CancellationToken ct)
    {
        if (s.Caller.IsEndUser) return ServerKeyRequired();
        var d = body.Destination;
        // The same rules as a payout's destination.
        var errors = PayoutService.Validate(new PayoutRequest("inquiry", "inquiry", 1,
            d is null ? null! : new PayoutDestination(d.Type!, d.Code!, d.AccountNumber!, d.AccountName), "inquiry"));
        if (errors.Count > 0) return Problems.Validation(errors);
        var answer = await provider.InquireAsync(new AccountInquiry(d!.Type!, d.Code!, d.AccountNumber!), ct);
        if (answer is null)
            return Problems.Of(StatusCodes.Status503ServiceUnavailable, "provider_unavailable", "Provider unavailable",
                "The payout provider did not answer the inquiry; try again.");
        return TypedResults.Ok(new AccountInquiryView(answer.Valid, answer.AccountName is { } n ? Masking.Name(n) : null,
            answer.Valid ? null : PayoutCodes.InvalidDestination));
    }

    static async Task<IResult> Callback(HttpContext http, PayoutCallbacks callbacks, CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        await http.Request.Body.CopyToAsync(buffer, ct);
        var result = await callbacks.HandleAsync(buffer.ToArray(), http.Request.Headers[CallbackSignature.Header].FirstOrDefault(), ct);
        return result.Status == 200
            ? TypedResults.Ok(new { result = result.Code, detail = result.Detail })
            : Problems.Of(result.Status, result.Code, result.Status == 401 ? "Invalid signature" : "Callback refused", result.Detail);
    }

    static ProblemHttpResult ServerKeyRequired() =>
        Problems.Of(StatusCodes.Status403Forbidden, LedgerCodes.ServerKeyRequired, "Server key required",
            "Payouts are requested by servers (a product pays out on an end user's behalf), not by end-user tokens.");

    static IResult Problem(string code, string? detail, IReadOnlyDictionary<string, string[]>? errors)
    {
        if (code == PayoutCodes.ValidationFailed) return Problems.Validation(new Dictionary<string, string[]>(errors ?? new Dictionary<string, string[]>()));
        var status = code switch
        {
            LedgerCodes.AccountNotFound or LedgerCodes.LedgerNotFound => StatusCodes.Status404NotFound,
            PayoutCodes.PayoutConflict or LedgerCodes.AccountExistsWithDifferentFields or LedgerCodes.TransferExistsWithDifferentFields => StatusCodes.Status409Conflict,
            LedgerCodes.ServerKeyRequired => StatusCodes.Status403Forbidden,
            _ => StatusCodes.Status422UnprocessableEntity,
        };
        var title = char.ToUpperInvariant(code[0]) + code[1..].Replace('_', ' ');
        return Problems.Of(status, code, title, detail);
    }
}
