using Neraca.Events;

namespace Neraca.Ledger;

/// <summary>What a batch read (and locked) before applying its operations.</summary>
internal sealed class BatchState
{
    public required string TenantId { get; init; }
    public required LedgerRecord Ledger { get; init; }
    public long LastSeq { get; set; }
    public long LastLink { get; set; }
    public byte[] Head { get; set; } = new byte[32];
    public Dictionary<string, AccountState> Accounts { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, TransferRecord> Transfers { get; } = new(StringComparer.Ordinal);
    /// <summary>Sum already reversed, per original transfer id.</summary>
    public Dictionary<string, long> Reversed { get; } = new(StringComparer.Ordinal);
}

internal sealed record EntryRow(string AccountId, long EntryNo, long Seq, string TransferId, EntryDirection Direction, long Amount, long BalanceAfter, long PostedAtUs, long EffectiveAtUs);

internal sealed record ResolutionRow(string TransferId, long Seq, ResolutionKind Kind, long Amount, long ResolvedAtUs);

/// <summary>Everything a batch writes, in posting order.</summary>
internal sealed class BatchWrites
{
    public List<TransferRecord> Transfers { get; } = [];
    public List<ResolutionRow> Resolutions { get; } = [];
    public List<EntryRow> Entries { get; } = [];
    /// <summary>(type, transfer) in posting order; payloads are rendered by the writer.</summary>
    public List<(EventType Type, TransferRecord Transfer)> Events { get; } = [];
    public HashSet<string> ChangedAccounts { get; } = new(StringComparer.Ordinal);
    public bool IsEmpty => Transfers.Count == 0 && Resolutions.Count == 0;
}

/// <summary>The ledger's state machine: applies a batch of operations to locked account state in memory, chain by
/// chain, with undo for failed chains. Pure: no I/O, so both stores share it and tests can drive it directly.</summary>
internal sealed class PostingEngine
{
    readonly BatchState _state;
    readonly long _nowUs;
    readonly BatchWrites _writes = new();
    readonly List<(AccountState Account, long Dp, long Cp, long DPen, long CPen, long Entries)> _undo = [];
    readonly Dictionary<string, long> _reversedUndo = new(StringComparer.Ordinal);

    public PostingEngine(BatchState state, long nowUs)
    {
        _state = state;
        _nowUs = nowUs;
    }

    public BatchWrites Writes => _writes;

    /// <summary>Applies one request's operations; returns a result per operation, in order.</summary>
    public OpResult[] Apply(IReadOnlyList<PostingOp> ops)
    {
        var results = new OpResult[ops.Count];
        var i = 0;
        while (i < ops.Count)
        {
            var end = i;
            while (end < ops.Count - 1 && ops[end].Linked) end++;
            ApplyChain(ops, i, end, results);
            i = end + 1;
        }
        return results;
    }

    void ApplyChain(IReadOnlyList<PostingOp> ops, int start, int end, OpResult[] results)
    {
        var mark = Mark();
        var failedAt = -1;
        for (var k = start; k <= end; k++)
        {
            var op = ops[k];
            results[k] = k == end && op.Linked
                ? OpResult.Fail(LedgerCodes.LinkedChainOpen, "The batch ends inside a linked chain (the last item has linked = true).")
                : op.Rejected ?? ApplyOne(op);
            if (!results[k].Succeeded)
            {
                failedAt = k;
                break;
            }
        }
        if (failedAt < 0) return;
        Rollback(mark);
        for (var k = start; k <= end; k++)
            if (k != failedAt) results[k] = OpResult.Fail(LedgerCodes.LinkedEventFailed, $"Item {failedAt - start} of its linked chain failed.");
    }

    OpResult ApplyOne(PostingOp op) => op.Kind switch
    {
        OpKind.Create => Create(op),
        OpKind.Post => Resolve(op, ResolutionKind.Posted),
        OpKind.Void => Resolve(op, ResolutionKind.Voided),
        _ => Resolve(op, ResolutionKind.Expired),
    };

    OpResult Create(PostingOp op)
    {
        if (_state.Transfers.TryGetValue(op.TransferId, out var existing))
            return CompareExisting(existing, op);
        if (op.DebitAccountId == op.CreditAccountId)
            return OpResult.Fail(LedgerCodes.AccountsMustBeDifferent, "debit_account and credit_account must differ.");
        if (!_state.Accounts.TryGetValue(op.DebitAccountId, out var debit))
            return OpResult.Fail(LedgerCodes.AccountNotFound, $"Account '{op.DebitAccountId}' does not exist.", "debit_account");
        if (!_state.Accounts.TryGetValue(op.CreditAccountId, out var credit))
            return OpResult.Fail(LedgerCodes.AccountNotFound, $"Account '{op.CreditAccountId}' does not exist.", "credit_account");
        if (debit.LedgerId != _state.Ledger.Id || credit.LedgerId != _state.Ledger.Id)
            return OpResult.Fail(LedgerCodes.LedgerMismatch, "Both accounts must belong to the same ledger.");

        var amount = op.Amount;
        if (op.Reverses is not null)
        {
            if (!_state.Transfers.TryGetValue(op.Reverses, out var original))
                return OpResult.Fail(LedgerCodes.TransferNotFound, $"Transfer '{op.Reverses}' does not exist.");
            if (original.PostedAmount == 0)
                return OpResult.Fail(LedgerCodes.ReversalOfUnpostedTransfer, "Only posted amounts can be reversed; void a pending transfer instead.");
            var left = original.PostedAmount - _state.Reversed.GetValueOrDefault(op.Reverses);
            if (amount == 0) amount = left; // no amount given: reverse what is left
            if (amount > left || amount == 0)
                return OpResult.Fail(LedgerCodes.ReversalExceedsOriginal, $"At most {left} of transfer '{op.Reverses}' is left to reverse.");
        }

        if (Limit(debit, credit, amount) is { } refused) return refused;

        var seq = ++_state.LastSeq;
        var transfer = new TransferRecord
        {
            Id = op.TransferId,
            LedgerId = _state.Ledger.Id,
            Seq = seq,
            DebitAccountId = debit.Id,
            CreditAccountId = credit.Id,
            Amount = amount,
            Pending = op.Pending,
            TimeoutAtUs = op.Pending && op.TimeoutSeconds is > 0 ? checked(_nowUs + op.TimeoutSeconds.Value * 1_000_000) : null,
            Code = op.Code,
            Description = op.Description,
            Metadata = op.Metadata,
            Reverses = op.Reverses,
            EffectiveAtUs = op.EffectiveAtUs ?? _nowUs,
            CreatedAtUs = _nowUs,
        };
        Save(debit);
        Save(credit);
        if (op.Pending)
        {
            debit.DebitsPending += amount;
            credit.CreditsPending += amount;
        }
        else
        {
            debit.DebitsPosted += amount;
            credit.CreditsPosted += amount;
            AddEntries(debit, credit, seq, transfer.Id, amount, transfer.EffectiveAtUs);
        }
        if (op.Reverses is not null)
        {
            _reversedUndo.TryAdd(op.Reverses, _state.Reversed.GetValueOrDefault(op.Reverses));
            _state.Reversed[op.Reverses] = _state.Reversed.GetValueOrDefault(op.Reverses) + amount;
        }
        _state.Transfers[transfer.Id] = transfer;
        _writes.Transfers.Add(transfer);
        _writes.Events.Add((op.Pending ? LedgerEventTypes.TransferPending : LedgerEventTypes.TransferPosted, transfer));
        return new OpResult(OpStatus.Created, Transfer: transfer);
    }

    /// <summary>Checks the flags and 64-bit limits of moving <paramref name="amount"/> (posted or pending) from debit
    /// to credit. Pending amounts count against the limits, so a later post cannot break them.</summary>
    static OpResult? Limit(AccountState debit, AccountState credit, long amount)
    {
        long debitsAfter, creditsAfter;
        try
        {
            debitsAfter = checked(debit.DebitsPosted + debit.DebitsPending + amount);
            creditsAfter = checked(credit.CreditsPosted + credit.CreditsPending + amount);
        }
        catch (OverflowException)
        {
            return OpResult.Fail(LedgerCodes.Overflow, "The amount would overflow an account's 64-bit totals.");
        }
        if ((debit.Flags & AccountFlags.DebitsMustNotExceedCredits) != 0 && debitsAfter > SaturatingAdd(debit.CreditsPosted, debit.OverdraftLimit))
            return OpResult.Fail(LedgerCodes.InsufficientFunds, $"Account '{debit.Id}' has insufficient funds.", "debit_account");
        if ((credit.Flags & AccountFlags.CreditsMustNotExceedDebits) != 0 && creditsAfter > SaturatingAdd(credit.DebitsPosted, credit.OverdraftLimit))
            return OpResult.Fail(LedgerCodes.ExceedsCreditLimit, $"Account '{credit.Id}' would exceed its credit limit.", "credit_account");
        return null;
    }

    static long SaturatingAdd(long a, long b) => b > long.MaxValue - a ? long.MaxValue : a + b;

    OpResult Resolve(PostingOp op, ResolutionKind kind)
    {
        if (!_state.Transfers.TryGetValue(op.TransferId, out var pending))
            return OpResult.Fail(LedgerCodes.PendingTransferNotFound, $"Transfer '{op.TransferId}' does not exist.");
        if (!pending.Pending)
            return OpResult.Fail(LedgerCodes.PendingTransferNotPending, $"Transfer '{op.TransferId}' was not created pending.");
        if (pending.Resolution is { } done)
        {
            // Retrying the same post or void returns the outcome it already had.
            var sameAgain = done == kind && (kind != ResolutionKind.Posted || op.Amount == 0 || op.Amount == pending.ResolvedAmount);
            if (sameAgain) return new OpResult(OpStatus.Exists, Transfer: pending);
            if (kind == ResolutionKind.Expired) return new OpResult(OpStatus.Exists, Transfer: pending);
            return done == ResolutionKind.Expired
                ? OpResult.Fail(LedgerCodes.PendingTransferExpired, $"Transfer '{op.TransferId}' expired.")
                : OpResult.Fail(LedgerCodes.PendingTransferNotPending, $"Transfer '{op.TransferId}' is already {pending.Status.ToString().ToLowerInvariant()}.");
        }
        var timedOut = pending.TimeoutAtUs is { } t && t <= _nowUs;
        if (kind == ResolutionKind.Expired && !timedOut)
            return OpResult.Fail(LedgerCodes.PendingTransferNotPending, "Not yet timed out.");
        if (kind != ResolutionKind.Expired && timedOut)
            return OpResult.Fail(LedgerCodes.PendingTransferExpired, $"Transfer '{op.TransferId}' passed its timeout.");
        var amount = kind == ResolutionKind.Posted ? (op.Amount == 0 ? pending.Amount : op.Amount) : 0;
        if (amount > pending.Amount)
            return OpResult.Fail(LedgerCodes.AmountExceedsPending, $"At most {pending.Amount} can be posted.", "amount");

        var debit = _state.Accounts[pending.DebitAccountId];
        var credit = _state.Accounts[pending.CreditAccountId];
        if (amount > 0)
        {
            try
            {
                _ = checked(debit.DebitsPosted + amount);
                _ = checked(credit.CreditsPosted + amount);
            }
            catch (OverflowException)
            {
                return OpResult.Fail(LedgerCodes.Overflow, "The amount would overflow an account's 64-bit totals.");
            }
        }

        var seq = ++_state.LastSeq;
        Save(debit);
        Save(credit);
        debit.DebitsPending -= pending.Amount;
        credit.CreditsPending -= pending.Amount;
        if (amount > 0)
        {
            debit.DebitsPosted += amount;
            credit.CreditsPosted += amount;
            AddEntries(debit, credit, seq, pending.Id, amount, pending.EffectiveAtUs);
        }
        var resolved = pending with { Resolution = kind, ResolvedAmount = amount, ResolvedAtUs = _nowUs };
        _state.Transfers[pending.Id] = resolved;
        _writes.Resolutions.Add(new ResolutionRow(pending.Id, seq, kind, amount, _nowUs));
        _writes.Events.Add((kind switch
        {
            ResolutionKind.Posted => LedgerEventTypes.TransferPosted,
            ResolutionKind.Voided => LedgerEventTypes.TransferVoided,
            _ => LedgerEventTypes.TransferExpired,
        }, resolved));
        // Guards money: a release build must stop here too (Debug.Assert would not).
        if (debit.DebitsPending < 0 || credit.CreditsPending < 0)
            throw new InvalidOperationException($"Resolving '{pending.Id}' left a negative pending balance.");
        return new OpResult(OpStatus.Created, Transfer: resolved);
    }

    void AddEntries(AccountState debit, AccountState credit, long seq, string transferId, long amount, long effectiveAtUs)
    {
        debit.EntryCount++;
        credit.EntryCount++;
        _writes.Entries.Add(new EntryRow(debit.Id, debit.EntryCount, seq, transferId, EntryDirection.Debit, amount, PostedBalance(debit), _nowUs, effectiveAtUs));
        _writes.Entries.Add(new EntryRow(credit.Id, credit.EntryCount, seq, transferId, EntryDirection.Credit, amount, PostedBalance(credit), _nowUs, effectiveAtUs));
    }

    public static long PostedBalance(AccountState a) => a.NormalBalance == NormalBalance.Credit
        ? a.CreditsPosted - a.DebitsPosted
        : a.DebitsPosted - a.CreditsPosted;

    /// <summary>Posted balance less what pending transfers would take out.</summary>
    public static long AvailableBalance(AccountState a) => a.NormalBalance == NormalBalance.Credit
        ? a.CreditsPosted - a.DebitsPosted - a.DebitsPending
        : a.DebitsPosted - a.CreditsPosted - a.CreditsPending;

    static OpResult CompareExisting(TransferRecord existing, PostingOp op)
    {
        var field = DifferingField(existing, op);
        return field is null
            ? new OpResult(OpStatus.Exists, Transfer: existing)
            : OpResult.Fail(LedgerCodes.TransferExistsWithDifferentFields,
                $"A transfer with id '{op.TransferId}' exists with a different {field}.", field);
    }

    static string? DifferingField(TransferRecord t, PostingOp op)
    {
        if (t.DebitAccountId != op.DebitAccountId) return "debit_account";
        if (t.CreditAccountId != op.CreditAccountId) return "credit_account";
        if (t.Amount != op.Amount && !(op.Reverses is not null && op.Amount == 0)) return "amount";
        if (t.Pending != op.Pending) return "pending";
        var timeout = t.TimeoutAtUs is { } at ? (at - t.CreatedAtUs) / 1_000_000 : (long?)null;
        if (op.Pending && (op.TimeoutSeconds is > 0 ? op.TimeoutSeconds : null) != timeout) return "timeout_seconds";
        if (t.Code != op.Code) return "code";
        if (t.Description != op.Description) return "description";
        if (t.Metadata != op.Metadata) return "metadata";
        if (t.Reverses != op.Reverses) return "reverses";
        if (op.EffectiveAtUs is { } e && e != t.EffectiveAtUs) return "effective_at";
        return null;
    }

    void Save(AccountState a)
    {
        _undo.Add((a, a.DebitsPosted, a.CreditsPosted, a.DebitsPending, a.CreditsPending, a.EntryCount));
        _writes.ChangedAccounts.Add(a.Id); // a rolled-back account is rewritten unchanged: harmless
    }

    (int Undo, int Transfers, int Resolutions, int Entries, int Events, long Seq) Mark()
    {
        _reversedUndo.Clear();
        return (_undo.Count, _writes.Transfers.Count, _writes.Resolutions.Count, _writes.Entries.Count, _writes.Events.Count, _state.LastSeq);
    }

    void Rollback((int Undo, int Transfers, int Resolutions, int Entries, int Events, long Seq) mark)
    {
        for (var i = _undo.Count - 1; i >= mark.Undo; i--)
        {
            var (a, dp, cp, dpen, cpen, entries) = _undo[i];
            a.DebitsPosted = dp;
            a.CreditsPosted = cp;
            a.DebitsPending = dpen;
            a.CreditsPending = cpen;
            a.EntryCount = entries;
        }
        _undo.RemoveRange(mark.Undo, _undo.Count - mark.Undo);
        for (var i = _writes.Transfers.Count - 1; i >= mark.Transfers; i--) _state.Transfers.Remove(_writes.Transfers[i].Id);
        for (var i = _writes.Resolutions.Count - 1; i >= mark.Resolutions; i--)
        {
            var id = _writes.Resolutions[i].TransferId;
            _state.Transfers[id] = _state.Transfers[id] with { Resolution = null, ResolvedAmount = 0, ResolvedAtUs = null };
        }
        foreach (var (id, before) in _reversedUndo) _state.Reversed[id] = before;
        _writes.Transfers.RemoveRange(mark.Transfers, _writes.Transfers.Count - mark.Transfers);
        _writes.Resolutions.RemoveRange(mark.Resolutions, _writes.Resolutions.Count - mark.Resolutions);
        _writes.Entries.RemoveRange(mark.Entries, _writes.Entries.Count - mark.Entries);
        _writes.Events.RemoveRange(mark.Events, _writes.Events.Count - mark.Events);
        _state.LastSeq = mark.Seq;
    }

    /// <summary>Asserts the invariants a batch must leave behind: no negative totals, flags respected, and the batch's
    /// own entries balance (every debit has its credit).</summary>
    public void AssertInvariants()
    {
        long debits = 0, credits = 0;
        foreach (var e in _writes.Entries)
        {
            if (e.Direction == EntryDirection.Debit) debits = checked(debits + e.Amount);
            else credits = checked(credits + e.Amount);
        }
        if (debits != credits) throw new InvalidOperationException($"Batch entries do not balance: debits {debits} != credits {credits}.");
        foreach (var id in _writes.ChangedAccounts)
        {
            var a = _state.Accounts[id];
            if (a.DebitsPosted < 0 || a.CreditsPosted < 0 || a.DebitsPending < 0 || a.CreditsPending < 0)
                throw new InvalidOperationException($"Account {a.Id} has a negative total.");
        }
    }
}

