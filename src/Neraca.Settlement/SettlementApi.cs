using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using Neraca.Hosting;
using Neraca.Ledger;
using Neraca.Settlement.Counterparties;
using Neraca.Settlement.Matching;
using Neraca.Settlement.Runs;
using Neraca.Settlement.Statements;
using Neraca.Tenancy;

namespace Neraca.Settlement;

/// <summary>Services every settlement handler needs, bundled for <c>[AsParameters]</c>.</summary>
internal sealed record SettlementServices(CounterpartyDirectory Counterparties, SettlementRuns Runs, StatementImporter Importer, ReconciliationStore Store,
    ExceptionQueue Exceptions, CurrentCaller Caller, HttpContext Http)
{
    public string TenantId => Caller.TenantId;
}

/// <summary>The HTTP surface of settlement (<c>/v1/settlement</c>) and reconciliation (<c>/v1/reconciliation</c>): a thin
/// mapping of the capability's types onto routes, status codes and problem+json. Server keys only: counterparties,
/// runs and statements are the provider's books, never an end user's.</summary>
internal static class SettlementApi
{
    public static IEndpointRouteBuilder MapSettlementApi(this IEndpointRouteBuilder app)
    {
        var settlementRead = Group(app, "/v1/settlement", "Settlement", Scopes.LedgerRead);
        var settlementWrite = Group(app, "/v1/settlement", "Settlement", Scopes.LedgerWrite);
        settlementWrite.MapPost("/counterparties", CreateCounterparty).Produces<CounterpartyResponse>(201).Produces<CounterpartyResponse>();
        settlementWrite.MapPut("/counterparties/{id}", UpdateCounterparty).Produces<CounterpartyResponse>();
        settlementRead.MapGet("/counterparties", ListCounterparties).Produces<Page<CounterpartyResponse>>();
        settlementRead.MapGet("/counterparties/{id}", GetCounterparty).Produces<CounterpartyResponse>();
        settlementRead.MapGet("/positions", Positions).Produces<PositionsResponse>();
        settlementWrite.MapPost("/runs", CreateRun).Produces<RunResponse>(201).Produces<RunResponse>();
        settlementRead.MapGet("/runs", ListRuns).Produces<Page<RunResponse>>();
        settlementRead.MapGet("/runs/{id}", GetRun).Produces<RunResponse>();
        settlementRead.MapGet("/runs/{id}/file", RunFile).Produces<string>(contentType: "text/csv").Produces<string>(contentType: "text/plain");

        var reconRead = Group(app, "/v1/reconciliation", "Reconciliation", Scopes.LedgerRead);
        var reconWrite = Group(app, "/v1/reconciliation", "Reconciliation", Scopes.LedgerWrite);
        var statementMax = app.ServiceProvider.GetRequiredService<IOptions<SettlementOptions>>().Value.StatementBytesMax;
        reconWrite.MapPost("/statements", ImportStatement).WithMetadata(new RequestSizeLimitAttribute(statementMax))
            .WithFormOptions(multipartBodyLengthLimit: statementMax).Produces<StatementResponse>(201).Produces<StatementResponse>();
        reconRead.MapGet("/statements", ListStatements).Produces<Page<StatementResponse>>();
        reconRead.MapGet("/statements/{id}", GetStatement).Produces<StatementResponse>();
        reconRead.MapGet("/statements/{id}/lines", ListLines).Produces<Page<LineResponse>>();
        reconRead.MapGet("/exceptions", ListExceptions).Produces<Page<ExceptionResponse>>();
        reconRead.MapGet("/exceptions/{id}", GetException).Produces<ExceptionResponse>();
        reconWrite.MapPost("/exceptions/{id}/resolve", Resolve).Produces<ExceptionResponse>();

        foreach (var read in new[] { settlementRead, reconRead }) read.ProducesProblem(400).ProducesProblem(403).ProducesProblem(404);
        foreach (var write in new[] { settlementWrite, reconWrite })
            write.ProducesProblem(400).ProducesProblem(403).ProducesProblem(404).ProducesProblem(409).ProducesProblem(413).ProducesProblem(415).ProducesProblem(422);
        return app;
    }

    static RouteGroupBuilder Group(IEndpointRouteBuilder app, string prefix, string tag, string scope)
    {
        var group = app.MapGroup(prefix).WithTags(tag).RequireAuthorization(scope);
        group.AddEndpointFilter(async (context, next) =>
            context.HttpContext.RequestServices.GetRequiredService<CurrentCaller>().IsEndUser
                ? Problems.Of(StatusCodes.Status403Forbidden, SettlementCodes.ServerKeyRequired, "Server key required",
                    "Settlement and reconciliation are available to server API keys only.")
                : await next(context));
        return group;
    }

    // ---------------- counterparties ----------------

    static async Task<IResult> CreateCounterparty(CounterpartyRequest body, [AsParameters] SettlementServices s, CancellationToken ct) =>
        Respond(s, await s.Counterparties.CreateAsync(s.TenantId, body, ct), c => $"/v1/settlement/counterparties/{c.Id}");

    static async Task<IResult> UpdateCounterparty(string id, CounterpartyRequest body, [AsParameters] SettlementServices s, CancellationToken ct) =>
        Respond(s, await s.Counterparties.UpdateAsync(s.TenantId, id, body, ct));

    static async Task<IResult> ListCounterparties([AsParameters] SettlementServices s, int? limit, string? after, CancellationToken ct) =>
        Respond(s, await s.Counterparties.ListAsync(s.TenantId, limit, after, ct));

    static async Task<IResult> GetCounterparty(string id, [AsParameters] SettlementServices s, CancellationToken ct) =>
        Respond(s, await s.Counterparties.GetResponseAsync(s.TenantId, id, ct));

    // ---------------- positions and runs ----------------

    static async Task<IResult> Positions([AsParameters] SettlementServices s, string? business_date, string? counterparty, CancellationToken ct) =>
        Respond(s, await s.Runs.PositionsAsync(s.TenantId, business_date, counterparty, ct));

    static async Task<IResult> CreateRun(RunRequest body, [AsParameters] SettlementServices s, CancellationToken ct) =>
        Respond(s, await s.Runs.CreateAsync(s.TenantId, body, "api", ct), r => $"/v1/settlement/runs/{r.Id}");

    static async Task<IResult> ListRuns([AsParameters] SettlementServices s, string? business_date, int? limit, string? after, CancellationToken ct) =>
        Respond(s, await s.Runs.ListAsync(s.TenantId, business_date, limit, after, ct));

    static async Task<IResult> GetRun(string id, [AsParameters] SettlementServices s, CancellationToken ct) =>
        await s.Runs.GetAsync(s.TenantId, id, ct) is { } run ? TypedResults.Ok(run) : RunNotFound(id);

    static async Task<IResult> RunFile(string id, [AsParameters] SettlementServices s, string? format, CancellationToken ct)
    {
        if (format is not (null or "csv" or "fixed")) return Problems.Validation("format", "csv (default) or fixed.");
        if (await s.Runs.GetAsync(s.TenantId, id, ct) is not { } run) return RunNotFound(id);
        var isCsv = format is null or "csv";
        s.Http.Response.Headers.ContentDisposition = $"attachment; filename=\"settlement-{run.BusinessDate}-{run.Id}.{(isCsv ? "csv" : "txt")}\"";
        return TypedResults.Text(isCsv ? SettlementFiles.Csv(run) : SettlementFiles.Fixed(run), isCsv ? "text/csv" : "text/plain", System.Text.Encoding.ASCII);
    }

    static IResult RunNotFound(string id) => Problems.NotFound(SettlementCodes.RunNotFound, $"No settlement run '{id}'.");

    // ---------------- statements ----------------

    /// <summary>The raw body (its media type says the format) or a multipart upload's field <c>file</c>.</summary>
    static async Task<IResult> ImportStatement([AsParameters] SettlementServices s, string? counterparty, string? format, CancellationToken ct)
    {
        var request = s.Http.Request;
        if (request.HasFormContentType)
        {
            var form = await request.ReadFormAsync(ct);
            if (form.Files.GetFile("file") is not { } file) return Problems.Validation("file", "Required: the statement as the multipart field 'file'.");
            await using var upload = file.OpenReadStream();
            var mediaType = file.ContentType is { Length: > 0 } t ? t.Split(';')[0].Trim() : null;
            format ??= Path.GetExtension(file.FileName).ToLowerInvariant() switch
            {
                ".xml" => "camt053",
                ".sta" or ".mt940" or ".940" => "mt940",
                ".csv" => "csv",
                _ => null,
            };
            return Respond(s, await s.Importer.ImportAsync(s.TenantId, counterparty, format, mediaType, upload, ct), x => $"/v1/reconciliation/statements/{x.Id}");
        }
        var type = request.ContentType?.Split(';')[0].Trim();
        return Respond(s, await s.Importer.ImportAsync(s.TenantId, counterparty, format, type, request.Body, ct), x => $"/v1/reconciliation/statements/{x.Id}");
    }

    static async Task<IResult> ListStatements([AsParameters] SettlementServices s, string? counterparty, int? limit, string? after, CancellationToken ct)
    {
        if (Paging.Limit(limit) is not { } take) return Problem(Paging.LimitProblem());
        var (items, next) = await s.Store.ListStatementsAsync(s.TenantId, counterparty, take, Cursor.Decode(after), ct);
        return TypedResults.Ok(new Page<StatementResponse>(items.Select(i => i.ToResponse()).ToList(), next));
    }

    static async Task<IResult> GetStatement(string id, [AsParameters] SettlementServices s, CancellationToken ct) =>
        await s.Store.GetStatementAsync(s.TenantId, id, ct) is { } st ? TypedResults.Ok(st.ToResponse()) : StatementNotFound(id);

    static async Task<IResult> ListLines(string id, [AsParameters] SettlementServices s, string? status, int? limit, string? after, CancellationToken ct)
    {
        if (Paging.Limit(limit) is not { } take) return Problem(Paging.LimitProblem());
        if (status is not null && !LineStatus.All.Contains(status)) return Problems.Validation("status", "matched, unmatched, exception or ignored.");
        if (await s.Store.GetStatementAsync(s.TenantId, id, ct) is null) return StatementNotFound(id);
        var (items, next) = await s.Store.ListLinesAsync(s.TenantId, id, status, take, Cursor.DecodeLong(after), ct);
        return TypedResults.Ok(new Page<LineResponse>(items.Select(i => i.ToResponse()).ToList(), next));
    }

    static IResult StatementNotFound(string id) => Problems.NotFound(SettlementCodes.StatementNotFound, $"No statement '{id}'.");

    // ---------------- exceptions ----------------

    static async Task<IResult> ListExceptions([AsParameters] SettlementServices s, string? status, string? counterparty, string? statement, int? limit, string? after,
        CancellationToken ct) =>
        Respond(s, await s.Exceptions.ListAsync(s.TenantId, status, counterparty, statement, limit, after, ct));

    static async Task<IResult> GetException(string id, [AsParameters] SettlementServices s, CancellationToken ct) =>
        Respond(s, await s.Exceptions.GetAsync(s.TenantId, id, ct));

    static async Task<IResult> Resolve(string id, ResolveRequest body, [AsParameters] SettlementServices s, CancellationToken ct) =>
        Respond(s, await s.Exceptions.ResolveAsync(s.TenantId, id, body, ct));

    // ---------------- results ----------------

    /// <summary>Created → 201 with Location, replayed → 200 with <c>Idempotent-Replayed</c>, a failure → problem+json.</summary>
    static IResult Respond<T>(SettlementServices s, SettlementResult<T> r, Func<T, string>? location = null)
    {
        if (r.Error is { } e) return Problem(e);
        if (r.Created && location is not null) return TypedResults.Created(location(r.Value!), r.Value);
        if (r.Replayed) s.Http.Response.Headers["Idempotent-Replayed"] = "true";
        return TypedResults.Ok(r.Value);
    }

    static IResult Problem(SettlementError e)
    {
        if (e.Errors is { } errors) return Problems.Validation(errors.ToDictionary(kv => kv.Key, kv => kv.Value));
        var title = char.ToUpperInvariant(e.Code[0]) + e.Code[1..].Replace('_', ' ');
        return Problems.Of(e.Status, e.Code, title, e.Detail, e.Extra?.ToDictionary(kv => kv.Key, kv => kv.Value));
    }
}
