using System.Security.Claims;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;
using Neraca.SplitBill;
using Neraca.Tenancy;
using Neraca.Web.Components;
using Neraca.Web.Sessions;
using Neraca.Web.Text;

namespace Neraca.Web.Views.Split;

/// <summary>What the split-bill pages need besides pages: the live preview of shares (JSON for the page's script), the
/// receipt upload (a photo is larger than the app's 1 MiB body limit) and the receipt images. All for the signed-in end
/// user through <see cref="SplitBills"/>, so a group they are not a member of is not found.</summary>
public static class SplitEndpoints
{
    public sealed record PreviewShare(string Member, string Name, string Amount);

    public sealed record PreviewProblem(string Code, string Title, string? Detail);

    /// <summary>The preview as the page's script shows it: each member's share, formatted for the reader, or the problem.</summary>
    public sealed record PreviewResponse(bool Ok, string? Total, IReadOnlyList<PreviewShare> Shares, PreviewProblem? Problem);

    public static IEndpointRouteBuilder MapSplitViews(this IEndpointRouteBuilder app)
    {
        var bytesMax = app.ServiceProvider.GetRequiredService<IOptions<SplitBillOptions>>().Value.ReceiptBytesMax;
        var group = app.MapGroup("/app/split/{id}").RequireAuthorization(WebPolicies.User).ExcludeFromDescription();
        group.MapPost("/preview", PreviewAsync).DisableAntiforgery();
        group.MapPost("/expenses/{expense}/receipt", UploadReceiptAsync).DisableAntiforgery()
            .WithMetadata(new RequestSizeLimitAttribute(bytesMax + 64 * 1024));
        group.MapGet("/expenses/{expense}/receipt", ReceiptAsync);
        return app;
    }

    static SplitCaller Caller(HttpContext http) => SplitCallers.Of(http.User.FindFirstValue(NeracaClaims.TenantId)!, http.User.FindFirstValue(NeracaClaims.Subject)!);

    /// <summary>The member the caller is in <paramref name="group"/> (a server would be none).</summary>
    public static string? MemberOf(GroupResponse group, string? subject) =>
        group.Members.FirstOrDefault(m => m.Subject == subject && m.Status != "removed")?.Id;

    /// <summary>The product's own computation of an expense, without saving it.</summary>
    public static SplitResult<ComputedExpense> Compute(ExpenseInput input, string expenseId, GroupResponse group, string? subject, TimeProvider time) =>
        SplitModes.Compute(input, expenseId, group.Currency, group.Members.Where(m => m.Status == "active").Select(m => m.Id).ToList(),
            group.Members.Where(m => m.Status != "removed").Select(m => m.Id).ToHashSet(StringComparer.Ordinal), MemberOf(group, subject),
            DateOnly.FromDateTime(time.GetUtcNow().UtcDateTime));

    /// <summary><c>POST /app/split/{id}/preview</c> with the add-expense form: the shares it would give. Posted with the
    /// form's antiforgery token, checked here (it reads the form itself).</summary>
    static async Task<IResult> PreviewAsync(string id, HttpContext http, SplitBills splits, IAntiforgery antiforgery, WebText text, TimeProvider time)
    {
        if (!await antiforgery.IsRequestValidAsync(http)) return Neraca.Hosting.Problems.Of(400, "antiforgery_failed", "Bad request", "Reload the page.");
        if (!http.Request.HasFormContentType) return Neraca.Hosting.Problems.Of(415, "unsupported_media_type", "Unsupported media type", "Send the form.");
        var form = await http.Request.ReadFormAsync(http.RequestAborted);
        var found = await splits.GetGroupAsync(Caller(http), id, http.RequestAborted);
        if (found.Error is { } missing) return Neraca.Hosting.Problems.Of(missing.Status, missing.Code, "Not found", missing.Detail);
        var g = found.Value!;
        var expenseId = form["expense_id"].ToString();
        if (!ExpenseForm.IsExpenseId(expenseId)) return Neraca.Hosting.Problems.Validation("expense_id", "Reload the page.");
        var read = ExpenseForm.Read(form, g);
        if (read.Problem is { } invalid) return Results.Json(Answer(text, invalid), Json);
        var computed = Compute(read.Input!, expenseId, g, http.User.FindFirstValue(NeracaClaims.Subject), time);
        if (computed.Error is { } e) return Results.Json(Answer(text, ExpenseForm.Problem(e)), Json);
        var c = computed.Value!;
        var scale = Currencies.Scale(g.Currency);
        var names = g.Members.ToDictionary(m => m.Id, m => m.Name, StringComparer.Ordinal);
        return Results.Json(new PreviewResponse(true, text.Money(c.GroupAmount, g.Currency, scale),
            c.Rows.Select(r => new PreviewShare(r.Key, names.GetValueOrDefault(r.Key, r.Key), text.Money(r.Value.Owed, g.Currency, scale)))
                .ToList(), null), Json);
    }

    static readonly System.Text.Json.JsonSerializerOptions Json = new(System.Text.Json.JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower,
    };

    static PreviewResponse Answer(WebText text, WebProblem problem) =>
        new(false, null, [], new PreviewProblem(problem.Code, text.Has($"problem.{problem.Code}") ? text[$"problem.{problem.Code}"] : text["problem.generic"], problem.Detail));

    /// <summary><c>POST .../expenses/{expense}/receipt</c>, multipart field <c>file</c>: stored, processed in the
    /// background, then back to the group page (303) saying so, or naming the problem.</summary>
    static async Task<IResult> UploadReceiptAsync(string id, string expense, HttpContext http, SplitBills splits, IAntiforgery antiforgery)
    {
        var back = $"/app/split/{Uri.EscapeDataString(id)}";
        if (!await antiforgery.IsRequestValidAsync(http)) return Neraca.Hosting.Problems.Of(400, "antiforgery_failed", "Bad request", "Reload the page.");
        string? problem;
        if (!http.Request.HasFormContentType) problem = "unsupported_media_type";
        else
        {
            var form = await http.Request.ReadFormAsync(http.RequestAborted);
            if (form.Files.GetFile("file") is not { Length: > 0 } file) problem = "receipt_missing";
            else
            {
                await using var body = file.OpenReadStream();
                var r = await splits.UploadReceiptAsync(Caller(http), id, expense, body, http.RequestAborted);
                problem = r.Error?.Code;
                if (r.Error is { Code: "group_not_found" or "expense_not_found" } e)
                    return Neraca.Hosting.Problems.Of(e.Status, e.Code, "Not found", e.Detail);
            }
        }
        var query = problem is null ? $"receipt={Uri.EscapeDataString(expense)}" : $"receipt_problem={Uri.EscapeDataString(problem)}";
        return Results.Redirect($"{back}?{query}#expense-{Uri.EscapeDataString(expense)}", permanent: false, preserveMethod: false);
    }

    /// <summary>The cleaned receipt or <c>?size=thumb</c>, as the API serves it: strong ETag, private caching, 304.</summary>
    static async Task<IResult> ReceiptAsync(string id, string expense, string? size, HttpContext http, SplitBills splits)
    {
        var r = await splits.GetReceiptAsync(Caller(http), id, expense, size == "thumb", http.RequestAborted);
        if (r.Error is { } e) return Neraca.Hosting.Problems.Of(e.Status, e.Code, "Receipt", e.Detail);
        var file = r.Value!;
        http.Response.Headers.ETag = file.ETag;
        http.Response.Headers.CacheControl = "private, max-age=300";
        if (http.Request.GetTypedHeaders().IfNoneMatch.Any(t => t.Equals(EntityTagHeaderValue.Any) || t.Tag.Value == file.ETag)) return Results.StatusCode(304);
        var stream = splits.OpenReceipt(file);
        return stream is null ? Neraca.Hosting.Problems.NotFound("receipt_not_found", "The receipt's file is missing from the store.") : Results.Stream(stream, file.ContentType);
    }
}
