using System.ComponentModel.DataAnnotations;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Neraca.Payouts.Provider;
using Neraca.Security;

namespace Neraca.Payouts.Sandbox;

/// <summary>How the sandbox behaves (section <c>Sandbox</c> of <c>neraca sandbox payouts</c>, or
/// <c>Payouts:BuiltInSandbox</c> for the one built in to the server). Shares are fractions from 0 to 1 of new
/// disbursements.</summary>
public sealed class SandboxOptions
{
    /// <summary>Time from acceptance to the final status (and its callback), in milliseconds. Default 1000.</summary>
    [Range(0, 3_600_000)]
    public int LatencyMs { get; set; } = 1000;

    /// <summary>Share of disbursements that fail with <c>INVALID_DESTINATION</c> after <see cref="LatencyMs"/> (as a bank
    /// rejecting an account does). Account numbers starting with <c>000</c> always do.</summary>
    [Range(0.0, 1.0)]
    public double InvalidAccountShare { get; set; }

    /// <summary>Share refused at once with 422 <c>INSUFFICIENT_BALANCE</c> (the provider's own float is too low).</summary>
    [Range(0.0, 1.0)]
    public double InsufficientBalanceShare { get; set; }

    /// <summary>Share whose create answers, retries included, are held for <see cref="TimeoutHangMs"/> from the first
    /// (longer than the client waits): the disbursement is recorded and completes normally, only the answers are lost.
    /// Status queries answer at once.</summary>
    [Range(0.0, 1.0)]
    public double TimeoutShare { get; set; }

    /// <summary>Share of create calls answered 503 without recording anything (each call decides anew).</summary>
    [Range(0.0, 1.0)]
    public double ServerErrorShare { get; set; }

    /// <summary>How long a "timed out" answer is held, in milliseconds. Default 30000.</summary>
    [Range(0, 600_000)]
    public int TimeoutHangMs { get; set; } = 30_000;

    /// <summary>Where callbacks are POSTed (the server's <c>/v1/payouts/callbacks</c>). None: no callbacks (the server
    /// then learns the outcome from status queries).</summary>
    public string? CallbackUrl { get; set; }

    /// <summary>Secret of the callback signature; the server's <c>Payouts:Provider:CallbackSecret</c>.</summary>
    public string? CallbackSecret { get; set; }

    /// <summary>Bearer key callers must present; none: any caller is accepted.</summary>
    public string? ApiKey { get; set; }

    /// <summary>Attempts per callback (retried after 1 s, 2 s, 4 s... on a non-2xx answer or a connection failure). Default 5.</summary>
    [Range(1, 20)]
    public int CallbackAttemptsMax { get; set; } = 5;

    /// <summary>Seed of the random decisions, for a repeatable run. None: random.</summary>
    public int? Seed { get; set; }
}

/// <summary>One payment the sandbox actually made: what tests count to prove "paid exactly once".</summary>
public sealed record SandboxPayment(string DisbursementId, string ExternalId, long Amount, string Currency, string DestinationCode,
    string AccountNumberMasked, DateTimeOffset PaidAt);

/// <summary>A provider that behaves like the real thing, in memory: idempotent creates keyed by <c>Idempotency-Key</c>,
/// asynchronous completion with a latency, configurable failures, timeouts and 5xx, signed callbacks with retries, a
/// status query, an account-name inquiry, and a record of every payment made.</summary>
public sealed class SandboxProvider
{
    /// <summary>Disbursements kept; beyond it creates are refused with 503 (a bound, not a realistic limit).</summary>
    public const int DisbursementsMax = 1_000_000;

    readonly SandboxOptions _options;
    readonly TimeProvider _time;
    readonly Func<byte[], string, CancellationToken, Task<bool>>? _deliver;
    readonly Random _random;
    readonly object _gate = new();
    readonly Dictionary<string, Entry> _byKey = new(StringComparer.Ordinal);
    readonly List<SandboxPayment> _paid = [];
    readonly CancellationTokenSource _stopping = new();

    /// <param name="options">Behaviour: latency, failure shares, callback secret.</param>
    /// <param name="time">Clock of the latency and of the callback signatures.</param>
    /// <param name="deliver">Sends a callback (body, signature header); true when the receiver acknowledged it. Null:
    /// no callbacks.</param>
    public SandboxProvider(SandboxOptions options, TimeProvider time, Func<byte[], string, CancellationToken, Task<bool>>? deliver)
    {
        _options = options;
        _time = time;
        _deliver = deliver;
        _random = options.Seed is { } seed ? new Random(seed) : new Random();
    }

    public SandboxOptions Options => _options;

    sealed class Entry(Disbursement disbursement, string fingerprint, string accountMasked, string code, DateTimeOffset answersHeldUntil)
    {
        public Disbursement Disbursement { get; set; } = disbursement;
        public string Fingerprint { get; } = fingerprint;
        public string AccountMasked { get; } = accountMasked;
        public string Code { get; } = code;
        /// <summary>A "timed out" disbursement: every create answer (retries too) is held until then.</summary>
        public DateTimeOffset AnswersHeldUntil { get; } = answersHeldUntil;
    }

    /// <summary>An answer: HTTP status and JSON body.</summary>
    public readonly record struct Reply(int Status, object Body, TimeSpan Hold = default);

    public bool Authorized(string? authorization) =>
        string.IsNullOrEmpty(_options.ApiKey) || string.Equals(authorization, "Bearer " + _options.ApiKey, StringComparison.Ordinal);

    public Reply Create(string? idempotencyKey, CreateDisbursement? request)
    {
        if (request is null || string.IsNullOrWhiteSpace(request.ExternalId) || request.ExternalId.Length > 200 || request.Amount <= 0
            || string.IsNullOrWhiteSpace(request.Currency) || request.Destination is null || string.IsNullOrWhiteSpace(request.Destination.AccountNumber)
            || string.IsNullOrWhiteSpace(request.Destination.Code))
            return Error(400, ProviderErrorCodes.ValidationError, "external_id, amount > 0, currency and destination are required.");
        if (idempotencyKey is not null && idempotencyKey != request.ExternalId)
            return Error(400, ProviderErrorCodes.ValidationError, "Idempotency-Key must equal external_id.");

        var fingerprint = Fingerprint(request);
        lock (_gate)
        {
            if (_byKey.TryGetValue(request.ExternalId, out var existing))
            {
                if (existing.Fingerprint != fingerprint)
                    return Error(409, ProviderErrorCodes.IdempotencyConflict, "This idempotency key was used with another request.");
                var hold = existing.AnswersHeldUntil - _time.GetUtcNow();
                return Answer(existing, hold > TimeSpan.Zero ? hold : TimeSpan.Zero);
            }
            if (_random.NextDouble() < _options.ServerErrorShare) return Error(503, "UNAVAILABLE", "Sandbox: simulated outage.");
            if (_byKey.Count >= DisbursementsMax) return Error(503, "UNAVAILABLE", "Sandbox: too many disbursements kept.");

            var now = _time.GetUtcNow();
            var id = "disb_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(10));
            var fate = _random.NextDouble();
            var invalid = request.Destination.AccountNumber.StartsWith("000", StringComparison.Ordinal) || fate < _options.InvalidAccountShare;
            var broke = !invalid && fate < _options.InvalidAccountShare + _options.InsufficientBalanceShare;
            var hang = _random.NextDouble() < _options.TimeoutShare;
            var d = new Disbursement(id, request.ExternalId, request.Amount, request.Currency,
                broke ? ProviderStatuses.Failed : ProviderStatuses.Pending,
                broke ? ProviderErrorCodes.InsufficientBalance : null, broke ? "The sandbox's balance is too low." : null, now, now);
            var heldUntil = hang ? now.AddMilliseconds(_options.TimeoutHangMs) : now;
            var entry = new Entry(d, fingerprint, Masking.Tail(request.Destination.AccountNumber), request.Destination.Code, heldUntil);
            _byKey[request.ExternalId] = entry;
            if (broke) return Error(422, ProviderErrorCodes.InsufficientBalance, d.FailureMessage!);
            _ = CompleteLaterAsync(request.ExternalId, invalid);
            return Answer(entry, hang ? TimeSpan.FromMilliseconds(_options.TimeoutHangMs) : TimeSpan.Zero);
        }
    }

    public Reply Get(string externalId)
    {
        lock (_gate)
            return _byKey.TryGetValue(externalId, out var entry)
                ? new Reply(200, entry.Disbursement)
                : Error(404, ProviderErrorCodes.NotFound, "No disbursement with this external_id.");
    }

    /// <summary>A deterministic account holder per account number; numbers starting with <c>000</c> do not exist.</summary>
    public Reply Inquire(AccountInquiry? inquiry)
    {
        if (inquiry is null || string.IsNullOrWhiteSpace(inquiry.AccountNumber) || string.IsNullOrWhiteSpace(inquiry.Code))
            return Error(400, ProviderErrorCodes.ValidationError, "type, code and account_number are required.");
        if (inquiry.AccountNumber.StartsWith("000", StringComparison.Ordinal))
            return new Reply(200, new AccountInquiryResult(false, null, ProviderErrorCodes.InvalidDestination));
        string[] first = ["BUDI", "SITI", "AGUS", "DEWI", "RINA", "ANDI", "PUTRI", "WAYAN"];
        string[] last = ["SANTOSO", "RAHAYU", "WIJAYA", "LESTARI", "PRATAMA", "HIDAYAT", "NASUTION", "SUSANTO"];
        var h = SHA256.HashData(Encoding.UTF8.GetBytes(inquiry.Code + "/" + inquiry.AccountNumber));
        return new Reply(200, new AccountInquiryResult(true, $"{first[h[0] % first.Length]} {last[h[1] % last.Length]}", null));
    }

    /// <summary>Every payment made, oldest first.</summary>
    public IReadOnlyList<SandboxPayment> Paid()
    {
        lock (_gate) return _paid.ToList();
    }

    public void Stop() => _stopping.Cancel();

    async Task CompleteLaterAsync(string externalId, bool invalid)
    {
        try
        {
            await Task.Delay(TimeSpan.FromMilliseconds(_options.LatencyMs), _time, _stopping.Token);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        Disbursement final;
        lock (_gate)
        {
            var entry = _byKey[externalId];
            var now = _time.GetUtcNow();
            final = invalid
                ? entry.Disbursement with { Status = ProviderStatuses.Failed, FailureCode = ProviderErrorCodes.InvalidDestination,
                    FailureMessage = "The destination account does not exist.", UpdatedAt = now }
                : entry.Disbursement with { Status = ProviderStatuses.Succeeded, UpdatedAt = now };
            entry.Disbursement = final;
            if (!invalid)
                _paid.Add(new SandboxPayment(final.Id, externalId, final.Amount, final.Currency, entry.Code, entry.AccountMasked, now));
        }
        await SendCallbackAsync(final);
    }

    async Task SendCallbackAsync(Disbursement d)
    {
        if (_deliver is null || string.IsNullOrEmpty(_options.CallbackSecret)) return;
        var body = JsonSerializer.SerializeToUtf8Bytes(
            new ProviderCallback("cb_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(10)), "disbursement.updated", d), ProviderJson.Options);
        var delay = TimeSpan.FromSeconds(1);
        for (var attempt = 1; attempt <= _options.CallbackAttemptsMax && !_stopping.IsCancellationRequested; attempt++)
        {
            // Signed per attempt, as providers do: the timestamp is the time of sending.
            var signature = CallbackSignature.Sign(_options.CallbackSecret, _time.GetUtcNow().ToUnixTimeSeconds(), body);
            try
            {
                if (await _deliver(body, signature, _stopping.Token)) return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
            {
                // retried below
            }
            try { await Task.Delay(delay, _time, _stopping.Token); }
            catch (OperationCanceledException) { return; }
            delay *= 2;
        }
    }

    static Reply Answer(Entry entry, TimeSpan hold) => new(200, entry.Disbursement, hold);

    static Reply Error(int status, string code, string message) => new(status, new ProviderError(code, message));

    static string Fingerprint(CreateDisbursement r) =>
        Convert.ToHexStringLower(SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(r with { Description = null }, ProviderJson.Options)));
}
