using System.Text.Json;
using Microsoft.Extensions.Options;
using Neraca.Jobs;
using Neraca.Settlement.Counterparties;
using Neraca.Storage;

namespace Neraca.Settlement.Runs;

/// <summary>Close of business, every minute for every tenant: for each counterparty, enqueues one <c>settlement.settle</c>
/// job per business date whose cut-off has passed (or comes within <see cref="SettlementOptions.ScheduleAheadMinutes"/>),
/// due exactly at the cut-off, with the idempotent key <c>settle:{counterparty}:{date}</c>. The counterparty's
/// <c>closed_through</c> mark moves in the same transaction, so dates missed while the cluster was down are enqueued by
/// the next sweep (oldest first, at most <see cref="SettlementOptions.CatchUpDaysMax"/> per sweep).</summary>
internal sealed class CloseOfBusinessJob(CounterpartyDirectory counterparties, Database database, SqlDialect dialect, IServiceProvider services,
    IOptions<SettlementOptions> options, TimeProvider clock) : IJobHandler
{
    /// <summary>The job store depends on every handler, this one included: resolved at use.</summary>
    JobStore Jobs => services.GetRequiredService<JobStore>();

    public const string TypeName = "settlement.close_of_business";

    public string Type => TypeName;

    public JobTypeDefaults Defaults => new() { ConcurrencyMax = 2, AttemptsMax = 3 };

    public async Task ExecuteAsync(JobExecution job, CancellationToken ct)
    {
        var horizon = clock.GetUtcNow().AddMinutes(options.Value.ScheduleAheadMinutes);
        foreach (var c in await counterparties.AllAsync(job.TenantId, ct))
        {
            var calendar = c.Calendar;
            // A new counterparty starts with the business date it was created in.
            var last = c.ClosedThrough is { } through ? Dates.Parse(through)!.Value : calendar.DateOf(DbTime.FromMicros(c.CreatedAtUs)).AddDays(-1);
            var due = new List<DateOnly>();
            for (var d = NextOpen(calendar, last); calendar.CutoffOf(d) <= horizon && due.Count < options.Value.CatchUpDaysMax; d = NextOpen(calendar, d)) due.Add(d);
            if (due.Count == 0) continue;
            await using var connection = await database.OpenAsync(ct);
            await using var tx = await dialect.BeginWriteAsync(connection, ct);
            // Another sweep moved the mark first: it enqueued these dates.
            if (!await CounterpartyDirectory.AdvanceClosedThroughAsync(connection, tx, job.TenantId, c.Id, c.ClosedThrough, Dates.Format(due[^1]), ct)) continue;
            foreach (var d in due)
                await Jobs.EnqueueAsync(connection, tx, new JobRequest(job.TenantId, SettleJob.TypeName,
                    SettlementJson.Serialize(new SettleJobPayload(c.Id, Dates.Format(d))), Key: SettlementRuns.TransferId(c.Id, d), RunAt: calendar.CutoffOf(d)), ct);
            await tx.CommitAsync(ct);
        }
    }

    static DateOnly NextOpen(BusinessCalendar calendar, DateOnly after)
    {
        var d = after.AddDays(1);
        for (var i = 0; i < 7 && !calendar.IsOpen(d); i++) d = d.AddDays(1);
        return d;
    }
}

internal sealed record SettleJobPayload(string Counterparty, string BusinessDate);

/// <summary>Settles one counterparty's business date at its cut-off. A date settled before (by hand) is done; a run the
/// ledger refused is recorded as failed (event <c>settlement.run.failed</c>) and left to an operator.</summary>
internal sealed partial class SettleJob(SettlementRuns runs, ILogger<SettleJob> log) : IJobHandler
{
    public const string TypeName = "settlement.settle";

    public string Type => TypeName;

    public JobTypeDefaults Defaults => new() { ConcurrencyMax = 4 };

    public async Task ExecuteAsync(JobExecution job, CancellationToken ct)
    {
        SettleJobPayload? p;
        try { p = JsonSerializer.Deserialize<SettleJobPayload>(job.Payload, SettlementJson.Options); }
        catch (JsonException x) { throw new PermanentJobFailureException("bad payload", x); }
        if (p is null) throw new PermanentJobFailureException("bad payload");
        var r = await runs.CreateAsync(job.TenantId, new RunRequest(p.BusinessDate, [p.Counterparty]), "schedule", ct);
        if (r.Error is { } e && e.Code != SettlementCodes.AlreadySettled) LogSkipped(job.TenantId, p.Counterparty, p.BusinessDate, e.Code, e.Detail);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Close of business of counterparty {Counterparty} of tenant {TenantId} for {BusinessDate} did not run: {Code} {Detail}")]
    partial void LogSkipped(string tenantId, string counterparty, string businessDate, string code, string detail);
}

/// <summary>Completes a run left pending (its process died between creating and posting it).</summary>
internal sealed class ExecuteRunJob(SettlementRuns runs) : IJobHandler
{
    public string Type => SettlementRuns.ExecuteJobType;

    public JobTypeDefaults Defaults => new() { ConcurrencyMax = 4 };

    public async Task ExecuteAsync(JobExecution job, CancellationToken ct)
    {
        RunJobPayload? p;
        try { p = JsonSerializer.Deserialize<RunJobPayload>(job.Payload, SettlementJson.Options); }
        catch (JsonException e) { throw new PermanentJobFailureException("bad payload", e); }
        if (p is null) throw new PermanentJobFailureException("bad payload");
        await runs.ExecuteAsync(job.TenantId, p.Run, ct);
    }
}
