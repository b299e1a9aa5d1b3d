using System.ComponentModel.DataAnnotations;

namespace Neraca.Jobs;

/// <summary>Settings of the job system (section <c>Jobs</c>, e.g. <c>NERACA_JOBS__WORKER_CONCURRENCY=8</c>).</summary>
public sealed class JobsOptions
{
    /// <summary>How often an idle worker looks for due jobs, in milliseconds. Default 1000.</summary>
    [Range(10, 60_000)]
    public int PollIntervalMs { get; set; } = 1000;

    /// <summary>Jobs one worker process runs at the same time. Default 4.</summary>
    [Range(1, 256)]
    public int WorkerConcurrency { get; set; } = 4;

    /// <summary>How long a claimed job stays claimed without a heartbeat, in seconds. A worker renews the lease every
    /// third of it; when a worker dies, another takes the job over after this long. Default 60.</summary>
    [Range(2, 3600)]
    public int LeaseSeconds { get; set; } = 60;

    /// <summary>Attempts before a job is dead-lettered, unless its type says otherwise. Default 8.</summary>
    [Range(1, 100)]
    public int AttemptsMax { get; set; } = 8;

    /// <summary>Delay before the first retry, in milliseconds; it doubles with each attempt. Default 2000.</summary>
    [Range(1, 3_600_000)]
    public int BackoffBaseMs { get; set; } = 2000;

    /// <summary>Longest delay between two attempts, in milliseconds. Default one hour.</summary>
    [Range(1, 86_400_000)]
    public int BackoffMaxMs { get; set; } = 3_600_000;

    /// <summary>How often a scheduler checks for due recurring slots, in milliseconds. Default 5000.</summary>
    [Range(10, 60_000)]
    public int SchedulerIntervalMs { get; set; } = 5000;

    /// <summary>Slots of one schedule enqueued after an outage; older missed slots are skipped (and logged).
    /// Default 3.</summary>
    [Range(1, 1000)]
    public int MissedSlotsMax { get; set; } = 3;

    /// <summary>Tenant that owns cluster-wide jobs (expiry, pruning) and sees them in <c>GET /v1/jobs</c>:
    /// the operator's tenant. Default <c>default</c>.</summary>
    [Required]
    public string SystemTenantId { get; set; } = "default";

    /// <summary>Finished jobs (succeeded or dead) and their runs are deleted this many days after they finished. Default 30.</summary>
    [Range(1, 3650)]
    public int HistoryRetentionDays { get; set; } = 30;

    /// <summary>Per job type overrides, by type name (<c>Jobs:Types:idempotency.prune:ItemsPerSecondMax</c>).</summary>
    public Dictionary<string, JobTypeOptions> Types { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Per recurring schedule overrides, by schedule name (<c>Jobs:Recurring:audit.verify:Cron</c>).</summary>
    public Dictionary<string, RecurringOptions> Recurring { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>Overrides of one job type's defaults; unset values keep the handler's defaults.</summary>
public sealed class JobTypeOptions
{
    /// <summary>Jobs of this type running at once across all replicas.</summary>
    [Range(1, 10_000)]
    public int? ConcurrencyMax { get; set; }

    /// <summary>Attempts before dead-lettering.</summary>
    [Range(1, 100)]
    public int? AttemptsMax { get; set; }

    /// <summary>Items a chunked job handles per transaction.</summary>
    [Range(1, 100_000)]
    public int? ChunkSize { get; set; }

    /// <summary>Throughput cap of one chunked job, items per second (0 = none).</summary>
    [Range(0, 10_000_000)]
    public int? ItemsPerSecondMax { get; set; }
}

/// <summary>Overrides of one recurring schedule.</summary>
public sealed class RecurringOptions
{
    /// <summary>Cron expression (5 fields, or 6 with seconds), e.g. <c>0 2 * * *</c>.</summary>
    public string? Cron { get; set; }

    /// <summary>IANA time zone the cron expression is read in, e.g. <c>Asia/Jakarta</c>.</summary>
    public string? TimeZone { get; set; }

    /// <summary>Per-tenant schedules: each tenant's job starts at a stable offset inside this window after the slot.</summary>
    [Range(0, 86_400 * 7)]
    public int? SpreadWindowSeconds { get; set; }

    /// <summary>Turn a schedule off.</summary>
    public bool? Enabled { get; set; }
}

/// <summary>What a job type asks for unless configured otherwise.</summary>
public sealed record JobTypeDefaults
{
    public int ConcurrencyMax { get; init; } = 1;
    public int? AttemptsMax { get; init; }
    public int ChunkSize { get; init; } = 1000;
    public int ItemsPerSecondMax { get; init; }
}

/// <summary>The settings in force for one job type: handler defaults with configuration on top.</summary>
public sealed record JobTypeSettings(int ConcurrencyMax, int AttemptsMax, int ChunkSize, int ItemsPerSecondMax)
{
    public static JobTypeSettings Resolve(JobsOptions options, string type, JobTypeDefaults defaults)
    {
        options.Types.TryGetValue(type, out var o);
        return new JobTypeSettings(
            o?.ConcurrencyMax ?? defaults.ConcurrencyMax,
            o?.AttemptsMax ?? defaults.AttemptsMax ?? options.AttemptsMax,
            o?.ChunkSize ?? defaults.ChunkSize,
            o?.ItemsPerSecondMax ?? defaults.ItemsPerSecondMax);
    }
}

/// <summary>The job types this process knows: their handlers and the settings in force for each.</summary>
public sealed class JobTypes
{
    readonly Dictionary<string, IJobHandler> _handlers;
    readonly JobsOptions _options;

    public JobTypes(IEnumerable<IJobHandler> handlers, Microsoft.Extensions.Options.IOptions<JobsOptions> options)
    {
        _handlers = handlers.ToDictionary(h => h.Type, StringComparer.Ordinal);
        _options = options.Value;
    }

    public JobsOptions Options => _options;

    public IReadOnlyCollection<string> Names => _handlers.Keys;

    public IJobHandler? Handler(string type) => _handlers.GetValueOrDefault(type);

    /// <summary>Settings of a type; a type without a handler here gets the global defaults.</summary>
    public JobTypeSettings Settings(string type) =>
        JobTypeSettings.Resolve(_options, type, _handlers.GetValueOrDefault(type)?.Defaults ?? new JobTypeDefaults());
}
