using CsCheck;
using Neraca.Caching;

namespace Neraca.Tests.Caching;

public sealed class CompositeKeyTests
{
    [Fact]
    public void Parts_containing_the_separator_do_not_collide()
    {
        Assert.NotEqual(CompositeKey.Of("acct", "default", "eu:alice"), CompositeKey.Of("acct", "default:eu", "alice"));
        Assert.NotEqual(CompositeKey.Of("user", "a:1:b"), CompositeKey.Of("user", "a", "b"));
        Assert.NotEqual(CompositeKey.Of("hist", "t", "a", "50"), CompositeKey.Of("hist", "t", "a:50"));
        Assert.NotEqual(CompositeKey.Of("acct", ""), CompositeKey.Of("acct"));
    }

    [Fact]
    public void Family_with_a_separator_is_refused()
    {
        Assert.Throws<ArgumentException>(() => CompositeKey.Of("acct:x", "a"));
        Assert.Throws<ArgumentException>(() => CompositeKey.Of("acct@1", "a"));
    }

    [Fact]
    public void Distinct_part_lists_never_give_the_same_key()
    {
        // A small alphabet full of separators and digits makes near-collisions (shifted boundaries, forged lengths) likely.
        var part = Gen.String[Gen.Char[":1@0a"], 0, 6];
        var list = Gen.Select(Gen.OneOf("acct", "hist", "ses", "user"), part.Array[0, 4]);
        Gen.Select(list, list).Sample((a, b) =>
        {
            var sameInput = a.Item1 == b.Item1 && a.Item2.SequenceEqual(b.Item2);
            var sameKey = CompositeKey.Of(a.Item1, a.Item2) == CompositeKey.Of(b.Item1, b.Item2);
            return sameInput == sameKey;
        }, iter: 200_000);
    }

    [Fact]
    public void Suffix_after_a_key_cannot_make_it_equal_to_another()
    {
        // NeracaCache appends "@version" to a key; the key must stay distinct from every other key with its own suffix.
        var part = Gen.String[Gen.Char[":1@0a."], 0, 5];
        var entry = Gen.Select(part.Array[1, 3], part);
        Gen.Select(entry, entry).Sample((a, b) =>
        {
            var sameInput = a.Item1.SequenceEqual(b.Item1) && a.Item2 == b.Item2;
            var sameKey = CompositeKey.Of("acct", a.Item1) + "@" + a.Item2 == CompositeKey.Of("acct", b.Item1) + "@" + b.Item2;
            return sameInput == sameKey;
        }, iter: 100_000);
    }
}
