using System.Security.Claims;
using Microsoft.Extensions.Options;
using Neraca.Banking;
using Neraca.Tenancy;
using Neraca.Web.Components;
using Neraca.Web.Sessions;

namespace Neraca.Web.Views.Customer;

/// <summary>The banking caller for a signed-in end user (the audit log's <c>user:{subject}</c>) and how its errors show.</summary>
public static class BankCallers
{
    public static BankCaller Of(string tenantId, string subject) => new(tenantId, subject, "user:" + subject);

    public static WebProblem Problem(BankError e) => new(e.Code, e.Errors is { Count: > 0 } fields
        ? e.Detail + " " + string.Join(" ", fields.Select(f => $"{f.Key}: {string.Join(" ", f.Value)}"))
        : e.Detail);

    /// <summary>Decimals of a banking currency (the product's configuration; 2 when it names none).</summary>
    public static int Scale(BankingOptions options, string currency) => options.Currencies.GetValueOrDefault(currency)?.Scale ?? 2;
}

/// <summary><c>GET /app/banking/accounts/{id}/statements/{sid}.pdf|.csv|.xml</c>: a ready statement's file for its owner,
/// served exactly as the API serves it (the stored bytes checked against their SHA-256 on the way, strong ETag,
/// immutable private caching, attachment).</summary>
public static class CustomerEndpoints
{
    public static IEndpointRouteBuilder MapCustomerViews(this IEndpointRouteBuilder app)
    {
        app.MapGet("/app/banking/accounts/{id}/statements/{file}", StatementFileAsync).RequireAuthorization(WebPolicies.User).ExcludeFromDescription();
        return app;
    }

    static async Task<IResult> StatementFileAsync(string id, string file, HttpContext http, Neraca.Banking.Statements.Statements statements,
        IOptions<BankingOptions> options)
    {
        var dot = file.LastIndexOf('.');
        var format = dot > 0 ? file[(dot + 1)..] : "";
        if (!Neraca.Banking.Statements.Statements.MediaTypes.ContainsKey(format) || format == "json")
            return Neraca.Hosting.Problems.NotFound(BankingCodes.StatementNotFound, "Statements are files ending in .pdf, .csv or .xml.");
        if (!WebAuth.HasScope(http.User, Scopes.BankingRead))
            return Neraca.Hosting.Problems.Of(403, "insufficient_scope", "Forbidden", "This session may not read banking statements.");
        var tenantId = http.User.FindFirstValue(NeracaClaims.TenantId)!;
        var caller = BankCallers.Of(tenantId, http.User.FindFirstValue(NeracaClaims.Subject)!);
        var statement = await statements.GetForCallerAsync(caller, id, file[..dot], http.RequestAborted);
        if (!statement.Succeeded) return Neraca.Hosting.Problems.Of(statement.Error!.Status, statement.Error.Code, "Not found", statement.Error.Detail);
        if (statement.Value!.Status != "ready")
        {
            http.Response.Headers.RetryAfter = "2";
            return Neraca.Hosting.Problems.Of(409, BankingCodes.StatementNotReady, "Statement not ready", "The statement is still being rendered.");
        }
        var stored = await statements.FindFileAsync(tenantId, statement.Value.Id, format, http.RequestAborted)
            ?? throw new InvalidOperationException($"Statement {statement.Value.Id} is ready without its {format} file.");
        return new StatementFileResult(statements, tenantId, stored, options.Value.StatementMaxAgeSeconds, varyByAccept: false);
    }
}
