using System.Net;
using System.Text.Json.Nodes;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Ledger;

/// <summary>Test-side shortcuts over the ledger HTTP API of one tenant.</summary>
public sealed class LedgerClient(HttpClient http)
{
    public HttpClient Http { get; } = http;

    public async Task<string> LedgerAsync(string code = "wallets", string asset = "IDR")
    {
        var r = await Http.PostJsonAsync("/v1/ledgers", new { code, asset, scale = 2 });
        Assert.True(r.Response.StatusCode is HttpStatusCode.Created or HttpStatusCode.OK, r.Body?.ToJsonString());
        return code;
    }

    public async Task<string> AccountAsync(string id, string ledger = "wallets", string normal = "credit", string[]? flags = null, long? overdraft = null)
    {
        var r = await Http.PostJsonAsync("/v1/accounts", new { id, ledger, normal_balance = normal, flags = flags ?? [], overdraft_limit = overdraft });
        Assert.True(r.Response.StatusCode is HttpStatusCode.Created, r.Body?.ToJsonString());
        return id;
    }

    public Task<(HttpResponseMessage Response, JsonNode? Body)> TransferAsync(string? id, string debit, string credit, long amount, object? extra = null)
    {
        var body = new JsonObject { ["debit_account"] = debit, ["credit_account"] = credit, ["amount"] = amount };
        if (id is not null) body["id"] = id;
        if (extra is not null)
            foreach (var (k, v) in JsonSerializerHelpers.ToObject(extra)) body[k] = v?.DeepClone();
        return Http.PostJsonAsync("/v1/transfers", body);
    }

    public async Task<JsonNode> BalanceAsync(string account)
    {
        var r = await Http.GetJsonAsync($"/v1/accounts/{account}");
        Assert.Equal(HttpStatusCode.OK, r.Response.StatusCode);
        return r.Body!["balance"]!;
    }

    public async Task<long> PostedAsync(string account) => (long)(await BalanceAsync(account))["posted"]!;
}

static class JsonSerializerHelpers
{
    public static JsonObject ToObject(object o) => (JsonObject)System.Text.Json.JsonSerializer.SerializeToNode(o)!;
}

/// <summary>Books-balance checks run after concurrency and fault tests.</summary>
public static class Conservation
{
    /// <summary>For every ledger of the tenant: total debits = total credits (posted and pending); account totals equal
    /// the sums of their journal entries; the running balance of the last entry equals the account's posted balance.</summary>
    public static async Task AssertAsync(NeracaServer server, string tenantId)
    {
        var database = server.Services.GetRequiredService<Database>();
        await using var c = await database.OpenAsync(CancellationToken.None);
        var violations = await ViolationsAsync(c, tenantId);
        Assert.True(violations.Count == 0, string.Join("\n", violations));
    }

    /// <summary>The same checks, as a list of what is wrong (empty when the books balance), for the fault checker.</summary>
    public static async Task<List<string>> ViolationsAsync(System.Data.Common.DbConnection c, string tenantId)
    {
        var violations = new List<string>();
        var ledgers = await c.QueryAsync<(string Ledger, long Debits, long Credits, long DebitsPending, long CreditsPending)>("""
            SELECT ledger_id, sum(debits_posted), sum(credits_posted), sum(debits_pending), sum(credits_pending)
            FROM accounts WHERE tenant_id = @tenantId GROUP BY ledger_id
            """, new { tenantId });
        foreach (var l in ledgers)
        {
            if (l.Debits != l.Credits) violations.Add($"ledger {l.Ledger}: posted debits {l.Debits} != credits {l.Credits}");
            if (l.DebitsPending != l.CreditsPending) violations.Add($"ledger {l.Ledger}: pending debits {l.DebitsPending} != credits {l.CreditsPending}");
        }
        var mismatches = await c.QueryAsync<string>("""
            SELECT a.id FROM accounts a
            LEFT JOIN (SELECT account_id, sum(CASE WHEN direction = 1 THEN amount ELSE 0 END) AS d, sum(CASE WHEN direction = 2 THEN amount ELSE 0 END) AS c, count(*) AS n
                       FROM entries WHERE tenant_id = @tenantId GROUP BY account_id) e ON e.account_id = a.id
            WHERE a.tenant_id = @tenantId AND (coalesce(e.d, 0) <> a.debits_posted OR coalesce(e.c, 0) <> a.credits_posted OR coalesce(e.n, 0) <> a.entry_count)
            """, new { tenantId });
        violations.AddRange(mismatches.Select(a => $"account {a}: totals differ from its journal entries"));
        var lastBalances = await c.QueryAsync<string>("""
            SELECT a.id FROM accounts a JOIN entries e ON e.tenant_id = a.tenant_id AND e.account_id = a.id AND e.entry_no = a.entry_count
            WHERE a.tenant_id = @tenantId AND e.balance_after <> CASE WHEN a.normal_balance = 2 THEN a.credits_posted - a.debits_posted ELSE a.debits_posted - a.credits_posted END
            """, new { tenantId });
        violations.AddRange(lastBalances.Select(a => $"account {a}: the last entry's running balance differs from the balance"));
        return violations;
    }
}
