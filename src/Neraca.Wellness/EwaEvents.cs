using System.Text.Json;
using Neraca.Events;

namespace Neraca.Wellness;

/// <summary>The event types earned wage access emits (names are persisted and published: never renamed; the golden
/// test in tests/Neraca.Tests/Events freezes them and their JSON).</summary>
public static class EwaEventTypes
{
    public static readonly EventType WithdrawalRequested = new("ewa.withdrawal.requested");
    public static readonly EventType WithdrawalPaid = new("ewa.withdrawal.paid");
    public static readonly EventType WithdrawalFailed = new("ewa.withdrawal.failed");
    public static readonly EventType CycleClosed = new("ewa.cycle.closed");
    public static readonly EventType AttendanceOverdue = new("ewa.attendance.overdue");
}

/// <summary>Payloads of the events (snake_case, integer minor units).</summary>
public static class EwaEventPayloads
{
    static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public sealed record Withdrawal(string WithdrawalId, string EmployerId, string EmployeeId, string Cycle, long Amount, long Fee, string FeePayer,
        string Status, string? FailureCode);

    public sealed record CycleClosed(string EmployerId, string Cycle, string Start, int Employees, long Advances, long Fees, long Due, long Recovered, long Carried);

    public sealed record Overdue(string EmployerId, string Date, string? LastUploadAt, int OverdueDays);

    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, Json);

    public static NewEvent Of(EventType type, string subject, object payload) => new(type, subject, JsonSerializer.Serialize(payload, payload.GetType(), Json));
}
