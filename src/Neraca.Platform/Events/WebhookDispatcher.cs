using System.Data.Common;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using Dapper;
using Microsoft.Extensions.Options;
using Neraca.Storage;

namespace Neraca.Events;

/// <summary>Sends due webhook deliveries: claims them with a lease, POSTs the signed event, records the attempt, and
/// schedules a retry with exponential backoff and jitter, or moves the delivery to the dead-letter queue after
/// <see cref="EventsOptions.WebhookAttemptsMax"/> attempts. An endpoint that fails
/// <see cref="EventsOptions.WebhookDisableAfterFailures"/> times in a row is disabled and the tenant gets a
/// <c>webhook.endpoint.disabled</c> event.</summary>
/// <remarks>Deliveries that touch one account (or, for events about no account, one subject) go out to an endpoint
/// one at a time in event order (a transfer event has two ordering keys: its debit and credit accounts). A claim round
/// takes, per key, an unbroken run of its oldest pending deliveries and sends each after the one before it was
/// delivered; a key whose older delivery waits for a retry or is leased by another worker is left alone. A worker that
/// dies mid-send loses its lease after <see cref="EventsOptions.WebhookLeaseMs"/>; another worker sends the delivery
/// again (at least once).</remarks>
public sealed partial class WebhookDispatcher
{
    /// <summary>Name of the <see cref="IHttpClientFactory"/> client (configured by <see cref="AddWebhookHttpClient"/>).</summary>
    public const string HttpClientName = "neraca-webhooks";

    const int ResponseBodyMaxChars = 1024;
    const int ErrorMaxChars = 500;

    /// <summary>Due deliveries per endpoint one claim looks at. Bounds the cost of a claim; a delivery further back
    /// waits until the ones ahead of it are sent (they are older, so they go first anyway).</summary>
    const int ClaimWindowRows = 200;

    /// <summary>Per enabled endpoint, its oldest due deliveries: a LATERAL join on PostgreSQL (one index range scan per
    /// endpoint).</summary>
    const string PostgresClaimWindowSql = """
            SELECT x.id, x.tenant_id, x.endpoint_id, x.event_seq, x.ordering_key, x.ordering_key2, x.next_attempt_at_us
            FROM webhook_endpoints w CROSS JOIN LATERAL (
                SELECT d.id, d.tenant_id, d.endpoint_id, d.event_seq, d.ordering_key, d.ordering_key2, d.next_attempt_at_us
                FROM webhook_deliveries d
                WHERE d.tenant_id = w.tenant_id AND d.endpoint_id = w.id AND d.state = 1
                  AND d.next_attempt_at_us <= @now AND d.lease_until_us <= @now
                ORDER BY d.event_seq LIMIT @window) x
            WHERE w.state = 1
            """;

    /// <summary>The same window on SQLite, which has no LATERAL: a correlated <c>IN</c> subquery per endpoint.</summary>
    const string SqliteClaimWindowSql = """
            SELECT d.id, d.tenant_id, d.endpoint_id, d.event_seq, d.ordering_key, d.ordering_key2, d.next_attempt_at_us
            FROM webhook_endpoints w JOIN webhook_deliveries d ON d.tenant_id = w.tenant_id AND d.endpoint_id = w.id
            WHERE w.state = 1 AND d.id IN (
                SELECT y.id FROM webhook_deliveries y
                WHERE y.tenant_id = w.tenant_id AND y.endpoint_id = w.id AND y.state = 1
                  AND y.next_attempt_at_us <= @now AND y.lease_until_us <= @now
                ORDER BY y.event_seq LIMIT @window)
            """;

    readonly Database _database;
    readonly SqlDialect _dialect;
    readonly EventData _data;
    readonly string _claimWindowSql;
    readonly EventSignals _signals;
    readonly EventsOptions _options;
    readonly TimeProvider _clock;
    readonly EventsMetrics _metrics;
    readonly ILogger<WebhookDispatcher> _logger;
    readonly IHttpClientFactory _httpClients;
    readonly SemaphoreSlim _recording;

    public WebhookDispatcher(Database database, SqlDialect dialect, EventData data, EventSignals signals, IOptions<EventsOptions> options, TimeProvider clock,
        EventsMetrics metrics, IHttpClientFactory httpClients, ILogger<WebhookDispatcher> logger)
    {
        _httpClients = httpClients;
        _recording = new SemaphoreSlim(options.Value.WebhookConcurrencyMax);
        _database = database;
        _dialect = dialect;
        _data = data;
        _claimWindowSql = dialect.Choose(() => PostgresClaimWindowSql, () => SqliteClaimWindowSql);
        _signals = signals;
        _options = options.Value;
        _clock = clock;
        _metrics = metrics;
        _logger = logger;
    }

    /// <summary>Registers the webhook client: the SSRF guard as the connect callback of its primary handler (rebuilt with
    /// the guard on every handler rotation), no redirects, a bounded pool, and deliberately no resilience handler.</summary>
    /// <remarks>No retries: a retried POST could deliver an event twice within one attempt, and deliveries already have
    /// their own persisted schedule (backoff with jitter, <see cref="EventsOptions.WebhookAttemptsMax"/>, dead letters) that
    /// survives restarts and is visible in the attempts log. No shared circuit breaker: the client serves every tenant's
    /// endpoints, so one tenant's failing endpoint would stop deliveries to all of them; a failing endpoint is disabled on
    /// its own after <see cref="EventsOptions.WebhookDisableAfterFailures"/>. No handler-level timeout: the dispatcher's
    /// own <see cref="EventsOptions.WebhookTimeoutMs"/> covers reading the answer's body too.</remarks>
    public static void AddWebhookHttpClient(IServiceCollection services) =>
        services.AddHttpClient(HttpClientName, client =>
            {
                client.Timeout = Timeout.InfiniteTimeSpan;
                client.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("Neraca-Webhooks", "1"));
            })
            .ConfigurePrimaryHttpMessageHandler(sp =>
            {
                var o = sp.GetRequiredService<IOptions<EventsOptions>>().Value;
                return new SocketsHttpHandler
                {
                    AllowAutoRedirect = false, // a redirect could lead anywhere, private addresses included
                    PooledConnectionLifetime = TimeSpan.FromMinutes(2),
                    ConnectTimeout = TimeSpan.FromMilliseconds(o.WebhookTimeoutMs),
                    ConnectCallback = WebhookTargets.GuardedConnect(o.AllowPrivateWebhookTargets),
                    MaxConnectionsPerServer = o.WebhookConcurrencyMax,
                };
            });

    long Now => DbTime.ToMicros(_clock.GetUtcNow());

    /// <summary>Claims and sends one round of due deliveries; returns how many it claimed.</summary>
    /// <remarks>A round is a small dependency graph: a delivery starts once the round's earlier deliveries sharing one
    /// of its ordering keys were delivered, at most <see cref="EventsOptions.WebhookConcurrencyMax"/> at a time. When
    /// one fails, those behind it are handed back unsent (they wait for its retry), and none starts unless its lease
    /// still covers a full timeout. So a hot account's backlog goes out as a chain within one round instead of one
    /// delivery per claim. The next of a chain goes out once the endpoint accepted the one before, while that attempt
    /// is still being recorded: should the record be lost (a crash), both are sent again, in order (at least once).</remarks>
    public async Task<int> DispatchDueAsync(CancellationToken ct)
    {
        var token = Ids.NewUlid();
        var (claimed, leaseUntil) = await ClaimAsync(token, ct);
        if (claimed.Count == 0) return 0;
        var slots = new SemaphoreSlim(_options.WebhookConcurrencyMax);
        var unsent = new System.Collections.Concurrent.ConcurrentBag<string>();
        var recorded = new System.Collections.Concurrent.ConcurrentQueue<Task>();
        var sent = new Dictionary<string, Task<bool>>(claimed.Count);
        try
        {
            foreach (var job in claimed) sent[job.DeliveryId] = SendAfterAsync(job, job.After.Select(id => sent[id]).ToArray());
            try
            {
                await Task.WhenAll(sent.Values);
            }
            finally
            {
                await Task.WhenAll(recorded);
            }
        }
        finally
        {
            if (!unsent.IsEmpty) await ReleaseAsync([.. unsent], token);
        }
        return claimed.Count;

        async Task<bool> SendAfterAsync(Job job, Task<bool>[] before)
        {
            foreach (var b in before)
                // One that failed outright (its exception surfaces through WhenAll) holds this one back like a refusal.
                if (!await b.ContinueWith(t => t.IsCompletedSuccessfully && t.Result, TaskScheduler.Default))
                {
                    unsent.Add(job.DeliveryId);
                    return false;
                }
            await slots.WaitAsync(ct);
            try
            {
                if (Now + _options.WebhookTimeoutMs * 1000L > leaseUntil)
                {
                    unsent.Add(job.DeliveryId);
                    return false;
                }
                var (accepted, record) = await SendAsync(job, token, ct);
                recorded.Enqueue(record);
                return accepted;
            }
            finally
            {
                slots.Release();
            }
        }
    }

    /// <summary>Most deliveries one round claims: enough for chains of a hot account, few enough that a round ends
    /// well within a lease.</summary>
    int RoundMax => _options.WebhookConcurrencyMax * 8;

    /// <summary>Claims a round: per enabled endpoint, the oldest due deliveries in event order whose ordering keys have
    /// no older pending delivery outside the round (one waiting for its retry, or leased by another worker), taken
    /// round-robin across endpoints so a deep backlog cannot crowd out the others.</summary>
    async Task<(List<Job> Jobs, long LeaseUntil)> ClaimAsync(string token, CancellationToken ct)
    {
        var now = Now;
        var leaseUntil = now + _options.WebhookLeaseMs * 1000L;
        await using var connection = await _database.OpenAsync(ct);
        await using var tx = await _dialect.BeginWriteAsync(connection, ct);
        // The window (bounded: a claim costs the same with a backlog of millions), and per ordering key in it the oldest
        // pending delivery that is not in it although older than the key's last one there: every due, unleased delivery
        // older than that is in the window, so the probe stops within the window's rows of the key.
        var rows = (await connection.QueryAsync<WindowRow>(new CommandDefinition($"""
            WITH due AS MATERIALIZED ({_claimWindowSql}),
            keyed AS MATERIALIZED (
                SELECT tenant_id, endpoint_id, ordering_key AS k, max(event_seq) AS upto FROM due GROUP BY tenant_id, endpoint_id, ordering_key
                UNION
                SELECT tenant_id, endpoint_id, ordering_key2, max(event_seq) FROM due WHERE ordering_key2 IS NOT NULL GROUP BY tenant_id, endpoint_id, ordering_key2)
            SELECT id AS Id, tenant_id AS TenantId, endpoint_id AS EndpointId, event_seq AS EventSeq, ordering_key AS Key, ordering_key2 AS Key2,
                   NULL AS Blocker, NULL AS Blocker2
            FROM due
            UNION ALL
            SELECT NULL, y.tenant_id, y.endpoint_id, 0, y.k, NULL,
                (SELECT min(p.event_seq) FROM webhook_deliveries p WHERE p.tenant_id = y.tenant_id AND p.endpoint_id = y.endpoint_id
                   AND p.ordering_key = y.k AND p.state = 1 AND p.event_seq < y.upto AND (p.next_attempt_at_us > @now OR p.lease_until_us > @now)),
                (SELECT min(p.event_seq) FROM webhook_deliveries p WHERE p.tenant_id = y.tenant_id AND p.endpoint_id = y.endpoint_id
                   AND p.ordering_key2 = y.k AND p.state = 1 AND p.event_seq < y.upto AND (p.next_attempt_at_us > @now OR p.lease_until_us > @now))
            FROM keyed y
            """, new { now, window = ClaimWindowRows }, tx, cancellationToken: ct))).AsList();
        var planned = Plan(rows, RoundMax);
        if (planned.Count == 0)
        {
            await tx.CommitAsync(ct);
            return ([], leaseUntil);
        }
        var taken = (await connection.QueryAsync<string>(new CommandDefinition($"""
            UPDATE webhook_deliveries SET lease_until_us = @leaseUntil, lease_token = @token
            WHERE id IN (SELECT d.id FROM webhook_deliveries d WHERE {_dialect.InList("d.id", "ids")} AND d.state = 1 AND d.lease_until_us <= @now{_dialect.SkipLocked(of: "d")})
            RETURNING id
            """, new { ids = planned.Select(r => r.Id).ToArray(), now, leaseUntil, token }, tx, cancellationToken: ct))).ToHashSet();
        // Another worker may have taken some meanwhile: what stands behind one of those is handed back, not sent.
        var (kept, dropped) = Keep(planned, taken);
        if (dropped.Count > 0)
            await connection.ExecuteAsync(new CommandDefinition(
                $"UPDATE webhook_deliveries SET lease_until_us = 0, lease_token = NULL WHERE {_dialect.InList("id", "ids")} AND lease_token = @token",
                new { ids = dropped.ToArray(), token }, tx, cancellationToken: ct));
        if (kept.Count == 0)
        {
            await tx.CommitAsync(ct);
            return ([], leaseUntil);
        }
        var ids = kept.Keys.ToArray();
        var jobs = (await connection.QueryAsync<Job, EventRow, Job>(new CommandDefinition($"""
            SELECT d.id AS DeliveryId, d.tenant_id AS TenantId, d.endpoint_id AS EndpointId, d.attempts AS Attempts, d.attempt_count AS AttemptCount,
                   w.url AS Url, w.secret AS Secret,
                   {EventFeed.ColumnsOf("e")}
            FROM webhook_deliveries d
            JOIN webhook_endpoints w ON w.tenant_id = d.tenant_id AND w.id = d.endpoint_id
            JOIN events e ON e.seq = d.event_seq
            WHERE {_dialect.InList("d.id", "ids")}
            ORDER BY e.seq
            """, new { ids }, tx, cancellationToken: ct), (job, e) =>
        {
            job.Event = e;
            job.After = kept[job.DeliveryId];
            return job;
        }, splitOn: "Seq")).AsList();
        var events = await _data.FillAsync(connection, tx, jobs.Select(j => j.Event).ToList(), ct);
        for (var i = 0; i < jobs.Count; i++) jobs[i].Event = events[i];
        await tx.CommitAsync(ct);
        return (jobs, leaseUntil);
    }

    /// <summary>The deliveries a round may send, in event order: a delivery sharing an ordering key with an older
    /// pending one that the round cannot send (blocked outside the window, or itself held back) is held back too.</summary>
    internal static List<WindowRow> Plan(IReadOnlyList<WindowRow> rows, int max)
    {
        var blockedFrom = new Dictionary<(string, string, string), long>();
        foreach (var b in rows.Where(r => r.Id is null))
            if (Min(b.Blocker, b.Blocker2) is { } seq) blockedFrom[(b.TenantId, b.EndpointId, b.Key)] = seq;
        var held = new HashSet<(string, string, string)>();
        var perEndpoint = new Dictionary<(string, string), List<WindowRow>>();
        foreach (var d in rows.Where(r => r.Id is not null).OrderBy(r => r.EventSeq))
        {
            var keys = d.Keys();
            if (keys.Any(k => held.Contains(k) || (blockedFrom.TryGetValue(k, out var from) && from < d.EventSeq)))
            {
                held.UnionWith(keys);
                continue;
            }
            if (!perEndpoint.TryGetValue((d.TenantId, d.EndpointId), out var list)) perEndpoint[(d.TenantId, d.EndpointId)] = list = [];
            list.Add(d);
        }
        // Round-robin over endpoints; each endpoint's list is taken from its start, so what is taken stays in order.
        var taken = new List<WindowRow>();
        for (var i = 0; taken.Count < max; i++)
        {
            var any = false;
            foreach (var list in perEndpoint.Values)
            {
                if (i >= list.Count) continue;
                any = true;
                taken.Add(list[i]);
                if (taken.Count == max) break;
            }
            if (!any) break;
        }
        return [.. taken.OrderBy(r => r.EventSeq)];

        static long? Min(long? a, long? b) => a is null ? b : b is null ? a : Math.Min(a.Value, b.Value);
    }

    /// <summary>Of the planned deliveries, those this worker obtained and may send (with, for each, the ones before
    /// it in the round that share an ordering key), and those it obtained but must hand back because something ahead
    /// of them was taken by another worker.</summary>
    internal static (Dictionary<string, string[]> Kept, List<string> Dropped) Keep(IReadOnlyList<WindowRow> planned, IReadOnlySet<string> obtained)
    {
        var kept = new Dictionary<string, string[]>();
        var dropped = new List<string>();
        var lost = new HashSet<(string, string, string)>();
        var last = new Dictionary<(string, string, string), string>();
        foreach (var d in planned)
        {
            var keys = d.Keys();
            if (!obtained.Contains(d.Id!) || keys.Any(lost.Contains))
            {
                lost.UnionWith(keys);
                if (obtained.Contains(d.Id!)) dropped.Add(d.Id!);
                continue;
            }
            kept[d.Id!] = keys.Select(k => last.GetValueOrDefault(k)).OfType<string>().Distinct().ToArray();
            foreach (var k in keys) last[k] = d.Id!;
        }
        return (kept, dropped);
    }

    async Task ReleaseAsync(string[] ids, string token)
    {
        await using var connection = await _database.OpenAsync(CancellationToken.None);
        await connection.ExecuteAsync(new CommandDefinition(
            $"UPDATE webhook_deliveries SET lease_until_us = 0, lease_token = NULL WHERE {_dialect.InList("id", "ids")} AND lease_token = @token",
            new { ids, token }));
    }

    /// <summary>Sends one delivery: whether the endpoint accepted it, and the recording of the attempt (started, not
    /// awaited).</summary>
    async Task<(bool Accepted, Task Recorded)> SendAsync(Job job, string token, CancellationToken ct)
    {
        var body = EventEnvelope.ToJsonBytes(job.Event);
        var startedAt = _clock.GetUtcNow();
        var timer = Stopwatch.StartNew();
        int? status = null;
        string? error = null;
        string? response = null;
        string? failureReason = null;
        TimeSpan? retryAfter = null;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, job.Url) { Content = new ByteArrayContent(body) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            request.Headers.Add(WebhookSignature.Header, WebhookSignature.HeaderValue(job.Secret, startedAt.ToUnixTimeSeconds(), body));
            request.Headers.Add(WebhookSignature.EventIdHeader, job.Event.Id);
            request.Headers.Add(WebhookSignature.EventTypeHeader, job.Event.Type);
            request.Headers.Add(WebhookSignature.DeliveryIdHeader, job.DeliveryId);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(_options.WebhookTimeoutMs);
            using var answer = await _httpClients.CreateClient(HttpClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            status = (int)answer.StatusCode;
            response = await ReadSomeAsync(answer, timeout.Token);
            if (!answer.IsSuccessStatusCode)
            {
                failureReason = "http_status";
                error = $"HTTP {status}";
                retryAfter = answer.Headers.RetryAfter?.Delta;
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            failureReason = "timeout";
            error = $"no answer within {_options.WebhookTimeoutMs} ms";
        }
        catch (HttpRequestException e)
        {
            failureReason = "network";
            error = Truncate(e.Message, ErrorMaxChars);
        }
        var duration = timer.Elapsed;
        _metrics.Attempt(failureReason is null, failureReason);
        return (failureReason is null, RecordAsync(job, token, startedAt, duration, status, error, response, retryAfter));
    }

    static async Task<string?> ReadSomeAsync(HttpResponseMessage answer, CancellationToken ct)
    {
        await using var stream = await answer.Content.ReadAsStreamAsync(ct);
        var buffer = new byte[ResponseBodyMaxChars * 4];
        var read = 0;
        int n;
        while (read < buffer.Length && (n = await stream.ReadAsync(buffer.AsMemory(read), ct)) > 0) read += n;
        if (read == 0) return null;
        return Truncate(Encoding.UTF8.GetString(buffer, 0, read), ResponseBodyMaxChars);
    }

    static string Truncate(string text, int max) => text.Length <= max ? text : text[..max];

    /// <summary>Backoff before attempt <paramref name="attempt"/>+1: base·2^(attempt-1) capped, then "equal jitter"
    /// (half fixed, half random) so retries of many deliveries spread out instead of arriving together.</summary>
    internal static TimeSpan Backoff(int attempt, int baseMs, int maxMs)
    {
        var exponential = Math.Min((double)maxMs, baseMs * Math.Pow(2, Math.Min(attempt - 1, 40)));
        return TimeSpan.FromMilliseconds(exponential / 2 + Random.Shared.NextDouble() * exponential / 2);
    }

    async Task RecordAsync(Job job, string token, DateTimeOffset startedAt, TimeSpan duration, int? status, string? error,
        string? response, TimeSpan? retryAfter)
    {
        // As many recordings at once as sends: each holds a database connection.
        await _recording.WaitAsync(CancellationToken.None);
        try
        {
            await RecordNowAsync(job, token, startedAt, duration, status, error, response, retryAfter);
        }
        finally
        {
            _recording.Release();
        }
    }

    async Task RecordNowAsync(Job job, string token, DateTimeOffset startedAt, TimeSpan duration, int? status, string? error,
        string? response, TimeSpan? retryAfter)
    {
        var now = Now;
        var success = error is null;
        var attempt = job.Attempts + 1;
        var dead = !success && attempt >= _options.WebhookAttemptsMax;
        var delay = Backoff(attempt, _options.WebhookRetryBaseDelayMs, _options.WebhookRetryDelayMaxMs);
        if (retryAfter is { } asked && asked > delay) delay = TimeSpan.FromMilliseconds(Math.Min(asked.TotalMilliseconds, _options.WebhookRetryDelayMaxMs));
        var state = success ? DeliveryState.Delivered : dead ? DeliveryState.Dead : DeliveryState.Pending;

        // The result must be recorded even when shutdown began mid-send, or the delivery waits out its lease.
        var ct = CancellationToken.None;
        await using var connection = await _database.OpenAsync(ct);
        await using var tx = await _dialect.BeginWriteAsync(connection, ct);
        // The endpoint row first, in every transaction that touches both it and its deliveries (here and when it is
        // disabled): one lock order, no deadlocks between concurrent results of one endpoint.
        var failures = await connection.ExecuteScalarAsync<long>(new CommandDefinition(success
            ? "UPDATE webhook_endpoints SET consecutive_failures = 0 WHERE tenant_id = @TenantId AND id = @EndpointId AND consecutive_failures <> 0 RETURNING 0"
            : "UPDATE webhook_endpoints SET consecutive_failures = consecutive_failures + 1 WHERE tenant_id = @TenantId AND id = @EndpointId RETURNING consecutive_failures",
            job, tx, cancellationToken: ct));
        var updated = await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE webhook_deliveries
            SET state = @state, attempts = attempts + 1, attempt_count = attempt_count + 1, last_status_code = @status, last_error = @error,
                next_attempt_at_us = @next, delivered_at_us = @deliveredAt, dead_at_us = @deadAt, lease_until_us = 0, lease_token = NULL
            WHERE id = @id AND lease_token = @token
            """, new
        {
            id = job.DeliveryId,
            token,
            state = (int)state,
            status,
            error,
            next = now + (long)delay.TotalMicroseconds,
            deliveredAt = success ? now : (long?)null,
            deadAt = dead ? now : (long?)null,
        }, tx, cancellationToken: ct));
        if (updated == 0)
        {
            // The lease expired and another worker took the delivery over (or the endpoint was disabled/deleted): its
            // result counts, not ours. Disposing the transaction rolls the failure count back too.
            LogLeaseLost(_logger, job.DeliveryId);
            return;
        }
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO webhook_attempts (delivery_id, attempt_no, started_at_us, duration_us, status_code, error, response_body)
            VALUES (@id, @no, @startedAt, @duration, @status, @error, @response)
            """, new
        {
            id = job.DeliveryId,
            no = job.AttemptCount + 1,
            startedAt = DbTime.ToMicros(startedAt),
            duration = (long)duration.TotalMicroseconds,
            status,
            error,
            response,
        }, tx, cancellationToken: ct));
        if (!success)
        {
            if (dead) LogDeadLettered(_logger, job.DeliveryId, job.EndpointId, job.TenantId, attempt);
            if (failures >= _options.WebhookDisableAfterFailures) await DisableAsync(connection, tx, job, failures, now, ct);
        }
        await tx.CommitAsync(ct);
    }

    async Task DisableAsync(DbConnection connection, DbTransaction tx, Job job, long failures, long now, CancellationToken ct)
    {
        var reason = $"{failures} consecutive failed attempts";
        var disabled = await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE webhook_endpoints SET state = 2, disabled_reason = @reason, disabled_at_us = @now
            WHERE tenant_id = @tenantId AND id = @endpointId AND state = 1
            """, new { tenantId = job.TenantId, endpointId = job.EndpointId, reason, now }, tx, cancellationToken: ct));
        if (disabled == 0) return;
        // Nothing more will be sent to it: its queue becomes dead letters, replayable once it is enabled again.
        await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE webhook_deliveries SET state = 3, dead_at_us = @now, last_error = 'endpoint disabled', lease_until_us = 0, lease_token = NULL
            WHERE tenant_id = @tenantId AND endpoint_id = @endpointId AND state = 1
            """, new { tenantId = job.TenantId, endpointId = job.EndpointId, now }, tx, cancellationToken: ct));
        await EventLog.AppendAsync(connection, tx, job.TenantId, null, new NewEvent(EventTypes.WebhookEndpointDisabled, job.EndpointId,
            WebhookStore.DisabledPayload(job.EndpointId, job.Url, (int)failures, reason, now)), now, ct);
        _signals.Outbox.Pulse();
        LogEndpointDisabled(_logger, job.EndpointId, job.TenantId, failures);
    }

    /// <summary>The dispatch loop of the worker role.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            var wake = _signals.Deliveries.Next;
            try
            {
                while (await DispatchDueAsync(ct) > 0 && !ct.IsCancellationRequested) { }
                await Signal.WaitAsync(wake, TimeSpan.FromMilliseconds(_options.WebhookPollIntervalMs), _clock, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is DbException or TimeoutException or IOException)
            {
                LogDispatchFailed(_logger, e);
                try { await Task.Delay(TimeSpan.FromMilliseconds(_options.WebhookPollIntervalMs), _clock, ct); }
                catch (OperationCanceledException) { return; }
            }
        }
    }

    sealed class Job
    {
        public string DeliveryId { get; set; } = "";
        public string TenantId { get; set; } = "";
        public string EndpointId { get; set; } = "";
        public int Attempts { get; set; }
        public int AttemptCount { get; set; }
        public string Url { get; set; } = "";
        public string Secret { get; set; } = "";
        public EventRow Event { get; set; } = null!;

        /// <summary>The round's deliveries that must be delivered before this one (they share an ordering key).</summary>
        public string[] After { get; set; } = [];
    }

    /// <summary>A row of the claim query: a due delivery (with <see cref="Id"/>), or an ordering key of the window with
    /// the oldest pending delivery of that key the round cannot send (<see cref="Blocker"/>, <see cref="Blocker2"/>).</summary>
    internal sealed class WindowRow
    {
        public string? Id { get; set; }
        public string TenantId { get; set; } = "";
        public string EndpointId { get; set; } = "";
        public long EventSeq { get; set; }
        public string Key { get; set; } = "";
        public string? Key2 { get; set; }
        public long? Blocker { get; set; }
        public long? Blocker2 { get; set; }

        public (string, string, string)[] Keys() =>
            Key2 is null || Key2 == Key ? [(TenantId, EndpointId, Key)] : [(TenantId, EndpointId, Key), (TenantId, EndpointId, Key2)];
    }

    [LoggerMessage(1, LogLevel.Warning, "Delivery {DeliveryId} went to the dead-letter queue of endpoint {EndpointId} (tenant {TenantId}) after {Attempts} attempts")]
    static partial void LogDeadLettered(ILogger logger, string deliveryId, string endpointId, string tenantId, int attempts);

    [LoggerMessage(2, LogLevel.Warning, "Webhook endpoint {EndpointId} of tenant {TenantId} disabled after {Failures} consecutive failures")]
    static partial void LogEndpointDisabled(ILogger logger, string endpointId, string tenantId, long failures);

    [LoggerMessage(3, LogLevel.Information, "Lost the lease of delivery {DeliveryId}; another worker owns it")]
    static partial void LogLeaseLost(ILogger logger, string deliveryId);

    [LoggerMessage(4, LogLevel.Warning, "Dispatching webhooks failed; retrying")]
    static partial void LogDispatchFailed(ILogger logger, Exception exception);
}
