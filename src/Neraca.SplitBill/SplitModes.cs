using System.Globalization;
using System.Numerics;

namespace Neraca.SplitBill;

/// <summary>An expense worked out: the amount converted to the group currency, and for each member involved what they
/// paid and what they owe (group currency, sums both equal to <see cref="GroupAmount"/>).</summary>
public sealed record ComputedExpense(string Description, long Amount, string Currency, string? ExchangeRate, long GroupAmount, DateOnly Date,
    IReadOnlyList<MemberAmount> PaidBy, IReadOnlyDictionary<string, (long Paid, long Owed)> Rows);

/// <summary>Validates an expense and turns its split mode into weights (<see cref="Splitting.Allocate"/>). Pure: the
/// property tests call it directly.</summary>
public static class SplitModes
{
    public const long AmountMax = 1_000_000_000_000_000; // 10^15 minor units: sums of many stay far from 2^63
    public const int ItemsMax = 200;
    public const int DescriptionLengthMax = 200;
    public const long WeightMax = 1_000_000;

    /// <summary>Works out <paramref name="input"/> for a group. <paramref name="active"/> are the members new expenses
    /// may name; <paramref name="all"/> the members that exist (an inactive one is refused by name).</summary>
    public static SplitResult<ComputedExpense> Compute(ExpenseInput input, string expenseId, string groupCurrency, IReadOnlyList<string> active,
        IReadOnlySet<string> all, string? callerMember, DateOnly today)
    {
        var errors = new FieldErrors();
        var description = input.Description?.Trim();
        if (string.IsNullOrEmpty(description)) errors.Add("description", "Required.");
        else if (description.Length > DescriptionLengthMax) errors.Add("description", $"At most {DescriptionLengthMax} characters.");
        if (input.Amount is not { } amount) { errors.Add("amount", "Required: an integer in minor units."); amount = 0; }
        else if (amount is < 1 or > AmountMax) errors.Add("amount", $"Must be from 1 to {AmountMax} minor units.");
        var currency = input.Currency ?? groupCurrency;
        if (!Currencies.IsCode(currency)) errors.Add("currency", "Must be an ISO 4217 code of three upper-case letters.");
        decimal rate = 1;
        var foreign = currency != groupCurrency;
        if (foreign && input.ExchangeRate is null) errors.Add("exchange_rate", $"Required when the currency is not the group's ({groupCurrency}).");
        else if (!foreign && input.ExchangeRate is not null) errors.Add("exchange_rate", "Only for an expense in another currency than the group's.");
        else if (foreign && !Currencies.TryParseRate(input.ExchangeRate, out rate))
            errors.Add("exchange_rate", "A positive decimal string such as \"15400.5\" (digits, an optional point, no sign or exponent).");
        if (input.Split is null) errors.Add("split", "Required: {\"mode\": \"equal\"} splits among all active members.");
        if (errors.Any) return errors.ToError();

        long groupAmount = amount;
        if (foreign)
        {
            if (Splitting.Convert(amount, rate, Currencies.Scale(currency), Currencies.Scale(groupCurrency)) is not { } converted || converted > AmountMax)
                return SplitError.Validation("exchange_rate", "The converted amount is too large.");
            if (converted < 1) return SplitError.Validation("amount", "The converted amount rounds to zero in the group currency.");
            groupAmount = converted;
        }

        var known = new MemberCheck(active, all);
        var weights = Weights(input.Split!, amount, "split", known, errors, nested: false);
        var payers = Payers(input.PaidBy, amount, callerMember, known, errors);
        if (errors.Any) return errors.ToError();
        if (weights.Error is not null) return weights.Error;
        if (payers.Error is not null) return payers.Error;

        var owedMembers = weights.Value!.Keys.ToArray();
        var owed = Splitting.Allocate(groupAmount, owedMembers.Select(m => weights.Value[m]).ToArray(), owedMembers, expenseId);
        var payerMembers = payers.Value!.Select(p => p.Member).ToArray();
        var paid = foreign
            ? Splitting.Allocate(groupAmount, payers.Value!.Select(p => new BigInteger(p.Amount)).ToArray(), payerMembers, expenseId)
            : payers.Value!.Select(p => p.Amount).ToArray();

        var rows = new SortedDictionary<string, (long Paid, long Owed)>(StringComparer.Ordinal);
        for (var i = 0; i < owedMembers.Length; i++) rows[owedMembers[i]] = (0, owed[i]);
        for (var i = 0; i < payerMembers.Length; i++)
            rows[payerMembers[i]] = (checked((rows.TryGetValue(payerMembers[i], out var r) ? r.Paid : 0) + paid[i]), rows.TryGetValue(payerMembers[i], out r) ? r.Owed : 0);
        return SplitResult<ComputedExpense>.Ok(new ComputedExpense(description!, amount, currency, foreign ? input.ExchangeRate : null, groupAmount,
            input.Date ?? today, payers.Value!, rows));
    }

    sealed record MemberCheck(IReadOnlyList<string> Active, IReadOnlySet<string> All);

    /// <summary>Checks a member reference: known and active.</summary>
    static bool Check(string? member, string field, MemberCheck known, FieldErrors errors, ref SplitError? error)
    {
        if (string.IsNullOrEmpty(member)) { errors.Add(field, "Required: a member id."); return false; }
        if (known.Active.Contains(member)) return true;
        error ??= known.All.Contains(member)
            ? SplitError.Unprocessable("member_inactive", $"Member '{member}' is inactive or has left: new expenses cannot include them.", new Dictionary<string, object?> { ["field"] = field })
            : SplitError.Unprocessable("member_not_found", $"'{member}' is not a member of this group.", new Dictionary<string, object?> { ["field"] = field });
        return false;
    }

    static SplitResult<IReadOnlyList<MemberAmount>> Payers(PayerInput[]? paidBy, long amount, string? callerMember, MemberCheck known, FieldErrors errors)
    {
        if (paidBy is null)
        {
            // An end user adding an expense paid it themselves unless they say otherwise; a server must say who paid.
            if (callerMember is not null) return SplitResult<IReadOnlyList<MemberAmount>>.Ok([new MemberAmount(callerMember, amount)]);
            errors.Add("paid_by", "Required: [{\"member\": ..., \"amount\": ...}] in the expense's currency.");
            return SplitResult<IReadOnlyList<MemberAmount>>.Ok([]);
        }
        if (paidBy.Length is 0 or > 50) { errors.Add("paid_by", "From 1 to 50 payers."); return SplitResult<IReadOnlyList<MemberAmount>>.Ok([]); }
        SplitError? error = null;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var list = new List<MemberAmount>();
        long sum = 0;
        for (var i = 0; i < paidBy.Length; i++)
        {
            var p = paidBy[i];
            var field = $"paid_by[{i}]";
            if (p is null) { errors.Add(field, "Must be an object."); continue; }
            if (!Check(p.Member, field + ".member", known, errors, ref error)) continue;
            if (!seen.Add(p.Member!)) { errors.Add(field + ".member", "Listed twice."); continue; }
            if (p.Amount is not { } a || a < 1 || a > AmountMax) { errors.Add(field + ".amount", $"Required: from 1 to {AmountMax} minor units."); continue; }
            sum += a;
            list.Add(new MemberAmount(p.Member!, a));
        }
        if (errors.Any || error is not null) return error ?? SplitError.Validation("paid_by", "Invalid.");
        if (sum != amount) return Mismatch("paid_by_mismatch", "paid_by", "payments", sum, amount);
        return SplitResult<IReadOnlyList<MemberAmount>>.Ok(list);
    }

    /// <summary>422 naming how far off the sum is and in which direction.</summary>
    static SplitError Mismatch(string code, string field, string what, long actual, long expected)
    {
        var difference = actual - expected;
        var direction = difference < 0 ? "short of" : "over";
        return SplitError.Unprocessable(code,
            string.Create(CultureInfo.InvariantCulture, $"The {what} sum to {actual}: {Math.Abs(difference)} {direction} the expected {expected}."),
            new Dictionary<string, object?> { ["field"] = field, ["expected"] = expected, ["actual"] = actual, ["difference"] = difference });
    }

    /// <summary>Member → weight; members with weight zero are kept (they take part with nothing to pay).</summary>
    static SplitResult<SortedDictionary<string, BigInteger>> Weights(SplitInput split, long amount, string path, MemberCheck known, FieldErrors errors, bool nested)
    {
        SplitError? error = null;
        var weights = new SortedDictionary<string, BigInteger>(StringComparer.Ordinal);
        switch (split.Mode)
        {
            case "equal":
                Refuse(split.Shares is not null, path + ".shares", errors);
                Refuse(split.Items is not null || split.Tax is not null || split.Tip is not null, path + ".items", errors);
                var members = split.Members ?? known.Active.ToArray();
                if (members.Length == 0) errors.Add(path + ".members", "At least one member.");
                for (var i = 0; i < members.Length; i++)
                {
                    if (!Check(members[i], $"{path}.members[{i}]", known, errors, ref error)) continue;
                    if (!weights.TryAdd(members[i], 1)) errors.Add($"{path}.members[{i}]", "Listed twice.");
                }
                break;
            case "exact" or "percent" or "shares":
                Refuse(split.Members is not null, path + ".members", errors);
                Refuse(split.Items is not null || split.Tax is not null || split.Tip is not null, path + ".items", errors);
                if (split.Shares is not { Length: > 0 } shares) { errors.Add(path + ".shares", "Required: at least one share."); break; }
                if (shares.Length > 50) { errors.Add(path + ".shares", "At most 50 shares."); break; }
                BigInteger sum = 0;
                for (var i = 0; i < shares.Length; i++)
                {
                    var s = shares[i];
                    var field = $"{path}.shares[{i}]";
                    if (s is null) { errors.Add(field, "Must be an object."); continue; }
                    if (!Check(s.Member, field + ".member", known, errors, ref error)) continue;
                    var (value, name, min, max) = split.Mode switch
                    {
                        "exact" => (s.Amount, "amount", 0L, AmountMax),
                        "percent" => (s.Bps, "bps", 0L, 10_000L),
                        _ => (s.Weight, "weight", 1L, WeightMax),
                    };
                    foreach (var (other, set) in new[] { ("amount", s.Amount), ("bps", s.Bps), ("weight", s.Weight) })
                        if (other != name && set is not null) errors.Add($"{field}.{other}", $"Not used by mode '{split.Mode}' (it reads '{name}').");
                    if (value is not { } v || v < min || v > max) { errors.Add($"{field}.{name}", $"Required: an integer from {min} to {max}."); continue; }
                    if (!weights.TryAdd(s.Member!, v)) { errors.Add(field + ".member", "Listed twice."); continue; }
                    sum += v;
                }
                if (errors.Any || error is not null) break;
                if (split.Mode == "exact" && sum != amount) return Mismatch("split_mismatch", path + ".shares", "shares", (long)sum, amount);
                if (split.Mode == "percent" && sum != 10_000) return Mismatch("split_mismatch", path + ".shares", "basis points", (long)sum, 10_000);
                break;
            case "itemized" when !nested:
                Refuse(split.Members is not null, path + ".members", errors);
                Refuse(split.Shares is not null, path + ".shares", errors);
                return Itemized(split, amount, path, known, errors);
            case "itemized":
                errors.Add(path + ".mode", "An item cannot itself be itemized.");
                break;
            default:
                errors.Add(path + ".mode", "One of equal, exact, percent, shares, itemized.");
                break;
        }
        if (error is not null) return error;
        if (errors.Any) return errors.ToError();
        return SplitResult<SortedDictionary<string, BigInteger>>.Ok(weights);
    }

    static void Refuse(bool present, string field, FieldErrors errors)
    {
        if (present) errors.Add(field, "Not used by this mode.");
    }

    /// <summary>Each item's exact per-member value (item amount × weight / item's weight sum), summed over items; tax and
    /// tip follow in proportion, so a member's exact share of the whole amount is their item subtotal × amount / items
    /// total. One common denominator (the least common multiple of the items'), rounded once.</summary>
    static SplitResult<SortedDictionary<string, BigInteger>> Itemized(SplitInput split, long amount, string path, MemberCheck known, FieldErrors errors)
    {
        if (split.Items is not { Length: > 0 } items) { errors.Add(path + ".items", "Required: at least one item."); return errors.ToError(); }
        if (items.Length > ItemsMax) { errors.Add(path + ".items", $"At most {ItemsMax} items."); return errors.ToError(); }
        if (split.Tax is < 0 or > AmountMax) errors.Add(path + ".tax", $"From 0 to {AmountMax} minor units.");
        if (split.Tip is < 0 or > AmountMax) errors.Add(path + ".tip", $"From 0 to {AmountMax} minor units.");
        var perItem = new List<(long Amount, SortedDictionary<string, BigInteger> Weights, BigInteger Sum)>();
        long itemsTotal = 0;
        for (var k = 0; k < items.Length; k++)
        {
            var item = items[k];
            var field = $"{path}.items[{k}]";
            if (item is null) { errors.Add(field, "Must be an object."); continue; }
            if (string.IsNullOrWhiteSpace(item.Description) || item.Description.Length > DescriptionLengthMax)
                errors.Add(field + ".description", $"Required: 1-{DescriptionLengthMax} characters.");
            if (item.Amount is not { } a || a < 1 || a > AmountMax) { errors.Add(field + ".amount", $"Required: from 1 to {AmountMax} minor units."); continue; }
            if (item.Split is null) { errors.Add(field + ".split", "Required."); continue; }
            var w = Weights(item.Split, a, field + ".split", known, errors, nested: true);
            if (w.Error is not null) return w.Error;
            itemsTotal = checked(itemsTotal + a);
            var sum = w.Value!.Values.Aggregate(BigInteger.Zero, (x, y) => x + y);
            if (sum.IsZero) { errors.Add(field + ".split", "At least one member must take a part of the item."); continue; }
            perItem.Add((a, w.Value!, sum));
        }
        if (errors.Any) return errors.ToError();
        var total = checked(itemsTotal + (split.Tax ?? 0) + (split.Tip ?? 0));
        if (total != amount) return Mismatch("split_mismatch", path + ".items", "items, tax and tip", total, amount);

        BigInteger lcm = 1;
        foreach (var (_, _, sum) in perItem) lcm = lcm / BigInteger.GreatestCommonDivisor(lcm, sum) * sum;
        var weights = new SortedDictionary<string, BigInteger>(StringComparer.Ordinal);
        foreach (var (a, w, sum) in perItem)
            foreach (var (member, weight) in w)
                weights[member] = (weights.TryGetValue(member, out var x) ? x : 0) + a * weight * (lcm / sum);
        return SplitResult<SortedDictionary<string, BigInteger>>.Ok(weights);
    }
}
