using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dapper;
using Microsoft.Extensions.Options;
using Neraca.Auth;
using Neraca.Hosting;
using Neraca.Storage;
using Neraca.Tenancy;

namespace Neraca.Idempotency;

/// <summary>Settings of <c>Idempotency-Key</c> handling (section <c>Idempotency</c>).</summary>
public sealed class IdempotencyOptions
{
    /// <summary>How long a completed response is replayed for a repeated key, in hours. Default 24.</summary>
    [Range(1, 24 * 365)]
    public int RetentionHours { get; set; } = 24;

    /// <summary>After this many seconds an in-flight record is presumed abandoned (its process died) and a retry may
    /// take it over. Default 60.</summary>
    [Range(1, 3600)]
    public int InFlightLeaseSeconds { get; set; } = 60;

    public const int KeyLengthMax = 255;
}

/// <summary>The IETF httpapi Idempotency-Key draft for every POST under /v1: the first request with a key runs and its
/// response is stored with a fingerprint of the request; a repeat with the same body gets that response replayed
/// (<c>Idempotent-Replayed: true</c>), a repeat with another body gets 422 <c>idempotency_key_reused</c>, and a repeat
/// while the first still runs gets 409 <c>idempotency_key_in_use</c>. Ledger handlers also derive missing ids from
/// the key, so even a crash between commit and storing the response cannot post twice.</summary>
/// <remarks>Keys are scoped per caller (the API key, or the end user's subject), not per tenant: two callers of one
/// tenant never see each other's responses. Responses that carry a secret (<see cref="SecretResponse"/>) are stored
/// without it and a repeat gets 409 <c>idempotent_replay_unavailable</c> naming the resource: the secret is never
/// persisted in clear.</remarks>
public sealed class IdempotencyMiddleware(RequestDelegate next, Database database, IOptions<IdempotencyOptions> options, TimeProvider clock)
{
    const short InFlight = 1;
    const short Completed = 2;
    static readonly string[] ReplayedHeaders = ["Content-Type", "Location"];
    static readonly object ForgetItem = new();

    /// <summary>Marks the response as a refusal of a passing state (a cycle being closed, a race with a settings change)
    /// that the client should retry with the same key: the key is forgotten, as after a 5xx, instead of replaying the
    /// refusal forever. Only for refusals that changed nothing.</summary>
    public static void ForgetKeyAfter(HttpContext context) => context.Items[ForgetItem] = true;

    public async Task InvokeAsync(HttpContext context)
    {
        var key = context.Request.Headers["Idempotency-Key"].ToString();
        if (key.Length is 0 or > IdempotencyOptions.KeyLengthMax || key.AsSpan().IndexOfAnyExceptInRange(' ', '~') >= 0)
        {
            await Problems.Validation("Idempotency-Key", $"1-{IdempotencyOptions.KeyLengthMax} printable ASCII characters.").ExecuteAsync(context);
            return;
        }
        var tenantId = context.RequestServices.GetRequiredService<CurrentTenant>().Id;
        key = CallerScoped(context.User, key);
        var fingerprint = await FingerprintAsync(context);
        var ct = context.RequestAborted;
        var nowUs = DbTime.ToMicros(clock.GetUtcNow());

        bool run;
        await using (var connection = await database.OpenAsync(ct))
            run = await ClaimAsync(context, connection, tenantId, key, fingerprint, nowUs, ct);
        if (run) await RunAndStoreAsync(context, tenantId, key);
    }

    /// <summary>True when this request owns the key and should run; otherwise the response has been written.</summary>
    async Task<bool> ClaimAsync(HttpContext context, System.Data.Common.DbConnection connection, string tenantId, string key, byte[] fingerprint, long nowUs, CancellationToken ct)
    {
        for (var attempt = 0; attempt < 3; attempt++)
        {
            if (await TryInsertAsync(connection, tenantId, key, fingerprint, nowUs, ct)) return true;
            var row = await ReadAsync(connection, tenantId, key, ct);
            if (row is null) continue; // the first request gave the key up (it failed): claim it again
            if (row.expires_at_us >= nowUs) return await ShouldRunAsync(context, connection, row, tenantId, key, fingerprint, nowUs);
            // Past its retention the record is dead: the key may be used again.
            await connection.ExecuteAsync(new CommandDefinition(
                "DELETE FROM idempotency_keys WHERE tenant_id = @tenantId AND key = @key AND expires_at_us < @nowUs", new { tenantId, key, nowUs }, cancellationToken: ct));
        }
        await InUseAsync(context);
        return false;
    }

    async Task<bool> TryInsertAsync(System.Data.Common.DbConnection connection, string tenantId, string key, byte[] fingerprint, long nowUs, CancellationToken ct) =>
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO idempotency_keys (tenant_id, key, fingerprint, state, created_at_us, expires_at_us)
            VALUES (@tenantId, @key, @fingerprint, @InFlight, @nowUs, @expires) ON CONFLICT (tenant_id, key) DO NOTHING
            """, new { tenantId, key, fingerprint, InFlight, nowUs, expires = nowUs + options.Value.RetentionHours * 3_600_000_000L }, cancellationToken: ct)) == 1;

    static Task<Row?> ReadAsync(System.Data.Common.DbConnection connection, string tenantId, string key, CancellationToken ct) =>
        connection.QuerySingleOrDefaultAsync<Row>(new CommandDefinition("""
            SELECT fingerprint, state, status_code, response_body, response_headers, created_at_us, expires_at_us FROM idempotency_keys
            WHERE tenant_id = @tenantId AND key = @key
            """, new { tenantId, key }, cancellationToken: ct));

    /// <summary>Answers a repeated key; true when the request should run after all (an abandoned in-flight record taken over).</summary>
    async Task<bool> ShouldRunAsync(HttpContext context, System.Data.Common.DbConnection connection, Row row, string tenantId, string key, byte[] fingerprint, long nowUs)
    {
        if (!row.fingerprint.AsSpan().SequenceEqual(fingerprint))
        {
            await Problems.Of(422, "idempotency_key_reused", "Idempotency key reused",
                "This Idempotency-Key was used with a different request; use a new key for a new request.").ExecuteAsync(context);
            return false;
        }
        if (row.state == Completed && context.GetEndpoint()?.Metadata.GetMetadata<SecretResponse>() is not null && row.status_code is < 300)
        {
            await SecretNotReplayedAsync(context, row);
            return false;
        }
        if (row.state == Completed)
        {
            context.Response.StatusCode = row.status_code ?? 200;
            foreach (var line in (row.response_headers ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                var colon = line.IndexOf(':', StringComparison.Ordinal);
                context.Response.Headers[line[..colon]] = line[(colon + 1)..];
            }
            context.Response.Headers["Idempotent-Replayed"] = "true";
            if (row.response_body is { Length: > 0 } body) await context.Response.Body.WriteAsync(body, context.RequestAborted);
            return false;
        }
        var leaseUs = options.Value.InFlightLeaseSeconds * 1_000_000L;
        if (row.created_at_us + leaseUs < nowUs)
        {
            // The first attempt's process died mid-request. Take the record over (compare-and-set on its start time).
            var taken = await connection.ExecuteAsync(new CommandDefinition(
                "UPDATE idempotency_keys SET created_at_us = @nowUs WHERE tenant_id = @tenantId AND key = @key AND state = @InFlight AND created_at_us = @old",
                new { nowUs, tenantId, key, InFlight, old = row.created_at_us }, cancellationToken: context.RequestAborted));
            if (taken == 1) return true;
        }
        await InUseAsync(context);
        return false;
    }

    /// <summary>The first request created something whose secret was shown once; say where it is instead of replaying.</summary>
    static async Task SecretNotReplayedAsync(HttpContext context, Row row)
    {
        var extra = new Dictionary<string, object?>();
        foreach (var line in (row.response_headers ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries))
            if (line.StartsWith("Location:", StringComparison.Ordinal)) extra["location"] = line["Location:".Length..];
        if (row.response_body is { Length: > 0 } body)
        {
            try { extra["original"] = JsonNode.Parse(body); }
            catch (JsonException) { /* not JSON: nothing to show */ }
        }
        await Problems.Of(409, "idempotent_replay_unavailable", "Response not replayable",
            "A request with this Idempotency-Key succeeded already. Its response carried a secret that is shown only once and is never stored, " +
            "so it cannot be replayed: use the resource it created (see location) and rotate or revoke its secret if the first response was lost.",
            extra).ExecuteAsync(context);
    }

    /// <summary>The stored key: the caller's identity and the client's key, length-prefixed so no two pairs collide.</summary>
    public static string CallerScoped(ClaimsPrincipal user, string key)
    {
        var caller = user.FindFirstValue(NeracaClaims.KeyId) is { } keyId ? "key:" + keyId
            : user.FindFirstValue(EndUserClaims.Subject) is { } subject ? "sub:" + subject
            : "tenant";
        return string.Create(CultureInfo.InvariantCulture, $"{caller.Length}:{caller}{key}");
    }

    /// <summary>The body with the secret fields removed (top-level JSON members), or nothing when it is not a JSON object.</summary>
    static byte[] WithoutSecrets(byte[] body, SecretResponse secrets)
    {
        try
        {
            if (JsonNode.Parse(body) is not JsonObject json) return [];
            foreach (var field in secrets.Fields) json.Remove(field);
            return JsonSerializer.SerializeToUtf8Bytes(json);
        }
        catch (JsonException)
        {
            return [];
        }
    }

    static async Task InUseAsync(HttpContext context)
    {
        context.Response.Headers.RetryAfter = "1";
        await Problems.Of(409, "idempotency_key_in_use", "Idempotency key in use",
            "A request with this Idempotency-Key is still being processed; retry later.").ExecuteAsync(context);
    }

    async Task RunAndStoreAsync(HttpContext context, string tenantId, string key)
    {
        var original = context.Response.Body;
        using var buffer = new MemoryStream();
        context.Response.Body = buffer;
        try
        {
            await next(context);
        }
        catch
        {
            context.Response.Body = original;
            await ForgetAsync(tenantId, key);
            throw;
        }
        context.Response.Body = original;
        var status = context.Response.StatusCode;
        if (status >= 500 || status == 429 || context.Items.ContainsKey(ForgetItem))
        {
            await ForgetAsync(tenantId, key); // nothing durable happened: let the client retry with the same key
        }
        else
        {
            var headers = string.Join('\n', ReplayedHeaders
                .Where(h => context.Response.Headers.ContainsKey(h))
                .Select(h => $"{h}:{context.Response.Headers[h]}"));
            var body = buffer.ToArray();
            if (context.GetEndpoint()?.Metadata.GetMetadata<SecretResponse>() is { } secrets) body = WithoutSecrets(body, secrets);
            await using var connection = await database.OpenAsync(CancellationToken.None);
            await connection.ExecuteAsync(new CommandDefinition("""
                UPDATE idempotency_keys SET state = @Completed, status_code = @status, response_body = @body, response_headers = @headers
                WHERE tenant_id = @tenantId AND key = @key
                """, new { Completed, status, body, headers, tenantId, key }));
        }
        buffer.Position = 0;
        await buffer.CopyToAsync(original, context.RequestAborted);
    }

    async Task ForgetAsync(string tenantId, string key)
    {
        await using var connection = await database.OpenAsync(CancellationToken.None);
        await connection.ExecuteAsync(new CommandDefinition(
            "DELETE FROM idempotency_keys WHERE tenant_id = @tenantId AND key = @key AND state = @InFlight", new { tenantId, key, InFlight }));
    }

    static async Task<byte[]> FingerprintAsync(HttpContext context)
    {
        context.Request.EnableBuffering();
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Encoding.UTF8.GetBytes($"{context.Request.Method}\n{context.Request.Path}{context.Request.QueryString}\n"));
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await context.Request.Body.ReadAsync(chunk, context.RequestAborted)) > 0) hash.AppendData(chunk, 0, read);
        context.Request.Body.Position = 0;
        return hash.GetHashAndReset();
    }

    sealed class Row
    {
        public byte[] fingerprint { get; set; } = [];
        public short state { get; set; }
        public int? status_code { get; set; }
        public byte[]? response_body { get; set; }
        public string? response_headers { get; set; }
        public long created_at_us { get; set; }
        public long expires_at_us { get; set; }
    }
}

public static class IdempotencyModule
{
    public static WebApplicationBuilder AddIdempotency(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<IdempotencyOptions>().Bind(builder.Configuration.GetSection("Idempotency")).ValidateDataAnnotations().ValidateOnStart();
        return builder;
    }

    /// <summary>Every authenticated POST under /v1 that carries an Idempotency-Key.</summary>
    public static void UseIdempotency(this WebApplication app) =>
        app.UseWhen(c => HttpMethods.IsPost(c.Request.Method) && c.Request.Path.StartsWithSegments("/v1")
                && c.Request.Headers.ContainsKey("Idempotency-Key") && c.User.Identity?.IsAuthenticated == true,
            b => b.UseMiddleware<IdempotencyMiddleware>());
}
