using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Neraca.Events;
using Neraca.Jobs;
using Neraca.Ledger;
using Neraca.Settlement.Counterparties;
using Neraca.Settlement.Statements;
using Neraca.Storage;

namespace Neraca.Settlement.Matching;

/// <summary>The background matching of one imported statement (job <c>reconciliation.match</c>, enqueued with the
/// import). It reads the cash account's transfers around the statement's dates through the ledger, page by page, runs the
/// counterparty's rules in memory, and writes matches and exceptions in one transaction (a transfer matched meanwhile by
/// another statement fails the insert on its unique key; the retry starts over without it). Once every line is matched or
/// ignored, the account's transfers dated inside the statement's period that no line explains become exceptions.</summary>
internal sealed class MatchingJob(ReconciliationStore store, CounterpartyDirectory counterparties, ILedger ledger, SettlementMetrics metrics, TimeProvider clock)
    : IJobHandler
{
    public string Type => StatementImporter.MatchJobType;

    public JobTypeDefaults Defaults => new() { ConcurrencyMax = 2 };

    public async Task ExecuteAsync(JobExecution job, CancellationToken ct)
    {
        MatchJobPayload? p;
        try { p = JsonSerializer.Deserialize<MatchJobPayload>(job.Payload, SettlementJson.Options); }
        catch (JsonException e) { throw new PermanentJobFailureException("bad payload", e); }
        var tenantId = job.TenantId;
        if (p is null || await store.GetStatementAsync(tenantId, p.Statement, ct) is not { } statement)
            throw new PermanentJobFailureException("no such statement");
        var counterparty = await counterparties.GetAsync(tenantId, statement.counterparty_id, ct)
            ?? throw new PermanentJobFailureException($"counterparty {statement.counterparty_id} is gone");
        var started = Stopwatch.GetTimestamp();
        var source = await TransferSource.CreateAsync(ledger, tenantId, counterparty, ct);

        var lines = await store.LinesInStatusAsync(tenantId, statement.id, LineStatus.Unmatched, ct);
        if (lines.Count > 0) statement = await MatchLinesAsync(tenantId, statement, counterparty, source, lines, ct);
        if (statement.status == StatementStatus.Matched) await SweepAsync(tenantId, statement, counterparty, source, ct);
        metrics.MatchPass(Stopwatch.GetElapsedTime(started).TotalSeconds);
    }

    async Task<ReconciliationStore.StatementRow> MatchLinesAsync(string tenantId, ReconciliationStore.StatementRow statement, Counterparty counterparty,
        TransferSource source, List<ReconciliationStore.LineRow> lines, CancellationToken ct)
    {
        var rules = counterparty.Rules;
        var reach = rules.Max(r => r.WindowDays ?? 0);
        var bankLines = lines.Select(l => new BankLine(l.line_no, Dates.Parse(l.value_date)!.Value, l.amount, l.reference, l.bank_reference)).ToList();
        var first = bankLines.Min(l => l.ValueDate).AddDays(-reach);
        var last = bankLines.Max(l => l.ValueDate).AddDays(reach);
        // An exact reference may name a transfer of any date: a line's reference that no transfer in the window carries is
        // looked up as a transfer id (a reversal booked days later, a correction).
        var candidates = await source.ReadAsync(store, first, last, unmatchedOnly: true, ct);
        var known = candidates.SelectMany(c => c.References).ToHashSet(StringComparer.Ordinal);
        var named = bankLines.Select(l => l.Reference).OfType<string>().Where(r => !known.Contains(r)).Distinct(StringComparer.Ordinal).ToList();
        candidates.AddRange(await source.ByIdsAsync(store, named, ct));

        var matches = Matcher.Match(bankLines, candidates, rules);
        var matchedLines = matches.Select(m => m.LineNo).ToHashSet();
        var nowUs = DbTime.ToMicros(clock.GetUtcNow());
        var exceptions = lines.Where(l => !matchedLines.Contains(l.line_no)).Select(l => new ReconciliationStore.ExceptionRow
        {
            id = "exc_" + Ids.NewUlid(), counterparty_id = counterparty.Id, kind = ExceptionKind.UnmatchedLine, statement_id = statement.id, line_no = l.line_no,
            amount = l.amount, value_date = l.value_date, reference = l.reference ?? l.bank_reference, created_at_us = nowUs,
        }).ToList();

        await using var connection = await store.Database.OpenAsync(ct);
        await using var tx = await store.Dialect.BeginWriteAsync(connection, ct);
        await store.WriteMatchesAsync(connection, tx, tenantId, statement.id, matches, nowUs, ct);
        await ExceptionQueue.CloseTransferExceptionsAsync(connection, tx, store.Dialect, tenantId, matches.SelectMany(m => m.TransferIds).ToArray(),
            $"Matched by statement {statement.id}.", nowUs, ct);
        await store.OpenExceptionsAsync(connection, tx, tenantId, exceptions, ct);
        var (after, became) = await store.RefreshStatementAsync(connection, tx, tenantId, statement.id, nowUs, ct);
        var byRule = matches.GroupBy(m => m.Rule).ToDictionary(g => g.Key, g => (long)g.Count(), StringComparer.Ordinal);
        var payload = new JsonObject
        {
            ["statement"] = after.id, ["counterparty"] = after.counterparty_id, ["lines"] = after.line_count, ["matched"] = matches.Count,
            ["exceptions"] = exceptions.Count, ["by_rule"] = new JsonObject(byRule.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            ["fully_matched"] = after.status == StatementStatus.Matched,
        };
        await Events.EventLog.AppendAsync(connection, tx, tenantId, null, new NewEvent(SettlementEventTypes.StatementMatched, after.id, payload.ToJsonString()), nowUs, ct);
        await tx.CommitAsync(ct);

        foreach (var (rule, count) in byRule) metrics.Lines("matched", rule, count);
        metrics.Lines("exception", "none", exceptions.Count);
        if (became) metrics.FullyMatched((nowUs - after.imported_at_us) / 1e6);
        return after;
    }

    /// <summary>The cash account's transfers valued inside the statement's period with no matching line become
    /// <c>unmatched_transfer</c> exceptions (once each: a unique index per transfer).</summary>
    async Task SweepAsync(string tenantId, ReconciliationStore.StatementRow statement, Counterparty counterparty, TransferSource source, CancellationToken ct)
    {
        var candidates = await source.ReadAsync(store, Dates.Parse(statement.period_from)!.Value, Dates.Parse(statement.period_to)!.Value, unmatchedOnly: true, ct);
        if (candidates.Count == 0) return;
        var nowUs = DbTime.ToMicros(clock.GetUtcNow());
        await using var connection = await store.Database.OpenAsync(ct);
        foreach (var chunk in candidates.Chunk(ReconciliationStore.WriteChunk))
        {
            await using var tx = await store.Dialect.BeginWriteAsync(connection, ct);
            var flagged = await store.WithExceptionAsync(connection, tx, tenantId, chunk.Select(c => c.Id).ToArray(), ct);
            var matched = await store.MatchedAsync(connection, tx, tenantId, chunk.Select(c => c.Id).ToArray(), ct);
            var fresh = chunk.Where(c => !flagged.Contains(c.Id) && !matched.Contains(c.Id)).Select(c => new ReconciliationStore.ExceptionRow
            {
                id = "exc_" + Ids.NewUlid(), counterparty_id = counterparty.Id, kind = ExceptionKind.UnmatchedTransfer, statement_id = statement.id,
                transfer_id = c.Id, amount = c.Amount, value_date = Dates.Format(c.ValueDate), reference = c.References.Skip(1).FirstOrDefault(), created_at_us = nowUs,
            }).ToList();
            await store.OpenExceptionsAsync(connection, tx, tenantId, fresh, ct);
            await tx.CommitAsync(ct);
            metrics.Lines("exception", "unmatched_transfer", fresh.Count);
        }
    }
}

/// <summary>Exception kinds. Stored as text: never rename one.</summary>
internal static class ExceptionKind
{
    public const string UnmatchedLine = "unmatched_line";
    public const string UnmatchedTransfer = "unmatched_transfer";
}

/// <summary>The counterparty's cash account as the matching rules see it, read through <see cref="ILedger"/>.</summary>
internal sealed class TransferSource
{
    readonly ILedger _ledger;
    readonly string _tenantId;
    readonly string _account;
    readonly bool _debitGrows;
    readonly BusinessCalendar _calendar;

    TransferSource(ILedger ledger, string tenantId, string account, bool debitGrows, BusinessCalendar calendar)
    {
        _ledger = ledger;
        _tenantId = tenantId;
        _account = account;
        _debitGrows = debitGrows;
        _calendar = calendar;
    }

    public static async Task<TransferSource> CreateAsync(ILedger ledger, string tenantId, Counterparty counterparty, CancellationToken ct)
    {
        var account = await ledger.GetAccountAsync(tenantId, counterparty.CashAccount, ct);
        if (!account.Succeeded) throw new PermanentJobFailureException($"cash account {counterparty.CashAccount} is not in the ledger");
        return new TransferSource(ledger, tenantId, counterparty.CashAccount, account.Value!.NormalBalance == "debit", counterparty.Calendar);
    }

    /// <summary>Posted transfers valued on the calendar dates <paramref name="first"/>..<paramref name="last"/>, optionally
    /// without those matched already.</summary>
    public async Task<List<Candidate>> ReadAsync(ReconciliationStore store, DateOnly first, DateOnly last, bool unmatchedOnly, CancellationToken ct)
    {
        var (from, to) = _calendar.CalendarWindow(first, last);
        var result = new List<Candidate>();
        await using var connection = await store.Database.OpenAsync(ct);
        string? after = null;
        do
        {
            var page = await _ledger.ListAccountTransfersAsync(_tenantId, new AccountTransferQuery(_account, from, to, SettlementOptions.TransferPageSize, after), ct);
            if (!page.Succeeded) throw new InvalidOperationException($"ledger read failed: {page.Error!.Code} {page.Error.Detail}");
            var posted = page.Value!.Data.Where(t => t.PostedAmount > 0).ToList();
            var matched = unmatchedOnly ? await store.MatchedAsync(connection, null, _tenantId, posted.Select(t => t.Id).ToArray(), ct) : null;
            foreach (var t in posted)
                if (matched is null || !matched.Contains(t.Id)) result.Add(ToCandidate(t));
            after = page.Value.NextCursor;
        } while (after is not null);
        return result;
    }

    /// <summary>The transfers named by <paramref name="ids"/> that are on the account, posted and not matched.</summary>
    public async Task<List<Candidate>> ByIdsAsync(ReconciliationStore store, IReadOnlyList<string> ids, CancellationToken ct)
    {
        var result = new List<Candidate>();
        var found = new List<TransferResponse>();
        foreach (var id in ids.Where(Ids.IsValid).Take(10_000))
            if ((await _ledger.GetTransferAsync(_tenantId, id, ct)).Value is { PostedAmount: > 0 } t && (t.DebitAccount == _account || t.CreditAccount == _account))
                found.Add(t);
        if (found.Count == 0) return result;
        await using var connection = await store.Database.OpenAsync(ct);
        var matched = await store.MatchedAsync(connection, null, _tenantId, found.Select(t => t.Id).ToArray(), ct);
        result.AddRange(found.Where(t => !matched.Contains(t.Id)).Select(ToCandidate));
        return result;
    }

    /// <summary>Money into the account (the side that grows its balance) is positive, as on the bank's statement.</summary>
    public long Signed(TransferResponse t) => (t.DebitAccount == _account) == _debitGrows ? t.PostedAmount : -t.PostedAmount;

    public bool Touches(TransferResponse t) => t.DebitAccount == _account || t.CreditAccount == _account;

    public string Account => _account;

    public bool DebitGrows => _debitGrows;

    Candidate ToCandidate(TransferResponse t)
    {
        var refs = new List<string>(3) { t.Id };
        foreach (var key in new[] { "end_to_end_id", "reference" })
            if (t.Metadata?[key] is JsonValue v && v.TryGetValue<string>(out var s) && s.Length > 0 && !refs.Contains(s)) refs.Add(s);
        return new Candidate(t.Id, Signed(t), _calendar.LocalDate(t.EffectiveAt), [.. refs]);
    }
}
