using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http.HttpResults;
using Neraca.Hosting;
using Neraca.Storage;
using Neraca.Tenancy;

namespace Neraca.Jobs;

/// <summary>A page of jobs, newest first.</summary>
public sealed record JobPage(IReadOnlyList<JobResponse> Data, string? NextCursor);

/// <summary>A job as the API returns it.</summary>
public sealed record JobResponse(string Id, string Type, string? Key, JobState State, int Attempts, int AttemptsMax,
    DateTimeOffset? RunAt, DateTimeOffset? LeaseExpiresAt, JobProgress Progress, string? LastError, string? Schedule,
    DateTimeOffset? Slot, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt, DateTimeOffset? FinishedAt)
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<JobRunView>? Runs { get; init; }

    public static JobResponse From(JobView v) => new(v.Id, v.Type, v.Key, v.State, v.Attempts, v.AttemptsMax, v.RunAt, v.LeaseExpiresAt,
        new JobProgress(v.Processed, v.Checkpoint), v.LastError, v.Schedule, v.Slot, v.CreatedAt, v.UpdatedAt, v.FinishedAt) { Runs = v.Runs };
}

/// <summary>Items handled by committed chunks and where the job resumes.</summary>
public sealed record JobProgress(long Processed, string? Checkpoint);

public static class JobsApi
{
    public const int PageSizeMax = 1000;
    const int PageSizeDefault = 100;

    public static IEndpointRouteBuilder MapJobsApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/jobs").RequireAuthorization(Scopes.Admin).WithTags("Jobs");
        group.MapGet("/", ListJobsAsync).WithName("ListJobs");
        group.MapGet("/{id}", GetJobAsync).WithName("GetJob");
        group.MapPost("/{id}/retry", RetryJobAsync).WithName("RetryJob");
        return app;
    }

    /// <summary><c>GET /v1/jobs?state=&amp;type=&amp;limit=&amp;after=</c>: this tenant's jobs, newest first.</summary>
    static async Task<Results<Ok<JobPage>, ValidationProblem>> ListJobsAsync(JobStore store, CurrentTenant tenant,
        string? state, string? type, int? limit, string? after, CancellationToken ct)
    {
        JobState? stateFilter = null;
        if (state is not null)
        {
            if (!TryParseState(state, out var parsed)) return Problems.Validation("state", "Expected one of queued, running, succeeded, dead.");
            stateFilter = parsed;
        }
        if (limit is < 1 or > PageSizeMax) return Problems.Validation("limit", $"Expected 1-{PageSizeMax}.");
        if (after?.Length == 0) after = null;
        if (after is not null && (!after.StartsWith("job_", StringComparison.Ordinal) || !Ids.IsValid(after))) return Problems.InvalidCursor();
        if (type is { Length: 0 or > Ids.LengthMax }) return Problems.Validation("type", "Expected a job type name.");
        var size = limit ?? PageSizeDefault;
        var jobs = await store.ListAsync(tenant.Id, stateFilter, type, after, size + 1, ct);
        var page = jobs.Take(size).Select(JobResponse.From).ToList();
        return TypedResults.Ok(new JobPage(page, jobs.Count > size ? page[^1].Id : null));
    }

    /// <summary><c>GET /v1/jobs/{id}</c>: one job with all its runs (attempts).</summary>
    static async Task<Results<Ok<JobResponse>, ProblemHttpResult>> GetJobAsync(string id, JobStore store, CurrentTenant tenant, CancellationToken ct)
    {
        var job = Ids.IsValid(id) ? await store.GetAsync(tenant.Id, id, ct) : null;
        return job is null
            ? Problems.NotFound("job_not_found", $"No job '{id}' in this tenant.")
            : TypedResults.Ok(JobResponse.From(job));
    }

    /// <summary><c>POST /v1/jobs/{id}/retry</c>: a dead job queued again with a fresh attempt budget (202).</summary>
    static async Task<Results<Accepted<JobResponse>, ProblemHttpResult>> RetryJobAsync(string id, JobStore store, CurrentTenant tenant, CancellationToken ct)
    {
        var job = Ids.IsValid(id) ? await store.GetAsync(tenant.Id, id, ct) : null;
        if (job is null) return Problems.NotFound("job_not_found", $"No job '{id}' in this tenant.");
        if (!await store.RetryDeadAsync(tenant.Id, id, ct))
            return Problems.Of(409, "job_not_dead", "Job not dead", $"Job '{id}' is {job.State.ToString().ToLowerInvariant()}; only dead jobs are retried.");
        return TypedResults.Accepted($"/v1/jobs/{id}", JobResponse.From((await store.GetAsync(tenant.Id, id, ct))!));
    }

    static bool TryParseState(string text, out JobState state)
    {
        state = text switch
        {
            "queued" => JobState.Queued,
            "running" => JobState.Running,
            "succeeded" => JobState.Succeeded,
            "dead" => JobState.Dead,
            _ => 0,
        };
        return state != 0;
    }
}
