using Neraca.Ledger;
using Neraca.Settlement;
using Neraca.Settlement.Counterparties;
using Neraca.Web.Components;

namespace Neraca.Web.Views.Operator.Reconciliation;

/// <summary>How the reconciliation pages show amounts (in the asset and scale of the counterparty's cash account's
/// ledger, read once per counterparty and page) and the product's errors.</summary>
internal sealed class ReconciliationMoney(CounterpartyDirectory counterparties, ILedger ledger, string tenantId)
{
    readonly Dictionary<string, (string Asset, int Scale)?> _byCounterparty = new(StringComparer.Ordinal);

    public async Task<(string Asset, int Scale)?> OfAsync(string counterpartyId, CancellationToken ct)
    {
        if (_byCounterparty.TryGetValue(counterpartyId, out var known)) return known;
        (string, int)? found = null;
        if (await counterparties.GetAsync(tenantId, counterpartyId, ct) is { } c
            && await ledger.GetAccountAsync(tenantId, c.CashAccount, ct) is { Succeeded: true } account
            && await ledger.GetLedgerAsync(tenantId, account.Value!.Ledger, ct) is { Succeeded: true } l)
            found = (l.Value!.Asset, l.Value.Scale);
        _byCounterparty[counterpartyId] = found;
        return found;
    }

    public static WebProblem Problem(SettlementError e) => new(e.Code, e.Errors is { Count: > 0 } fields
        ? e.Detail + " " + string.Join(" ", fields.Select(f => $"{f.Key}: {string.Join(" ", f.Value)}"))
        : e.Extra is { Count: > 0 } extra ? e.Detail + " (" + string.Join(", ", extra.Select(x => $"{x.Key}: {x.Value}")) + ")" : e.Detail);

    /// <summary>Percent of a statement's lines matched or ignored, for its progress bar.</summary>
    public static int Percent(long done, long total) => total <= 0 ? 100 : (int)Math.Min(100, checked(done * 100) / total);
}
