using System.Security.Cryptography;
using System.Text;
using Dapper;
using Microsoft.AspNetCore.Http.HttpResults;
using Neraca.Auth;
using Neraca.Hosting;
using Neraca.Storage;
using Neraca.Tenancy;

namespace Neraca.Web.Sessions;

/// <summary>A code a tenant's backend got for one of its end users.</summary>
public sealed record SignInCodeResponse(string Code, string Url, string Subject, string[] Scopes, DateTimeOffset ExpiresAt);

public sealed record CreateSignInCodeRequest(string? Subject, string[]? Scopes);

/// <summary>What redeeming a code gave: the session of <paramref name="Subject"/> of <paramref name="TenantId"/>.</summary>
public sealed record RedeemedSignIn(string TenantId, string Subject, TokenPair Tokens);

/// <summary>One-time sign-in codes: how a product's backend hands an end user to the web app. The backend (admin key)
/// creates a code for a subject and sends the user its link (<c>/app/sign-in?code=...</c>) the way it already reaches
/// them; the web app redeems the code once, starts an end-user token session and keeps it in an HttpOnly cookie. Codes
/// are stored as SHA-256, live <see cref="LifetimeSeconds"/> and work once, on any replica.</summary>
public sealed class SignInCodes(Database database, TokenService tokens, TimeProvider clock)
{
    public const string Prefix = "nsc_";
    const int RandomLength = 40;
    public const int LifetimeSeconds = 300;
    /// <summary>Redeemed and expired codes older than this are deleted when the tenant creates a new one.</summary>
    static readonly TimeSpan KeepExpired = TimeSpan.FromDays(1);

    public async Task<SignInCodeResponse> CreateAsync(string tenantId, string subject, IReadOnlyList<string> scopes, CancellationToken ct)
    {
        var code = SecretToken.New(Prefix, RandomLength);
        var now = clock.GetUtcNow();
        var expires = now.AddSeconds(LifetimeSeconds);
        await using var connection = await database.OpenAsync(ct);
        await connection.ExecuteAsync(new CommandDefinition(
            "DELETE FROM web_sign_in_codes WHERE tenant_id = @tenantId AND expires_at_us < @before",
            new { tenantId, before = DbTime.ToMicros(now - KeepExpired) }, cancellationToken: ct));
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO web_sign_in_codes (code_hash, tenant_id, subject, scopes, created_at_us, expires_at_us)
            VALUES (@hash, @tenantId, @subject, @scopes, @now, @expires)
            """, new { hash = Hash(code), tenantId, subject, scopes = string.Join(' ', scopes), now = DbTime.ToMicros(now),
                       expires = DbTime.ToMicros(expires) }, cancellationToken: ct));
        return new SignInCodeResponse(code, "/app/sign-in?code=" + code, subject, [.. scopes], expires);
    }

    /// <summary>Marks the code used and starts the subject's session; null when the code is unknown, used or expired
    /// (one statement marks it, so two replicas given the same code cannot both redeem it).</summary>
    public async Task<RedeemedSignIn?> RedeemAsync(string? code, CancellationToken ct)
    {
        if (!IsWellFormed(code)) return null;
        Row? row;
        await using (var connection = await database.OpenAsync(ct))
        {
            row = await connection.QuerySingleOrDefaultAsync<Row>(new CommandDefinition("""
                UPDATE web_sign_in_codes SET used_at_us = @now
                WHERE code_hash = @hash AND used_at_us IS NULL AND expires_at_us > @now
                RETURNING tenant_id, subject, scopes
                """, new { hash = Hash(code!), now = DbTime.ToMicros(clock.GetUtcNow()) }, cancellationToken: ct));
        }
        if (row is null) return null;
        var pair = await tokens.IssueAsync(row.tenant_id, row.subject, row.scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries), ct);
        return new RedeemedSignIn(row.tenant_id, row.subject, pair);
    }

    public static bool IsWellFormed(string? code) =>
        code is { Length: < 100 } && code.StartsWith(Prefix, StringComparison.Ordinal) && code.Length == Prefix.Length + RandomLength
        && code.AsSpan(Prefix.Length).IndexOfAnyExcept(SecretToken.Alphabet) < 0;

    static byte[] Hash(string code) => SHA256.HashData(Encoding.UTF8.GetBytes(code));

#pragma warning disable IDE1006 // Dapper maps snake_case columns onto these names.
    sealed class Row
    {
        public string tenant_id { get; set; } = "";
        public string subject { get; set; } = "";
        public string scopes { get; set; } = "";
    }
#pragma warning restore IDE1006
}

/// <summary><c>POST /v1/web/sign-in-codes</c> (admin): the API side of <see cref="SignInCodes"/>.</summary>
public static class SignInCodesApi
{
    public static IEndpointRouteBuilder MapSignInCodesApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/web").RequireAuthorization(Scopes.Admin).WithTags("Web");
        group.MapPost("/sign-in-codes", CreateAsync).WithSecretResponse("code", "url");
        return app;
    }

    static async Task<Results<Created<SignInCodeResponse>, ValidationProblem>> CreateAsync(CreateSignInCodeRequest request,
        SignInCodes codes, CurrentCaller caller, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        if (string.IsNullOrWhiteSpace(request.Subject) || request.Subject.Length > TokenService.SubjectLengthMax)
            errors["subject"] = [$"Required, 1-{TokenService.SubjectLengthMax} characters: the end user's id in your system."];
        var scopes = request.Scopes ?? [Scopes.LedgerRead];
        if (scopes.Length == 0 || scopes.Any(s => !Scopes.EndUser.Contains(s)))
            errors["scopes"] = ["One or more of " + string.Join(", ", Scopes.EndUser) + " (end users never get admin, audit:read, events:read or webhooks:write)."];
        if (errors.Count > 0) return Problems.Validation(errors);
        var created = await codes.CreateAsync(caller.TenantId, request.Subject!, scopes.Distinct().ToList(), ct);
        return TypedResults.Created((string?)null, created);
    }
}
