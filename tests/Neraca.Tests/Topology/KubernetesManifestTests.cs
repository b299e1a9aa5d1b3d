using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using k8s;
using k8s.Models;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Observability;
using YamlDotNet.Serialization;

namespace Neraca.Tests.Topology;

/// <summary>Every overlay of <c>deploy/k8s</c> rendered with <c>kubectl kustomize</c> (offline), each object checked
/// against the Kubernetes schema (the typed models of the official client, unknown fields refused), the custom
/// resources (Rollout, AnalysisTemplate, ServiceMonitor, PrometheusRule) against their required fields, and the
/// policies every object must follow.</summary>
public sealed partial class KubernetesManifestTests
{
    public static readonly TheoryData<string> Overlays = ["dev", "production"];

    static string K8sDir => Path.Combine(DeployArtefacts.RepoRoot, "deploy", "k8s");

    /// <summary>Kinds that are not part of Kubernetes itself, each with its own check below.</summary>
    static readonly HashSet<string> CustomKinds = ["argoproj.io/v1alpha1/Rollout", "argoproj.io/v1alpha1/AnalysisTemplate",
        "monitoring.coreos.com/v1/ServiceMonitor", "monitoring.coreos.com/v1/PrometheusRule"];

    sealed record Rendered(List<IKubernetesObject> Typed, List<JsonObject> Custom);

    static async Task<Rendered> RenderAsync(string overlay)
    {
        var (yaml, exit) = await ProcessRunner.RunForExitAsync("kubectl", ["kustomize", Path.Combine(K8sDir, "overlays", overlay)]);
        Assert.True(exit == 0, $"kubectl kustomize {overlay} failed: {yaml}");
        var rendered = new Rendered([], []);
        foreach (var document in Regex.Split(yaml, @"^---\s*$", RegexOptions.Multiline).Where(d => !string.IsNullOrWhiteSpace(d)))
        {
            var node = YamlToJson(document);
            var id = $"{node["apiVersion"]}/{node["kind"]}";
            if (CustomKinds.Contains(id))
            {
                rendered.Custom.Add(node);
                continue;
            }
            // strict: a field the schema does not have (a typo, a field of another API version) is an error.
            var objects = KubernetesYaml.LoadAllFromString(document, typeMap: null, strict: true);
            var typed = Assert.IsAssignableFrom<IKubernetesObject>(Assert.Single(objects));
            Assert.Equal((string?)node["kind"], typed.Kind);
            rendered.Typed.Add(typed);
        }
        return rendered;
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Every_object_matches_its_schema_and_the_roles_are_all_there(string overlay)
    {
        var r = await RenderAsync(overlay);
        var deployments = r.Typed.OfType<V1Deployment>().ToDictionary(d => d.Metadata.Name);
        Assert.Equal(["neraca-api", "neraca-scheduler", "neraca-worker"], deployments.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, role) in new[] { ("neraca-api", "api"), ("neraca-worker", "worker"), ("neraca-scheduler", "scheduler") })
            Assert.Equal(["serve", "--role", role], deployments[name].Spec.Template.Spec.Containers.Single().Args);
        var migrate = Assert.Single(r.Typed.OfType<V1Job>());
        Assert.Equal(["migrate"], migrate.Spec.Template.Spec.Containers.Single().Args);
        Assert.Equal("PreSync", migrate.Metadata.Annotations["argocd.argoproj.io/hook"]);
        Assert.Contains(r.Typed.OfType<V1Service>(), s => s.Metadata.Name == "neraca-api");
        Assert.Equal(2, r.Typed.OfType<V2HorizontalPodAutoscaler>().Count());
        Assert.Contains(r.Typed.OfType<V1NetworkPolicy>(), p => p.Spec.PolicyTypes.SequenceEqual(["Ingress", "Egress"]) && p.Spec.Ingress is null);
        Assert.Contains(r.Custom, o => (string?)o["kind"] == "ServiceMonitor");
        Assert.Contains(r.Custom, o => (string?)o["kind"] == "PrometheusRule");
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Every_container_has_resources_probes_a_locked_down_security_context_and_a_pinned_image(string overlay)
    {
        var r = await RenderAsync(overlay);
        var pods = r.Typed.OfType<V1Deployment>().Select(d => (d.Metadata.Name, d.Spec.Template.Spec, Serves: true))
            .Concat(r.Typed.OfType<V1Job>().Select(j => (j.Metadata.Name, j.Spec.Template.Spec, Serves: false))).ToList();
        Assert.NotEmpty(pods);
        foreach (var (name, pod, serves) in pods)
        {
            Assert.True(pod.SecurityContext?.RunAsNonRoot == true, $"{name}: runAsNonRoot");
            Assert.True(pod.SecurityContext.RunAsUser is > 0, $"{name}: a numeric non-root runAsUser");
            Assert.False(pod.AutomountServiceAccountToken ?? true, $"{name}: no service account token");
            foreach (var c in pod.Containers.Concat(pod.InitContainers ?? []))
            {
                var what = $"{name}/{c.Name}";
                foreach (var resource in new[] { "cpu", "memory" })
                {
                    Assert.True(c.Resources?.Requests?.ContainsKey(resource) == true, $"{what}: requests.{resource}");
                    Assert.True(c.Resources?.Limits?.ContainsKey(resource) == true, $"{what}: limits.{resource}");
                }
                if (serves)
                {
                    Assert.True(c.StartupProbe?.HttpGet?.Path == "/health/live", $"{what}: startup probe");
                    Assert.True(c.ReadinessProbe?.HttpGet?.Path == "/health/ready", $"{what}: readiness probe");
                    Assert.True(c.LivenessProbe?.HttpGet?.Path == "/health/live", $"{what}: liveness probe");
                }
                var sc = c.SecurityContext;
                Assert.True(sc?.ReadOnlyRootFilesystem == true, $"{what}: readOnlyRootFilesystem");
                Assert.True(sc.AllowPrivilegeEscalation == false, $"{what}: allowPrivilegeEscalation false");
                Assert.True(sc.Privileged != true, $"{what}: not privileged");
                Assert.True(sc.Capabilities?.Drop?.Contains("ALL") == true && (sc.Capabilities.Add?.Count ?? 0) == 0, $"{what}: drops ALL capabilities");
                Assert.True(sc.RunAsUser is null or > 0, $"{what}: not root");
                var tag = ImageTag(c.Image);
                Assert.True(tag is not null && tag != "latest", $"{what}: image {c.Image} has no pinned tag");
            }
        }
    }

    static string? ImageTag(string image)
    {
        if (image.Contains('@', StringComparison.Ordinal)) return image[(image.IndexOf('@', StringComparison.Ordinal) + 1)..];
        var name = image[(image.LastIndexOf('/') + 1)..];
        return name.Contains(':', StringComparison.Ordinal) ? name[(name.IndexOf(':', StringComparison.Ordinal) + 1)..] : null;
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Every_workload_has_a_disruption_budget_autoscalers_and_services_point_at_real_pods(string overlay)
    {
        var r = await RenderAsync(overlay);
        var pdbs = r.Typed.OfType<V1PodDisruptionBudget>().ToList();
        var rollouts = r.Custom.Where(o => (string?)o["kind"] == "Rollout").ToList();
        var templates = r.Typed.OfType<V1Deployment>().ToDictionary(d => d.Metadata.Name, d => d.Spec.Template.Metadata.Labels);
        foreach (var d in r.Typed.OfType<V1Deployment>())
        {
            Assert.True(Matches(d.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels), $"{d.Metadata.Name}: selector matches its pods");
            Assert.True(pdbs.Any(p => Matches(p.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels)), $"{d.Metadata.Name} has no PodDisruptionBudget");
            Assert.True(d.Spec.Strategy.RollingUpdate.MaxUnavailable.Value == "0", $"{d.Metadata.Name}: capacity never drops in a rollout");
            Assert.NotEmpty(d.Spec.Template.Spec.TopologySpreadConstraints);
        }
        foreach (var hpa in r.Typed.OfType<V2HorizontalPodAutoscaler>())
        {
            var target = hpa.Spec.ScaleTargetRef;
            Assert.True(target.Kind == "Deployment" && templates.ContainsKey(target.Name)
                || target.Kind == "Rollout" && rollouts.Any(o => (string?)o["metadata"]!["name"] == target.Name), $"{hpa.Metadata.Name} scales nothing");
            Assert.True(hpa.Spec.MinReplicas <= hpa.Spec.MaxReplicas);
        }
        var api = r.Typed.OfType<V2HorizontalPodAutoscaler>().Single(h => h.Metadata.Name == "neraca-api");
        Assert.Contains(api.Spec.Metrics, m => m.Resource?.Name == "cpu");
        Assert.Contains(api.Spec.Metrics, m => m.Pods?.Metric.Name == "neraca_http_requests_per_second");
        var worker = r.Typed.OfType<V2HorizontalPodAutoscaler>().Single(h => h.Metadata.Name == "neraca-worker");
        Assert.Contains(worker.Spec.Metrics, m => m.External?.Metric.Name == "neraca_outbox_lag_seconds");
        foreach (var s in r.Typed.OfType<V1Service>())
            Assert.True(templates.Values.Any(labels => Matches(s.Spec.Selector, labels)), $"service {s.Metadata.Name} selects no pods");
        // Every ConfigMap a pod reads is rendered (kustomize appends its content hash to the name).
        var configMaps = r.Typed.OfType<V1ConfigMap>().Select(c => c.Metadata.Name).ToHashSet();
        foreach (var d in r.Typed.OfType<V1Deployment>())
            foreach (var source in d.Spec.Template.Spec.Containers.SelectMany(c => c.EnvFrom ?? []))
                Assert.Contains(source.ConfigMapRef.Name, configMaps);
    }

    static bool Matches(IDictionary<string, string>? selector, IDictionary<string, string>? labels) =>
        selector is { Count: > 0 } && labels is not null && selector.All(kv => labels.TryGetValue(kv.Key, out var v) && v == kv.Value);

    [Fact]
    public async Task Production_api_is_a_canary_of_5_25_50_100_percent_aborted_by_the_shipped_burn_rate_alerts()
    {
        var r = await RenderAsync("production");
        var rollout = Assert.Single(r.Custom, o => (string?)o["kind"] == "Rollout");
        var spec = Required(rollout, "spec");
        Required(spec, "selector", "matchLabels");
        var workload = Required(spec, "workloadRef");
        Assert.Equal("Deployment", (string?)workload["kind"]);
        Assert.Contains(r.Typed.OfType<V1Deployment>(), d => d.Metadata.Name == (string?)workload["name"]);
        var canary = Required(spec, "strategy", "canary");
        var weights = canary["steps"]!.AsArray().Select(s => s!["setWeight"]).Where(w => w is not null).Select(w => (long)w!).ToList();
        Assert.Equal([5L, 25, 50, 100], weights);
        var analysisName = (string?)Required(canary, "analysis")["templates"]![0]!["templateName"];

        var template = Assert.Single(r.Custom, o => (string?)o["kind"] == "AnalysisTemplate");
        Assert.Equal(analysisName, (string?)Required(template, "metadata")["name"]);
        var alerts = AlertExpressions();
        var metrics = Required(template, "spec")["metrics"]!.AsArray();
        Assert.NotEmpty(metrics);
        var names = new List<string>();
        foreach (var metric in metrics)
        {
            var name = (string)metric!["name"]!;
            names.Add(name);
            var query = (string?)metric["provider"]?["prometheus"]?["query"];
            Assert.True(alerts.TryGetValue(name, out var expression), $"{name} is not an alert of deploy/prometheus");
            Assert.Equal(Normalize(expression), Normalize(query));
            Assert.Equal("len(result) == 0", (string?)metric["successCondition"]);
            Assert.Equal(0L, (long?)metric["failureLimit"]);
        }
        // Every page-level SLO burn alert guards the canary.
        Assert.Equal(alerts.Keys.Where(a => a.Contains("BudgetBurn", StringComparison.Ordinal) && !a.EndsWith("Slow", StringComparison.Ordinal)).Order(StringComparer.Ordinal),
            names.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task PrometheusRule_is_generated_from_the_rule_files_and_the_ServiceMonitor_scrapes_job_neraca()
    {
        var script = Path.Combine(K8sDir, "generate-prometheusrule.sh");
        var (generated, exit) = await ProcessRunner.RunForExitAsync("bash", [script, "-"]);
        Assert.True(exit == 0, generated);
        Assert.True(generated == await File.ReadAllTextAsync(Path.Combine(K8sDir, "base", "prometheusrule.yaml")),
            "deploy/k8s/base/prometheusrule.yaml is out of date: run deploy/k8s/generate-prometheusrule.sh");

        var r = await RenderAsync("production");
        var rule = Assert.Single(r.Custom, o => (string?)o["kind"] == "PrometheusRule");
        var groups = Required(rule, "spec")["groups"]!.AsArray();
        var fromFiles = Directory.GetFiles(DeployArtefacts.PrometheusDir, "*.rules.yml").Order(StringComparer.Ordinal)
            .SelectMany(f => YamlToJson(File.ReadAllText(f))["groups"]!.AsArray().Select(g => g!.DeepClone())).ToList();
        Assert.Equal(fromFiles.Count, groups.Count);
        for (var i = 0; i < groups.Count; i++)
        {
            Assert.NotNull(groups[i]!["name"]);
            Assert.True(JsonNode.DeepEquals(fromFiles[i], groups[i]), $"group {groups[i]!["name"]} differs from the rule files");
        }

        var monitor = Assert.Single(r.Custom, o => (string?)o["kind"] == "ServiceMonitor");
        var ms = Required(monitor, "spec");
        var selector = Required(ms, "selector", "matchLabels").ToDictionary(kv => kv.Key, kv => kv.Value!.ToString());
        var service = Assert.Single(r.Typed.OfType<V1Service>(), s => Matches(selector, s.Metadata.Labels));
        Assert.Equal("neraca", service.Metadata.Labels[(string)ms["jobLabel"]!]); // the rules select job="neraca"
        foreach (var endpoint in ms["endpoints"]!.AsArray())
            Assert.Contains(service.Spec.Ports, p => p.Name == (string?)endpoint!["port"]);
    }

    static JsonObject Required(JsonObject o, params string[] path)
    {
        JsonNode? node = o;
        foreach (var p in path)
        {
            node = node?[p];
            Assert.True(node is not null, $"{o["kind"]}: missing required field {string.Join('.', path)}");
        }
        return node!.AsObject();
    }

    static Dictionary<string, string> AlertExpressions()
    {
        var alerts = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var file in Directory.GetFiles(DeployArtefacts.PrometheusDir, "*.rules.yml"))
            foreach (var group in YamlToJson(File.ReadAllText(file))["groups"]!.AsArray())
                foreach (var rule in group!["rules"]!.AsArray())
                    if (rule!["alert"] is { } name) alerts[(string)name!] = (string)rule["expr"]!;
        return alerts;
    }

    static string Normalize(string? s) => Whitespace().Replace(s ?? "", " ").Trim();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    /// <summary>YAML as JSON nodes: mappings, sequences and scalars (scalars that look like numbers or booleans
    /// become numbers and booleans, as a Kubernetes API server would read them).</summary>
    static JsonObject YamlToJson(string yaml)
    {
        var value = new DeserializerBuilder().Build().Deserialize<object>(yaml);
        return Assert.IsType<JsonObject>(Convert(value));

        static JsonNode? Convert(object? v) => v switch
        {
            null => null,
            Dictionary<object, object?> map => new JsonObject(map.Select(kv => KeyValuePair.Create((string)kv.Key, Convert(kv.Value)))),
            List<object?> list => new JsonArray(list.Select(Convert).ToArray()),
            string s when long.TryParse(s, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var n) => n,
            string s when s is "true" or "false" => s == "true",
            string s => s,
            _ => throw new InvalidOperationException($"unexpected YAML value {v.GetType()}"),
        };
    }
}
