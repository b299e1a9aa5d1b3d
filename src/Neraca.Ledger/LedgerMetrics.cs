using System.Diagnostics.Metrics;

namespace Neraca.Ledger;

/// <summary>Ledger instruments on the shared "Neraca" meter (spans go to <see cref="Observability.NeracaTelemetry.ActivitySource"/>).</summary>
internal sealed class LedgerMetrics
{
    public const string MeterName = "Neraca";

    readonly Meter _meter;
    readonly Counter<long> _posted;
    readonly Counter<long> _failed;
    readonly Histogram<long> _batchSize;
    readonly Histogram<double> _commitDuration;

    public LedgerMetrics(IMeterFactory meters)
    {
        _meter = meters.Create(MeterName);
        _posted = _meter.CreateCounter<long>("neraca.transfers.posted", description: "Ledger operations that committed (transfers created, posted, voided, expired).");
        _failed = _meter.CreateCounter<long>("neraca.transfers.failed", description: "Ledger operations refused, by result code.");
        _batchSize = _meter.CreateHistogram<long>("neraca.posting.batch.size", description: "Operations per posting transaction.",
            advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000] });
        _commitDuration = _meter.CreateHistogram<double>("neraca.posting.commit.duration", unit: "s", description: "Time to read, apply and commit one posting batch.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5] });
    }

    internal void BatchCommitted(int operations, double seconds, OpResult[][] results)
    {
        _batchSize.Record(operations);
        _commitDuration.Record(seconds);
        long created = 0;
        foreach (var request in results)
        {
            foreach (var r in request)
            {
                if (r.Status == OpStatus.Created) created++;
                else if (r.Status == OpStatus.Failed) _failed.Add(1, new KeyValuePair<string, object?>("code", r.Code));
            }
        }
        if (created > 0) _posted.Add(created);
    }

    public void ObserveQueueDepth(Func<long> depth) =>
        _meter.CreateObservableGauge("neraca.posting.queue.depth", depth, description: "Posting requests waiting in this process.");

    public void ObservePending(Func<long> pending) =>
        _meter.CreateObservableGauge("neraca.transfers.pending", pending, description: "Pending transfers not yet posted, voided or expired (counted by the expiry sweep, at most 15 s old; 0 on replicas without the worker role).");
}
