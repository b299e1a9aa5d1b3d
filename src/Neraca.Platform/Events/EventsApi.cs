using System.Collections.Concurrent;
using System.Text;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Neraca.Hosting;
using Neraca.Tenancy;

namespace Neraca.Events;

public sealed record EventPage(IReadOnlyList<EventEnvelope> Data, string NextCursor, bool HasMore);

public sealed record CreateWebhookRequest(string Url, IReadOnlyList<string> EventTypes, string? Description = null);

/// <summary>An endpoint as the API shows it; <see cref="Secret"/> only in the answer to its creation.</summary>
public sealed record WebhookResponse(string Id, string Url, IReadOnlyList<string> EventTypes, string? Description, string State,
    int ConsecutiveFailures, string? DisabledReason, DateTimeOffset CreatedAt, DateTimeOffset? DisabledAt,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] string? Secret = null)
{
    public static WebhookResponse From(WebhookEndpoint e, string? secret = null) => new(e.Id, e.Url, e.EventTypes, e.Description,
        e.State == WebhookState.Enabled ? "enabled" : "disabled", e.ConsecutiveFailures, e.DisabledReason, e.CreatedAt, e.DisabledAt, secret);
}

public sealed record WebhookList(IReadOnlyList<WebhookResponse> Data);

public sealed record AttemptResponse(int Number, DateTimeOffset StartedAt, double DurationMs, int? StatusCode, string? Error, string? ResponseBody);

public sealed record DeliveryResponse(string Id, string EndpointId, string EventId, string EventType, string Subject, string State,
    int AttemptCount, DateTimeOffset? NextAttemptAt, int? LastStatusCode, string? LastError, DateTimeOffset CreatedAt,
    DateTimeOffset? DeliveredAt, DateTimeOffset? DeadAt, IReadOnlyList<AttemptResponse> Attempts)
{
    public static DeliveryResponse From(Delivery d) => new(d.Id, d.EndpointId, d.EventId, d.EventType, d.Subject, StateName(d.State),
        d.AttemptCount, d.NextAttemptAt, d.LastStatusCode, d.LastError, d.CreatedAt, d.DeliveredAt, d.DeadAt,
        d.Attempts.Select(a => new AttemptResponse(a.Number, a.StartedAt, a.DurationMs, a.StatusCode, a.Error, a.ResponseBody)).ToList());

    public static string StateName(DeliveryState s) => s switch
    {
        DeliveryState.Pending => "pending",
        DeliveryState.Delivered => "delivered",
        _ => "dead",
    };
}

public sealed record DeliveryPage(IReadOnlyList<DeliveryResponse> Data, string? NextCursor);

public sealed record ReplayResponse(long Replayed);

/// <summary>The event feed, its SSE stream, and webhook endpoints with their deliveries.</summary>
public static class EventsApi
{
    const int PageSizeDefault = 100;
    static int _openStreams;
    static readonly ConcurrentDictionary<string, int> OpenStreamsByTenant = new(StringComparer.Ordinal);

    public sealed record Services(EventFeed Feed, FeedCursorCodec Cursors, WebhookStore Webhooks, CurrentTenant Tenant, IOptions<EventsOptions> Options,
        EventSignals Signals, TimeProvider Clock);

    public static IEndpointRouteBuilder MapEventsApi(this IEndpointRouteBuilder app)
    {
        var events = app.MapGroup("/v1/events").WithTags("Events").RequireAuthorization(Scopes.EventsRead);
        events.MapGet("/", GetEventsAsync);
        events.MapGet("/stream", StreamAsync).Produces(200, contentType: "text/event-stream");

        var webhooks = app.MapGroup("/v1/webhooks").WithTags("Webhooks").RequireAuthorization(Scopes.WebhooksWrite);
        webhooks.MapPost("/", CreateWebhookAsync).WithSecretResponse("secret");
        webhooks.MapGet("/", ListWebhooksAsync);
        webhooks.MapGet("/{id}", GetWebhookAsync);
        webhooks.MapDelete("/{id}", DeleteWebhookAsync);
        webhooks.MapPost("/{id}/enable", EnableWebhookAsync);
        webhooks.MapGet("/{id}/deliveries", ListDeliveriesAsync);
        webhooks.MapPost("/{id}/deliveries/{deliveryId}/retry", RetryDeliveryAsync);
        webhooks.MapPost("/{id}/dead-letters/replay", ReplayDeadLettersAsync);
        return app;
    }

    static ValidationProblem? ValidateQuery(int? limit, string? type, int max, out int take, out string[]? types)
    {
        take = limit ?? PageSizeDefault;
        types = null;
        if (take < 1 || take > max) return Problems.Validation("limit", $"Must be between 1 and {max}.");
        if (type is not null)
        {
            types = type.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (types.Length is 0 or > 20 || types.Any(t => !EventTypes.IsValidPattern(t) || t.Contains('*', StringComparison.Ordinal)))
                return Problems.Validation("type", "A comma-separated list of up to 20 event types, e.g. transfer.posted,transfer.voided.");
        }
        return null;
    }

    /// <summary>The durable event log, oldest first. Pass <c>next_cursor</c> as <c>after</c> to continue; a page can be
    /// empty while newer events are still being committed, so keep polling with the same cursor.</summary>
    static async Task<Results<Ok<EventPage>, ValidationProblem>> GetEventsAsync(string? after, int? limit, string? type,
        [AsParameters] Services s, CancellationToken ct)
    {
        if (ValidateQuery(limit, type, s.Options.Value.PageSizeMax, out var take, out var types) is { } invalid) return invalid;
        var tenantId = s.Tenant.Id;
        var cursor = FeedCursor.Start;
        if (!string.IsNullOrEmpty(after))
        {
            if (await s.Cursors.UnprotectAsync(tenantId, after, ct) is not { } parsed) return Problems.InvalidCursor();
            cursor = parsed;
        }
        var page = await s.Feed.ReadAsync(tenantId, cursor, take, types, ct);
        var next = await s.Cursors.ProtectAsync(tenantId, page.Next, ct);
        return TypedResults.Ok(new EventPage(page.Items.Select(i => EventEnvelope.From(i.Row)).ToList(), next, page.HasMore));
    }

    /// <summary>Server-Sent Events: each event is <c>id: CURSOR</c>, <c>event: TYPE</c>, <c>data: ENVELOPE</c>. Reconnect
    /// with <c>Last-Event-ID</c> (browsers do it themselves) to resume after the last event received; without it the
    /// stream starts at <c>after</c>, or at the current end of the log.</summary>
    static async Task<Results<EmptyHttpResult, ValidationProblem, ProblemHttpResult>> StreamAsync(HttpContext context, string? after, string? type,
        [AsParameters] Services s, CancellationToken ct)
    {
        var o = s.Options.Value;
        var lastEventId = context.Request.Headers["Last-Event-ID"].ToString();
        var resume = lastEventId.Length > 0 ? lastEventId : string.IsNullOrEmpty(after) ? null : after;
        if (ValidateQuery(null, type, o.PageSizeMax, out _, out var types) is { } invalid) return invalid;
        var tenantId = s.Tenant.Id;
        var cursor = FeedCursor.Start;
        if (resume is not null)
        {
            if (await s.Cursors.UnprotectAsync(tenantId, resume, ct) is not { } parsed)
                return Problems.InvalidCursor(lastEventId.Length > 0 ? "Last-Event-ID" : "after");
            cursor = parsed;
        }
        if (!TryOpenStream(tenantId, o))
            return Problems.Of(503, "too_many_streams", "Too many streams",
                $"This server holds at most {o.StreamConnectionsMax} event streams, and at most {o.StreamConnectionsPerTenantMax} of one tenant.");
        try
        {
            if (resume is null) cursor = await s.Feed.TailAsync(tenantId, ct);
            var seal = await s.Cursors.ProtectorAsync(tenantId, ct);
            var response = context.Response;
            response.ContentType = "text/event-stream";
            response.Headers.CacheControl = "no-cache";
            response.Headers["X-Accel-Buffering"] = "no";
            await response.WriteAsync("retry: 2000\n\n", ct);
            await response.Body.FlushAsync(ct);
            var heartbeat = TimeSpan.FromSeconds(o.StreamHeartbeatSeconds);
            var idleSince = s.Clock.GetUtcNow();
            while (!ct.IsCancellationRequested)
            {
                var wake = s.Signals.Outbox.Next;
                var page = await s.Feed.ReadAsync(tenantId, cursor, PageSizeDefault, types, ct);
                if (page.Items.Count > 0)
                {
                    var text = new StringBuilder();
                    foreach (var item in page.Items)
                    {
                        text.Append("id: ").Append(seal(item.After)).Append('\n')
                            .Append("event: ").Append(item.Row.Type).Append('\n')
                            .Append("data: ").Append(Encoding.UTF8.GetString(EventEnvelope.ToJsonBytes(item.Row))).Append("\n\n");
                    }
                    await response.WriteAsync(text.ToString(), ct);
                    await response.Body.FlushAsync(ct);
                    idleSince = s.Clock.GetUtcNow();
                }
                cursor = page.Next;
                if (page.HasMore) continue;
                if (s.Clock.GetUtcNow() - idleSince >= heartbeat)
                {
                    await response.WriteAsync(": keep-alive\n\n", ct);
                    await response.Body.FlushAsync(ct);
                    idleSince = s.Clock.GetUtcNow();
                }
                await Signal.WaitAsync(wake, TimeSpan.FromMilliseconds(o.StreamPollIntervalMs), s.Clock, ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The client went away.
        }
        finally
        {
            CloseStream(tenantId);
        }
        return TypedResults.Empty;
    }

    /// <summary>Takes a stream slot of the process and one of the tenant, so one tenant cannot hold every slot.</summary>
    static bool TryOpenStream(string tenantId, EventsOptions o)
    {
        if (Interlocked.Increment(ref _openStreams) > o.StreamConnectionsMax)
        {
            Interlocked.Decrement(ref _openStreams);
            return false;
        }
        var mine = OpenStreamsByTenant.AddOrUpdate(tenantId, 1, (_, n) => n + 1);
        if (mine <= o.StreamConnectionsPerTenantMax) return true;
        CloseStream(tenantId);
        return false;
    }

    static void CloseStream(string tenantId)
    {
        Interlocked.Decrement(ref _openStreams);
        // Remove the entry only while it is 0 (atomically), so tenants without streams hold no memory.
        if (OpenStreamsByTenant.AddOrUpdate(tenantId, 0, (_, v) => v - 1) == 0)
            OpenStreamsByTenant.TryRemove(new KeyValuePair<string, int>(tenantId, 0));
    }

    static async Task<Results<Created<WebhookResponse>, ValidationProblem, ProblemHttpResult>> CreateWebhookAsync(CreateWebhookRequest body,
        [AsParameters] Services s, CancellationToken ct)
    {
        var o = s.Options.Value;
        var errors = new Dictionary<string, string[]>();
        if (await WebhookTargets.ProblemWithAsync(body.Url, o.AllowPrivateWebhookTargets, ct) is { } urlProblem)
            errors["url"] = [urlProblem];
        if (body.EventTypes is null || body.EventTypes.Count is 0 or > 50 || body.EventTypes.Any(t => !EventTypes.IsValidPattern(t)))
            errors["event_types"] = ["1 to 50 event types or patterns: 'transfer.posted', 'transfer.*' or '*'."];
        if (body.Description is { Length: > 500 })
            errors["description"] = ["At most 500 characters."];
        if (errors.Count > 0)
        {
            if (errors.TryGetValue("url", out var u) && u[0].Contains("non-public", StringComparison.Ordinal))
                return Problems.Of(422, "webhook_target_forbidden", "Webhook target not allowed", $"url {u[0]} (SSRF protection).");
            return Problems.Validation(errors);
        }
        var secret = WebhookSignature.NewSecret();
        var endpoint = await s.Webhooks.CreateAsync(s.Tenant.Id, body.Url, body.EventTypes!.Distinct(StringComparer.Ordinal).ToList(),
            body.Description, secret, o.WebhookEndpointsPerTenantMax, ct);
        if (endpoint is null)
            return Problems.Of(409, "webhook_limit_reached", "Too many webhook endpoints", $"A tenant can register at most {o.WebhookEndpointsPerTenantMax}.");
        return TypedResults.Created($"/v1/webhooks/{endpoint.Id}", WebhookResponse.From(endpoint, secret));
    }

    static async Task<Ok<WebhookList>> ListWebhooksAsync([AsParameters] Services s, CancellationToken ct) =>
        TypedResults.Ok(new WebhookList((await s.Webhooks.ListAsync(s.Tenant.Id, ct)).Select(e => WebhookResponse.From(e)).ToList()));

    static async Task<Results<Ok<WebhookResponse>, ProblemHttpResult>> GetWebhookAsync(string id, [AsParameters] Services s, CancellationToken ct) =>
        await s.Webhooks.GetAsync(s.Tenant.Id, id, ct) is { } e ? TypedResults.Ok(WebhookResponse.From(e)) : WebhookNotFound(id);

    static async Task<Results<NoContent, ProblemHttpResult>> DeleteWebhookAsync(string id, [AsParameters] Services s, CancellationToken ct) =>
        await s.Webhooks.DeleteAsync(s.Tenant.Id, id, ct) ? TypedResults.NoContent() : WebhookNotFound(id);

    static async Task<Results<Ok<WebhookResponse>, ProblemHttpResult>> EnableWebhookAsync(string id, [AsParameters] Services s, CancellationToken ct)
    {
        if (await s.Webhooks.EnableAsync(s.Tenant.Id, id, ct) is not { } e) return WebhookNotFound(id);
        s.Signals.Deliveries.Pulse();
        return TypedResults.Ok(WebhookResponse.From(e));
    }

    static async Task<Results<Ok<DeliveryPage>, ValidationProblem, ProblemHttpResult>> ListDeliveriesAsync(string id, string? state, string? after, int? limit,
        [AsParameters] Services s, CancellationToken ct)
    {
        var max = s.Options.Value.PageSizeMax;
        var take = limit ?? PageSizeDefault;
        if (take < 1 || take > max) return Problems.Validation("limit", $"Must be between 1 and {max}.");
        DeliveryState? filter = state switch
        {
            null => null,
            "pending" => DeliveryState.Pending,
            "delivered" => DeliveryState.Delivered,
            "dead" => DeliveryState.Dead,
            _ => (DeliveryState)(-1),
        };
        if (filter == (DeliveryState)(-1)) return Problems.Validation("state", "One of pending, delivered, dead.");
        if (after?.Length == 0) after = null;
        if (after is not null && (after.Length > 64 || !after.StartsWith("whd_", StringComparison.Ordinal)))
            return Problems.InvalidCursor();
        if (await s.Webhooks.GetAsync(s.Tenant.Id, id, ct) is null) return WebhookNotFound(id);
        var (items, next) = await s.Webhooks.ListDeliveriesAsync(s.Tenant.Id, id, filter, after, take, ct);
        return TypedResults.Ok(new DeliveryPage(items.Select(DeliveryResponse.From).ToList(), next));
    }

    static async Task<Results<Accepted<DeliveryResponse>, ProblemHttpResult>> RetryDeliveryAsync(string id, string deliveryId,
        [AsParameters] Services s, CancellationToken ct)
    {
        var (outcome, delivery) = await s.Webhooks.RetryAsync(s.Tenant.Id, id, deliveryId, ct);
        switch (outcome)
        {
            case RetryOutcome.NotFound:
                return Problems.NotFound("delivery_not_found", $"Webhook {id} has no delivery {deliveryId}.");
            case RetryOutcome.StillPending:
                return Problems.Of(409, "delivery_pending", "Delivery still pending", "It is queued already; retry a delivered or dead one.");
            case RetryOutcome.EndpointDisabled:
                return Problems.Of(409, "webhook_disabled", "Webhook disabled", $"Enable it first: POST /v1/webhooks/{id}/enable.");
        }
        s.Signals.Deliveries.Pulse();
        return TypedResults.Accepted($"/v1/webhooks/{id}/deliveries", DeliveryResponse.From(delivery!));
    }

    /// <summary>Puts the endpoint's dead letters back in the queue, oldest first, up to <see cref="EventsOptions.WebhookReplayMax"/> per call.</summary>
    static async Task<Results<Ok<ReplayResponse>, ProblemHttpResult>> ReplayDeadLettersAsync(string id, [AsParameters] Services s, CancellationToken ct)
    {
        var replayed = await s.Webhooks.ReplayDeadAsync(s.Tenant.Id, id, s.Options.Value.WebhookReplayMax, ct);
        if (replayed is null) return WebhookNotFound(id);
        if (replayed < 0) return Problems.Of(409, "webhook_disabled", "Webhook disabled", $"Enable it first: POST /v1/webhooks/{id}/enable.");
        s.Signals.Deliveries.Pulse();
        return TypedResults.Ok(new ReplayResponse(replayed.Value));
    }

    static ProblemHttpResult WebhookNotFound(string id) => Problems.NotFound("webhook_not_found", $"No webhook endpoint {id}.");
}
