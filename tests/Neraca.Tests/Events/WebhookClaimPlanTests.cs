using CsCheck;
using Neraca.Events;
using Row = Neraca.Events.WebhookDispatcher.WindowRow;

namespace Neraca.Tests.Events;

/// <summary>How a claim round picks deliveries: per ordering key, what it sends is an unbroken prefix of the key's
/// pending deliveries, and each one waits for the one before it.</summary>
public sealed class WebhookClaimPlanTests
{
    static readonly string[] Keys = ["hot", "a", "b", "c"];

    sealed record Case(List<Row> Window, Dictionary<string, long> Blockers, int Max, HashSet<int> Lost);

    static readonly Gen<Case> Cases =
        Gen.Select(Gen.Int[1, 40], Gen.Int[1, 50], Gen.Int[0, int.MaxValue]).Select((n, max, seed) =>
        {
            var random = new Random(seed);
            var window = Enumerable.Range(1, n).Select(i =>
            {
                var key = Keys[random.Next(Keys.Length)];
                var key2 = random.Next(3) == 0 ? null : Keys[random.Next(Keys.Length)];
                return new Row { Id = $"d{i}", TenantId = "t", EndpointId = random.Next(4) == 0 ? "e2" : "e1", EventSeq = i * 10, Key = key, Key2 = key2 };
            }).ToList();
            // Some keys have an older pending delivery outside the window (in backoff, or leased elsewhere).
            var blockers = Keys.Where(_ => random.Next(4) == 0).ToDictionary(k => k, _ => random.Next(0, n + 1) * 10L + 5);
            var lost = Enumerable.Range(1, n).Where(_ => random.Next(8) == 0).ToHashSet();
            return new Case(window, blockers, max, lost);
        });

    static List<Row> Rows(Case c) =>
    [
        .. c.Window,
        .. c.Window.Select(r => r.EndpointId).Distinct().SelectMany(e => c.Blockers.Select(b =>
            new Row { TenantId = "t", EndpointId = e, Key = b.Key, Blocker = b.Value })),
    ];

    static IEnumerable<string> KeysOf(Row r) => r.Key2 is null ? [r.Key] : [r.Key, r.Key2];

    [Fact]
    public void What_a_round_sends_is_a_prefix_of_each_keys_pending_deliveries_in_order()
    {
        Cases.Sample(c =>
        {
            var planned = WebhookDispatcher.Plan(Rows(c), c.Max);
            Assert.True(planned.Count <= c.Max);
            var obtained = planned.Where(r => !c.Lost.Contains((int)(r.EventSeq / 10))).Select(r => r.Id!).ToHashSet();
            var (kept, dropped) = WebhookDispatcher.Keep(planned, obtained);
            Assert.All(dropped, id => Assert.True(obtained.Contains(id) && !kept.ContainsKey(id)));
            Assert.Equal(obtained.Count, kept.Count + dropped.Count);

            foreach (var d in c.Window.Where(r => kept.ContainsKey(r.Id!)))
            {
                var endpoint = d.EndpointId;
                foreach (var key in KeysOf(d))
                {
                    // Nothing older of this key is left behind: not outside the window, not in it.
                    if (c.Blockers.TryGetValue(key, out var blocker)) Assert.True(blocker > d.EventSeq, $"{d.Id} passed the blocker of {key}");
                    var older = c.Window.Where(r => r.EndpointId == endpoint && r.EventSeq < d.EventSeq && KeysOf(r).Contains(key)).ToList();
                    Assert.All(older, o => Assert.True(kept.ContainsKey(o.Id!), $"{d.Id} goes ahead of {o.Id} on {key}"));
                    // ... and the newest of them is what it waits for.
                    if (older.Count > 0) Assert.Contains(older[^1].Id!, kept[d.Id!]);
                }
            }
        });
    }

    [Fact]
    public void With_nothing_blocked_or_lost_a_round_takes_the_whole_window_up_to_its_limit()
    {
        Cases.Sample(c =>
        {
            var planned = WebhookDispatcher.Plan(c.Window, c.Max);
            Assert.Equal(Math.Min(c.Max, c.Window.Count), planned.Count);
            var (kept, dropped) = WebhookDispatcher.Keep(planned, planned.Select(r => r.Id!).ToHashSet());
            Assert.Equal(planned.Count, kept.Count);
            Assert.Empty(dropped);
        });
    }
}
