using System.Text.Json;
using Neraca.Hosting;

namespace Neraca.Settlement;

/// <summary>Why a settlement or reconciliation call failed: the HTTP status, a stable <see cref="SettlementCodes"/> code,
/// a human detail, extra problem members (<c>line</c>, <c>field</c>...) and, for <c>validation_failed</c>, the fields.</summary>
public sealed record SettlementError(int Status, string Code, string Detail, IReadOnlyDictionary<string, object?>? Extra = null,
    IReadOnlyDictionary<string, string[]>? Errors = null)
{
    public static SettlementError Invalid(IReadOnlyDictionary<string, string[]> errors) =>
        new(400, SettlementCodes.ValidationFailed, "One or more fields are invalid.", null, errors);

    public static SettlementError Invalid(string field, string message) =>
        Invalid(new Dictionary<string, string[]> { [field] = [message] });

    public static SettlementError NotFound(string code, string detail) => new(404, code, detail);

    public static SettlementError Unprocessable(string code, string detail, IReadOnlyDictionary<string, object?>? extra = null) => new(422, code, detail, extra);

    public static SettlementError Conflict(string code, string detail, IReadOnlyDictionary<string, object?>? extra = null) => new(409, code, detail, extra);
}

/// <summary>What an operation produced: a value (created, replayed or read) or an error, never both. Expected outcomes
/// are results, not exceptions.</summary>
public sealed record SettlementResult<T>(T? Value, SettlementError? Error, bool Created = false, bool Replayed = false)
{
    public bool Succeeded => Error is null;

    public static SettlementResult<T> Ok(T value) => new(value, null);
    public static SettlementResult<T> New(T value) => new(value, null, Created: true);
    public static SettlementResult<T> Again(T value) => new(value, null, Replayed: true);
    public static implicit operator SettlementResult<T>(SettlementError error) => new(default, error);
}

/// <summary>Field errors collected before any work (keyed by JSON field name).</summary>
internal sealed class FieldErrors
{
    readonly Dictionary<string, string[]> _errors = new(StringComparer.Ordinal);

    public bool Ok => _errors.Count == 0;

    public void Add(string field, string message) =>
        _errors[field] = _errors.TryGetValue(field, out var existing) ? [.. existing, message] : [message];

    public SettlementError ToError() => SettlementError.Invalid(_errors);
}

/// <summary>The JSON settings of the API (snake_case, strict), for what this product stores as JSON text.</summary>
internal static class SettlementJson
{
    public static readonly JsonSerializerOptions Options = Create();

    static JsonSerializerOptions Create()
    {
        var o = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        ServiceDefaults.ConfigureJson(o);
        return o;
    }

    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, Options);

    public static T? Deserialize<T>(string? text) => text is null ? default : JsonSerializer.Deserialize<T>(text, Options);
}

/// <summary>Page limits shared by every list of the product.</summary>
internal static class Paging
{
    public static int? Limit(int? limit) => limit switch
    {
        null => SettlementOptions.PageLimitDefault,
        >= 1 and <= SettlementOptions.PageLimitMax => limit,
        _ => null,
    };

    public static SettlementError LimitProblem() => SettlementError.Invalid("limit", $"Must be from 1 to {SettlementOptions.PageLimitMax}.");
}
