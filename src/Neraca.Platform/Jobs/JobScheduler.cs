using System.Buffers.Binary;
using System.Data.Common;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Cronos;
using Dapper;
using Neraca.Storage;

namespace Neraca.Jobs;

/// <summary>Who a recurring job runs for: once for the cluster (owned by <see cref="JobsOptions.SystemTenantId"/>),
/// or once per tenant, each at its own offset inside the spread window.</summary>
public enum RecurringScope
{
    Cluster = 1,
    PerTenant = 2,
}

/// <summary>A recurring job as a capability declares it (<c>services.AddSingleton(new RecurringJob(...))</c>);
/// <see cref="JobsOptions.Recurring"/> can change its cron, time zone and window or turn it off.</summary>
public sealed record RecurringJob(string Name, string JobType, string Cron, RecurringScope Scope = RecurringScope.Cluster)
{
    /// <summary>IANA id the cron expression is read in. Default UTC.</summary>
    public string TimeZone { get; init; } = "UTC";

    /// <summary>Per-tenant schedules: tenants start spread over this window after each slot instead of all at once.</summary>
    public TimeSpan SpreadWindow { get; init; } = TimeSpan.Zero;

    public string Payload { get; init; } = "{}";
}

/// <summary>A schedule with configuration applied and its expression parsed.</summary>
public sealed record ResolvedSchedule(RecurringJob Job, CronExpression Expression, TimeZoneInfo Zone, TimeSpan SpreadWindow)
{
    public string Name => Job.Name;

    /// <summary>Applies overrides; null when the schedule is turned off. Throws <see cref="FormatException"/> on a bad
    /// cron expression or time zone (caught by options validation at start-up).</summary>
    public static ResolvedSchedule? Resolve(RecurringJob job, JobsOptions options)
    {
        options.Recurring.TryGetValue(job.Name, out var o);
        if (o?.Enabled == false) return null;
        var cron = o?.Cron ?? job.Cron;
        var zoneId = o?.TimeZone ?? job.TimeZone;
        var window = o?.SpreadWindowSeconds is { } seconds ? TimeSpan.FromSeconds(seconds) : job.SpreadWindow;
        return new ResolvedSchedule(job with { Cron = cron, TimeZone = zoneId }, ParseCron(cron), FindZone(zoneId), window);
    }

    public static CronExpression ParseCron(string cron)
    {
        var fields = cron.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
        try
        {
            return CronExpression.Parse(cron, fields == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard);
        }
        catch (CronFormatException e)
        {
            throw new FormatException($"'{cron}' is not a cron expression: {e.Message}", e);
        }
    }

    public static TimeZoneInfo FindZone(string id)
    {
        if (TimeZoneInfo.TryFindSystemTimeZoneById(id, out var zone)) return zone;
        throw new FormatException($"'{id}' is not a known time zone (use an IANA id such as Asia/Jakarta).");
    }
}

/// <summary>Stable per-tenant offsets that spread a schedule's tenants over its window (a hash, not a random draw:
/// a tenant runs at the same minute every night, and every replica computes the same offset).</summary>
public static class Spread
{
    public static TimeSpan Offset(string schedule, string tenantId, TimeSpan window)
    {
        var windowUs = (long)window.TotalMicroseconds;
        if (windowUs <= 0) return TimeSpan.Zero;
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(schedule + "\n" + tenantId));
        var n = BinaryPrimitives.ReadUInt64BigEndian(hash);
        return TimeSpan.FromMicroseconds(n % (ulong)windowUs);
    }
}

/// <summary>The <c>scheduler</c> role: enqueues each due slot of each recurring schedule exactly once, however many
/// schedulers run. The guarantee is the primary key of <c>job_slots</c> (schedule, slot), inserted in the same
/// transaction as the slot's jobs; on PostgreSQL a transaction-scoped advisory lock also lets only one scheduler
/// evaluate at a time, so the others skip instead of contending.</summary>
public sealed partial class JobScheduler : BackgroundService
{
    /// <summary>Tenants read per page when enqueueing a per-tenant slot.</summary>
    const int TenantPageSize = 500;

    static readonly long TickLockKey = JobStore.AdvisoryKey("neraca.jobs.scheduler");

    readonly JobStore _store;
    readonly JobsOptions _options;
    readonly TimeProvider _time;
    readonly ILogger<JobScheduler> _logger;
    readonly Dictionary<string, ResolvedSchedule> _schedules;
    long _ticks;

    public JobScheduler(JobStore store, IEnumerable<RecurringJob> jobs, TimeProvider time, ILogger<JobScheduler> logger)
    {
        _store = store;
        _options = store.Types.Options;
        _time = time;
        _logger = logger;
        _schedules = jobs.Select(j => ResolvedSchedule.Resolve(j, _options)).OfType<ResolvedSchedule>()
            .ToDictionary(s => s.Name, StringComparer.Ordinal);
    }

    /// <summary>Ticks completed (whether or not this scheduler enqueued anything).</summary>
    public long Ticks => Interlocked.Read(ref _ticks);

    public IReadOnlyCollection<ResolvedSchedule> Schedules => _schedules.Values;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => RunAsync(stoppingToken);

    /// <summary>The scheduler loop, until <paramref name="ct"/> is cancelled.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        var interval = TimeSpan.FromMilliseconds(_options.SchedulerIntervalMs);
        var registered = false;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                try
                {
                    if (!registered) await RegisterSchedulesAsync(ct);
                    registered = true;
                    await TickAsync(ct);
                }
                catch (Exception e) when (e is DbException or TimeoutException)
                {
                    Log.TickFailed(_logger, e);
                }
                await Task.Delay(interval, _time, ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>Creates rows for new schedules (first slot: the next occurrence from now) and resets the next slot of
    /// schedules whose cron or time zone changed. Unchanged schedules keep their next slot, so a restart loses none.</summary>
    public async Task RegisterSchedulesAsync(CancellationToken ct)
    {
        await using var connection = await _store.Database.OpenAsync(ct);
        var now = _time.GetUtcNow();
        foreach (var s in _schedules.Values)
        {
            await connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO job_schedules (name, cron, time_zone, next_slot_us, updated_at_us) VALUES (@name, @cron, @zone, @next, @now)
                ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, time_zone = excluded.time_zone,
                    next_slot_us = excluded.next_slot_us, updated_at_us = excluded.updated_at_us
                WHERE job_schedules.cron <> excluded.cron OR job_schedules.time_zone <> excluded.time_zone
                """, new { name = s.Name, cron = s.Job.Cron, zone = s.Job.TimeZone, next = NextSlotUs(s, now), now = DbTime.ToMicros(now) },
                cancellationToken: ct));
        }
    }

    /// <summary>Enqueues every due slot (at most <see cref="JobsOptions.MissedSlotsMax"/> per schedule) and moves each
    /// schedule to its next slot after now. Returns the number of slots this call enqueued.</summary>
    public async Task<int> TickAsync(CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        var nowUs = DbTime.ToMicros(now);
        var enqueued = 0;
        await using (var connection = await _store.Database.OpenAsync(ct))
        {
            // A read first: most ticks find nothing due and then take no lock (on SQLite, no write lock that the
            // ledger's writers would have to wait for).
            if (await connection.ExecuteScalarAsync<long>(new CommandDefinition(
                    "SELECT count(*) FROM job_schedules WHERE next_slot_us <= @now", new { now = nowUs }, cancellationToken: ct)) == 0)
            {
                Interlocked.Increment(ref _ticks);
                return 0;
            }
            await using var tx = await connection.BeginTransactionAsync(ct);
            if (!await _store.Dialect.TryLockAsync(connection, tx, TickLockKey, ct))
            {
                Interlocked.Increment(ref _ticks);
                return 0; // another scheduler is evaluating right now; the slot table would stop us anyway
            }
            var due = await connection.QueryAsync<(string Name, long NextSlotUs)>(new CommandDefinition(
                "SELECT name, next_slot_us FROM job_schedules WHERE next_slot_us <= @now ORDER BY name" + _store.Dialect.ForUpdate,
                new { now = nowUs }, tx, cancellationToken: ct));
            foreach (var (name, nextSlotUs) in due.ToList())
            {
                if (!_schedules.TryGetValue(name, out var schedule)) continue; // turned off here, or only another version knows it
                foreach (var slot in DueSlots(schedule, DbTime.FromMicros(nextSlotUs), now))
                    if (await EnqueueSlotAsync(connection, tx, schedule, slot, ct)) enqueued++;
                await connection.ExecuteAsync(new CommandDefinition(
                    "UPDATE job_schedules SET next_slot_us = @next, updated_at_us = @now WHERE name = @name",
                    new { name, next = NextSlotUs(schedule, now), now = nowUs }, tx, cancellationToken: ct));
            }
            await tx.CommitAsync(ct);
        }
        Interlocked.Increment(ref _ticks);
        return enqueued;
    }

    List<DateTimeOffset> DueSlots(ResolvedSchedule schedule, DateTimeOffset from, DateTimeOffset now)
    {
        var slots = new Queue<DateTimeOffset>();
        var skipped = 0;
        foreach (var slot in schedule.Expression.GetOccurrences(from, now, schedule.Zone, fromInclusive: true, toInclusive: true))
        {
            slots.Enqueue(slot);
            if (slots.Count <= _options.MissedSlotsMax) continue;
            slots.Dequeue();
            skipped++;
        }
        if (skipped > 0) Log.SlotsSkipped(_logger, skipped, schedule.Name, _options.MissedSlotsMax);
        return slots.ToList();
    }

    static long NextSlotUs(ResolvedSchedule schedule, DateTimeOffset after) =>
        schedule.Expression.GetNextOccurrence(after, schedule.Zone, inclusive: false) is { } next ? DbTime.ToMicros(next) : long.MaxValue;

    /// <summary>Claims the slot (its primary key) and enqueues its jobs in the same transaction. False when another
    /// scheduler had already enqueued it.</summary>
    async Task<bool> EnqueueSlotAsync(DbConnection connection, DbTransaction tx, ResolvedSchedule schedule, DateTimeOffset slot, CancellationToken ct)
    {
        var slotUs = DbTime.ToMicros(slot);
        var now = DbTime.ToMicros(_time.GetUtcNow());
        var claimed = await connection.ExecuteAsync(new CommandDefinition(
            "INSERT INTO job_slots (schedule, slot_us, jobs, enqueued_at_us) VALUES (@name, @slotUs, 0, @now) ON CONFLICT DO NOTHING",
            new { name = schedule.Name, slotUs, now }, tx, cancellationToken: ct));
        if (claimed == 0) return false;

        var key = schedule.Name + "@" + slot.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
        var jobs = 0;
        if (schedule.Job.Scope == RecurringScope.Cluster)
        {
            await _store.EnqueueAsync(connection, tx, new JobRequest(_options.SystemTenantId, schedule.Job.JobType, schedule.Job.Payload, key, slot)
            { Schedule = schedule.Name, SlotUs = slotUs }, ct);
            jobs = 1;
        }
        else
        {
            string? after = null;
            while (true)
            {
                var tenants = (await connection.QueryAsync<string>(new CommandDefinition(
                    "SELECT id FROM tenants WHERE id > @after ORDER BY id LIMIT @limit",
                    new { after = after ?? "", limit = TenantPageSize }, tx, cancellationToken: ct))).ToList();
                foreach (var tenant in tenants)
                {
                    var runAt = slot + Spread.Offset(schedule.Name, tenant, schedule.SpreadWindow);
                    await _store.EnqueueAsync(connection, tx, new JobRequest(tenant, schedule.Job.JobType, schedule.Job.Payload, key, runAt)
                    { Schedule = schedule.Name, SlotUs = slotUs }, ct);
                }
                jobs += tenants.Count;
                if (tenants.Count < TenantPageSize) break;
                after = tenants[^1];
            }
        }
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE job_slots SET jobs = @jobs WHERE schedule = @name AND slot_us = @slotUs",
            new { jobs, name = schedule.Name, slotUs }, tx, cancellationToken: ct));
        Log.SlotEnqueued(_logger, schedule.Name, slot, jobs);
        return true;
    }

    static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Schedule {Schedule} slot {Slot} enqueued {Jobs} job(s)")]
        public static partial void SlotEnqueued(ILogger logger, string schedule, DateTimeOffset slot, int jobs);

        [LoggerMessage(2, LogLevel.Warning, "Schedule {Schedule} missed {Skipped} slot(s) beyond the last {Kept}; they are skipped")]
        public static partial void SlotsSkipped(ILogger logger, int skipped, string schedule, int kept);

        [LoggerMessage(3, LogLevel.Warning, "Scheduler tick failed; retrying at the next interval")]
        public static partial void TickFailed(ILogger logger, Exception error);
    }
}
