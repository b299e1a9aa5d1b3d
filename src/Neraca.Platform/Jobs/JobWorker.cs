using System.Data.Common;
using Neraca.Storage;

namespace Neraca.Jobs;

/// <summary>The <c>worker</c> role: claims due jobs of the types it has handlers for, runs up to
/// <see cref="JobsOptions.WorkerConcurrency"/> at once, renews their leases, retries failures with exponential
/// backoff and dead-letters what keeps failing.</summary>
public sealed partial class JobWorker : BackgroundService
{
    /// <summary>Due jobs looked at per probe to find which types have work.</summary>
    const int ProbeLimit = 64;

    readonly JobStore _store;
    readonly Dictionary<string, IJobHandler> _handlers;
    readonly Dictionary<string, JobTypeSettings> _settings;
    readonly JobsOptions _options;
    readonly JobMetrics _metrics;
    readonly TimeProvider _time;
    readonly ILogger<JobWorker> _logger;
    volatile bool _releaseOnStop;

    public JobWorker(JobStore store, JobMetrics metrics, TimeProvider time, ILogger<JobWorker> logger)
    {
        _store = store;
        _options = store.Types.Options;
        _handlers = store.Types.Names.ToDictionary(t => t, t => store.Types.Handler(t)!, StringComparer.Ordinal);
        _settings = store.Types.Names.ToDictionary(t => t, store.Types.Settings, StringComparer.Ordinal);
        _metrics = metrics;
        _time = time;
        _logger = logger;
        Name = $"{Environment.MachineName}/{Environment.ProcessId}/{Ids.NewUlid()[^6..]}";
    }

    /// <summary>Recorded on each run so operators can tell replicas apart.</summary>
    public string Name { get; }

    TimeSpan LeaseDuration => TimeSpan.FromSeconds(_options.LeaseSeconds);

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => RunAsync(stoppingToken);

    /// <summary>Graceful stop: jobs in flight are given back at once (from their checkpoint) rather than left to
    /// their lease. An abrupt stop (cancelling <see cref="RunAsync"/>, or the process dying) leaves the lease to expire.</summary>
    public override Task StopAsync(CancellationToken cancellationToken)
    {
        _releaseOnStop = true;
        return base.StopAsync(cancellationToken);
    }

    /// <summary>The worker loop, until <paramref name="ct"/> is cancelled.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        using var slots = new SemaphoreSlim(_options.WorkerConcurrency);
        var running = new List<Task>();
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await slots.WaitAsync(ct);
                var lease = await TryClaimAsync(ct);
                if (lease is null)
                {
                    slots.Release();
                    await Task.Delay(TimeSpan.FromMilliseconds(_options.PollIntervalMs), _time, ct);
                    continue;
                }
                running.RemoveAll(t => t.IsCompleted);
                running.Add(RunAndReleaseSlotAsync(lease, slots, ct));
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        await Task.WhenAll(running);
    }

    async Task RunAndReleaseSlotAsync(JobLease lease, SemaphoreSlim slots, CancellationToken ct)
    {
        await Task.Yield();
        try { await ExecuteLeaseAsync(lease, ct); }
        finally { slots.Release(); }
    }

    /// <summary>Claims one due job and runs it to the end of this attempt. False when nothing was due.</summary>
    public async Task<bool> TryRunNextAsync(CancellationToken ct)
    {
        var lease = await TryClaimAsync(ct);
        if (lease is null) return false;
        await ExecuteLeaseAsync(lease, ct);
        return true;
    }

    async Task<JobLease?> TryClaimAsync(CancellationToken ct)
    {
        try
        {
            foreach (var type in await _store.DueTypesAsync(ProbeLimit, ct))
            {
                if (!_settings.TryGetValue(type, out var settings)) continue; // a newer replica's type
                var lease = await _store.ClaimAsync(type, settings.ConcurrencyMax, Name, LeaseDuration, ct);
                if (lease is not null) return lease;
            }
        }
        catch (Exception e) when (e is DbException or TimeoutException)
        {
            Log.ClaimFailed(_logger, e);
        }
        return null;
    }

    async Task ExecuteLeaseAsync(JobLease lease, CancellationToken ct)
    {
        var handler = _handlers[lease.Type];
        var started = _time.GetTimestamp();
        if (lease.Attempt > lease.AttemptsMax)
        {
            // Claimed again after its last attempt's worker died: a job that kills its workers stops here.
            await FinishFailedAsync(lease, started, new PermanentJobFailureException("attempts exhausted: the last attempt's worker stopped without finishing"));
            return;
        }

        using var handlerCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var heartbeatCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var leaseLost = false;
        var heartbeat = HeartbeatAsync(lease, () => { leaseLost = true; handlerCts.Cancel(); }, heartbeatCts.Token);
        try
        {
            using (_logger.BeginScope(new Dictionary<string, object> { ["job_id"] = lease.JobId, ["tenant_id"] = lease.TenantId }))
            {
                var execution = new JobExecution(lease, _settings[lease.Type], _store, _time, LeaseDuration, _metrics);
                await handler.ExecuteAsync(execution, handlerCts.Token);
            }
            if (await _store.CompleteAsync(lease, CancellationToken.None))
            {
                _metrics.Run(lease.Type, "succeeded", _time.GetElapsedTime(started));
                Log.Succeeded(_logger, lease.Type, lease.JobId, lease.Attempt);
            }
            else
            {
                LeaseLost(lease, started);
            }
        }
        catch (Exception) when (ct.IsCancellationRequested)
        {
            // Stopping. The chunk in flight (if any) rolled back with its transaction; the checkpoint is intact.
            if (_releaseOnStop) await ReleaseAsync(lease, started);
        }
        catch (Exception e) when (leaseLost || e is JobLeaseLostException)
        {
            LeaseLost(lease, started);
        }
        catch (Exception e)
        {
            await FinishFailedAsync(lease, started, e);
        }
        finally
        {
            await heartbeatCts.CancelAsync();
            await heartbeat;
        }
    }

    async Task HeartbeatAsync(JobLease lease, Action onLost, CancellationToken ct)
    {
        var interval = LeaseDuration / 3;
        try
        {
            while (true)
            {
                await Task.Delay(interval, _time, ct);
                try
                {
                    if (!await _store.RenewAsync(lease, LeaseDuration, ct))
                    {
                        onLost();
                        return;
                    }
                }
                catch (Exception e) when (e is DbException or TimeoutException)
                {
                    // Try again next beat; if the database stays away the lease expires and the chunk fence holds.
                    Log.RenewFailed(_logger, e, lease.JobId);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    async Task FinishFailedAsync(JobLease lease, long started, Exception error)
    {
        var retry = error is not PermanentJobFailureException && lease.Attempt < lease.AttemptsMax;
        var retryAt = retry ? _time.GetUtcNow() + Backoff(lease.Attempt) : (DateTimeOffset?)null;
        var text = error is PermanentJobFailureException ? error.Message : $"{error.GetType().Name}: {error.Message}";
        try
        {
            if (!await _store.FailAsync(lease, text, retryAt, CancellationToken.None))
            {
                LeaseLost(lease, started);
                return;
            }
        }
        catch (Exception e) when (e is DbException or TimeoutException)
        {
            // The attempt is not recorded; its lease expires and the job is claimed again.
            Log.RecordFailed(_logger, e, lease.JobId);
            return;
        }
        _metrics.Failure(lease.Type, dead: !retry);
        _metrics.Run(lease.Type, retry ? "retrying" : "dead", _time.GetElapsedTime(started));
        if (retry) Log.Retrying(_logger, error, lease.Type, lease.JobId, lease.Attempt, retryAt!.Value);
        else Log.DeadLettered(_logger, error, lease.Type, lease.JobId, lease.Attempt);
    }

    async Task ReleaseAsync(JobLease lease, long started)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            if (await _store.ReleaseAsync(lease, timeout.Token))
                _metrics.Run(lease.Type, "released", _time.GetElapsedTime(started));
        }
        catch (Exception e) when (e is DbException or TimeoutException or OperationCanceledException)
        {
            Log.RecordFailed(_logger, e, lease.JobId);
        }
    }

    void LeaseLost(JobLease lease, long started)
    {
        _metrics.Run(lease.Type, "lease_lost", _time.GetElapsedTime(started));
        Log.LeaseLost(_logger, lease.Type, lease.JobId, lease.Attempt);
    }

    /// <summary>Exponential: base × 2^(attempt−1), capped, plus up to 20% jitter so retries of many jobs that failed
    /// together (a database blip) do not come back together.</summary>
    internal TimeSpan Backoff(int attempt)
    {
        var exponent = Math.Min(attempt - 1, 30);
        var ms = Math.Min((double)_options.BackoffBaseMs * Math.Pow(2, exponent), _options.BackoffMaxMs);
        return TimeSpan.FromMilliseconds(ms * (1 + Random.Shared.NextDouble() * 0.2));
    }

    static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Job {Type} {JobId} succeeded on attempt {Attempt}")]
        public static partial void Succeeded(ILogger logger, string type, string jobId, int attempt);

        [LoggerMessage(2, LogLevel.Warning, "Job {Type} {JobId} failed on attempt {Attempt}; retrying at {RetryAt}")]
        public static partial void Retrying(ILogger logger, Exception error, string type, string jobId, int attempt, DateTimeOffset retryAt);

        [LoggerMessage(3, LogLevel.Error, "Job {Type} {JobId} is dead-lettered after attempt {Attempt}")]
        public static partial void DeadLettered(ILogger logger, Exception error, string type, string jobId, int attempt);

        [LoggerMessage(4, LogLevel.Warning, "Job {Type} {JobId} attempt {Attempt} lost its lease to another worker; it stopped without writing")]
        public static partial void LeaseLost(ILogger logger, string type, string jobId, int attempt);

        [LoggerMessage(5, LogLevel.Warning, "Claiming jobs failed; retrying at the next poll")]
        public static partial void ClaimFailed(ILogger logger, Exception error);

        [LoggerMessage(6, LogLevel.Warning, "Renewing the lease of job {JobId} failed")]
        public static partial void RenewFailed(ILogger logger, Exception error, string jobId);

        [LoggerMessage(7, LogLevel.Error, "Recording the outcome of job {JobId} failed; its lease will expire and it will run again")]
        public static partial void RecordFailed(ILogger logger, Exception error, string jobId);
    }
}
