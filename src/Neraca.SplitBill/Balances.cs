using System.Data.Common;
using Dapper;

namespace Neraca.SplitBill;

// Balances and settle-up, computed from the group's own tables: shares of expenses not deleted, completed settlements.
public sealed partial class SplitBills
{
    const int ExplainedExpensesMax = 100;

    const string LiveShares = """
        FROM split_shares s JOIN split_expenses e ON e.tenant_id = s.tenant_id AND e.group_id = s.group_id AND e.id = s.expense_id
        WHERE s.tenant_id = @tenantId AND s.group_id = @groupId AND e.deleted_at_us IS NULL
        """;

    /// <summary>Member → paid, owed, sent, received and net (positive: is owed money), for every member with history.</summary>
    async Task<Dictionary<string, MemberBalance>> NetsAsync(DbConnection c, DbTransaction? tx, string tenantId, string groupId, CancellationToken ct)
    {
        var result = new Dictionary<string, MemberBalance>(StringComparer.Ordinal);
        MemberBalance Get(string m) => result.TryGetValue(m, out var b) ? b : new MemberBalance(m, 0, 0, 0, 0, 0);
        foreach (var (member, paid, owed) in await c.QueryAsync<(string, long, long)>(new CommandDefinition(
                     $"SELECT s.member_id, CAST(sum(s.paid) AS bigint), CAST(sum(s.owed) AS bigint) {LiveShares} GROUP BY s.member_id",
                     new { tenantId, groupId }, tx, cancellationToken: ct)))
            result[member] = Get(member) with { Paid = paid, Owed = owed };
        foreach (var (from, to, amount) in await c.QueryAsync<(string, string, long)>(new CommandDefinition(
                     "SELECT from_member, to_member, amount FROM split_settlements WHERE tenant_id = @tenantId AND group_id = @groupId AND status = 2",
                     new { tenantId, groupId }, tx, cancellationToken: ct)))
        {
            result[from] = Get(from) with { Sent = checked(Get(from).Sent + amount) };
            result[to] = Get(to) with { Received = checked(Get(to).Received + amount) };
        }
        foreach (var (m, b) in result.ToList()) result[m] = b with { Net = checked(b.Paid - b.Owed + b.Sent - b.Received) };
        return result;
    }

    public async Task<SplitResult<BalancesResponse>> GetBalancesAsync(SplitCaller caller, string groupId, CancellationToken ct) =>
        await ReadAsync(async c =>
        {
            if (await LoadGroupAsync(c, null, caller, groupId, ct) is not { } g) return GroupNotFound(groupId);
            var nets = await NetsAsync(c, null, caller.TenantId, groupId, ct);
            var list = g.Members.Where(m => m.status != Removed || nets.ContainsKey(m.id) && nets[m.id].Net != 0)
                .Select(m => nets.TryGetValue(m.id, out var b) ? b : new MemberBalance(m.id, 0, 0, 0, 0, 0)).ToList();
            if (list.Sum(b => b.Net) != 0) throw new InvalidOperationException($"Group {groupId}: nets do not sum to zero.");
            return SplitResult<BalancesResponse>.Ok(new BalancesResponse(groupId, g.Group.currency, list));
        }, ct);

    /// <summary>Suggested transfers that bring every balance to zero: simplified (at most n − 1, from net balances) or
    /// pairwise (the debts as incurred, netted per pair). Each names the expenses behind it.</summary>
    public async Task<SplitResult<SettleUpResponse>> SettleUpAsync(SplitCaller caller, string groupId, bool? simplify, CancellationToken ct) =>
        await ReadAsync(async c =>
        {
            if (await LoadGroupAsync(c, null, caller, groupId, ct) is not { } g) return GroupNotFound(groupId);
            var simplified = simplify ?? g.Group.simplify_debts == 1;
            var rows = (await c.QueryAsync<(string Expense, string Member, long Paid, long Owed)>(new CommandDefinition(
                $"SELECT s.expense_id, s.member_id, s.paid, s.owed {LiveShares} ORDER BY e.expense_date, e.created_at_us, s.expense_id, s.member_id",
                new { tenantId = caller.TenantId, groupId }, cancellationToken: ct))).ToList();
            var settlements = (await c.QueryAsync<(string From, string To, long Amount)>(new CommandDefinition(
                "SELECT from_member, to_member, amount FROM split_settlements WHERE tenant_id = @tenantId AND group_id = @groupId AND status = 2",
                new { tenantId = caller.TenantId, groupId }, cancellationToken: ct))).ToList();
            string Name(string id) => g.Member(id)?.name ?? id;
            string Money(long v) => Currencies.FormatMajor(v, g.Scale) + " " + g.Group.currency;
            var transfers = simplified
                ? Simplified(rows, settlements, Name, Money)
                : Pairwise(rows, settlements, Name, Money);
            return SplitResult<SettleUpResponse>.Ok(new SettleUpResponse(groupId, g.Group.currency, simplified, transfers));
        }, ct);

    static List<SuggestedTransfer> Simplified(List<(string Expense, string Member, long Paid, long Owed)> rows, List<(string From, string To, long Amount)> settlements,
        Func<string, string> name, Func<long, string> money)
    {
        var nets = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var r in rows) nets[r.Member] = checked(nets.GetValueOrDefault(r.Member) + r.Paid - r.Owed);
        foreach (var s in settlements)
        {
            nets[s.From] = checked(nets.GetValueOrDefault(s.From) + s.Amount);
            nets[s.To] = checked(nets.GetValueOrDefault(s.To) - s.Amount);
        }
        // Which expenses stand behind a transfer: those where its payer owes more than paid, and those where its payee
        // paid more than owed. A chain A owes B owes C becomes A -> C naming both links.
        var owes = rows.Where(r => r.Owed > r.Paid).ToLookup(r => r.Member, r => r.Expense);
        var owed = rows.Where(r => r.Paid > r.Owed).ToLookup(r => r.Member, r => r.Expense);
        return Splitting.Simplify(nets).Select(t =>
        {
            var expenses = owes[t.From].Concat(owed[t.To]).Distinct(StringComparer.Ordinal).Take(ExplainedExpensesMax).ToList();
            return new SuggestedTransfer(t.From, t.To, t.Amount, expenses,
                $"{name(t.From)} pays {name(t.To)} {money(t.Amount)}: {name(t.From)} owes {money(-nets[t.From])} in all and {name(t.To)} is owed {money(nets[t.To])} in all.");
        }).ToList();
    }

    static List<SuggestedTransfer> Pairwise(List<(string Expense, string Member, long Paid, long Owed)> rows, List<(string From, string To, long Amount)> settlements,
        Func<string, string> name, Func<long, string> money)
    {
        // debt[(a, b)] with a < b (ordinal): positive = a owes b.
        var debt = new SortedDictionary<(string, string), long>(Comparer<(string, string)>.Create((x, y) =>
        {
            var c = string.CompareOrdinal(x.Item1, y.Item1);
            return c != 0 ? c : string.CompareOrdinal(x.Item2, y.Item2);
        }));
        var because = new Dictionary<(string, string), List<string>>();
        void Add(string from, string to, long amount, string? expense)
        {
            var key = string.CompareOrdinal(from, to) < 0 ? (from, to) : (to, from);
            debt[key] = checked(debt.GetValueOrDefault(key) + (key.Item1 == from ? amount : -amount));
            if (expense is null) return;
            if (!because.TryGetValue(key, out var list)) because[key] = list = [];
            if (list.Count < ExplainedExpensesMax && (list.Count == 0 || list[^1] != expense)) list.Add(expense);
        }
        foreach (var expense in rows.GroupBy(r => r.Expense))
            foreach (var t in Splitting.PairwiseWithin(expense.ToDictionary(r => r.Member, r => r.Paid - r.Owed, StringComparer.Ordinal)))
                Add(t.From, t.To, t.Amount, expense.Key);
        foreach (var s in settlements) Add(s.To, s.From, s.Amount, null); // paying b reduces what a owes b
        // Payments that did not follow the pairs (a simplified settle-up) leave debts that go round in circles: cancel them.
        var netted = debt.Where(d => d.Value != 0).Select(d => d.Value > 0 ? (d.Key.Item1, d.Key.Item2, d.Value) : (d.Key.Item2, d.Key.Item1, -d.Value));
        var transfers = new List<SuggestedTransfer>();
        foreach (var (from, to, value) in Splitting.CancelCycles(netted))
        {
            var expenses = because.GetValueOrDefault(string.CompareOrdinal(from, to) < 0 ? (from, to) : (to, from)) ?? [];
            transfers.Add(new SuggestedTransfer(from, to, value, expenses,
                $"{name(from)} owes {name(to)} {money(value)} from {expenses.Count} shared expense(s), net of what each paid for the other and of payments made."));
        }
        return transfers;
    }
}
