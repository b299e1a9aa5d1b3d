using System.Data.Common;
using Dapper;
using Neraca.Storage;

namespace Neraca.Wellness.Withdrawals;

/// <summary>Where a withdrawal is (stored; part of the API): <c>pending</c> (recorded, money not moved yet) →
/// <c>processing</c> (advance and fee posted, payout asked for) → <c>paid</c>, or <c>failed</c> (nothing moved, or the
/// advance and fee reversed).</summary>
public static class WithdrawalStatuses
{
    public const string Pending = "pending";
    public const string Processing = "processing";
    public const string Paid = "paid";
    public const string Failed = "failed";

    public static bool IsValid(string? s) => s is Pending or Processing or Paid or Failed;
}

public sealed record DestinationRequest(string? Type = null, string? Code = null, string? AccountNumber = null, string? AccountName = null);

public sealed record WithdrawalRequest(long? Amount = null, DestinationRequest? Destination = null);

public sealed record WithdrawalView(string Id, string EmployerId, string EmployeeId, string Cycle, long Amount, long Fee, string FeePayer, string Status,
    string Destination, string? PayoutId, string? FailureCode, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

#pragma warning disable IDE1006 // Dapper maps snake_case columns onto these names.
internal sealed class WithdrawalRow
{
    public string tenant_id { get; set; } = "";
    public string id { get; set; } = "";
    public string employer_id { get; set; } = "";
    public string employee_id { get; set; } = "";
    public string cycle { get; set; } = "";
    public long amount { get; set; }
    public long fee { get; set; }
    public string fee_payer { get; set; } = "";
    public string status { get; set; } = "";
    public string destination_enc { get; set; } = "";
    public string destination_masked { get; set; } = "";
    public string? payout_id { get; set; }
    public string? failure_code { get; set; }
    public long created_at_us { get; set; }
    public long updated_at_us { get; set; }

    public WithdrawalView View() => new(id, employer_id, employee_id, cycle, amount, fee, fee_payer, status, destination_masked, payout_id, failure_code,
        DbTime.FromMicros(created_at_us), DbTime.FromMicros(updated_at_us));

    /// <summary>What the withdrawal counts against the employee's limits: the amount, plus the fee when the employee pays it.</summary>
    public long Counted => fee_payer == Employers.FeePayers.Employee ? checked(amount + fee) : amount;

    public const string Columns = """
        tenant_id, id, employer_id, employee_id, cycle, amount, fee, fee_payer, status, destination_enc, destination_masked, payout_id, failure_code,
        created_at_us, updated_at_us
        """;

    public static Task<WithdrawalRow?> GetAsync(DbConnection connection, DbTransaction? tx, string tenantId, string id, CancellationToken ct) =>
        connection.QuerySingleOrDefaultAsync<WithdrawalRow>(new CommandDefinition(
            $"SELECT {Columns} FROM ewa_withdrawals WHERE tenant_id = @tenantId AND id = @id", new { tenantId, id }, tx, cancellationToken: ct));
}
#pragma warning restore IDE1006
