using System.Text.Json;
using System.Text.Json.Nodes;
using Neraca.Hosting;
using Neraca.Storage;

namespace Neraca.Ledger;

/// <summary>Maps stored rows to the API's JSON shapes; events carry exactly the same JSON as the API.</summary>
internal static class LedgerJson
{
    public static readonly JsonSerializerOptions Options = CreateOptions();

    static JsonSerializerOptions CreateOptions()
    {
        var o = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        ServiceDefaults.ConfigureJson(o);
        return o;
    }

    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, Options);

    /// <summary>Metadata is stored as compact JSON text; equal objects store equal text (key order preserved as sent).</summary>
    public static string? MetadataText(JsonObject? metadata) => metadata?.ToJsonString();

    static JsonNode? Metadata(string? text) => text is null ? null : JsonNode.Parse(text);

    public static LedgerResponse ToResponse(LedgerRecord l) =>
        new(l.Id, l.Code, l.Asset, l.Scale, l.Name, Metadata(l.Metadata), DbTime.FromMicros(l.CreatedAtUs));

    public static AccountResponse ToResponse(AccountState a, string ledgerCode) => new(
        a.Id, ledgerCode, a.NormalBalance == NormalBalance.Credit ? "credit" : "debit", a.Code, a.Name, FlagNames(a.Flags), a.OverdraftLimit,
        Metadata(a.Metadata),
        new BalanceResponse(a.DebitsPosted, a.CreditsPosted, a.DebitsPending, a.CreditsPending, PostingEngine.PostedBalance(a), PostingEngine.AvailableBalance(a)),
        DbTime.FromMicros(a.CreatedAtUs), a.Owner);

    public static TransferResponse ToResponse(TransferRecord t, string ledgerCode) => new(
        t.Id, ledgerCode, t.DebitAccountId, t.CreditAccountId, t.Amount, StatusName(t.Status), t.PostedAmount, t.Code, t.Description,
        Metadata(t.Metadata), t.Pending, t.TimeoutAtUs is { } timeout ? DbTime.FromMicros(timeout) : null, t.Reverses,
        DbTime.FromMicros(t.CreatedAtUs), DbTime.FromMicros(t.EffectiveAtUs));

    public static string StatusName(TransferStatus s) => s switch
    {
        TransferStatus.Posted => "posted",
        TransferStatus.Pending => "pending",
        TransferStatus.Voided => "voided",
        _ => "expired",
    };

    public const string DebitsMustNotExceedCredits = "debits_must_not_exceed_credits";
    public const string CreditsMustNotExceedDebits = "credits_must_not_exceed_debits";

    public static string[] FlagNames(AccountFlags flags)
    {
        var names = new List<string>(2);
        if ((flags & AccountFlags.DebitsMustNotExceedCredits) != 0) names.Add(DebitsMustNotExceedCredits);
        if ((flags & AccountFlags.CreditsMustNotExceedDebits) != 0) names.Add(CreditsMustNotExceedDebits);
        return [.. names];
    }
}
