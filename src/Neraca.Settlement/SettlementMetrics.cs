using System.Diagnostics.Metrics;

namespace Neraca.Settlement;

/// <summary>Settlement and reconciliation instruments on the shared "Neraca" meter. Match rate is
/// <c>rate(neraca_reconciliation_lines_total{result="matched"}) / rate(neraca_reconciliation_lines_total)</c>; the gauges come
/// from <see cref="Matching.ReconciliationMonitor"/> (worker role, refreshed every <c>MonitorIntervalMs</c>; 0 elsewhere).</summary>
internal sealed class SettlementMetrics
{
    public const string MeterName = "Neraca";

    readonly Counter<long> _runs;
    readonly Counter<long> _lines;
    readonly Histogram<double> _timeToMatched;
    readonly Histogram<double> _matchDuration;

    public SettlementMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _runs = meter.CreateCounter<long>("neraca.settlement.runs", description: "Settlement runs finished, by status (posted, failed).");
        _lines = meter.CreateCounter<long>("neraca.reconciliation.lines",
            description: "Statement lines after a matching pass, by result (matched, exception) and rule.");
        _timeToMatched = meter.CreateHistogram<double>("neraca.reconciliation.time_to_matched", unit: "s",
            description: "From a statement's import to every line matched or ignored.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 86400] });
        _matchDuration = meter.CreateHistogram<double>("neraca.reconciliation.match.duration", unit: "s", description: "One matching pass of a statement.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300] });
        meter.CreateObservableGauge("neraca.reconciliation.unmatched.oldest_age", () => OldestOpenExceptionAgeSeconds, unit: "s",
            description: "Age of the oldest open reconciliation exception (0 when none).");
        meter.CreateObservableGauge("neraca.reconciliation.statement.unmatched.oldest_age", () => OldestUnmatchedStatementAgeSeconds, unit: "s",
            description: "Time since the import of the oldest statement not fully matched (0 when none).");
    }

    public double OldestOpenExceptionAgeSeconds { get; set; }

    public double OldestUnmatchedStatementAgeSeconds { get; set; }

    public void RunFinished(string status) => _runs.Add(1, new KeyValuePair<string, object?>("status", status));

    public void Lines(string result, string rule, long count)
    {
        if (count > 0) _lines.Add(count, new KeyValuePair<string, object?>("result", result), new KeyValuePair<string, object?>("rule", rule));
    }

    public void FullyMatched(double seconds) => _timeToMatched.Record(seconds);

    public void MatchPass(double seconds) => _matchDuration.Record(seconds);
}
