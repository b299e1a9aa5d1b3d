using System.Numerics;
using System.Security.Cryptography;
using System.Text;

namespace Neraca.SplitBill;

/// <summary>The split arithmetic, pure and exact. A split is a list of non-negative integer weights (a rational part of
/// the whole for each member, all over one common denominator); an amount is divided by them once:</summary>
/// <remarks>
/// <para>Each member's exact value is <c>total × weight / Σweights</c>, a rational. Every member first gets the floor of
/// it; the minor units left over (fewer than the number of members) go one each to the members with the largest
/// remainders. Equal remainders are ordered by member id, starting at a position taken from a SHA-256 of the expense
/// id, so a tie does not always favour the same member. Hence each share is the floor or the ceiling of its exact value
/// and the shares sum to the total exactly.</para>
/// <para>Everything is <see cref="BigInteger"/>: no floating point, no overflow however large the weights get
/// (itemized splits multiply denominators).</para>
/// </remarks>
public static class Splitting
{
    /// <summary>Divides an amount by weights.</summary>
    /// <param name="total">Minor units to divide, ≥ 0.</param>
    /// <param name="weights">One per member, ≥ 0, not all zero.</param>
    /// <param name="members">Member ids, one per weight, distinct; the tie order is their ordinal order.</param>
    /// <param name="rotationKey">The expense id: the tie rotation is derived from it.</param>
    public static long[] Allocate(long total, IReadOnlyList<BigInteger> weights, IReadOnlyList<string> members, string rotationKey)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(total);
        if (weights.Count != members.Count || weights.Count == 0) throw new ArgumentException("One weight per member, at least one.", nameof(weights));
        BigInteger denominator = 0;
        foreach (var w in weights)
        {
            if (w.Sign < 0) throw new ArgumentException("Weights are never negative.", nameof(weights));
            denominator += w;
        }
        if (denominator.IsZero) throw new ArgumentException("At least one weight must be positive.", nameof(weights));

        var n = weights.Count;
        var shares = new long[n];
        var remainders = new BigInteger[n];
        long given = 0;
        for (var i = 0; i < n; i++)
        {
            var q = BigInteger.DivRem(total * weights[i], denominator, out var r);
            shares[i] = (long)q; // ≤ total: fits
            remainders[i] = r;
            given = checked(given + shares[i]);
        }
        var left = total - given;
        if (left < 0 || left >= n) throw new InvalidOperationException("Floors cannot exceed the total nor leave a member's worth.");
        if (left == 0) return shares;

        var order = TieOrder(members, rotationKey);
        var byRemainder = Enumerable.Range(0, n)
            .OrderByDescending(i => remainders[i])
            .ThenBy(i => order[i])
            .Take((int)left);
        foreach (var i in byRemainder)
        {
            if (remainders[i].IsZero) throw new InvalidOperationException("A member with an exact share never gets an extra unit.");
            shares[i]++;
        }
        return shares;
    }

    /// <summary>Each member's rank among equal remainders: members sorted by id, then rotated by the expense's hash.</summary>
    static int[] TieOrder(IReadOnlyList<string> members, string rotationKey)
    {
        var n = members.Count;
        var sorted = Enumerable.Range(0, n).OrderBy(i => members[i], StringComparer.Ordinal).ToArray();
        var offset = (int)(BitConverter.ToUInt64(SHA256.HashData(Encoding.UTF8.GetBytes(rotationKey)), 0) % (ulong)n);
        var rank = new int[n];
        for (var k = 0; k < n; k++) rank[sorted[k]] = ((k - offset) % n + n) % n;
        return rank;
    }

    /// <summary><paramref name="amount"/> minor units of a currency with <paramref name="fromScale"/> decimals, times
    /// <paramref name="rate"/>, in minor units of a currency with <paramref name="toScale"/> decimals, rounded half to
    /// even (banker's rounding). Null when the result does not fit in 64 bits.</summary>
    public static long? Convert(long amount, decimal rate, int fromScale, int toScale)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(amount);
        if (rate <= 0) throw new ArgumentOutOfRangeException(nameof(rate), "A rate is positive.");
        var bits = decimal.GetBits(rate);
        var rateScale = (bits[3] >> 16) & 0xFF;
        var mantissa = new BigInteger((uint)bits[0]) | (new BigInteger((uint)bits[1]) << 32) | (new BigInteger((uint)bits[2]) << 64);
        var numerator = amount * mantissa * BigInteger.Pow(10, toScale);
        var denominator = BigInteger.Pow(10, rateScale + fromScale);
        var result = RoundHalfEven(numerator, denominator);
        return result > long.MaxValue ? null : (long)result;
    }

    /// <summary><paramref name="numerator"/> / <paramref name="denominator"/> (both ≥ 0, denominator &gt; 0), half to even.</summary>
    public static BigInteger RoundHalfEven(BigInteger numerator, BigInteger denominator)
    {
        var q = BigInteger.DivRem(numerator, denominator, out var r);
        var twice = r * 2;
        if (twice > denominator || (twice == denominator && !q.IsEven)) q += 1;
        return q;
    }

    /// <summary>Simplified settle-up: repeatedly the largest debtor pays the largest creditor as much as both allow
    /// (ties by member id). Each transfer settles at least one member completely, so n members need at most n − 1.</summary>
    /// <param name="nets">Member id → net (positive: is owed). Must sum to zero.</param>
    public static IReadOnlyList<(string From, string To, long Amount)> Simplify(IReadOnlyDictionary<string, long> nets)
    {
        long sum = 0;
        foreach (var v in nets.Values) sum = checked(sum + v);
        if (sum != 0) throw new ArgumentException($"Nets must sum to zero (they sum to {sum}).", nameof(nets));
        var creditors = new SortedSet<(long Amount, string Member)>(Comparer<(long Amount, string Member)>.Create(ByAmountDescending));
        var debtors = new SortedSet<(long Amount, string Member)>(Comparer<(long Amount, string Member)>.Create(ByAmountDescending));
        foreach (var (member, net) in nets)
        {
            if (net > 0) creditors.Add((net, member));
            else if (net < 0) debtors.Add((checked(-net), member));
        }
        var transfers = new List<(string, string, long)>();
        while (creditors.Count > 0 && debtors.Count > 0)
        {
            var c = creditors.Min; // Min under a descending comparer: the largest
            var d = debtors.Min;
            creditors.Remove(c);
            debtors.Remove(d);
            var amount = Math.Min(c.Amount, d.Amount);
            transfers.Add((d.Member, c.Member, amount));
            if (c.Amount > amount) creditors.Add((c.Amount - amount, c.Member));
            if (d.Amount > amount) debtors.Add((d.Amount - amount, d.Member));
        }
        if (creditors.Count != 0 || debtors.Count != 0) throw new InvalidOperationException("Settle-up left a balance open.");
        return transfers;
    }

    static int ByAmountDescending((long Amount, string Member) a, (long Amount, string Member) b)
    {
        var c = b.Amount.CompareTo(a.Amount);
        return c != 0 ? c : string.CompareOrdinal(a.Member, b.Member);
    }

    /// <summary>Removes money that would only go round in a circle (A owes B, B owes C, C owes A: each pays the smallest
    /// debt of the cycle less), until no cycle is left. Every member's balance stays the same; when every balance is
    /// zero nothing remains. Each pass zeroes at least one debt, so there are at most as many passes as debts.</summary>
    /// <param name="debts">From → to → amount (&gt; 0), one direction per pair.</param>
    public static IReadOnlyList<(string From, string To, long Amount)> CancelCycles(IEnumerable<(string From, string To, long Amount)> debts)
    {
        var edges = new SortedDictionary<string, SortedDictionary<string, long>>(StringComparer.Ordinal);
        foreach (var (from, to, amount) in debts)
        {
            if (amount <= 0 || from == to) throw new ArgumentException("Debts are positive and between two members.", nameof(debts));
            if (!edges.TryGetValue(from, out var targets)) edges[from] = targets = new SortedDictionary<string, long>(StringComparer.Ordinal);
            targets[to] = checked(targets.GetValueOrDefault(to) + amount);
        }
        while (FindCycle(edges) is { } cycle)
        {
            var least = long.MaxValue;
            for (var i = 0; i < cycle.Count; i++) least = Math.Min(least, edges[cycle[i]][cycle[(i + 1) % cycle.Count]]);
            for (var i = 0; i < cycle.Count; i++)
            {
                var (a, b) = (cycle[i], cycle[(i + 1) % cycle.Count]);
                if ((edges[a][b] -= least) == 0) edges[a].Remove(b);
            }
        }
        return edges.SelectMany(e => e.Value.Select(x => (e.Key, x.Key, x.Value))).ToList();
    }

    /// <summary>A directed cycle (its members in order) by iterative depth-first search, or null.</summary>
    static List<string>? FindCycle(SortedDictionary<string, SortedDictionary<string, long>> edges)
    {
        var state = new Dictionary<string, int>(StringComparer.Ordinal); // 1 on the path, 2 done
        foreach (var root in edges.Keys)
        {
            if (state.ContainsKey(root)) continue;
            var path = new List<string> { root };
            var next = new Stack<IEnumerator<string>>();
            state[root] = 1;
            next.Push(Targets(edges, root));
            while (next.Count > 0)
            {
                if (!next.Peek().MoveNext())
                {
                    next.Pop();
                    state[path[^1]] = 2;
                    path.RemoveAt(path.Count - 1);
                    continue;
                }
                var to = next.Peek().Current;
                if (state.TryGetValue(to, out var s))
                {
                    if (s == 1) return path.GetRange(path.IndexOf(to), path.Count - path.IndexOf(to));
                    continue;
                }
                state[to] = 1;
                path.Add(to);
                next.Push(Targets(edges, to));
            }
        }
        return null;
    }

    static IEnumerator<string> Targets(SortedDictionary<string, SortedDictionary<string, long>> edges, string from) =>
        (edges.TryGetValue(from, out var t) ? t.Keys.ToList() : []).GetEnumerator();

    /// <summary>Who owes whom within one expense: its debtors (owed more than paid) pay its creditors (paid more than
    /// owed) in member-id order, exactly. With one payer, each other member owes the payer their share.</summary>
    public static IReadOnlyList<(string From, string To, long Amount)> PairwiseWithin(IReadOnlyDictionary<string, long> nets)
    {
        var creditors = nets.Where(x => x.Value > 0).OrderBy(x => x.Key, StringComparer.Ordinal).Select(x => (x.Key, x.Value)).ToList();
        var debtors = nets.Where(x => x.Value < 0).OrderBy(x => x.Key, StringComparer.Ordinal).Select(x => (x.Key, -x.Value)).ToList();
        var transfers = new List<(string, string, long)>();
        int ci = 0, di = 0;
        while (ci < creditors.Count && di < debtors.Count)
        {
            var amount = Math.Min(creditors[ci].Item2, debtors[di].Item2);
            transfers.Add((debtors[di].Key, creditors[ci].Key, amount));
            creditors[ci] = (creditors[ci].Key, creditors[ci].Item2 - amount);
            debtors[di] = (debtors[di].Key, debtors[di].Item2 - amount);
            if (creditors[ci].Item2 == 0) ci++;
            if (debtors[di].Item2 == 0) di++;
        }
        if (ci != creditors.Count || di != debtors.Count) throw new ArgumentException("Nets must sum to zero.", nameof(nets));
        return transfers;
    }
}
