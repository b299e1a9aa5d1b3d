using System.Diagnostics.Metrics;

namespace Neraca.Tests.Infrastructure;

/// <summary>Collects one counter of the "Neraca" meter (from every server in the test process) by one tag's value.</summary>
public sealed class CounterRecorder : IDisposable
{
    readonly MeterListener _listener = new();
    readonly Dictionary<string, long> _byTag = new(StringComparer.Ordinal);
    readonly Lock _gate = new();

    public CounterRecorder(string instrument, string tag)
    {
        _listener.InstrumentPublished = (i, l) =>
        {
            if (i.Meter.Name == "Neraca" && i.Name == instrument) l.EnableMeasurementEvents(i);
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var t in tags)
            {
                if (t.Key != tag) continue;
                lock (_gate) _byTag[(string)t.Value!] = _byTag.GetValueOrDefault((string)t.Value!) + value;
            }
        });
        _listener.Start();
    }

    public long this[string tagValue]
    {
        get { lock (_gate) return _byTag.GetValueOrDefault(tagValue); }
    }

    public void Dispose() => _listener.Dispose();
}
