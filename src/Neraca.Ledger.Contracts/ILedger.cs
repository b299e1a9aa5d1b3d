namespace Neraca.Ledger;

/// <summary>The in-process ledger API: the one way a product moves money. Every method returns what the HTTP API
/// returns (same shapes, same error codes); the HTTP endpoints are a thin mapping onto it.</summary>
/// <remarks>
/// <para>Ids are the idempotency anchor. In-process callers must pass the ids of accounts and transfers, derived from
/// their own keys (<c>ewa:wd_123:advance</c>), so a retried step finds the first result instead of moving money twice:
/// the same id with the same fields returns <see cref="LedgerOutcome.Replayed"/>, with different fields a
/// <c>transfer_exists_with_different_fields</c> conflict naming the field.</para>
/// <para>Input is validated before it reaches the posting pipeline, so a bad operation fails alone and never the group
/// commit it would have joined. A result is returned only after its transaction committed durably. A full pipeline
/// throws <c>OverloadedException</c>: retry later with the same ids.</para>
/// </remarks>
public interface ILedger
{
    /// <summary>The ledger as the end user <paramref name="subject"/> sees it: the same methods, restricted to the
    /// accounts the subject owns (<see cref="CreateAccountRequest.Owner"/>). Use it for every call made on behalf of an
    /// end user; the plain ledger is tenant-wide, for servers.</summary>
    /// <remarks>
    /// <para>Reads: accounts, balances and entries of the subject's accounts only; transfers with at least one side on
    /// them; anything else answers as if it did not exist (<c>account_not_found</c>, <c>transfer_not_found</c>).</para>
    /// <para>Money: a new transfer (alone, in a batch or as a reversal) must debit an account the subject owns; it may
    /// credit any account (paying someone). A pending transfer may be posted in full by the owner of its debit account
    /// and voided by the owner of its credit account: the end user can only give up its own money. Creating ledgers and
    /// accounts, partial posts and the other directions answer <c>server_key_required</c>.</para>
    /// </remarks>
    ILedger For(string subject);

    Task<LedgerResult<LedgerResponse>> CreateLedgerAsync(string tenantId, CreateLedgerRequest request, CancellationToken ct);
    Task<LedgerResult<LedgerResponse>> GetLedgerAsync(string tenantId, string idOrCode, CancellationToken ct);
    Task<LedgerResult<Page<LedgerResponse>>> ListLedgersAsync(string tenantId, PageRequest page, CancellationToken ct);
    /// <summary>Verifies the ledger's audit hash chain from its newest checkpoint (or the head last verified) and names the first bad
    /// link; the full recomputation is <c>neraca audit verify</c> and the nightly <c>audit.verify</c> job.</summary>
    Task<LedgerResult<AuditResponse>> VerifyAuditAsync(string tenantId, string idOrCode, CancellationToken ct);

    Task<LedgerResult<AccountResponse>> CreateAccountAsync(string tenantId, CreateAccountRequest request, CancellationToken ct);
    Task<LedgerResult<AccountResponse>> GetAccountAsync(string tenantId, string accountId, CancellationToken ct);
    Task<LedgerResult<Page<AccountResponse>>> ListAccountsAsync(string tenantId, AccountQuery query, CancellationToken ct);
    /// <summary>The balance at a moment, by posting time (<c>posted</c>, default) or business time (<c>effective</c>).</summary>
    Task<LedgerResult<PointBalanceResponse>> GetBalanceAtAsync(string tenantId, string accountId, DateTimeOffset? at, string? basis, CancellationToken ct);
    /// <summary>An account's entries with the running balance after each, oldest first.</summary>
    Task<LedgerResult<Page<EntryResponse>>> ListEntriesAsync(string tenantId, string accountId, EntryQuery query, CancellationToken ct);

    Task<LedgerResult<TransferResponse>> CreateTransferAsync(string tenantId, CreateTransferRequest request, CancellationToken ct);
    /// <summary>Up to 8,000 transfers; <c>linked</c> chains succeed or fail as a whole, <c>atomic</c> links them all.</summary>
    Task<LedgerResult<BatchResponse>> CreateBatchAsync(string tenantId, BatchRequest request, CancellationToken ct);
    /// <summary>Posts a pending transfer, all of it or <paramref name="amount"/> (the rest is released).</summary>
    Task<LedgerResult<TransferResponse>> PostPendingAsync(string tenantId, string transferId, long? amount, CancellationToken ct);
    Task<LedgerResult<TransferResponse>> VoidPendingAsync(string tenantId, string transferId, CancellationToken ct);
    /// <summary>Expires a pending transfer whose timeout has passed now, instead of at the ledger's next sweep (a void
    /// past the timeout fails with <c>pending_transfer_expired</c>). Idempotent; before the timeout it fails with
    /// <c>pending_transfer_not_pending</c> and changes nothing.</summary>
    Task<LedgerResult<TransferResponse>> ExpirePendingAsync(string tenantId, string transferId, CancellationToken ct);
    /// <summary>A new opposite transfer linked to the original (all of it or part).</summary>
    Task<LedgerResult<TransferResponse>> ReverseAsync(string tenantId, string transferId, ReverseRequest request, CancellationToken ct);
    Task<LedgerResult<TransferResponse>> GetTransferAsync(string tenantId, string transferId, CancellationToken ct);
    Task<LedgerResult<Page<TransferResponse>>> ListTransfersAsync(string tenantId, TransferQuery query, CancellationToken ct);

    // ---------------- set-based reads for settlement and reconciliation (issue #17) ----------------

    /// <summary>Per account, the posted debits and credits (sums and counts of entries) whose business time
    /// (<c>effective_at</c>) lies in [<see cref="AccountActivityQuery.From"/>, <see cref="AccountActivityQuery.To"/>): one
    /// set-based query for up to <see cref="AccountActivityQuery.AccountsMax"/> accounts. Accounts without entries in the
    /// window answer zeros; an unknown (or, for an end user, not owned) account fails with <c>account_not_found</c>.</summary>
    Task<LedgerResult<IReadOnlyList<AccountActivityResponse>>> GetAccountActivityAsync(string tenantId, AccountActivityQuery query, CancellationToken ct);

    /// <summary>The transfers with a side on one account whose business time lies in [From, To), every status, ordered by
    /// (<c>effective_at</c>, <c>id</c>) and paged with <c>limit</c>/<c>after</c> like every list.</summary>
    Task<LedgerResult<Page<TransferResponse>>> ListAccountTransfersAsync(string tenantId, AccountTransferQuery query, CancellationToken ct);

    // ---- banking reads (issue #16) ----

    /// <summary>An account's entries of the given transfers (at most <c>1,000</c> ids), with the running balance after
    /// each, oldest first: one query for a page of search results found in a product's own table (banking history), so
    /// the product never asks transfer by transfer. Ids without an entry on the account are left out.</summary>
    Task<LedgerResult<IReadOnlyList<EntryResponse>>> ListEntriesOfTransfersAsync(string tenantId, string accountId, EntriesOfTransfersQuery query,
        CancellationToken ct);
}

/// <summary>How a call ended. Values are part of the contract: never renumber.</summary>
public enum LedgerOutcome
{
    /// <summary>Read, or changed without creating (a pending transfer posted or voided).</summary>
    Ok = 0,
    Created = 1,
    /// <summary>The same id with the same fields was seen before: the original result, nothing changed.</summary>
    Replayed = 2,
    Failed = 3,
}

/// <summary>The class of a failure, which the HTTP API maps to a status (400, 404, 409, 422).</summary>
public enum LedgerErrorKind
{
    Invalid = 1,
    NotFound = 2,
    Conflict = 3,
    Unprocessable = 4,
    /// <summary>Allowed to servers only (HTTP 403).</summary>
    Forbidden = 5,
}

/// <summary>Why a call failed: a stable <see cref="Code"/> (<see cref="LedgerCodes"/>), a human detail, the field at
/// fault, and for <c>validation_failed</c> every field's messages keyed by JSON path.</summary>
public sealed record LedgerError(LedgerErrorKind Kind, string Code, string? Detail, string? Field = null,
    IReadOnlyDictionary<string, string[]>? Errors = null);

/// <summary>A value or an error, never both.</summary>
public sealed record LedgerResult<T>(LedgerOutcome Outcome, T? Value, LedgerError? Error)
{
    public bool Succeeded => Outcome != LedgerOutcome.Failed;

    public static LedgerResult<T> Ok(T value) => new(LedgerOutcome.Ok, value, null);
    public static LedgerResult<T> Created(T value) => new(LedgerOutcome.Created, value, null);
    public static LedgerResult<T> Replayed(T value) => new(LedgerOutcome.Replayed, value, null);
    public static LedgerResult<T> Fail(LedgerError error) => new(LedgerOutcome.Failed, default, error);
    public static LedgerResult<T> Fail(LedgerErrorKind kind, string code, string? detail, string? field = null) => Fail(new LedgerError(kind, code, detail, field));
}

/// <summary>A page of a list: <c>limit</c> from 1 to 1,000 (default 100), <c>after</c> = a previous page's <c>next_cursor</c>.</summary>
public sealed record PageRequest(int? Limit = null, string? After = null);

public sealed record AccountQuery(string? Ledger = null, IReadOnlyList<KeyValuePair<string, string>>? Metadata = null, int? Limit = null, string? After = null);

public sealed record EntryQuery(DateTimeOffset? From = null, DateTimeOffset? To = null, int? Limit = null, string? After = null);

public sealed record TransferQuery(string? Ledger = null, string? Account = null, DateTimeOffset? From = null, DateTimeOffset? To = null,
    int? Limit = null, string? After = null);
