using Neraca.Ledger;
using Neraca.Payouts;
using Neraca.Web.Text;

namespace Neraca.Web.Views.Operator.Payouts;

/// <summary>A payout's amount is in minor units of its source account's ledger: each distinct source account is looked up
/// once per page (a page of payouts comes from a handful of accounts), not once per row.</summary>
public sealed class PayoutAmounts(ILedger ledger, WebText text, string tenantId)
{
    readonly Dictionary<string, LedgerResponse?> _ledgers = new(StringComparer.Ordinal);

    public async Task LoadAsync(IEnumerable<PayoutView> payouts, CancellationToken ct)
    {
        foreach (var source in payouts.Select(p => p.SourceAccount).Distinct(StringComparer.Ordinal))
        {
            if (_ledgers.ContainsKey(source)) continue;
            var account = await ledger.GetAccountAsync(tenantId, source, ct);
            _ledgers[source] = account.Succeeded && await ledger.GetLedgerAsync(tenantId, account.Value!.Ledger, ct) is { Succeeded: true } l ? l.Value : null;
        }
    }

    /// <summary>The amount in the ledger's currency and scale; minor units with no currency if the account is gone.</summary>
    public string Of(PayoutView payout) => _ledgers.GetValueOrDefault(payout.SourceAccount) is { } l
        ? text.Money(payout.Amount, l.Asset, l.Scale)
        : text.Number(payout.Amount);

    /// <summary>How long a payout has been in its state: since its last change, in days, hours and minutes.</summary>
    public static string Age(DateTimeOffset since, DateTimeOffset now)
    {
        var age = now - since;
        if (age < TimeSpan.Zero) age = TimeSpan.Zero;
        return age.TotalDays >= 1 ? $"{(int)age.TotalDays} d {age.Hours} h" : age.TotalHours >= 1 ? $"{(int)age.TotalHours} h {age.Minutes} min" : $"{(int)age.TotalMinutes} min";
    }
}
