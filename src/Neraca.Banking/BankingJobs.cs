using System.Text.Json;
using Neraca.Banking.Accounts;
using Neraca.Jobs;
using Neraca.Ledger;

namespace Neraca.Banking;

/// <summary><c>banking.statement</c>: renders one requested statement (payload <c>{"statement": id}</c>).</summary>
/// <remarks>Statements enqueue this job, so the handler finds them when it runs (JobStore → handlers → Statements → JobStore).</remarks>
internal sealed class RenderStatementJob(IServiceProvider services) : IJobHandler
{
    public string Type => Statements.Statements.JobType;

    public JobTypeDefaults Defaults => new() { ConcurrencyMax = 2, AttemptsMax = 5 };

    public async Task ExecuteAsync(JobExecution job, CancellationToken ct)
    {
        string? id;
        try
        {
            id = JsonDocument.Parse(job.Payload).RootElement.GetProperty("statement").GetString();
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new PermanentJobFailureException("The payload names no statement.", e);
        }
        await services.GetRequiredService<Statements.Statements>().GenerateAsync(job.TenantId, id ?? throw new PermanentJobFailureException("The payload names no statement."), ct);
    }
}

/// <summary><c>banking.statements.monthly</c>: hourly per tenant (spread), issues last month's statements once the 1st
/// has begun in the tenant's time zone; a tenant's month is run once.</summary>
internal sealed class MonthlyStatementsJob(IServiceProvider services) : IJobHandler
{
    public const string TypeName = "banking.statements.monthly";

    public string Type => TypeName;

    public JobTypeDefaults Defaults => new() { ConcurrencyMax = 2, ChunkSize = 500 };

    public Task ExecuteAsync(JobExecution job, CancellationToken ct) => services.GetRequiredService<Statements.Statements>().RunMonthlyAsync(job, ct);
}

/// <summary><c>banking.expire_holds</c>: every minute, voids holds past their expiry and marks them <c>expired</c>. The
/// ledger's pending timeout (the same instant, rounded up to a second) usually expired the transfer already. When the
/// timeout passed but the ledger's sweep has not run yet, a void is refused, so the job expires the transfer itself;
/// either way the hold's status follows its transfer.</summary>
internal sealed class ExpireHoldsJob(BlocksAndHolds holds, ILedger ledger) : IJobHandler
{
    public const string TypeName = "banking.expire_holds";
    const int BatchMax = 500;

    public string Type => TypeName;

    public JobTypeDefaults Defaults => new() { ConcurrencyMax = 1 };

    public async Task ExecuteAsync(JobExecution job, CancellationToken ct)
    {
        foreach (var (tenantId, hold) in await holds.DueHoldsAsync(BatchMax, ct))
        {
            var voided = await ledger.VoidPendingAsync(tenantId, hold.TransferId, ct);
            if (voided.Error?.Code == LedgerCodes.PendingTransferExpired) await ledger.ExpirePendingAsync(tenantId, hold.TransferId, ct);
            await holds.SyncAsync(BankCaller.System(tenantId), hold, ct, expiring: true);
        }
    }
}
