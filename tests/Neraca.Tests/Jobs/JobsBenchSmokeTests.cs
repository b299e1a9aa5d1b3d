using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Storage;
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
        var database = fixture.Server.Services.GetRequiredService<Database>().Postgres!.ConnectionString;
        var folder = ProcessRunner.NewTempDirectory("bench");
        var report = Path.Combine(folder, "report.json");
        string text;
        try
        {
            await ProcessRunner.RunAsync("dotnet", [BenchDll(), "--target", fixture.Server.BaseAddress.ToString(), "--database", database,
                "--no-baseline", "--api-key", tenant.ApiKey, "--tenant", tenant.Id, "--scenario", "jobs", "--job-items", "3000",
                "--seconds", "0.5", "--warmup", "0", "--accounts", "40", "--out", report], timeout: TimeSpan.FromMinutes(3));
            text = await File.ReadAllTextAsync(report, TestContext.Current.CancellationToken);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }

        using var json = JsonDocument.Parse(text);
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

    /// <summary>The bench built next to this test assembly, in the same configuration (the test project builds it).</summary>
    static string BenchDll()
    {
        var testBin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var configuration = testBin.Parent!.Name;
        var root = testBin.Parent.Parent!.Parent!.Parent!.Parent!.FullName;
        var dll = Path.Combine(root, "bench", "Neraca.Bench", "bin", configuration, testBin.Name, "Neraca.Bench.dll");
        Assert.True(File.Exists(dll), $"bench not built: {dll}");
        return dll;
    }
}
