using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Neraca.Tests.Observability;

/// <summary>Reads what <c>deploy/</c> ships: the PromQL of the Prometheus rules and of the Grafana dashboards, and the
/// metric names they use.</summary>
public static partial class DeployArtefacts
{
    public static string RepoRoot { get; } = FindRepoRoot();
    public static string PrometheusDir => Path.Combine(RepoRoot, "deploy", "prometheus");
    public static string RulesFile => Path.Combine(PrometheusDir, "neraca.rules.yml");
    public static string[] RuleTestFiles => Directory.GetFiles(Path.Combine(PrometheusDir, "tests"), "*.test.yml").Order(StringComparer.Ordinal).ToArray();
    public static string[] DashboardFiles => Directory.GetFiles(Path.Combine(RepoRoot, "deploy", "grafana", "dashboards"), "*.json").Order(StringComparer.Ordinal).ToArray();

    /// <summary>Every <c>expr:</c> of the rules file (single-line or block scalar).</summary>
    public static IReadOnlyList<string> RuleExpressions()
    {
        var lines = File.ReadAllLines(RulesFile);
        var result = new List<string>();
        for (var i = 0; i < lines.Length; i++)
        {
            var trimmed = lines[i].TrimStart();
            if (!trimmed.StartsWith("expr:", StringComparison.Ordinal)) continue;
            var value = trimmed["expr:".Length..].Trim();
            if (value != "|")
            {
                result.Add(value);
                continue;
            }
            var indent = lines[i].Length - trimmed.Length;
            var block = new List<string>();
            while (i + 1 < lines.Length && (lines[i + 1].Trim().Length == 0 || lines[i + 1].Length - lines[i + 1].TrimStart().Length > indent))
                block.Add(lines[++i].Trim());
            result.Add(string.Join(' ', block));
        }
        return result;
    }

    /// <summary>Alert names defined by the rules file.</summary>
    public static IReadOnlyList<string> AlertNames() =>
        File.ReadAllLines(RulesFile).Select(l => l.Trim()).Where(l => l.StartsWith("- alert:", StringComparison.Ordinal))
            .Select(l => l["- alert:".Length..].Trim()).ToList();

    /// <summary>Every panel query of every dashboard: (dashboard file, panel title, expr).</summary>
    public static IReadOnlyList<(string File, string Panel, string Expr)> DashboardExpressions()
    {
        var result = new List<(string, string, string)>();
        foreach (var file in DashboardFiles)
        {
            var dashboard = JsonNode.Parse(File.ReadAllText(file))!;
            foreach (var panel in dashboard["panels"]!.AsArray())
                foreach (var target in panel!["targets"]!.AsArray())
                    result.Add((Path.GetFileName(file), (string)panel["title"]!, (string)target!["expr"]!));
        }
        return result;
    }

    /// <summary>Grafana's variables replaced by values Prometheus understands.</summary>
    public static string WithoutGrafanaVariables(string expr) =>
        expr.Replace("$__rate_interval", "5m", StringComparison.Ordinal).Replace("$instance", ".*", StringComparison.Ordinal);

    static readonly HashSet<string> Keywords = new(StringComparer.Ordinal)
    {
        "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "inf", "nan", "Inf", "NaN",
        // Aggregation operators, which may stand before their "by (...)" instead of their argument.
        "sum", "min", "max", "avg", "count", "group", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values",
    };

    /// <summary>Names of the series a PromQL expression reads (not recording rules, functions, keywords or labels).</summary>
    public static IEnumerable<string> MetricNames(string expr)
    {
        var text = WithoutGrafanaVariables(expr);
        text = StringLiteral().Replace(text, "\"\"");
        text = LabelMatchers().Replace(text, " ");
        text = Grouping().Replace(text, "$1 ");
        text = RangeOrSubquery().Replace(text, " ");
        foreach (Match m in Identifier().Matches(text))
        {
            var name = m.Groups[1].Value;
            if (Keywords.Contains(name) || name.Contains(':', StringComparison.Ordinal)) continue;
            yield return name;
        }
    }

    static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Neraca.slnx"))) return dir.FullName;
        throw new InvalidOperationException("repository root (Neraca.slnx) not found above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex("\"(?:[^\"\\\\]|\\\\.)*\"")]
    private static partial Regex StringLiteral();

    [GeneratedRegex(@"\{[^}]*\}")]
    private static partial Regex LabelMatchers();

    [GeneratedRegex(@"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")]
    private static partial Regex Grouping();

    [GeneratedRegex(@"\[[^\]]*\]")]
    private static partial Regex RangeOrSubquery();

    // An identifier not followed by "(" (a function call) and not part of a number (1e3) or a duration.
    [GeneratedRegex(@"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)\b(?!\s*\()")]
    private static partial Regex Identifier();
}
