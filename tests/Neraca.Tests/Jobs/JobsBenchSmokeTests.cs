using Neraca.Tests.Bench;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Jobs;

/// <summary>A tiny run of the bench's <c>jobs</c> scenario against a test server, asserting correctness only (never
/// speed): the server's worker finishes the seeded prune job, and every load window conserves money without errors.</summary>
public sealed class JobsBenchSmokeTests(PostgresServerFixture fixture) : IClassFixture<PostgresServerFixture>
{
    [Fact]
    public async Task Jobs_scenario_runs_the_job_to_the_end_and_conserves_money()
    {
        var tenant = await fixture.Server.NewTenantAsync();
        using var json = await BenchProcess.RunAsync(fixture.Server, tenant, "--no-baseline", "--scenario", "jobs", "--job-items", "3000", "--seconds", "0.5");
        var results = json.RootElement.GetProperty("results").EnumerateArray().ToList();
        Assert.True(results.Count >= 3, "alone, at least one window with the job, alone again");
        Assert.All(results, r =>
        {
            Assert.Equal("jobs", r.GetProperty("scenario").GetString());
            Assert.True(r.GetProperty("conservation").GetProperty("ok").GetBoolean());
            Assert.Equal(0, r.GetProperty("stats").GetProperty("failed").GetInt64());
        });
        var finished = json.RootElement.GetProperty("targets").EnumerateArray()
            .Single(t => t.GetProperty("target").GetString()!.StartsWith("jobs: the job finishes", StringComparison.Ordinal));
        Assert.True(finished.GetProperty("met").GetBoolean(), finished.GetProperty("actual").GetString());
    }
}
