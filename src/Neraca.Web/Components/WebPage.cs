using System.Security.Claims;
using Microsoft.AspNetCore.Components;
using Neraca.Ledger;
using Neraca.Tenancy;
using Neraca.Web.Sessions;
using Neraca.Web.Text;

namespace Neraca.Web.Components;

/// <summary>An error as the API would answer it: its stable <c>code</c> and human <c>detail</c> (problem details).</summary>
public sealed record WebProblem(string Code, string? Detail)
{
    public static WebProblem From(LedgerError error) => new(error.Code, error.Detail);
}

/// <summary>Base of every page: the request, its texts, who is signed in, and problem handling. The caller's tenant
/// and subject come from the session (never from the URL), so another tenant's id in a URL is simply not found.</summary>
public abstract class WebPage : ComponentBase
{
    /// <summary>The request (static server rendering: always there).</summary>
    [CascadingParameter] public HttpContext HttpContext { get; set; } = default!;

    [Inject] public WebText T { get; set; } = default!;

    protected ClaimsPrincipal User => HttpContext.User;

    /// <summary>The signed-in caller's tenant: what every in-process call is made for.</summary>
    protected string TenantId => User.FindFirstValue(NeracaClaims.TenantId) ?? throw new InvalidOperationException("No signed-in caller.");

    /// <summary>The end user's subject; null for an operator.</summary>
    protected string? Subject => User.FindFirstValue(NeracaClaims.Subject);

    /// <summary>Whether the caller holds <paramref name="scope"/> (or admin), as the API's policies decide.</summary>
    protected bool Can(string scope) => WebAuth.HasScope(User, scope);

    protected CancellationToken Aborted => HttpContext.RequestAborted;

    /// <summary>The problem to show instead of (or above) the page's content.</summary>
    protected WebProblem? Problem { get; private set; }

    /// <summary>Shows <paramref name="problem"/> and answers with <paramref name="status"/>, as the API would.</summary>
    protected void Fail(WebProblem problem, int status)
    {
        Problem = problem;
        SetStatus(status);
    }

    int? _status;

    /// <summary>Answers with <paramref name="status"/>. Set as the headers go out: a 404 (or other error) status set
    /// while rendering would make the renderer leave the body to the status-code pages, and this page is the body.</summary>
    protected void SetStatus(int status)
    {
        if (_status is null && !HttpContext.Response.HasStarted)
            HttpContext.Response.OnStarting(() =>
            {
                HttpContext.Response.StatusCode = _status!.Value;
                return Task.CompletedTask;
            });
        _status = status;
    }

    protected void Fail(LedgerError error) => Fail(WebProblem.From(error), error.Kind switch
    {
        LedgerErrorKind.NotFound => StatusCodes.Status404NotFound,
        LedgerErrorKind.Conflict => StatusCodes.Status409Conflict,
        LedgerErrorKind.Unprocessable => StatusCodes.Status422UnprocessableEntity,
        LedgerErrorKind.Forbidden => StatusCodes.Status403Forbidden,
        _ => StatusCodes.Status400BadRequest,
    });

    /// <summary>A problem shown with the page (the result of a form), without changing the page's status.</summary>
    protected void Notice(WebProblem problem) => Problem = problem;

    /// <summary>A query value, for GET forms and cursors.</summary>
    protected string? Query(string name) => HttpContext.Request.Query[name].FirstOrDefault() is { Length: > 0 } v ? v : null;
}

/// <summary>Puts a page in the navigation of its area (<c>operator</c> or <c>app</c>), labelled by a text key, shown
/// only to callers holding <see cref="Scope"/> when it is set. A new view adds its pages with this attribute and
/// appears in the menu; nothing else lists pages.</summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class WebNavAttribute(string area, string textKey, int order) : Attribute
{
    public const string OperatorArea = "operator";
    public const string AppArea = "app";

    public string Area { get; } = area;
    public string TextKey { get; } = textKey;
    public int Order { get; } = order;
    public string? Scope { get; init; }
}
