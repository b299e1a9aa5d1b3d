using System.Diagnostics.Metrics;

namespace Neraca.Payouts;

/// <summary>Payout instruments on the shared "Neraca" meter. The gauges are refreshed by worker processes
/// (<see cref="PayoutGauges"/>); the counter and the histogram by whoever does the work.</summary>
public sealed class PayoutMetrics
{
    public const string MeterName = "Neraca";

    readonly Counter<long> _finished;
    readonly Histogram<double> _providerDuration;
    readonly Meter _meter;
    IReadOnlyDictionary<string, long> _open = new Dictionary<string, long>();
    double _oldestUnknownSeconds;

    public PayoutMetrics(IMeterFactory meters)
    {
        _meter = meters.Create(MeterName);
        _finished = _meter.CreateCounter<long>("neraca.payouts.finished", description: "Payouts that ended, by status (succeeded, failed).");
        _providerDuration = _meter.CreateHistogram<double>("neraca.payouts.provider.duration", unit: "s",
            description: "Time of one provider call including the adapter's retries, by operation (create, status, inquiry) and outcome (HTTP status, timeout, network).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] });
        _meter.CreateObservableGauge("neraca.payouts.open", ObserveOpen,
            description: "Payouts not yet finished, by status (requested, reserved, submitted, unknown), all tenants; reported by workers.");
        _meter.CreateObservableGauge("neraca.payouts.unknown.oldest_age", () => _oldestUnknownSeconds, unit: "s",
            description: "How long the oldest payout has been in status unknown (0 when none); reported by workers. Alert when it stays high.");
    }

    IEnumerable<Measurement<long>> ObserveOpen()
    {
        var open = _open;
        foreach (var status in (string[])[PayoutStatuses.Requested, PayoutStatuses.Reserved, PayoutStatuses.Submitted, PayoutStatuses.Unknown])
            yield return new Measurement<long>(open.GetValueOrDefault(status), new KeyValuePair<string, object?>("status", status));
    }

    internal void Finished(string status) => _finished.Add(1, new KeyValuePair<string, object?>("status", status));

    internal void ProviderCall(string operation, string outcome, double seconds) =>
        _providerDuration.Record(seconds, new KeyValuePair<string, object?>("operation", operation), new KeyValuePair<string, object?>("outcome", outcome));

    internal void Refreshed(IReadOnlyDictionary<string, long> open, double oldestUnknownSeconds)
    {
        _open = open;
        _oldestUnknownSeconds = oldestUnknownSeconds;
    }
}
