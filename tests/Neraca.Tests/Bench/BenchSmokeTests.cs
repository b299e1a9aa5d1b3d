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
        using var json = await BenchProcess.RunAsync(fixture.Server, tenant, "--baseline-database", baselineDb, "--scenario", "all",
            "--seconds", "0.3", "--uniform-clients", "1,8", "--clients", "8", "--batch-sizes", "25", "--batch-clients", "2", "--ledgers", "2");
        var results = json.RootElement.GetProperty("results").EnumerateArray().ToList();
        // uniform x2, hot, batch, read 90/10, read only, and the same batch and uniform c=8 over 2 ledgers; on both sides
        Assert.Equal(2 * 8, results.Count);
        Assert.Equal(["batch 25 c=2 2L", "uniform c=8 2L"],
            results.Select(r => r.GetProperty("run").GetString()!).Where(n => n.EndsWith(" 2L", StringComparison.Ordinal)).Distinct().Order());
        foreach (var r in results)
        {
            var name = $"{r.GetProperty("side").GetString()} {r.GetProperty("run").GetString()}";
            Assert.True(r.GetProperty("conservation").GetProperty("ok").GetBoolean(), name + ": " + r.GetProperty("conservation").GetProperty("detail").GetString());
            var readOnly = r.GetProperty("run").GetString()!.StartsWith("read only", StringComparison.Ordinal);
            Assert.True(r.GetProperty("stats").GetProperty(readOnly ? "reads" : "transfers").GetInt64() > 0, name + ": nothing acknowledged");
            Assert.Equal(0, r.GetProperty("stats").GetProperty("failed").GetInt64());
        }
    }
}
