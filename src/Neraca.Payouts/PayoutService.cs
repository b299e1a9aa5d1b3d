using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using Neraca.Hosting;
using Neraca.Jobs;
using Neraca.Ledger;
using Neraca.Security;
using Neraca.Storage;

namespace Neraca.Payouts;

/// <summary>Stable error codes of payouts (docs/errors.md), besides the ledger's (<c>account_not_found</c>,
/// <c>insufficient_funds</c>, ...), which pass through unchanged.</summary>
public static class PayoutCodes
{
    public const string ValidationFailed = "validation_failed";
    public const string PayoutNotFound = "payout_not_found";
    /// <summary>The id names a payout with other fields.</summary>
    public const string PayoutConflict = "payout_conflict";

    // Why a payout failed (failure_code of a failed payout).
    public const string InvalidDestination = "invalid_destination";
    public const string ProviderInsufficientBalance = "provider_insufficient_balance";
    public const string ProviderRejected = "provider_rejected";
    /// <summary>Recovered after a crash, the reservation was refused (e.g. the money was spent meanwhile).</summary>
    public const string ReserveFailed = "reserve_failed";
}

/// <summary>The in-process payout API for products (earned wage access, wallet withdrawals, split-bill payouts) and the
/// HTTP API's one implementation. A payout reserves the money at once (a pending ledger transfer from the source to the
/// ledger's payout-clearing account); the rest of its life is the saga's (<see cref="PayoutSaga"/>).</summary>
public sealed partial class PayoutService
{
    /// <summary>Longest payout id: the reserve transfer's id (<c>payout:{id}:reserve</c>) must fit the ledger's 64.</summary>
    public const int IdLengthMax = 48;
    public const int ReferenceLengthMax = 100;
    public const int DescriptionLengthMax = 255;
    public const int AccountNameLengthMax = 100;

    /// <summary>The clearing account of a ledger: where payouts' money waits (pending) and then sits once paid out (posted),
    /// to be settled against the provider's float or the bank. Credit-normal, created on first use.</summary>
    public static string ClearingAccountId(string ledgerId) => "payouts-clearing-" + ledgerId;

    /// <summary>The provider's idempotency key (and external id) of a payout: derived from tenant and id, so every retry of
    /// every step sends the same key and the provider pays at most once; hashed, so the provider learns neither.</summary>
    public static string ProviderKey(string tenantId, string payoutId) =>
        "npo_" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"neraca.payout\n{tenantId}\n{payoutId}")))[..40];

    internal const string Table = "payouts";

    internal static string Context(string column, string tenantId, string id) => KeyRing.Context(Table, column, tenantId, id);

    readonly ILedger _ledger;
    readonly PayoutStore _store;
    readonly FieldEncryption _encryption;
    readonly JobStore _jobs;
    readonly SqlDialect _dialect;
    readonly PayoutsOptions _options;
    readonly ILogger<PayoutService> _logger;
    readonly ConcurrentDictionary<string, bool> _clearingAccounts = new(StringComparer.Ordinal);

    internal PayoutService(ILedger ledger, PayoutStore store, FieldEncryption encryption, JobStore jobs, SqlDialect dialect,
        IOptions<PayoutsOptions> options, ILogger<PayoutService> logger)
    {
        _ledger = ledger;
        _store = store;
        _encryption = encryption;
        _jobs = jobs;
        _dialect = dialect;
        _options = options.Value;
        _logger = logger;
    }

    /// <summary>Requests a payout. The same id with the same fields returns the first payout (<c>Created = false</c>);
    /// with other fields <c>payout_conflict</c>. A refused request (<c>validation_failed</c>, <c>account_not_found</c>,
    /// <c>insufficient_funds</c>, ...) leaves nothing behind. Throws <see cref="OverloadedException"/> when the ledger is
    /// full: retry with the same id.</summary>
    public async Task<PayoutResult> RequestAsync(string tenantId, PayoutRequest request, CancellationToken ct)
    {
        if (Validate(request) is { Count: > 0 } errors)
            return new PayoutResult(null, false, PayoutCodes.ValidationFailed, errors.First().Value[0], errors);
        var ring = await _encryption.GetAsync(ct);
        var hash = ring.LookupHash("payouts.request", tenantId, Canonical(request));

        if (await _store.GetAsync(tenantId, request.Id, ct) is { } existing)
            return Replay(ring, existing, request, hash);

        var account = await _ledger.GetAccountAsync(tenantId, request.SourceAccount, ct);
        if (!account.Succeeded) return Refused(account.Error!);
        var ledger = await _ledger.GetLedgerAsync(tenantId, account.Value!.Ledger, ct);
        if (!ledger.Succeeded) return Refused(ledger.Error!);
        var clearing = await EnsureClearingAccountAsync(tenantId, ledger.Value!, ct);
        if (clearing is not null) return Refused(clearing);

        var now = _store.NowUs;
        var row = new PayoutRow
        {
            tenant_id = tenantId, id = request.Id, status = PayoutStatuses.Requested, request_hash = hash, ledger_id = ledger.Value!.Id,
            currency = ledger.Value.Asset, source_account = request.SourceAccount, clearing_account = ClearingAccountId(ledger.Value.Id),
            amount = request.Amount, destination_type = request.Destination.Type, destination_code = request.Destination.Code,
            destination_account_number = ring.Encrypt(request.Destination.AccountNumber, Context("destination_account_number", tenantId, request.Id)),
            destination_account_masked = Masking.Tail(request.Destination.AccountNumber),
            destination_account_name = request.Destination.AccountName is { } name
                ? ring.Encrypt(name, Context("destination_account_name", tenantId, request.Id)) : null,
            reference = request.Reference, description = request.Description, notify_job_type = request.NotifyJobType,
            provider_key = ProviderKey(tenantId, request.Id), created_at_us = now, updated_at_us = now,
        };
        if (!await _store.InsertAsync(row, ct))
        {
            // A concurrent request with the same id got there first.
            return await _store.GetAsync(tenantId, request.Id, ct) is { } raced
                ? Replay(ring, raced, request, hash)
                : new PayoutResult(null, false, PayoutCodes.PayoutConflict, $"Payout '{request.Id}' is being requested by another call; retry.");
        }

        LedgerResult<TransferResponse> reserved;
        try
        {
            reserved = await ReserveAsync(row, ct);
        }
        catch (OverloadedException)
        {
            await _store.DeleteRequestedAsync(tenantId, row.id, CancellationToken.None);
            throw;
        }
        if (!reserved.Succeeded)
        {
            await _store.DeleteRequestedAsync(tenantId, row.id, CancellationToken.None);
            return Refused(reserved.Error!);
        }
        await MarkReservedAsync(row, ct);
        var view = await GetAsync(tenantId, row.id, ct);
        LogRequested(_logger, tenantId, row.id, row.amount, row.destination_code, row.destination_account_masked);
        return new PayoutResult(view, true);
    }

    public async Task<PayoutView?> GetAsync(string tenantId, string id, CancellationToken ct)
    {
        if (!Ids.IsValid(id)) return null;
        var row = await _store.GetAsync(tenantId, id, ct);
        return row is null ? null : ToView(await _encryption.GetAsync(ct), row);
    }

    /// <summary>The tenant's payouts, newest first, optionally of one status. <c>limit</c> 1 to
    /// <see cref="PayoutsOptions.PageSizeMax"/> (default 100); <c>after</c> = a previous page's <c>next_cursor</c>
    /// (<see cref="InvalidCursorException"/> for anything else).</summary>
    public async Task<PayoutResult<Page<PayoutView>>> ListAsync(string tenantId, string? status, int? limit, string? after, CancellationToken ct)
    {
        var take = limit ?? 100;
        if (take < 1 || take > _options.PageSizeMax)
            return PayoutResult<Page<PayoutView>>.Invalid("limit", $"Must be from 1 to {_options.PageSizeMax}.");
        if (status is not null && !AllStatuses.Contains(status))
            return PayoutResult<Page<PayoutView>>.Invalid("status", "One of " + string.Join(", ", AllStatuses) + ".");
        (long, string)? cursor = null;
        if (Cursor.Decode(after) is { } key)
        {
            var colon = key.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0 || !long.TryParse(key.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var at))
                throw new InvalidCursorException("after");
            cursor = (at, key[(colon + 1)..]);
        }
        var rows = await _store.ListAsync(tenantId, status, cursor, take + 1, ct);
        var ring = await _encryption.GetAsync(ct);
        var page = rows.Take(take).Select(r => ToView(ring, r)).ToList();
        var next = rows.Count > take
            ? Cursor.Encode(string.Create(CultureInfo.InvariantCulture, $"{rows[take - 1].created_at_us}:{rows[take - 1].id}"))
            : null;
        return new PayoutResult<Page<PayoutView>>(new Page<PayoutView>(page, next), null, null);
    }

    static readonly string[] AllStatuses = [PayoutStatuses.Requested, PayoutStatuses.Reserved, PayoutStatuses.Submitted,
        PayoutStatuses.Unknown, PayoutStatuses.Succeeded, PayoutStatuses.Failed];

    // ---------------- steps shared with the saga ----------------

    /// <summary>The pending transfer that holds the money. Idempotent (the same id and fields replay).</summary>
    internal Task<LedgerResult<TransferResponse>> ReserveAsync(PayoutRow row, CancellationToken ct) =>
        _ledger.CreateTransferAsync(row.tenant_id, new CreateTransferRequest(
            Id: row.ReserveTransferId, DebitAccount: row.source_account, CreditAccount: row.clearing_account, Amount: row.amount,
            Description: $"Payout {row.id}", Metadata: new JsonObject { ["payout_id"] = row.id }, Pending: true), ct);

    /// <summary>requested → reserved, with the submit step enqueued in the same transaction.</summary>
    internal async Task<bool> MarkReservedAsync(PayoutRow row, CancellationToken ct)
    {
        await using var connection = await _store.Database.OpenAsync(ct);
        await using var tx = await _dialect.BeginWriteAsync(connection, ct);
        var moved = await _store.MoveAsync(connection, tx, row.tenant_id, row.id, [PayoutStatuses.Requested], PayoutStatuses.Reserved, null, null, ct);
        if (moved) await _jobs.EnqueueAsync(connection, tx, PayoutJobs.Step(row.tenant_id, PayoutJobs.Submit, row.id), ct);
        await tx.CommitAsync(ct);
        return moved;
    }

    async Task<LedgerError?> EnsureClearingAccountAsync(string tenantId, LedgerResponse ledger, CancellationToken ct)
    {
        var id = ClearingAccountId(ledger.Id);
        if (_clearingAccounts.ContainsKey(tenantId + "\n" + id)) return null;
        var created = await _ledger.CreateAccountAsync(tenantId, new CreateAccountRequest(
            Id: id, Ledger: ledger.Id, NormalBalance: "credit", Name: "Payouts clearing",
            Metadata: new JsonObject { ["purpose"] = "payouts.clearing" }), ct);
        if (!created.Succeeded) return created.Error;
        _clearingAccounts[tenantId + "\n" + id] = true;
        return null;
    }

    internal static PayoutView ToView(KeyRing ring, PayoutRow r)
    {
        var name = r.destination_account_name is { } stored ? ring.Decrypt(stored, Context("destination_account_name", r.tenant_id, r.id)) : null;
        return new PayoutView(r.id, r.status, r.source_account, r.amount,
            new PayoutDestinationView(r.destination_type, r.destination_code, r.destination_account_masked, name is null ? null : Masking.Name(name)),
            r.reference, r.description, r.failure_code, r.failure_reason, r.provider_reference,
            DbTime.FromMicros(r.created_at_us), DbTime.FromMicros(r.updated_at_us));
    }

    PayoutResult Replay(KeyRing ring, PayoutRow existing, PayoutRequest request, string hash)
    {
        if (CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(existing.request_hash), Encoding.ASCII.GetBytes(hash)))
            return new PayoutResult(ToView(ring, existing), false);
        var field = DifferingField(ring, existing, request);
        return new PayoutResult(null, false, PayoutCodes.PayoutConflict, $"Payout '{request.Id}' exists with a different {field}.");
    }

    static string DifferingField(KeyRing ring, PayoutRow e, PayoutRequest r)
    {
        if (e.source_account != r.SourceAccount) return "source_account";
        if (e.amount != r.Amount) return "amount";
        if (e.destination_type != r.Destination.Type) return "destination.type";
        if (e.destination_code != r.Destination.Code) return "destination.code";
        if (ring.Decrypt(e.destination_account_number, Context("destination_account_number", e.tenant_id, e.id)) != r.Destination.AccountNumber)
            return "destination.account_number";
        var name = e.destination_account_name is { } n ? ring.Decrypt(n, Context("destination_account_name", e.tenant_id, e.id)) : null;
        if (name != r.Destination.AccountName) return "destination.account_name";
        if (e.reference != r.Reference) return "reference";
        if (e.description != r.Description) return "description";
        return "notify_job_type";
    }

    static PayoutResult Refused(LedgerError e) =>
        new(null, false, e.Code, e.Detail, e.Errors);

    /// <summary>The request's fields in a fixed order: what "the same body" means for an id.</summary>
    static string Canonical(PayoutRequest r) => JsonSerializer.Serialize(new[]
    {
        r.SourceAccount, r.Amount.ToString(CultureInfo.InvariantCulture), r.Destination.Type, r.Destination.Code, r.Destination.AccountNumber,
        r.Destination.AccountName, r.Reference, r.Description, r.NotifyJobType,
    });

    // ---------------- validation ----------------

    [GeneratedRegex("^[A-Z0-9_]{2,20}$")]
    private static partial Regex ProviderCode();

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,63}$")]
    private static partial Regex JobType();

    /// <summary>Every field's problems keyed by its JSON path; empty when the request is valid.</summary>
    public static Dictionary<string, string[]> Validate(PayoutRequest? r)
    {
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        void Add(string field, string message) => errors[field] = [message];
        if (r is null)
        {
            Add("body", "A payout request is required.");
            return errors;
        }
        if (!Ids.IsValid(r.Id) || r.Id.Length > IdLengthMax) Add("id", $"1-{IdLengthMax} characters of A-Z a-z 0-9 . _ : -");
        if (!Ids.IsValid(r.SourceAccount)) Add("source_account", "Required: the ledger account the money leaves from.");
        if (r.Amount < 1) Add("amount", "Must be at least 1 (minor units of the ledger's currency).");
        if (r.Destination is null)
        {
            Add("destination", "Required: {type, code, account_number, account_name?}.");
        }
        else
        {
            var d = r.Destination;
            if (d.Type is not ("bank" or "ewallet")) Add("destination.type", "'bank' or 'ewallet'.");
            if (d.Code is null || !ProviderCode().IsMatch(d.Code)) Add("destination.code", "2-20 upper-case letters, digits or _ (BCA, BNI, BRI, MANDIRI, GOPAY, OVO, DANA, ...).");
            var (min, max) = d.Type == "ewallet" ? (8, 16) : (5, 34);
            if (d.AccountNumber is null || d.AccountNumber.Length < min || d.AccountNumber.Length > max || !d.AccountNumber.All(char.IsAsciiDigit))
                Add("destination.account_number", $"{min}-{max} digits{(d.Type == "ewallet" ? " (the phone number of the wallet)" : "")}.");
            if (d.AccountName is { } name && (name.Length is 0 or > AccountNameLengthMax || name.Any(char.IsControl) || name.Trim().Length != name.Length))
                Add("destination.account_name", $"1-{AccountNameLengthMax} characters without control characters or surrounding spaces.");
        }
        if (string.IsNullOrWhiteSpace(r.Reference) || r.Reference.Length > ReferenceLengthMax || r.Reference.Any(char.IsControl))
            Add("reference", $"Required: 1-{ReferenceLengthMax} characters without control characters (shown on the recipient's statement).");
        if (r.Description is { } text && (text.Length > DescriptionLengthMax || text.Any(char.IsControl)))
            Add("description", $"At most {DescriptionLengthMax} characters without control characters.");
        if (r.NotifyJobType is { } type && !JobType().IsMatch(type)) Add("notify_job_type", "A job type name: lower-case letters, digits, '.', '_' or '-'.");
        return errors;
    }

    [LoggerMessage(1, LogLevel.Information, "Payout {PayoutId} of tenant {TenantId} requested: {Amount} to {Code} {AccountMasked}")]
    static partial void LogRequested(ILogger logger, string tenantId, string payoutId, long amount, string code, string accountMasked);
}

/// <summary>A value or an error with a field (lists and other reads of <see cref="PayoutService"/>).</summary>
public sealed record PayoutResult<T>(T? Value, string? ErrorCode, IReadOnlyDictionary<string, string[]>? Errors)
{
    public bool Succeeded => ErrorCode is null;

    public static PayoutResult<T> Invalid(string field, string message) =>
        new(default, PayoutCodes.ValidationFailed, new Dictionary<string, string[]> { [field] = [message] });
}
