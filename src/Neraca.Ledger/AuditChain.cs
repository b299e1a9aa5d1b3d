using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Data.Common;
using System.Security.Cryptography;
using System.Text;
using Dapper;
using Neraca.Storage;

namespace Neraca.Ledger;

internal sealed record AuditResult(bool Verified, long Links, string Head, long? FirstBadLink, string? Problem = null);

/// <summary>The per-ledger SHA-256 hash chain. Link n = SHA-256(hash of link n-1 ‖ canonical bytes of everything the
/// transaction of link n wrote to the journal). The canonical form is frozen: a golden test pins it.</summary>
internal sealed class AuditChain(Database database)
{
    public static readonly byte[] Genesis = new byte[32];

    /// <summary>Canonical bytes of one batch: its transfers, resolutions and entries in posting (seq) order; within
    /// one seq the transfer or resolution first, then its debit entry, then its credit entry. Every field is
    /// length-prefixed so no two different journals share bytes.</summary>
    public static byte[] Canonical(IEnumerable<TransferRecord> transfers, IEnumerable<ResolutionRow> resolutions, IEnumerable<EntryRow> entries)
    {
        var items = new List<(long Seq, int Order, Action<CanonicalWriter> Write)>();
        foreach (var t in transfers) items.Add((t.Seq, 0, w => w.Transfer(t)));
        foreach (var r in resolutions) items.Add((r.Seq, 0, w => w.Resolution(r)));
        foreach (var e in entries) items.Add((e.Seq, (int)e.Direction, w => w.Entry(e)));
        items.Sort((a, b) => a.Seq != b.Seq ? a.Seq.CompareTo(b.Seq) : a.Order.CompareTo(b.Order));
        var writer = new CanonicalWriter();
        foreach (var item in items) item.Write(writer);
        return writer.ToArray();
    }

    public static byte[] Link(byte[] previous, byte[] canonical)
    {
        var buffer = new byte[previous.Length + canonical.Length];
        previous.CopyTo(buffer, 0);
        canonical.CopyTo(buffer, previous.Length);
        return SHA256.HashData(buffer);
    }

    /// <summary>Ledgers whose last verified head this process remembers (<see cref="VerifyIncrementalAsync"/>); past it
    /// the memory is cleared and verification starts again from the checkpoints.</summary>
    public const int VerifiedHeadsMax = 10_000;

    readonly ConcurrentDictionary<(string Tenant, string Ledger), VerifiedPoint> _verified = new();

    /// <summary>A link known to be good: its number, its hash and the last sequence it covers.</summary>
    sealed record VerifiedPoint(long Link, byte[] Hash, long LastSeq)
    {
        public static readonly VerifiedPoint Genesis = new(0, AuditChain.Genesis, 0);
    }

    /// <summary>Recomputes the whole chain of a ledger from the stored journal and names the first link that does not match.
    /// The offline <c>neraca audit verify</c> command and the nightly verification job use this.</summary>
    public async Task<AuditResult> VerifyAsync(string tenantId, string ledgerId, CancellationToken ct)
    {
        await using var connection = await database.OpenReadAsync(ct);
        return await InSnapshotAsync(connection, async () =>
        {
            var head = await HeadAsync(connection, tenantId, ledgerId, ct);
            var (result, _) = await VerifyFromAsync(connection, tenantId, ledgerId, VerifiedPoint.Genesis, head, ct);
            return result;
        }, ct);
    }

    /// <summary>Runs a verification's reads in one snapshot. Read one by one, a batch committing between the head and the
    /// links (or the stray-transfer count) made a live ledger look tampered with ("the chain head does not match the
    /// journal"): the nightly job runs while money moves.</summary>
    async Task<T> InSnapshotAsync<T>(DbConnection connection, Func<Task<T>> read, CancellationToken ct)
    {
        // Plain statements, not a DbTransaction: the reads below pass no transaction (SQLite's deferred BEGIN takes its
        // snapshot at the first read, in WAL mode without blocking writers).
        await using (var begin = connection.CreateCommand())
        {
            begin.CommandText = database.Kind == StoreKind.Postgres ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN";
            await begin.ExecuteNonQueryAsync(ct);
        }
        try
        {
            return await read();
        }
        finally
        {
            await using var end = connection.CreateCommand();
            end.CommandText = "ROLLBACK";
            await end.ExecuteNonQueryAsync(CancellationToken.None);
        }
    }

    /// <summary>What <c>GET /v1/ledgers/{id}/audit</c> answers, at a cost that does not grow with the chain: the result for
    /// an unchanged head is remembered, and a changed head is verified only from the newest good point — the last head
    /// this process verified or the newest <c>audit_checkpoints</c> row (hourly), whichever is later, each first confirmed
    /// against the stored link. Links before that point were verified when it was recorded; <see cref="VerifyAsync"/>
    /// (offline command, nightly job) still recomputes everything.</summary>
    public async Task<AuditResult> VerifyIncrementalAsync(string tenantId, string ledgerId, CancellationToken ct)
    {
        await using var connection = await database.OpenReadAsync(ct);
        return await InSnapshotAsync(connection, () => VerifyIncrementalInSnapshotAsync(connection, tenantId, ledgerId, ct), ct);
    }

    async Task<AuditResult> VerifyIncrementalInSnapshotAsync(DbConnection connection, string tenantId, string ledgerId, CancellationToken ct)
    {
        var head = await HeadAsync(connection, tenantId, ledgerId, ct);
        var key = (tenantId, ledgerId);
        _verified.TryGetValue(key, out var known);
        if (known is not null && head is not null && known.Link == head.last_link && known.Hash.AsSpan().SequenceEqual(head.head))
            return new AuditResult(true, known.Link, Convert.ToHexStringLower(known.Hash), null);

        var checkpoint = await connection.QuerySingleOrDefaultAsync<CheckpointRow>(new CommandDefinition("""
            SELECT link, head, last_seq FROM audit_checkpoints WHERE tenant_id = @tenantId AND ledger_id = @ledgerId ORDER BY link DESC LIMIT 1
            """, new { tenantId, ledgerId }, cancellationToken: ct));
        var from = VerifiedPoint.Genesis;
        if (checkpoint is not null) from = new VerifiedPoint(checkpoint.link, checkpoint.head, checkpoint.last_seq);
        // Both good points must still be in the chain as they were: a chain rewritten since (hashes recomputed to hide an
        // edit) does not match them.
        foreach (var point in new[] { from, known })
        {
            if (point is null || point.Link == 0 || await StillStoredAsync(connection, tenantId, ledgerId, point, ct)) continue;
            _verified.TryRemove(key, out _);
            return Bad(head?.last_link ?? 0, head, point.Link, "the chain no longer matches a head verified or checkpointed earlier");
        }
        if (known is not null && known.Link > from.Link) from = known;
        var (result, verified) = await VerifyFromAsync(connection, tenantId, ledgerId, from, head, ct);
        if (verified is null)
        {
            _verified.TryRemove(key, out _);
            return result;
        }
        if (_verified.Count >= VerifiedHeadsMax) _verified.Clear();
        _verified[key] = verified;
        return result;
    }

    static async Task<bool> StillStoredAsync(DbConnection connection, string tenantId, string ledgerId, VerifiedPoint point, CancellationToken ct)
    {
        var stored = await connection.QuerySingleOrDefaultAsync<LinkRow>(new CommandDefinition(
            "SELECT link, prev_hash, hash, first_seq, last_seq FROM chain_links WHERE tenant_id = @tenantId AND ledger_id = @ledgerId AND link = @link",
            new { tenantId, ledgerId, link = point.Link }, cancellationToken: ct));
        return stored is not null && stored.last_seq == point.LastSeq && stored.hash.AsSpan().SequenceEqual(point.Hash);
    }

    static Task<HeadRow?> HeadAsync(DbConnection connection, string tenantId, string ledgerId, CancellationToken ct) =>
        connection.QuerySingleOrDefaultAsync<HeadRow>(new CommandDefinition(
            "SELECT last_link, head FROM ledger_heads WHERE tenant_id = @tenantId AND ledger_id = @ledgerId", new { tenantId, ledgerId }, cancellationToken: ct));

    /// <summary>Recomputes the links after <paramref name="from"/> (a good link, or genesis) up to the head. Returns the
    /// result and, when it verified, the head as a new good point.</summary>
    static async Task<(AuditResult Result, VerifiedPoint? Head)> VerifyFromAsync(DbConnection connection, string tenantId, string ledgerId,
        VerifiedPoint from, HeadRow? head, CancellationToken ct)
    {
        var links = (await connection.QueryAsync<LinkRow>(new CommandDefinition(
            "SELECT link, prev_hash, hash, first_seq, last_seq FROM chain_links WHERE tenant_id = @tenantId AND ledger_id = @ledgerId AND link > @after ORDER BY link",
            new { tenantId, ledgerId, after = from.Link }, cancellationToken: ct))).ToList();
        var total = from.Link + links.Count;
        var previous = from.Hash;
        var expected = from.Link + 1;
        var previousLastSeq = from.LastSeq;
        foreach (var chunk in Chunks(links))
        {
            var journal = await JournalAsync(connection, tenantId, ledgerId, chunk, ct);
            for (var i = 0; i < chunk.Count; i++)
            {
                var link = chunk[i];
                // Seq ranges follow each other: JournalAsync gives each row to the one link whose range holds it.
                if (link.link != expected || !link.prev_hash.AsSpan().SequenceEqual(previous) || link.first_seq <= previousLastSeq || link.last_seq < link.first_seq)
                    return (Bad(total, head, link.link, "links are missing or out of order"), null);
                previousLastSeq = link.last_seq;
                var hash = Link(previous, Canonical(journal.Transfers[i], journal.Resolutions[i], journal.Entries[i]));
                if (!hash.AsSpan().SequenceEqual(link.hash))
                    return (Bad(total, head, link.link, "the journal rows of this link do not hash to the stored value"), null);
                previous = hash;
                expected++;
            }
        }
        // Rows attached to no link, or a head that does not match the last link, are tampering too.
        var lastSeq = links.Count == 0 ? from.LastSeq : links[^1].last_seq;
        var stray = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT count(*) FROM transfers WHERE tenant_id = @tenantId AND ledger_id = @ledgerId AND seq > @lastSeq",
            new { tenantId, ledgerId, lastSeq }, cancellationToken: ct));
        if (stray > 0 || head is null || head.last_link != expected - 1 || !head.head.AsSpan().SequenceEqual(previous))
            return (Bad(total, head, expected, "the chain head does not match the journal"), null);
        return (new AuditResult(true, total, Convert.ToHexStringLower(previous), null), new VerifiedPoint(expected - 1, previous, lastSeq));
    }

    static AuditResult Bad(long links, HeadRow? head, long at, string problem) =>
        new(false, links, head is null ? "" : Convert.ToHexStringLower(head.head), at, problem);

    /// <summary>Links in runs that cover at most <see cref="ChunkSeqs"/> sequences (a link bigger than that alone), so the
    /// journal under a run is read in three queries. Read link by link, a restarted server's first audit call verified
    /// thousands of links since the last checkpoint at three round trips each and outlasted a client's 30 s timeout.</summary>
    static IEnumerable<List<LinkRow>> Chunks(List<LinkRow> links)
    {
        var chunk = new List<LinkRow>();
        foreach (var link in links)
        {
            if (chunk.Count > 0 && link.last_seq - chunk[0].first_seq >= ChunkSeqs)
            {
                yield return chunk;
                chunk = [];
            }
            chunk.Add(link);
        }
        if (chunk.Count > 0) yield return chunk;
    }

    const long ChunkSeqs = 20_000;

    sealed record Journal(List<TransferRecord>[] Transfers, List<ResolutionRow>[] Resolutions, List<EntryRow>[] Entries);

    // Everything a link covers is found by its seq range: transfers, resolutions and, through the entries view, the entries
    // they carry (and those of entries_v1), each by a (tenant, ledger, seq) index. Rows in no link's range belong to none,
    // as when each link was read alone (rows past the last link are counted as stray by the caller).
    static async Task<Journal> JournalAsync(DbConnection connection, string tenantId, string ledgerId, List<LinkRow> chunk, CancellationToken ct)
    {
        var args = new { tenantId, ledgerId, first = chunk[0].first_seq, last = chunk[^1].last_seq };
        var journal = new Journal(New<TransferRecord>(), New<ResolutionRow>(), New<EntryRow>());
        foreach (var t in await connection.QueryAsync<LedgerStore.TransferRow>(new CommandDefinition(
            $"SELECT {LedgerStore.TransferColumns}, NULL AS kind, 0 AS resolved_amount, NULL AS resolved_at_us FROM transfers t WHERE t.tenant_id = @tenantId AND t.ledger_id = @ledgerId AND t.seq BETWEEN @first AND @last",
            args, cancellationToken: ct)))
        {
            var record = t.ToRecord();
            if (LinkOf(record.Seq) is { } i) journal.Transfers[i].Add(record);
        }
        foreach (var r in await connection.QueryAsync<ResolutionDbRow>(new CommandDefinition(
            "SELECT transfer_id, seq, kind, amount, resolved_at_us FROM transfer_resolutions WHERE tenant_id = @tenantId AND ledger_id = @ledgerId AND seq BETWEEN @first AND @last",
            args, cancellationToken: ct)))
            if (LinkOf(r.seq) is { } i) journal.Resolutions[i].Add(new ResolutionRow(r.transfer_id, r.seq, (ResolutionKind)r.kind, r.amount, r.resolved_at_us));
        foreach (var e in await connection.QueryAsync<EntryDbRow>(new CommandDefinition(
            "SELECT account_id, entry_no, seq, transfer_id, direction, amount, balance_after, posted_at_us, effective_at_us FROM entries WHERE tenant_id = @tenantId AND ledger_id = @ledgerId AND seq BETWEEN @first AND @last",
            args, cancellationToken: ct)))
            if (LinkOf(e.seq) is { } i)
                journal.Entries[i].Add(new EntryRow(e.account_id, e.entry_no, e.seq, e.transfer_id, (EntryDirection)e.direction, e.amount, e.balance_after, e.posted_at_us, e.effective_at_us));
        return journal;

        List<T>[] New<T>() => [.. chunk.Select(_ => new List<T>())];

        // Links are in seq order: the last one starting at or before seq, if its range reaches it.
        int? LinkOf(long seq)
        {
            var (lo, hi) = (0, chunk.Count - 1);
            while (lo < hi)
            {
                var mid = (lo + hi + 1) / 2;
                if (chunk[mid].first_seq <= seq) lo = mid; else hi = mid - 1;
            }
            return chunk[lo].first_seq <= seq && seq <= chunk[lo].last_seq ? lo : null;
        }
    }

    sealed class LinkRow
    {
        public long link { get; set; }
        public long first_seq { get; set; }
        public long last_seq { get; set; }
        public byte[] prev_hash { get; set; } = [];
        public byte[] hash { get; set; } = [];
    }

    sealed class CheckpointRow
    {
        public long link { get; set; }
        public byte[] head { get; set; } = [];
        public long last_seq { get; set; }
    }

    sealed class HeadRow
    {
        public long last_link { get; set; }
        public byte[] head { get; set; } = [];
    }

    sealed class ResolutionDbRow
    {
        public string transfer_id { get; set; } = "";
        public long seq { get; set; }
        public int kind { get; set; }
        public long amount { get; set; }
        public long resolved_at_us { get; set; }
    }

    internal sealed class EntryDbRow
    {
        public string account_id { get; set; } = "";
        public long entry_no { get; set; }
        public long seq { get; set; }
        public string transfer_id { get; set; } = "";
        public int direction { get; set; }
        public long amount { get; set; }
        public long balance_after { get; set; }
        public long posted_at_us { get; set; }
        public long effective_at_us { get; set; }
    }

    sealed class CanonicalWriter
    {
        readonly MemoryStream _stream = new();

        public void Transfer(TransferRecord t)
        {
            Tag('T');
            Long(t.Seq); Text(t.Id); Text(t.DebitAccountId); Text(t.CreditAccountId); Long(t.Amount); Long(t.Pending ? 1 : 0);
            Long(t.TimeoutAtUs ?? -1); Long(t.Code); Text(t.Description); Text(t.Metadata); Text(t.Reverses); Long(t.EffectiveAtUs); Long(t.CreatedAtUs);
        }

        public void Resolution(ResolutionRow r)
        {
            Tag('R');
            Long(r.Seq); Text(r.TransferId); Long((long)r.Kind); Long(r.Amount); Long(r.ResolvedAtUs);
        }

        public void Entry(EntryRow e)
        {
            Tag('E');
            Long(e.Seq); Text(e.AccountId); Long(e.EntryNo); Text(e.TransferId); Long((long)e.Direction); Long(e.Amount); Long(e.BalanceAfter);
            Long(e.PostedAtUs); Long(e.EffectiveAtUs);
        }

        void Tag(char c) => _stream.WriteByte((byte)c);

        void Long(long v)
        {
            Span<byte> b = stackalloc byte[8];
            BinaryPrimitives.WriteInt64BigEndian(b, v);
            _stream.Write(b);
        }

        void Text(string? s)
        {
            if (s is null)
            {
                Long(-1);
                return;
            }
            var bytes = Encoding.UTF8.GetBytes(s);
            Long(bytes.Length);
            _stream.Write(bytes);
        }

        public byte[] ToArray() => _stream.ToArray();
    }
}
