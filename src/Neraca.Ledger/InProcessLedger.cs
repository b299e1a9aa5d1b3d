using System.Globalization;
using Neraca.Hosting;
using Neraca.Storage;

namespace Neraca.Ledger;

/// <summary>The in-process ledger API (<see cref="ILedger"/>): validates every input before it can join a group
/// commit, routes transfers to their ledger's posting pipeline and answers reads. The HTTP API maps onto it.</summary>
/// <remarks>With <see cref="Subject"/> set (<see cref="For"/>) it is an end user's view: every rule of end-user ownership is
/// enforced here, so in-process callers acting for an end user get the same answers as the HTTP API.</remarks>
internal sealed class InProcessLedger(LedgerStore store, PostingPipeline pipeline, AuditChain audit, TimeProvider clock) : ILedger
{
    public const int PageLimitDefault = 100;

    /// <summary>The end user this view acts for; null: tenant-wide (a server).</summary>
    public string? Subject { get; private init; }

    public ILedger For(string subject)
    {
        ArgumentException.ThrowIfNullOrEmpty(subject);
        return new InProcessLedger(store, pipeline, audit, clock) { Subject = subject };
    }

    /// <summary>Whether the caller may see and debit the account: a server any, an end user the ones it owns.</summary>
    bool Reaches(AccountState account) => Subject is null || string.Equals(account.Owner, Subject, StringComparison.Ordinal);

    async Task<bool> ReachesAsync(string tenantId, string accountId, CancellationToken ct) =>
        Subject is null || (await store.GetAccountAsync(tenantId, accountId, ct) is { } a && Reaches(a));

    LedgerResult<T>? ServerOnly<T>(string what) => Subject is null ? null
        : LedgerResult<T>.Fail(LedgerErrorKind.Forbidden, LedgerCodes.ServerKeyRequired, $"Only a server API key can {what}.");

    // ---------------- ledgers ----------------

    public async Task<LedgerResult<LedgerResponse>> CreateLedgerAsync(string tenantId, CreateLedgerRequest body, CancellationToken ct)
    {
        if (ServerOnly<LedgerResponse>("create ledgers") is { } refused) return refused;
        var v = new LedgerValidation();
        v.Id("code", body.Code, required: true);
        if (body.Asset is null) v.Add("asset", "Required.");
        else if (body.Asset.Length is < 2 or > 12 || !body.Asset.All(c => char.IsAsciiLetterUpper(c) || char.IsAsciiDigit(c)))
            v.Add("asset", "2-12 characters of A-Z 0-9 (an ISO 4217 code such as IDR).");
        if (body.Scale is null) v.Add("scale", "Required.");
        else if (body.Scale is < 0 or > 18) v.Add("scale", "Must be from 0 to 18.");
        v.Text("name", body.Name, LedgerValidation.NameLengthMax);
        v.Metadata("metadata", body.Metadata);
        if (!v.Ok) return Invalid<LedgerResponse>(v);

        // The code is the ledger's idempotency anchor: a retry finds the ledger the first call created.
        var wanted = new LedgerRecord("led_" + Ids.NewUlid(), body.Code!, body.Asset!, body.Scale!.Value, body.Name,
            LedgerJson.MetadataText(body.Metadata), store.NowUs());
        var (outcome, ledger) = await store.CreateLedgerAsync(tenantId, wanted, ct);
        var response = LedgerJson.ToResponse(ledger);
        return outcome switch
        {
            CreateOutcome.Created => LedgerResult<LedgerResponse>.Created(response),
            CreateOutcome.Replayed => LedgerResult<LedgerResponse>.Replayed(response),
            _ => LedgerResult<LedgerResponse>.Fail(LedgerErrorKind.Conflict, LedgerCodes.LedgerExists, $"Ledger '{ledger.Code}' exists with different fields."),
        };
    }

    public async Task<LedgerResult<LedgerResponse>> GetLedgerAsync(string tenantId, string idOrCode, CancellationToken ct) =>
        await store.GetLedgerAsync(tenantId, idOrCode, ct) is { } ledger
            ? LedgerResult<LedgerResponse>.Ok(LedgerJson.ToResponse(ledger))
            : LedgerNotFound<LedgerResponse>(idOrCode, LedgerErrorKind.NotFound);

    public async Task<LedgerResult<Page<LedgerResponse>>> ListLedgersAsync(string tenantId, PageRequest page, CancellationToken ct)
    {
        if (PageLimit(page.Limit) is not { } take) return LimitProblem<Page<LedgerResponse>>();
        var (items, more) = await store.ListLedgersAsync(tenantId, take, Cursor.Decode(page.After), ct);
        return LedgerResult<Page<LedgerResponse>>.Ok(new(items.Select(LedgerJson.ToResponse).ToList(), more ? Cursor.Encode(items[^1].Code) : null));
    }

    public async Task<LedgerResult<AuditResponse>> VerifyAuditAsync(string tenantId, string idOrCode, CancellationToken ct)
    {
        if (await store.GetLedgerAsync(tenantId, idOrCode, ct) is not { } ledger) return LedgerNotFound<AuditResponse>(idOrCode, LedgerErrorKind.NotFound);
        var r = await audit.VerifyIncrementalAsync(tenantId, ledger.Id, ct);
        return LedgerResult<AuditResponse>.Ok(new AuditResponse(r.Verified, r.Links, r.Head, r.FirstBadLink, r.Problem));
    }

    // ---------------- accounts ----------------

    public async Task<LedgerResult<AccountResponse>> CreateAccountAsync(string tenantId, CreateAccountRequest body, CancellationToken ct)
    {
        // An end user's own account would have the flags it chose: one without debits_must_not_exceed_credits could be
        // debited without limit to pay anyone. Accounts (and their owners) are the server's decision.
        if (ServerOnly<AccountResponse>("create accounts") is { } refused) return refused;
        var v = new LedgerValidation();
        v.Id("id", body.Id, required: true);
        if (body.Ledger is null) v.Add("ledger", "Required.");
        NormalBalance? normal = body.NormalBalance switch { "credit" => NormalBalance.Credit, "debit" => NormalBalance.Debit, _ => null };
        if (normal is null) v.Add("normal_balance", "Required: \"credit\" or \"debit\".");
        var flags = AccountFlags.None;
        foreach (var f in body.Flags ?? [])
        {
            flags |= f switch
            {
                LedgerJson.DebitsMustNotExceedCredits => AccountFlags.DebitsMustNotExceedCredits,
                LedgerJson.CreditsMustNotExceedDebits => AccountFlags.CreditsMustNotExceedDebits,
                _ => AccountFlags.None,
            };
            if (f is not (LedgerJson.DebitsMustNotExceedCredits or LedgerJson.CreditsMustNotExceedDebits)) v.Add("flags", $"Unknown flag '{f}'.");
        }
        if (flags == (AccountFlags.DebitsMustNotExceedCredits | AccountFlags.CreditsMustNotExceedDebits))
            v.Add("flags", "The two flags are mutually exclusive.");
        if (body.OverdraftLimit is < 0) v.Add("overdraft_limit", "Must be 0 or more.");
        if (body.Code is < 0) v.Add("code", "Must be 0 or more.");
        v.Text("name", body.Name, LedgerValidation.NameLengthMax);
        v.Metadata("metadata", body.Metadata);
        v.Owner("owner", body.Owner);
        if (!v.Ok) return Invalid<AccountResponse>(v);

        if (await store.GetLedgerAsync(tenantId, body.Ledger!, ct) is not { } ledger)
            return LedgerNotFound<AccountResponse>(body.Ledger!, LedgerErrorKind.Unprocessable);
        var wanted = new AccountState
        {
            Id = body.Id!, LedgerId = ledger.Id, NormalBalance = normal!.Value, Code = body.Code ?? 0, Name = body.Name, Flags = flags,
            OverdraftLimit = body.OverdraftLimit ?? 0, Metadata = LedgerJson.MetadataText(body.Metadata), Owner = body.Owner, CreatedAtUs = store.NowUs(),
        };
        var payload = LedgerJson.Serialize(LedgerJson.ToResponse(wanted, ledger.Code));
        var (outcome, account) = await store.CreateAccountAsync(tenantId, wanted, payload, ct);
        var existingLedger = account.LedgerId == ledger.Id ? ledger : await store.GetLedgerAsync(tenantId, account.LedgerId, ct);
        var response = LedgerJson.ToResponse(account, existingLedger?.Code ?? account.LedgerId);
        return outcome switch
        {
            CreateOutcome.Created => LedgerResult<AccountResponse>.Created(response),
            CreateOutcome.Replayed => LedgerResult<AccountResponse>.Replayed(response),
            _ => LedgerResult<AccountResponse>.Fail(LedgerErrorKind.Conflict, LedgerCodes.AccountExistsWithDifferentFields,
                $"Account '{account.Id}' exists with different fields."),
        };
    }

    public async Task<LedgerResult<AccountResponse>> GetAccountAsync(string tenantId, string accountId, CancellationToken ct) =>
        await store.GetAccountAsync(tenantId, accountId, ct) is { } account && Reaches(account)
            ? LedgerResult<AccountResponse>.Ok(await ToResponseAsync(tenantId, account, ct))
            : AccountNotFound<AccountResponse>(accountId);

    public async Task<LedgerResult<Page<AccountResponse>>> ListAccountsAsync(string tenantId, AccountQuery query, CancellationToken ct)
    {
        if (PageLimit(query.Limit) is not { } take) return LimitProblem<Page<AccountResponse>>();
        var (found, ledgerId) = await LedgerFilterAsync(tenantId, query.Ledger, ct);
        if (!found) return LedgerNotFound<Page<AccountResponse>>(query.Ledger!, LedgerErrorKind.NotFound);
        var metadata = new List<(string, string)>();
        foreach (var (name, value) in query.Metadata ?? [])
        {
            if (name.Length is 0 or > 64 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-'))
                return Invalid<Page<AccountResponse>>("metadata." + name, "Metadata keys in filters are 1-64 characters of A-Z a-z 0-9 _ -");
            metadata.Add((name, value));
        }
        var (items, more) = await store.ListAccountsAsync(tenantId, ledgerId, Subject, metadata, take, Cursor.Decode(query.After), ct);
        var data = new List<AccountResponse>(items.Count);
        foreach (var a in items) data.Add(await ToResponseAsync(tenantId, a, ct));
        return LedgerResult<Page<AccountResponse>>.Ok(new(data, more ? Cursor.Encode(items[^1].Id) : null));
    }

    public async Task<LedgerResult<Page<EntryResponse>>> ListEntriesAsync(string tenantId, string accountId, EntryQuery query, CancellationToken ct)
    {
        if (PageLimit(query.Limit) is not { } take) return LimitProblem<Page<EntryResponse>>();
        if (await store.GetAccountLedgerIdAsync(tenantId, accountId, ct) is null || !await ReachesAsync(tenantId, accountId, ct))
            return AccountNotFound<Page<EntryResponse>>(accountId);
        var afterNo = Cursor.DecodeLong(query.After);
        var (items, more) = await store.ListEntriesAsync(tenantId, accountId, Micros(query.From), Micros(query.To), take, afterNo, ct);
        var data = items.Select(e => new EntryResponse(e.TransferId, e.Direction == EntryDirection.Debit ? "debit" : "credit", e.Amount, e.BalanceAfter,
            DbTime.FromMicros(e.PostedAtUs), DbTime.FromMicros(e.EffectiveAtUs))).ToList();
        return LedgerResult<Page<EntryResponse>>.Ok(new(data, more ? Cursor.Encode(items[^1].EntryNo.ToString(CultureInfo.InvariantCulture)) : null));
    }

    public async Task<LedgerResult<PointBalanceResponse>> GetBalanceAtAsync(string tenantId, string accountId, DateTimeOffset? at, string? basis,
        CancellationToken ct)
    {
        if (basis is not (null or "posted" or "effective")) return Invalid<PointBalanceResponse>("basis", "Either \"posted\" (default) or \"effective\".");
        if (await store.GetAccountAsync(tenantId, accountId, ct) is not { } account || !Reaches(account)) return AccountNotFound<PointBalanceResponse>(accountId);
        var when = at ?? clock.GetUtcNow();
        var balance = await store.BalanceAtAsync(tenantId, account, DbTime.ToMicros(when), basis == "effective", ct);
        return LedgerResult<PointBalanceResponse>.Ok(new PointBalanceResponse(account.Id, when, basis ?? "posted", balance));
    }

    // ---------------- transfers ----------------

    public async Task<LedgerResult<TransferResponse>> CreateTransferAsync(string tenantId, CreateTransferRequest body, CancellationToken ct)
    {
        var v = new LedgerValidation();
        v.Transfer("", body, inBatch: false);
        if (!v.Ok) return Invalid<TransferResponse>(v);
        if (body.DebitAccount == body.CreditAccount)
            return LedgerResult<TransferResponse>.Fail(LedgerErrorKind.Unprocessable, LedgerCodes.AccountsMustBeDifferent, "debit_account and credit_account must differ.");

        var debitReached = await ReachesAsync(tenantId, body.DebitAccount!, ct);
        var (ledger, op) = await RouteCreateAsync(tenantId, body, debitReached, ct);
        if (op.Rejected is { } rejected) return Failure<TransferResponse>(rejected);
        var result = (await pipeline.SubmitAsync(tenantId, ledger!, [op], ct))[0];
        return await RespondAsync(tenantId, result, LedgerOutcome.Created, ct);
    }

    public async Task<LedgerResult<BatchResponse>> CreateBatchAsync(string tenantId, BatchRequest body, CancellationToken ct)
    {
        var items = body.Transfers;
        if (items is null || items.Length == 0) return Invalid<BatchResponse>("transfers", $"Required: 1 to {LedgerOptions.BatchRequestTransfersMax} transfers.");
        if (items.Length > LedgerOptions.BatchRequestTransfersMax)
            return Invalid<BatchResponse>("transfers", $"At most {LedgerOptions.BatchRequestTransfersMax} transfers per batch (got {items.Length}).");
        var v = new LedgerValidation();
        for (var i = 0; i < items.Length; i++) v.Transfer($"transfers[{i}].", items[i], inBatch: true);
        if (!v.Ok) return Invalid<BatchResponse>(v);

        await store.WarmAccountLedgersAsync(tenantId, items.SelectMany(t => new[] { t.DebitAccount!, t.CreditAccount! }), ct);
        // An end user's item that debits an account it does not own fails alone (its linked chain with it), as if the
        // account did not exist.
        var owned = Subject is null ? null : await store.OwnedAccountIdsAsync(tenantId, Subject, items.Select(t => t.DebitAccount!), ct);
        var ops = new PostingOp[items.Length];
        var ledgers = new LedgerRecord?[items.Length];
        for (var i = 0; i < items.Length; i++)
            (ledgers[i], ops[i]) = await RouteCreateAsync(tenantId, items[i], owned?.Contains(items[i].DebitAccount!) ?? true, ct);
        if (body.Atomic == true)
            for (var i = 0; i < ops.Length; i++) ops[i].Linked = i < ops.Length - 1 || items[i].Linked == true;

        var results = await BatchRouter.SubmitAsync(pipeline, tenantId, ops, ledgers, ct);
        var output = new BatchItemResult[ops.Length];
        for (var i = 0; i < ops.Length; i++)
        {
            var r = results[i];
            output[i] = r.Status == OpStatus.Failed
                ? new BatchItemResult(i, "failed", r.Code, Subject is not null && r.Code == LedgerCodes.TransferExistsWithDifferentFields ? ExistsDetail : r.Detail, null)
                : new BatchItemResult(i, r.Status == OpStatus.Created ? "created" : "exists", null, null, await ToResponseAsync(tenantId, r.Transfer!, ct));
        }
        return LedgerResult<BatchResponse>.Ok(new BatchResponse(output));
    }

    /// <summary>Finds the ledger of a new transfer from its accounts (immutable, cached), or says why it cannot be posted.
    /// A debit account the caller does not reach (<paramref name="debitReached"/> false) is reported as missing.</summary>
    async Task<(LedgerRecord? Ledger, PostingOp Op)> RouteCreateAsync(string tenantId, CreateTransferRequest t, bool debitReached, CancellationToken ct)
    {
        var debitLedger = debitReached ? await store.GetAccountLedgerIdAsync(tenantId, t.DebitAccount!, ct) : null;
        var creditLedger = await store.GetAccountLedgerIdAsync(tenantId, t.CreditAccount!, ct);
        var rejected =
            debitLedger is null ? OpResult.Fail(LedgerCodes.AccountNotFound, $"Account '{t.DebitAccount}' does not exist.", "debit_account")
            : creditLedger is null ? OpResult.Fail(LedgerCodes.AccountNotFound, $"Account '{t.CreditAccount}' does not exist.", "credit_account")
            : debitLedger != creditLedger ? OpResult.Fail(LedgerCodes.LedgerMismatch, "Both accounts must belong to the same ledger.")
            : t.DebitAccount == t.CreditAccount ? OpResult.Fail(LedgerCodes.AccountsMustBeDifferent, "debit_account and credit_account must differ.")
            : null;
        var op = new PostingOp
        {
            Kind = OpKind.Create, TransferId = t.Id!, DebitAccountId = t.DebitAccount!, CreditAccountId = t.CreditAccount!, Amount = t.Amount ?? 0,
            Pending = t.Pending ?? false, TimeoutSeconds = t.TimeoutSeconds, Code = t.Code ?? 0, Description = t.Description,
            Metadata = LedgerJson.MetadataText(t.Metadata), EffectiveAtUs = t.EffectiveAt is { } e ? DbTime.ToMicros(e) : null,
            Linked = t.Linked ?? false, Rejected = rejected,
        };
        var ledger = debitLedger is null ? null : await store.GetLedgerAsync(tenantId, debitLedger, ct);
        return (ledger, op);
    }

    public Task<LedgerResult<TransferResponse>> PostPendingAsync(string tenantId, string transferId, long? amount, CancellationToken ct) =>
        ResolveAsync(tenantId, transferId, OpKind.Post, amount, ct);

    public Task<LedgerResult<TransferResponse>> VoidPendingAsync(string tenantId, string transferId, CancellationToken ct) =>
        ResolveAsync(tenantId, transferId, OpKind.Void, null, ct);

    public Task<LedgerResult<TransferResponse>> ExpirePendingAsync(string tenantId, string transferId, CancellationToken ct) =>
        ResolveAsync(tenantId, transferId, OpKind.Expire, null, ct);

    async Task<LedgerResult<TransferResponse>> ResolveAsync(string tenantId, string id, OpKind kind, long? amount, CancellationToken ct)
    {
        var v = new LedgerValidation();
        v.Amount("amount", amount, required: false);
        if (!v.Ok) return Invalid<TransferResponse>(v);
        var route = await store.GetTransferRouteAsync(tenantId, id, ct);
        if (route is null || !await SeesAsync(tenantId, route.Value.DebitAccountId, route.Value.CreditAccountId, ct))
            return LedgerResult<TransferResponse>.Fail(LedgerErrorKind.Unprocessable, LedgerCodes.PendingTransferNotFound, $"No transfer '{id}'.");
        if (Subject is not null && await EndUserResolveRefusalAsync(tenantId, id, kind, amount, route.Value, ct) is { } refused) return refused;
        var ledger = await store.GetLedgerAsync(tenantId, route.Value.LedgerId, ct);
        var op = new PostingOp { Kind = kind, TransferId = id, DebitAccountId = route.Value.DebitAccountId, CreditAccountId = route.Value.CreditAccountId, Amount = amount ?? 0 };
        var result = (await pipeline.SubmitAsync(tenantId, ledger!, [op], ct))[0];
        return await RespondAsync(tenantId, result, LedgerOutcome.Ok, ct);
    }

    /// <summary>An end user resolves a pending transfer only in the direction that costs itself: it posts in full what its
    /// own (debit) account reserved, or it voids what was reserved for its own (credit) account. A payer's void or partial
    /// post would take back money held for someone else; a payee's post would take the payer's money.</summary>
    async Task<LedgerResult<TransferResponse>?> EndUserResolveRefusalAsync(string tenantId, string id, OpKind kind, long? amount,
        (string LedgerId, string DebitAccountId, string CreditAccountId) route, CancellationToken ct)
    {
        // Expiring does only what the ledger's sweep would do anyway.
        if (kind == OpKind.Expire) return null;
        if (kind == OpKind.Void)
            return await ReachesAsync(tenantId, route.CreditAccountId, ct) ? null
                : ServerOnly<TransferResponse>("void a pending transfer from an end user's account (its payee may decline it)");
        if (!await ReachesAsync(tenantId, route.DebitAccountId, ct))
            return ServerOnly<TransferResponse>("post a pending transfer into an end user's account (its payer may post it)");
        if (amount is { } part && await store.GetTransferAsync(tenantId, id, ct) is { } pending && part < pending.Amount)
            return ServerOnly<TransferResponse>("post part of a pending transfer (the rest would return to the payer)");
        return null;
    }

    /// <summary>Whether the caller sees a transfer between these accounts: a server every one, an end user those with a
    /// side on an account it owns.</summary>
    async Task<bool> SeesAsync(string tenantId, string debitAccountId, string creditAccountId, CancellationToken ct) =>
        Subject is null || await ReachesAsync(tenantId, debitAccountId, ct) || await ReachesAsync(tenantId, creditAccountId, ct);

    public async Task<LedgerResult<TransferResponse>> ReverseAsync(string tenantId, string transferId, ReverseRequest body, CancellationToken ct)
    {
        var v = new LedgerValidation();
        v.Id("id", body.Id, required: true);
        v.Amount("amount", body.Amount, required: false);
        v.Text("description", body.Description, LedgerValidation.DescriptionLengthMax);
        v.Metadata("metadata", body.Metadata);
        if (!v.Ok) return Invalid<TransferResponse>(v);
        var found = await store.GetTransferRouteAsync(tenantId, transferId, ct);
        if (found is not { } route || !await SeesAsync(tenantId, route.DebitAccountId, route.CreditAccountId, ct))
            return LedgerResult<TransferResponse>.Fail(LedgerErrorKind.NotFound, LedgerCodes.TransferNotFound, $"No transfer '{transferId}'.");
        // A reversal debits the original's credit account: an end user may refund what it received, never take back what it paid.
        if (!await ReachesAsync(tenantId, route.CreditAccountId, ct) && ServerOnly<TransferResponse>("reverse a payment into someone else's account") is { } refused)
            return refused;
        var ledger = await store.GetLedgerAsync(tenantId, route.LedgerId, ct);
        var op = new PostingOp
        {
            Kind = OpKind.Create, TransferId = body.Id!, DebitAccountId = route.CreditAccountId, CreditAccountId = route.DebitAccountId,
            Amount = body.Amount ?? 0, Reverses = transferId, Description = body.Description ?? $"Reversal of {transferId}",
            Metadata = LedgerJson.MetadataText(body.Metadata),
        };
        var result = (await pipeline.SubmitAsync(tenantId, ledger!, [op], ct))[0];
        return await RespondAsync(tenantId, result, LedgerOutcome.Created, ct);
    }

    public async Task<LedgerResult<TransferResponse>> GetTransferAsync(string tenantId, string transferId, CancellationToken ct) =>
        await store.GetTransferAsync(tenantId, transferId, ct) is { } t && await SeesAsync(tenantId, t.DebitAccountId, t.CreditAccountId, ct)
            ? LedgerResult<TransferResponse>.Ok(await ToResponseAsync(tenantId, t, ct))
            : LedgerResult<TransferResponse>.Fail(LedgerErrorKind.NotFound, LedgerCodes.TransferNotFound, $"No transfer '{transferId}'.");

    public async Task<LedgerResult<Page<TransferResponse>>> ListTransfersAsync(string tenantId, TransferQuery query, CancellationToken ct)
    {
        if (PageLimit(query.Limit) is not { } take) return LimitProblem<Page<TransferResponse>>();
        var (found, ledgerId) = await LedgerFilterAsync(tenantId, query.Ledger, ct);
        if (!found) return LedgerNotFound<Page<TransferResponse>>(query.Ledger!, LedgerErrorKind.NotFound);
        (long, string)? cursor = null;
        if (Cursor.Decode(query.After) is { } c)
        {
            var colon = c.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0 || !long.TryParse(c.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var at))
                throw new InvalidCursorException("after");
            cursor = (at, c[(colon + 1)..]);
        }
        var (items, more) = await store.ListTransfersAsync(tenantId, ledgerId, query.Account, Subject, Micros(query.From), Micros(query.To), take, cursor, ct);
        var data = new List<TransferResponse>(items.Count);
        foreach (var t in items) data.Add(await ToResponseAsync(tenantId, t, ct));
        var next = more ? Cursor.Encode(string.Create(CultureInfo.InvariantCulture, $"{items[^1].CreatedAtUs}:{items[^1].Id}")) : null;
        return LedgerResult<Page<TransferResponse>>.Ok(new Page<TransferResponse>(data, next));
    }

    // ---------------- results ----------------

    async Task<LedgerResult<TransferResponse>> RespondAsync(string tenantId, OpResult result, LedgerOutcome success, CancellationToken ct)
    {
        if (result.Status == OpStatus.Failed) return Failure<TransferResponse>(result);
        var response = await ToResponseAsync(tenantId, result.Transfer!, ct);
        return result.Status == OpStatus.Exists ? LedgerResult<TransferResponse>.Replayed(response) : new(success, response, null);
    }

    LedgerResult<T> Failure<T>(OpResult r)
    {
        var kind = r.Code switch
        {
            LedgerCodes.TransferExistsWithDifferentFields => LedgerErrorKind.Conflict,
            LedgerCodes.TransferNotFound => LedgerErrorKind.NotFound,
            _ => LedgerErrorKind.Unprocessable,
        };
        // Transfer ids are unique in the tenant, so an end user reusing one learns that it exists, but not which of its
        // fields differ (the transfer may be someone else's).
        if (Subject is not null && r.Code == LedgerCodes.TransferExistsWithDifferentFields)
            return LedgerResult<T>.Fail(kind, r.Code, ExistsDetail, "id");
        return LedgerResult<T>.Fail(kind, r.Code!, r.Detail, r.Field);
    }

    const string ExistsDetail = "A transfer with this id exists with different fields.";

    async Task<TransferResponse> ToResponseAsync(string tenantId, TransferRecord t, CancellationToken ct) =>
        LedgerJson.ToResponse(t, (await store.GetLedgerAsync(tenantId, t.LedgerId, ct))?.Code ?? t.LedgerId);

    async Task<AccountResponse> ToResponseAsync(string tenantId, AccountState account, CancellationToken ct) =>
        LedgerJson.ToResponse(account, (await store.GetLedgerAsync(tenantId, account.LedgerId, ct))?.Code ?? account.LedgerId);

    static LedgerResult<T> Invalid<T>(LedgerValidation v) =>
        LedgerResult<T>.Fail(new LedgerError(LedgerErrorKind.Invalid, LedgerCodes.ValidationFailed, "One or more fields are invalid.", null,
            new Dictionary<string, string[]>(v.Errors, StringComparer.Ordinal)));

    static LedgerResult<T> Invalid<T>(string field, string message)
    {
        var v = new LedgerValidation();
        v.Add(field, message);
        return Invalid<T>(v);
    }

    static LedgerResult<T> AccountNotFound<T>(string id) =>
        LedgerResult<T>.Fail(LedgerErrorKind.NotFound, LedgerCodes.AccountNotFound, $"No account '{id}'.");

    static LedgerResult<T> LedgerNotFound<T>(string idOrCode, LedgerErrorKind kind) =>
        LedgerResult<T>.Fail(kind, LedgerCodes.LedgerNotFound, $"No ledger '{idOrCode}'.");

    /// <summary>A list's optional <c>ledger</c> filter (id or code) as the ledger's id; not found when it names none.</summary>
    async Task<(bool Found, string? LedgerId)> LedgerFilterAsync(string tenantId, string? idOrCode, CancellationToken ct) =>
        idOrCode is null ? (true, null)
        : await store.GetLedgerAsync(tenantId, idOrCode, ct) is { } l ? (true, l.Id)
        : (false, null);

    static int? PageLimit(int? limit) => limit switch
    {
        null => PageLimitDefault,
        >= 1 and <= LedgerOptions.PageLimitMax => limit,
        _ => null,
    };

    static LedgerResult<T> LimitProblem<T>() => Invalid<T>("limit", $"Must be from 1 to {LedgerOptions.PageLimitMax}.");

    static long? Micros(DateTimeOffset? t) => t is { } v ? DbTime.ToMicros(v) : null;

    // ---------------- set-based reads for settlement and reconciliation (issue #17) ----------------

    public async Task<LedgerResult<IReadOnlyList<AccountActivityResponse>>> GetAccountActivityAsync(string tenantId, AccountActivityQuery query,
        CancellationToken ct)
    {
        var ids = (query.Accounts ?? []).Distinct(StringComparer.Ordinal).ToArray();
        var v = new LedgerValidation();
        if (ids.Length is 0 or > AccountActivityQuery.AccountsMax) v.Add("accounts", $"Required: 1 to {AccountActivityQuery.AccountsMax} accounts.");
        foreach (var id in ids) v.Id("accounts", id, required: true);
        if (query.To <= query.From) v.Add("to", "Must be after from.");
        if (!v.Ok) return Invalid<IReadOnlyList<AccountActivityResponse>>(v);
        await store.WarmAccountLedgersAsync(tenantId, ids, ct);
        var owned = Subject is null ? null : await store.OwnedAccountIdsAsync(tenantId, Subject, ids, ct);
        foreach (var id in ids)
            if (await store.GetAccountLedgerIdAsync(tenantId, id, ct) is null || owned?.Contains(id) == false)
                return AccountNotFound<IReadOnlyList<AccountActivityResponse>>(id);
        var totals = await store.AccountActivityAsync(tenantId, ids, DbTime.ToMicros(query.From), DbTime.ToMicros(query.To), ct);
        var data = (query.Accounts ?? []).Distinct(StringComparer.Ordinal).Select(id => totals.TryGetValue(id, out var t)
            ? new AccountActivityResponse(id, t.Debits, t.Credits, t.DebitCount, t.CreditCount)
            : new AccountActivityResponse(id, 0, 0, 0, 0)).ToList();
        return LedgerResult<IReadOnlyList<AccountActivityResponse>>.Ok(data);
    }

    public async Task<LedgerResult<Page<TransferResponse>>> ListAccountTransfersAsync(string tenantId, AccountTransferQuery query, CancellationToken ct)
    {
        if (PageLimit(query.Limit) is not { } take) return LimitProblem<Page<TransferResponse>>();
        if (query.To <= query.From) return Invalid<Page<TransferResponse>>("to", "Must be after from.");
        if (await store.GetAccountLedgerIdAsync(tenantId, query.Account, ct) is null || !await ReachesAsync(tenantId, query.Account, ct))
            return AccountNotFound<Page<TransferResponse>>(query.Account);
        (long, string)? cursor = null;
        if (Cursor.Decode(query.After) is { } c)
        {
            var colon = c.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0 || !long.TryParse(c.AsSpan(0, colon), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var at))
                throw new InvalidCursorException("after");
            cursor = (at, c[(colon + 1)..]);
        }
        var (items, more) = await store.ListAccountTransfersAsync(tenantId, query.Account, DbTime.ToMicros(query.From), DbTime.ToMicros(query.To), take, cursor, ct);
        var data = new List<TransferResponse>(items.Count);
        foreach (var t in items) data.Add(await ToResponseAsync(tenantId, t, ct));
        var next = more ? Cursor.Encode(string.Create(CultureInfo.InvariantCulture, $"{items[^1].EffectiveAtUs}:{items[^1].Id}")) : null;
        return LedgerResult<Page<TransferResponse>>.Ok(new Page<TransferResponse>(data, next));
    }

    // ---------------- banking reads (issue #16) ----------------

    public async Task<LedgerResult<IReadOnlyList<EntryResponse>>> ListEntriesOfTransfersAsync(string tenantId, string accountId, EntriesOfTransfersQuery query,
        CancellationToken ct)
    {
        var ids = (query.TransferIds ?? []).Distinct(StringComparer.Ordinal).ToArray();
        if (ids.Length > EntriesOfTransfersQuery.TransferIdsMax)
            return Invalid<IReadOnlyList<EntryResponse>>("transfer_ids", $"At most {EntriesOfTransfersQuery.TransferIdsMax} ids.");
        if (ids.Any(id => !Ids.IsValid(id))) return Invalid<IReadOnlyList<EntryResponse>>("transfer_ids", "Every id is 1-64 characters of A-Z a-z 0-9 . _ : -");
        if (await store.GetAccountLedgerIdAsync(tenantId, accountId, ct) is null || !await ReachesAsync(tenantId, accountId, ct))
            return AccountNotFound<IReadOnlyList<EntryResponse>>(accountId);
        if (ids.Length == 0) return LedgerResult<IReadOnlyList<EntryResponse>>.Ok([]);
        var rows = await store.ListEntriesOfTransfersAsync(tenantId, accountId, ids, ct);
        return LedgerResult<IReadOnlyList<EntryResponse>>.Ok(rows.Select(e => new EntryResponse(e.TransferId,
            e.Direction == EntryDirection.Debit ? "debit" : "credit", e.Amount, e.BalanceAfter, DbTime.FromMicros(e.PostedAtUs),
            DbTime.FromMicros(e.EffectiveAtUs))).ToList());
    }
}
