using System.Data.Common;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Dapper;
using Microsoft.Extensions.Options;
using Neraca.Events;
using Neraca.Hosting;
using Neraca.Jobs;
using Neraca.Ledger;
using Neraca.Storage;

namespace Neraca.SplitBill;

/// <summary>The split-bill capability as an in-process API: every operation the HTTP endpoints offer, for a caller
/// (server key or end user), returning a value or a problem. One partial file per sub-capability (groups, expenses,
/// balances, settlements, receipts, recurring, CSV).</summary>
public sealed partial class SplitBills(Database database, SqlDialect dialect, ILedger ledger, JobStore jobs, ReceiptStore blobs, TimeProvider time,
    IOptions<SplitBillOptions> options, ILogger<SplitBills> logger)
{
    internal static readonly JsonSerializerOptions Json = CreateJson();

    static JsonSerializerOptions CreateJson()
    {
        var o = new JsonSerializerOptions();
        ServiceDefaults.ConfigureJson(o);
        return o;
    }

    long NowUs => DbTime.ToMicros(time.GetUtcNow());

    DateOnly Today => DateOnly.FromDateTime(time.GetUtcNow().UtcDateTime);

    /// <summary>Runs <paramref name="work"/> in one write transaction, committed when it returns a value; a write that
    /// raced an identical one (a unique key) is retried from the start, where it finds the other's result.</summary>
    async Task<SplitResult<T>> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<SplitResult<T>>> work, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var connection = await database.OpenAsync(ct);
                await using var tx = await dialect.BeginWriteAsync(connection, ct);
                var result = await work(connection, tx);
                if (result.Error is null) await tx.CommitAsync(ct);
                return result;
            }
            catch (DbException e) when (attempt < 3 && Database.IsTransient(e))
            {
                Log.Retrying(logger, e);
            }
        }
    }

    async Task<T> ReadAsync<T>(Func<DbConnection, Task<T>> work, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return await work(connection);
    }

    // ---- groups as the caller sees them ----

    internal sealed class GroupRow
    {
        public string tenant_id { get; set; } = "";
        public string id { get; set; } = "";
        public string name { get; set; } = "";
        public string currency { get; set; } = "";
        public int simplify_debts { get; set; }
        public string invite_code { get; set; } = "";
        public long created_at_us { get; set; }
        public long updated_at_us { get; set; }
    }

    internal sealed class MemberRow
    {
        public string group_id { get; set; } = "";
        public string id { get; set; } = "";
        public string name { get; set; } = "";
        public string? account { get; set; }
        public string? subject { get; set; }
        public int status { get; set; }
        public int position { get; set; }
        public long created_at_us { get; set; }
    }

    internal const int Active = 1, Inactive = 2, Removed = 3;

    static string StatusName(int status) => status switch { Active => "active", Inactive => "inactive", _ => "removed" };

    /// <summary>A group with its members, loaded in the caller's transaction; <see cref="Me"/> is the caller's member.</summary>
    internal sealed record GroupState(GroupRow Group, List<MemberRow> Members, MemberRow? Me)
    {
        public int Scale => Currencies.Scale(Group.currency);
        public IReadOnlyList<string> ActiveIds => Members.Where(m => m.status == Active).Select(m => m.id).ToList();
        public IReadOnlySet<string> ExistingIds => Members.Where(m => m.status != Removed).Select(m => m.id).ToHashSet(StringComparer.Ordinal);
        public MemberRow? Member(string id) => Members.FirstOrDefault(m => m.id == id);
    }

    const string GroupColumns = "tenant_id, id, name, currency, simplify_debts, invite_code, created_at_us, updated_at_us";
    const string MemberColumns = "group_id, id, name, account, subject, status, position, created_at_us";

    /// <summary>The group if the caller may see it: a server key sees every group of its tenant, an end user only the
    /// groups where one of the members is its subject (and has not left). Null otherwise: the same 404 as no group.</summary>
    async Task<GroupState?> LoadGroupAsync(DbConnection c, DbTransaction? tx, SplitCaller caller, string groupId, CancellationToken ct)
    {
        if (!Ids.IsValid(groupId)) return null;
        var forUpdate = tx is null ? "" : dialect.ForUpdate;
        var group = await c.QuerySingleOrDefaultAsync<GroupRow>(new CommandDefinition(
            $"SELECT {GroupColumns} FROM split_groups WHERE tenant_id = @tenant AND id = @groupId{forUpdate}",
            new { tenant = caller.TenantId, groupId }, tx, cancellationToken: ct));
        if (group is null) return null;
        var members = (await c.QueryAsync<MemberRow>(new CommandDefinition(
            $"SELECT {MemberColumns} FROM split_members WHERE tenant_id = @tenant AND group_id = @groupId ORDER BY position",
            new { tenant = caller.TenantId, groupId }, tx, cancellationToken: ct))).ToList();
        var me = caller.Subject is { } s ? members.FirstOrDefault(m => m.subject == s && m.status != Removed) : null;
        if (caller.IsEndUser && me is null) return null;
        return new GroupState(group, members, me);
    }

    static SplitError GroupNotFound(string id) => SplitError.NotFound("group_not_found", $"No split group '{id}'.");

    /// <summary>Appends an activity record (who, when, before/after) in the change's transaction.</summary>
    async Task ActivityAsync(DbConnection c, DbTransaction tx, SplitCaller caller, string groupId, string target, string targetId, string action,
        object? before, object? after, CancellationToken ct) =>
        await c.ExecuteAsync(new CommandDefinition("""
            INSERT INTO split_activity (tenant_id, group_id, id, target, target_id, action, actor, at_us, before_json, after_json)
            VALUES (@tenant, @groupId, @id, @target, @targetId, @action, @actor, @at, @before, @after)
            """, new
        {
            tenant = caller.TenantId, groupId, id = "act_" + Ids.NewUlid(), target, targetId, action, actor = caller.Actor, at = NowUs,
            before = before is null ? null : JsonSerializer.Serialize(before, Json), after = after is null ? null : JsonSerializer.Serialize(after, Json),
        }, tx, cancellationToken: ct));

    /// <summary>An event through the outbox, in the change's transaction.</summary>
    async Task EventAsync(DbConnection c, DbTransaction tx, string tenantId, EventType type, string subject, object data, CancellationToken ct) =>
        await EventLog.AppendAsync(c, tx, tenantId, null, new NewEvent(type, subject, JsonSerializer.Serialize(data, Json)), NowUs, ct);

    internal static string Fingerprint(object request) =>
        Convert.ToHexStringLower(SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(request, Json)));

    /// <summary>A deterministic id from parts (recurring periods, imported lines): the same parts, the same id.</summary>
    internal static string DerivedId(string prefix, params string[] parts) =>
        prefix + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\n', parts))))[..28];

    static string NewId(string prefix) => prefix + Ids.NewUlid();

    static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Split-bill write raced another; retrying")]
        public static partial void Retrying(ILogger logger, Exception error);

        [LoggerMessage(2, LogLevel.Warning, "Wallet settlement {Settlement} of group {Group} stays pending: the ledger call failed; the resume job retries it")]
        public static partial void SettlementPending(ILogger logger, string group, string settlement, Exception error);

        [LoggerMessage(3, LogLevel.Information, "Receipt of expense {Expense} rejected: {Reason}")]
        public static partial void ReceiptRejected(ILogger logger, string expense, string reason);

        [LoggerMessage(4, LogLevel.Warning, "Recurring expense {Recurring} of group {Group} stopped: {Reason}")]
        public static partial void RecurringStopped(ILogger logger, string group, string recurring, string reason);
    }
}

/// <summary>Event types of split bills (persisted and published: never renamed).</summary>
public static class SplitEventTypes
{
    public static readonly EventType GroupCreated = new("split.group.created");
    public static readonly EventType GroupUpdated = new("split.group.updated");
    public static readonly EventType MemberAdded = new("split.member.added");
    public static readonly EventType MemberUpdated = new("split.member.updated");
    public static readonly EventType MemberRemoved = new("split.member.removed");
    public static readonly EventType ExpenseCreated = new("split.expense.created");
    public static readonly EventType ExpenseUpdated = new("split.expense.updated");
    public static readonly EventType ExpenseDeleted = new("split.expense.deleted");
    public static readonly EventType SettlementCreated = new("split.settlement.created");
    public static readonly EventType SettlementCompleted = new("split.settlement.completed");
    public static readonly EventType SettlementFailed = new("split.settlement.failed");
    public static readonly EventType ReceiptReady = new("split.receipt.ready");
    public static readonly EventType ReceiptRejected = new("split.receipt.rejected");

    public static readonly IReadOnlyList<EventType> All =
    [
        GroupCreated, GroupUpdated, MemberAdded, MemberUpdated, MemberRemoved, ExpenseCreated, ExpenseUpdated, ExpenseDeleted,
        SettlementCreated, SettlementCompleted, SettlementFailed, ReceiptReady, ReceiptRejected,
    ];
}
