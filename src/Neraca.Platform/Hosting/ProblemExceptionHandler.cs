using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;
using Neraca.Storage;

namespace Neraca.Hosting;

/// <summary>Turns exceptions into problem+json: bad bodies into 400/413 with a precise code, an unreachable database
/// into 503 <c>database_unavailable</c> with <c>Retry-After</c>, everything else into a logged 500 that reveals nothing
/// internal.</summary>
public sealed partial class ProblemExceptionHandler(IProblemDetailsService problems, ILogger<ProblemExceptionHandler> logger, TimeProvider clock) : IExceptionHandler
{
    // An outage fails every request at once: one error log per window (with the count since the last), not thousands.
    static readonly TimeSpan OutageLogWindow = TimeSpan.FromSeconds(10);
    long _outageLoggedAt = long.MinValue;
    long _outageUnlogged;

    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken ct)
    {
        if (context.RequestAborted.IsCancellationRequested && exception is OperationCanceledException) return true;

        var (status, code, title, detail, errors) = Classify(exception);
        if (status == 500) // 503 overloaded is back-pressure, not a bug: no error log, no alert
        {
            var traceId = System.Diagnostics.Activity.Current?.TraceId.ToString() ?? "";
            LogUnhandled(logger, exception, context.Request.Method, context.Request.Path.Value ?? "", traceId, context.TraceIdentifier);
        }
        if (code == DatabaseUnavailableException.Code) LogOutage(exception);

        context.Response.StatusCode = status;
        if (status == 503) context.Response.Headers.RetryAfter = code == DatabaseUnavailableException.Code ? "3" : "1";
        ProblemDetails problem = errors is null
            ? new ProblemDetails()
            : new HttpValidationProblemDetails(errors);
        problem.Status = status;
        problem.Title = title;
        problem.Detail = detail;
        problem.Type = Problems.TypeFor(code);
        problem.Extensions["code"] = code;
        return await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = context, ProblemDetails = problem, Exception = exception });
    }

    static (int Status, string Code, string Title, string? Detail, Dictionary<string, string[]>? Errors) Classify(Exception exception)
    {
        var json = exception as JsonException ?? exception.InnerException as JsonException;
        if (json is not null) return ClassifyJson(json);
        if (exception is BadHttpRequestException bad)
        {
            return bad.StatusCode switch
            {
                413 => (413, "payload_too_large", "Request body too large", bad.Message, null),
                415 => (415, "unsupported_media_type", "Unsupported media type", "Send the body as application/json.", null),
                400 => ClassifyBinding(bad.Message),
                _ => (bad.StatusCode, Problems.CodeForStatus(bad.StatusCode), "Bad request", bad.Message, null),
            };
        }
        if (exception is InvalidCursorException cursor)
            return (400, "invalid_cursor", "Invalid cursor", cursor.Message,
                new Dictionary<string, string[]> { [cursor.Parameter] = ["Not a cursor this list returned; omit it to start at the beginning."] });
        if (Database.IsUnavailable(exception))
            return (503, DatabaseUnavailableException.Code, "Database unavailable",
                "The database cannot be reached for the moment. Retry shortly with the same Idempotency-Key (or id): a retry never applies a request twice.", null);
        if (exception is OverloadedException overloaded)
            return (503, "overloaded", "Overloaded", overloaded.Message + " Retry after a short pause.", null);
        return (500, "internal_error", "Internal error", "The server failed to handle the request; it has been logged.", null);
    }

    static (int, string, string, string?, Dictionary<string, string[]>?) ClassifyJson(JsonException json)
    {
        // System.Text.Json wraps syntax errors in its internal JsonReaderException; a value of the wrong type or
        // an unknown field comes without it and carries the JSON path of the field.
        var syntax = json.InnerException?.GetType().Name == "JsonReaderException" || json.Path is null;
        if (syntax)
            return (400, "malformed_json", "Malformed JSON", "The body is not valid JSON" + (json.LineNumber is { } line ? $" (line {line + 1}, byte {json.BytePositionInLine})." : "."), null);
        var field = json.Path!.StartsWith("$.", StringComparison.Ordinal) ? json.Path[2..] : json.Path.TrimStart('$');
        if (json.Message.StartsWith("Duplicate propert", StringComparison.Ordinal))
        {
            // The path points at the object holding the duplicate; the message names the property itself.
            var name = QuotedName(json.Message);
            var duplicate = name is null || field == name || field.EndsWith("." + name, StringComparison.Ordinal)
                ? (field.Length == 0 ? "body" : field)
                : field.Length == 0 ? name : field + "." + name;
            return (400, "duplicate_field", "Duplicate field", $"The field '{duplicate}' appears more than once; send each field once.",
                new Dictionary<string, string[]> { [duplicate] = ["Appears more than once."] });
        }
        if (field.Length == 0) field = "body";
        return (400, "validation_failed", "Validation failed", "One or more fields are invalid.",
            new Dictionary<string, string[]> { [field] = [Clean(json.Message)] });
    }

    static string? QuotedName(string message)
    {
        var start = message.IndexOf('\'', StringComparison.Ordinal);
        var end = start < 0 ? -1 : message.IndexOf('\'', start + 1);
        return end > start + 1 ? message[(start + 1)..end] : null;
    }

    // Route binding's messages name .NET types ("Nullable<DateTimeOffset> from"); say what the parameter expects instead.
    static (int, string, string, string?, Dictionary<string, string[]>?) ClassifyBinding(string message)
    {
        var match = BindingMessage().Match(message);
        if (!match.Success)
            return (400, "bad_request", "Bad request", "The request could not be read.", null);
        var name = match.Groups["name"].Value;
        var expected = match.Groups["value"].Success ? "Must be " + Expected(match.Groups["type"].Value) + "." : "Required.";
        return (400, "validation_failed", "Validation failed", "One or more fields are invalid.", new Dictionary<string, string[]> { [name] = [expected] });
    }

    static string Expected(string type) =>
        type.Contains("DateTimeOffset", StringComparison.Ordinal) || type.Contains("DateTime", StringComparison.Ordinal)
            ? "an RFC 3339 date-time such as 2026-12-01T08:00:00Z"
        : type.Contains("DateOnly", StringComparison.Ordinal) ? "an RFC 3339 full-date such as 2026-12-01"
        : type.Contains("Int64", StringComparison.Ordinal) || type.Contains("long", StringComparison.Ordinal) ? "an integer"
        : type.Contains("Int32", StringComparison.Ordinal) || type.Contains("int", StringComparison.Ordinal) ? "an integer from -2147483648 to 2147483647"
        : type.Contains("Bool", StringComparison.Ordinal) || type.Contains("bool", StringComparison.Ordinal) ? "true or false"
        : type.Contains("Guid", StringComparison.Ordinal) ? "a UUID"
        : "a valid value";

    [System.Text.RegularExpressions.GeneratedRegex("""^(?:Failed to bind parameter "(?<type>.+) (?<name>[^ "]+)" from "(?<value>.*)"\.|Required parameter "(?<type>.+) (?<name>[^ "]+)" was not provided from .*)$""", System.Text.RegularExpressions.RegexOptions.Singleline)]
    private static partial System.Text.RegularExpressions.Regex BindingMessage();

    // The serializer's messages name .NET types; say what is wrong in JSON terms instead.
    static string Clean(string message) =>
        message.Contains("could not be mapped", StringComparison.Ordinal) ? "Unknown field (field names are case-sensitive snake_case)."
        : message.Contains("could not be converted", StringComparison.Ordinal) ? "Wrong type or out of range (amounts are integers from 1 to 9223372036854775807)."
        : message.Contains("required properties", StringComparison.Ordinal) ? "A required field is missing."
        : "Invalid value.";

    void LogOutage(Exception exception)
    {
        var now = clock.GetTimestamp();
        var last = Interlocked.Read(ref _outageLoggedAt);
        if (last != long.MinValue && clock.GetElapsedTime(last, now) < OutageLogWindow
            || Interlocked.CompareExchange(ref _outageLoggedAt, now, last) != last)
        {
            Interlocked.Increment(ref _outageUnlogged);
            return;
        }
        // Route-free, so the error alerts fold an outage that hits every endpoint into one message.
        LogDatabaseUnavailable(logger, new DatabaseUnavailableException(exception), Interlocked.Exchange(ref _outageUnlogged, 0));
    }

    [LoggerMessage(2, LogLevel.Error, "The database is unavailable: requests are answered 503 database_unavailable ({Unlogged} more since the last such message)")]
    static partial void LogDatabaseUnavailable(ILogger logger, Exception exception, long unlogged);

    [LoggerMessage(1, LogLevel.Error, "Unhandled exception on {Method} {Path} (trace {TraceId}, request {RequestId})")]
    static partial void LogUnhandled(ILogger logger, Exception exception, string method, string path, string traceId, string requestId);
}
