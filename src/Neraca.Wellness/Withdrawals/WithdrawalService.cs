using System.Text.Json;
using Dapper;
using Microsoft.Extensions.Options;
using Neraca.Events;
using Neraca.Jobs;
using Neraca.Ledger;
using Neraca.Payouts;
using Neraca.Security;
using Neraca.Storage;
using Neraca.Wellness.Employees;
using Neraca.Wellness.Employers;

namespace Neraca.Wellness.Withdrawals;

/// <summary>Why a withdrawal was refused: a stable code, the HTTP status, and extra fields (<c>limit</c>, <c>available</c>).</summary>
public sealed record WithdrawalRefusal(int Status, string Code, string Detail, IDictionary<string, object?>? Extra = null);

public sealed record WithdrawalOutcome(WithdrawalView? Withdrawal, bool Created, WithdrawalRefusal? Refusal);

/// <summary>Withdrawals: the limit check and reservation (one guarded UPDATE of the employee's cycle row in the
/// transaction that records the withdrawal, so concurrent withdrawals can never exceed what was available before them),
/// then a saga of idempotent steps driven by jobs: the linked ledger batch (advance, fee, float cover), the payout, and
/// its end (paid, or the legs reversed and the reservation released).</summary>
public sealed partial class WithdrawalService(Database database, SqlDialect dialect, ILedger ledger, IServiceProvider services, FieldEncryption encryption,
    EmployerStore employers, EmployeeStore employees, TimeProvider time, IOptions<WellnessOptions> options,
    ILogger<WithdrawalService> logger)
{
    public const string Table = "ewa_withdrawals";
    public const string ProcessJobType = "ewa.withdrawal.process";
    public const string PayoutDoneJobType = "ewa.withdrawal.payout_done";

    public static readonly EncryptedColumns Encrypted = new(Table, "id", ["destination_enc"]);

    /// <summary>The backstop when the request processes inline: the job runs only if the inline attempt did not finish.</summary>
    static readonly TimeSpan BackstopDelay = TimeSpan.FromSeconds(30);

    public static string PayoutIdOf(string withdrawalId) => "ewa:" + withdrawalId;

    // Resolved on use: the job store (and payouts, through it) depends on every job handler, and this service's handlers
    // depend on this service.
    JobStore Jobs => services.GetRequiredService<JobStore>();
    PayoutService Payouts => services.GetRequiredService<PayoutService>();

    public async Task<WithdrawalOutcome> RequestAsync(string tenantId, Employer employer, string employeeId, string id, WithdrawalRequest body,
        CancellationToken ct)
    {
        var p = employer.Policy;
        if (body.Amount is not (>= 1)) return Refuse(400, "validation_failed", "amount: required, minor units, 1 or more.");
        var amount = body.Amount.Value;
        var now = time.GetUtcNow();
        var ring = await encryption.GetAsync(ct);

        await using var connection = await database.OpenAsync(ct);
        if (await WithdrawalRow.GetAsync(connection, null, tenantId, id, ct) is { } existing)
            return new WithdrawalOutcome(existing.View(), false, null);
        var employee = await employees.GetAsync(connection, null, tenantId, employer.Id, employeeId, ct);
        if (employee is null) return Refuse(404, "employee_not_found", $"No employee '{employeeId}'.");
        var destination = Destination(employee, body.Destination, out var destinationProblem);
        if (destinationProblem is not null) return Refuse(400, "validation_failed", destinationProblem);

        var fee = p.FeeFlat;
        var employeeFee = p.FeePayer == FeePayers.Employee ? fee : 0;
        var employerFee = fee - employeeFee;
        long counted;
        try { counted = checked(amount + employeeFee); }
        catch (OverflowException) { return Refuse(400, "validation_failed", "amount: too large."); }

        await using var tx = await dialect.BeginWriteAsync(connection, ct);
        // The pay calendar under a share lock: a payday change (EmployersApi.Patch, which locks the row for update and
        // refuses while an open cycle has withdrawals) and this withdrawal serialize, so the cycle counted below is one
        // the employer's calendar still has.
        var calendar = await connection.QuerySingleOrDefaultAsync<(int PaydayDay, string Holidays)?>(new CommandDefinition(
            $"SELECT payday_day, holidays FROM ewa_employers WHERE tenant_id = @tenantId AND id = @id{dialect.Choose(() => " FOR SHARE", () => "")}",
            new { tenantId, id = employer.Id }, tx, cancellationToken: ct));
        if (calendar != (employer.PaydayDay, employer.HolidaysJson))
            return Refuse(409, "employer_changed", "The employer's pay calendar changed while this withdrawal was checked; retry.");
        var balance = await Balances.ComputeAsync(connection, tx, employer, employee, now, ct);
        var cycle = balance.Cycle;
        if (balance.BlockedReason is { } blocked) return Limit(blocked, balance, $"Withdrawals are blocked: {blocked}.");
        if (amount < p.WithdrawalMin) return Limit("withdrawal_min", balance, $"The smallest withdrawal is {p.WithdrawalMin}.");
        if (counted > p.WithdrawalMax) return Limit("withdrawal_max", balance, $"A withdrawal (with the fee the employee pays) is at most {p.WithdrawalMax}.");
        if (counted > balance.Available)
            return Limit(balance.Explanation.LimitedBy ?? "accessible", balance, $"amount + fee ({counted}) is more than available ({balance.Available}).");
        if (await PreviousCycleOpenAsync(connection, tx, employer, cycle, ct))
            return Refuse(409, "cycle_closing", "The previous cycle is being closed (its payday recovery decides this cycle's carry-over); retry in a few minutes.");

        // The serialization point: the employee's cycle row, updated only while the total stays within what was available.
        var ceiling = Math.Min(balance.Accessible, p.CycleCap);
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO ewa_employee_cycles (tenant_id, employer_id, employee_id, cycle) VALUES (@tenantId, @employerId, @employeeId, @cycle)
            ON CONFLICT DO NOTHING
            """, new { tenantId, employerId = employer.Id, employeeId, cycle = cycle.Id }, tx, cancellationToken: ct));
        var reserved = await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE ewa_employee_cycles SET withdrawn = withdrawn + @counted, advances = advances + @amount, employee_fees = employee_fees + @employeeFee,
                employer_fees = employer_fees + @employerFee, withdrawals = withdrawals + 1
            WHERE tenant_id = @tenantId AND employer_id = @employerId AND employee_id = @employeeId AND cycle = @cycle
              AND withdrawn + carry_in + @counted <= @ceiling AND withdrawals < @countMax
            """, new { counted, amount, employeeFee, employerFee, tenantId, employerId = employer.Id, employeeId, cycle = cycle.Id, ceiling,
                countMax = p.WithdrawalsPerCycleMax }, tx, cancellationToken: ct));
        if (reserved == 0)
        {
            // Another withdrawal committed since the balance was read: say which limit it reached.
            var row = await Balances.CycleRowAsync(connection, tx, tenantId, employer.Id, employeeId, cycle.Id, ct);
            var limit = row.Withdrawals >= p.WithdrawalsPerCycleMax ? BlockedReasons.CycleCountReached
                : balance.Accessible <= p.CycleCap ? "accessible" : "cycle_cap";
            var available = Math.Max(0, Math.Min(ceiling - row.Total, p.WithdrawalMax));
            return Refuse(422, "ewa_limit_exceeded", $"amount + fee ({counted}) is more than available ({available}).",
                new Dictionary<string, object?> { ["limit"] = limit, ["available"] = available });
        }
        var nowUs = DbTime.ToMicros(now);
        var wd = new WithdrawalRow
        {
            tenant_id = tenantId, id = id, employer_id = employer.Id, employee_id = employeeId, cycle = cycle.Id, amount = amount, fee = fee,
            fee_payer = p.FeePayer, status = WithdrawalStatuses.Pending,
            destination_enc = ring.Encrypt(JsonSerializer.Serialize(destination), Neraca.Security.KeyRing.Context(Table, "destination_enc", tenantId, id)),
            destination_masked = $"{destination.Type}:{destination.Code}:{Masking.Tail(destination.AccountNumber)}",
            created_at_us = nowUs, updated_at_us = nowUs,
        };
        try
        {
            await connection.ExecuteAsync(new CommandDefinition($"""
                INSERT INTO ewa_withdrawals ({WithdrawalRow.Columns})
                VALUES (@tenant_id, @id, @employer_id, @employee_id, @cycle, @amount, @fee, @fee_payer, @status, @destination_enc, @destination_masked,
                        @payout_id, @failure_code, @created_at_us, @updated_at_us)
                """, wd, tx, cancellationToken: ct));
        }
        catch (Exception e) when (Database.IsUniqueViolation(e))
        {
            // The same id raced in past the check above and committed first: undo this reservation, answer with that one.
            await tx.RollbackAsync(CancellationToken.None);
            await using var again = await database.OpenAsync(ct);
            return new WithdrawalOutcome((await WithdrawalRow.GetAsync(again, null, tenantId, id, ct))!.View(), false, null);
        }
        await EventLog.AppendAsync(connection, tx, tenantId, null, Event(EwaEventTypes.WithdrawalRequested, wd), nowUs, ct);
        var inline = options.Value.ProcessWithdrawalsInline;
        await Jobs.EnqueueAsync(connection, tx, new JobRequest(tenantId, ProcessJobType, Payload(id), Key: id,
            RunAt: inline ? now + BackstopDelay : null), ct);
        await tx.CommitAsync(ct);
        LogRequested(logger, tenantId, id, employer.Id, amount, fee);

        if (inline)
        {
            // The job is the guarantee; this only saves its delay. Its failure is the job's to retry.
            try { await ProcessAsync(tenantId, id, ct); }
            catch (Exception e) when (e is not OperationCanceledException) { LogInlineFailed(logger, tenantId, id, e); }
        }
        await using var read = await database.OpenAsync(ct);
        return new WithdrawalOutcome((await WithdrawalRow.GetAsync(read, null, tenantId, id, ct))!.View(), true, null);

        WithdrawalOutcome Limit(string limit, BalanceView b, string detail) => Refuse(422, "ewa_limit_exceeded", detail,
            new Dictionary<string, object?> { ["limit"] = limit, ["available"] = b.Available, ["blocked_reason"] = b.BlockedReason });
    }

    static WithdrawalOutcome Refuse(int status, string code, string detail, IDictionary<string, object?>? extra = null) =>
        new(null, false, new WithdrawalRefusal(status, code, detail, extra));

    static string Payload(string id) => JsonSerializer.Serialize(new Dictionary<string, string> { ["withdrawal_id"] = id });

    static NewEvent Event(EventType type, WithdrawalRow w) => EwaEventPayloads.Of(type, "ewa_withdrawal:" + w.id,
        new EwaEventPayloads.Withdrawal(w.id, w.employer_id, w.employee_id, w.cycle, w.amount, w.fee, w.fee_payer, w.status, w.failure_code));

    /// <summary>A cycle's withdrawals wait until the previous cycle with advances in it is closed: its recovery decides
    /// the carry-over this cycle starts with.</summary>
    static async Task<bool> PreviousCycleOpenAsync(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction tx, Employer employer,
        Cycles.PayCycle cycle, CancellationToken ct)
    {
        var previous = employer.Calendar.CycleOf(cycle.Start.AddDays(-1)).Id;
        var active = await connection.ExecuteScalarAsync<long>(new CommandDefinition("""
            SELECT count(*) FROM ewa_employee_cycles WHERE tenant_id = @tenant AND employer_id = @employer AND cycle = @previous
              AND (withdrawn > 0 OR carry_in > 0)
            """, new { tenant = employer.TenantId, employer = employer.Id, previous }, tx, cancellationToken: ct));
        if (active == 0) return false;
        var status = await connection.ExecuteScalarAsync<string?>(new CommandDefinition(
            "SELECT status FROM ewa_cycles WHERE tenant_id = @tenant AND employer_id = @employer AND cycle = @previous",
            new { tenant = employer.TenantId, employer = employer.Id, previous }, tx, cancellationToken: ct));
        return status != "closed";
    }

    static PayoutDestination Destination(Employee employee, DestinationRequest? d, out string? problem)
    {
        problem = null;
        if (d is null) return new PayoutDestination("bank", employee.Fields.BankCode, employee.Fields.BankAccount, employee.Fields.Name);
        if (d.Type is not ("bank" or "ewallet")) problem = "destination.type: bank or ewallet.";
        else if (d.Code is not { Length: >= 2 and <= 20 } code || !code.All(c => char.IsAsciiLetterOrDigit(c) || c == '_')) problem = "destination.code: 2-20 letters or digits.";
        else if (d.AccountNumber is not { Length: >= 5 and <= 34 } n || !n.All(char.IsAsciiDigit)) problem = "destination.account_number: 5-34 digits.";
        else if (d.AccountName is { Length: > 100 }) problem = "destination.account_name: at most 100 characters.";
        return problem is null ? new PayoutDestination(d.Type!, d.Code!.ToUpperInvariant(), d.AccountNumber!, d.AccountName ?? employee.Fields.Name)
            : new PayoutDestination("bank", "", "");
    }

    // ---------------- the saga ----------------

    /// <summary>One step of the saga, safe to run any number of times and concurrently: every ledger id and the payout id
    /// are derived from the withdrawal, and every state change is guarded by the state it leaves.</summary>
    public async Task ProcessAsync(string tenantId, string id, CancellationToken ct)
    {
        WithdrawalRow? w;
        await using (var connection = await database.OpenAsync(ct))
            w = await WithdrawalRow.GetAsync(connection, null, tenantId, id, ct);
        if (w is null) throw new PermanentJobFailureException($"withdrawal {id} not found");
        if (w.status is WithdrawalStatuses.Paid or WithdrawalStatuses.Failed) return;
        var employer = await employers.GetAsync(tenantId, w.employer_id, ct) ?? throw new PermanentJobFailureException($"employer {w.employer_id} not found");

        if (w.status == WithdrawalStatuses.Pending)
        {
            var posted = await ledger.CreateBatchAsync(tenantId, new BatchRequest(Legs(employer, w), Atomic: true), ct);
            if (!posted.Succeeded) throw new InvalidOperationException($"ledger refused the batch: {posted.Error!.Code}");
            var failed = posted.Value!.Results.FirstOrDefault(r => r.Status == "failed" && r.Code != LedgerCodes.LinkedEventFailed)
                ?? posted.Value.Results.FirstOrDefault(r => r.Status == "failed");
            if (failed is not null)
            {
                // Nothing moved (the batch is atomic): refuse the withdrawal and give the reservation back.
                var code = failed.Code == LedgerCodes.InsufficientFunds ? "float_insufficient" : failed.Code ?? "ledger_refused";
                await FailAsync(w, code, ct);
                return;
            }
            w = await TransitionAsync(w, WithdrawalStatuses.Pending, WithdrawalStatuses.Processing, null, null, ct) ?? w;
            if (w.status != WithdrawalStatuses.Processing) return;
        }

        var destination = JsonSerializer.Deserialize<PayoutDestination>((await encryption.GetAsync(ct)).Decrypt(w.destination_enc,
            Neraca.Security.KeyRing.Context(Table, "destination_enc", tenantId, w.id)))!;
        var result = await Payouts.RequestAsync(tenantId, new PayoutRequest(PayoutIdOf(w.id), employer.Accounts.Disbursement, w.amount, destination,
            w.id, $"Earned wage access {w.cycle}", PayoutDoneJobType), ct);
        if (result.Payout is { } payout)
        {
            if (w.payout_id is null) await SetPayoutAsync(w, payout.Id, ct);
            if (payout.Status == PayoutStatuses.Succeeded) await CompleteAsync(tenantId, w.id, true, null, ct);
            else if (payout.Status == PayoutStatuses.Failed) await CompleteAsync(tenantId, w.id, false, payout.FailureCode, ct);
            return;
        }
        // The payout was refused outright (bad destination, a conflict): nothing was sent, so undo the advance.
        LogPayoutRefused(logger, tenantId, w.id, result.ErrorCode ?? "unknown");
        await CompleteAsync(tenantId, w.id, false, "payout_" + (result.ErrorCode ?? "refused"), ct);
    }

    /// <summary>The payout ended: paid, or the advance, fee and cover reversed and the reservation released.</summary>
    public async Task CompleteAsync(string tenantId, string id, bool succeeded, string? failureCode, CancellationToken ct)
    {
        WithdrawalRow? w;
        await using (var connection = await database.OpenAsync(ct))
            w = await WithdrawalRow.GetAsync(connection, null, tenantId, id, ct);
        if (w is null || w.status is WithdrawalStatuses.Paid or WithdrawalStatuses.Failed) return;
        if (w.status != WithdrawalStatuses.Processing) throw new InvalidOperationException($"withdrawal {id} is {w.status}, not processing");
        if (succeeded)
        {
            await TransitionAsync(w, WithdrawalStatuses.Processing, WithdrawalStatuses.Paid, null, EwaEventTypes.WithdrawalPaid, ct);
            return;
        }
        var employer = await employers.GetAsync(tenantId, w.employer_id, ct) ?? throw new PermanentJobFailureException($"employer {w.employer_id} not found");
        foreach (var leg in Legs(employer, w))
        {
            var r = await ledger.ReverseAsync(tenantId, leg.Id!, new ReverseRequest(leg.Id + ":rev", null, "Payout failed"), ct);
            if (!r.Succeeded) throw new InvalidOperationException($"reversal of {leg.Id} refused: {r.Error!.Code}");
        }
        await FailAsync(w, failureCode ?? "payout_failed", ct);
    }

    /// <summary>The linked legs of a withdrawal (docs/ewa.md, "Money map").</summary>
    static CreateTransferRequest[] Legs(Employer employer, WithdrawalRow w)
    {
        var a = employer.Accounts;
        var legs = new List<CreateTransferRequest>
        {
            new($"ewa:{w.id}:advance", a.Advances, a.Disbursement, w.amount, 510, "Advance", EffectiveAt: null),
        };
        if (w.fee > 0)
            legs.Add(new($"ewa:{w.id}:fee", w.fee_payer == FeePayers.Employee ? a.Advances : a.Funding, a.Fees, w.fee, 511,
                w.fee_payer == FeePayers.Employee ? "Fee (employee)" : "Fee (employer)"));
        if (a.Committed is not null)
            legs.Add(new($"ewa:{w.id}:cover", a.Funding, a.Committed, w.Counted, 512, "Float committed to the advance"));
        return [.. legs];
    }

    async Task FailAsync(WithdrawalRow w, string code, CancellationToken ct)
    {
        var employeeFee = w.fee_payer == FeePayers.Employee ? w.fee : 0;
        await using var connection = await database.OpenAsync(ct);
        await using var tx = await dialect.BeginWriteAsync(connection, ct);
        var nowUs = DbTime.ToMicros(time.GetUtcNow());
        var changed = await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE ewa_withdrawals SET status = 'failed', failure_code = @code, updated_at_us = @nowUs
            WHERE tenant_id = @tenant AND id = @id AND status IN ('pending', 'processing')
            """, new { code, nowUs, tenant = w.tenant_id, id = w.id }, tx, cancellationToken: ct));
        if (changed == 0) return;
        await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE ewa_employee_cycles SET withdrawn = withdrawn - @counted, advances = advances - @amount, employee_fees = employee_fees - @employeeFee,
                employer_fees = employer_fees - @employerFee, withdrawals = withdrawals - 1
            WHERE tenant_id = @tenant AND employer_id = @employer AND employee_id = @employee AND cycle = @cycle
            """, new { counted = w.Counted, amount = w.amount, employeeFee, employerFee = w.fee - employeeFee, tenant = w.tenant_id, employer = w.employer_id,
                employee = w.employee_id, cycle = w.cycle }, tx, cancellationToken: ct));
        w.status = WithdrawalStatuses.Failed;
        w.failure_code = code;
        await EventLog.AppendAsync(connection, tx, w.tenant_id, null, Event(EwaEventTypes.WithdrawalFailed, w), nowUs, ct);
        await tx.CommitAsync(ct);
        LogFailed(logger, w.tenant_id, w.id, code);
    }

    async Task<WithdrawalRow?> TransitionAsync(WithdrawalRow w, string from, string to, string? code, EventType? type, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        await using var tx = await dialect.BeginWriteAsync(connection, ct);
        var nowUs = DbTime.ToMicros(time.GetUtcNow());
        var changed = await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE ewa_withdrawals SET status = @to, failure_code = @code, updated_at_us = @nowUs WHERE tenant_id = @tenant AND id = @id AND status = @from
            """, new { to, code, nowUs, tenant = w.tenant_id, id = w.id, from }, tx, cancellationToken: ct));
        if (changed == 1 && type is { } t)
        {
            w.status = to;
            await EventLog.AppendAsync(connection, tx, w.tenant_id, null, Event(t, w), nowUs, ct);
        }
        var now = await WithdrawalRow.GetAsync(connection, tx, w.tenant_id, w.id, ct);
        await tx.CommitAsync(ct);
        return now;
    }

    async Task SetPayoutAsync(WithdrawalRow w, string payoutId, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE ewa_withdrawals SET payout_id = @payoutId WHERE tenant_id = @tenant AND id = @id AND payout_id IS NULL",
            new { payoutId, tenant = w.tenant_id, id = w.id }, cancellationToken: ct));
        w.payout_id = payoutId;
    }

    /// <summary>The withdrawal a payout belongs to (payouts name themselves <c>ewa:{withdrawal}</c>).</summary>
    public async Task<string?> WithdrawalOfPayoutAsync(string tenantId, string payoutId, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return await connection.ExecuteScalarAsync<string?>(new CommandDefinition(
                   "SELECT id FROM ewa_withdrawals WHERE tenant_id = @tenantId AND payout_id = @payoutId", new { tenantId, payoutId }, cancellationToken: ct))
               ?? (payoutId.StartsWith("ewa:", StringComparison.Ordinal) ? payoutId[4..] : null);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "EWA withdrawal {WithdrawalId} requested (tenant {TenantId}, employer {EmployerId}): amount {Amount}, fee {Fee}")]
    static partial void LogRequested(ILogger logger, string tenantId, string withdrawalId, string employerId, long amount, long fee);

    [LoggerMessage(Level = LogLevel.Warning, Message = "EWA withdrawal {WithdrawalId} (tenant {TenantId}): inline processing failed; its job will retry")]
    static partial void LogInlineFailed(ILogger logger, string tenantId, string withdrawalId, Exception e);

    [LoggerMessage(Level = LogLevel.Warning, Message = "EWA withdrawal {WithdrawalId} (tenant {TenantId}) failed: {Code}")]
    static partial void LogFailed(ILogger logger, string tenantId, string withdrawalId, string code);

    [LoggerMessage(Level = LogLevel.Warning, Message = "EWA withdrawal {WithdrawalId} (tenant {TenantId}): payout refused with {Code}")]
    static partial void LogPayoutRefused(ILogger logger, string tenantId, string withdrawalId, string code);
}

/// <summary><c>ewa.withdrawal.process</c>: drives a withdrawal's saga (after a crash, or when inline processing is off).</summary>
public sealed class ProcessWithdrawalJob(WithdrawalService withdrawals) : IJobHandler
{
    public string Type => WithdrawalService.ProcessJobType;

    public JobTypeDefaults Defaults => new() { ConcurrencyMax = 8, AttemptsMax = 20 };

    public Task ExecuteAsync(JobExecution job, CancellationToken ct) =>
        withdrawals.ProcessAsync(job.TenantId, JsonDocument.Parse(job.Payload).RootElement.GetProperty("withdrawal_id").GetString()!, ct);
}

/// <summary><c>ewa.withdrawal.payout_done</c>: the payouts capability tells how a withdrawal's payout ended
/// (<c>{"payout_id", "status": "succeeded"|"failed"}</c>).</summary>
public sealed class PayoutDoneJob(WithdrawalService withdrawals, IServiceProvider services) : IJobHandler
{
    // Resolved on use: payouts depend on the job store, which depends on every job handler.
    PayoutService Payouts => services.GetRequiredService<PayoutService>();

    public string Type => WithdrawalService.PayoutDoneJobType;

    public JobTypeDefaults Defaults => new() { ConcurrencyMax = 8, AttemptsMax = 20 };

    public async Task ExecuteAsync(JobExecution job, CancellationToken ct)
    {
        var root = JsonDocument.Parse(job.Payload).RootElement;
        var payoutId = root.GetProperty("payout_id").GetString() ?? throw new PermanentJobFailureException("payload has no payout_id");
        var status = root.GetProperty("status").GetString();
        var id = await withdrawals.WithdrawalOfPayoutAsync(job.TenantId, payoutId, ct) ?? throw new PermanentJobFailureException($"no withdrawal for payout {payoutId}");
        var failure = status == PayoutStatuses.Failed ? (await Payouts.GetAsync(job.TenantId, payoutId, ct))?.FailureCode : null;
        await withdrawals.CompleteAsync(job.TenantId, id, status == PayoutStatuses.Succeeded, failure is null ? null : "payout_" + failure, ct);
    }
}
