using System.Data.Common;
using Neraca.Events;

namespace Neraca.Ledger;

/// <summary>The data of the ledger's transfer events, read from the journal. A posting writes its events' rows without a
/// payload (<see cref="EventLog.DataInSource"/>): the transfer as the API shows it is rendered here, when the feed, the
/// relay or a webhook reads the event, from the transfer row and its resolution, which commit with the event and never
/// change. So the posting transaction carries neither the JSON nor its WAL, and the JSON is exactly the API's.</summary>
/// <remarks>A transfer has at most two events: the one that created it (<c>transfer.pending</c>, or <c>transfer.posted</c>
/// for a transfer posted at once) and the one that resolved it (<c>transfer.posted</c>, <c>.voided</c> or <c>.expired</c>
/// of a pending transfer). The first shows the transfer before any resolution; the second, with it.</remarks>
internal sealed class LedgerEventData(LedgerStore store) : EventDataSource
{
    public override async Task<IReadOnlyDictionary<long, string>> RenderAsync(DbConnection connection, DbTransaction? tx, IReadOnlyList<EventRow> rows,
        CancellationToken ct)
    {
        var data = new Dictionary<long, string>();
        foreach (var tenant in rows.Where(IsTransferEvent).GroupBy(r => r.TenantId))
        {
            var ids = tenant.Select(r => r.Subject).Distinct(StringComparer.Ordinal).ToArray();
            var transfers = (await store.ReadTransfersAsync(connection, tx, tenant.Key, ids, ct)).ToDictionary(t => t.Id, StringComparer.Ordinal);
            var codes = new Dictionary<string, string>(StringComparer.Ordinal); // ledger id → code: a batch's events share one
            foreach (var row in tenant)
            {
                if (!transfers.TryGetValue(row.Subject, out var transfer)) continue; // EventData reports it
                if (!codes.TryGetValue(transfer.LedgerId, out var code))
                    codes[transfer.LedgerId] = code = (await store.GetLedgerAsync(tenant.Key, transfer.LedgerId, ct)
                        ?? throw new InvalidOperationException($"Transfer {transfer.Id} names ledger {transfer.LedgerId}, which does not exist.")).Code;
                var asOfEvent = row.Type == LedgerEventTypes.TransferPending.Name
                    ? transfer with { Resolution = null, ResolvedAmount = 0, ResolvedAtUs = null }
                    : transfer;
                data[row.Seq] = LedgerJson.Serialize(LedgerJson.ToResponse(asOfEvent, code));
            }
        }
        return data;
    }

    static bool IsTransferEvent(EventRow row) => row.LedgerId is not null && row.Type.StartsWith("transfer.", StringComparison.Ordinal);
}
