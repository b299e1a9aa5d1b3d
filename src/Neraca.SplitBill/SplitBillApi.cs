using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;
using Neraca.Hosting;
using Neraca.Idempotency;
using Neraca.Ledger;
using Neraca.Storage;
using Neraca.Tenancy;

namespace Neraca.SplitBill;

/// <summary>Services every split-bill handler needs, bundled for <c>[AsParameters]</c>.</summary>
internal sealed record SplitServices(SplitBills Splits, CurrentCaller Caller, HttpContext Http)
{
    public SplitCaller Who => new(Caller.TenantId, Caller.Subject,
        Caller.Subject is { } s ? "user:" + s : "key:" + (Http.User.FindFirstValue(NeracaClaims.KeyId) ?? "unknown"));

    /// <summary>An id for a resource the client did not name: derived from the caller and its <c>Idempotency-Key</c> when
    /// there is one (a retry re-creates nothing even if the first response was lost), else new.</summary>
    public string NewId(string prefix) => Http.Request.Headers["Idempotency-Key"].FirstOrDefault() is { Length: > 0 } key
        ? prefix + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(
            $"{Caller.TenantId}\n{Http.Request.Path}\n{IdempotencyMiddleware.CallerScoped(Http.User, key)}")))[..26]
        : prefix + Ids.NewUlid();
}

/// <summary>The split-bill HTTP API under <c>/v1/split</c>: a thin mapping of <see cref="SplitBills"/>. Server keys and
/// end-user tokens both use it with the ledger scopes (<c>ledger:read</c>, <c>ledger:write</c>); end users see only the
/// groups they are members of.</summary>
internal static class SplitBillApi
{
    static readonly string[] ReceiptTypes = ["image/jpeg", "image/png", "image/webp"];

    public static IEndpointRouteBuilder MapSplitBillApi(this IEndpointRouteBuilder app)
    {
        var read = app.MapGroup("/v1/split").WithTags("Split bills").RequireAuthorization(Scopes.LedgerRead);
        var write = app.MapGroup("/v1/split").WithTags("Split bills").RequireAuthorization(Scopes.LedgerWrite);
        var receiptBytesMax = app.ServiceProvider.GetRequiredService<IOptions<SplitBillOptions>>().Value.ReceiptBytesMax;

        write.MapPost("/groups", CreateGroup).Produces<GroupResponse>(201);
        read.MapGet("/groups", ListGroups).Produces<Page<GroupResponse>>();
        write.MapPost("/groups/join", Join).Produces<GroupResponse>(201);
        read.MapGet("/groups/{id}", GetGroup).Produces<GroupResponse>();
        write.MapPatch("/groups/{id}", UpdateGroup).Produces<GroupResponse>();
        write.MapPost("/groups/{id}/members", AddMember).Produces<GroupResponse>(201);
        write.MapPatch("/groups/{id}/members/{member}", UpdateMember).Produces<GroupResponse>();
        write.MapDelete("/groups/{id}/members/{member}", RemoveMember).Produces<GroupResponse>();
        write.MapPost("/groups/{id}/leave", Leave).Produces<GroupResponse>();

        write.MapPost("/groups/{id}/expenses", CreateExpense).Produces<ExpenseResponse>(201);
        read.MapGet("/groups/{id}/expenses", ListExpenses).Produces<Page<ExpenseResponse>>();
        read.MapGet("/groups/{id}/expenses/{expense}", GetExpense).Produces<ExpenseResponse>();
        write.MapPatch("/groups/{id}/expenses/{expense}", UpdateExpense).Produces<ExpenseResponse>();
        write.MapDelete("/groups/{id}/expenses/{expense}", DeleteExpense).Produces<ExpenseResponse>();
        // Receipts are photos: their own body limit (plus room for multipart framing), not the API's 1 MiB.
        write.MapPost("/groups/{id}/expenses/{expense}/receipt", UploadReceipt)
            .WithMetadata(new RequestSizeLimitAttribute(receiptBytesMax + 64 * 1024)).Produces<ReceiptView>(202);
        read.MapGet("/groups/{id}/expenses/{expense}/receipt", GetReceipt).Produces(200).Produces(304);

        read.MapGet("/groups/{id}/balances", GetBalances).Produces<BalancesResponse>();
        read.MapGet("/groups/{id}/settle-up", SettleUp).Produces<SettleUpResponse>();
        write.MapPost("/groups/{id}/settlements", CreateSettlement).Produces<SettlementResponse>(201).Produces<SettlementResponse>(202);
        read.MapGet("/groups/{id}/settlements", ListSettlements).Produces<Page<SettlementResponse>>();
        read.MapGet("/groups/{id}/settlements/{settlement}", GetSettlement).Produces<SettlementResponse>();

        write.MapPost("/groups/{id}/recurring", CreateRecurring).Produces<RecurringResponse>(201);
        read.MapGet("/groups/{id}/recurring", ListRecurring).Produces<Page<RecurringResponse>>();
        write.MapDelete("/groups/{id}/recurring/{recurring}", StopRecurring).Produces<RecurringResponse>();

        read.MapGet("/groups/{id}/activity", ListActivity).Produces<Page<ActivityResponse>>();
        read.MapGet("/groups/{id}/export", Export).Produces(200, contentType: "text/csv");
        write.MapPost("/groups/{id}/import", Import).Produces<ImportResponse>();

        read.ProducesProblem(400).ProducesProblem(404);
        write.ProducesProblem(400).ProducesProblem(403).ProducesProblem(404).ProducesProblem(409).ProducesProblem(413).ProducesProblem(415).ProducesProblem(422);
        return app;
    }

    static async Task<IResult> CreateGroup(CreateGroupRequest body, [AsParameters] SplitServices s, CancellationToken ct) =>
        Respond(s, await s.Splits.CreateGroupAsync(s.Who, body with { Id = body.Id ?? s.NewId("grp_") }, ct), g => $"/v1/split/groups/{g.Id}");

    static async Task<IResult> ListGroups([AsParameters] SplitServices s, int? limit, string? after, CancellationToken ct) =>
        Respond(s, await s.Splits.ListGroupsAsync(s.Who, limit, after, ct));

    static async Task<IResult> GetGroup(string id, [AsParameters] SplitServices s, CancellationToken ct) => Respond(s, await s.Splits.GetGroupAsync(s.Who, id, ct));

    static async Task<IResult> UpdateGroup(string id, UpdateGroupRequest body, [AsParameters] SplitServices s, CancellationToken ct) =>
        Respond(s, await s.Splits.UpdateGroupAsync(s.Who, id, body, ct));

    static async Task<IResult> Join(JoinGroupRequest body, [AsParameters] SplitServices s, CancellationToken ct) =>
        Respond(s, await s.Splits.JoinAsync(s.Who, body, ct), g => $"/v1/split/groups/{g.Id}");

    static async Task<IResult> AddMember(string id, MemberInput body, [AsParameters] SplitServices s, CancellationToken ct) =>
        Respond(s, await s.Splits.AddMemberAsync(s.Who, id, body, ct), g => $"/v1/split/groups/{g.Id}");

    static async Task<IResult> UpdateMember(string id, string member, UpdateMemberRequest body, [AsParameters] SplitServices s, CancellationToken ct) =>
        Respond(s, await s.Splits.UpdateMemberAsync(s.Who, id, member, body, ct));

    static async Task<IResult> RemoveMember(string id, string member, [AsParameters] SplitServices s, CancellationToken ct) =>
        Respond(s, await s.Splits.RemoveMemberAsync(s.Who, id, member, ct));

    static async Task<IResult> Leave(string id, [AsParameters] SplitServices s, CancellationToken ct) =>
        Respond(s, await s.Splits.RemoveMemberAsync(s.Who, id, null, ct));

    static async Task<IResult> CreateExpense(string id, ExpenseInput body, [AsParameters] SplitServices s, CancellationToken ct) =>
        Respond(s, await s.Splits.CreateExpenseAsync(s.Who, id, body with { Id = body.Id ?? s.NewId("exp_") }, ct), e => $"/v1/split/groups/{id}/expenses/{e.Id}");

    static async Task<IResult> ListExpenses(string id, [AsParameters] SplitServices s, int? limit, string? after, bool? include_deleted, CancellationToken ct) =>
        Respond(s, await s.Splits.ListExpensesAsync(s.Who, id, limit, after, include_deleted == true, ct));

    static async Task<IResult> GetExpense(string id, string expense, [AsParameters] SplitServices s, CancellationToken ct) =>
        Respond(s, await s.Splits.GetExpenseAsync(s.Who, id, expense, ct));

    static async Task<IResult> UpdateExpense(string id, string expense, ExpenseInput body, [AsParameters] SplitServices s, CancellationToken ct) =>
        Respond(s, await s.Splits.UpdateExpenseAsync(s.Who, id, expense, body, ct));

    static async Task<IResult> DeleteExpense(string id, string expense, [AsParameters] SplitServices s, CancellationToken ct) =>
        Respond(s, await s.Splits.DeleteExpenseAsync(s.Who, id, expense, ct));

    /// <summary>The raw image as the body (<c>image/jpeg|png|webp</c>) or multipart with the field <c>file</c>. Stored and
    /// answered 202 at once; whether it is an image is decided by the background job from the bytes.</summary>
    static async Task<IResult> UploadReceipt(string id, string expense, [AsParameters] SplitServices s, CancellationToken ct)
    {
        var request = s.Http.Request;
        MediaTypeHeaderValue.TryParse(request.ContentType, out var type);
        var mediaType = type?.MediaType.Value?.ToLowerInvariant();
        SplitResult<ReceiptView> result;
        if (mediaType == "multipart/form-data")
        {
            var form = await request.ReadFormAsync(ct);
            if (form.Files.GetFile("file") is not { } file) return Problems.Validation("file", "Required: the image in the multipart field 'file'.");
            await using var stream = file.OpenReadStream();
            result = await s.Splits.UploadReceiptAsync(s.Who, id, expense, stream, ct);
        }
        else if (mediaType is not null && ReceiptTypes.Contains(mediaType))
            result = await s.Splits.UploadReceiptAsync(s.Who, id, expense, request.Body, ct);
        else
            return Problems.Of(415, "unsupported_media_type", "Unsupported media type",
                "Send the image as image/jpeg, image/png or image/webp, or as multipart/form-data with the field 'file'.");
        if (result.Error is not null) return result.Error.ToResult();
        return TypedResults.Accepted($"/v1/split/groups/{id}/expenses/{expense}/receipt", result.Value);
    }

    /// <summary>The cleaned receipt (or <c>?size=thumb</c>) with a strong ETag (its SHA-256) and 304 on a matching
    /// <c>If-None-Match</c>. Private: caches in the caller's browser or app may keep it, shared caches may not.</summary>
    static async Task<IResult> GetReceipt(string id, string expense, string? size, [AsParameters] SplitServices s, CancellationToken ct)
    {
        if (size is not (null or "original" or "thumb")) return Problems.Validation("size", "One of original, thumb.");
        var r = await s.Splits.GetReceiptAsync(s.Who, id, expense, size == "thumb", ct);
        if (r.Error is not null) return r.Error.ToResult();
        var file = r.Value!;
        var headers = s.Http.Response.Headers;
        headers.ETag = file.ETag;
        headers.CacheControl = "private, max-age=300";
        headers.Vary = "Authorization";
        var ifNoneMatch = s.Http.Request.GetTypedHeaders().IfNoneMatch;
        if (ifNoneMatch.Any(t => t.Equals(EntityTagHeaderValue.Any) || t.Tag.Value == file.ETag)) return TypedResults.StatusCode(304);
        var stream = s.Splits.OpenReceipt(file);
        return stream is null
            ? Problems.NotFound("receipt_not_found", "The receipt's file is missing from the store.")
            : TypedResults.Stream(stream, file.ContentType);
    }

    static async Task<IResult> GetBalances(string id, [AsParameters] SplitServices s, CancellationToken ct) => Respond(s, await s.Splits.GetBalancesAsync(s.Who, id, ct));

    static async Task<IResult> SettleUp(string id, bool? simplify, [AsParameters] SplitServices s, CancellationToken ct) =>
        Respond(s, await s.Splits.SettleUpAsync(s.Who, id, simplify, ct));

    static async Task<IResult> CreateSettlement(string id, CreateSettlementRequest body, [AsParameters] SplitServices s, CancellationToken ct)
    {
        var r = await s.Splits.CreateSettlementAsync(s.Who, id, body with { Id = body.Id ?? s.NewId("stl_") }, ct);
        // A wallet settlement whose transfer has not been confirmed yet is accepted, not created: it completes later.
        if (r.Error is null && r.Value!.Status == "pending") return TypedResults.Accepted($"/v1/split/groups/{id}/settlements/{r.Value.Id}", r.Value);
        return Respond(s, r, x => $"/v1/split/groups/{id}/settlements/{x.Id}");
    }

    static async Task<IResult> ListSettlements(string id, [AsParameters] SplitServices s, int? limit, string? after, CancellationToken ct) =>
        Respond(s, await s.Splits.ListSettlementsAsync(s.Who, id, limit, after, ct));

    static async Task<IResult> GetSettlement(string id, string settlement, [AsParameters] SplitServices s, CancellationToken ct) =>
        Respond(s, await s.Splits.GetSettlementAsync(s.Who, id, settlement, ct));

    static async Task<IResult> CreateRecurring(string id, CreateRecurringRequest body, [AsParameters] SplitServices s, CancellationToken ct) =>
        Respond(s, await s.Splits.CreateRecurringAsync(s.Who, id, body with { Id = body.Id ?? s.NewId("rcr_") }, ct), r => $"/v1/split/groups/{id}/recurring/{r.Id}");

    static async Task<IResult> ListRecurring(string id, [AsParameters] SplitServices s, CancellationToken ct) => Respond(s, await s.Splits.ListRecurringAsync(s.Who, id, ct));

    static async Task<IResult> StopRecurring(string id, string recurring, [AsParameters] SplitServices s, CancellationToken ct) =>
        Respond(s, await s.Splits.StopRecurringAsync(s.Who, id, recurring, ct));

    static async Task<IResult> ListActivity(string id, [AsParameters] SplitServices s, int? limit, string? after, CancellationToken ct) =>
        Respond(s, await s.Splits.ListActivityAsync(s.Who, id, limit, after, ct));

    static async Task<IResult> Export(string id, [AsParameters] SplitServices s, CancellationToken ct)
    {
        var r = await s.Splits.ExportCsvAsync(s.Who, id, ct);
        if (r.Error is not null) return r.Error.ToResult();
        s.Http.Response.Headers.ContentDisposition = $"attachment; filename=\"{id}.csv\"";
        return TypedResults.Text(r.Value!, "text/csv; charset=utf-8", Encoding.UTF8);
    }

    /// <summary>A Splitwise CSV export as the body (<c>text/csv</c>) or multipart field <c>file</c>.</summary>
    static async Task<IResult> Import(string id, bool? create_members, [AsParameters] SplitServices s, CancellationToken ct)
    {
        var request = s.Http.Request;
        MediaTypeHeaderValue.TryParse(request.ContentType, out var type);
        var mediaType = type?.MediaType.Value?.ToLowerInvariant();
        string text;
        if (mediaType == "multipart/form-data")
        {
            var form = await request.ReadFormAsync(ct);
            if (form.Files.GetFile("file") is not { } file) return Problems.Validation("file", "Required: the CSV in the multipart field 'file'.");
            using var reader = new StreamReader(file.OpenReadStream(), Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
            text = await reader.ReadToEndAsync(ct);
        }
        else if (mediaType is "text/csv" or "text/plain")
        {
            using var reader = new StreamReader(request.Body, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
            text = await reader.ReadToEndAsync(ct);
        }
        else return Problems.Of(415, "unsupported_media_type", "Unsupported media type", "Send the CSV as text/csv, or as multipart/form-data with the field 'file'.");
        return Respond(s, await s.Splits.ImportCsvAsync(s.Who, id, text, create_members != false, ct));
    }

    /// <summary>Created → 201 with Location, Replayed → 200 with <c>Idempotent-Replayed</c>, a failure → problem+json.</summary>
    static IResult Respond<T>(SplitServices s, SplitResult<T> result, Func<T, string>? location = null)
    {
        if (result.Error is not null) return result.Error.ToResult();
        if (result.Created && location is not null) return TypedResults.Created(location(result.Value!), result.Value);
        if (result.Replayed) s.Http.Response.Headers["Idempotent-Replayed"] = "true";
        return TypedResults.Ok(result.Value);
    }
}
