using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Neraca.Jobs;

/// <summary>Job instruments on the <c>Neraca</c> meter. Alert on <c>neraca.job.runs{result="dead"}</c> (a dead-lettered
/// job) and on <c>neraca.audit.verification.failures</c> (a ledger whose audit chain does not verify).</summary>
public sealed class JobMetrics
{
    public const string MeterName = "Neraca";

    readonly Counter<long> _runs;
    readonly Histogram<double> _duration;
    readonly Counter<long> _failures;
    readonly Counter<long> _items;
    readonly Counter<long> _verificationFailures;

    public JobMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _runs = meter.CreateCounter<long>("neraca.job.runs", "{run}", "Job attempts by outcome (succeeded, retrying, dead, lease_lost, released).");
        _duration = meter.CreateHistogram<double>("neraca.job.duration", "s", "Duration of one job attempt.");
        _failures = meter.CreateCounter<long>("neraca.job.failures", "{failure}", "Failed job attempts (dead = true when no retry follows).");
        _items = meter.CreateCounter<long>("neraca.job.items", "{item}", "Items handled by committed chunks.");
        _verificationFailures = meter.CreateCounter<long>("neraca.audit.verification.failures", "{ledger}",
            "Ledgers whose audit chain failed verification or no longer matches a recorded checkpoint.");
    }

    public void Run(string type, string result, TimeSpan duration)
    {
        var tags = new TagList { { "job", type }, { "result", result } };
        _runs.Add(1, tags);
        _duration.Record(duration.TotalSeconds, tags);
    }

    public void Failure(string type, bool dead) => _failures.Add(1, new TagList { { "job", type }, { "dead", dead } });

    public void Chunk(string type, long items) => _items.Add(items, new KeyValuePair<string, object?>("job", type));

    public void VerificationFailure() => _verificationFailures.Add(1);
}
