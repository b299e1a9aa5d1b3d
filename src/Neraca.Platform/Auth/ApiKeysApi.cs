using Microsoft.AspNetCore.Http.HttpResults;
using Neraca.Hosting;
using Neraca.Tenancy;

namespace Neraca.Auth;

public sealed record CreateApiKeyRequest(string? Name, string[]? Scopes, DateTimeOffset? ExpiresAt);

public sealed record RotateApiKeyRequest(int? OverlapSeconds);

public sealed record ApiKeyResponse(string Id, string Name, string Prefix, IReadOnlyList<string> Scopes, string Status,
    DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt, DateTimeOffset? RevokedAt);

/// <summary>The new key is in <c>key</c>, shown this once.</summary>
public sealed record CreatedApiKeyResponse(string Id, string Name, string Prefix, IReadOnlyList<string> Scopes, string Status,
    DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt, string Key, ApiKeyResponse? Replaces = null);

public sealed record ApiKeyPage(IReadOnlyList<ApiKeyResponse> Data, string? NextCursor);

/// <summary><c>/v1/api-keys</c>: scoped keys for a tenant's servers (admin scope).</summary>
public static class ApiKeysApi
{
    public const int NameLengthMax = 100;
    /// <summary>Longest overlap of a rotation: 30 days.</summary>
    public const int OverlapSecondsMax = 30 * 24 * 3600;
    public const int OverlapSecondsDefault = 3600;

    public static RouteGroupBuilder MapApiKeysApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/api-keys").RequireAuthorization(Scopes.Admin).WithTags("API keys");
        group.MapPost("/", CreateAsync).WithSecretResponse("key");
        group.MapGet("/", ListAsync);
        group.MapGet("/{id}", GetAsync);
        group.MapPost("/{id}/revoke", RevokeAsync);
        group.MapPost("/{id}/rotate", RotateAsync).WithSecretResponse("key");
        return group;
    }

    static async Task<Results<Created<CreatedApiKeyResponse>, ValidationProblem>> CreateAsync(CreateApiKeyRequest request,
        ApiKeyStore store, CurrentTenant tenant, TimeProvider clock, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        if (string.IsNullOrWhiteSpace(request.Name) || request.Name.Length > NameLengthMax)
            errors["name"] = [$"Required, 1-{NameLengthMax} characters."];
        if (request.Scopes is not { Length: > 0 } || request.Scopes.Any(s => !Scopes.All.Contains(s)))
            errors["scopes"] = ["Required: one or more of " + string.Join(", ", Scopes.All) + "."];
        if (request.ExpiresAt is { } e && e <= clock.GetUtcNow())
            errors["expires_at"] = ["Must be in the future."];
        if (errors.Count > 0) return Problems.Validation(errors);

        var (info, key) = await store.CreateAsync(tenant.Id, request.Name!.Trim(), request.Scopes!.Distinct().ToList(), request.ExpiresAt?.ToUniversalTime(), ct);
        return TypedResults.Created($"/v1/api-keys/{info.Id}", Created(info, key, null, clock.GetUtcNow()));
    }

    static async Task<Results<Ok<ApiKeyPage>, ValidationProblem>> ListAsync(ApiKeyStore store, CurrentTenant tenant, TimeProvider clock,
        int? limit, string? after, CancellationToken ct)
    {
        var take = limit ?? 50;
        if (take is < 1 or > ApiKeyStore.PageSizeMax) return Problems.Validation("limit", $"Between 1 and {ApiKeyStore.PageSizeMax}.");
        if (!string.IsNullOrEmpty(after) && (!after.StartsWith("key_", StringComparison.Ordinal) || !Storage.Ids.IsValid(after))) return Problems.InvalidCursor();
        var (page, next) = await store.ListAsync(tenant.Id, take, string.IsNullOrEmpty(after) ? null : after, ct);
        var now = clock.GetUtcNow();
        return TypedResults.Ok(new ApiKeyPage(page.Select(k => Response(k, now)).ToList(), next));
    }

    static async Task<Results<Ok<ApiKeyResponse>, ProblemHttpResult>> GetAsync(string id, ApiKeyStore store, CurrentTenant tenant,
        TimeProvider clock, CancellationToken ct) =>
        await store.GetAsync(tenant.Id, id, ct) is { } info ? TypedResults.Ok(Response(info, clock.GetUtcNow())) : NotFound(id);

    static async Task<Results<Ok<ApiKeyResponse>, ProblemHttpResult>> RevokeAsync(string id, ApiKeyStore store, CurrentTenant tenant,
        TimeProvider clock, CancellationToken ct) =>
        await store.RevokeAsync(tenant.Id, id, ct) is { } info ? TypedResults.Ok(Response(info, clock.GetUtcNow())) : NotFound(id);

    static async Task<Results<Created<CreatedApiKeyResponse>, ProblemHttpResult, ValidationProblem>> RotateAsync(string id,
        RotateApiKeyRequest? request, ApiKeyStore store, CurrentTenant tenant, TimeProvider clock, CancellationToken ct)
    {
        var overlap = request?.OverlapSeconds ?? OverlapSecondsDefault;
        if (overlap is < 0 or > OverlapSecondsMax) return Problems.Validation("overlap_seconds", $"Between 0 and {OverlapSecondsMax}.");
        var existing = await store.GetAsync(tenant.Id, id, ct);
        if (existing is null) return NotFound(id);
        if (existing.Status(clock.GetUtcNow()) != "active")
            return Problems.Of(409, "api_key_inactive", "Key not active", $"API key '{id}' is {existing.Status(clock.GetUtcNow())}; create a new one instead.");
        var rotated = await store.RotateAsync(tenant.Id, id, TimeSpan.FromSeconds(overlap), ct);
        if (rotated is not { } r) return NotFound(id);
        var now = clock.GetUtcNow();
        return TypedResults.Created($"/v1/api-keys/{r.Info.Id}", Created(r.Info, r.Key, Response(r.Old, now), now));
    }

    static ProblemHttpResult NotFound(string id) => Problems.NotFound("api_key_not_found", $"No API key '{id}'.");

    static ApiKeyResponse Response(ApiKeyInfo k, DateTimeOffset now) =>
        new(k.Id, k.Name, k.Prefix, k.Scopes, k.Status(now), k.CreatedAt, k.ExpiresAt, k.RevokedAt);

    static CreatedApiKeyResponse Created(ApiKeyInfo k, string key, ApiKeyResponse? replaces, DateTimeOffset now) =>
        new(k.Id, k.Name, k.Prefix, k.Scopes, k.Status(now), k.CreatedAt, k.ExpiresAt, key, replaces);
}
