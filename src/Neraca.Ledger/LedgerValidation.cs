using System.Text;
using System.Text.Json.Nodes;
using Neraca.Storage;

namespace Neraca.Ledger;

/// <summary>Input rules of the ledger API, checked before any work. Errors are keyed by JSON field path.</summary>
internal sealed class LedgerValidation
{
    public const int DescriptionLengthMax = 500;
    public const int NameLengthMax = 200;
    /// <summary>An owner is an end-user token's subject: as long as a subject may be (<c>TokenService.SubjectLengthMax</c>).</summary>
    public const int OwnerLengthMax = 200;
    public const int MetadataBytesMax = 4096;
    public const long TimeoutSecondsMax = 10L * 365 * 24 * 3600;
    static readonly DateTimeOffset EffectiveMin = new(1970, 1, 2, 0, 0, 0, TimeSpan.Zero);
    static readonly DateTimeOffset EffectiveMax = new(9999, 1, 1, 0, 0, 0, TimeSpan.Zero);

    readonly Dictionary<string, string[]> _errors = new(StringComparer.Ordinal);

    public bool Ok => _errors.Count == 0;
    public IDictionary<string, string[]> Errors => _errors;

    public void Add(string field, string message) =>
        _errors[field] = _errors.TryGetValue(field, out var existing) ? [.. existing, message] : [message];

    public void Id(string field, string? value, bool required)
    {
        if (value is null)
        {
            if (required) Add(field, "Required.");
            return;
        }
        if (!Ids.IsValid(value)) Add(field, $"Must be 1-{Ids.LengthMax} characters of A-Z a-z 0-9 . _ : -");
    }

    public void Text(string field, string? value, int max)
    {
        if (value is not null && value.Length > max) Add(field, $"At most {max} characters.");
    }

    public void Owner(string field, string? value)
    {
        if (value is not null && (value.Length is 0 or > OwnerLengthMax || value.Any(char.IsControl)))
            Add(field, $"1-{OwnerLengthMax} characters without control characters: the subject (sub) of the end user's tokens.");
    }

    public void Metadata(string field, JsonObject? value)
    {
        if (value is not null && Encoding.UTF8.GetByteCount(value.ToJsonString()) > MetadataBytesMax)
            Add(field, $"At most {MetadataBytesMax} bytes of JSON.");
    }

    public void Amount(string field, long? value, bool required)
    {
        if (value is null)
        {
            if (required) Add(field, "Required.");
            return;
        }
        if (value < 1) Add(field, "Must be an integer from 1 to 9223372036854775807 (minor units).");
    }

    public void Transfer(string prefix, CreateTransferRequest? t, bool inBatch)
    {
        if (t is null)
        {
            Add(prefix.TrimEnd('.'), "Must be an object.");
            return;
        }
        // In-process callers must name every transfer (the idempotency anchor); the HTTP API fills missing ids first.
        Id(prefix + "id", t.Id, required: true);
        Id(prefix + "debit_account", t.DebitAccount, required: true);
        Id(prefix + "credit_account", t.CreditAccount, required: true);
        Amount(prefix + "amount", t.Amount, required: true);
        if (t.Code is < 0) Add(prefix + "code", "Must be 0 or more.");
        Text(prefix + "description", t.Description, DescriptionLengthMax);
        Metadata(prefix + "metadata", t.Metadata);
        if (t.TimeoutSeconds is not null)
        {
            if (t.Pending != true) Add(prefix + "timeout_seconds", "Only a pending transfer has a timeout.");
            else if (t.TimeoutSeconds is < 1 or > TimeoutSecondsMax) Add(prefix + "timeout_seconds", $"Must be from 1 to {TimeoutSecondsMax}.");
        }
        if (t.EffectiveAt is { } e && (e < EffectiveMin || e > EffectiveMax)) Add(prefix + "effective_at", "Out of range.");
        if (t.Linked is not null && !inBatch) Add(prefix + "linked", "Only items of POST /v1/transfers/batch can be linked.");
    }
}
