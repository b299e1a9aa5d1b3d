using System.Data.Common;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using Dapper;
using Neraca.Storage;

namespace Neraca.Events;

/// <summary>A position in a tenant's event feed. It describes the set of events already served:
/// <c>{tx_id &lt; X1 and seq ≤ S1} ∪ {tx_id &lt; X2 and seq ≤ S2}</c> with <c>X1 ≤ X2</c> and <c>S2 ≤ S1</c>.
/// Most cursors have one step (<c>S2 = 0</c>, <c>X2 = X1</c>); SQLite cursors are just a sequence number.
/// Clients see it as an opaque string.</summary>
public readonly record struct FeedCursor(long S1, long X1, long S2, long X2)
{
    public static readonly FeedCursor Start = new(0, 0, 0, 0);

    public static FeedCursor OneStep(long seq, long horizon) => new(seq, horizon, 0, horizon);

    public bool IsOneStep => S2 == 0 && X2 == X1;

    public override string ToString() =>
        IsOneStep
            ? X1 == 0 ? S1.ToString(CultureInfo.InvariantCulture) : string.Create(CultureInfo.InvariantCulture, $"{S1}.{X1}")
            : string.Create(CultureInfo.InvariantCulture, $"{S1}.{X1}.{S2}.{X2}");

    public static bool TryParse(string? text, [NotNullWhen(true)] out FeedCursor? cursor)
    {
        cursor = null;
        if (string.IsNullOrEmpty(text) || text.Length > 100) return false;
        var parts = text.Split('.');
        var n = new long[parts.Length];
        for (var i = 0; i < parts.Length; i++)
            if (!long.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out n[i])) return false;
        cursor = parts.Length switch
        {
            1 => OneStep(n[0], 0),
            2 => OneStep(n[0], n[1]),
            4 when n[1] <= n[3] && n[2] <= n[0] => new FeedCursor(n[0], n[1], n[2], n[3]),
            _ => null,
        };
        return cursor is not null;
    }
}

public sealed record FeedItem(EventRow Row, FeedCursor After);

public sealed record FeedPage(IReadOnlyList<FeedItem> Items, FeedCursor Next, bool HasMore);

/// <summary>Reads a tenant's durable event log as a gap-free cursor feed.</summary>
/// <remarks>
/// <para>Why not simply <c>seq &gt; cursor</c>: on PostgreSQL a bigserial value is taken when a row is inserted, not when
/// its transaction commits. Transaction A may take seq 10, transaction B seq 11, and B commit first; a reader that
/// serves 11 and moves its cursor past it would never serve 10, which becomes visible later.</para>
/// <para>How: every event row carries the id of the transaction that wrote it (<c>tx_id</c>, xid8). Every transaction
/// with an id below <c>pg_snapshot_xmin(pg_current_snapshot())</c> has ended, and every transaction that can still
/// commit has an id at or above it; so the rows with <c>tx_id &lt; xmin</c> form a set that can no longer grow. The feed
/// serves only such rows, in seq order, and the cursor records the horizon it used: "every row with tx_id below X and
/// seq up to S has been served". On the next read with a newer horizon H, the new rows are those with seq above S
/// (and tx_id below H) plus the late ones: seq up to S but tx_id in [X, H) — events of transactions that were in
/// flight at the previous read. Those late rows come first (they have the lower seqs); when a page ends inside them the
/// cursor takes a second step (<see cref="FeedCursor"/>) and the next read keeps the same horizon until they are
/// served. Within one ledger the posting transactions serialize on the ledger's head row and take their seqs under
/// that lock, so per ledger (and per account) the feed is in posting order.</para>
/// <para>The price: a long-running write transaction anywhere in the database holds the horizon back and delays the
/// feed (never loses events). SQLite has one writer at a time, so there seq order is commit order and the cursor is
/// the last seq.</para>
/// </remarks>
public sealed class EventFeed
{
    delegate Task<FeedPage> Reader(DbConnection connection, string tenantId, FeedCursor after, int limit, string[]? types, CancellationToken ct);

    readonly Database database;
    readonly EventData data;

    /// <summary>The snapshot-horizon feed (PostgreSQL) or the plain sequence feed (SQLite), picked once.</summary>
    readonly Reader read;
    readonly Func<DbConnection, string, CancellationToken, Task<FeedCursor>> tail;

    public EventFeed(Database database, SqlDialect dialect, EventData data)
    {
        this.database = database;
        this.data = data;
        read = dialect.Choose<Reader>(() => ReadPostgresAsync, () => ReadSqliteAsync);
        tail = dialect.Choose<Func<DbConnection, string, CancellationToken, Task<FeedCursor>>>(() => TailPostgresAsync, () => TailSqliteAsync);
    }

    /// <summary>The one mapping of an <c>events</c> row: <see cref="EventRow"/>'s constructor (Dapper matches names and
    /// order), with the table's alias when the statement joins (<c>e</c> gives <c>e.seq AS Seq, ...</c>).</summary>
    internal static string ColumnsOf(string? alias)
    {
        var p = alias is null ? "" : alias + ".";
        return $"{p}seq AS Seq, {p}id AS Id, {p}tenant_id AS TenantId, {p}ledger_id AS LedgerId, {p}type AS Type, {p}subject AS Subject, {p}payload AS Payload, {p}created_at_us AS CreatedAtUs";
    }

    /// <inheritdoc cref="ColumnsOf"/>
    internal static readonly string Columns = ColumnsOf(null);
    const string RawColumns = "seq, id, tenant_id, ledger_id, type, subject, payload, created_at_us";

    public async Task<FeedPage> ReadAsync(string tenantId, FeedCursor after, int limit, string[]? types, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var page = await read(connection, tenantId, after, limit, types, ct);
        if (page.Items.Count == 0) return page;
        var rows = await data.FillAsync(connection, null, page.Items.Select(i => i.Row).ToList(), ct);
        return page with { Items = page.Items.Select((item, i) => item with { Row = rows[i] }).ToList() };
    }

    /// <summary>The cursor just past everything committed so far: where a stream without a resume point starts.</summary>
    public async Task<FeedCursor> TailAsync(string tenantId, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return await tail(connection, tenantId, ct);
    }

    static async Task<FeedCursor> TailSqliteAsync(DbConnection connection, string tenantId, CancellationToken ct)
    {
        var last = await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
            "SELECT max(seq) FROM events WHERE tenant_id = @tenantId", new { tenantId }, cancellationToken: ct));
        return FeedCursor.OneStep(last ?? 0, 0);
    }

    static async Task<FeedCursor> TailPostgresAsync(DbConnection connection, string tenantId, CancellationToken ct)
    {
        var horizon = await HorizonAsync(connection, ct);
        var seq = await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
            "SELECT max(seq) FROM events WHERE tenant_id = @tenantId AND tx_id < @horizon", new { tenantId, horizon }, cancellationToken: ct));
        return FeedCursor.OneStep(seq ?? 0, horizon);
    }

    static Task<long> HorizonAsync(DbConnection connection, CancellationToken ct) =>
        connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint", cancellationToken: ct));

    static async Task<FeedPage> ReadPostgresAsync(DbConnection connection, string tenantId, FeedCursor after, int limit, string[]? types, CancellationToken ct)
    {
        // A one-step cursor moves to the current horizon; a two-step one finishes its late rows under its own horizon.
        long horizon;
        if (after.IsOneStep)
        {
            horizon = Math.Max(after.X1, await HorizonAsync(connection, ct));
            after = new FeedCursor(after.S1, after.X1, 0, horizon);
        }
        else
        {
            horizon = after.X2;
        }
        var typeFilter = types is null ? "" : " AND type = ANY(@types)";
        var sql = $"""
            SELECT {Columns} FROM (
                (SELECT {RawColumns} FROM events
                 WHERE tenant_id = @tenantId AND seq > @s2 AND seq <= @s1 AND tx_id >= @x1 AND tx_id < @horizon{typeFilter}
                 ORDER BY seq LIMIT @take)
                UNION ALL
                (SELECT {RawColumns} FROM events
                 WHERE tenant_id = @tenantId AND seq > @s1 AND tx_id < @horizon{typeFilter}
                 ORDER BY seq LIMIT @take)
            ) c
            ORDER BY seq LIMIT @take
            """;
        var rows = (await connection.QueryAsync<EventRow>(new CommandDefinition(sql,
            new { tenantId, s1 = after.S1, x1 = after.X1, s2 = after.S2, horizon, types, take = limit + 1 }, cancellationToken: ct))).AsList();
        var hasMore = rows.Count > limit;
        var items = new List<FeedItem>(Math.Min(rows.Count, limit));
        for (var i = 0; i < rows.Count && i < limit; i++)
        {
            var seq = rows[i].Seq;
            var cursor = seq >= after.S1 ? FeedCursor.OneStep(seq, horizon) : new FeedCursor(after.S1, after.X1, seq, horizon);
            items.Add(new FeedItem(rows[i], cursor));
        }
        var next = hasMore ? items[^1].After
            : FeedCursor.OneStep(Math.Max(after.S1, items.Count > 0 ? items[^1].Row.Seq : 0), horizon);
        return new FeedPage(items, next, hasMore);
    }

    static async Task<FeedPage> ReadSqliteAsync(DbConnection connection, string tenantId, FeedCursor after, int limit, string[]? types, CancellationToken ct)
    {
        var typeFilter = types is null ? "" : " AND type IN @types";
        var rows = (await connection.QueryAsync<EventRow>(new CommandDefinition(
            $"SELECT {Columns} FROM events WHERE tenant_id = @tenantId AND seq > @s{typeFilter} ORDER BY seq LIMIT @take",
            new { tenantId, s = after.S1, types, take = limit + 1 }, cancellationToken: ct))).AsList();
        var hasMore = rows.Count > limit;
        var items = rows.Take(limit).Select(r => new FeedItem(r, FeedCursor.OneStep(r.Seq, 0))).ToList();
        return new FeedPage(items, items.Count > 0 ? items[^1].After : FeedCursor.OneStep(after.S1, 0), hasMore);
    }
}
