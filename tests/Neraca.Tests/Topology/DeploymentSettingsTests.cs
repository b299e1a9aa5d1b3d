using System.Net;
using Neraca.Hosting;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;
using Npgsql;

namespace Neraca.Tests.Topology;

/// <summary>What a container deployment relies on: settings from mounted secret files, the pooler switch, readiness
/// that turns false on SIGTERM before the server stops.</summary>
public sealed class DeploymentSettingsTests
{
    [Theory]
    [InlineData("NERACA_BOOTSTRAP_API_KEY_FILE", "BOOTSTRAPAPIKEY")]
    [InlineData("NERACA_REDIS__URL_FILE", "REDIS:URL")]
    [InlineData("NERACA_OBSERVABILITY__METRICS__BEARER_TOKEN_FILE", "OBSERVABILITY:METRICS:BEARERTOKEN")]
    public void A_FILE_variable_names_the_setting_its_file_holds(string variable, string key) =>
        Assert.Equal(key, EnvironmentSettings.ToFileConfigurationKey(variable));

    [Theory]
    [InlineData("NERACA_DATABASE_FILE")] // the DatabaseFile setting: its file is re-read for rotated passwords
    [InlineData("NERACA_READ_DATABASE_FILE")]
    [InlineData("NERACA_ENCRYPTION__KEYS_FILE")] // a setting that is a path itself
    [InlineData("NERACA_DATABASE")]
    [InlineData("PATH_FILE")]
    public void Settings_that_are_paths_are_not_file_indirections(string variable) => Assert.Null(EnvironmentSettings.ToFileConfigurationKey(variable));

    [Fact]
    public async Task A_setting_read_from_a_file_works_and_readiness_fails_while_the_server_drains_after_SIGTERM()
    {
        var dir = ProcessRunner.NewTempDirectory("file-settings");
        var keyFile = Path.Combine(dir, "bootstrap-key");
        await File.WriteAllTextAsync(keyFile, NeracaServer.BootstrapKey + "\n");
        await using var server = await ServerProcess.StartAsync(["--sqlite-path", Path.Combine(dir, "neraca.db")], new Dictionary<string, string>
        {
            ["NERACA_BOOTSTRAP_API_KEY_FILE"] = keyFile,
            ["NERACA_SHUTDOWN_DRAIN_SECONDS"] = "3",
        });
        using var http = server.CreateClient(NeracaServer.BootstrapKey);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/v1/ledgers")).StatusCode);

        await server.TerminateAsync();
        // Still serving, but no longer ready: the balancer stops sending new requests before the listener closes.
        await Polling.Eventually(async () => (await http.GetAsync("/health/ready")).StatusCode == HttpStatusCode.ServiceUnavailable,
            "readiness fails after SIGTERM", TimeSpan.FromSeconds(3), TimeSpan.FromMilliseconds(50));
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health/live")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/v1/ledgers")).StatusCode);
        Assert.Equal(0, await server.WaitForExitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task An_unreadable_setting_file_stops_start_up_naming_the_variable()
    {
        var dir = ProcessRunner.NewTempDirectory("file-settings");
        var info = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { ServerProcess.ServerDll, "migrate", "--sqlite-path", Path.Combine(dir, "neraca.db") }) info.ArgumentList.Add(a);
        info.Environment["NERACA_BOOTSTRAP_API_KEY_FILE"] = Path.Combine(dir, "missing");
        using var process = System.Diagnostics.Process.Start(info)!;
        var stderr = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.Equal(2, process.ExitCode);
        Assert.Contains("NERACA_BOOTSTRAP_API_KEY_FILE", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Behind_a_transaction_pooler_nothing_is_prepared_unless_asked_and_the_password_comes_from_the_file()
    {
        var dir = ProcessRunner.NewTempDirectory("file-settings");
        var file = Path.Combine(dir, "database");
        await File.WriteAllTextAsync(file, "Host=127.0.0.1;Port=6432;Database=neraca;Username=app;Password=s3cret\n");
        var options = new NeracaOptions { DatabaseFile = file, DatabasePooler = "transaction" };
        await using (var pooled = Database.Create(options))
        {
            var b = new NpgsqlConnectionStringBuilder(pooled.Postgres!.ConnectionString);
            Assert.Equal(0, b.MaxAutoPrepare);
            Assert.Null(b.Password); // given by the password provider, which re-reads the file
            Assert.True(pooled.BehindTransactionPooler);
        }
        await File.WriteAllTextAsync(file, "Host=127.0.0.1;Port=6432;Database=neraca;Username=app;Password=s3cret;Max Auto Prepare=20\n");
        await using (var explicitPrepare = Database.Create(options))
            Assert.Equal(20, new NpgsqlConnectionStringBuilder(explicitPrepare.Postgres!.ConnectionString).MaxAutoPrepare);
        await using (var direct = Database.Create(new NeracaOptions { DatabaseFile = file }))
            Assert.False(direct.BehindTransactionPooler);
        Assert.Throws<ArgumentException>(() => Database.Create(new NeracaOptions { DatabaseFile = file, Database = "Host=x" }));
    }
}
