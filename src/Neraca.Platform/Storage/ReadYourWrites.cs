using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Claims;
using Neraca.Caching;
using Neraca.Hosting;
using Neraca.Tenancy;
using Microsoft.Extensions.Options;

namespace Neraca.Storage;

/// <summary>Read-your-writes with a lagging read replica. After a caller's write request succeeds (before its response
/// starts), the primary's WAL position is recorded for that caller (API key or end user) in Redis, shared by every
/// replica, keeping the highest. A later read of that caller that would go to the replica first checks that the
/// replica has replayed that position (<c>pg_last_wal_replay_lsn()</c>, one query) and reads the primary when it has
/// not: nobody waits for the replica, and the replica keeps serving everyone whose writes it already has.</summary>
/// <remarks>Only active with a <c>ReadDatabase</c>. Without Redis the positions are kept in this process (enough for a
/// single replica). With Redis configured but unreachable, reads of callers go to the primary. Positions expire after
/// <see cref="NeracaOptions.ReadYourWritesSeconds"/>: a replica lagging more than that can serve older data.</remarks>
public sealed partial class ReadYourWrites(Database database, RedisConnection redis, IOptions<NeracaOptions> options, TimeProvider clock,
    ILogger<ReadYourWrites> logger)
{
    static readonly AsyncLocal<Caller?> Ambient = new();

    // Keeps the highest position; LSNs fit a Lua number (a double) exactly up to 2^53 bytes of WAL.
    const string KeepHighest = """
        local c = tonumber(redis.call('GET', KEYS[1]) or '0')
        if tonumber(ARGV[1]) > c then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) else redis.call('EXPIRE', KEYS[1], ARGV[2]) end
        return 1
        """;

    readonly ConcurrentDictionary<string, (ulong Position, long ExpiresAt)> _local = new(StringComparer.Ordinal);

    /// <summary>The caller of the request being served, or null outside requests (jobs read the replica as they are).</summary>
    public static Caller? Current => Ambient.Value;

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        if (!database.HasReadReplica || context.User.FindFirstValue(NeracaClaims.TenantId) is not { } tenant)
        {
            await next(context);
            return;
        }
        var key = redis.KeyPrefix + Caching.CompositeKey.Of("rw", tenant, context.User.FindFirstValue(NeracaClaims.Subject) ?? "",
            context.User.FindFirstValue(NeracaClaims.KeyId) ?? "");
        var method = context.Request.Method;
        if (!HttpMethods.IsGet(method) && !HttpMethods.IsHead(method) && !HttpMethods.IsOptions(method))
            context.Response.OnStarting(() => context.Response.StatusCode < 400 ? RecordAsync(key) : Task.CompletedTask);
        Ambient.Value = new Caller(this, key);
        try
        {
            await next(context);
        }
        finally
        {
            Ambient.Value = null;
        }
    }

    async Task RecordAsync(string key)
    {
        ulong position;
        try
        {
            position = await database.WritePositionAsync(CancellationToken.None);
        }
        catch (Exception e) when (e is System.Data.Common.DbException or TimeoutException or InvalidOperationException)
        {
            LogRecordFailed(logger, e);
            return;
        }
        var seconds = options.Value.ReadYourWritesSeconds;
        var expires = clock.GetUtcNow().AddSeconds(seconds).ToUnixTimeMilliseconds();
        _local.AddOrUpdate(key, (position, expires), (_, old) => (Math.Max(old.Position, position), expires));
        if (_local.Count > 100_000) Prune();
        if (redis.DatabaseIfConnected is not { } db) return;
        try
        {
            await db.ScriptEvaluateAsync(KeepHighest, [key],
                [position.ToString(CultureInfo.InvariantCulture), seconds.ToString(CultureInfo.InvariantCulture)]);
        }
        catch (Exception e) when (RedisConnection.IsUnavailable(e))
        {
            LogRecordFailed(logger, e);
        }
    }

    async Task<ulong> FloorAsync(string key)
    {
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        var local = _local.TryGetValue(key, out var l) && l.ExpiresAt > now ? l.Position : 0UL;
        if (!redis.IsConfigured) return local;
        if (redis.DatabaseIfConnected is not { } db) return ulong.MaxValue; // unknown: the primary has every write
        try
        {
            var value = await db.StringGetAsync(key);
            return Math.Max(local, value.HasValue ? ulong.Parse(value.ToString(), CultureInfo.InvariantCulture) : 0UL);
        }
        catch (Exception e) when (RedisConnection.IsUnavailable(e))
        {
            return ulong.MaxValue;
        }
    }

    void Prune()
    {
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (var (key, value) in _local)
            if (value.ExpiresAt <= now) _local.TryRemove(key, out _);
    }

    /// <summary>One request's caller; the lowest WAL position a replica must have replayed to serve it, fetched once.</summary>
    public sealed class Caller(ReadYourWrites owner, string key)
    {
        Task<ulong>? _floor;

        public Task<ulong> FloorAsync() => _floor ??= owner.FloorAsync(key);
    }

    [LoggerMessage(1, LogLevel.Warning, "Could not record a write position for read-your-writes; this caller's next reads may see the replica's older data")]
    static partial void LogRecordFailed(ILogger logger, Exception exception);
}
