using Microsoft.AspNetCore.Http.HttpResults;

namespace Neraca.Hosting;

/// <summary>RFC 9457 problem responses with a stable machine <c>code</c>. Every error Neraca returns goes through here.</summary>
public static class Problems
{
    public static string TypeFor(string code) => "urn:neraca:problem:" + code;

    public static ProblemHttpResult Of(int status, string code, string title, string? detail = null, IDictionary<string, object?>? extra = null)
    {
        var extensions = new Dictionary<string, object?>(extra ?? new Dictionary<string, object?>()) { ["code"] = code };
        return TypedResults.Problem(detail, statusCode: status, title: title, type: TypeFor(code), extensions: extensions);
    }

    /// <summary>400 <c>validation_failed</c> with a per-field <c>errors</c> map.</summary>
    public static ValidationProblem Validation(IDictionary<string, string[]> errors, string? detail = null) =>
        TypedResults.ValidationProblem(errors, detail ?? "One or more fields are invalid.", title: "Validation failed",
            type: TypeFor("validation_failed"), extensions: new Dictionary<string, object?> { ["code"] = "validation_failed" });

    public static ValidationProblem Validation(string field, string message) =>
        Validation(new Dictionary<string, string[]> { [field] = [message] });

    /// <summary>400 <c>invalid_cursor</c>: the list was given a cursor it did not return.</summary>
    public static ValidationProblem InvalidCursor(string parameter = "after") =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { [parameter] = ["Not a cursor this list returned; omit it to start at the beginning."] },
            $"'{parameter}' is not a cursor this list returned.", title: "Invalid cursor",
            type: TypeFor("invalid_cursor"), extensions: new Dictionary<string, object?> { ["code"] = "invalid_cursor" });

    public static ProblemHttpResult NotFound(string code, string detail) => Of(StatusCodes.Status404NotFound, code, "Not found", detail);

    /// <summary>The code for a status that has no more specific one (404 from routing, 405, 415...).</summary>
    public static string CodeForStatus(int status) => status switch
    {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        406 => "not_acceptable",
        409 => "conflict",
        411 => "length_required",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "unprocessable",
        429 => "rate_limited",
        503 => "unavailable",
        _ when status >= 500 => "internal_error",
        _ => "error",
    };
}

/// <summary>A bounded queue is full: the caller should back off and retry. HTTP answers 503 <c>overloaded</c> with
/// <c>Retry-After</c>; an in-process caller (a job) retries later.</summary>
public sealed class OverloadedException(string message) : Exception(message);
