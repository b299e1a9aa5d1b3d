using Microsoft.Extensions.Options;
using Neraca.Hosting;

namespace Neraca.Jobs;

public static class JobsModule
{
    /// <summary>The job system: queue and API in every role, the worker loop in the <c>worker</c> role, the recurring
    /// scheduler in the <c>scheduler</c> role, and the built-in jobs with their schedules.</summary>
    public static WebApplicationBuilder AddJobs(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<JobsOptions>()
            .Bind(builder.Configuration.GetSection("Jobs"))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<JobsOptions>, JobsOptionsValidator>();
        builder.Services.AddSingleton<JobTypes>();
        builder.Services.AddSingleton<JobStore>();
        builder.Services.AddSingleton<JobMetrics>();

        // The platform's own jobs; every capability registers its jobs in its own AddXxx. Schedules are defaults:
        // Jobs:Recurring:<name>:Cron|TimeZone|SpreadWindowSeconds|Enabled.
        builder.Services.AddSingleton<IJobHandler, PruneIdempotencyKeysJob>();
        builder.Services.AddSingleton<IJobHandler, PruneJobHistoryJob>();
        builder.Services.AddSingleton(new RecurringJob("idempotency.prune", PruneIdempotencyKeysJob.TypeName, "17 * * * *"));
        builder.Services.AddSingleton(new RecurringJob("jobs.prune", PruneJobHistoryJob.TypeName, "43 3 * * *"));

        var options = builder.Configuration.Get<NeracaOptions>() ?? new NeracaOptions();
        NeracaRolesParser.TryParse(options.Role, out var roles);
        if (roles.HasFlag(NeracaRoles.Worker))
        {
            builder.Services.AddSingleton<JobWorker>();
            builder.Services.AddHostedService(sp => sp.GetRequiredService<JobWorker>());
        }
        if (roles.HasFlag(NeracaRoles.Scheduler))
        {
            builder.Services.AddSingleton<JobScheduler>();
            builder.Services.AddHostedService(sp => sp.GetRequiredService<JobScheduler>());
        }
        return builder;
    }

    /// <summary>Checks what data annotations cannot: per-type and per-schedule overrides, cron expressions, time zones.</summary>
    sealed class JobsOptionsValidator : IValidateOptions<JobsOptions>
    {
        public ValidateOptionsResult Validate(string? name, JobsOptions options)
        {
            var errors = new List<string>();
            if (options.BackoffMaxMs < options.BackoffBaseMs) errors.Add("Jobs:BackoffMaxMs must be at least Jobs:BackoffBaseMs.");
            foreach (var (type, o) in options.Types)
            {
                if (o.ConcurrencyMax is < 1) errors.Add($"Jobs:Types:{type}:ConcurrencyMax must be at least 1.");
                if (o.AttemptsMax is < 1 or > 100) errors.Add($"Jobs:Types:{type}:AttemptsMax must be 1-100.");
                if (o.ChunkSize is < 1 or > 100_000) errors.Add($"Jobs:Types:{type}:ChunkSize must be 1-100000.");
                if (o.ItemsPerSecondMax is < 0) errors.Add($"Jobs:Types:{type}:ItemsPerSecondMax must not be negative.");
            }
            foreach (var (schedule, o) in options.Recurring)
            {
                try
                {
                    if (o.Cron is not null) ResolvedSchedule.ParseCron(o.Cron);
                    if (o.TimeZone is not null) ResolvedSchedule.FindZone(o.TimeZone);
                }
                catch (FormatException e)
                {
                    errors.Add($"Jobs:Recurring:{schedule}: {e.Message}");
                }
                if (o.SpreadWindowSeconds is < 0) errors.Add($"Jobs:Recurring:{schedule}:SpreadWindowSeconds must not be negative.");
            }
            return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
        }
    }
}
