using Neraca.Settlement.Counterparties;
using Neraca.Settlement.Statements;

namespace Neraca.Settlement.Matching;

/// <summary>A statement line to match: money in positive.</summary>
internal sealed record BankLine(int LineNo, DateOnly ValueDate, long Amount, string? Reference, string? BankReference);

/// <summary>A posted ledger transfer on the counterparty's cash account, signed as the bank sees it (money into the
/// account positive), with its value date (effective time in the counterparty's zone) and the references it can be found by:
/// its id, <c>metadata.end_to_end_id</c> and <c>metadata.reference</c>.</summary>
internal sealed class Candidate(string id, long amount, DateOnly valueDate, string[] references)
{
    public string Id { get; } = id;
    public long Amount { get; } = amount;
    public DateOnly ValueDate { get; } = valueDate;
    public string[] References { get; } = references;
    public bool Matched { get; set; }
}

/// <summary>The matching rules, applied in the counterparty's order: every line tries the first rule, then the lines
/// still unmatched try the second, and so on, so a rule never takes a transfer an earlier rule would have given another
/// line. Each transfer is matched at most once. Pure and deterministic (ties go to the nearest date, then the lowest id).</summary>
internal static class Matcher
{
    public const string ManualRule = "manual";
    public const string WriteOffRule = "write_off";

    public static List<LineMatch> Match(IReadOnlyList<BankLine> lines, IReadOnlyList<Candidate> candidates, IReadOnlyList<MatchingRule> rules)
    {
        var matches = new List<LineMatch>();
        var open = lines.ToList();
        foreach (var rule in rules)
        {
            if (open.Count == 0) break;
            Func<BankLine, string[]?> attempt = rule.Type switch
            {
                MatchingRule.ExactReference => ExactReference(candidates, rule),
                MatchingRule.AmountDate => AmountDate(candidates, rule),
                MatchingRule.ManyToOne => ManyToOne(candidates, rule),
                _ => throw new InvalidOperationException($"unknown rule {rule.Type}"),
            };
            var still = new List<BankLine>(open.Count);
            foreach (var line in open)
            {
                if (attempt(line) is { } ids) matches.Add(new LineMatch(line.LineNo, rule.Type!, ids));
                else still.Add(line);
            }
            open = still;
        }
        return matches;
    }

    static bool Within(long a, long b, long tolerance) => Int128.Abs((Int128)a - b) <= tolerance;

    static int Days(DateOnly a, DateOnly b) => Math.Abs(a.DayNumber - b.DayNumber);

    /// <summary>The line's reference (or bank reference) equals one of a transfer's references, the amounts agree within
    /// the tolerance and, when <c>window_days</c> &gt; 0, the value dates within that many days.</summary>
    static Func<BankLine, string[]?> ExactReference(IReadOnlyList<Candidate> candidates, MatchingRule rule)
    {
        var byReference = new Dictionary<string, List<Candidate>>(StringComparer.Ordinal);
        foreach (var c in candidates)
            foreach (var r in c.References)
                (byReference.TryGetValue(r, out var list) ? list : byReference[r] = []).Add(c);
        var tolerance = rule.Tolerance ?? 0;
        var window = rule.WindowDays ?? 0;
        return line =>
        {
            foreach (var key in new[] { line.Reference, line.BankReference })
            {
                if (key is null || !byReference.TryGetValue(key, out var found)) continue;
                var best = found.Where(c => !c.Matched && Math.Sign(c.Amount) == Math.Sign(line.Amount) && Within(c.Amount, line.Amount, tolerance)
                        && (window == 0 || Days(c.ValueDate, line.ValueDate) <= window))
                    .OrderBy(c => Days(c.ValueDate, line.ValueDate)).ThenBy(c => c.Id, StringComparer.Ordinal).FirstOrDefault();
                if (best is null) continue;
                best.Matched = true;
                return [best.Id];
            }
            return null;
        };
    }

    /// <summary>The same signed amount (within the tolerance) and a value date within <c>window_days</c>; the nearest amount,
    /// then the nearest date wins.</summary>
    static Func<BankLine, string[]?> AmountDate(IReadOnlyList<Candidate> candidates, MatchingRule rule)
    {
        var byAmount = candidates.Where(c => !c.Matched).GroupBy(c => c.Amount)
            .ToDictionary(g => g.Key, g => g.OrderBy(c => c.ValueDate).ThenBy(c => c.Id, StringComparer.Ordinal).ToList());
        var amounts = byAmount.Keys.Order().ToArray();
        var tolerance = rule.Tolerance ?? 0;
        var window = rule.WindowDays ?? 1;
        return line =>
        {
            Candidate? best = null;
            (long AmountOff, int DaysOff) bestKey = (long.MaxValue, int.MaxValue);
            var low = LowerBound(amounts, (long)Int128.Max((Int128)line.Amount - tolerance, long.MinValue));
            for (var i = low; i < amounts.Length && (Int128)amounts[i] - line.Amount <= tolerance; i++)
            {
                if (Math.Sign(amounts[i]) != Math.Sign(line.Amount)) continue;
                var amountOff = (long)Int128.Abs((Int128)amounts[i] - line.Amount);
                foreach (var c in byAmount[amounts[i]])
                {
                    if (c.Matched) continue;
                    var off = Days(c.ValueDate, line.ValueDate);
                    if (off > window) continue;
                    if ((amountOff, off).CompareTo(bestKey) < 0) (best, bestKey) = (c, (amountOff, off));
                }
            }
            if (best is null) return null;
            best.Matched = true;
            return [best.Id];
        };
    }

    /// <summary>One line for several transfers (a bank's batch booking): the transfers whose reference starts with the
    /// line's reference (at least <c>min_prefix_length</c> characters), with the line's sign and value date (± window_days),
    /// at least two, summing to the line's amount within the tolerance.</summary>
    static Func<BankLine, string[]?> ManyToOne(IReadOnlyList<Candidate> candidates, MatchingRule rule)
    {
        var byReference = candidates.SelectMany(c => c.References.Select(r => (Reference: r, Candidate: c)))
            .OrderBy(p => p.Reference, StringComparer.Ordinal).ToArray();
        var keys = byReference.Select(p => p.Reference).ToArray();
        var tolerance = rule.Tolerance ?? 0;
        var window = rule.WindowDays ?? 0;
        var minPrefix = rule.MinPrefixLength ?? 4;
        return line =>
        {
            if (line.Reference is not { } prefix || prefix.Length < minPrefix) return null;
            var group = new List<Candidate>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            long sum = 0;
            for (var i = LowerBound(keys, prefix); i < keys.Length && keys[i].StartsWith(prefix, StringComparison.Ordinal); i++)
            {
                var c = byReference[i].Candidate;
                if (c.Matched || Math.Sign(c.Amount) != Math.Sign(line.Amount) || Days(c.ValueDate, line.ValueDate) > window || !seen.Add(c.Id)) continue;
                group.Add(c);
                sum = checked(sum + c.Amount);
            }
            if (group.Count < 2 || !Within(sum, line.Amount, tolerance)) return null;
            foreach (var c in group) c.Matched = true;
            return group.Select(c => c.Id).Order(StringComparer.Ordinal).ToArray();
        };
    }

    static int LowerBound(long[] sorted, long value)
    {
        int lo = 0, hi = sorted.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (sorted[mid] < value) lo = mid + 1; else hi = mid;
        }
        return lo;
    }

    static int LowerBound(string[] sorted, string value)
    {
        int lo = 0, hi = sorted.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (string.CompareOrdinal(sorted[mid], value) < 0) lo = mid + 1; else hi = mid;
        }
        return lo;
    }
}
