using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Bench;

/// <summary>A tiny run of every benchmark scenario, asserting correctness only (never speed): after each run, on
/// Neraca and on the naive baseline, debits = credits and the money moved is exactly what clients saw acknowledged.</summary>
public sealed class BenchSmokeTests(PostgresServerFixture fixture) : IClassFixture<PostgresServerFixture>
{
    [Fact]
    public async Task Every_scenario_conserves_money_on_Neraca_and_on_the_baseline()
    {
        var tenant = await fixture.Server.NewTenantAsync();
        var baselineDb = await TestStores.NewDatabaseAsync(StoreKind.Postgres);
        var database = fixture.Server.Services.GetRequiredService<Database>().Postgres!.ConnectionString;
        var folder = ProcessRunner.NewTempDirectory("bench");
        var report = Path.Combine(folder, "report.json");
        string text;
        try
        {
            await ProcessRunner.RunAsync("dotnet", [BenchDll(), "--target", fixture.Server.BaseAddress.ToString(), "--database", database,
                "--baseline-database", baselineDb, "--api-key", tenant.ApiKey, "--tenant", tenant.Id, "--scenario", "all",
                "--seconds", "0.3", "--warmup", "0", "--accounts", "40", "--uniform-clients", "1,8", "--clients", "8",
                "--batch-sizes", "25", "--batch-clients", "2", "--out", report], timeout: TimeSpan.FromMinutes(3));
            text = await File.ReadAllTextAsync(report, TestContext.Current.CancellationToken);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }

        using var json = JsonDocument.Parse(text);
        var results = json.RootElement.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(2 * 5, results.Count); // uniform x2, hot, batch, read; on both sides
        foreach (var r in results)
        {
            var name = $"{r.GetProperty("side").GetString()} {r.GetProperty("run").GetString()}";
            Assert.True(r.GetProperty("conservation").GetProperty("ok").GetBoolean(), name + ": " + r.GetProperty("conservation").GetProperty("detail").GetString());
            Assert.True(r.GetProperty("stats").GetProperty("transfers").GetInt64() > 0, name + ": no transfer acknowledged");
            Assert.Equal(0, r.GetProperty("stats").GetProperty("failed").GetInt64());
        }
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
