using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Events;

public sealed class AlertRuleTests
{
    static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Neraca.slnx"))) return dir.FullName;
        throw new InvalidOperationException("repository root (Neraca.slnx) not found above " + AppContext.BaseDirectory);
    }

    [Fact]
    public async Task Dead_letter_and_outbox_lag_alerts_fire_as_their_rule_tests_expect()
    {
        var promtool = new[] { "/usr/bin/promtool", "/usr/local/bin/promtool" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("promtool not found; run scripts/test.sh (it installs it) or apt-get install prometheus.");
        var alerts = Path.Combine(RepositoryRoot(), "deploy", "alerts");
        var output = await ProcessRunner.RunAsync(promtool, ["test", "rules", Path.Combine(alerts, "events.rules.test.yml")]);
        Assert.Contains("SUCCESS", output, StringComparison.Ordinal);
    }
}
