using System.Data.Common;

namespace Neraca.Events;

/// <summary>A capability whose events keep their data in its own rows instead of the event row: the ledger's transfer
/// events are rendered from the journal row they tell of, so a posting writes no payload (issue #21).</summary>
public abstract class EventDataSource
{
    /// <summary>Renders the data of those of <paramref name="rows"/> it wrote (all stored with
    /// <see cref="EventLog.DataInSource"/>), by event seq. Runs on the reader's connection and transaction: a row that is
    /// visible there was committed together with what it tells of.</summary>
    public abstract Task<IReadOnlyDictionary<long, string>> RenderAsync(DbConnection connection, DbTransaction? tx, IReadOnlyList<EventRow> rows,
        CancellationToken ct);
}

/// <summary>Fills in the data of events stored without it. Every reader of the <c>events</c> table (the feed and its
/// stream, the relay, the webhook dispatcher) passes its rows through here before anything sees a payload.</summary>
public sealed class EventData(IEnumerable<EventDataSource> sources)
{
    readonly EventDataSource[] _sources = [.. sources];

    public async Task<List<EventRow>> FillAsync(DbConnection connection, DbTransaction? tx, List<EventRow> rows, CancellationToken ct)
    {
        var missing = rows.Where(r => r.Payload.Length == 0).ToList();
        if (missing.Count == 0) return rows;
        var data = new Dictionary<long, string>(missing.Count);
        foreach (var source in _sources)
            foreach (var (seq, payload) in await source.RenderAsync(connection, tx, missing, ct))
                data[seq] = payload;
        var filled = new List<EventRow>(rows.Count);
        foreach (var row in rows)
        {
            if (row.Payload.Length > 0) filled.Add(row);
            else if (data.TryGetValue(row.Seq, out var payload)) filled.Add(row with { Payload = payload });
            // Never expected: the source's rows commit with the event. Failing loudly beats serving an event without data.
            else throw new InvalidOperationException($"Event {row.Id} ({row.Type}) is stored without data and no source renders it.");
        }
        return filled;
    }
}
