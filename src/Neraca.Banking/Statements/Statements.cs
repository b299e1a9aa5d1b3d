using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Dapper;
using Microsoft.Extensions.Options;
using Neraca.Banking.Accounts;
using Neraca.Banking.History;
using Neraca.Events;
using Neraca.Hosting;
using Neraca.Jobs;
using Neraca.Ledger;
using Neraca.Security;
using Neraca.Storage;

namespace Neraca.Banking.Statements;

public sealed record StatementRequest(DateOnly? From = null, DateOnly? To = null);

public sealed record StatementFile(string Format, string MediaType, string Sha256, long SizeBytes, string Url);

/// <summary>A statement: <c>pending</c> until the job has rendered every format, then <c>ready</c> and never changed.</summary>
public sealed record StatementResponse(string Id, string Account, DateOnly From, DateOnly To, string Status, string Currency, long? OpeningBalance,
    long? ClosingBalance, long? TotalCredits, long? TotalDebits, long? EntryCount, IReadOnlyList<StatementFile> Files, DateTimeOffset CreatedAt,
    DateTimeOffset? ReadyAt, string? TimeZone);

/// <summary>A stored file of a statement, streamed in chunks.</summary>
public sealed record StoredFile(string StatementId, string Format, string Sha256, long SizeBytes, int Chunks);

/// <summary>Statements for a month or any closed range of dates (tenant time zone), in PDF, CSV and camt.053. Each is
/// rendered once by the <c>banking.statement</c> job from the journal (two streamed passes over the account's entries),
/// checked (opening + credits - debits = closing, and every running balance follows from the one before), stored with
/// the SHA-256 of each file, and from then on only served: the same bytes, a strong ETag, immutable caching.</summary>
public sealed class Statements(Database database, SqlDialect dialect, ILedger ledger, BankAccounts accounts, Transactions transactions,
    Customers.Customers customers, Settings.TenantSettings settings, JobStore jobs, IOptions<BankingOptions> options, TimeProvider clock)
{
    public const string JobType = "banking.statement";
    public const int ChunkBytes = 1024 * 1024;
    const int PageEntries = 1000;

    public static readonly IReadOnlyDictionary<string, string> MediaTypes = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["pdf"] = "application/pdf", ["csv"] = "text/csv", ["xml"] = "application/xml",
    };

    public static string IdFor(string tenantId, string accountId, DateOnly from, DateOnly to) =>
        "stm_" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{tenantId}\n{accountId}\n{from:yyyy-MM-dd}\n{to:yyyy-MM-dd}")))[..26];

    public async Task<BankResult<StatementResponse>> RequestAsync(BankCaller caller, string accountId, StatementRequest body, CancellationToken ct)
    {
        if (body.From is not { } from) return BankError.Invalid("from", "Required: a date (yyyy-MM-dd) in the tenant's time zone.");
        if (body.To is not { } to) return BankError.Invalid("to", "Required: a date (yyyy-MM-dd) in the tenant's time zone.");
        if (to < from) return BankError.Invalid("to", "Must not be before 'from'.");
        if (to.DayNumber - from.DayNumber + 1 > options.Value.StatementDaysMax) return BankError.Invalid("to", $"A statement covers at most {options.Value.StatementDaysMax} days.");
        var reached = await accounts.ReachAsync(caller, accountId, ct);
        if (!reached.Succeeded) return reached.Error!;
        var zone = await settings.ZoneAsync(caller.TenantId, ct);
        var today = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(clock.GetUtcNow(), zone).DateTime);
        if (to >= today)
            return BankError.Unprocessable(BankingCodes.StatementPeriodOpen, $"A statement is issued once its last day is over: 'to' must be before {today:yyyy-MM-dd}.");
        var id = IdFor(caller.TenantId, accountId, from, to);
        await using var connection = await database.OpenAsync(ct);
        var created = await EnsureAsync(connection, null, caller.TenantId, reached.Value!, id, from, to, zone.Id, ct);
        var statement = (await GetAsync(caller.TenantId, id, ct))!;
        return created ? BankResult<StatementResponse>.Created(statement) : BankResult<StatementResponse>.Ok(statement);
    }

    /// <summary>Inserts the statement and enqueues its rendering (keyed by the statement id: once), in the caller's transaction.</summary>
    async Task<bool> EnsureAsync(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction? outer, string tenantId, BankAccount account,
        string id, DateOnly from, DateOnly to, string zoneId, CancellationToken ct)
    {
        var tx = outer ?? await dialect.BeginWriteAsync(connection, ct);
        try
        {
            var scale = options.Value.Currencies.GetValueOrDefault(account.Currency)?.Scale ?? 2;
            var inserted = await connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO banking_statements (tenant_id, id, account_id, period_from, period_to, status, currency, scale, created_at_us, time_zone)
                VALUES (@tenantId, @id, @accountId, @from, @to, 'pending', @currency, @scale, @nowUs, @zoneId) ON CONFLICT DO NOTHING
                """, new { tenantId, id, accountId = account.Id, from = Day(from), to = Day(to), currency = account.Currency, scale, nowUs = DbTime.ToMicros(clock.GetUtcNow()),
                zoneId },
                tx, cancellationToken: ct));
            if (inserted == 1)
                await jobs.EnqueueAsync(connection, tx, new JobRequest(tenantId, JobType, JsonSerializer.Serialize(new { statement = id }), Key: id), ct);
            if (outer is null) await tx.CommitAsync(ct);
            return inserted == 1;
        }
        finally
        {
            if (outer is null) await tx.DisposeAsync();
        }
    }

    static string Day(DateOnly d) => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    public async Task<BankResult<StatementResponse>> GetForCallerAsync(BankCaller caller, string accountId, string id, CancellationToken ct)
    {
        var reached = await accounts.ReachAsync(caller, accountId, ct);
        if (!reached.Succeeded) return reached.Error!;
        var s = await GetAsync(caller.TenantId, id, ct);
        return s is not null && s.Account == accountId ? BankResult<StatementResponse>.Ok(s)
            : BankError.NotFound(BankingCodes.StatementNotFound, $"No statement '{id}' of account '{accountId}'.");
    }

    public async Task<BankResult<Page<StatementResponse>>> ListAsync(BankCaller caller, string accountId, int? limit, string? after, CancellationToken ct)
    {
        if (limit is < 1 or > 1000) return BankError.Invalid("limit", "Must be from 1 to 1000.");
        var reached = await accounts.ReachAsync(caller, accountId, ct);
        if (!reached.Succeeded) return reached.Error!;
        var take = limit ?? 100;
        await using var connection = await database.OpenReadAsync(ct);
        var rows = (await connection.QueryAsync<Row>(new CommandDefinition($"""
            SELECT {Columns} FROM banking_statements WHERE tenant_id = @tenantId AND account_id = @accountId AND (@afterId IS NULL OR id > @afterId)
            ORDER BY id LIMIT @take
            """, new { tenantId = caller.TenantId, accountId, afterId = Cursor.Decode(after), take = take + 1 }, cancellationToken: ct))).ToList();
        var more = rows.Count > take;
        if (more) rows.RemoveAt(rows.Count - 1);
        var files = await FilesAsync(connection, caller.TenantId, rows.Select(r => r.id).ToArray(), ct);
        return BankResult<Page<StatementResponse>>.Ok(new(rows.Select(r => r.ToResponse(files[r.id].ToList())).ToList(), more ? Cursor.Encode(rows[^1].id) : null));
    }

    const string Columns = "id, account_id, period_from, period_to, status, currency, scale, opening_balance, closing_balance, credits, debits, entry_count, created_at_us, ready_at_us, time_zone";

    public async Task<StatementResponse?> GetAsync(string tenantId, string id, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var row = await connection.QuerySingleOrDefaultAsync<Row>(new CommandDefinition(
            $"SELECT {Columns} FROM banking_statements WHERE tenant_id = @tenantId AND id = @id", new { tenantId, id }, cancellationToken: ct));
        if (row is null) return null;
        return row.ToResponse((await FilesAsync(connection, tenantId, [id], ct))[id].ToList());
    }

    async Task<ILookup<string, StatementFile>> FilesAsync(System.Data.Common.DbConnection connection, string tenantId, string[] ids, CancellationToken ct)
    {
        var rows = await connection.QueryAsync<(string StatementId, string Format, string Sha256, long Size, string AccountId)>(new CommandDefinition($"""
            SELECT f.statement_id, f.format, f.sha256, f.size_bytes, s.account_id FROM banking_statement_files f
            JOIN banking_statements s ON s.tenant_id = f.tenant_id AND s.id = f.statement_id
            WHERE f.tenant_id = @tenantId AND {dialect.InIdList("f.statement_id", "ids")} ORDER BY f.format
            """, new { tenantId, ids = dialect.IdListValue(ids) }, cancellationToken: ct));
        return rows.ToLookup(r => r.StatementId, r => new StatementFile(r.Format, MediaTypes[r.Format], r.Sha256, r.Size,
            $"/v1/accounts/{r.AccountId}/statements/{r.StatementId}.{r.Format}"), StringComparer.Ordinal);
    }

    public async Task<StoredFile?> FindFileAsync(string tenantId, string id, string format, CancellationToken ct)
    {
        await using var connection = await database.OpenReadAsync(ct);
        var row = await connection.QuerySingleOrDefaultAsync<(string Sha256, long Size, int Chunks)?>(new CommandDefinition(
            "SELECT sha256, size_bytes, chunks FROM banking_statement_files WHERE tenant_id = @tenantId AND statement_id = @id AND format = @format",
            new { tenantId, id, format }, cancellationToken: ct));
        return row is { } r ? new StoredFile(id, format, r.Sha256, r.Size, r.Chunks) : null;
    }

    /// <summary>Streams a stored file chunk by chunk (one row in memory at a time).</summary>
    public async IAsyncEnumerable<byte[]> ReadChunksAsync(string tenantId, StoredFile file, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        await using var connection = await database.OpenReadAsync(ct);
        for (var n = 0; n < file.Chunks; n++)
            yield return await connection.ExecuteScalarAsync<byte[]>(new CommandDefinition(
                "SELECT data FROM banking_statement_chunks WHERE tenant_id = @tenantId AND statement_id = @id AND format = @format AND chunk_no = @n",
                new { tenantId, id = file.StatementId, format = file.Format, n }, cancellationToken: ct)) ?? throw new InvalidOperationException("chunk missing");
    }

    // ---------------- rendering (the job) ----------------

    /// <summary>Renders and stores every format of a pending statement; a ready one is left as it is.</summary>
    public async Task GenerateAsync(string tenantId, string id, CancellationToken ct)
    {
        var s = await GetAsync(tenantId, id, ct) ?? throw new PermanentJobFailureException($"No statement '{id}'.");
        if (s.Status == "ready") return;
        var account = await accounts.FindAsync(tenantId, s.Account, ct) ?? throw new PermanentJobFailureException($"No account '{s.Account}'.");
        // The zone the statement was requested in (statements from before 0701 have none: the tenant's, as then).
        var zone = s.TimeZone is { } zoneId ? TimeZoneInfo.FindSystemTimeZoneById(zoneId) : await settings.ZoneAsync(tenantId, ct);
        var start = Midnight(s.From, zone);
        var end = Midnight(s.To.AddDays(1), zone);
        var opening = await BalanceAsync(tenantId, s.Account, start.AddTicks(-10), ct);
        var closing = await BalanceAsync(tenantId, s.Account, end.AddTicks(-10), ct);
        var holder = await customers.FindAsync(tenantId, account.CustomerId, ct);
        var scale = options.Value.Currencies.GetValueOrDefault(s.Currency)?.Scale ?? 2;
        var header = new StatementHeader(id, s.Account, s.Currency, scale, s.From, s.To, s.CreatedAt, start, end, opening, closing, 0, 0, 0, 0,
            holder is null ? null : Masking.Name(holder.Name));

        using var csv = TempFile();
        using var pdf = TempFile();
        using var xml = TempFile();
        // Pass 1: totals, running-balance check, CSV.
        long credits = 0, debits = 0, creditCount = 0, debitCount = 0, balance = opening;
        using (var writer = new CsvStatementWriter(csv, scale))
            await foreach (var line in LinesAsync(tenantId, s.Account, start, end, zone, ct))
            {
                if (line.Credit) { credits = checked(credits + line.Amount); creditCount++; balance = checked(balance + line.Amount); }
                else { debits = checked(debits + line.Amount); debitCount++; balance = checked(balance - line.Amount); }
                if (balance != line.BalanceAfter)
                    throw new InvalidOperationException($"Statement {id}: entry {line.TransferId} shows balance {line.BalanceAfter}, the entries before it make {balance}.");
                writer.Write(line);
            }
        if (checked(opening + credits - debits) != closing)
            throw new InvalidOperationException($"Statement {id}: opening {opening} + credits {credits} - debits {debits} is not the closing balance {closing}.");
        header = header with { Credits = credits, Debits = debits, CreditCount = creditCount, DebitCount = debitCount };
        // Pass 2: the formats that show totals before the entries.
        using (var p = new PdfStatementWriter(pdf, header))
        using (var x = new CamtStatementWriter(xml, header))
            await foreach (var line in LinesAsync(tenantId, s.Account, start, end, zone, ct))
            {
                p.Write(line);
                x.Write(line);
            }

        var nowUs = DbTime.ToMicros(clock.GetUtcNow());
        await using var connection = await database.OpenAsync(ct);
        await using var tx = await dialect.BeginWriteAsync(connection, ct);
        var claimed = await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE banking_statements SET status = 'ready', opening_balance = @opening, closing_balance = @closing, credits = @credits, debits = @debits,
                entry_count = @count, ready_at_us = @nowUs
            WHERE tenant_id = @tenantId AND id = @id AND status = 'pending'
            """, new { tenantId, id, opening, closing, credits, debits, count = creditCount + debitCount, nowUs }, tx, cancellationToken: ct));
        if (claimed == 0) return; // rendered meanwhile by another attempt: keep what was issued
        var hashes = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (format, file) in new[] { ("csv", csv), ("pdf", pdf), ("xml", xml) })
            hashes[format] = await StoreAsync(connection, tx, tenantId, id, format, file, ct);
        await EventLog.AppendAsync(connection, tx, tenantId, null, new NewEvent(BankingEventTypes.StatementReady, id, JsonSerializer.Serialize(new
        {
            id, account = s.Account, from = Day(s.From), to = Day(s.To), opening_balance = opening, closing_balance = closing, entry_count = creditCount + debitCount,
            sha256 = hashes,
        })), nowUs, ct);
        await tx.CommitAsync(ct);
    }

    static FileStream TempFile() => new(Path.Combine(Path.GetTempPath(), "neraca-stm-" + Guid.NewGuid().ToString("N")), FileMode.CreateNew, FileAccess.ReadWrite,
        FileShare.None, 64 * 1024, FileOptions.DeleteOnClose);

    static async Task<string> StoreAsync(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction tx, string tenantId, string id, string format,
        FileStream file, CancellationToken ct)
    {
        file.Position = 0;
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[ChunkBytes];
        var chunks = 0;
        while (true)
        {
            var read = await file.ReadAtLeastAsync(buffer, ChunkBytes, throwOnEndOfStream: false, ct);
            if (read == 0) break;
            hash.AppendData(buffer, 0, read);
            await connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO banking_statement_chunks (tenant_id, statement_id, format, chunk_no, data) VALUES (@tenantId, @id, @format, @n, @data)
                """, new { tenantId, id, format, n = chunks, data = buffer.AsSpan(0, read).ToArray() }, tx, cancellationToken: ct));
            chunks++;
            if (read < ChunkBytes) break;
        }
        var sha = Convert.ToHexStringLower(hash.GetHashAndReset());
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO banking_statement_files (tenant_id, statement_id, format, sha256, size_bytes, chunks) VALUES (@tenantId, @id, @format, @sha, @size, @chunks)
            """, new { tenantId, id, format, sha, size = file.Length, chunks }, tx, cancellationToken: ct));
        return sha;
    }

    async Task<long> BalanceAsync(string tenantId, string accountId, DateTimeOffset at, CancellationToken ct)
    {
        var r = await ledger.GetBalanceAtAsync(tenantId, accountId, at, "posted", ct);
        return r.Succeeded ? r.Value!.Balance : throw new InvalidOperationException($"Balance of {accountId}: {r.Error!.Code}");
    }

    public static DateTimeOffset Midnight(DateOnly day, TimeZoneInfo zone)
    {
        var local = day.ToDateTime(TimeOnly.MinValue, DateTimeKind.Unspecified);
        return new DateTimeOffset(local, zone.GetUtcOffset(local)).ToUniversalTime();
    }

    /// <summary>The account's entries booked in [start, end), a page of the ledger and one query of banking's details at a time.</summary>
    async IAsyncEnumerable<StatementLine> LinesAsync(string tenantId, string accountId, DateTimeOffset start, DateTimeOffset end, TimeZoneInfo zone,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        string? after = null;
        do
        {
            var page = await ledger.ListEntriesAsync(tenantId, accountId, new EntryQuery(start, end, PageEntries, after), ct);
            if (!page.Succeeded) throw new InvalidOperationException($"Entries of {accountId}: {page.Error!.Code}");
            var details = await transactions.DetailsAsync(tenantId, accountId, page.Value!.Data.Select(e => e.TransferId).Distinct(StringComparer.Ordinal).ToArray(), ct);
            foreach (var e in page.Value.Data)
            {
                var d = details.GetValueOrDefault(e.TransferId);
                yield return new StatementLine(TimeZoneInfo.ConvertTime(e.PostedAt, zone), DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(e.EffectiveAt, zone).DateTime),
                    e.TransferId, e.Direction == "credit", e.Amount, e.BalanceAfter, d?.reference, d?.description, d?.counterparty, d?.kind);
            }
            after = page.Value.NextCursor;
        } while (after is not null);
    }

    // ---------------- the monthly run ----------------

    /// <summary>Last month's statements of every account of the tenant that was open during it (the monthly job, once per
    /// tenant and month: marked in <c>banking_statement_runs</c>).</summary>
    public async Task RunMonthlyAsync(JobExecution job, CancellationToken ct)
    {
        var tenantId = job.TenantId;
        var zone = await settings.ZoneAsync(tenantId, ct);
        var local = TimeZoneInfo.ConvertTime(clock.GetUtcNow(), zone);
        var thisMonth = new DateOnly(local.Year, local.Month, 1);
        var from = thisMonth.AddMonths(-1);
        var to = thisMonth.AddDays(-1);
        var periodFrom = Day(from);
        await using (var connection = await database.OpenReadAsync(ct))
            if (await connection.ExecuteScalarAsync<long>(new CommandDefinition(
                    "SELECT count(*) FROM banking_statement_runs WHERE tenant_id = @tenantId AND period_from = @periodFrom", new { tenantId, periodFrom },
                    cancellationToken: ct)) > 0)
                return;
        var startUs = DbTime.ToMicros(Midnight(from, zone));
        var endUs = DbTime.ToMicros(Midnight(thisMonth, zone));
        await job.RunChunksAsync(async (chunk, token) =>
        {
            var rows = (await chunk.Connection.QueryAsync<string>(new CommandDefinition("""
                SELECT id FROM banking_accounts WHERE tenant_id = @tenantId AND id > @after AND created_at_us < @endUs
                  AND (closed_at_us IS NULL OR closed_at_us >= @startUs)
                ORDER BY id LIMIT @limit
                """, new { tenantId, after = chunk.Checkpoint ?? "", endUs, startUs, limit = chunk.ChunkSize }, chunk.Transaction, cancellationToken: token))).ToList();
            var found = rows.Count == 0 ? [] : await accounts.FindManyAsync(tenantId, rows.ToArray(), token);
            foreach (var accountId in rows)
                if (found.TryGetValue(accountId, out var account))
                    await EnsureAsync(chunk.Connection, chunk.Transaction, tenantId, account, IdFor(tenantId, accountId, from, to), from, to, zone.Id, token);
            var done = rows.Count < chunk.ChunkSize;
            if (done)
                await chunk.Connection.ExecuteAsync(new CommandDefinition(
                    "INSERT INTO banking_statement_runs (tenant_id, period_from, created_at_us) VALUES (@tenantId, @periodFrom, @nowUs) ON CONFLICT DO NOTHING",
                    new { tenantId, periodFrom, nowUs = DbTime.ToMicros(clock.GetUtcNow()) }, chunk.Transaction, cancellationToken: token));
            return new ChunkResult(rows.Count > 0 ? rows[^1] : chunk.Checkpoint, rows.Count, done);
        }, ct);
    }

    sealed class Row
    {
        public string id { get; set; } = "";
        public string account_id { get; set; } = "";
        public string period_from { get; set; } = "";
        public string period_to { get; set; } = "";
        public string status { get; set; } = "";
        public string currency { get; set; } = "";
        public int scale { get; set; }
        public long? opening_balance { get; set; }
        public long? closing_balance { get; set; }
        public long? credits { get; set; }
        public long? debits { get; set; }
        public long? entry_count { get; set; }
        public long created_at_us { get; set; }
        public long? ready_at_us { get; set; }
        public string? time_zone { get; set; }

        public StatementResponse ToResponse(IReadOnlyList<StatementFile> files) => new(id, account_id,
            DateOnly.ParseExact(period_from, "yyyy-MM-dd", CultureInfo.InvariantCulture), DateOnly.ParseExact(period_to, "yyyy-MM-dd", CultureInfo.InvariantCulture),
            status, currency, opening_balance, closing_balance, credits, debits, entry_count, files, DbTime.FromMicros(created_at_us),
            ready_at_us is { } r ? DbTime.FromMicros(r) : null, time_zone);
    }
}
