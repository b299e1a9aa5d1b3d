using System.Diagnostics.Metrics;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Neraca.Jobs;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Jobs;

/// <summary>A fresh migrated database and any number of job-system replicas on it, each with its own connection
/// pool, handlers and clock: what separate processes would have, minus the process boundary.</summary>
public sealed class JobRig : IAsyncDisposable
{
    public static readonly DateTimeOffset Start = new(2026, 3, 1, 0, 0, 30, TimeSpan.Zero);

    readonly List<Replica> _replicas = [];

    JobRig(StoreKind kind, string setting, Database admin)
    {
        Kind = kind;
        Setting = setting;
        Admin = admin;
    }

    public StoreKind Kind { get; }
    public string Setting { get; }

    /// <summary>The test's own connection pool, for setting up and checking tables.</summary>
    public Database Admin { get; }

    public static async Task<JobRig> CreateAsync(StoreKind kind)
    {
        var setting = await TestStores.NewDatabaseAsync(kind);
        var admin = Database.Create(setting, "unused");
        await new MigrationRunner(admin, SqlDialect.For(admin), TestMigrations.All(kind), NullLogger<MigrationRunner>.Instance).ApplyAsync(CancellationToken.None);
        return new JobRig(kind, setting, admin);
    }

    public Replica Replica(TimeProvider time, IEnumerable<IJobHandler> handlers, Action<JobsOptions>? configure = null,
        IEnumerable<RecurringJob>? schedules = null)
    {
        var options = new JobsOptions { LeaseSeconds = 30, BackoffBaseMs = 1000, BackoffMaxMs = 60_000 };
        configure?.Invoke(options);
        var database = Database.Create(Setting, "unused");
        var types = new JobTypes(handlers, Options.Create(options));
        var store = new JobStore(database, SqlDialect.For(database), types, time);
        var meters = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var metrics = new JobMetrics(meters.GetRequiredService<IMeterFactory>());
        var replica = new Replica(database, store, meters,
            new JobWorker(store, metrics, time, NullLogger<JobWorker>.Instance),
            new JobScheduler(store, schedules ?? [], time, NullLogger<JobScheduler>.Instance));
        _replicas.Add(replica);
        return replica;
    }

    public async Task<T> ScalarAsync<T>(string sql, object? args = null)
    {
        await using var connection = await Admin.OpenAsync(CancellationToken.None);
        return await connection.ExecuteScalarAsync<T>(sql, args) ?? throw new InvalidOperationException("no value: " + sql);
    }

    public async Task<List<T>> QueryAsync<T>(string sql, object? args = null)
    {
        await using var connection = await Admin.OpenAsync(CancellationToken.None);
        return (await connection.QueryAsync<T>(sql, args)).ToList();
    }

    public async Task ExecuteAsync(string sql, object? args = null)
    {
        await using var connection = await Admin.OpenAsync(CancellationToken.None);
        await connection.ExecuteAsync(sql, args);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var r in _replicas) await r.DisposeAsync();
        await Admin.DisposeAsync();
    }
}

public sealed record Replica(Database Database, JobStore Store, ServiceProvider Services, JobWorker Worker, JobScheduler Scheduler) : IAsyncDisposable
{
    public async ValueTask DisposeAsync()
    {
        await Database.DisposeAsync();
        await Services.DisposeAsync();
    }
}

/// <summary>A chunked job that writes one row per item into <c>chunk_items</c> (deliberately without a unique key,
/// so an item applied twice shows up as a duplicate), with hooks to stop a replica inside or between chunks.</summary>
public sealed class ChunkWriterJob : IJobHandler
{
    public const string TypeName = "test.chunk_writer";
    public const string CreateTable = "CREATE TABLE chunk_items (job_id text NOT NULL, item integer NOT NULL, chunk integer NOT NULL)";

    public string Type => TypeName;

    public JobTypeDefaults Defaults => new() { ConcurrencyMax = 2, ChunkSize = 100 };

    /// <summary>Called inside chunk N's transaction, after its rows are written and before the checkpoint commits.</summary>
    public Func<int, CancellationToken, Task>? InsideChunk { get; set; }

    /// <summary>Called after chunk N committed, before the next begins.</summary>
    public Func<int, CancellationToken, Task>? AfterChunk { get; set; }

    public async Task ExecuteAsync(JobExecution job, CancellationToken ct)
    {
        var total = int.Parse(job.Payload, System.Globalization.CultureInfo.InvariantCulture);
        while (await job.RunChunkAsync(async (chunk, token) =>
        {
            var n = chunk.Checkpoint is null ? 0 : int.Parse(chunk.Checkpoint, System.Globalization.CultureInfo.InvariantCulture);
            var first = n * chunk.ChunkSize;
            var items = Enumerable.Range(first, Math.Min(chunk.ChunkSize, total - first)).ToList();
            await chunk.Connection.ExecuteAsync(new CommandDefinition(
                "INSERT INTO chunk_items (job_id, item, chunk) VALUES (@job, @item, @n)",
                items.Select(i => new { job = job.JobId, item = i, n }), chunk.Transaction, cancellationToken: token));
            if (InsideChunk is not null) await InsideChunk(n, token);
            var next = n + 1;
            return new ChunkResult(next.ToString(System.Globalization.CultureInfo.InvariantCulture), items.Count, next * chunk.ChunkSize >= total);
        }, ct))
        {
            if (AfterChunk is not null) await AfterChunk(int.Parse(job.Checkpoint!, System.Globalization.CultureInfo.InvariantCulture) - 1, ct);
        }
    }
}

/// <summary>A job that records each run in <c>recorded_runs</c> and can be told to fail.</summary>
public sealed class RecorderJob(Database database, string type = RecorderJob.TypeName) : IJobHandler
{
    public const string TypeName = "test.recorder";
    public const string CreateTable = "CREATE TABLE recorded_runs (job_id text NOT NULL, tenant_id text NOT NULL, slot_us bigint NULL, attempt integer NOT NULL)";

    public string Type => type;

    public int ConcurrencyMax { get; init; } = 1;
    public int? AttemptsMax { get; init; }

    public JobTypeDefaults Defaults => new() { ConcurrencyMax = ConcurrencyMax, AttemptsMax = AttemptsMax };

    /// <summary>Thrown instead of running, when set.</summary>
    public Func<Exception>? Failure { get; set; }

    /// <summary>Awaited before recording, when set.</summary>
    public Func<CancellationToken, Task>? Gate { get; set; }

    public async Task ExecuteAsync(JobExecution job, CancellationToken ct)
    {
        if (Failure is not null) throw Failure();
        if (Gate is not null) await Gate(ct);
        await using var connection = await database.OpenAsync(ct);
        await connection.ExecuteAsync(new CommandDefinition(
            "INSERT INTO recorded_runs (job_id, tenant_id, slot_us, attempt) VALUES (@JobId, @TenantId, @slot, @Attempt)",
            new { job.JobId, job.TenantId, slot = job.Slot is { } s ? DbTime.ToMicros(s) : (long?)null, job.Attempt }, cancellationToken: ct));
    }
}
