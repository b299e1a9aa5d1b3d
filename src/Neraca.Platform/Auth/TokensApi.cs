using Microsoft.AspNetCore.Http.HttpResults;
using Neraca.Hosting;
using Neraca.Tenancy;

namespace Neraca.Auth;

public sealed record IssueTokenRequest(string? Subject, string[]? Scopes);

public sealed record RefreshTokenRequest(string? GrantType, string? RefreshToken);

public sealed record RevokeTokenRequest(string? Token);

public sealed record RevokedSessions(int Revoked);

/// <summary>The built-in token endpoint for a tenant's end users. A tenant's server (admin key) starts a session for
/// one of its users; the user's app refreshes (rotating the refresh token) and revokes without a key.</summary>
public static class TokensApi
{
    public static IEndpointRouteBuilder MapTokensApi(this IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/v1/auth").RequireAuthorization(Scopes.Admin).WithTags("Auth");
        admin.MapPost("/tokens", IssueAsync).WithSecretResponse("access_token", "refresh_token");
        admin.MapPost("/subjects/{subject}/revoke", RevokeSubjectAsync);
        // Called by end-user apps holding only a refresh token: anonymous, limited per IP.
        var open = app.MapGroup("/v1/auth").AllowAnonymous().WithTags("Auth");
        open.MapPost("/token", RefreshAsync).WithSecretResponse("access_token", "refresh_token");
        open.MapPost("/revoke", RevokeAsync);
        return app;
    }

    static async Task<Results<Created<TokenPair>, ValidationProblem>> IssueAsync(IssueTokenRequest request, TokenService tokens,
        CurrentTenant tenant, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        if (string.IsNullOrWhiteSpace(request.Subject) || request.Subject.Length > TokenService.SubjectLengthMax)
            errors["subject"] = [$"Required, 1-{TokenService.SubjectLengthMax} characters: the end user's id in your system."];
        var scopes = request.Scopes ?? [Scopes.LedgerRead];
        var allowed = Scopes.EndUser;
        if (scopes.Length == 0 || scopes.Any(s => !allowed.Contains(s)))
            errors["scopes"] = ["One or more of " + string.Join(", ", allowed) + " (end users never get admin, audit:read, events:read or webhooks:write: those reach the whole tenant)."];
        if (errors.Count > 0) return Problems.Validation(errors);
        var pair = await tokens.IssueAsync(tenant.Id, request.Subject!, scopes.Distinct().ToList(), ct);
        return TypedResults.Created((string?)null, pair);
    }

    static async Task<Results<Ok<TokenPair>, ProblemHttpResult, ValidationProblem>> RefreshAsync(RefreshTokenRequest request,
        TokenService tokens, CancellationToken ct)
    {
        if (request.GrantType != "refresh_token") return Problems.Validation("grant_type", "Must be 'refresh_token'.");
        if (string.IsNullOrEmpty(request.RefreshToken)) return Problems.Validation("refresh_token", "Required.");
        var (outcome, pair) = await tokens.RefreshAsync(request.RefreshToken, ct);
        return outcome switch
        {
            RefreshOutcome.Issued => TypedResults.Ok(pair!),
            RefreshOutcome.Reused => Problems.Of(400, "invalid_grant", "Invalid grant",
                "This refresh token was already used; its session has been revoked. Sign in again."),
            _ => Problems.Of(400, "invalid_grant", "Invalid grant", "The refresh token is unknown, expired or revoked."),
        };
    }

    static async Task<Results<NoContent, ValidationProblem>> RevokeAsync(RevokeTokenRequest request, TokenService tokens, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(request.Token)) return Problems.Validation("token", "Required: the refresh token to revoke.");
        await tokens.RevokeAsync(request.Token, ct);
        return TypedResults.NoContent();
    }

    static async Task<Results<Ok<RevokedSessions>, ValidationProblem>> RevokeSubjectAsync(string subject, TokenService tokens,
        CurrentTenant tenant, CancellationToken ct)
    {
        if (subject.Length is 0 or > TokenService.SubjectLengthMax) return Problems.Validation("subject", "1-200 characters.");
        return TypedResults.Ok(new RevokedSessions(await tokens.RevokeSubjectAsync(tenant.Id, subject, ct)));
    }
}
