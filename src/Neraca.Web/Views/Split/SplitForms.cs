using System.Globalization;
using Neraca.SplitBill;
using Neraca.Web.Components;

namespace Neraca.Web.Views.Split;

/// <summary>Amounts typed by people: <c>150000</c>, <c>150.000</c> or <c>150,000</c> (thousands), <c>1.500,50</c> or
/// <c>1,500.50</c> (a fraction). The last separator is the decimal point when at most the currency's scale of digits
/// follow it; every other separator must group exactly three digits. The result goes through the product's own
/// <see cref="Currencies.TryParseMajor"/>: integer minor units, no floating point.</summary>
public static class TypedAmounts
{
    public const int LengthMax = 40;

    public static bool TryParse(string? text, int scale, out long minor)
    {
        minor = 0;
        if (string.IsNullOrWhiteSpace(text) || text.Length > LengthMax) return false;
        var t = string.Concat(text.Where(c => !char.IsWhiteSpace(c)));
        if (t.StartsWith("Rp", StringComparison.OrdinalIgnoreCase)) t = t[2..];
        var last = t.LastIndexOfAny(['.', ',']);
        string whole = t, fraction = "";
        if (last >= 0 && t.Length - last - 1 is var after && after >= 1 && after <= scale && t.IndexOf(t[last]) == last)
            (whole, fraction) = (t[..last], t[(last + 1)..]);
        var groups = whole.Split('.', ',');
        if (groups.Length > 1 && (groups[0].Length is 0 or > 3 || groups.Skip(1).Any(g => g.Length != 3))) return false;
        var plain = string.Concat(groups) + (fraction.Length > 0 ? "." + fraction : "");
        return Currencies.TryParseMajor(plain, scale, out minor) && minor >= 0;
    }
}

/// <summary>The add-expense form (every split mode) read into the product's <see cref="ExpenseInput"/>. Field names:
/// <c>description</c>, <c>amount</c>, <c>paid_by</c>, <c>mode</c>; per member <c>equal.{m}</c> (checkbox),
/// <c>exact.{m}</c>, <c>percent.{m}</c> (up to two decimals), <c>shares.{m}</c>; per item row <c>item{i}.description</c>,
/// <c>item{i}.amount</c>, <c>item{i}.member.{m}</c> (checkboxes: the item is split equally among them); <c>tax</c>,
/// <c>tip</c>. The arithmetic of shares is the product's (<see cref="SplitModes.Compute"/>), never done here.</summary>
public static class ExpenseForm
{
    public const int ItemRows = 5;
    public static readonly string[] Modes = ["equal", "exact", "percent", "shares", "itemized"];

    public sealed record Result(ExpenseInput? Input, WebProblem? Problem);

    /// <summary>The id a new expense gets: chosen when the form is shown, so the preview rounds exactly as the saved
    /// expense will (ties rotate by expense id) and a form sent twice creates one expense.</summary>
    public static string NewExpenseId() => "exp_" + Neraca.Storage.Ids.NewUlid();

    public static bool IsExpenseId(string? id) => id is { Length: > 4 and <= 64 } && id.StartsWith("exp_", StringComparison.Ordinal) && Neraca.Storage.Ids.IsValid(id);

    public static Result Read(IFormCollection form, GroupResponse group)
    {
        var scale = Currencies.Scale(group.Currency);
        var members = group.Members.Where(m => m.Status == "active").ToList();
        string F(string name) => form[name].ToString().Trim();
        bool On(string name) => form[name].ToString() is "on" or "true";
        var errors = new List<string>();

        long? Amount(string name, string label, bool required)
        {
            var text = F(name);
            if (text.Length == 0)
            {
                if (required) errors.Add($"{label}: required.");
                return null;
            }
            if (TypedAmounts.TryParse(text, scale, out var minor)) return minor;
            errors.Add($"{label}: '{text}' is not an amount in {group.Currency} (at most {scale} decimals).");
            return null;
        }

        var description = F("description");
        var amount = Amount("amount", "amount", required: true);
        var mode = F("mode");
        if (!Modes.Contains(mode)) errors.Add("mode: one of " + string.Join(", ", Modes) + ".");
        var payer = F("paid_by");
        SplitInput? split = null;
        switch (mode)
        {
            case "equal":
                split = new SplitInput("equal", Members: members.Where(m => On("equal." + m.Id)).Select(m => m.Id).ToArray());
                break;
            case "exact":
                split = new SplitInput("exact", Shares: members.Select(m => (m, a: Amount("exact." + m.Id, m.Name, false)))
                    .Where(x => x.a is not null).Select(x => new ShareInput(x.m.Id, Amount: x.a)).ToArray());
                break;
            case "percent":
                // A percentage with up to two decimals is a whole number of basis points: 33,33 % = 3333 bps.
                split = new SplitInput("percent", Shares: members.Select(m => (m, text: F("percent." + m.Id))).Where(x => x.text.Length > 0)
                    .Select(x => TypedAmounts.TryParse(x.text, 2, out var bps) ? new ShareInput(x.m.Id, Bps: bps)
                        : Fail<ShareInput>(errors, $"{x.m.Name}: '{x.text}' is not a percentage (at most two decimals).")).ToArray());
                break;
            case "shares":
                split = new SplitInput("shares", Shares: members.Select(m => (m, text: F("shares." + m.Id))).Where(x => x.text.Length > 0)
                    .Select(x => long.TryParse(x.text, NumberStyles.None, CultureInfo.InvariantCulture, out var w) ? new ShareInput(x.m.Id, Weight: w)
                        : Fail<ShareInput>(errors, $"{x.m.Name}: '{x.text}' is not a whole number of shares.")).ToArray());
                break;
            case "itemized":
                var items = new List<ItemInput>();
                for (var i = 0; i < ItemRows; i++)
                {
                    var itemDescription = F($"item{i}.description");
                    var itemAmount = Amount($"item{i}.amount", $"item {i + 1}", required: itemDescription.Length > 0);
                    if (itemDescription.Length == 0 && itemAmount is null) continue;
                    items.Add(new ItemInput(itemDescription, itemAmount,
                        new SplitInput("equal", Members: members.Where(m => On($"item{i}.member.{m.Id}")).Select(m => m.Id).ToArray())));
                }
                split = new SplitInput("itemized", Items: items.ToArray(), Tax: Amount("tax", "tax", false), Tip: Amount("tip", "tip", false));
                break;
        }
        if (errors.Count > 0) return new Result(null, new WebProblem("validation_failed", string.Join(" ", errors)));
        return new Result(new ExpenseInput(Description: description, Amount: amount, PaidBy: payer.Length > 0 ? [new PayerInput(payer, amount)] : null,
            Split: split), null);
    }

    static T Fail<T>(List<string> errors, string message) where T : class
    {
        errors.Add(message);
        return null!;
    }

    /// <summary>A product error as the page shows it: the code, and the detail with each field's message.</summary>
    public static WebProblem Problem(SplitError e) => new(e.Code, e.Errors is { Count: > 0 } fields
        ? e.Detail + " " + string.Join(" ", fields.Select(f => $"{f.Key}: {string.Join(" ", f.Value)}"))
        : e.Detail);
}

/// <summary>The split-bill caller for a signed-in end user: the activity log names them <c>user:{subject}</c>, as the API does.</summary>
public static class SplitCallers
{
    public static SplitCaller Of(string tenantId, string subject) => new(tenantId, subject, "user:" + subject);
}
