using Neraca.Ledger;

namespace Neraca.Wellness.Employers;

/// <summary>Creates the ledger and accounts of the money map (docs/ewa.md). Every id is derived, so running it again
/// (a retried request, a second replica) finds what exists instead of creating anything twice.</summary>
public sealed class EwaLedger(ILedger ledger)
{
    public const string Asset = "IDR";
    public const int Scale = 2;

    const string Credit = "credit";
    const string Debit = "debit";
    const string NoOverdraft = "debits_must_not_exceed_credits";
    const string NoNegativeAsset = "credits_must_not_exceed_debits";

    /// <summary>Null when everything exists; the ledger's error otherwise.</summary>
    public async Task<LedgerError?> ProvisionAsync(string tenantId, string employerId, string funding, CancellationToken ct)
    {
        var l = await ledger.CreateLedgerAsync(tenantId, new CreateLedgerRequest(EwaAccounts.LedgerCode, Asset, Scale, "Earned wage access"), ct);
        if (!l.Succeeded) return l.Error;
        var a = EwaAccounts.For(employerId, funding);
        var accounts = new List<CreateAccountRequest>
        {
            Account(EwaAccounts.Bank, Debit, [], "EWA provider bank"),
            Account(a.Advances, Debit, [NoNegativeAsset], "Advances due from employees (recovered through payroll)"),
            Account(a.Disbursement, Credit, [NoOverdraft], "Advances on their way to employees (payout source)"),
            Account(a.Fees, Credit, [], "Fee income"),
        };
        if (funding == FundingModels.EmployerPrefunded)
        {
            accounts.Add(Account(a.Funding, Credit, [NoOverdraft], "Employer float (prefunded)"));
            accounts.Add(Account(a.Committed!, Credit, [NoOverdraft], "Float committed to outstanding advances"));
        }
        else accounts.Add(Account(a.Funding, Debit, [], "Receivable from the employer (provider funded)"));
        foreach (var account in accounts)
        {
            var r = await ledger.CreateAccountAsync(tenantId, account, ct);
            if (!r.Succeeded) return r.Error;
        }
        return null;
    }

    static CreateAccountRequest Account(string id, string normal, string[] flags, string name) =>
        new(id, EwaAccounts.LedgerCode, normal, 500, name, flags);
}
