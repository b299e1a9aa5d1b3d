using Neraca.Events;
using Neraca.Hosting;
using System.Collections.Concurrent;
using System.Data.Common;
using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.Options;
using Neraca.Caching;
using Neraca.Observability;
using Neraca.Storage;

namespace Neraca.Ledger;

/// <summary>The write path. Requests for one ledger queue up; a single loop per ledger drains whatever is waiting
/// into one database transaction (group commit), so a hot account's lock is taken once per batch instead of once per
/// transfer. Each caller gets its own results, and only after the transaction committed.</summary>
internal sealed partial class PostingPipeline : IAsyncDisposable
{
    readonly Database _database;
    readonly PostingStore _store;
    readonly LedgerOptions _options;
    readonly TimeProvider _clock;
    readonly LedgerMetrics _metrics;
    readonly ILogger<PostingPipeline> _logger;
    readonly NeracaCache _cache;
    readonly OutboxNotifier _notifier;
    readonly ConcurrentDictionary<(string Tenant, string Ledger), LedgerQueue> _queues = new();
    readonly CancellationTokenSource _stopping = new();

    public PostingPipeline(Database database, SqlDialect dialect, IOptions<LedgerOptions> options, TimeProvider clock, LedgerMetrics metrics,
        ILogger<PostingPipeline> logger, NeracaCache cache, OutboxNotifier notifier)
    {
        _database = database;
        _cache = cache;
        _notifier = notifier;
        // Group commit with NpgsqlBatch and unnest arrays, or statement by statement in SQLite's one write transaction.
        _store = dialect.Choose<PostingStore>(() => new PostgresPostingStore(database.RowLevelSecurity), () => new SqlitePostingStore());
        _options = options.Value;
        _clock = clock;
        _metrics = metrics;
        _logger = logger;
        metrics.ObserveQueueDepth(() => _queues.Values.Sum(q => (long)q.Depth));
    }

    sealed class Request(string tenantId, IReadOnlyList<PostingOp> ops, ActivityContext caller)
    {
        public string TenantId { get; } = tenantId;
        public IReadOnlyList<PostingOp> Ops { get; } = ops;
        public ActivityContext Caller { get; } = caller;
        public TaskCompletionSource<OpResult[]> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    sealed class LedgerQueue
    {
        public required Channel<Request> Channel { get; init; }
        public required LedgerRecord Ledger { get; init; }
        public Task Loop { get; set; } = Task.CompletedTask;
        public int Depth => Channel.Reader.CanCount ? Channel.Reader.Count : 0;
    }

    /// <summary>Posts the operations (all of one ledger) and returns a result per operation once durable.</summary>
    public async Task<OpResult[]> SubmitAsync(string tenantId, LedgerRecord ledger, IReadOnlyList<PostingOp> ops, CancellationToken ct)
    {
        ObjectDisposedException.ThrowIf(_stopping.IsCancellationRequested, this);
        foreach (var op in ops) AssertPreconditions(op);
        var queue = _queues.GetOrAdd((tenantId, ledger.Id), _ => StartQueue(ledger));
        var request = new Request(tenantId, ops, Activity.Current?.Context ?? default);
        if (!queue.Channel.Writer.TryWrite(request))
            throw new OverloadedException($"More than {_options.QueueRequestsMax} requests are waiting for ledger '{ledger.Code}'.");
        // The caller may give up waiting; the batch still commits (or not) as a whole, and the transfer id makes a retry safe.
        return await request.Done.Task.WaitAsync(ct);
    }

    /// <summary>What every operation must satisfy before it may join a group commit, whoever submits it: an operation
    /// that breaks one is the caller's bug and fails alone, here, instead of failing the batch it would have joined.</summary>
    static void AssertPreconditions(PostingOp op)
    {
        if (op.Rejected is not null) return;
        if (string.IsNullOrEmpty(op.TransferId) || string.IsNullOrEmpty(op.DebitAccountId) || string.IsNullOrEmpty(op.CreditAccountId))
            throw new ArgumentException("A posting operation needs its transfer id and both account ids.", nameof(op));
        if (op.DebitAccountId == op.CreditAccountId)
            throw new ArgumentException($"Transfer '{op.TransferId}': debit and credit accounts must differ.", nameof(op));
        // 0 means "all of it" for a reversal (what is left of the original) and for posting a pending transfer.
        var amountMin = op.Kind == OpKind.Create && op.Reverses is null ? 1 : 0;
        if (op.Amount < amountMin)
            throw new ArgumentException($"Transfer '{op.TransferId}': amount must be at least {amountMin} (got {op.Amount}).", nameof(op));
    }

    LedgerQueue StartQueue(LedgerRecord ledger)
    {
        var queue = new LedgerQueue
        {
            Ledger = ledger,
            Channel = Channel.CreateBounded<Request>(new BoundedChannelOptions(_options.QueueRequestsMax)
            {
                SingleReader = true,
                FullMode = BoundedChannelFullMode.Wait,
            }),
        };
        // The loop serves every caller of the ledger: it must not run in the context of the request that started it
        // (its tenant scope, trace and read-your-writes caller). Each batch confines itself to the ledger's tenant.
        using (ExecutionContext.SuppressFlow()) queue.Loop = Task.Run(() => RunAsync(queue));
        return queue;
    }

    async Task RunAsync(LedgerQueue queue)
    {
        var reader = queue.Channel.Reader;
        var batch = new List<Request>();
        while (await reader.WaitToReadAsync(CancellationToken.None))
        {
            batch.Clear();
            var ops = 0;
            while (reader.TryPeek(out var next) && (batch.Count == 0 || ops + next.Ops.Count <= _options.BatchOperationsMax))
            {
                reader.TryRead(out _);
                batch.Add(next);
                ops += next.Ops.Count;
            }
            await ProcessAsync(queue.Ledger, batch, ops);
        }
    }

    async Task ProcessAsync(LedgerRecord ledger, List<Request> batch, int opCount)
    {
        var tenantId = batch[0].TenantId;
        var links = batch.Where(r => r.Caller != default).Select(r => new ActivityLink(r.Caller)).Take(64).ToList();
        using var activity = NeracaTelemetry.ActivitySource.StartActivity("ledger.post_batch", ActivityKind.Internal, default(ActivityContext), links: links);
        activity?.SetTag("neraca.tenant_id", tenantId);
        activity?.SetTag("neraca.ledger", ledger.Code);
        activity?.SetTag("neraca.batch.operations", opCount);

        var (accountIds, transferIds, reverseTargets) = Keys(batch);
        for (var attempt = 0; ; attempt++)
        {
            var started = Stopwatch.GetTimestamp();
            OpResult[][] results;
            BatchWrites writes;
            try
            {
                (results, writes) = await CommitAsync(tenantId, ledger, batch, accountIds, transferIds, reverseTargets);
            }
            catch (DbException e) when (Database.IsTransient(e) && attempt < _options.RetriesMax)
            {
                LogRetry(_logger, ledger.Code, attempt + 1, e.Message);
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(1, 5 << Math.Min(attempt, 6))), _clock);
                continue;
            }
            catch (Exception e)
            {
                // The transaction did not commit: nothing of this batch happened. Every caller learns it.
                LogBatchFailed(_logger, e, ledger.Code, batch.Count);
                activity?.SetStatus(ActivityStatusCode.Error, e.Message);
                foreach (var r in batch) r.Done.TrySetException(e);
                return;
            }
            // Committed. Nothing below may report the batch as failed: a metric or cache error is logged, never thrown.
            try
            {
                if (writes.Events.Count > 0) _notifier.Committed();
                _metrics.BatchCommitted(opCount, Stopwatch.GetElapsedTime(started).TotalSeconds, results);
                // Read-your-writes across replicas: retire cached balances and history of the changed accounts
                // before any caller is acknowledged (see CacheVersions).
                if (writes.ChangedAccounts.Count > 0) await _cache.InvalidateAsync(writes.ChangedAccounts.Select(a => CacheScopes.Account(tenantId, a)));
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                LogAfterCommitFailed(_logger, e, ledger.Code);
            }
            for (var i = 0; i < batch.Count; i++) batch[i].Done.TrySetResult(results[i]);
            return;
        }
    }

    async Task<(OpResult[][] Results, BatchWrites Writes)> CommitAsync(string tenantId, LedgerRecord ledger, List<Request> batch,
        string[] accountIds, string[] transferIds, string[] reverseTargets)
    {
        await using var connection = await _database.OpenAsync(CancellationToken.None);
        await using var tx = await connection.BeginTransactionAsync(CancellationToken.None);
        var state = await _store.LoadAsync(connection, tx, tenantId, ledger, accountIds, transferIds, reverseTargets, CancellationToken.None);
        var nowUs = DbTime.ToMicros(_clock.GetUtcNow());
        var engine = new PostingEngine(state, nowUs);
        var headBefore = state.Head;
        var linkNo = state.LastLink + 1;
        var firstSeq = state.LastSeq + 1;
        var results = new OpResult[batch.Count][];
        for (var i = 0; i < batch.Count; i++) results[i] = engine.Apply(batch[i].Ops);
        engine.AssertInvariants();

        var writes = engine.Writes;
        if (writes.IsEmpty)
        {
            await tx.RollbackAsync(CancellationToken.None);
            return (results, writes);
        }
        var canonical = AuditChain.Canonical(writes.Transfers, writes.Resolutions, writes.Entries);
        var link = new ChainLinkRow(linkNo, headBefore, AuditChain.Link(headBefore, canonical), firstSeq, state.LastSeq, nowUs);
        // The events' data is the journal row they tell of: rendered when read (LedgerEventData), not written here.
        var events = writes.Events.Select(e => new NewEvent(e.Type, e.Transfer.Id, Events.EventLog.DataInSource)).ToList();
        await _store.WriteAsync(connection, tx, state, writes, link, events, nowUs, CancellationToken.None);
        await tx.CommitAsync(CancellationToken.None);
        return (results, writes);
    }

    static (string[] Accounts, string[] Transfers, string[] Reverses) Keys(List<Request> batch)
    {
        var accounts = new HashSet<string>(StringComparer.Ordinal);
        var transfers = new HashSet<string>(StringComparer.Ordinal);
        var reverses = new HashSet<string>(StringComparer.Ordinal);
        foreach (var request in batch)
        {
            foreach (var op in request.Ops)
            {
                if (op.Rejected is not null) continue;
                accounts.Add(op.DebitAccountId);
                accounts.Add(op.CreditAccountId);
                transfers.Add(op.TransferId);
                if (op.Reverses is not null)
                {
                    transfers.Add(op.Reverses);
                    reverses.Add(op.Reverses);
                }
            }
        }
        // Sorted: every process locks accounts in the same order.
        var accountIds = accounts.ToArray();
        Array.Sort(accountIds, StringComparer.Ordinal);
        return (accountIds, transfers.ToArray(), reverses.ToArray());
    }

    /// <summary>Stops taking requests and finishes every queued batch.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested) return;
        await _stopping.CancelAsync();
        foreach (var q in _queues.Values) q.Channel.Writer.TryComplete();
        await Task.WhenAll(_queues.Values.Select(q => q.Loop));
        _stopping.Dispose();
    }

    [LoggerMessage(1, LogLevel.Debug, "Retrying batch of ledger {Ledger} (attempt {Attempt}): {Reason}")]
    static partial void LogRetry(ILogger logger, string ledger, int attempt, string reason);

    [LoggerMessage(3, LogLevel.Error, "Batch on ledger {Ledger} committed, but its metrics or cache retirement failed; callers get their results")]
    static partial void LogAfterCommitFailed(ILogger logger, Exception e, string ledger);

    [LoggerMessage(2, LogLevel.Error, "Batch of {Requests} requests on ledger {Ledger} failed and was rolled back")]
    static partial void LogBatchFailed(ILogger logger, Exception e, string ledger, int requests);

}
