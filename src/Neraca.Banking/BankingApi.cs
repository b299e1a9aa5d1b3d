using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;
using Neraca.Banking.Accounts;
using Neraca.Banking.Audit;
using Neraca.Banking.Customers;
using Neraca.Banking.History;
using Neraca.Banking.Payments;
using Neraca.Banking.Settings;
using Neraca.Banking.Withdrawals;
using Neraca.Banking.Statements;
using Neraca.Hosting;
using Neraca.Idempotency;
using Neraca.Ledger;
using Neraca.Storage;
using Neraca.Tenancy;

namespace Neraca.Banking;

/// <summary>Services every banking handler needs, bundled for <c>[AsParameters]</c>.</summary>
internal sealed record BankingServices(CurrentCaller Caller, HttpContext Http, Customers.Customers Customers, BankAccounts Accounts, BlocksAndHolds Holds,
    Payments.Payments Payments, Transactions History, Statements.Statements Statements, AuditLog Audit, Withdrawals.Withdrawals Withdrawals,
    TenantSettings Settings, IOptions<BankingOptions> Options)
{
    /// <summary>The caller as banking and its audit log see it.</summary>
    public BankCaller Who => new(Caller.TenantId, Caller.Subject,
        Http.User.FindFirstValue(NeracaClaims.KeyId) is { } key ? "key:" + key : "user:" + Caller.Subject);

    /// <summary>An id for what the client did not name: derived from the caller's <c>Idempotency-Key</c> (a retry creates
    /// nothing new), else new. As in the ledger's API.</summary>
    public string NewId(string prefix) => Http.Request.Headers["Idempotency-Key"].FirstOrDefault() is { Length: > 0 } key
        ? prefix + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(
            $"{Caller.TenantId}\n{Http.Request.Path}\n{IdempotencyMiddleware.CallerScoped(Http.User, key)}")))[..26]
        : prefix + Ids.NewUlid();
}

/// <summary>The banking HTTP API (docs/banking.md): a mapping of the banking types onto routes and problem+json.</summary>
internal static class BankingApi
{
    public static IEndpointRouteBuilder MapBankingApi(this IEndpointRouteBuilder app)
    {
        var read = app.MapGroup("/v1").WithTags("Banking").RequireAuthorization(Scopes.BankingRead);
        var write = app.MapGroup("/v1").WithTags("Banking").RequireAuthorization(Scopes.BankingWrite);

        write.MapPost("/customers", CreateCustomer).Produces<CustomerResponse>(201).Produces<CustomerResponse>();
        read.MapGet("/customers", ListCustomers).Produces<Page<CustomerResponse>>();
        read.MapGet("/customers/{id}", GetCustomer).Produces<CustomerResponse>();
        write.MapPatch("/customers/{id}", UpdateCustomer).Produces<CustomerResponse>();

        write.MapPost("/customers/{id}/accounts", OpenAccount).Produces<BankAccountResponse>(201).Produces<BankAccountResponse>();
        read.MapGet("/customers/{id}/accounts", ListAccounts).Produces<Page<BankAccountResponse>>();
        read.MapGet("/accounts/{id}/summary", Summary).Produces<AccountSummary>();
        write.MapPost("/accounts/{id}/freeze", Freeze).Produces<BankAccountResponse>();
        write.MapPost("/accounts/{id}/unfreeze", Unfreeze).Produces<BankAccountResponse>();
        write.MapPost("/accounts/{id}/close", Close).Produces<BankAccountResponse>();

        write.MapPost("/accounts/{id}/blocks", AddBlock).Produces<BlockResponse>(201).Produces<BlockResponse>();
        read.MapGet("/accounts/{id}/blocks", ListBlocks).Produces<Page<BlockResponse>>();
        write.MapDelete("/accounts/{id}/blocks/{block}", RemoveBlock).Produces<BlockResponse>();

        write.MapPost("/accounts/{id}/holds", PlaceHold).Produces<HoldResponse>(201).Produces<HoldResponse>();
        read.MapGet("/accounts/{id}/holds", ListHolds).Produces<Page<HoldResponse>>();
        read.MapGet("/accounts/{id}/holds/{hold}", GetHold).Produces<HoldResponse>();
        write.MapPost("/accounts/{id}/holds/{hold}/capture", Capture).Produces<HoldResponse>();
        write.MapPost("/accounts/{id}/holds/{hold}/release", Release).Produces<HoldResponse>();

        write.MapPost("/payments", CreatePayment).Produces<PaymentResponse>(201).Produces<PaymentResponse>();
        read.MapGet("/payments/{id}", GetPayment).Produces<PaymentResponse>();
        write.MapPost("/payments/{id}/reverse", ReversePayment).Produces<PaymentResponse>();

        write.MapPost("/accounts/{id}/withdrawals", CreateWithdrawal).Produces<WithdrawalResponse>(201).Produces<WithdrawalResponse>();
        read.MapGet("/accounts/{id}/withdrawals", ListWithdrawals).Produces<Page<WithdrawalResponse>>();
        read.MapGet("/accounts/{id}/withdrawals/{withdrawal}", GetWithdrawal).Produces<WithdrawalResponse>();

        read.MapGet("/accounts/{id}/transactions", ListTransactions).Produces<Page<HistoryItem>>();

        write.MapPost("/accounts/{id}/statements", RequestStatement).Produces<StatementResponse>(202).Produces<StatementResponse>();
        read.MapGet("/accounts/{id}/statements", ListStatements).Produces<Page<StatementResponse>>();
        read.MapGet("/accounts/{id}/statements/{sid}", GetStatement).Produces<StatementResponse>().Produces(200, contentType: "application/pdf")
            .Produces(200, contentType: "text/csv").Produces(200, contentType: "application/xml").Produces(304);

        read.MapGet("/banking/settings", GetSettings).Produces<BankingSettingsResponse>();
        write.MapPatch("/banking/settings", UpdateSettings).Produces<BankingSettingsResponse>();

        // Who changed customers, accounts, limits, blocks and holds: operators (server keys with audit:read), never end users.
        app.MapGroup("/v1").WithTags("Banking").RequireAuthorization(Scopes.AuditRead).MapGet("/audit-log", ListAudit).Produces<Page<AuditRecord>>();

        read.ProducesProblem(400).ProducesProblem(404);
        write.ProducesProblem(400).ProducesProblem(403).ProducesProblem(404).ProducesProblem(409).ProducesProblem(422);
        return app;
    }

    static async Task<IResult> CreateCustomer(CustomerRequest body, [AsParameters] BankingServices s, CancellationToken ct) =>
        Respond(s, await s.Customers.CreateAsync(s.Who, body with { Id = body.Id ?? s.NewId("cus_") }, ct), c => $"/v1/customers/{c.Id}");

    static async Task<IResult> ListCustomers([AsParameters] BankingServices s, string? phone, string? email, string? national_id, int? limit, string? after,
        CancellationToken ct) =>
        Respond(s, await s.Customers.ListAsync(s.Who, phone, email, national_id, limit, after, ct));

    static async Task<IResult> GetCustomer(string id, [AsParameters] BankingServices s, CancellationToken ct) =>
        Respond(s, await s.Customers.GetAsync(s.Who, id, ct));

    static async Task<IResult> UpdateCustomer(string id, CustomerRequest body, [AsParameters] BankingServices s, CancellationToken ct) =>
        Respond(s, await s.Customers.UpdateAsync(s.Who, id, body, ct));

    static async Task<IResult> OpenAccount(string id, OpenAccountRequest body, [AsParameters] BankingServices s, CancellationToken ct) =>
        Respond(s, await s.Accounts.OpenAsync(s.Who, id, body with { Id = body.Id ?? s.NewId("acc_") }, ct), a => $"/v1/accounts/{a.Id}/summary");

    static async Task<IResult> ListAccounts(string id, [AsParameters] BankingServices s, int? limit, string? after, CancellationToken ct) =>
        Respond(s, await s.Accounts.ListAsync(s.Who, id, limit, after, ct));

    static async Task<IResult> Summary(string id, [AsParameters] BankingServices s, DateTimeOffset? at, CancellationToken ct) =>
        Respond(s, await s.Accounts.SummaryAsync(s.Who, id, at, ct));

    static async Task<IResult> Freeze(string id, AccountStatusRequest? body, [AsParameters] BankingServices s, CancellationToken ct) =>
        Respond(s, await s.Accounts.FreezeAsync(s.Who, id, body, ct));

    static async Task<IResult> Unfreeze(string id, AccountStatusRequest? body, [AsParameters] BankingServices s, CancellationToken ct) =>
        Respond(s, await s.Accounts.UnfreezeAsync(s.Who, id, body, ct));

    static async Task<IResult> Close(string id, AccountStatusRequest? body, [AsParameters] BankingServices s, CancellationToken ct) =>
        Respond(s, await s.Accounts.CloseAsync(s.Who, id, body, ct));

    static async Task<IResult> AddBlock(string id, BlockRequest body, [AsParameters] BankingServices s, CancellationToken ct) =>
        Respond(s, await s.Holds.AddBlockAsync(s.Who, id, body with { Id = body.Id ?? s.NewId("blk_") }, ct), b => $"/v1/accounts/{id}/blocks");

    static async Task<IResult> ListBlocks(string id, [AsParameters] BankingServices s, CancellationToken ct) =>
        Respond(s, await s.Holds.ListBlocksAsync(s.Who, id, ct));

    static async Task<IResult> RemoveBlock(string id, string block, [AsParameters] BankingServices s, CancellationToken ct) =>
        Respond(s, await s.Holds.RemoveBlockAsync(s.Who, id, block, ct));

    static async Task<IResult> PlaceHold(string id, HoldRequest body, [AsParameters] BankingServices s, CancellationToken ct) =>
        Respond(s, await s.Holds.PlaceHoldAsync(s.Who, id, body with { Id = body.Id ?? s.NewId("hld_") }, ct), h => $"/v1/accounts/{id}/holds/{h.Id}");

    static async Task<IResult> ListHolds(string id, [AsParameters] BankingServices s, string? status, int? limit, string? after, CancellationToken ct) =>
        Respond(s, await s.Holds.ListHoldsAsync(s.Who, id, status, limit, after, ct));

    static async Task<IResult> GetHold(string id, string hold, [AsParameters] BankingServices s, CancellationToken ct) =>
        Respond(s, await s.Holds.GetHoldAsync(s.Who, id, hold, ct));

    static async Task<IResult> Capture(string id, string hold, CaptureRequest? body, [AsParameters] BankingServices s, CancellationToken ct) =>
        Respond(s, await s.Holds.CaptureAsync(s.Who, id, hold, body, ct));

    static async Task<IResult> Release(string id, string hold, [AsParameters] BankingServices s, CancellationToken ct) =>
        Respond(s, await s.Holds.ReleaseAsync(s.Who, id, hold, ct));

    static async Task<IResult> CreatePayment(PaymentRequest body, [AsParameters] BankingServices s, CancellationToken ct) =>
        Respond(s, await s.Payments.CreateAsync(s.Who, body with { Id = body.Id ?? s.NewId("pay_") }, ct), p => $"/v1/payments/{p.Id}");

    static async Task<IResult> GetPayment(string id, [AsParameters] BankingServices s, CancellationToken ct) =>
        Respond(s, await s.Payments.GetAsync(s.Who, id, ct));

    static async Task<IResult> ReversePayment(string id, ReversePaymentRequest? body, [AsParameters] BankingServices s, CancellationToken ct) =>
        Respond(s, await s.Payments.ReverseAsync(s.Who, id, body, ct));

    static async Task<IResult> CreateWithdrawal(string id, WithdrawalRequest body, [AsParameters] BankingServices s, CancellationToken ct) =>
        Respond(s, await s.Withdrawals.CreateAsync(s.Who, id, body with { Id = body.Id ?? s.NewId("wd_") }, ct), w => $"/v1/accounts/{id}/withdrawals/{w.Id}");

    static async Task<IResult> ListWithdrawals(string id, [AsParameters] BankingServices s, int? limit, string? after, CancellationToken ct) =>
        Respond(s, await s.Withdrawals.ListAsync(s.Who, id, limit, after, ct));

    static async Task<IResult> GetWithdrawal(string id, string withdrawal, [AsParameters] BankingServices s, CancellationToken ct) =>
        Respond(s, await s.Withdrawals.GetAsync(s.Who, id, withdrawal, ct));

    static async Task<IResult> GetSettings([AsParameters] BankingServices s, CancellationToken ct) => Respond(s, await s.Settings.GetAsync(s.Who, ct));

    static async Task<IResult> UpdateSettings(BankingSettingsRequest body, [AsParameters] BankingServices s, CancellationToken ct) =>
        Respond(s, await s.Settings.UpdateAsync(s.Who, body, ct));

    /// <summary><c>from</c>/<c>to</c>: instants (<c>2026-11-01T00:00:00Z</c>) or dates (<c>2026-11-01</c>, inclusive, in the
    /// tenant's time zone).</summary>
    static async Task<IResult> ListTransactions(string id, [AsParameters] BankingServices s, string? from, string? to, string? q,
        long? min_amount, long? max_amount, int? limit, string? after, CancellationToken ct) =>
        Respond(s, await s.History.ListAsync(s.Who, id, new HistoryQuery(from, to, q, min_amount, max_amount, limit, after), ct));

    static async Task<IResult> RequestStatement(string id, StatementRequest body, [AsParameters] BankingServices s, CancellationToken ct)
    {
        var r = await s.Statements.RequestAsync(s.Who, id, body, ct);
        // Rendering is background work: 202 with the pending statement, 200 when the period was asked for before.
        return r.Outcome == BankOutcome.Created ? TypedResults.Accepted($"/v1/accounts/{id}/statements/{r.Value!.Id}", r.Value) : Respond(s, r);
    }

    static async Task<IResult> ListStatements(string id, [AsParameters] BankingServices s, int? limit, string? after, CancellationToken ct) =>
        Respond(s, await s.Statements.ListAsync(s.Who, id, limit, after, ct));

    static async Task<IResult> GetStatement(string id, string sid, [AsParameters] BankingServices s, CancellationToken ct)
    {
        string? format = null;
        var statementId = sid;
        foreach (var f in Statements.Statements.MediaTypes.Keys)
            if (sid.EndsWith("." + f, StringComparison.Ordinal)) (format, statementId) = (f, sid[..^(f.Length + 1)]);
        var bySuffix = format is not null;
        format ??= FormatFromAccept(s.Http.Request.Headers.Accept);
        if (format is null)
            return Problems.Of(406, "not_acceptable", "Not acceptable", "Statements are served as application/json, application/pdf, text/csv or application/xml.");
        var statement = await s.Statements.GetForCallerAsync(s.Who, id, statementId, ct);
        if (!statement.Succeeded || format == "json") return Respond(s, statement);
        if (statement.Value!.Status != "ready")
        {
            s.Http.Response.Headers.RetryAfter = "2";
            return Problems.Of(409, BankingCodes.StatementNotReady, "Statement not ready", $"Statement '{statementId}' is still being rendered.");
        }
        var file = await s.Statements.FindFileAsync(s.Caller.TenantId, statementId, format, ct)
            ?? throw new InvalidOperationException($"Statement {statementId} is ready without its {format} file.");
        return new StatementFileResult(s.Statements, s.Caller.TenantId, file, s.Options.Value.StatementMaxAgeSeconds, varyByAccept: !bySuffix);
    }

    static string? FormatFromAccept(Microsoft.Extensions.Primitives.StringValues accept)
    {
        if (accept.Count == 0) return "json";
        if (!MediaTypeHeaderValue.TryParseList(accept, out var types)) return "json";
        foreach (var t in types.OrderByDescending(t => t.Quality ?? 1))
        {
            var media = t.MediaType.Value;
            var format = media switch
            {
                "application/pdf" => "pdf",
                "text/csv" => "csv",
                "application/xml" or "text/xml" => "xml",
                "application/json" or "application/*" or "*/*" or "application/problem+json" => "json",
                _ => null,
            };
            if (format is not null) return format;
        }
        return null;
    }

    static async Task<IResult> ListAudit([AsParameters] BankingServices s, string? target_type, string? target_id, int? limit, string? after, CancellationToken ct) =>
        Respond(s, await s.Audit.ListAsync(s.Who, target_type, target_id, limit, after, ct));

    static IResult Respond<T>(BankingServices s, BankResult<T> result, Func<T, string>? location = null)
    {
        switch (result.Outcome)
        {
            case BankOutcome.Created when location is not null:
                return TypedResults.Created(location(result.Value!), result.Value);
            case BankOutcome.Replayed:
                s.Http.Response.Headers["Idempotent-Replayed"] = "true";
                return TypedResults.Ok(result.Value);
            case BankOutcome.Failed:
                return Problem(result.Error!);
            default:
                return TypedResults.Ok(result.Value);
        }
    }

    static IResult Problem(BankError e)
    {
        if (e.Status == 400 && e.Code == LedgerCodes.ValidationFailed)
            return Problems.Validation(new Dictionary<string, string[]>(e.Errors ?? new Dictionary<string, string[]>()));
        var title = e.Status == 404 ? "Not found" : char.ToUpperInvariant(e.Code[0]) + e.Code[1..].Replace('_', ' ');
        return Problems.Of(e.Status, e.Code, title, e.Detail, e.Extra is null ? null : new Dictionary<string, object?>(e.Extra));
    }
}

/// <summary>A stored statement file: strong ETag (its SHA-256), immutable caching, 304 on a matching <c>If-None-Match</c>,
/// streamed chunk by chunk and hashed on the way; bytes that no longer match the stored hash abort the response.</summary>
internal sealed partial class StatementFileResult(Statements.Statements statements, string tenantId, StoredFile file, int maxAgeSeconds, bool varyByAccept) : IResult
{
    public async Task ExecuteAsync(HttpContext http)
    {
        var etag = new EntityTagHeaderValue($"\"{file.Sha256}\"");
        var headers = http.Response.GetTypedHeaders();
        headers.ETag = etag;
        headers.CacheControl = new CacheControlHeaderValue { Private = true, MaxAge = TimeSpan.FromSeconds(maxAgeSeconds), Extensions = { new("immutable") } };
        if (varyByAccept) http.Response.Headers.Vary = "Accept";
        var ifNoneMatch = http.Request.GetTypedHeaders().IfNoneMatch;
        if (ifNoneMatch.Any(t => t.Equals(EntityTagHeaderValue.Any) || t.Compare(etag, useStrongComparison: false)))
        {
            http.Response.StatusCode = StatusCodes.Status304NotModified;
            return;
        }
        http.Response.ContentType = Statements.Statements.MediaTypes[file.Format];
        http.Response.ContentLength = file.SizeBytes;
        http.Response.Headers.ContentDisposition = $"attachment; filename=\"{file.StatementId}.{file.Format}\"";
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        await foreach (var chunk in statements.ReadChunksAsync(tenantId, file, http.RequestAborted))
        {
            hash.AppendData(chunk);
            await http.Response.Body.WriteAsync(chunk, http.RequestAborted);
        }
        if (Convert.ToHexStringLower(hash.GetHashAndReset()) != file.Sha256)
        {
            // Served bytes must be the issued ones: cut the response short so no client takes it as complete.
            LogTampered(http.RequestServices.GetRequiredService<ILogger<StatementFileResult>>(), tenantId, file.StatementId, file.Format);
            http.Abort();
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Statement {StatementId} ({Format}) of tenant {TenantId} does not match its stored SHA-256: response aborted")]
    static partial void LogTampered(ILogger logger, string tenantId, string statementId, string format);
}
