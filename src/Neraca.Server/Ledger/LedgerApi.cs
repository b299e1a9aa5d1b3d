using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using Neraca.Hosting;
using Neraca.Storage;
using Neraca.Tenancy;

namespace Neraca.Ledger;

/// <summary>Services every ledger handler needs, bundled for <c>[AsParameters]</c>.</summary>
public sealed record LedgerServices(LedgerStore Store, PostingPipeline Pipeline, AuditChain Audit, CurrentTenant Tenant, HttpContext Http)
{
    public string TenantId => Tenant.Id;

    /// <summary>The <c>Idempotency-Key</c> of the request, if any: ids the client left out are derived from it, so a
    /// retry re-creates nothing even if the first response was lost.</summary>
    public string? IdempotencyKey => Http.Request.Headers["Idempotency-Key"].FirstOrDefault();

    public string NewId(string prefix, int index = 0) => IdempotencyKey is { Length: > 0 } key
        ? prefix + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{TenantId}\n{Http.Request.Path}\n{key}\n{index}")))[..26]
        : prefix + Ids.NewUlid();

    public void MarkReplayed() => Http.Response.Headers["Idempotent-Replayed"] = "true";
}

public static class LedgerApi
{
    const string Replayed = "Idempotent-Replayed";

    public static IEndpointRouteBuilder MapLedgerApi(this IEndpointRouteBuilder app)
    {
        var read = app.MapGroup("/v1").WithTags("Ledger").RequireAuthorization(Scopes.LedgerRead);
        var write = app.MapGroup("/v1").WithTags("Ledger").RequireAuthorization(Scopes.LedgerWrite);

        write.MapPost("/ledgers", CreateLedger);
        read.MapGet("/ledgers", ListLedgers);
        read.MapGet("/ledgers/{idOrCode}", GetLedger);
        app.MapGroup("/v1").WithTags("Ledger").RequireAuthorization(Scopes.AuditRead).MapGet("/ledgers/{idOrCode}/audit", AuditLedger);

        write.MapPost("/accounts", CreateAccount);
        read.MapGet("/accounts", ListAccounts);
        read.MapGet("/accounts/{id}", GetAccount);
        read.MapGet("/accounts/{id}/entries", ListEntries);
        read.MapGet("/accounts/{id}/balance", GetBalanceAt);

        write.MapPost("/transfers", CreateTransfer);
        var batchBodyMax = app.ServiceProvider.GetRequiredService<IOptions<NeracaOptions>>().Value.BatchRequestBodyBytesMax;
        write.MapPost("/transfers/batch", CreateBatch).WithMetadata(new RequestSizeLimitAttribute(batchBodyMax));
        write.MapPost("/transfers/{id}/post", PostPending);
        write.MapPost("/transfers/{id}/void", VoidPending);
        write.MapPost("/transfers/{id}/reverse", Reverse);
        read.MapGet("/transfers", ListTransfers);
        read.MapGet("/transfers/{id}", GetTransfer);
        return app;
    }

    // ---------------- ledgers ----------------

    static async Task<Results<Created<LedgerResponse>, Ok<LedgerResponse>, ProblemHttpResult, ValidationProblem>> CreateLedger(
        CreateLedgerRequest body, [AsParameters] LedgerServices s, CancellationToken ct)
    {
        var v = new LedgerValidation();
        v.Id("code", body.Code, required: true);
        if (body.Asset is null) v.Add("asset", "Required.");
        else if (body.Asset.Length is < 2 or > 12 || !body.Asset.All(c => char.IsAsciiLetterUpper(c) || char.IsAsciiDigit(c)))
            v.Add("asset", "2-12 characters of A-Z 0-9 (an ISO 4217 code such as IDR).");
        if (body.Scale is null) v.Add("scale", "Required.");
        else if (body.Scale is < 0 or > 18) v.Add("scale", "Must be from 0 to 18.");
        v.Text("name", body.Name, LedgerValidation.NameLengthMax);
        v.Metadata("metadata", body.Metadata);
        if (!v.Ok) return Problems.Validation(v.Errors);

        var wanted = new LedgerRecord(s.NewId("led_"), body.Code!, body.Asset!, body.Scale!.Value, body.Name, LedgerJson.MetadataText(body.Metadata), s.Store.NowUs());
        var (outcome, ledger) = await s.Store.CreateLedgerAsync(s.TenantId, wanted, ct);
        var response = LedgerJson.ToResponse(ledger);
        switch (outcome)
        {
            case CreateOutcome.Created:
                return TypedResults.Created($"/v1/ledgers/{ledger.Code}", response);
            case CreateOutcome.Replayed:
                s.MarkReplayed();
                return TypedResults.Ok(response);
            default:
                return Problems.Of(409, "ledger_exists", "Ledger exists", $"Ledger '{ledger.Code}' exists with different fields.");
        }
    }

    static async Task<Results<Ok<Page<LedgerResponse>>, ValidationProblem>> ListLedgers(
        [AsParameters] LedgerServices s, int? limit, string? after, CancellationToken ct)
    {
        if (PageLimit(limit) is not { } take) return LimitProblem();
        var (items, more) = await s.Store.ListLedgersAsync(s.TenantId, take, Cursor.Decode(after), ct);
        return TypedResults.Ok(new Page<LedgerResponse>(items.Select(LedgerJson.ToResponse).ToList(), more ? Cursor.Encode(items[^1].Code) : null));
    }

    static async Task<Results<Ok<LedgerResponse>, ProblemHttpResult>> GetLedger(string idOrCode, [AsParameters] LedgerServices s, CancellationToken ct) =>
        await s.Store.GetLedgerAsync(s.TenantId, idOrCode, ct) is { } ledger
            ? TypedResults.Ok(LedgerJson.ToResponse(ledger))
            : Problems.NotFound("ledger_not_found", $"No ledger '{idOrCode}'.");

    static async Task<Results<Ok<AuditResponse>, ProblemHttpResult>> AuditLedger(string idOrCode, [AsParameters] LedgerServices s, CancellationToken ct)
    {
        if (await s.Store.GetLedgerAsync(s.TenantId, idOrCode, ct) is not { } ledger)
            return Problems.NotFound("ledger_not_found", $"No ledger '{idOrCode}'.");
        var r = await s.Audit.VerifyIncrementalAsync(s.TenantId, ledger.Id, ct);
        return TypedResults.Ok(new AuditResponse(r.Verified, r.Links, r.Head, r.FirstBadLink, r.Problem));
    }

    // ---------------- accounts ----------------

    static async Task<Results<Created<AccountResponse>, Ok<AccountResponse>, ProblemHttpResult, ValidationProblem>> CreateAccount(
        CreateAccountRequest body, [AsParameters] LedgerServices s, CancellationToken ct)
    {
        var v = new LedgerValidation();
        v.Id("id", body.Id, required: false);
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
        if (!v.Ok) return Problems.Validation(v.Errors);

        if (await s.Store.GetLedgerAsync(s.TenantId, body.Ledger!, ct) is not { } ledger)
            return Problems.Of(422, "ledger_not_found", "Ledger not found", $"No ledger '{body.Ledger}'.");
        var wanted = new AccountState
        {
            Id = body.Id ?? s.NewId("acc_"), LedgerId = ledger.Id, NormalBalance = normal!.Value, Code = body.Code ?? 0, Name = body.Name, Flags = flags,
            OverdraftLimit = body.OverdraftLimit ?? 0, Metadata = LedgerJson.MetadataText(body.Metadata), CreatedAtUs = s.Store.NowUs(),
        };
        var payload = LedgerJson.Serialize(LedgerJson.ToResponse(wanted, ledger.Code));
        var (outcome, account) = await s.Store.CreateAccountAsync(s.TenantId, wanted, payload, ct);
        var existingLedger = account.LedgerId == ledger.Id ? ledger : await s.Store.GetLedgerAsync(s.TenantId, account.LedgerId, ct);
        var response = LedgerJson.ToResponse(account, existingLedger?.Code ?? account.LedgerId);
        switch (outcome)
        {
            case CreateOutcome.Created:
                return TypedResults.Created($"/v1/accounts/{account.Id}", response);
            case CreateOutcome.Replayed:
                s.MarkReplayed();
                return TypedResults.Ok(response);
            default:
                return Problems.Of(409, "account_exists_with_different_fields", "Account exists", $"Account '{account.Id}' exists with different fields.");
        }
    }

    static async Task<Results<Ok<AccountResponse>, ProblemHttpResult>> GetAccount(string id, [AsParameters] LedgerServices s, CancellationToken ct)
    {
        if (await s.Store.GetAccountAsync(s.TenantId, id, ct) is not { } account) return AccountNotFound(id);
        return TypedResults.Ok(await ToResponseAsync(s, account, ct));
    }

    static async Task<AccountResponse> ToResponseAsync(LedgerServices s, AccountState account, CancellationToken ct) =>
        LedgerJson.ToResponse(account, (await s.Store.GetLedgerAsync(s.TenantId, account.LedgerId, ct))?.Code ?? account.LedgerId);

    static ProblemHttpResult AccountNotFound(string id) => Problems.NotFound(LedgerCodes.AccountNotFound, $"No account '{id}'.");

    static async Task<Results<Ok<Page<AccountResponse>>, ProblemHttpResult, ValidationProblem>> ListAccounts(
        [AsParameters] LedgerServices s, string? ledger, int? limit, string? after, CancellationToken ct)
    {
        if (PageLimit(limit) is not { } take) return LimitProblem();
        string? ledgerId = null;
        if (ledger is not null)
        {
            if (await s.Store.GetLedgerAsync(s.TenantId, ledger, ct) is not { } l) return Problems.NotFound("ledger_not_found", $"No ledger '{ledger}'.");
            ledgerId = l.Id;
        }
        var metadata = new List<(string, string)>();
        foreach (var (key, value) in s.Http.Request.Query)
        {
            if (!key.StartsWith("metadata.", StringComparison.Ordinal)) continue;
            var name = key["metadata.".Length..];
            if (name.Length is 0 or > 64 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-'))
                return Problems.Validation(key, "Metadata keys in filters are 1-64 characters of A-Z a-z 0-9 _ -");
            metadata.Add((name, value.ToString()));
        }
        var (items, more) = await s.Store.ListAccountsAsync(s.TenantId, ledgerId, metadata, take, Cursor.Decode(after), ct);
        var data = new List<AccountResponse>(items.Count);
        foreach (var a in items) data.Add(await ToResponseAsync(s, a, ct));
        return TypedResults.Ok(new Page<AccountResponse>(data, more ? Cursor.Encode(items[^1].Id) : null));
    }

    static async Task<Results<Ok<Page<EntryResponse>>, ProblemHttpResult, ValidationProblem>> ListEntries(
        string id, [AsParameters] LedgerServices s, DateTimeOffset? from, DateTimeOffset? to, int? limit, string? after, CancellationToken ct)
    {
        if (PageLimit(limit) is not { } take) return LimitProblem();
        if (await s.Store.GetAccountLedgerIdAsync(s.TenantId, id, ct) is null) return AccountNotFound(id);
        var afterNo = Cursor.DecodeLong(after);
        var (items, more) = await s.Store.ListEntriesAsync(s.TenantId, id, Micros(from), Micros(to), take, afterNo, ct);
        var data = items.Select(e => new EntryResponse(e.TransferId, e.Direction == EntryDirection.Debit ? "debit" : "credit", e.Amount, e.BalanceAfter,
            DbTime.FromMicros(e.PostedAtUs), DbTime.FromMicros(e.EffectiveAtUs))).ToList();
        return TypedResults.Ok(new Page<EntryResponse>(data, more ? Cursor.Encode(items[^1].EntryNo.ToString(CultureInfo.InvariantCulture)) : null));
    }

    static async Task<Results<Ok<PointBalanceResponse>, ProblemHttpResult, ValidationProblem>> GetBalanceAt(
        string id, [AsParameters] LedgerServices s, DateTimeOffset? at, string? basis, CancellationToken ct)
    {
        if (basis is not (null or "posted" or "effective")) return Problems.Validation("basis", "Either \"posted\" (default) or \"effective\".");
        if (await s.Store.GetAccountAsync(s.TenantId, id, ct) is not { } account) return AccountNotFound(id);
        var when = at ?? DateTimeOffset.UtcNow;
        var balance = await s.Store.BalanceAtAsync(s.TenantId, account, DbTime.ToMicros(when), basis == "effective", ct);
        return TypedResults.Ok(new PointBalanceResponse(account.Id, when, basis ?? "posted", balance));
    }

    // ---------------- transfers ----------------

    static async Task<Results<Created<TransferResponse>, Ok<TransferResponse>, ProblemHttpResult, ValidationProblem>> CreateTransfer(
        CreateTransferRequest body, [AsParameters] LedgerServices s, CancellationToken ct)
    {
        var v = new LedgerValidation();
        v.Transfer("", body, inBatch: false);
        if (!v.Ok) return Problems.Validation(v.Errors);
        if (body.DebitAccount == body.CreditAccount)
            return Problems.Of(422, LedgerCodes.AccountsMustBeDifferent, "Accounts must be different", "debit_account and credit_account must differ.");

        var (ledger, op) = await RouteCreateAsync(s, body, body.Id ?? s.NewId("trf_"), ct);
        if (op.Rejected is { } rejected) return Failure(rejected);
        var result = (await s.Pipeline.SubmitAsync(s.TenantId, ledger!, [op], ct))[0];
        return await RespondAsync(s, result, created: true, ct);
    }

    /// <summary>Finds the ledger of a new transfer from its accounts (immutable, cached), or says why it cannot be posted.</summary>
    static async Task<(LedgerRecord? Ledger, PostingOp Op)> RouteCreateAsync(LedgerServices s, CreateTransferRequest t, string id, CancellationToken ct)
    {
        var debitLedger = await s.Store.GetAccountLedgerIdAsync(s.TenantId, t.DebitAccount!, ct);
        var creditLedger = await s.Store.GetAccountLedgerIdAsync(s.TenantId, t.CreditAccount!, ct);
        var rejected =
            debitLedger is null ? OpResult.Fail(LedgerCodes.AccountNotFound, $"Account '{t.DebitAccount}' does not exist.", "debit_account")
            : creditLedger is null ? OpResult.Fail(LedgerCodes.AccountNotFound, $"Account '{t.CreditAccount}' does not exist.", "credit_account")
            : debitLedger != creditLedger ? OpResult.Fail(LedgerCodes.LedgerMismatch, "Both accounts must belong to the same ledger.")
            : t.DebitAccount == t.CreditAccount ? OpResult.Fail(LedgerCodes.AccountsMustBeDifferent, "debit_account and credit_account must differ.")
            : null;
        var op = new PostingOp
        {
            Kind = OpKind.Create, TransferId = id, DebitAccountId = t.DebitAccount!, CreditAccountId = t.CreditAccount!, Amount = t.Amount ?? 0,
            Pending = t.Pending ?? false, TimeoutSeconds = t.TimeoutSeconds, Code = t.Code ?? 0, Description = t.Description,
            Metadata = LedgerJson.MetadataText(t.Metadata), EffectiveAtUs = t.EffectiveAt is { } e ? DbTime.ToMicros(e) : null,
            Linked = t.Linked ?? false, Rejected = rejected,
        };
        var ledger = debitLedger is null ? null : await s.Store.GetLedgerAsync(s.TenantId, debitLedger, ct);
        return (ledger, op);
    }

    static async Task<Results<Created<TransferResponse>, Ok<TransferResponse>, ProblemHttpResult, ValidationProblem>> RespondAsync(
        LedgerServices s, OpResult result, bool created, CancellationToken ct)
    {
        if (result.Status == OpStatus.Failed) return Failure(result);
        var response = await ToResponseAsync(s, result.Transfer!, ct);
        if (result.Status == OpStatus.Exists)
        {
            s.MarkReplayed();
            return TypedResults.Ok(response);
        }
        return created ? TypedResults.Created($"/v1/transfers/{response.Id}", response) : TypedResults.Ok(response);
    }

    static ProblemHttpResult Failure(OpResult r)
    {
        var status = r.Code switch
        {
            LedgerCodes.TransferExistsWithDifferentFields => 409,
            LedgerCodes.TransferNotFound => 404,
            _ => 422,
        };
        var extra = r.Field is null ? null : new Dictionary<string, object?> { ["field"] = r.Field };
        return Problems.Of(status, r.Code!, Title(r.Code!), r.Detail, extra);
    }

    static string Title(string code) => char.ToUpperInvariant(code[0]) + code[1..].Replace('_', ' ');

    static async Task<TransferResponse> ToResponseAsync(LedgerServices s, TransferRecord t, CancellationToken ct) =>
        LedgerJson.ToResponse(t, (await s.Store.GetLedgerAsync(s.TenantId, t.LedgerId, ct))?.Code ?? t.LedgerId);

    static async Task<Results<Ok<BatchResponse>, ProblemHttpResult, ValidationProblem>> CreateBatch(
        BatchRequest body, [AsParameters] LedgerServices s, CancellationToken ct)
    {
        var items = body.Transfers;
        if (items is null || items.Length == 0) return Problems.Validation("transfers", "Required: 1 to 8000 transfers.");
        if (items.Length > LedgerOptions.BatchRequestTransfersMax)
            return Problems.Validation("transfers", $"At most {LedgerOptions.BatchRequestTransfersMax} transfers per batch (got {items.Length}).");
        var v = new LedgerValidation();
        for (var i = 0; i < items.Length; i++) v.Transfer($"transfers[{i}].", items[i], inBatch: true);
        if (!v.Ok) return Problems.Validation(v.Errors);

        await s.Store.WarmAccountLedgersAsync(s.TenantId, items.SelectMany(t => new[] { t.DebitAccount!, t.CreditAccount! }), ct);
        var ops = new PostingOp[items.Length];
        var ledgers = new LedgerRecord?[items.Length];
        for (var i = 0; i < items.Length; i++)
            (ledgers[i], ops[i]) = await RouteCreateAsync(s, items[i], items[i].Id ?? s.NewId("trf_", i), ct);
        if (body.Atomic == true)
            for (var i = 0; i < ops.Length; i++) ops[i].Linked = i < ops.Length - 1 || items[i].Linked == true;

        var results = await BatchRouter.SubmitAsync(s.Pipeline, s.TenantId, ops, ledgers, ct);
        var output = new BatchItemResult[ops.Length];
        for (var i = 0; i < ops.Length; i++)
        {
            var r = results[i];
            output[i] = r.Status == OpStatus.Failed
                ? new BatchItemResult(i, "failed", r.Code, r.Detail, null)
                : new BatchItemResult(i, r.Status == OpStatus.Created ? "created" : "exists", null, null, await ToResponseAsync(s, r.Transfer!, ct));
        }
        return TypedResults.Ok(new BatchResponse(output));
    }

    static Task<Results<Created<TransferResponse>, Ok<TransferResponse>, ProblemHttpResult, ValidationProblem>> PostPending(
        string id, PostPendingRequest? body, [AsParameters] LedgerServices s, CancellationToken ct) =>
        ResolveAsync(id, OpKind.Post, body?.Amount, s, ct);

    static Task<Results<Created<TransferResponse>, Ok<TransferResponse>, ProblemHttpResult, ValidationProblem>> VoidPending(
        string id, [AsParameters] LedgerServices s, CancellationToken ct) =>
        ResolveAsync(id, OpKind.Void, null, s, ct);

    static async Task<Results<Created<TransferResponse>, Ok<TransferResponse>, ProblemHttpResult, ValidationProblem>> ResolveAsync(
        string id, OpKind kind, long? amount, LedgerServices s, CancellationToken ct)
    {
        var v = new LedgerValidation();
        v.Amount("amount", amount, required: false);
        if (!v.Ok) return Problems.Validation(v.Errors);
        if (await s.Store.GetTransferRouteAsync(s.TenantId, id, ct) is not { } route)
            return Problems.Of(422, LedgerCodes.PendingTransferNotFound, "Pending transfer not found", $"No transfer '{id}'.");
        var ledger = await s.Store.GetLedgerAsync(s.TenantId, route.LedgerId, ct);
        var op = new PostingOp { Kind = kind, TransferId = id, DebitAccountId = route.DebitAccountId, CreditAccountId = route.CreditAccountId, Amount = amount ?? 0 };
        var result = (await s.Pipeline.SubmitAsync(s.TenantId, ledger!, [op], ct))[0];
        return await RespondAsync(s, result, created: false, ct);
    }

    static async Task<Results<Created<TransferResponse>, Ok<TransferResponse>, ProblemHttpResult, ValidationProblem>> Reverse(
        string id, ReverseRequest? body, [AsParameters] LedgerServices s, CancellationToken ct)
    {
        body ??= new ReverseRequest(null, null, null, null);
        var v = new LedgerValidation();
        v.Id("id", body.Id, required: false);
        v.Amount("amount", body.Amount, required: false);
        v.Text("description", body.Description, LedgerValidation.DescriptionLengthMax);
        v.Metadata("metadata", body.Metadata);
        if (!v.Ok) return Problems.Validation(v.Errors);
        if (await s.Store.GetTransferRouteAsync(s.TenantId, id, ct) is not { } route)
            return Problems.NotFound(LedgerCodes.TransferNotFound, $"No transfer '{id}'.");
        var ledger = await s.Store.GetLedgerAsync(s.TenantId, route.LedgerId, ct);
        var op = new PostingOp
        {
            Kind = OpKind.Create, TransferId = body.Id ?? s.NewId("trf_"), DebitAccountId = route.CreditAccountId, CreditAccountId = route.DebitAccountId,
            Amount = body.Amount ?? 0, Reverses = id, Description = body.Description ?? $"Reversal of {id}", Metadata = LedgerJson.MetadataText(body.Metadata),
        };
        var result = (await s.Pipeline.SubmitAsync(s.TenantId, ledger!, [op], ct))[0];
        return await RespondAsync(s, result, created: true, ct);
    }

    static async Task<Results<Ok<TransferResponse>, ProblemHttpResult>> GetTransfer(string id, [AsParameters] LedgerServices s, CancellationToken ct) =>
        await s.Store.GetTransferAsync(s.TenantId, id, ct) is { } t
            ? TypedResults.Ok(await ToResponseAsync(s, t, ct))
            : Problems.NotFound(LedgerCodes.TransferNotFound, $"No transfer '{id}'.");

    static async Task<Results<Ok<Page<TransferResponse>>, ProblemHttpResult, ValidationProblem>> ListTransfers(
        [AsParameters] LedgerServices s, string? ledger, string? account, DateTimeOffset? from, DateTimeOffset? to, int? limit, string? after, CancellationToken ct)
    {
        if (PageLimit(limit) is not { } take) return LimitProblem();
        string? ledgerId = null;
        if (ledger is not null)
        {
            if (await s.Store.GetLedgerAsync(s.TenantId, ledger, ct) is not { } l) return Problems.NotFound("ledger_not_found", $"No ledger '{ledger}'.");
            ledgerId = l.Id;
        }
        (long, string)? cursor = null;
        if (Cursor.Decode(after) is { } c)
        {
            var colon = c.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0 || !long.TryParse(c.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var at))
                throw new InvalidCursorException("after");
            cursor = (at, c[(colon + 1)..]);
        }
        var (items, more) = await s.Store.ListTransfersAsync(s.TenantId, ledgerId, account, Micros(from), Micros(to), take, cursor, ct);
        var data = new List<TransferResponse>(items.Count);
        foreach (var t in items) data.Add(await ToResponseAsync(s, t, ct));
        var next = more ? Cursor.Encode(string.Create(CultureInfo.InvariantCulture, $"{items[^1].CreatedAtUs}:{items[^1].Id}")) : null;
        return TypedResults.Ok(new Page<TransferResponse>(data, next));
    }

    // ---------------- helpers ----------------

    static int? PageLimit(int? limit) => limit switch
    {
        null => 100,
        >= 1 and <= LedgerOptions.PageLimitMax => limit,
        _ => null,
    };

    static ValidationProblem LimitProblem() => Problems.Validation("limit", $"Must be from 1 to {LedgerOptions.PageLimitMax}.");

    static long? Micros(DateTimeOffset? t) => t is { } v ? DbTime.ToMicros(v) : null;
}
