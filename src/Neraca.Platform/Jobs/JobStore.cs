using System.Data.Common;
using System.Security.Cryptography;
using System.Text;
using Dapper;
using Neraca.Storage;

namespace Neraca.Jobs;

/// <summary>A worker's claim on a job: the token is the id of the run, and every write the run makes checks it
/// (a fencing token), so a worker whose lease was taken over can no longer change anything.</summary>
public sealed record JobLease(string JobId, string TenantId, string Type, string Payload, int Attempt, int AttemptsMax,
    string Token, string? Checkpoint, long Processed, string? Schedule, long? SlotUs);

/// <summary>A job as <c>GET /v1/jobs</c> shows it.</summary>
public sealed record JobView(string Id, string Type, string? Key, JobState State, int Attempts, int AttemptsMax,
    DateTimeOffset? RunAt, DateTimeOffset? LeaseExpiresAt, long Processed, string? Checkpoint, string? LastError,
    string? Schedule, DateTimeOffset? Slot, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt, DateTimeOffset? FinishedAt)
{
    public IReadOnlyList<JobRunView>? Runs { get; init; }
}

/// <summary>One attempt of a job.</summary>
public sealed record JobRunView(string Id, int Attempt, string Worker, DateTimeOffset StartedAt, DateTimeOffset? FinishedAt,
    JobRunResult? Result, string? Error, long Processed);

/// <summary>The jobs tables: enqueue, claim, checkpoint, finish, list. Every statement of a running job checks the
/// lease token; claims of one type are serialized (advisory lock on PostgreSQL, the write lock on SQLite) so the
/// per-type concurrency limit holds across replicas.</summary>
public sealed class JobStore(Database database, SqlDialect dialect, JobTypes types, TimeProvider time)
{
    /// <summary>Longest error text stored per attempt.</summary>
    public const int ErrorLengthMax = 2000;

    /// <summary>Runs returned with one job.</summary>
    public const int RunsPerJobMax = 200;

    public Database Database => database;

    public SqlDialect Dialect => dialect;

    public JobTypes Types => types;

    public async Task<Enqueued> EnqueueAsync(JobRequest request, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return await EnqueueAsync(connection, null, request, ct);
    }

    /// <summary>Enqueues inside the caller's transaction, so a job can be committed with the change that needs it.</summary>
    public async Task<Enqueued> EnqueueAsync(DbConnection connection, DbTransaction? tx, JobRequest request, CancellationToken ct)
    {
        Validate(request);
        var attemptsMax = types.Settings(request.Type).AttemptsMax;
        var now = DbTime.ToMicros(time.GetUtcNow());
        var id = "job_" + Ids.NewUlid();
        var rows = await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO jobs (id, tenant_id, type, job_key, payload, state, attempts, attempts_max, due_at_us,
                              schedule, slot_us, created_at_us, updated_at_us)
            VALUES (@id, @TenantId, @Type, @Key, @Payload, 1, 0, @attemptsMax, @due, @Schedule, @SlotUs, @now, @now)
            ON CONFLICT DO NOTHING
            """,
            new { id, request.TenantId, request.Type, request.Key, request.Payload, attemptsMax,
                  due = request.RunAt is { } at ? DbTime.ToMicros(at) : now, request.Schedule, request.SlotUs, now },
            tx, cancellationToken: ct));
        if (rows == 1) return new Enqueued(id, true);
        var existing = await connection.ExecuteScalarAsync<string>(new CommandDefinition(
            "SELECT id FROM jobs WHERE tenant_id = @TenantId AND type = @Type AND job_key = @Key",
            new { request.TenantId, request.Type, request.Key }, tx, cancellationToken: ct));
        return new Enqueued(existing ?? throw new InvalidOperationException($"Job {id} was neither inserted nor found by key."), false);
    }

    static void Validate(JobRequest request)
    {
        if (!Ids.IsValid(request.TenantId)) throw new ArgumentException("Invalid tenant id.", nameof(request));
        if (string.IsNullOrEmpty(request.Type) || request.Type.Length > Ids.LengthMax) throw new ArgumentException("Invalid job type.", nameof(request));
        if (request.Key is { Length: 0 or > JobRequest.KeyLengthMax }) throw new ArgumentException("A job key is 1-200 characters.", nameof(request));
        if (request.Payload.Length > JobRequest.PayloadLengthMax) throw new ArgumentException("Job payload exceeds 64 KiB.", nameof(request));
    }

    /// <summary>Types that have due work, most overdue first (a cheap probe before per-type claims).</summary>
    public async Task<IReadOnlyList<string>> DueTypesAsync(int limit, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var types = await connection.QueryAsync<string>(new CommandDefinition(
            "SELECT type FROM jobs WHERE state IN (1, 2) AND due_at_us <= @now ORDER BY due_at_us LIMIT @limit",
            new { now = DbTime.ToMicros(time.GetUtcNow()), limit }, cancellationToken: ct));
        return types.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>Claims the most overdue job of <paramref name="type"/> (queued and due, or running with an expired
    /// lease) unless <paramref name="concurrencyMax"/> jobs of the type already hold live leases. Null when none.</summary>
    public async Task<JobLease?> ClaimAsync(string type, int concurrencyMax, string worker, TimeSpan lease, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        var now = DbTime.ToMicros(time.GetUtcNow());
        // Serializes claims of one type across replicas, so the count below cannot be raced past the limit.
        await dialect.LockAsync(connection, tx, AdvisoryKey("neraca.jobs.claim:" + type), ct);
        var running = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT count(*) FROM jobs WHERE type = @type AND state = 2 AND due_at_us > @now",
            new { type, now }, tx, cancellationToken: ct));
        if (running >= concurrencyMax) return null;

        var token = "run_" + Ids.NewUlid();
        var row = await connection.QuerySingleOrDefaultAsync<ClaimRow>(new CommandDefinition($"""
            UPDATE jobs SET state = 2, attempts = attempts + 1, lock_token = @token, due_at_us = @leaseUntil, updated_at_us = @now
            WHERE id = (SELECT id FROM jobs WHERE type = @type AND state IN (1, 2) AND due_at_us <= @now
                        ORDER BY due_at_us LIMIT 1{dialect.SkipLocked()})
            RETURNING id, tenant_id, payload, attempts, attempts_max, checkpoint, processed, schedule, slot_us
            """, new { type, token, now, leaseUntil = now + (long)lease.TotalMicroseconds }, tx, cancellationToken: ct));
        if (row is null) return null;

        // A run still open belongs to a worker whose lease expired: it is abandoned, whatever it is doing.
        await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE job_runs SET finished_at_us = @now, result = 3, error = 'lease expired: the worker stopped renewing it'
            WHERE tenant_id = @tenant AND job_id = @id AND finished_at_us IS NULL
            """, new { now, tenant = row.tenant_id, row.id }, tx, cancellationToken: ct));
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO job_runs (id, tenant_id, job_id, attempt, worker, started_at_us) VALUES (@token, @tenant, @id, @attempt, @worker, @now)
            """, new { token, tenant = row.tenant_id, row.id, attempt = row.attempts, worker, now }, tx, cancellationToken: ct));
        await tx.CommitAsync(ct);
        return new JobLease(row.id, row.tenant_id, type, row.payload, row.attempts, row.attempts_max, token, row.checkpoint,
            row.processed, row.schedule, row.slot_us);
    }

    /// <summary>Extends the lease. False when it was lost (another worker owns the job now).</summary>
    public async Task<bool> RenewAsync(JobLease lease, TimeSpan duration, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var now = DbTime.ToMicros(time.GetUtcNow());
        return await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE jobs SET due_at_us = @until, updated_at_us = @now WHERE id = @JobId AND lock_token = @Token",
            new { lease.JobId, lease.Token, now, until = now + (long)duration.TotalMicroseconds }, cancellationToken: ct)) == 1;
    }

    /// <summary>First statement of a chunk's transaction: checks the lease is still ours, extends it and locks the job
    /// row until commit; returns the committed checkpoint to resume from. Throws <see cref="JobLeaseLostException"/>.</summary>
    public async Task<(string? Checkpoint, long Processed)> BeginChunkAsync(DbConnection connection, DbTransaction tx, JobLease lease,
        TimeSpan duration, CancellationToken ct)
    {
        var now = DbTime.ToMicros(time.GetUtcNow());
        var row = await connection.QuerySingleOrDefaultAsync<CheckpointRow>(new CommandDefinition("""
            UPDATE jobs SET due_at_us = @until, updated_at_us = @now WHERE id = @JobId AND lock_token = @Token
            RETURNING checkpoint, processed
            """, new { lease.JobId, lease.Token, now, until = now + (long)duration.TotalMicroseconds }, tx, cancellationToken: ct));
        return row is null ? throw new JobLeaseLostException(lease.JobId) : (row.checkpoint, row.processed);
    }

    /// <summary>Last statement of a chunk's transaction: the new checkpoint commits with the chunk's effect.</summary>
    public async Task SaveChunkAsync(DbConnection connection, DbTransaction tx, JobLease lease, string? checkpoint, long processed, CancellationToken ct)
    {
        var rows = await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE jobs SET checkpoint = @checkpoint, processed = processed + @processed WHERE id = @JobId AND lock_token = @Token
            """, new { lease.JobId, lease.Token, checkpoint, processed }, tx, cancellationToken: ct));
        if (rows != 1) throw new JobLeaseLostException(lease.JobId);
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE job_runs SET processed = processed + @processed WHERE id = @Token",
            new { lease.Token, processed }, tx, cancellationToken: ct));
    }

    /// <summary>Marks the job succeeded. False when the lease was lost first.</summary>
    public Task<bool> CompleteAsync(JobLease lease, CancellationToken ct) =>
        FinishAsync(lease, JobState.Succeeded, null, JobRunResult.Succeeded, null, ct);

    /// <summary>Records a failed attempt: queued again at <paramref name="retryAt"/>, or dead when it is null.</summary>
    public Task<bool> FailAsync(JobLease lease, string error, DateTimeOffset? retryAt, CancellationToken ct) =>
        FinishAsync(lease, retryAt is null ? JobState.Dead : JobState.Queued, retryAt, JobRunResult.Failed, error, ct);

    /// <summary>Gives the job back on graceful shutdown (the attempt still counts), so another replica resumes it from
    /// its checkpoint now instead of when the lease expires.</summary>
    public Task<bool> ReleaseAsync(JobLease lease, CancellationToken ct) =>
        FinishAsync(lease, JobState.Queued, time.GetUtcNow(), JobRunResult.Abandoned, "worker shut down; released", ct);

    async Task<bool> FinishAsync(JobLease lease, JobState state, DateTimeOffset? dueAt, JobRunResult result, string? error, CancellationToken ct)
    {
        if (error is { Length: > ErrorLengthMax }) error = error[..ErrorLengthMax];
        await using var connection = await database.OpenAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        var now = DbTime.ToMicros(time.GetUtcNow());
        var final = state is JobState.Succeeded or JobState.Dead;
        var rows = await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE jobs SET state = @state, due_at_us = @due, lock_token = NULL, last_error = @error, updated_at_us = @now,
                            finished_at_us = @finished
            WHERE id = @JobId AND lock_token = @Token
            """, new
            {
                state = (int)state, due = dueAt is { } d ? DbTime.ToMicros(d) : now, error = result == JobRunResult.Abandoned ? null : error,
                now, finished = final ? now : (long?)null, lease.JobId, lease.Token,
            }, tx, cancellationToken: ct));
        if (rows != 1) return false; // lease lost: the new owner has already closed this run as abandoned
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE job_runs SET finished_at_us = @now, result = @result, error = @error WHERE id = @Token",
            new { now, result = (int)result, error, lease.Token }, tx, cancellationToken: ct));
        await tx.CommitAsync(ct);
        return true;
    }

    /// <summary>Puts a dead job back in the queue, due now, with a fresh attempt budget (attempt numbers go on, so its
    /// runs stay one history). It resumes from its last committed checkpoint. False when the tenant has no such dead job.</summary>
    public async Task<bool> RetryDeadAsync(string tenantId, string id, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var type = await connection.ExecuteScalarAsync<string>(new CommandDefinition(
            "SELECT type FROM jobs WHERE tenant_id = @tenantId AND id = @id AND state = 4", new { tenantId, id }, cancellationToken: ct));
        if (type is null) return false;
        var now = DbTime.ToMicros(time.GetUtcNow());
        return await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE jobs SET state = 1, attempts_max = attempts + @budget, due_at_us = @now, lock_token = NULL, finished_at_us = NULL,
                            updated_at_us = @now
            WHERE tenant_id = @tenantId AND id = @id AND state = 4
            """, new { tenantId, id, budget = types.Settings(type).AttemptsMax, now }, cancellationToken: ct)) == 1;
    }

    public async Task<IReadOnlyList<JobView>> ListAsync(string tenantId, JobState? state, string? type, string? after, int limit, CancellationToken ct)
    {
        var sql = new StringBuilder(SelectJob).Append(" WHERE tenant_id = @tenantId");
        if (state is not null) sql.Append(" AND state = @state");
        if (type is not null) sql.Append(" AND type = @type");
        if (after is not null) sql.Append(" AND id < @after");
        sql.Append(" ORDER BY id DESC LIMIT @limit");
        await using var connection = await database.OpenReadAsync(ct);
        var rows = await connection.QueryAsync<JobRow>(new CommandDefinition(sql.ToString(),
            new { tenantId, state = (int?)state, type, after, limit }, cancellationToken: ct));
        return rows.Select(r => r.ToView()).ToList();
    }

    public async Task<JobView?> GetAsync(string tenantId, string id, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var row = await connection.QuerySingleOrDefaultAsync<JobRow>(new CommandDefinition(
            SelectJob + " WHERE tenant_id = @tenantId AND id = @id", new { tenantId, id }, cancellationToken: ct));
        if (row is null) return null;
        var runs = await connection.QueryAsync<RunRow>(new CommandDefinition("""
            SELECT id, attempt, worker, started_at_us, finished_at_us, result, error, processed FROM job_runs
            WHERE tenant_id = @tenantId AND job_id = @id ORDER BY attempt, started_at_us LIMIT @limit
            """, new { tenantId, id, limit = RunsPerJobMax }, cancellationToken: ct));
        return row.ToView() with { Runs = runs.Select(r => r.ToView()).ToList() };
    }

    const string SelectJob = """
        SELECT id, type, job_key, state, attempts, attempts_max, due_at_us, processed, checkpoint, last_error, schedule, slot_us,
               created_at_us, updated_at_us, finished_at_us
        FROM jobs
        """;

    /// <summary>A stable 64-bit key for a PostgreSQL advisory lock (string.GetHashCode differs per process).</summary>
    public static long AdvisoryKey(string name) => BitConverter.ToInt64(SHA256.HashData(Encoding.UTF8.GetBytes(name)), 0);

#pragma warning disable IDE1006 // Dapper maps snake_case columns onto these names.
    sealed class ClaimRow
    {
        public string id { get; set; } = "";
        public string tenant_id { get; set; } = "";
        public string payload { get; set; } = "";
        public int attempts { get; set; }
        public int attempts_max { get; set; }
        public string? checkpoint { get; set; }
        public long processed { get; set; }
        public string? schedule { get; set; }
        public long? slot_us { get; set; }
    }

    sealed class CheckpointRow
    {
        public string? checkpoint { get; set; }
        public long processed { get; set; }
    }

    sealed class JobRow
    {
        public string id { get; set; } = "";
        public string type { get; set; } = "";
        public string? job_key { get; set; }
        public int state { get; set; }
        public int attempts { get; set; }
        public int attempts_max { get; set; }
        public long due_at_us { get; set; }
        public long processed { get; set; }
        public string? checkpoint { get; set; }
        public string? last_error { get; set; }
        public string? schedule { get; set; }
        public long? slot_us { get; set; }
        public long created_at_us { get; set; }
        public long updated_at_us { get; set; }
        public long? finished_at_us { get; set; }

        public JobView ToView()
        {
            var s = (JobState)state;
            var due = DbTime.FromMicros(due_at_us);
            return new JobView(id, type, job_key, s, attempts, attempts_max, s == JobState.Queued ? due : null,
                s == JobState.Running ? due : null, processed, checkpoint, last_error, schedule,
                slot_us is { } slot ? DbTime.FromMicros(slot) : null, DbTime.FromMicros(created_at_us), DbTime.FromMicros(updated_at_us),
                finished_at_us is { } f ? DbTime.FromMicros(f) : null);
        }
    }

    sealed class RunRow
    {
        public string id { get; set; } = "";
        public int attempt { get; set; }
        public string worker { get; set; } = "";
        public long started_at_us { get; set; }
        public long? finished_at_us { get; set; }
        public int? result { get; set; }
        public string? error { get; set; }
        public long processed { get; set; }

        public JobRunView ToView() => new(id, attempt, worker, DbTime.FromMicros(started_at_us),
            finished_at_us is { } f ? DbTime.FromMicros(f) : null, (JobRunResult?)result, error, processed);
    }
#pragma warning restore IDE1006
}
