using System.Numerics;
using CsCheck;
using Neraca.SplitBill;

namespace Neraca.Tests.Splits;

/// <summary>The split arithmetic: the vectors and properties over random amounts, members, modes and weights.</summary>
public sealed class SplittingTests
{
    static string[] Members(int n) => Enumerable.Range(1, n).Select(i => $"m{i:00}").ToArray();

    static long[] Allocate(long total, long[] weights, string key) =>
        Splitting.Allocate(total, weights.Select(w => new BigInteger(w)).ToArray(), Members(weights.Length), key);

    [Fact]
    public void One_hundred_split_equally_by_three_is_34_33_33_in_some_order()
    {
        var shares = Allocate(100, [1, 1, 1], "exp_1");
        Assert.Equal([33, 33, 34], shares.Order());
    }

    [Fact]
    public void One_thousand_by_shares_1_2_3_is_167_333_500()
    {
        Assert.Equal([167, 333, 500], Allocate(1000, [1, 2, 3], "exp_any"));
    }

    [Fact]
    public void The_extra_cent_of_a_tie_rotates_with_the_expense_id()
    {
        var winners = Enumerable.Range(0, 60).Select(i => Array.IndexOf(Allocate(100, [1, 1, 1], $"exp_{i}"), 34)).ToHashSet();
        Assert.Equal(3, winners.Count); // every member pays the extra cent for some expense
        Assert.Equal(Allocate(100, [1, 1, 1], "exp_7"), Allocate(100, [1, 1, 1], "exp_7"));
    }

    [Fact]
    public void Conversion_rounds_half_to_even_in_the_target_minor_units()
    {
        Assert.Equal(0, Splitting.Convert(1, 0.5m, 2, 2));        // 0.5 -> 0
        Assert.Equal(2, Splitting.Convert(3, 0.5m, 2, 2));        // 1.5 -> 2
        Assert.Equal(2, Splitting.Convert(5, 0.5m, 2, 2));        // 2.5 -> 2
        Assert.Equal(1_550_000, Splitting.Convert(10_000, 155m, 2, 2));   // 100.00 USD at 155 -> 15,500.00
        Assert.Equal(670, Splitting.Convert(1000, 0.0067m, 0, 2));        // 1,000 JPY at 0.0067 USD -> 6.70 USD
        Assert.Equal(1234, Splitting.Convert(12345, 0.01m, 2, 3));        // 123.45 at 0.01 -> 1.2345, half to even at 3 decimals: 1.234
        Assert.Null(Splitting.Convert(long.MaxValue, 1000m, 2, 2));
    }

    [Theory]
    [InlineData("15400")]
    [InlineData("0.0000649")]
    [InlineData("1.5")]
    public void Plain_decimal_rates_are_accepted(string text) => Assert.True(Currencies.TryParseRate(text, out _));

    [Theory]
    [InlineData("1e5")]
    [InlineData("-1")]
    [InlineData("0")]
    [InlineData("1,5")]
    [InlineData(" 1")]
    [InlineData("NaN")]
    [InlineData("1.")]
    [InlineData("")]
    public void Rates_that_are_not_plain_positive_decimals_are_refused(string text) => Assert.False(Currencies.TryParseRate(text, out _));

    [Fact]
    public void Allocation_sums_exactly_each_share_within_one_unit_and_is_deterministic()
    {
        Gen.Select(Gen.Long[0, SplitModes.AmountMax], Gen.Long[0, 1_000_000].Array[1, 50], Gen.String[Gen.Char.AlphaNumeric, 1, 20])
            .Where((_, w, _) => w.Any(x => x > 0))
            .Sample((total, weights, key) =>
            {
                var shares = Allocate(total, weights, key);
                Assert.Equal(total, shares.Sum());
                BigInteger denominator = weights.Sum();
                for (var i = 0; i < shares.Length; i++)
                {
                    // |share - total*w/den| < 1  <=>  |share*den - total*w| < den
                    var gap = BigInteger.Abs(shares[i] * denominator - total * (BigInteger)weights[i]);
                    Assert.True(gap < denominator, $"share {i} = {shares[i]} is not within one unit of {total}*{weights[i]}/{denominator}");
                    if (weights[i] == 0) Assert.Equal(0, shares[i]);
                }
                Assert.Equal(shares, Allocate(total, weights, key));
            }, iter: 2000);
    }

    [Fact]
    public void Allocation_does_not_depend_on_the_order_members_are_listed_in()
    {
        Gen.Select(Gen.Long[1, 1_000_000_000], Gen.Long[1, 1000].Array[2, 12], Gen.Int[0, 1000])
            .Sample((total, weights, seed) =>
            {
                var members = Members(weights.Length);
                var forward = Splitting.Allocate(total, weights.Select(w => new BigInteger(w)).ToArray(), members, "exp_order");
                var order = Enumerable.Range(0, weights.Length).OrderBy(i => (i * 7919 + seed) % 101).ToArray();
                var shuffled = Splitting.Allocate(total, order.Select(i => new BigInteger(weights[i])).ToArray(), order.Select(i => members[i]).ToArray(), "exp_order");
                for (var k = 0; k < order.Length; k++) Assert.Equal(forward[order[k]], shuffled[k]);
            }, iter: 500);
    }

    /// <summary>A random expense in any mode, with what each member's exact share is (numerator over a denominator).</summary>
    static readonly Gen<(ExpenseInput Input, string[] Members, Func<string, (BigInteger Num, BigInteger Den)> Exact)> AnyExpense =
        Gen.Int[2, 12].SelectMany(n => Gen.Long[1, 100_000_000].SelectMany(amount => Gen.Int[0, 4].SelectMany(mode =>
            Gen.Long[1, 50].Array[n].SelectMany(weights => Gen.Long[0, 10_000].Array[n].Select(cuts =>
            {
                var members = Members(n);
                var payers = new[] { new PayerInput(members[0], amount) };
                switch (mode)
                {
                    case 0:
                        return (new ExpenseInput("exp_p", "equal", amount, null, null, null, payers, new SplitInput("equal")), members,
                            (Func<string, (BigInteger, BigInteger)>)(_ => (amount, n)));
                    case 1:
                    {
                        // Exact shares: a random partition of the amount.
                        var points = cuts.Select(c => amount * c / 10_000).Take(n - 1).Order().ToList();
                        var parts = points.Append(amount).Zip(points.Prepend(0L), (b, a) => b - a).ToArray();
                        var shares = members.Select((m, i) => new ShareInput(m, parts[i])).ToArray();
                        return (new ExpenseInput("exp_p", "exact", amount, null, null, null, payers, new SplitInput("exact", Shares: shares)), members,
                            m => (parts[Array.IndexOf(members, m)], 1));
                    }
                    case 2:
                    {
                        var bps = Allocate(10_000, weights, "bps");
                        var shares = members.Select((m, i) => new ShareInput(m, Bps: bps[i])).ToArray();
                        return (new ExpenseInput("exp_p", "percent", amount, null, null, null, payers, new SplitInput("percent", Shares: shares)), members,
                            m => (amount * bps[Array.IndexOf(members, m)], 10_000));
                    }
                    case 3:
                    {
                        var shares = members.Select((m, i) => new ShareInput(m, Weight: weights[i])).ToArray();
                        return (new ExpenseInput("exp_p", "shares", amount, null, null, null, payers, new SplitInput("shares", Shares: shares)), members,
                            m => (amount * weights[Array.IndexOf(members, m)], weights.Sum()));
                    }
                    default:
                    {
                        // Two items: the first equally among all, the second by weights; tax and tip make up the rest.
                        var first = Math.Max(1, amount / 2);
                        var second = Math.Max(1, amount / 3);
                        var total = first + second + cuts[0] + cuts[1];
                        var items = new[]
                        {
                            new ItemInput("one", first, new SplitInput("equal")),
                            new ItemInput("two", second, new SplitInput("shares", Shares: members.Select((m, i) => new ShareInput(m, Weight: weights[i])).ToArray())),
                        };
                        var w = weights.Sum();
                        return (new ExpenseInput("exp_p", "itemized", total, null, null, null, [new PayerInput(members[0], total)],
                                new SplitInput("itemized", Items: items, Tax: cuts[0], Tip: cuts[1])), members,
                            m => ((first * w + second * n * weights[Array.IndexOf(members, m)]) * total, (BigInteger)n * w * (first + second)));
                    }
                }
            })))));

    [Fact]
    public void Every_mode_gives_shares_that_sum_exactly_each_within_one_unit_deterministically()
    {
        AnyExpense.Sample(x =>
        {
            var all = x.Members.ToHashSet();
            var r = SplitModes.Compute(x.Input, "exp_p", "IDR", x.Members, all, null, new DateOnly(2026, 12, 1));
            Assert.True(r.Error is null, r.Error?.Detail + " " + string.Join(";", r.Error?.Errors?.Select(e => e.Key + ":" + string.Join(",", e.Value)) ?? []));
            var rows = r.Value!.Rows;
            Assert.Equal(x.Input.Amount, rows.Values.Sum(v => v.Owed));
            Assert.Equal(x.Input.Amount, rows.Values.Sum(v => v.Paid));
            foreach (var (member, (_, owed)) in rows)
            {
                var (num, den) = x.Exact(member);
                Assert.True(BigInteger.Abs(owed * den - num) < den, $"{x.Input.Split!.Mode}: {member} owes {owed}, exact {num}/{den}");
            }
            var again = SplitModes.Compute(x.Input, "exp_p", "IDR", x.Members, all, null, new DateOnly(2026, 12, 1));
            Assert.Equal(rows, again.Value!.Rows);
        }, iter: 1000);
    }

    [Fact]
    public void Foreign_currency_expenses_convert_once_and_still_sum_exactly()
    {
        Gen.Select(Gen.Long[3, 10_000_000], Gen.Int[2, 8], Gen.Int[1, 999_999]).Sample((amount, n, rateMillis) =>
        {
            var members = Members(n);
            var rate = (rateMillis / 1000m).ToString(System.Globalization.CultureInfo.InvariantCulture);
            var input = new ExpenseInput("exp_fx", "dinner", amount, "USD", rate, null,
                [new PayerInput(members[0], amount - amount / 3), new PayerInput(members[1], amount / 3)], new SplitInput("equal"));
            var r = SplitModes.Compute(input, "exp_fx", "JPY", members, members.ToHashSet(), null, new DateOnly(2026, 12, 1));
            var expected = Splitting.Convert(amount, rateMillis / 1000m, 2, 0)!.Value;
            if (expected < 1) { Assert.NotNull(r.Error); return; }
            Assert.Null(r.Error);
            Assert.Equal(expected, r.Value!.GroupAmount);
            Assert.Equal(expected, r.Value.Rows.Values.Sum(v => v.Owed));
            Assert.Equal(expected, r.Value.Rows.Values.Sum(v => v.Paid));
        }, iter: 500);
    }

    [Fact]
    public void Exact_shares_that_miss_the_amount_are_a_split_mismatch_saying_by_how_much_and_which_way()
    {
        var members = Members(2);
        var input = new ExpenseInput("exp_x", "x", 10_000, null, null, null, [new PayerInput("m01", 10_000)],
            new SplitInput("exact", Shares: [new ShareInput("m01", 5_000), new ShareInput("m02", 4_900)]));
        var r = SplitModes.Compute(input, "exp_x", "IDR", members, members.ToHashSet(), null, new DateOnly(2026, 12, 1));
        Assert.Equal("split_mismatch", r.Error!.Code);
        Assert.Equal(422, r.Error.Status);
        Assert.Contains("100 short of", r.Error.Detail);
        Assert.Equal(-100L, r.Error.Extra!["difference"]);

        var over = input with { Split = new SplitInput("exact", Shares: [new ShareInput("m01", 5_000), new ShareInput("m02", 5_001)]) };
        Assert.Contains("1 over", SplitModes.Compute(over, "exp_x", "IDR", members, members.ToHashSet(), null, new DateOnly(2026, 12, 1)).Error!.Detail);
    }

    [Fact]
    public void Simplified_settle_up_uses_at_most_n_minus_one_transfers_and_zeroes_every_balance()
    {
        Gen.Long[-1_000_000_000, 1_000_000_000].Array[2, 50].Sample(values =>
        {
            values[^1] = -values[..^1].Sum();
            var nets = Members(values.Length).Select((m, i) => (m, values[i])).ToDictionary(x => x.m, x => x.Item2);
            var transfers = Splitting.Simplify(nets);
            Assert.True(transfers.Count <= values.Length - 1, $"{transfers.Count} transfers for {values.Length} members");
            var after = new Dictionary<string, long>(nets);
            foreach (var (from, to, amount) in transfers)
            {
                Assert.True(amount > 0);
                after[from] += amount;
                after[to] -= amount;
            }
            Assert.All(after.Values, v => Assert.Equal(0, v));
        }, iter: 2000);
    }

    [Fact]
    public void A_chain_of_three_becomes_one_transfer()
    {
        // A owes B 10, B owes C 10: B is even, A pays C.
        var transfers = Splitting.Simplify(new Dictionary<string, long> { ["a"] = -1000, ["b"] = 0, ["c"] = 1000 });
        Assert.Equal([("a", "c", 1000L)], transfers);
    }

    [Fact]
    public void Cancelling_cycles_keeps_every_balance_leaves_no_cycle_and_nothing_when_all_are_even()
    {
        Gen.Select(Gen.Int[0, 7], Gen.Int[0, 7], Gen.Long[1, 1000]).Array[0, 30].Sample(raw =>
        {
            var debts = raw.Where(d => d.Item1 != d.Item2).Select(d => ($"m{d.Item1}", $"m{d.Item2}", d.Item3)).ToList();
            static Dictionary<string, long> Balances(IEnumerable<(string From, string To, long Amount)> edges)
            {
                var b = new Dictionary<string, long>();
                foreach (var (from, to, amount) in edges)
                {
                    b[from] = b.GetValueOrDefault(from) - amount;
                    b[to] = b.GetValueOrDefault(to) + amount;
                }
                return b.Where(x => x.Value != 0).ToDictionary();
            }
            var result = Splitting.CancelCycles(debts);
            Assert.Equal(Balances(debts).OrderBy(x => x.Key), Balances(result).OrderBy(x => x.Key));
            // Acyclic: repeatedly removing members with no debt owed to them empties the graph.
            var left = result.ToList();
            while (left.Count > 0)
            {
                var sources = left.Select(e => e.From).Where(m => left.All(e => e.To != m)).ToHashSet();
                Assert.NotEmpty(sources);
                left.RemoveAll(e => sources.Contains(e.From));
            }
            if (Balances(debts).Count == 0) Assert.Empty(result);
        }, iter: 1000);
    }

    [Fact]
    public void Pairwise_debts_within_an_expense_zero_its_balances()
    {
        Gen.Long[-1_000_000, 1_000_000].Array[2, 20].Sample(values =>
        {
            values[^1] = -values[..^1].Sum();
            var nets = Members(values.Length).Select((m, i) => (m, values[i])).ToDictionary(x => x.m, x => x.Item2);
            var after = new Dictionary<string, long>(nets);
            foreach (var (from, to, amount) in Splitting.PairwiseWithin(nets))
            {
                after[from] += amount;
                after[to] -= amount;
            }
            Assert.All(after.Values, v => Assert.Equal(0, v));
        });
    }

    [Fact]
    public void Splitwise_rows_become_paid_and_owed_with_the_same_nets()
    {
        Gen.Select(Gen.Long[-100_000, 100_000].Array[2, 10], Gen.Long[0, 100_000]).Sample((values, extra) =>
        {
            values[^1] = -values[..^1].Sum();
            var nets = Members(values.Length).Select((m, i) => (m, values[i])).ToDictionary(x => x.m, x => x.Item2);
            var cost = values.Where(v => v > 0).Sum() + extra + 1;
            var (paid, owed) = SplitBills.ImportedSplit(nets, cost)!.Value;
            Assert.Equal(cost, paid.Values.Sum());
            Assert.Equal(cost, owed.Values.Sum());
            foreach (var (m, net) in nets) Assert.Equal(net, paid.GetValueOrDefault(m) - owed.GetValueOrDefault(m));
        });
    }
}
