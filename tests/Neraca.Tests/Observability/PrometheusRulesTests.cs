using System.Text;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Observability;

/// <summary>The SLOs and alerts in deploy/prometheus are checked and unit-tested by Prometheus's own promtool
/// (Debian package <c>prometheus</c>; scripts/test.sh installs it).</summary>
public sealed class PrometheusRulesTests
{
    static async Task<string> PromtoolAsync(params string[] args)
    {
        var promtool = new[] { "/usr/bin/promtool", "/usr/local/bin/promtool" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("promtool not found: apt-get install prometheus (scripts/test.sh does it).");
        return await ProcessRunner.RunAsync(promtool, args, timeout: TimeSpan.FromMinutes(5));
    }

    [Fact]
    public async Task Rules_pass_promtool_check()
    {
        var output = await PromtoolAsync("check", "rules", DeployArtefacts.RulesFile);
        Assert.Contains("SUCCESS", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Rule_unit_tests_pass()
    {
        var output = await PromtoolAsync(["test", "rules", .. DeployArtefacts.RuleTestFiles]);
        Assert.DoesNotContain("FAILED", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Example_scrape_config_is_valid()
    {
        var output = await PromtoolAsync("check", "config", Path.Combine(DeployArtefacts.PrometheusDir, "prometheus.example.yml"));
        Assert.Contains("is valid prometheus config file syntax", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_alert_has_a_firing_and_a_silent_unit_test()
    {
        var firing = new HashSet<string>(StringComparer.Ordinal);
        var silent = new HashSet<string>(StringComparer.Ordinal);
        foreach (var file in DeployArtefacts.RuleTestFiles)
        {
            var lines = File.ReadAllLines(file).Select(l => l.Trim()).ToArray();
            string? alert = null;
            for (var i = 0; i < lines.Length; i++)
            {
                if (lines[i].StartsWith("alertname:", StringComparison.Ordinal)) alert = lines[i]["alertname:".Length..].Trim();
                else if (alert is not null && lines[i] == "exp_alerts: []") silent.Add(alert);
                else if (alert is not null && lines[i] == "exp_alerts:" && i + 1 < lines.Length && lines[i + 1].StartsWith("- exp_labels:", StringComparison.Ordinal)) firing.Add(alert);
            }
        }
        var alerts = DeployArtefacts.AlertNames();
        Assert.NotEmpty(alerts);
        var notFiring = alerts.Where(a => !firing.Contains(a)).ToList();
        var notSilent = alerts.Where(a => !silent.Contains(a)).ToList();
        Assert.True(notFiring.Count == 0, "no firing case for " + string.Join(", ", notFiring));
        Assert.True(notSilent.Count == 0, "no silent case for " + string.Join(", ", notSilent));
    }

    [Fact]
    public void Every_alert_has_a_runbook_entry_in_the_operations_guide()
    {
        var guide = File.ReadAllText(Path.Combine(DeployArtefacts.RepoRoot, "docs", "operations.md"));
        var missing = DeployArtefacts.AlertNames().Where(a => !guide.Contains("### " + a + "\n", StringComparison.Ordinal)).ToList();
        Assert.True(missing.Count == 0, "no runbook entry for " + string.Join(", ", missing));
    }

    [Fact]
    public async Task Dashboard_queries_are_valid_PromQL()
    {
        // promtool has no "check expression"; a recording rule per panel query gets the same parser.
        var rules = new StringBuilder("groups:\n  - name: dashboards\n    rules:\n");
        var n = 0;
        foreach (var (_, _, expr) in DeployArtefacts.DashboardExpressions())
            rules.Append("      - record: dashboard:query:").Append(n++).Append("\n        expr: '")
                .Append(DeployArtefacts.WithoutGrafanaVariables(expr).Replace("'", "''", StringComparison.Ordinal)).Append("'\n");
        var file = Path.Combine(ProcessRunner.NewTempDirectory("promql"), "dashboards.rules.yml");
        await File.WriteAllTextAsync(file, rules.ToString(), TestContext.Current.CancellationToken);
        var output = await PromtoolAsync("check", "rules", file);
        Assert.Contains($"SUCCESS: {n} rules found", output, StringComparison.Ordinal);
        Directory.Delete(Path.GetDirectoryName(file)!, recursive: true);
    }

    [Fact]
    public void Metric_name_extraction_skips_functions_labels_and_recording_rules()
    {
        var names = DeployArtefacts.MetricNames(
            "sum by (http_route, le) (rate(http_server_request_duration_seconds_bucket{job=\"neraca\",le=\"0.25\"}[$__rate_interval])) "
            + "/ on (instance) neraca:slo_availability:error_ratio_rate5m > (14.4 * 0.001) or max(neraca_outbox_lag_seconds offset 30m) unless vector(1)").ToList();
        Assert.Equal(["http_server_request_duration_seconds_bucket", "neraca_outbox_lag_seconds"], names);
    }
}
