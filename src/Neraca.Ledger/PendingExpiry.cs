using Dapper;
using Microsoft.Extensions.Options;
using Neraca.Storage;

namespace Neraca.Ledger;

/// <summary>Voids pending transfers whose timeout passed (status <c>expired</c>), through the posting pipeline so it
/// is batched, chained and audited like any other posting. Several replicas may sweep at once: expiring an already
/// expired transfer is a no-op.</summary>
internal sealed partial class PendingExpiry(Database database, LedgerStore store, PostingPipeline pipeline, TimeProvider clock, ILogger<PendingExpiry> logger)
{
    // Counting every open pending is a scan of open_pendings: once per scrape interval is enough, not every sweep.
    static readonly TimeSpan CountInterval = TimeSpan.FromSeconds(15);
    long _pendingCount;
    DateTimeOffset _countedAt = DateTimeOffset.MinValue;

    /// <summary>Pending transfers open at the last count (all ledgers of all tenants, at most 15 s old): the pending gauge.</summary>
    public long PendingCount => Interlocked.Read(ref _pendingCount);

    public async Task<int> ExpireDueAsync(int max, CancellationToken ct)
    {
        var nowUs = DbTime.ToMicros(clock.GetUtcNow());
        List<Due> due;
        await using (var connection = await database.OpenAsync(ct))
        {
            due = (await connection.QueryAsync<Due>(new CommandDefinition("""
                SELECT o.tenant_id AS TenantId, o.ledger_id AS LedgerId, o.transfer_id AS TransferId, t.debit_account_id AS DebitAccountId, t.credit_account_id AS CreditAccountId
                FROM open_pendings o JOIN transfers t ON t.tenant_id = o.tenant_id AND t.id = o.transfer_id
                WHERE o.timeout_at_us IS NOT NULL AND o.timeout_at_us <= @nowUs
                ORDER BY o.timeout_at_us LIMIT @max
                """, new { nowUs, max }, cancellationToken: ct))).ToList();
            if (clock.GetUtcNow() - _countedAt >= CountInterval)
            {
                Interlocked.Exchange(ref _pendingCount, await connection.ExecuteScalarAsync<long>(new CommandDefinition("SELECT count(*) FROM open_pendings", cancellationToken: ct)));
                _countedAt = clock.GetUtcNow();
            }
        }
        var expired = 0;
        foreach (var group in due.GroupBy(d => (d.TenantId, d.LedgerId)))
        {
            if (await store.GetLedgerAsync(group.Key.TenantId, group.Key.LedgerId, ct) is not { } ledger) continue;
            var ops = group.Select(d => new PostingOp { Kind = OpKind.Expire, TransferId = d.TransferId, DebitAccountId = d.DebitAccountId, CreditAccountId = d.CreditAccountId }).ToArray();
            var results = await pipeline.SubmitAsync(group.Key.TenantId, ledger, ops, ct);
            expired += results.Count(r => r.Status == OpStatus.Created);
        }
        if (expired > 0) LogExpired(logger, expired);
        return expired;
    }

    sealed class Due
    {
        public string TenantId { get; set; } = "";
        public string LedgerId { get; set; } = "";
        public string TransferId { get; set; } = "";
        public string DebitAccountId { get; set; } = "";
        public string CreditAccountId { get; set; } = "";
    }

    [LoggerMessage(1, LogLevel.Information, "Expired {Count} pending transfers past their timeout")]
    static partial void LogExpired(ILogger logger, int count);
}

/// <summary>Worker-role loop that sweeps expired pending transfers every <see cref="LedgerOptions.ExpiryIntervalMs"/>.</summary>
internal sealed partial class PendingExpiryService(PendingExpiry expiry, IOptions<LedgerOptions> options, TimeProvider clock, ILogger<PendingExpiryService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(options.Value.ExpiryIntervalMs), clock);
        do
        {
            try
            {
                while (await expiry.ExpireDueAsync(options.Value.ExpiryBatchMax, stoppingToken) >= options.Value.ExpiryBatchMax) { }
            }
            catch (Exception e) when (e is System.Data.Common.DbException or TimeoutException or InvalidOperationException)
            {
                LogSweepFailed(logger, e);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    [LoggerMessage(1, LogLevel.Warning, "Sweep of expired pending transfers failed; retrying on the next tick")]
    static partial void LogSweepFailed(ILogger logger, Exception e);
}
