using System.Globalization;
using Npgsql;
using NpgsqlTypes;

namespace Neraca.Bench;

/// <summary>The <c>jobs</c> scenario (issue #8): what a large chunked background job does to the API. The <c>uniform</c>
/// load runs alone, then while the server's own <c>idempotency.prune</c> job deletes <see cref="BenchOptions.JobItems"/>
/// expired idempotency records (chunked, throttled by <c>Jobs:Types:idempotency.prune:ItemsPerSecondMax</c>), then
/// alone again. Reported: each window's latency, the worst window's p99 against the better alone p99 (target ≤ 2×), and how
/// long the job took (it must finish). Neraca side only: the naive baseline has no job system.</summary>
public static class JobsScenario
{
    /// <summary>Clients of the load: a steady API, not a saturated one.</summary>
    public const int Clients = 8;

    const string JobType = "idempotency.prune";

    /// <summary>The job must finish within this; a job that cannot is a failed target, not an endless run.</summary>
    static readonly TimeSpan JobTimeMax = TimeSpan.FromMinutes(20);

    public static async Task<IReadOnlyList<TargetCheck>> RunAsync(Side side, BenchOptions o, string tag, List<RunResult> results, CancellationToken ct)
    {
        RunPlan Plan(string name) => new(ScenarioNames.Jobs, name, Clients, 1, (w, t) => w.Uniform(t), (w, t) => w.Uniform(t));
        async Task<RunResult> MeasureAsync(string name, string runTag)
        {
            var r = await Benchmark.RunAsync(Plan(name), side, runTag, o, ct);
            results.Add(r);
            Benchmark.Log(Report.Line(r));
            return r;
        }

        var alone = await MeasureAsync($"jobs alone c={Clients}", tag + "a");
        Benchmark.Log($"jobs: seeding {o.JobItems:N0} expired idempotency records");
        await SeedAsync(side.ConnectionString, o.Tenant, o.JobItems, ct);
        var jobId = await EnqueueAsync(side.ConnectionString, o.Tenant, ct);
        Benchmark.Log($"jobs: enqueued {JobType} job {jobId}; measuring the load in {o.Seconds.ToString(CultureInfo.InvariantCulture)} s windows until it finishes");

        var windows = new List<RunResult>();
        var deadline = DateTime.UtcNow + JobTimeMax;
        JobRow job;
        while (!(job = await JobAsync(side.ConnectionString, jobId, ct)).Finished && DateTime.UtcNow < deadline)
            windows.Add(await MeasureAsync($"jobs with job #{windows.Count + 1}", tag + "j" + windows.Count.ToString(CultureInfo.InvariantCulture)));
        var again = await MeasureAsync($"jobs alone again c={Clients}", tag + "b");

        // The better of the two alone windows: a noisy neighbour in one of them must not flatter the ratio.
        var baseP99 = Math.Min(alone.Stats.P99Ms, again.Stats.P99Ms);
        var worst = windows.Count == 0 ? null : windows.MaxBy(w => w.Stats.P99Ms);
        var ratio = worst is null || baseP99 <= 0 ? 0 : worst.Stats.P99Ms / baseP99;
        var seconds = job.FinishedAtUs is long f ? (f - job.CreatedAtUs) / 1e6 : (double?)null;
        Benchmark.Log(string.Create(CultureInfo.InvariantCulture,
            $"jobs: state {job.State}, {job.Processed:N0} items in {seconds:0.0} s; worst p99 with the job {worst?.Stats.P99Ms:0.0} ms vs {baseP99:0.0} ms alone = {ratio:0.00}x"));
        return
        [
            new TargetCheck($"jobs: p99 while a {o.JobItems:N0}-item chunked job runs <= 2x alone",
                string.Create(CultureInfo.InvariantCulture, $"{ratio:0.00}x (worst window {worst?.Stats.P99Ms:0.0} ms, alone {baseP99:0.0} ms)"),
                worst is not null && ratio <= 2),
            new TargetCheck($"jobs: the job finishes in bounded time (< {JobTimeMax.TotalMinutes:0} min)",
                job.State == 3 ? string.Create(CultureInfo.InvariantCulture, $"{job.Processed:N0} items in {seconds:0.0} s ({job.Processed / seconds:N0}/s)")
                    : $"state {job.State}: {job.LastError}",
                job.State == 3 && job.Processed >= o.JobItems),
        ];
    }

    /// <summary>Expired records, written with binary COPY (seconds for a million).</summary>
    static async Task SeedAsync(string connectionString, string tenant, long items, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        var now = (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).Ticks / 10;
        var fingerprint = new byte[32];
        var prefix = "bench-prune-" + Guid.NewGuid().ToString("N")[..8] + "-";
        await using var writer = await connection.BeginBinaryImportAsync(
            "COPY idempotency_keys (tenant_id, key, fingerprint, state, created_at_us, expires_at_us) FROM STDIN (FORMAT BINARY)", ct);
        for (long i = 0; i < items; i++)
        {
            await writer.StartRowAsync(ct);
            await writer.WriteAsync(tenant, NpgsqlDbType.Text, ct);
            await writer.WriteAsync(prefix + i.ToString(CultureInfo.InvariantCulture), NpgsqlDbType.Text, ct);
            await writer.WriteAsync(fingerprint, NpgsqlDbType.Bytea, ct);
            await writer.WriteAsync((short)2, NpgsqlDbType.Smallint, ct);
            await writer.WriteAsync(now - 2 * 86_400_000_000L, NpgsqlDbType.Bigint, ct);
            await writer.WriteAsync(now - 86_400_000_000L + i, NpgsqlDbType.Bigint, ct);
        }
        await writer.CompleteAsync(ct);
    }

    /// <summary>A queued job row, as <c>JobStore.EnqueueAsync</c> writes it (migration 0300): due now, for the server's worker.</summary>
    static async Task<string> EnqueueAsync(string connectionString, string tenant, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        var id = "job_bench" + Guid.NewGuid().ToString("N")[..16];
        var now = (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).Ticks / 10;
        await using var command = new NpgsqlCommand("""
            INSERT INTO jobs (id, tenant_id, type, job_key, payload, state, attempts, attempts_max, due_at_us, created_at_us, updated_at_us)
            VALUES (@id, @tenant, @type, @id, '{}', 1, 0, 3, @now, @now, @now)
            """, connection);
        command.Parameters.AddWithValue("id", id);
        command.Parameters.AddWithValue("tenant", tenant);
        command.Parameters.AddWithValue("type", JobType);
        command.Parameters.AddWithValue("now", now);
        await command.ExecuteNonQueryAsync(ct);
        return id;
    }

    static async Task<JobRow> JobAsync(string connectionString, string id, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(
            "SELECT state, processed, created_at_us, finished_at_us, last_error FROM jobs WHERE id = @id", connection);
        command.Parameters.AddWithValue("id", id);
        await using var reader = await command.ExecuteReaderAsync(ct);
        if (!await reader.ReadAsync(ct)) throw new InvalidOperationException($"job {id} vanished");
        return new JobRow(reader.GetInt16(0), reader.GetInt64(1), reader.GetInt64(2),
            reader.IsDBNull(3) ? null : reader.GetInt64(3), reader.IsDBNull(4) ? null : reader.GetString(4));
    }

    /// <summary>State: 1 queued, 2 running, 3 succeeded, 4 dead.</summary>
    sealed record JobRow(short State, long Processed, long CreatedAtUs, long? FinishedAtUs, string? LastError)
    {
        public bool Finished => State is 3 or 4;
    }
}
