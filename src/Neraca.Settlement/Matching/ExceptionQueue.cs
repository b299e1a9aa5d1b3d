using System.Data.Common;
using System.Text.Json.Nodes;
using Dapper;
using Neraca.Events;
using Neraca.Hosting;
using Neraca.Jobs;
using Neraca.Ledger;
using Neraca.Settlement.Counterparties;
using Neraca.Settlement.Statements;
using Neraca.Storage;

namespace Neraca.Settlement.Matching;

public sealed record ExceptionResponse(string Id, string Counterparty, string Kind, string Statement, int? LineNo, string? TransferId, long Amount, string ValueDate,
    string? Reference, string Status, string? Resolution, string? Note, IReadOnlyList<string> TransferIds, DateTimeOffset CreatedAt, DateTimeOffset? ResolvedAt);

/// <summary><c>match</c> (a line, with <c>transfer_ids</c> summing to its amount), <c>write_off</c> (an adjustment
/// transfer between the cash and the suspense account) or <c>ignore</c>.</summary>
public sealed record ResolveRequest(string? Action = null, string[]? TransferIds = null, string? Note = null);

/// <summary>The exception queue: unmatched statement lines and unmatched ledger transfers, and their resolution by an
/// operator. A resolution is final; repeating the same one answers it again (200), a different one 409.</summary>
internal sealed class ExceptionQueue(ReconciliationStore store, CounterpartyDirectory counterparties, ILedger ledger, JobStore jobs, SettlementMetrics metrics,
    TimeProvider clock)
{
    public const int NoteLengthMax = 500;
    public const int TransferIdsMax = 100;
    public static readonly string[] Actions = ["match", "write_off", "ignore"];

    const string Columns = "id, counterparty_id, kind, statement_id, line_no, transfer_id, amount, value_date, reference, status, resolution, note, resolved_transfer_ids, created_at_us, resolved_at_us";

    public static string WriteOffTransferId(string exceptionId) => $"recon:{exceptionId}:writeoff";

    public async Task<SettlementResult<Page<ExceptionResponse>>> ListAsync(string tenantId, string? status, string? counterparty, string? statement, int? limit,
        string? after, CancellationToken ct)
    {
        if (Paging.Limit(limit) is not { } take) return Paging.LimitProblem();
        if (status is not (null or "open" or "resolved")) return SettlementError.Invalid("status", "open or resolved.");
        var afterId = Cursor.Decode(after);
        await using var connection = await store.Database.OpenReadAsync(ct);
        var rows = (await connection.QueryAsync<ReconciliationStore.ExceptionRow>(new CommandDefinition($"""
            SELECT {Columns} FROM recon_exceptions
            WHERE tenant_id = @tenantId AND (@status IS NULL OR status = @status) AND (@counterparty IS NULL OR counterparty_id = @counterparty)
              AND (@statement IS NULL OR statement_id = @statement) AND (@afterId IS NULL OR id > @afterId)
            ORDER BY id LIMIT @n
            """, new { tenantId, status, counterparty, statement, afterId, n = take + 1 }, cancellationToken: ct))).ToList();
        var more = rows.Count > take;
        if (more) rows.RemoveAt(rows.Count - 1);
        return SettlementResult<Page<ExceptionResponse>>.Ok(new(rows.Select(ToResponse).ToList(), more ? Cursor.Encode(rows[^1].id) : null));
    }

    public async Task<SettlementResult<ExceptionResponse>> GetAsync(string tenantId, string id, CancellationToken ct)
    {
        await using var connection = await store.Database.OpenAsync(ct);
        return await FindAsync(connection, null, tenantId, id, ct) is { } e ? SettlementResult<ExceptionResponse>.Ok(ToResponse(e)) : NotFound(id);
    }

    public async Task<SettlementResult<ExceptionResponse>> ResolveAsync(string tenantId, string id, ResolveRequest body, CancellationToken ct)
    {
        var v = new FieldErrors();
        if (body.Action is null || !Actions.Contains(body.Action)) v.Add("action", "Required: match, write_off or ignore.");
        if (body.Note is { Length: > NoteLengthMax }) v.Add("note", $"At most {NoteLengthMax} characters.");
        if (body.Action == "match" && (body.TransferIds is not { Length: > 0 and <= TransferIdsMax } || body.TransferIds.Any(t => !Ids.IsValid(t))))
            v.Add("transfer_ids", $"Required for match: 1 to {TransferIdsMax} transfer ids.");
        if (body.Action is "write_off" or "ignore" && body.TransferIds is not null) v.Add("transfer_ids", "Only for match.");
        if (!v.Ok) return v.ToError();
        var transferIds = body.TransferIds?.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray() ?? [];

        ReconciliationStore.ExceptionRow? e;
        await using (var connection = await store.Database.OpenAsync(ct))
            e = await FindAsync(connection, null, tenantId, id, ct);
        if (e is null) return NotFound(id);
        if (e.status == "resolved") return Replay(e, body.Action!, transferIds);
        if (e.kind == ExceptionKind.UnmatchedTransfer && body.Action == "match")
            return SettlementError.Unprocessable(SettlementCodes.ResolutionNotApplicable,
                "An unmatched ledger transfer is matched by importing the statement line that books it; resolve it with write_off or ignore.");
        var counterparty = await counterparties.GetAsync(tenantId, e.counterparty_id, ct)
            ?? throw new InvalidOperationException($"counterparty {e.counterparty_id} is gone");
        var source = await TransferSource.CreateAsync(ledger, tenantId, counterparty, ct);

        var matches = new List<LineMatch>();
        string[] resolvedIds = [];
        switch (body.Action)
        {
            case "match":
                long sum = 0;
                foreach (var t in transferIds)
                {
                    var found = await ledger.GetTransferAsync(tenantId, t, ct);
                    if (found.Value is not { } transfer || !source.Touches(transfer) || transfer.PostedAmount == 0)
                        return SettlementError.Unprocessable(SettlementCodes.MatchInvalid,
                            $"Transfer '{t}' is not a posted transfer on the cash account '{counterparty.CashAccount}'.", new Dictionary<string, object?> { ["transfer_id"] = t });
                    sum = checked(sum + source.Signed(transfer));
                }
                if (sum != e.amount)
                    return SettlementError.Unprocessable(SettlementCodes.MatchInvalid, $"The transfers sum to {sum}, the line is {e.amount} (write off the difference instead).",
                        new Dictionary<string, object?> { ["difference"] = checked(e.amount - sum) });
                matches.Add(new LineMatch(e.line_no!.Value, Matcher.ManualRule, transferIds));
                resolvedIds = transferIds;
                break;
            case "write_off":
                if (counterparty.SuspenseAccount is null)
                    return SettlementError.Unprocessable(SettlementCodes.SuspenseAccountRequired, $"Counterparty '{counterparty.Id}' has no suspense_account to write off to.");
                // The books follow the bank: a line adds its amount to the cash account, an unmatched transfer is taken back.
                var adjustment = e.kind == ExceptionKind.UnmatchedLine ? e.amount : -e.amount;
                var grow = adjustment > 0;
                var writeOffId = WriteOffTransferId(e.id);
                var posted = await ledger.CreateTransferAsync(tenantId, new CreateTransferRequest(
                    Id: writeOffId,
                    DebitAccount: grow == source.DebitGrows ? counterparty.CashAccount : counterparty.SuspenseAccount,
                    CreditAccount: grow == source.DebitGrows ? counterparty.SuspenseAccount : counterparty.CashAccount,
                    Amount: Math.Abs(adjustment), Description: $"Reconciliation write-off {e.id}",
                    Metadata: new JsonObject { ["exception"] = e.id, ["statement"] = e.statement_id, ["reference"] = e.reference }), ct);
                if (!posted.Succeeded)
                    return SettlementError.Unprocessable(SettlementCodes.WriteOffFailed, $"The ledger refused the write-off: {posted.Error!.Detail}",
                        new Dictionary<string, object?> { ["ledger_code"] = posted.Error.Code });
                // The adjustment (and a written-off transfer) are reconciled by this decision: no later sweep flags them.
                matches.Add(new LineMatch(e.line_no ?? 0, Matcher.WriteOffRule, e.transfer_id is null ? [writeOffId] : [writeOffId, e.transfer_id]));
                resolvedIds = [writeOffId];
                break;
        }

        var nowUs = DbTime.ToMicros(clock.GetUtcNow());
        await using (var connection = await store.Database.OpenAsync(ct))
        {
            try
            {
                await using var tx = await store.Dialect.BeginWriteAsync(connection, ct);
                var updated = await connection.ExecuteAsync(new CommandDefinition("""
                    UPDATE recon_exceptions SET status = 'resolved', resolution = @action, note = @note, resolved_transfer_ids = @ids, resolved_at_us = @nowUs
                    WHERE tenant_id = @tenantId AND id = @id AND status = 'open'
                    """, new { tenantId, id, action = body.Action, note = body.Note, ids = SettlementJson.Serialize(resolvedIds), nowUs }, tx, cancellationToken: ct));
                if (updated == 0)
                {
                    await tx.RollbackAsync(ct);
                    return Replay((await FindAsync(connection, null, tenantId, id, ct))!, body.Action!, transferIds);
                }
                if (e.line_no is { } lineNo)
                {
                    if (body.Action == "ignore")
                        await connection.ExecuteAsync(new CommandDefinition(
                            "UPDATE recon_lines SET status = 'ignored', rule = NULL WHERE tenant_id = @tenantId AND statement_id = @statement AND line_no = @lineNo",
                            new { tenantId, statement = e.statement_id, lineNo }, tx, cancellationToken: ct));
                    else await store.WriteMatchesAsync(connection, tx, tenantId, e.statement_id, matches, nowUs, ct);
                }
                else if (matches.Count > 0)
                {
                    // A transfer's write-off has no line: record the pair as reconciled without touching the statement's lines.
                    await connection.ExecuteAsync(new CommandDefinition("""
                        INSERT INTO recon_matches (tenant_id, transfer_id, statement_id, line_no, rule, matched_at_us) VALUES (@tenantId, @t, @statement, 0, @rule, @nowUs)
                        """, matches[0].TransferIds.Select(t => new { tenantId, t, statement = e.statement_id, rule = Matcher.WriteOffRule, nowUs }), tx, cancellationToken: ct));
                }
                await CloseTransferExceptionsAsync(connection, tx, store.Dialect, tenantId, transferIds, $"Matched to line {e.line_no} of statement {e.statement_id}.", nowUs, ct);
                var (statement, became) = await store.RefreshStatementAsync(connection, tx, tenantId, e.statement_id, nowUs, ct);
                var resolved = (await FindAsync(connection, tx, tenantId, id, ct))!;
                await EventLog.AppendAsync(connection, tx, tenantId, null, new NewEvent(SettlementEventTypes.ExceptionResolved, id, SettlementJson.Serialize(ToResponse(resolved))),
                    nowUs, ct);
                // The last line settled: look for ledger transfers the statement does not explain.
                if (became)
                    await jobs.EnqueueAsync(connection, tx, new JobRequest(tenantId, StatementImporter.MatchJobType, SettlementJson.Serialize(new MatchJobPayload(statement.id)),
                        Key: statement.id + ":sweep"), ct);
                await tx.CommitAsync(ct);
                if (became) metrics.FullyMatched((nowUs - statement.imported_at_us) / 1e6);
                return SettlementResult<ExceptionResponse>.Ok(ToResponse(resolved));
            }
            catch (DbException x) when (Database.IsUniqueViolation(x))
            {
                return SettlementError.Conflict(SettlementCodes.TransferAlreadyMatched, "One of the transfers is matched to another line already.",
                    new Dictionary<string, object?> { ["transfer_ids"] = transferIds });
            }
        }
    }

    /// <summary>Open <c>unmatched_transfer</c> exceptions of transfers that have now been matched are resolved by that match.</summary>
    public static async Task CloseTransferExceptionsAsync(DbConnection connection, DbTransaction tx, SqlDialect dialect, string tenantId, string[] transferIds,
        string note, long nowUs, CancellationToken ct)
    {
        if (transferIds.Length == 0) return;
        await connection.ExecuteAsync(new CommandDefinition($"""
            UPDATE recon_exceptions SET status = 'resolved', resolution = 'match', note = @note, resolved_at_us = @nowUs
            WHERE tenant_id = @tenantId AND status = 'open' AND {dialect.InIdList("transfer_id", "ids")}
            """, new { tenantId, note, nowUs, ids = dialect.IdListValue(transferIds) }, tx, cancellationToken: ct));
    }

    static SettlementResult<ExceptionResponse> Replay(ReconciliationStore.ExceptionRow e, string action, string[] transferIds)
    {
        var same = e.resolution == action && (action != "match" || (SettlementJson.Deserialize<string[]>(e.resolved_transfer_ids) ?? []).SequenceEqual(transferIds));
        return same ? SettlementResult<ExceptionResponse>.Again(ToResponse(e))
            : SettlementError.Conflict(SettlementCodes.ExceptionAlreadyResolved, $"Exception '{e.id}' was resolved before ({e.resolution}).",
                new Dictionary<string, object?> { ["resolution"] = e.resolution });
    }

    static async Task<ReconciliationStore.ExceptionRow?> FindAsync(DbConnection connection, DbTransaction? tx, string tenantId, string id, CancellationToken ct) =>
        await connection.QuerySingleOrDefaultAsync<ReconciliationStore.ExceptionRow>(new CommandDefinition(
            $"SELECT {Columns} FROM recon_exceptions WHERE tenant_id = @tenantId AND id = @id", new { tenantId, id }, tx, cancellationToken: ct));

    static SettlementError NotFound(string id) => SettlementError.NotFound(SettlementCodes.ExceptionNotFound, $"No exception '{id}'.");

    static ExceptionResponse ToResponse(ReconciliationStore.ExceptionRow e) => new(e.id, e.counterparty_id, e.kind, e.statement_id, e.line_no, e.transfer_id, e.amount,
        e.value_date, e.reference, e.status, e.resolution, e.note, SettlementJson.Deserialize<string[]>(e.resolved_transfer_ids) ?? [], DbTime.FromMicros(e.created_at_us),
        e.resolved_at_us is { } r ? DbTime.FromMicros(r) : null);
}
