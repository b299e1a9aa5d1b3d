using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Bench;

/// <summary>Runs the benchmark (built next to this test assembly) against a test server and returns its JSON report.</summary>
public static class BenchProcess
{
    public static async Task<JsonDocument> RunAsync(NeracaServer server, TestTenant tenant, params string[] args)
    {
        var database = server.Services.GetRequiredService<Database>().Postgres!.ConnectionString;
        var folder = ProcessRunner.NewTempDirectory("bench");
        var report = Path.Combine(folder, "report.json");
        try
        {
            await ProcessRunner.RunAsync("dotnet", [BenchDll(), "--target", server.BaseAddress.ToString(), "--database", database,
                "--api-key", tenant.ApiKey, "--tenant", tenant.Id, "--warmup", "0", "--accounts", "40", "--out", report, .. args],
                timeout: TimeSpan.FromMinutes(3));
            return JsonDocument.Parse(await File.ReadAllTextAsync(report, TestContext.Current.CancellationToken));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>The bench built in the same configuration as the tests (the test project builds it).</summary>
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
