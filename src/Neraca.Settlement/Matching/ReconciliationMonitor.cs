using Dapper;
using Microsoft.Extensions.Options;
using Neraca.Storage;

namespace Neraca.Settlement.Matching;

/// <summary>Refreshes the reconciliation gauges (oldest statement not fully matched, oldest open exception) from the
/// database, across tenants, every <see cref="SettlementOptions.MonitorIntervalMs"/>. Runs on the worker role; every
/// worker reports the same cluster-wide values, so alert on their max.</summary>
internal sealed partial class ReconciliationMonitor(Database database, SettlementMetrics metrics, IOptions<SettlementOptions> options, TimeProvider clock,
    ILogger<ReconciliationMonitor> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(options.Value.MonitorIntervalMs), clock);
        do
        {
            try { await RefreshAsync(stoppingToken); }
            catch (Exception e) when (e is System.Data.Common.DbException or TimeoutException or InvalidOperationException && !stoppingToken.IsCancellationRequested)
            {
                LogRefreshFailed(e);
            }
        } while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    public async Task RefreshAsync(CancellationToken ct)
    {
        await using var connection = await database.OpenReadAsync(ct);
        var statement = await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
            "SELECT min(imported_at_us) FROM recon_statements WHERE fully_matched_at_us IS NULL", cancellationToken: ct));
        var exception = await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
            "SELECT min(created_at_us) FROM recon_exceptions WHERE status = 'open'", cancellationToken: ct));
        var nowUs = DbTime.ToMicros(clock.GetUtcNow());
        metrics.OldestUnmatchedStatementAgeSeconds = statement is { } s ? Math.Max(0, nowUs - s) / 1e6 : 0;
        metrics.OldestOpenExceptionAgeSeconds = exception is { } x ? Math.Max(0, nowUs - x) / 1e6 : 0;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not refresh the reconciliation gauges")]
    partial void LogRefreshFailed(Exception e);
}
