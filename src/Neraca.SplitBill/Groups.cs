using System.Data.Common;
using System.Security.Cryptography;
using Dapper;
using Neraca.Hosting;
using Neraca.Ledger;
using Neraca.Storage;

namespace Neraca.SplitBill;

// Groups and members: create, read, update, join by invite code, leave, deactivate, remove.
public sealed partial class SplitBills
{
    const string InviteAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"; // no 0/O, 1/I: read aloud and typed by people
    const int InviteLength = 10;
    const int NameLengthMax = 100;
    const int SubjectLengthMax = 200;
    public const int PageSizeMax = 200;

    internal static GroupResponse ToResponse(GroupState g) => new(g.Group.id, g.Group.name, g.Group.currency, g.Group.simplify_debts == 1,
        g.Group.invite_code, g.Members.Where(m => m.status != Removed).Select(ToResponse).ToList(),
        DbTime.FromMicros(g.Group.created_at_us), DbTime.FromMicros(g.Group.updated_at_us));

    static MemberResponse ToResponse(MemberRow m) => new(m.id, m.name, m.account, m.subject, StatusName(m.status));

    public async Task<SplitResult<GroupResponse>> CreateGroupAsync(SplitCaller caller, CreateGroupRequest body, CancellationToken ct)
    {
        var errors = new FieldErrors();
        if (body.Id is null || !Ids.IsValid(body.Id)) errors.Add("id", "1-64 characters of A-Z a-z 0-9 . _ : -");
        var name = body.Name?.Trim();
        if (string.IsNullOrEmpty(name) || name.Length > NameLengthMax) errors.Add("name", $"Required: 1-{NameLengthMax} characters.");
        if (!Currencies.IsCode(body.Currency)) errors.Add("currency", "Required: an ISO 4217 code such as IDR.");
        var members = body.Members ?? [];
        if (members.Length is 0 || members.Length > options.Value.MembersMax) errors.Add("members", $"From 1 to {options.Value.MembersMax} members.");
        var ids = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < members.Length; i++)
        {
            ValidateMember(members[i], $"members[{i}]", caller, errors);
            if (members[i]?.Id is { } id && !ids.Add(id)) errors.Add($"members[{i}].id", "Listed twice.");
        }
        if (members.Select(m => m?.Subject).Where(s => s is not null).GroupBy(s => s).Any(g => g.Count() > 1))
            errors.Add("members", "A subject can be one member of a group only.");
        if (caller.IsEndUser && !members.Any(m => m?.Subject == caller.Subject))
            errors.Add("members", "One member must be you: set its subject to your own.");
        if (errors.Any) return errors.ToError();
        if (await CheckAccountsAsync(caller, members.Select((m, i) => (m.Account, $"members[{i}].account")), ct) is { } accountError) return accountError;

        return await WriteAsync(async (c, tx) =>
        {
            var existing = await LoadGroupAsync(c, tx, caller with { Subject = null }, body.Id!, ct);
            if (existing is not null)
            {
                // The same id again: the first result if it is the same group, else a conflict (never another tenant's).
                var same = caller.IsEndUser ? existing.Me is not null : true;
                return same && existing.Group.name == name && existing.Group.currency == body.Currency
                    ? SplitResult<GroupResponse>.Again(ToResponse(existing))
                    : new SplitError(409, "group_exists", $"A group '{body.Id}' exists with other fields; choose another id.");
            }
            var now = NowUs;
            var group = new GroupRow
            {
                tenant_id = caller.TenantId, id = body.Id!, name = name!, currency = body.Currency!, simplify_debts = body.SimplifyDebts == false ? 0 : 1,
                invite_code = RandomNumberGenerator.GetString(InviteAlphabet, InviteLength), created_at_us = now, updated_at_us = now,
            };
            await c.ExecuteAsync(new CommandDefinition($"""
                INSERT INTO split_groups ({GroupColumns}) VALUES (@tenant_id, @id, @name, @currency, @simplify_debts, @invite_code, @created_at_us, @updated_at_us)
                """, group, tx, cancellationToken: ct));
            var rows = new List<MemberRow>();
            for (var i = 0; i < members.Length; i++)
            {
                var m = members[i];
                var row = new MemberRow
                {
                    group_id = group.id, id = m.Id ?? $"m{i + 1}", name = m.Name!.Trim(), account = m.Account, subject = m.Subject, status = Active,
                    position = i, created_at_us = now,
                };
                if (m.Id is null && ids.Contains(row.id)) row.id = "m_" + Ids.NewUlid();
                await InsertMemberAsync(c, tx, caller.TenantId, row, ct);
                rows.Add(row);
            }
            var state = new GroupState(group, rows, null);
            var response = ToResponse(state);
            await ActivityAsync(c, tx, caller, group.id, "group", group.id, "created", null, response, ct);
            await EventAsync(c, tx, caller.TenantId, SplitEventTypes.GroupCreated, group.id, response, ct);
            return SplitResult<GroupResponse>.New(response);
        }, ct);
    }

    void ValidateMember(MemberInput? m, string path, SplitCaller caller, FieldErrors errors)
    {
        if (m is null) { errors.Add(path, "Must be an object."); return; }
        if (m.Id is not null && !Ids.IsValid(m.Id)) errors.Add(path + ".id", "1-64 characters of A-Z a-z 0-9 . _ : -");
        if (string.IsNullOrWhiteSpace(m.Name) || m.Name.Trim().Length > NameLengthMax) errors.Add(path + ".name", $"Required: 1-{NameLengthMax} characters.");
        if (m.Account is not null && !Ids.IsValid(m.Account)) errors.Add(path + ".account", "A ledger account id.");
        if (m.Subject is not null && (m.Subject.Length is 0 or > SubjectLengthMax)) errors.Add(path + ".subject", $"1-{SubjectLengthMax} characters.");
        // An end user speaks for itself only: it may map a member to its own subject and give its own wallet, never
        // someone else's (that would let it receive their settle-ups or act as them).
        if (caller.IsEndUser && m.Subject is not null && m.Subject != caller.Subject) errors.Add(path + ".subject", "You can set only your own subject.");
        if (caller.IsEndUser && m.Account is not null && m.Subject != caller.Subject) errors.Add(path + ".account", "You can set only your own wallet.");
    }

    /// <summary>Each account named exists (for an end user: is its own), so a wallet settle-up does not fail later.</summary>
    async Task<SplitError?> CheckAccountsAsync(SplitCaller caller, IEnumerable<(string? Account, string Field)> accounts, CancellationToken ct)
    {
        var view = caller.Subject is { } s ? ledger.For(s) : ledger;
        foreach (var (account, field) in accounts)
        {
            if (account is null) continue;
            var r = await view.GetAccountAsync(caller.TenantId, account, ct);
            if (!r.Succeeded)
                return SplitError.Unprocessable("account_not_found", $"No ledger account '{account}'" + (caller.IsEndUser ? " of yours." : "."),
                    new Dictionary<string, object?> { ["field"] = field });
        }
        return null;
    }

    static async Task InsertMemberAsync(DbConnection c, DbTransaction tx, string tenantId, MemberRow row, CancellationToken ct) =>
        await c.ExecuteAsync(new CommandDefinition($"""
            INSERT INTO split_members (tenant_id, {MemberColumns}) VALUES (@tenantId, @group_id, @id, @name, @account, @subject, @status, @position, @created_at_us)
            """, new { tenantId, row.group_id, row.id, row.name, row.account, row.subject, row.status, row.position, row.created_at_us }, tx, cancellationToken: ct));

    public async Task<SplitResult<GroupResponse>> GetGroupAsync(SplitCaller caller, string groupId, CancellationToken ct) =>
        await ReadAsync(async c => await LoadGroupAsync(c, null, caller, groupId, ct) is { } g
            ? SplitResult<GroupResponse>.Ok(ToResponse(g)) : (SplitResult<GroupResponse>)GroupNotFound(groupId), ct);

    /// <summary>The caller's groups, oldest first: every group of the tenant for a server key, the subject's own for an
    /// end user. Members of a page are read in one query.</summary>
    public async Task<SplitResult<Page<GroupResponse>>> ListGroupsAsync(SplitCaller caller, int? limit, string? after, CancellationToken ct)
    {
        if (limit is < 1 or > PageSizeMax) return SplitError.Validation("limit", $"From 1 to {PageSizeMax}.");
        var take = limit ?? 50;
        var (afterUs, afterId) = DecodeTimeCursor(after);
        return await ReadAsync(async c =>
        {
            var mine = caller.IsEndUser
                ? " AND id IN (SELECT group_id FROM split_members WHERE tenant_id = @tenant AND subject = @subject AND status <> 3)" : "";
            var groups = (await c.QueryAsync<GroupRow>(new CommandDefinition($"""
                SELECT {GroupColumns} FROM split_groups
                WHERE tenant_id = @tenant AND (created_at_us > @afterUs OR (created_at_us = @afterUs AND id > @afterId)){mine}
                ORDER BY created_at_us, id LIMIT @take
                """, new { tenant = caller.TenantId, subject = caller.Subject, afterUs, afterId, take = take + 1 }, cancellationToken: ct))).ToList();
            var more = groups.Count > take;
            if (more) groups.RemoveAt(take);
            var ids = groups.Select(g => g.id).ToArray();
            var members = ids.Length == 0 ? [] : (await c.QueryAsync<MemberRow>(new CommandDefinition(
                $"SELECT {MemberColumns} FROM split_members WHERE tenant_id = @tenant AND {dialect.InList("group_id", "ids")} ORDER BY position",
                new { tenant = caller.TenantId, ids }, cancellationToken: ct))).ToList();
            var byGroup = members.ToLookup(m => m.group_id);
            var data = groups.Select(g => ToResponse(new GroupState(g, byGroup[g.id].ToList(), null))).ToList();
            return SplitResult<Page<GroupResponse>>.Ok(new Page<GroupResponse>(data,
                more ? EncodeTimeCursor(groups[^1].created_at_us, groups[^1].id) : null));
        }, ct);
    }

    internal static string EncodeTimeCursor(long us, string id) => Cursor.Encode(us.ToString(System.Globalization.CultureInfo.InvariantCulture) + "|" + id);

    internal static (long Us, string Id) DecodeTimeCursor(string? after)
    {
        if (Cursor.Decode(after) is not { } key) return (long.MinValue, "");
        var bar = key.IndexOf('|', StringComparison.Ordinal);
        if (bar < 1 || !long.TryParse(key.AsSpan(0, bar), System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var us))
            throw new InvalidCursorException("after");
        return (us, key[(bar + 1)..]);
    }

    public async Task<SplitResult<GroupResponse>> UpdateGroupAsync(SplitCaller caller, string groupId, UpdateGroupRequest body, CancellationToken ct)
    {
        var name = body.Name?.Trim();
        if (body.Name is not null && (name!.Length == 0 || name.Length > NameLengthMax)) return SplitError.Validation("name", $"1-{NameLengthMax} characters.");
        return await WriteAsync(async (c, tx) =>
        {
            if (await LoadGroupAsync(c, tx, caller, groupId, ct) is not { } g) return GroupNotFound(groupId);
            var before = ToResponse(g);
            g.Group.name = name ?? g.Group.name;
            g.Group.simplify_debts = body.SimplifyDebts is { } s ? (s ? 1 : 0) : g.Group.simplify_debts;
            g.Group.updated_at_us = NowUs;
            await c.ExecuteAsync(new CommandDefinition("""
                UPDATE split_groups SET name = @name, simplify_debts = @simplify_debts, updated_at_us = @updated_at_us WHERE tenant_id = @tenant_id AND id = @id
                """, g.Group, tx, cancellationToken: ct));
            var after = ToResponse(g);
            await ActivityAsync(c, tx, caller, groupId, "group", groupId, "updated", before, after, ct);
            await EventAsync(c, tx, caller.TenantId, SplitEventTypes.GroupUpdated, groupId, after, ct);
            return SplitResult<GroupResponse>.Ok(after);
        }, ct);
    }

    public async Task<SplitResult<GroupResponse>> AddMemberAsync(SplitCaller caller, string groupId, MemberInput body, CancellationToken ct)
    {
        var errors = new FieldErrors();
        ValidateMember(body, "body", caller, errors);
        if (caller.IsEndUser && body.Subject is not null) errors.Add("subject", "Join with the group's invite code instead.");
        if (errors.Any) return errors.ToError();
        if (await CheckAccountsAsync(caller, [(body.Account, "account")], ct) is { } accountError) return accountError;
        return await WriteAsync(async (c, tx) =>
        {
            if (await LoadGroupAsync(c, tx, caller, groupId, ct) is not { } g) return GroupNotFound(groupId);
            var id = body.Id ?? "m_" + Ids.NewUlid();
            if (g.Member(id) is { } existing)
                return existing.status != Removed && existing.name == body.Name!.Trim() && existing.account == body.Account && existing.subject == body.Subject
                    ? SplitResult<GroupResponse>.Again(ToResponse(g))
                    : new SplitError(409, "member_exists", $"The group has (or had) a member '{id}'; choose another id.");
            if (body.Subject is not null && g.Members.Any(m => m.subject == body.Subject && m.status != Removed))
                return new SplitError(409, "member_exists", "That subject is already a member of this group.");
            return await AddMemberRowAsync(c, tx, caller, g, new MemberRow
            {
                group_id = groupId, id = id, name = body.Name!.Trim(), account = body.Account, subject = body.Subject, status = Active,
                position = g.Members.Count == 0 ? 0 : g.Members.Max(m => m.position) + 1, created_at_us = NowUs,
            }, ct);
        }, ct);
    }

    async Task<SplitResult<GroupResponse>> AddMemberRowAsync(DbConnection c, DbTransaction tx, SplitCaller caller, GroupState g, MemberRow row, CancellationToken ct)
    {
        if (g.Members.Count(m => m.status != Removed) >= options.Value.MembersMax)
            return new SplitError(409, "group_full", $"A group has at most {options.Value.MembersMax} members.");
        await InsertMemberAsync(c, tx, caller.TenantId, row, ct);
        g.Members.Add(row);
        var member = ToResponse(row);
        await ActivityAsync(c, tx, caller, g.Group.id, "member", row.id, "added", null, member, ct);
        await EventAsync(c, tx, caller.TenantId, SplitEventTypes.MemberAdded, row.id, new { group_id = g.Group.id, member }, ct);
        return SplitResult<GroupResponse>.New(ToResponse(g));
    }

    /// <summary>An end user joins with the invite code and becomes a member as its subject; joining again returns the
    /// group; a member who left comes back.</summary>
    public async Task<SplitResult<GroupResponse>> JoinAsync(SplitCaller caller, JoinGroupRequest body, CancellationToken ct)
    {
        if (caller.Subject is not { } subject)
            return new SplitError(403, "end_user_required", "Joining by invite code is for end-user tokens; a server key adds members with POST .../members.");
        var errors = new FieldErrors();
        if (string.IsNullOrWhiteSpace(body.InviteCode) || body.InviteCode.Length > 64) errors.Add("invite_code", "Required.");
        if (string.IsNullOrWhiteSpace(body.Name) || body.Name.Trim().Length > NameLengthMax) errors.Add("name", $"Required: 1-{NameLengthMax} characters.");
        if (errors.Any) return errors.ToError();
        var code = body.InviteCode!.Trim().ToUpperInvariant();
        return await WriteAsync(async (c, tx) =>
        {
            var groupId = await c.QuerySingleOrDefaultAsync<string>(new CommandDefinition(
                "SELECT id FROM split_groups WHERE tenant_id = @tenant AND invite_code = @code", new { tenant = caller.TenantId, code }, tx, cancellationToken: ct));
            if (groupId is null) return SplitError.NotFound("invite_code_not_found", "No group has this invite code.");
            var g = (await LoadGroupAsync(c, tx, caller with { Subject = null }, groupId, ct))!;
            if (g.Members.FirstOrDefault(m => m.subject == subject) is { } mine)
            {
                if (mine.status != Removed) return SplitResult<GroupResponse>.Again(ToResponse(g with { Me = mine }));
                if (g.Members.Count(m => m.status != Removed) >= options.Value.MembersMax)
                    return new SplitError(409, "group_full", $"A group has at most {options.Value.MembersMax} members.");
                await c.ExecuteAsync(new CommandDefinition(
                    "UPDATE split_members SET status = 1, name = @name WHERE tenant_id = @tenant AND group_id = @groupId AND id = @id",
                    new { tenant = caller.TenantId, groupId, mine.id, name = body.Name!.Trim() }, tx, cancellationToken: ct));
                mine.status = Active;
                mine.name = body.Name!.Trim();
                await ActivityAsync(c, tx, caller, groupId, "member", mine.id, "rejoined", null, ToResponse(mine), ct);
                await EventAsync(c, tx, caller.TenantId, SplitEventTypes.MemberAdded, mine.id, new { group_id = groupId, member = ToResponse(mine) }, ct);
                return SplitResult<GroupResponse>.Ok(ToResponse(g));
            }
            return await AddMemberRowAsync(c, tx, caller, g, new MemberRow
            {
                group_id = groupId, id = "m_" + Ids.NewUlid(), name = body.Name!.Trim(), subject = subject, status = Active,
                position = g.Members.Count == 0 ? 0 : g.Members.Max(m => m.position) + 1, created_at_us = NowUs,
            }, ct);
        }, ct);
    }

    public async Task<SplitResult<GroupResponse>> UpdateMemberAsync(SplitCaller caller, string groupId, string memberId, UpdateMemberRequest body, CancellationToken ct)
    {
        var errors = new FieldErrors();
        if (body.Name is not null && (body.Name.Trim().Length is 0 or > NameLengthMax)) errors.Add("name", $"1-{NameLengthMax} characters.");
        if (body.Account is not null && !Ids.IsValid(body.Account)) errors.Add("account", "A ledger account id.");
        if (body.Subject is not null && (caller.IsEndUser || body.Subject.Length is 0 or > SubjectLengthMax))
            errors.Add("subject", caller.IsEndUser ? "Only a server key maps members to subjects." : $"1-{SubjectLengthMax} characters.");
        if (errors.Any) return errors.ToError();
        if (await CheckAccountsAsync(caller, [(body.Account, "account")], ct) is { } accountError) return accountError;
        return await WriteAsync(async (c, tx) =>
        {
            if (await LoadGroupAsync(c, tx, caller, groupId, ct) is not { } g) return GroupNotFound(groupId);
            if (g.Member(memberId) is not { } m || m.status == Removed) return SplitError.NotFound("member_not_found", $"No member '{memberId}' in this group.");
            if (caller.IsEndUser && body.Account is not null && m.subject != caller.Subject)
                return SplitError.Validation("account", "You can set only your own wallet.");
            if (body.Subject is not null && g.Members.Any(x => x.subject == body.Subject && x.id != memberId && x.status != Removed))
                return new SplitError(409, "member_exists", "That subject is already another member of this group.");
            var before = ToResponse(m);
            m.name = body.Name?.Trim() ?? m.name;
            m.account = body.Account ?? m.account;
            m.subject = body.Subject ?? m.subject;
            m.status = body.Active switch { true => Active, false => Inactive, null => m.status };
            await c.ExecuteAsync(new CommandDefinition("""
                UPDATE split_members SET name = @name, account = @account, subject = @subject, status = @status
                WHERE tenant_id = @tenant AND group_id = @groupId AND id = @id
                """, new { tenant = caller.TenantId, groupId, m.id, m.name, m.account, m.subject, m.status }, tx, cancellationToken: ct));
            var after = ToResponse(m);
            await ActivityAsync(c, tx, caller, groupId, "member", memberId, body.Active == false ? "deactivated" : "updated", before, after, ct);
            await EventAsync(c, tx, caller.TenantId, SplitEventTypes.MemberUpdated, memberId, new { group_id = groupId, member = after }, ct);
            return SplitResult<GroupResponse>.Ok(ToResponse(g));
        }, ct);
    }

    /// <summary>Removes a member (or, for <c>leave</c>, the caller itself). A member whose net is not zero cannot go:
    /// 422 <c>member_has_balance</c> (deactivate it instead). One with history stays on record as removed.</summary>
    public async Task<SplitResult<GroupResponse>> RemoveMemberAsync(SplitCaller caller, string groupId, string? memberId, CancellationToken ct) =>
        await WriteAsync(async (c, tx) =>
        {
            if (await LoadGroupAsync(c, tx, caller, groupId, ct) is not { } g) return GroupNotFound(groupId);
            var id = memberId ?? g.Me?.id;
            if (id is null) return new SplitError(403, "end_user_required", "Leaving is for end-user tokens that are members; a server key removes a member.");
            if (g.Member(id) is not { } m || m.status == Removed) return SplitError.NotFound("member_not_found", $"No member '{id}' in this group.");
            var nets = await NetsAsync(c, tx, caller.TenantId, groupId, ct);
            if (nets.TryGetValue(id, out var net) && net.Net != 0)
                return SplitError.Unprocessable("member_has_balance",
                    $"Member '{id}' has a net balance of {net.Net}: settle up first, or deactivate the member instead.",
                    new Dictionary<string, object?> { ["net"] = net.Net });
            var history = nets.ContainsKey(id) || await c.ExecuteScalarAsync<long>(new CommandDefinition(
                "SELECT count(*) FROM split_settlements WHERE tenant_id = @tenant AND group_id = @groupId AND (from_member = @id OR to_member = @id)",
                new { tenant = caller.TenantId, groupId, id }, tx, cancellationToken: ct)) > 0;
            var before = ToResponse(m);
            await c.ExecuteAsync(new CommandDefinition(history
                ? "UPDATE split_members SET status = 3 WHERE tenant_id = @tenant AND group_id = @groupId AND id = @id"
                : "DELETE FROM split_members WHERE tenant_id = @tenant AND group_id = @groupId AND id = @id",
                new { tenant = caller.TenantId, groupId, id }, tx, cancellationToken: ct));
            m.status = Removed;
            await ActivityAsync(c, tx, caller, groupId, "member", id, memberId is null ? "left" : "removed", before, null, ct);
            await EventAsync(c, tx, caller.TenantId, SplitEventTypes.MemberRemoved, id, new { group_id = groupId, member = ToResponse(m) }, ct);
            if (!history) g.Members.Remove(m);
            return SplitResult<GroupResponse>.Ok(ToResponse(g));
        }, ct);
}
