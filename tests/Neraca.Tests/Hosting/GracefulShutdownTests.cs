using System.Diagnostics;
using System.Net;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Ledger;

namespace Neraca.Tests.Hosting;

public sealed class GracefulShutdownTests
{
    [Fact]
    public async Task Sigterm_finishes_in_flight_transfers_then_exits_cleanly()
    {
        var database = await TestStores.NewDatabaseAsync(StoreKind.Sqlite);
        var port = ProcessRunner.FreePort();
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "Neraca.Server.dll"), "--database", database, "--urls", $"http://127.0.0.1:{port}",
                     "--bootstrap-api-key", NeracaServer.BootstrapKey, "--Logging:LogLevel:Default=Warning" })
            info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        http.DefaultRequestHeaders.Authorization = new("Bearer", NeracaServer.BootstrapKey);
        for (var i = 0; i < 100 && !await ReadyAsync(http); i++) await Task.Delay(100);

        var l = new LedgerClient(http);
        await l.LedgerAsync();
        await l.AccountAsync("bank", normal: "debit");
        await l.AccountAsync("alice");
        var sends = Enumerable.Range(0, 300).Select(async i =>
        {
            try { return (await l.TransferAsync($"s{i}", "bank", "alice", 1)).Response.StatusCode; }
            catch (HttpRequestException) { return (HttpStatusCode)0; } // refused after the listener closed: never acknowledged
        }).ToList();
        await Task.Delay(50);
        await ProcessRunner.RunAsync("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        var codes = await Task.WhenAll(sends);
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(30)), "server did not exit after SIGTERM");
        Assert.Equal(0, process.ExitCode);
        Assert.DoesNotContain(codes, c => (int)c >= 500);

        // Every acknowledged transfer is there after a restart.
        await using var again = await NeracaServer.StartAsync(database);
        var check = new LedgerClient(again.CreateClient(NeracaServer.BootstrapKey));
        Assert.Equal(codes.Count(c => c == HttpStatusCode.Created), await check.PostedAsync("alice"));
    }

    static async Task<bool> ReadyAsync(HttpClient http)
    {
        try { return (await http.GetAsync("/health/ready")).IsSuccessStatusCode; }
        catch (HttpRequestException) { return false; }
    }
}
