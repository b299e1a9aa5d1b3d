using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Ledger;

/// <summary>Issue 23, finding 4: end-user tokens reached the whole tenant (every account and transfer with
/// <c>ledger:read</c>, money between any accounts with <c>ledger:write</c>). An end user now reaches only the accounts its
/// subject owns. Run against both stores (the classes at the end).</summary>
public abstract class OwnershipContract(ServerFixture fixture)
{
    protected NeracaServer Server => fixture.Server;

    const string Alice = "user-alice";
    const string Bob = "user-bob";

    sealed record World(TestTenant Tenant, LedgerClient Server, HttpClient Alice, HttpClient Bob, HttpClient Stranger);

    /// <summary>A ledger with an unowned funding account <c>bank</c>, Alice's <c>alice</c> and <c>alice-savings</c>, Bob's
    /// <c>bob</c>; Alice holds 10,000 and Bob 1,000; a token for each and for a subject that owns nothing.</summary>
    async Task<World> WorldAsync()
    {
        var tenant = await Server.NewTenantAsync();
        var l = new LedgerClient(tenant.Http);
        await l.LedgerAsync();
        await l.AccountAsync("bank", normal: "debit");
        await OwnedAccountAsync(tenant, "alice", Alice);
        await OwnedAccountAsync(tenant, "alice-savings", Alice);
        await OwnedAccountAsync(tenant, "bob", Bob);
        Assert.Equal(HttpStatusCode.Created, (await l.TransferAsync("fund-alice", "bank", "alice", 10_000)).Response.StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await l.TransferAsync("fund-bob", "bank", "bob", 1_000)).Response.StatusCode);
        return new World(tenant, l, await EndUserAsync(tenant, Alice), await EndUserAsync(tenant, Bob), await EndUserAsync(tenant, "user-nobody"));
    }

    static async Task OwnedAccountAsync(TestTenant tenant, string id, string owner)
    {
        var r = await tenant.Http.PostJsonAsync("/v1/accounts",
            new { id, ledger = "wallets", normal_balance = "credit", flags = new[] { "debits_must_not_exceed_credits" }, owner });
        Assert.Equal(HttpStatusCode.Created, r.Response.StatusCode);
        Assert.Equal(owner, (string?)r.Body!["owner"]);
    }

    async Task<HttpClient> EndUserAsync(TestTenant tenant, string subject)
    {
        var (response, body) = await tenant.Http.PostJsonAsync("/v1/auth/tokens", new { subject, scopes = new[] { "ledger:read", "ledger:write" } });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var client = Server.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", (string)body!["access_token"]!);
        return client;
    }

    static async Task<string[]> IdsAsync(HttpClient http, string path)
    {
        var (response, body) = await http.GetJsonAsync(path);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return body!["data"]!.AsArray().Select(x => (string)x!["id"]!).ToArray();
    }

    static object Transfer(string id, string debit, string credit, long amount, object? extra = null)
    {
        var body = new JsonObject { ["id"] = id, ["debit_account"] = debit, ["credit_account"] = credit, ["amount"] = amount };
        if (extra is not null)
            foreach (var (k, v) in JsonSerializerHelpers.ToObject(extra)) body[k] = v?.DeepClone();
        return body;
    }

    [Fact]
    public async Task End_user_token_lists_only_accounts_its_subject_owns()
    {
        var w = await WorldAsync();
        Assert.Equal(["alice", "alice-savings"], await IdsAsync(w.Alice, "/v1/accounts"));
        Assert.Equal(["alice", "alice-savings"], await IdsAsync(w.Alice, "/v1/accounts?ledger=wallets"));
        Assert.Equal(["bob"], await IdsAsync(w.Bob, "/v1/accounts"));
        Assert.Empty(await IdsAsync(w.Stranger, "/v1/accounts"));

        var page1 = await w.Alice.GetJsonAsync("/v1/accounts?limit=1");
        Assert.Equal("alice", (string)page1.Body!["data"]![0]!["id"]!);
        Assert.Equal(Alice, (string)page1.Body!["data"]![0]!["owner"]!);
        Assert.Equal(["alice-savings"], await IdsAsync(w.Alice, $"/v1/accounts?limit=1&after={page1.Body!["next_cursor"]}"));
    }

    [Fact]
    public async Task End_user_token_cannot_read_another_subjects_account()
    {
        var w = await WorldAsync();
        // The server reads first, so Bob's row (and first history page) sit in the cache when Alice asks.
        Assert.Equal(1_000, await w.Server.PostedAsync("bob"));
        Assert.Equal(HttpStatusCode.OK, (await w.Server.Http.GetJsonAsync("/v1/accounts/bob/entries")).Response.StatusCode);

        foreach (var id in new[] { "bob", "bank", "nobody" })
        {
            // Another's account answers exactly as a missing one: the id is not confirmed.
            (await w.Alice.GetJsonAsync($"/v1/accounts/{id}")).AssertProblem(404, "account_not_found");
            (await w.Alice.GetJsonAsync($"/v1/accounts/{id}/entries")).AssertProblem(404, "account_not_found");
            (await w.Alice.GetJsonAsync($"/v1/accounts/{id}/balance")).AssertProblem(404, "account_not_found");
        }
        var own = await w.Alice.GetJsonAsync("/v1/accounts/alice");
        Assert.Equal(10_000L, (long)own.Body!["balance"]!["posted"]!);
        Assert.Single((await w.Alice.GetJsonAsync("/v1/accounts/alice/entries")).Body!["data"]!.AsArray());
        Assert.Equal(10_000L, (long)(await w.Alice.GetJsonAsync("/v1/accounts/alice/balance")).Body!["balance"]!);
        Assert.Equal(1_000L, (long)(await w.Bob.GetJsonAsync("/v1/accounts/bob")).Body!["balance"]!["posted"]!);
    }

    [Fact]
    public async Task End_user_token_cannot_debit_an_account_it_does_not_own()
    {
        var w = await WorldAsync();
        foreach (var (debit, n) in new[] { ("bob", 1), ("bank", 2), ("nobody", 3) })
        {
            var r = await w.Alice.PostJsonAsync("/v1/transfers", Transfer($"steal-{n}", debit, "alice", 100));
            r.AssertProblem(422, "account_not_found");
            Assert.Equal("debit_account", (string?)r.Body!["field"]);
        }
        (await w.Alice.GetJsonAsync("/v1/transfers/steal-1")).AssertProblem(404, "transfer_not_found");
        (await w.Server.Http.GetJsonAsync("/v1/transfers/steal-1")).AssertProblem(404, "transfer_not_found");
        Assert.Equal(1_000, await w.Server.PostedAsync("bob"));
        Assert.Equal(10_000, await w.Server.PostedAsync("alice"));
        await Conservation.AssertAsync(Server, w.Tenant.Id);
    }

    [Fact]
    public async Task End_user_token_can_pay_into_another_subjects_account()
    {
        var w = await WorldAsync();
        var paid = await w.Alice.PostJsonAsync("/v1/transfers", Transfer("lunch", "alice", "bob", 2_500));
        Assert.Equal(HttpStatusCode.Created, paid.Response.StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await w.Alice.PostJsonAsync("/v1/transfers", Transfer("save", "alice", "alice-savings", 500))).Response.StatusCode);
        Assert.Equal(7_000, await w.Server.PostedAsync("alice"));
        Assert.Equal(3_500, await w.Server.PostedAsync("bob"));
        // Both sides see the payment; nobody else does.
        Assert.Equal(HttpStatusCode.OK, (await w.Bob.GetJsonAsync("/v1/transfers/lunch")).Response.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await w.Alice.GetJsonAsync("/v1/transfers/lunch")).Response.StatusCode);
        (await w.Stranger.GetJsonAsync("/v1/transfers/lunch")).AssertProblem(404, "transfer_not_found");
        // Insufficient funds still hold for end users.
        (await w.Alice.PostJsonAsync("/v1/transfers", Transfer("too-much", "alice", "bob", 1_000_000))).AssertProblem(422, "insufficient_funds");
        await Conservation.AssertAsync(Server, w.Tenant.Id);
    }

    [Fact]
    public async Task End_user_token_lists_only_transfers_touching_its_accounts()
    {
        var w = await WorldAsync();
        Assert.Equal(HttpStatusCode.Created, (await w.Server.TransferAsync("bob-out", "bob", "bank", 100)).Response.StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await w.Alice.PostJsonAsync("/v1/transfers", Transfer("lunch", "alice", "bob", 10))).Response.StatusCode);

        // Transfers within one clock tick are ordered by id, so the lists are compared as sets.
        Assert.Equal(["fund-alice", "lunch"], (await IdsAsync(w.Alice, "/v1/transfers")).Order());
        Assert.Equal(["bob-out", "fund-bob", "lunch"], (await IdsAsync(w.Bob, "/v1/transfers")).Order());
        Assert.Empty(await IdsAsync(w.Stranger, "/v1/transfers"));
        // An account filter narrows within what the caller sees; it never widens it.
        Assert.Equal(["lunch"], await IdsAsync(w.Alice, "/v1/transfers?account=bob"));
        Assert.Equal(["fund-alice"], await IdsAsync(w.Alice, "/v1/transfers?account=bank&ledger=wallets"));
        var page1 = await w.Bob.GetJsonAsync("/v1/transfers?limit=2");
        var first = page1.Body!["data"]!.AsArray().Select(x => (string)x!["id"]!).ToArray();
        Assert.Equal(2, first.Length);
        var rest = await IdsAsync(w.Bob, $"/v1/transfers?limit=2&after={page1.Body!["next_cursor"]}");
        Assert.Equal(["bob-out", "fund-bob", "lunch"], first.Concat(rest).Order());

        (await w.Alice.GetJsonAsync("/v1/transfers/fund-bob")).AssertProblem(404, "transfer_not_found");
        (await w.Alice.GetJsonAsync("/v1/transfers/bob-out")).AssertProblem(404, "transfer_not_found");
        Assert.Equal(HttpStatusCode.OK, (await w.Alice.GetJsonAsync("/v1/transfers/fund-alice")).Response.StatusCode);
    }

    [Fact]
    public async Task Server_key_keeps_tenant_wide_access()
    {
        var w = await WorldAsync();
        Assert.Equal(["alice", "alice-savings", "bank", "bob"], await IdsAsync(w.Server.Http, "/v1/accounts"));
        Assert.Equal(["fund-alice", "fund-bob"], await IdsAsync(w.Server.Http, "/v1/transfers"));
        Assert.Equal(HttpStatusCode.Created, (await w.Server.TransferAsync("refund", "bob", "alice", 100)).Response.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await w.Server.Http.GetJsonAsync("/v1/accounts/bob/entries")).Response.StatusCode);
        Assert.Equal(Bob, (string?)(await w.Server.Http.GetJsonAsync("/v1/accounts/bob")).Body!["owner"]);
        Assert.Null((await w.Server.Http.GetJsonAsync("/v1/accounts/bank")).Body!["owner"]);

        // The owner is part of the account's identity: the same id with another owner is a conflict, never a takeover.
        (await w.Server.Http.PostJsonAsync("/v1/accounts", new { id = "bob", ledger = "wallets", normal_balance = "credit",
            flags = new[] { "debits_must_not_exceed_credits" }, owner = Alice })).AssertProblem(409, "account_exists_with_different_fields");
        (await w.Server.Http.PostJsonAsync("/v1/accounts", new { id = "x", ledger = "wallets", normal_balance = "credit", owner = "" }))
            .AssertProblem(400, "validation_failed");

        // Accounts and ledgers are the server's: an end user's own account would carry the flags it chose.
        (await w.Alice.PostJsonAsync("/v1/accounts", new { id = "mine", ledger = "wallets", normal_balance = "debit" })).AssertProblem(403, "server_key_required");
        (await w.Alice.PostJsonAsync("/v1/accounts", new { id = "mine", ledger = "wallets", normal_balance = "debit", owner = Alice }))
            .AssertProblem(403, "server_key_required");
        (await w.Alice.PostJsonAsync("/v1/ledgers", new { code = "mine", asset = "IDR", scale = 2 })).AssertProblem(403, "server_key_required");
        (await w.Server.Http.GetJsonAsync("/v1/accounts/mine")).AssertProblem(404, "account_not_found");
        await Conservation.AssertAsync(Server, w.Tenant.Id);
    }

    [Fact]
    public async Task End_user_batch_items_must_each_debit_its_own_accounts()
    {
        var w = await WorldAsync();
        var r = await w.Alice.PostJsonAsync("/v1/transfers/batch", new
        {
            transfers = new[]
            {
                Transfer("b0", "alice", "bob", 10),
                Transfer("b1", "bob", "alice", 10),
                Transfer("b2", "alice", "bob", 10, new { linked = true }),
                Transfer("b3", "bank", "alice", 10),
                Transfer("b4", "alice", "alice-savings", 10),
            },
        });
        Assert.Equal(HttpStatusCode.OK, r.Response.StatusCode);
        var results = r.Body!["results"]!.AsArray();
        Assert.Equal(["created", "failed", "failed", "failed", "created"], results.Select(x => (string)x!["status"]!));
        Assert.Equal("account_not_found", (string)results[1]!["code"]!);
        Assert.Equal("linked_event_failed", (string)results[2]!["code"]!);
        Assert.Equal("account_not_found", (string)results[3]!["code"]!);

        var atomic = await w.Alice.PostJsonAsync("/v1/transfers/batch", new
        {
            atomic = true,
            transfers = new[] { Transfer("a0", "alice", "bob", 10), Transfer("a1", "bob", "alice", 5_000) },
        });
        Assert.Equal(["failed", "failed"], atomic.Body!["results"]!.AsArray().Select(x => (string)x!["status"]!));
        Assert.Equal(9_980, await w.Server.PostedAsync("alice"));
        Assert.Equal(1_010, await w.Server.PostedAsync("bob"));
        Assert.Equal(10, await w.Server.PostedAsync("alice-savings"));
        await Conservation.AssertAsync(Server, w.Tenant.Id);
    }

    [Fact]
    public async Task End_user_resolves_a_pending_transfer_only_in_the_direction_that_costs_itself()
    {
        var w = await WorldAsync();
        // A hold on Alice's wallet for Bob, placed by the server.
        Assert.Equal(HttpStatusCode.Created, (await w.Server.TransferAsync("hold", "alice", "bob", 600, new { pending = true, timeout_seconds = 3600 })).Response.StatusCode);
        (await w.Stranger.PostJsonAsync("/v1/transfers/hold/post", new { })).AssertProblem(422, "pending_transfer_not_found");
        (await w.Stranger.PostJsonAsync("/v1/transfers/hold/void", new { })).AssertProblem(422, "pending_transfer_not_found");
        // The payer may not take the held money back (void, or a partial post releasing the rest to itself);
        // the payee may not take the payer's money (post).
        (await w.Alice.PostJsonAsync("/v1/transfers/hold/void", new { })).AssertProblem(403, "server_key_required");
        (await w.Alice.PostJsonAsync("/v1/transfers/hold/post", new { amount = 1 })).AssertProblem(403, "server_key_required");
        (await w.Bob.PostJsonAsync("/v1/transfers/hold/post", new { })).AssertProblem(403, "server_key_required");
        Assert.Equal("pending", (string)(await w.Server.Http.GetJsonAsync("/v1/transfers/hold")).Body!["status"]!);

        var posted = await w.Alice.PostJsonAsync("/v1/transfers/hold/post", new { });
        Assert.Equal(HttpStatusCode.OK, posted.Response.StatusCode);
        Assert.Equal(600L, (long)posted.Body!["posted_amount"]!);

        // The payee may decline money held for it.
        Assert.Equal(HttpStatusCode.Created, (await w.Alice.PostJsonAsync("/v1/transfers", Transfer("hold-2", "alice", "bob", 300, new { pending = true }))).Response.StatusCode);
        var voided = await w.Bob.PostJsonAsync("/v1/transfers/hold-2/void", new { });
        Assert.Equal(HttpStatusCode.OK, voided.Response.StatusCode);
        Assert.Equal("voided", (string)voided.Body!["status"]!);

        // A reversal debits the original's payee: Bob may refund Alice, Alice may not take her payment back.
        (await w.Stranger.PostJsonAsync("/v1/transfers/hold/reverse", new { id = "rev-x" })).AssertProblem(404, "transfer_not_found");
        (await w.Alice.PostJsonAsync("/v1/transfers/hold/reverse", new { id = "rev-a" })).AssertProblem(403, "server_key_required");
        var refund = await w.Bob.PostJsonAsync("/v1/transfers/hold/reverse", new { id = "rev-b", amount = 100 });
        Assert.Equal(HttpStatusCode.Created, refund.Response.StatusCode);

        Assert.Equal(10_000 - 600 + 100, await w.Server.PostedAsync("alice"));
        Assert.Equal(1_000 + 600 - 100, await w.Server.PostedAsync("bob"));
        Assert.Equal(0L, (long)(await w.Server.BalanceAsync("alice"))["debits_pending"]!);
        await Conservation.AssertAsync(Server, w.Tenant.Id);
    }

    [Fact]
    public async Task End_user_reusing_another_subjects_transfer_id_learns_none_of_its_fields()
    {
        var w = await WorldAsync();
        Assert.Equal(HttpStatusCode.Created, (await w.Server.TransferAsync("salary", "bank", "bob", 777)).Response.StatusCode);
        var r = await w.Alice.PostJsonAsync("/v1/transfers", Transfer("salary", "alice", "bob", 777));
        r.AssertProblem(409, "transfer_exists_with_different_fields");
        Assert.Equal("id", (string?)r.Body!["field"]);
        Assert.DoesNotContain("debit", r.Body!.ToJsonString(), StringComparison.Ordinal);
        // A server still learns which field differs.
        var s = await w.Server.TransferAsync("salary", "bank", "bob", 778);
        s.AssertProblem(409, "transfer_exists_with_different_fields");
        Assert.Equal("amount", (string?)s.Body!["field"]);
    }
}

public sealed class SqliteOwnershipContractTests(SqliteServerFixture fixture) : OwnershipContract(fixture), IClassFixture<SqliteServerFixture>;

public sealed class PostgresOwnershipContractTests(PostgresServerFixture fixture) : OwnershipContract(fixture), IClassFixture<PostgresServerFixture>;

/// <summary>On PostgreSQL as the least-privilege application role: the owner column is written and read by that role too.</summary>
public sealed class AppRoleOwnershipContractTests(PostgresAppRoleServerFixture fixture) : OwnershipContract(fixture), IClassFixture<PostgresAppRoleServerFixture>;

/// <summary>With Redis configured (cache L2 and version tokens in Redis): the owner is part of the cached account row and
/// is checked after the cache, so a row cached for a server key or one subject never answers another subject.</summary>
public sealed class RedisOwnershipServerFixture() : ServerFixture(StoreKind.Postgres)
{
    protected override async Task<(NeracaServer Server, string AdminDatabase)> StartAsync()
    {
        var redis = await RedisServer.SharedAsync();
        var database = await TestStores.NewDatabaseAsync(Kind);
        // A prefix of its own: version tokens of earlier runs must not decide this one.
        return (await NeracaServer.StartAsync(database, Clock.Time, "--Redis:Url=" + redis.Url, "--Redis:KeyPrefix=t" + Guid.NewGuid().ToString("N") + ":"), database);
    }
}

public sealed class RedisOwnershipContractTests(RedisOwnershipServerFixture fixture) : OwnershipContract(fixture), IClassFixture<RedisOwnershipServerFixture>;
