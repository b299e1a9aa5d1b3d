using Dapper;
using Neraca.Storage;

namespace Neraca.Jobs;

/// <summary>Deletes finished jobs (succeeded or dead), their runs and recurring-slot records older than
/// <see cref="JobsOptions.HistoryRetentionDays"/>, in bounded chunks. Without it a minutely schedule alone would add
/// half a million rows a year.</summary>
public sealed class PruneJobHistoryJob(Microsoft.Extensions.Options.IOptions<JobsOptions> options) : IJobHandler
{
    public const string TypeName = "jobs.prune";

    public string Type => TypeName;

    public JobTypeDefaults Defaults => new() { ConcurrencyMax = 1, ChunkSize = 1000, ItemsPerSecondMax = 10_000 };

    public Task ExecuteAsync(JobExecution job, CancellationToken ct) => job.RunChunksAsync(async (chunk, token) =>
    {
        var cutoff = DbTime.ToMicros(chunk.Now - TimeSpan.FromDays(options.Value.HistoryRetentionDays));
        var args = new { cutoff, limit = chunk.ChunkSize };
        const string Oldest = "SELECT tenant_id, id FROM jobs WHERE state IN (3, 4) AND finished_at_us < @cutoff ORDER BY finished_at_us LIMIT @limit";
        await chunk.Connection.ExecuteAsync(new CommandDefinition(
            $"DELETE FROM job_runs WHERE (tenant_id, job_id) IN ({Oldest})", args, chunk.Transaction, cancellationToken: token));
        var jobs = await chunk.Connection.ExecuteAsync(new CommandDefinition(
            $"DELETE FROM jobs WHERE (tenant_id, id) IN ({Oldest})", args, chunk.Transaction, cancellationToken: token));
        var slots = await chunk.Connection.ExecuteAsync(new CommandDefinition("""
            DELETE FROM job_slots WHERE (schedule, slot_us) IN (SELECT schedule, slot_us FROM job_slots WHERE slot_us < @cutoff ORDER BY slot_us LIMIT @limit)
            """, args, chunk.Transaction, cancellationToken: token));
        return new ChunkResult(null, jobs + slots, jobs < chunk.ChunkSize && slots < chunk.ChunkSize);
    }, ct);
}
