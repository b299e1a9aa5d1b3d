using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Jobs;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Ledger;
using SkiaSharp;

namespace Neraca.Tests.Splits;

/// <summary>The split-bill HTTP contract (issue 15), run against both stores (the classes at the end).</summary>
public abstract class SplitBillContract(ServerFixture fixture)
{
    protected NeracaServer Server => fixture.Server;

    static object Equal() => new { mode = "equal" };

    /// <summary>A tenant and a group in IDR with members m1..mN named after <paramref name="names"/>.</summary>
    async Task<(TestTenant Tenant, string Group)> GroupAsync(params string[] names)
    {
        var tenant = await Server.NewTenantAsync();
        var group = "g_" + Guid.NewGuid().ToString("N")[..10];
        var r = await tenant.Http.PostJsonAsync("/v1/split/groups", new
        {
            id = group, name = "Trip", currency = "IDR",
            members = names.Select((n, i) => new { id = $"m{i + 1}", name = n }).ToArray(),
        });
        Assert.True(r.Response.StatusCode == HttpStatusCode.Created, r.Body?.ToJsonString());
        return (tenant, group);
    }

    static async Task<JsonNode> ExpenseAsync(HttpClient http, string group, object body, HttpStatusCode expected = HttpStatusCode.Created)
    {
        var r = await http.PostJsonAsync($"/v1/split/groups/{group}/expenses", body);
        Assert.True(r.Response.StatusCode == expected, $"expected {expected}, got {(int)r.Response.StatusCode}: {r.Body?.ToJsonString()}");
        return r.Body!;
    }

    static Dictionary<string, long> Shares(JsonNode expense) =>
        expense["shares"]!.AsArray().ToDictionary(s => (string)s!["member"]!, s => (long)s!["amount"]!);

    static async Task<Dictionary<string, long>> NetsAsync(HttpClient http, string group)
    {
        var r = await http.GetJsonAsync($"/v1/split/groups/{group}/balances");
        Assert.Equal(HttpStatusCode.OK, r.Response.StatusCode);
        var nets = r.Body!["balances"]!.AsArray().ToDictionary(b => (string)b!["member"]!, b => (long)b!["net"]!);
        Assert.Equal(0, nets.Values.Sum());
        return nets;
    }

    async Task<HttpClient> EndUserAsync(TestTenant tenant, string subject)
    {
        var (response, body) = await tenant.Http.PostJsonAsync("/v1/auth/tokens", new { subject, scopes = new[] { "ledger:read", "ledger:write" } });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var client = Server.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", (string)body!["access_token"]!);
        return client;
    }

    [Fact]
    public async Task Equal_split_of_100_by_3_is_34_33_33_and_1000_by_shares_1_2_3_is_167_333_500()
    {
        var (t, g) = await GroupAsync("Ana", "Budi", "Citra");
        var equal = await ExpenseAsync(t.Http, g, new { id = "e1", description = "Coffee", amount = 100, paid_by = new[] { new { member = "m1", amount = 100 } }, split = Equal() });
        Assert.Equal([33L, 33, 34], Shares(equal).Values.Order());
        Assert.Equal(100, (long)equal["group_amount"]!);

        var weighted = await ExpenseAsync(t.Http, g, new
        {
            id = "e2", description = "Villa", amount = 1000, paid_by = new[] { new { member = "m2", amount = 1000 } },
            split = new { mode = "shares", shares = new[] { new { member = "m1", weight = 1 }, new { member = "m2", weight = 2 }, new { member = "m3", weight = 3 } } },
        });
        Assert.Equal(new Dictionary<string, long> { ["m1"] = 167, ["m2"] = 333, ["m3"] = 500 }, Shares(weighted));

        var one = await t.Http.GetJsonAsync($"/v1/split/groups/{g}/expenses/e2");
        Assert.Equal(HttpStatusCode.OK, one.Response.StatusCode);
        Assert.Equal(Shares(weighted), Shares(one.Body!));
        Assert.Equal("shares", (string)one.Body!["split"]!["mode"]!);
    }

    [Fact]
    public async Task Exact_and_percent_that_do_not_add_up_are_split_mismatch_naming_the_difference()
    {
        var (t, g) = await GroupAsync("Ana", "Budi");
        var exact = await t.Http.PostJsonAsync($"/v1/split/groups/{g}/expenses", new
        {
            description = "Dinner", amount = 10_000, paid_by = new[] { new { member = "m1", amount = 10_000 } },
            split = new { mode = "exact", shares = new[] { new { member = "m1", amount = 6_000 }, new { member = "m2", amount = 3_900 } } },
        });
        exact.AssertProblem(422, "split_mismatch");
        Assert.Contains("100 short of", (string)exact.Body!["detail"]!);
        Assert.Equal(-100, (long)exact.Body!["difference"]!);

        var percent = await t.Http.PostJsonAsync($"/v1/split/groups/{g}/expenses", new
        {
            description = "Dinner", amount = 10_000, paid_by = new[] { new { member = "m1", amount = 10_000 } },
            split = new { mode = "percent", shares = new[] { new { member = "m1", bps = 6_000 }, new { member = "m2", bps = 4_500 } } },
        });
        percent.AssertProblem(422, "split_mismatch");
        Assert.Contains("500 over", (string)percent.Body!["detail"]!);

        var paid = await t.Http.PostJsonAsync($"/v1/split/groups/{g}/expenses", new
        {
            description = "Dinner", amount = 10_000, paid_by = new[] { new { member = "m1", amount = 9_000 } }, split = Equal(),
        });
        paid.AssertProblem(422, "paid_by_mismatch");
        Assert.Empty((await t.Http.GetJsonAsync($"/v1/split/groups/{g}/expenses")).Body!["data"]!.AsArray());
    }

    [Fact]
    public async Task Itemized_spreads_tax_and_tip_in_proportion_to_each_members_items()
    {
        var (t, g) = await GroupAsync("Ana", "Budi", "Citra");
        // Items 6,000 (Ana) + 3,000 (Budi and Citra) + tax 900 + tip 100 = 10,000. Ana's items are 2/3 of all.
        var e = await ExpenseAsync(t.Http, g, new
        {
            description = "Restaurant", amount = 10_000, paid_by = new[] { new { member = "m1", amount = 10_000 } },
            split = new
            {
                mode = "itemized", tax = 900, tip = 100,
                items = new object[]
                {
                    new { description = "Steak", amount = 6_000, split = new { mode = "exact", shares = new[] { new { member = "m1", amount = 6_000 } } } },
                    new { description = "Pasta", amount = 3_000, split = new { mode = "equal", members = new[] { "m2", "m3" } } },
                },
            },
        });
        Assert.Equal(new Dictionary<string, long> { ["m1"] = 6_667, ["m2"] = 1_667, ["m3"] = 1_666 }.Values.Sum(), Shares(e).Values.Sum());
        Assert.InRange(Shares(e)["m1"], 6_666, 6_667);
        Assert.InRange(Shares(e)["m2"], 1_666, 1_667);
        Assert.InRange(Shares(e)["m3"], 1_666, 1_667);

        var wrong = await t.Http.PostJsonAsync($"/v1/split/groups/{g}/expenses", new
        {
            description = "Restaurant", amount = 10_000, paid_by = new[] { new { member = "m1", amount = 10_000 } },
            split = new { mode = "itemized", tax = 900, items = new object[] { new { description = "Steak", amount = 6_000, split = Equal() } } },
        });
        wrong.AssertProblem(422, "split_mismatch");
    }

    [Fact]
    public async Task A_foreign_currency_expense_keeps_its_amount_and_rate_and_converts_with_bankers_rounding()
    {
        var (t, g) = await GroupAsync("Ana", "Budi");
        // 12.35 USD at 15,400.5 IDR = 190,196.175 IDR = 19,019,617.5 sen: half to even gives 19,019,618.
        var e = await ExpenseAsync(t.Http, g, new
        {
            description = "Taxi", amount = 1235, currency = "USD", exchange_rate = "15400.5",
            paid_by = new[] { new { member = "m1", amount = 1235 } }, split = Equal(),
        });
        Assert.Equal(1235, (long)e["amount"]!);
        Assert.Equal("USD", (string)e["currency"]!);
        Assert.Equal("15400.5", (string)e["exchange_rate"]!);
        Assert.Equal(19_019_618, (long)e["group_amount"]!);
        Assert.Equal(19_019_618, Shares(e).Values.Sum());
        Assert.Equal(19_019_618, (long)e["paid"]![0]!["amount"]!);

        (await t.Http.PostJsonAsync($"/v1/split/groups/{g}/expenses", new
        {
            description = "Taxi", amount = 1235, currency = "USD", paid_by = new[] { new { member = "m1", amount = 1235 } }, split = Equal(),
        })).AssertProblem(400, "validation_failed");
        foreach (var bad in new object[] { "1e5", "-3", "0", 15400 })
            (await t.Http.PostJsonAsync($"/v1/split/groups/{g}/expenses", new
            {
                description = "Taxi", amount = 1235, currency = "USD", exchange_rate = bad, paid_by = new[] { new { member = "m1", amount = 1235 } }, split = Equal(),
            })).AssertProblem(400, "validation_failed");
    }

    [Fact]
    public async Task A_chain_of_three_members_settles_with_one_transfer_naming_both_expenses()
    {
        var (t, g) = await GroupAsync("Ana", "Budi", "Citra");
        // Budi pays 1,000 for Ana; Citra pays 1,000 for Budi. Budi is even: Ana pays Citra.
        await ExpenseAsync(t.Http, g, new { id = "ab", description = "A", amount = 1000, paid_by = new[] { new { member = "m2", amount = 1000 } },
            split = new { mode = "exact", shares = new[] { new { member = "m1", amount = 1000 } } } });
        await ExpenseAsync(t.Http, g, new { id = "bc", description = "B", amount = 1000, paid_by = new[] { new { member = "m3", amount = 1000 } },
            split = new { mode = "exact", shares = new[] { new { member = "m2", amount = 1000 } } } });
        var r = await t.Http.GetJsonAsync($"/v1/split/groups/{g}/settle-up");
        var transfers = r.Body!["transfers"]!.AsArray();
        Assert.True((bool)r.Body!["simplified"]!);
        var only = Assert.Single(transfers)!;
        Assert.Equal(("m1", "m3", 1000L), ((string)only["from"]!, (string)only["to"]!, (long)only["amount"]!));
        Assert.Equal(["ab", "bc"], only["expenses"]!.AsArray().Select(x => (string)x!).Order());
        Assert.Contains("Ana pays Citra", (string)only["explanation"]!);

        var pairwise = await t.Http.GetJsonAsync($"/v1/split/groups/{g}/settle-up?simplify=false");
        Assert.False((bool)pairwise.Body!["simplified"]!);
        Assert.Equal(2, pairwise.Body!["transfers"]!.AsArray().Count);
    }

    [Fact]
    public async Task A_six_member_group_with_mixed_expenses_reaches_zero_by_following_the_suggestions()
    {
        var (t, g) = await GroupAsync("Ana", "Budi", "Citra", "Dewi", "Eko", "Fajar");
        await ExpenseAsync(t.Http, g, new { description = "Villa", amount = 3_000_001, paid_by = new[] { new { member = "m1", amount = 3_000_001 } }, split = Equal() });
        await ExpenseAsync(t.Http, g, new { description = "Boat", amount = 1_000_000, paid_by = new[] { new { member = "m2", amount = 600_000 }, new { member = "m3", amount = 400_000 } },
            split = new { mode = "shares", shares = new[] { new { member = "m1", weight = 1 }, new { member = "m4", weight = 2 }, new { member = "m5", weight = 3 }, new { member = "m6", weight = 1 } } } });
        await ExpenseAsync(t.Http, g, new { description = "Dinner", amount = 777_777, paid_by = new[] { new { member = "m4", amount = 777_777 } },
            split = new { mode = "percent", shares = new[] { new { member = "m1", bps = 3_333 }, new { member = "m2", bps = 3_333 }, new { member = "m6", bps = 3_334 } } } });
        await ExpenseAsync(t.Http, g, new { description = "Tickets", amount = 5_000, currency = "USD", exchange_rate = "15873.1234",
            paid_by = new[] { new { member = "m6", amount = 5_000 } }, split = new { mode = "equal", members = new[] { "m2", "m3", "m4", "m5", "m6" } } });
        await ExpenseAsync(t.Http, g, new { description = "Snacks", amount = 90_000, paid_by = new[] { new { member = "m5", amount = 90_000 } },
            split = new { mode = "exact", shares = new[] { new { member = "m1", amount = 10_000 }, new { member = "m5", amount = 80_000 } } } });
        var nets = await NetsAsync(t.Http, g);
        Assert.Contains(nets.Values, v => v != 0);

        var suggestions = (await t.Http.GetJsonAsync($"/v1/split/groups/{g}/settle-up")).Body!["transfers"]!.AsArray();
        Assert.InRange(suggestions.Count, 1, 5);
        var i = 0;
        foreach (var s in suggestions)
        {
            Assert.NotEmpty(s!["expenses"]!.AsArray());
            var r = await t.Http.PostJsonAsync($"/v1/split/groups/{g}/settlements", new
            {
                id = $"s{i++}", from = (string)s["from"]!, to = (string)s["to"]!, amount = (long)s["amount"]!, method = "cash",
            });
            Assert.True(r.Response.StatusCode == HttpStatusCode.Created, r.Body?.ToJsonString());
            Assert.Equal("completed", (string)r.Body!["status"]!);
        }
        Assert.All((await NetsAsync(t.Http, g)).Values, v => Assert.Equal(0, v));
        Assert.Empty((await t.Http.GetJsonAsync($"/v1/split/groups/{g}/settle-up")).Body!["transfers"]!.AsArray());
        Assert.Empty((await t.Http.GetJsonAsync($"/v1/split/groups/{g}/settle-up?simplify=false")).Body!["transfers"]!.AsArray());
    }

    [Fact]
    public async Task Pairwise_suggestions_also_bring_every_balance_to_zero()
    {
        var (t, g) = await GroupAsync("Ana", "Budi", "Citra", "Dewi");
        await ExpenseAsync(t.Http, g, new { description = "a", amount = 1001, paid_by = new[] { new { member = "m1", amount = 1001 } }, split = Equal() });
        await ExpenseAsync(t.Http, g, new { description = "b", amount = 503, paid_by = new[] { new { member = "m2", amount = 500 }, new { member = "m4", amount = 3 } }, split = Equal() });
        await ExpenseAsync(t.Http, g, new { description = "c", amount = 99, paid_by = new[] { new { member = "m3", amount = 99 } },
            split = new { mode = "equal", members = new[] { "m1", "m2" } } });
        var i = 0;
        foreach (var s in (await t.Http.GetJsonAsync($"/v1/split/groups/{g}/settle-up?simplify=false")).Body!["transfers"]!.AsArray())
            Assert.Equal(HttpStatusCode.Created, (await t.Http.PostJsonAsync($"/v1/split/groups/{g}/settlements",
                new { id = $"p{i++}", from = (string)s!["from"]!, to = (string)s["to"]!, amount = (long)s["amount"]!, method = "cash" })).Response.StatusCode);
        Assert.All((await NetsAsync(t.Http, g)).Values, v => Assert.Equal(0, v));
    }

    [Fact]
    public async Task Edits_and_deletions_are_in_the_activity_log_with_before_and_after_and_leave_the_balances()
    {
        var (t, g) = await GroupAsync("Ana", "Budi");
        await ExpenseAsync(t.Http, g, new { id = "e1", description = "Lunch", amount = 2_000, paid_by = new[] { new { member = "m1", amount = 2_000 } }, split = Equal() });
        var edit = await t.Http.SendAsync(new HttpRequestMessage(HttpMethod.Patch, $"/v1/split/groups/{g}/expenses/e1") { Content = JsonContent.Create(new { amount = 3_000 }) });
        var edited = await Http.ReadAsync(edit);
        Assert.True(edit.StatusCode == HttpStatusCode.OK, edited?.ToJsonString());
        Assert.Equal(3_000, (long)edited!["paid"]![0]!["amount"]!); // the single payer follows the amount
        Assert.Equal(1_500, (await NetsAsync(t.Http, g))["m1"]);

        var deleted = await t.Http.DeleteAsync($"/v1/split/groups/{g}/expenses/e1");
        Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        Assert.All((await NetsAsync(t.Http, g)).Values, v => Assert.Equal(0, v));
        Assert.Empty((await t.Http.GetJsonAsync($"/v1/split/groups/{g}/expenses")).Body!["data"]!.AsArray());
        Assert.NotNull((await t.Http.GetJsonAsync($"/v1/split/groups/{g}/expenses/e1")).Body!["deleted_at"]);

        var log = (await t.Http.GetJsonAsync($"/v1/split/groups/{g}/activity")).Body!["data"]!.AsArray();
        var update = log.Single(a => (string)a!["action"]! == "updated" && (string)a["target_id"]! == "e1")!;
        Assert.Equal(2_000, (long)update["before"]!["amount"]!);
        Assert.Equal(3_000, (long)update["after"]!["amount"]!);
        Assert.StartsWith("key:", (string)update["actor"]!);
        var deletion = log.Single(a => (string)a!["action"]! == "deleted")!;
        Assert.Equal(3_000, (long)deletion["before"]!["amount"]!);

        var events = await t.Http.EventsAsync("?type=split.expense.created,split.expense.updated,split.expense.deleted", 3);
        Assert.Equal(["split.expense.created", "split.expense.updated", "split.expense.deleted"], events.Select(e => (string)e!["type"]!));
        Assert.All(events, e => Assert.Equal("e1", (string)e!["subject"]!));
    }

    [Fact]
    public async Task A_member_with_a_balance_cannot_be_removed_only_deactivated()
    {
        var (t, g) = await GroupAsync("Ana", "Budi", "Citra");
        await ExpenseAsync(t.Http, g, new { description = "x", amount = 900, paid_by = new[] { new { member = "m1", amount = 900 } }, split = Equal() });
        (await t.Http.DeleteAsyncJson($"/v1/split/groups/{g}/members/m2")).AssertProblem(422, "member_has_balance");

        var deactivate = await t.Http.SendAsync(new HttpRequestMessage(HttpMethod.Patch, $"/v1/split/groups/{g}/members/m2") { Content = JsonContent.Create(new { active = false }) });
        Assert.Equal(HttpStatusCode.OK, deactivate.StatusCode);
        (await t.Http.PostJsonAsync($"/v1/split/groups/{g}/expenses", new
        {
            description = "y", amount = 900, paid_by = new[] { new { member = "m1", amount = 900 } }, split = new { mode = "equal", members = new[] { "m1", "m2" } },
        })).AssertProblem(422, "member_inactive");
        var defaults = await ExpenseAsync(t.Http, g, new { description = "z", amount = 900, paid_by = new[] { new { member = "m1", amount = 900 } }, split = Equal() });
        Assert.Equal(["m1", "m3"], Shares(defaults).Keys.Order());

        Assert.Equal(HttpStatusCode.Created, (await t.Http.PostJsonAsync($"/v1/split/groups/{g}/settlements",
            new { id = "s1", from = "m2", to = "m1", amount = 300, method = "cash" })).Response.StatusCode);
        var removed = await t.Http.DeleteAsyncJson($"/v1/split/groups/{g}/members/m2");
        Assert.Equal(HttpStatusCode.OK, removed.Response.StatusCode);
        Assert.DoesNotContain(removed.Body!["members"]!.AsArray(), m => (string)m!["id"]! == "m2");
    }

    [Fact]
    public async Task End_users_see_only_their_groups_and_join_by_invite_code()
    {
        var tenant = await Server.NewTenantAsync();
        var alice = await EndUserAsync(tenant, "user-alice");
        var carol = await EndUserAsync(tenant, "user-carol");
        var created = await alice.PostJsonAsync("/v1/split/groups", new
        {
            id = "g-alice", name = "Flat", currency = "IDR", members = new object[] { new { id = "a", name = "Alice", subject = "user-alice" }, new { id = "b", name = "Bob" } },
        });
        Assert.True(created.Response.StatusCode == HttpStatusCode.Created, created.Body?.ToJsonString());
        var invite = (string)created.Body!["invite_code"]!;
        await ExpenseAsync(alice, "g-alice", new { description = "Rent", amount = 1_000, split = Equal() }); // paid by Alice: her token's member

        (await carol.GetJsonAsync("/v1/split/groups/g-alice")).AssertProblem(404, "group_not_found");
        (await carol.GetJsonAsync("/v1/split/groups/g-alice/balances")).AssertProblem(404, "group_not_found");
        (await carol.PostJsonAsync("/v1/split/groups/g-alice/expenses", new { description = "x", amount = 1, split = Equal() })).AssertProblem(404, "group_not_found");
        Assert.Empty((await carol.GetJsonAsync("/v1/split/groups")).Body!["data"]!.AsArray());
        Assert.Single((await alice.GetJsonAsync("/v1/split/groups")).Body!["data"]!.AsArray());
        // An end user cannot map another member to a subject (it would act as them).
        (await alice.PostJsonAsync("/v1/split/groups", new { name = "x", currency = "IDR", members = new object[] { new { name = "Alice", subject = "user-alice" }, new { name = "C", subject = "user-carol" } } }))
            .AssertProblem(400, "validation_failed");

        (await carol.PostJsonAsync("/v1/split/groups/join", new { invite_code = "WRONGCODE1", name = "Carol" })).AssertProblem(404, "invite_code_not_found");
        var joined = await carol.PostJsonAsync("/v1/split/groups/join", new { invite_code = invite.ToLowerInvariant(), name = "Carol" });
        Assert.Equal(HttpStatusCode.Created, joined.Response.StatusCode);
        Assert.Contains(joined.Body!["members"]!.AsArray(), m => (string?)m!["subject"] == "user-carol");
        Assert.Equal(HttpStatusCode.OK, (await carol.GetJsonAsync("/v1/split/groups/g-alice")).Response.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await carol.PostJsonAsync("/v1/split/groups/join", new { invite_code = invite, name = "Carol" })).Response.StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await carol.PostJsonAsync("/v1/split/groups/g-alice/leave", new { })).Response.StatusCode);
        (await carol.GetJsonAsync("/v1/split/groups/g-alice")).AssertProblem(404, "group_not_found");
        (await tenant.Http.PostJsonAsync("/v1/split/groups/join", new { invite_code = invite, name = "Server" })).AssertProblem(403, "end_user_required");
    }

    [Fact]
    public async Task Another_tenants_group_and_expense_are_not_found()
    {
        var (t, g) = await GroupAsync("Ana", "Budi");
        await ExpenseAsync(t.Http, g, new { id = "e1", description = "x", amount = 100, paid_by = new[] { new { member = "m1", amount = 100 } }, split = Equal() });
        var other = await Server.NewTenantAsync();
        (await other.Http.GetJsonAsync($"/v1/split/groups/{g}")).AssertProblem(404, "group_not_found");
        (await other.Http.GetJsonAsync($"/v1/split/groups/{g}/expenses/e1")).AssertProblem(404, "group_not_found");
        (await other.Http.GetJsonAsync($"/v1/split/groups/{g}/export")).AssertProblem(404, "group_not_found");
        (await other.Http.PostJsonAsync($"/v1/split/groups/{g}/settlements", new { from = "m1", to = "m2", amount = 1, method = "cash" })).AssertProblem(404, "group_not_found");
        Assert.Empty((await other.Http.GetJsonAsync("/v1/split/groups")).Body!["data"]!.AsArray());
        // The same group id is free in the other tenant.
        Assert.Equal(HttpStatusCode.Created, (await other.Http.PostJsonAsync("/v1/split/groups",
            new { id = g, name = "Mine", currency = "JPY", members = new[] { new { name = "X" } } })).Response.StatusCode);
    }

    [Fact]
    public async Task A_wallet_settlement_moves_the_money_on_the_ledger_once_and_settles_the_debt()
    {
        var tenant = await Server.NewTenantAsync();
        var ledger = new LedgerClient(tenant.Http);
        await ledger.LedgerAsync();
        await ledger.AccountAsync("bank", normal: "debit");
        foreach (var (id, owner) in new[] { ("w-alice", "user-alice"), ("w-bob", "user-bob") })
            Assert.Equal(HttpStatusCode.Created, (await tenant.Http.PostJsonAsync("/v1/accounts",
                new { id, ledger = "wallets", normal_balance = "credit", flags = new[] { "debits_must_not_exceed_credits" }, owner })).Response.StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await ledger.TransferAsync("fund", "bank", "w-alice", 10_000)).Response.StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await tenant.Http.PostJsonAsync("/v1/split/groups", new
        {
            id = "g", name = "Dinner", currency = "IDR",
            members = new[] { new { id = "a", name = "Alice", account = "w-alice", subject = "user-alice" }, new { id = "b", name = "Bob", account = "w-bob", subject = "user-bob" } },
        })).Response.StatusCode);
        await ExpenseAsync(tenant.Http, "g", new { description = "Dinner", amount = 3_000, paid_by = new[] { new { member = "b", amount = 3_000 } }, split = Equal() });
        var alice = await EndUserAsync(tenant, "user-alice");
        var bob = await EndUserAsync(tenant, "user-bob");

        (await bob.PostJsonAsync("/v1/split/groups/g/settlements", new { id = "s0", from = "a", to = "b", amount = 1_500, method = "wallet" }))
            .AssertProblem(403, "not_your_settlement");
        var tooMuch = await alice.PostJsonAsync("/v1/split/groups/g/settlements", new { id = "s-big", from = "a", to = "b", amount = 50_000, method = "wallet" });
        tooMuch.AssertProblem(422, "insufficient_funds");
        Assert.Equal("failed", (string)tooMuch.Body!["settlement"]!["status"]!);
        Assert.Equal(-1_500, (await NetsAsync(tenant.Http, "g"))["a"]);

        var body = new { id = "s1", from = "a", to = "b", amount = 1_500, method = "wallet" };
        var paid = await alice.PostJsonAsync("/v1/split/groups/g/settlements", body);
        Assert.True(paid.Response.StatusCode == HttpStatusCode.Created, paid.Body?.ToJsonString());
        Assert.Equal("completed", (string)paid.Body!["status"]!);
        Assert.Equal("split:g:s1", (string)paid.Body!["transfer_id"]!);
        var again = await alice.PostJsonAsync("/v1/split/groups/g/settlements", body);
        Assert.Equal(HttpStatusCode.OK, again.Response.StatusCode);
        (await alice.PostJsonAsync("/v1/split/groups/g/settlements", body with { amount = 1_499 })).AssertProblem(409, "settlement_exists_with_different_fields");

        Assert.Equal(8_500, await ledger.PostedAsync("w-alice"));
        Assert.Equal(1_500, await ledger.PostedAsync("w-bob"));
        var transfer = await tenant.Http.GetJsonAsync("/v1/transfers/split:g:s1");
        Assert.Equal(1_500, (long)transfer.Body!["amount"]!);
        Assert.All((await NetsAsync(tenant.Http, "g")).Values, v => Assert.Equal(0, v));
        await Conservation.AssertAsync(Server, tenant.Id);
        var types = (await tenant.Http.EventsAsync("?type=split.settlement.created,split.settlement.completed,split.settlement.failed", 4)).Select(e => (string)e!["type"]! + ":" + (string)e["subject"]!).ToList();
        Assert.Equal(["split.settlement.created:s-big", "split.settlement.failed:s-big", "split.settlement.created:s1", "split.settlement.completed:s1"], types);
    }

    /// <summary>A real JPEG with an EXIF segment carrying a marker, padded after its end to <paramref name="size"/> bytes.</summary>
    static byte[] Jpeg(int size)
    {
        using var bitmap = new SKBitmap(640, 480);
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SKColors.SteelBlue);
            using var paint = new SKPaint { Color = SKColors.OrangeRed };
            canvas.DrawCircle(320, 240, 150, paint);
        }
        using var image = SKImage.FromBitmap(bitmap);
        var jpeg = image.Encode(SKEncodedImageFormat.Jpeg, 90).ToArray();
        var marker = Encoding.ASCII.GetBytes("Exif\0\0MM\0*\0\0\0\b\0\0\0\0\0\0GPS-SECRET-MARKER");
        var app1 = new byte[] { 0xFF, 0xE1, (byte)((marker.Length + 2) >> 8), (byte)((marker.Length + 2) & 0xFF) }.Concat(marker);
        var withExif = jpeg.Take(2).Concat(app1).Concat(jpeg.Skip(2)).ToArray();
        var padded = new byte[size];
        withExif.CopyTo(padded, 0);
        return padded;
    }

    static bool Contains(byte[] haystack, string needle) => haystack.AsSpan().IndexOf(Encoding.ASCII.GetBytes(needle)) >= 0;

    async Task<JsonNode> ReceiptDoneAsync(HttpClient http, string group, string expense) =>
        (await Polling.Eventually(async () => (await http.GetJsonAsync($"/v1/split/groups/{group}/expenses/{expense}")).Body!,
            e => (string?)e["receipt"]?["status"] is "ready" or "rejected", "the receipt job finished"))["receipt"]!;

    [Fact]
    public async Task A_10_MiB_photo_is_accepted_at_once_cleaned_thumbnailed_and_served_with_a_working_304()
    {
        var (t, g) = await GroupAsync("Ana", "Budi");
        await ExpenseAsync(t.Http, g, new { id = "e1", description = "Dinner", amount = 100, paid_by = new[] { new { member = "m1", amount = 100 } }, split = Equal() });
        var photo = Jpeg(10 * 1024 * 1024);
        var content = new ByteArrayContent(photo);
        content.Headers.ContentType = new MediaTypeHeaderValue("image/jpeg");
        var started = Stopwatch.GetTimestamp();
        var upload = await t.Http.PostAsync($"/v1/split/groups/{g}/expenses/e1/receipt", content);
        var elapsed = Stopwatch.GetElapsedTime(started);
        TestContext.Current.TestOutputHelper?.WriteLine($"10 MiB receipt upload answered in {elapsed.TotalMilliseconds:0} ms");
        Assert.True(upload.StatusCode == HttpStatusCode.Accepted, await upload.Content.ReadAsStringAsync());
        Assert.Equal("processing", (string)(await Http.ReadAsync(upload))!["status"]!);

        var receipt = await ReceiptDoneAsync(t.Http, g, "e1");
        Assert.Equal("ready", (string)receipt["status"]!);
        Assert.Equal(640, (int)receipt["width"]!);
        Assert.Equal("image/jpeg", (string)receipt["content_type"]!);

        var full = await t.Http.GetAsync($"/v1/split/groups/{g}/expenses/e1/receipt");
        Assert.Equal(HttpStatusCode.OK, full.StatusCode);
        var cleaned = await full.Content.ReadAsByteArrayAsync();
        Assert.True(cleaned.Length < photo.Length / 10);
        Assert.False(Contains(cleaned, "GPS-SECRET-MARKER"), "metadata must be stripped");
        Assert.NotNull(SKBitmap.Decode(cleaned));

        var thumb = await t.Http.GetAsync($"/v1/split/groups/{g}/expenses/e1/receipt?size=thumb");
        Assert.Equal(HttpStatusCode.OK, thumb.StatusCode);
        var etag = thumb.Headers.ETag!;
        Assert.False(etag.IsWeak);
        Assert.Contains("private", thumb.Headers.CacheControl!.ToString());
        using (var small = SKBitmap.Decode(await thumb.Content.ReadAsByteArrayAsync()))
            Assert.Equal(320, Math.Max(small.Width, small.Height));
        Assert.NotEqual(etag, full.Headers.ETag);

        using var conditional = new HttpRequestMessage(HttpMethod.Get, $"/v1/split/groups/{g}/expenses/e1/receipt?size=thumb");
        conditional.Headers.IfNoneMatch.Add(etag);
        var notModified = await t.Http.SendAsync(conditional);
        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
        Assert.Equal(etag, notModified.Headers.ETag);
        Assert.Empty(await notModified.Content.ReadAsByteArrayAsync());

        (await t.Http.GetJsonAsync($"/v1/split/groups/{g}/expenses/e1/receipt?size=huge")).AssertProblem(400, "validation_failed");
        var other = await Server.NewTenantAsync();
        (await other.Http.GetJsonAsync($"/v1/split/groups/{g}/expenses/e1/receipt")).AssertProblem(404, "group_not_found");
    }

    [Fact]
    public async Task A_file_that_is_not_an_image_is_rejected_by_the_job_with_the_reason_on_the_expense()
    {
        var (t, g) = await GroupAsync("Ana", "Budi");
        await ExpenseAsync(t.Http, g, new { id = "e1", description = "Dinner", amount = 100, paid_by = new[] { new { member = "m1", amount = 100 } }, split = Equal() });
        using var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(Encoding.UTF8.GetBytes("%PDF-1.7 this is not a picture"));
        file.Headers.ContentType = new MediaTypeHeaderValue("image/png"); // the name and type lie; the bytes decide
        form.Add(file, "file", "receipt.png");
        var upload = await t.Http.PostAsync($"/v1/split/groups/{g}/expenses/e1/receipt", form);
        Assert.Equal(HttpStatusCode.Accepted, upload.StatusCode);
        var receipt = await ReceiptDoneAsync(t.Http, g, "e1");
        Assert.Equal("rejected", (string)receipt["status"]!);
        Assert.Contains("could not be decoded", (string)receipt["reason"]!);
        (await t.Http.GetJsonAsync($"/v1/split/groups/{g}/expenses/e1/receipt")).AssertProblem(409, "receipt_not_ready");

        var text = await t.Http.PostRawAsync($"/v1/split/groups/{g}/expenses/e1/receipt", "hello", "text/plain");
        text.AssertProblem(415, "unsupported_media_type");
        var tooBig = new ByteArrayContent(new byte[10 * 1024 * 1024 + 1]);
        tooBig.Headers.ContentType = new MediaTypeHeaderValue("image/webp");
        var big = await t.Http.PostAsync($"/v1/split/groups/{g}/expenses/e1/receipt", tooBig);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, big.StatusCode);
        Assert.Equal("payload_too_large", (string)(await Http.ReadAsync(big))!["code"]!);
    }

    [Fact]
    public async Task A_recurring_expense_is_added_exactly_once_per_period_however_often_the_job_runs()
    {
        var (t, g) = await GroupAsync("Ana", "Budi");
        var today = DateOnly.FromDateTime(fixture.Clock.UtcNow.UtcDateTime);
        var created = await t.Http.PostJsonAsync($"/v1/split/groups/{g}/recurring", new
        {
            id = "rent", frequency = "weekly", start_date = today.AddDays(-14).ToString("yyyy-MM-dd"),
            expense = new { description = "Rent", amount = 300_000, paid_by = new[] { new { member = "m1", amount = 300_000 } }, split = Equal() },
        });
        Assert.True(created.Response.StatusCode == HttpStatusCode.Created, created.Body?.ToJsonString());
        async Task<JsonArray> ExpensesAsync() => (await t.Http.GetJsonAsync($"/v1/split/groups/{g}/expenses")).Body!["data"]!.AsArray();
        await Polling.Eventually(async () => (await ExpensesAsync()).Count, n => n == 3, "three weekly periods were added");

        var jobs = Server.Services.GetRequiredService<JobStore>();
        var runs = new List<string>();
        for (var i = 0; i < 3; i++)
            runs.Add((await jobs.EnqueueAsync(new JobRequest(t.Id, "split.recurring", Key: $"again-{i}"), CancellationToken.None)).JobId);
        foreach (var id in runs)
            await Polling.Eventually(async () => (string?)(await t.Http.GetJsonAsync($"/v1/jobs/{id}")).Body!["state"], s => s == "succeeded", $"job {id} succeeded");
        var expenses = await ExpensesAsync();
        Assert.Equal(3, expenses.Count);
        Assert.Equal(new[] { -14, -7, 0 }.Select(d => today.AddDays(d).ToString("yyyy-MM-dd")), expenses.Select(e => (string)e!["date"]!).Order());
        Assert.All(expenses, e => Assert.Equal("rent", (string)e!["recurring_id"]!));
        Assert.Equal(-450_000, (await NetsAsync(t.Http, g))["m2"]);
        var listed = (await t.Http.GetJsonAsync($"/v1/split/groups/{g}/recurring")).Body!["data"]![0]!;
        Assert.Equal(today.AddDays(7).ToString("yyyy-MM-dd"), (string)listed["next_date"]!);
    }

    [Fact]
    public async Task The_csv_export_imports_back_as_the_same_balances_and_a_second_import_adds_nothing()
    {
        var (t, g) = await GroupAsync("Ana", "Budi", "Citra");
        await ExpenseAsync(t.Http, g, new { description = "Villa, 2 nights", amount = 100_001, paid_by = new[] { new { member = "m1", amount = 100_001 } }, split = Equal() });
        await ExpenseAsync(t.Http, g, new { description = "Fuel", amount = 25_050, paid_by = new[] { new { member = "m2", amount = 25_050 } },
            split = new { mode = "shares", shares = new[] { new { member = "m2", weight = 1 }, new { member = "m3", weight = 2 } } } });
        Assert.Equal(HttpStatusCode.Created, (await t.Http.PostJsonAsync($"/v1/split/groups/{g}/settlements", new { from = "m3", to = "m1", amount = 10_000, method = "cash" })).Response.StatusCode);
        var export = await t.Http.GetAsync($"/v1/split/groups/{g}/export");
        Assert.Equal(HttpStatusCode.OK, export.StatusCode);
        Assert.Equal("text/csv", export.Content.Headers.ContentType!.MediaType);
        var csv = await export.Content.ReadAsStringAsync();
        Assert.StartsWith("Date,Description,Category,Cost,Currency,Ana,Budi,Citra", csv);
        Assert.Contains("\"Villa, 2 nights\"", csv);

        Assert.Equal(HttpStatusCode.Created, (await t.Http.PostJsonAsync("/v1/split/groups", new { id = "copy", name = "Copy", currency = "IDR", members = new[] { new { name = "Ana" } } })).Response.StatusCode);
        var imported = await t.Http.PostRawAsync("/v1/split/groups/copy/import", csv, "text/csv");
        Assert.True(imported.Response.StatusCode == HttpStatusCode.OK, imported.Body?.ToJsonString());
        Assert.Equal(2, (int)imported.Body!["expenses"]!);
        Assert.Equal(1, (int)imported.Body!["settlements"]!);
        Assert.Equal(2, imported.Body!["members_created"]!.AsArray().Count);
        Assert.Empty(imported.Body!["errors"]!.AsArray());

        async Task<Dictionary<string, long>> ByNameAsync(string group)
        {
            var members = (await t.Http.GetJsonAsync($"/v1/split/groups/{group}")).Body!["members"]!.AsArray().ToDictionary(m => (string)m!["id"]!, m => (string)m!["name"]!);
            return (await NetsAsync(t.Http, group)).ToDictionary(x => members[x.Key], x => x.Value);
        }
        Assert.Equal(await ByNameAsync(g), await ByNameAsync("copy"));

        var again = await t.Http.PostRawAsync("/v1/split/groups/copy/import", csv, "text/csv");
        Assert.Equal(0, (int)again.Body!["expenses"]!);
        Assert.Equal(3, (int)again.Body!["skipped"]!);

        var splitwise = "Date,Description,Category,Cost,Currency,Ana,Budi,Citra\n2026-11-02,Groceries,General,30.00,IDR,20.00,-10.00,-10.00\n"
            + "2026-11-03,Bad row,General,abc,IDR,1,-1,0\n2026-11-04,Budi paid Ana,Payment,10.00,IDR,-10.00,10.00,0.00\n\n2026-11-05,Total balance, , ,IDR,10.00,0.00,-10.00\n";
        var fresh = await t.Http.PostRawAsync("/v1/split/groups/copy/import", splitwise, "text/csv");
        Assert.Equal(1, (int)fresh.Body!["expenses"]!);
        Assert.Equal(1, (int)fresh.Body!["settlements"]!);
        var error = Assert.Single(fresh.Body!["errors"]!.AsArray())!;
        Assert.Equal(3, (int)error["line"]!);
        (await t.Http.PostRawAsync("/v1/split/groups/copy/import", "Date,Description\n\"unterminated", "text/csv")).AssertProblem(400, "invalid_csv");
    }

    [Fact]
    public async Task Hostile_input_is_refused_with_stable_codes_never_a_500()
    {
        var (t, g) = await GroupAsync("Ana", "Budi");
        var path = $"/v1/split/groups/{g}/expenses";
        (await t.Http.PostRawAsync(path, """{"description":"x","amount":"100","split":{"mode":"equal"}}""")).AssertProblem(400, "validation_failed");
        (await t.Http.PostRawAsync(path, """{"description":"x","amount":100,"amont":5,"split":{"mode":"equal"}}""")).AssertProblem(400, "validation_failed");
        (await t.Http.PostRawAsync(path, """{"description":"x","amount":100,"amount":1000000,"split":{"mode":"equal"}}""")).AssertProblem(400, "duplicate_field");
        (await t.Http.PostRawAsync(path, """{"description":"x","amount":100000000000000000000000,"split":{"mode":"equal"}}""")).AssertProblem(400, "validation_failed");
        (await t.Http.PostRawAsync(path, """{"description":"x","amount":-5,"paid_by":[{"member":"m1","amount":-5}],"split":{"mode":"equal"}}""")).AssertProblem(400, "validation_failed");
        (await t.Http.PostRawAsync(path, """{"description":"x","amount":9223372036854775807,"paid_by":[{"member":"m1","amount":9223372036854775807}],"split":{"mode":"equal"}}"""))
            .AssertProblem(400, "validation_failed");
        (await t.Http.PostRawAsync(path, """{"description":"x","amount":100,"paid_by":[{"member":"m1","amount":100}],"split":{"mode":"magic"}}""")).AssertProblem(400, "validation_failed");
        (await t.Http.PostRawAsync(path, """{"description":"x","amount":100,"paid_by":[{"member":"zz","amount":100}],"split":{"mode":"equal"}}""")).AssertProblem(422, "member_not_found");
        (await t.Http.PostRawAsync(path, """{"description":"x","amount":100,"paid_by":[{"member":"m1","amount":100}],"split":{"mode":"shares","shares":[{"member":"m1","weight":0}]}}"""))
            .AssertProblem(400, "validation_failed");
        (await t.Http.PostRawAsync(path, """{"description":"x","amount":100,"paid_by":[{"member":"m1","amount":100}],"split":{"mode":"itemized","items":[{"description":"a","amount":100,"split":{"mode":"itemized"}}]}}"""))
            .AssertProblem(400, "validation_failed");
        (await t.Http.PostRawAsync(path, """{"description":"x","amount":100,"date":"yesterday","paid_by":[{"member":"m1","amount":100}],"split":{"mode":"equal"}}"""))
            .AssertProblem(400, "validation_failed");
        (await t.Http.PostRawAsync(path, "{\"description\":\"" + new string('x', 2 * 1024 * 1024) + "\"}")).AssertProblem(413, "payload_too_large");
        (await t.Http.PostRawAsync(path, "not json")).AssertProblem(400, "malformed_json");
        (await t.Http.GetJsonAsync($"/v1/split/groups/{g}/expenses?limit=100000")).AssertProblem(400, "validation_failed");
        (await t.Http.GetJsonAsync($"/v1/split/groups/{g}/expenses?after=%%%")).AssertProblem(400, "invalid_cursor");
        (await t.Http.GetJsonAsync("/v1/split/groups/..%2F..%2Fetc/expenses")).AssertProblem(404, "group_not_found");
        (await t.Http.PostJsonAsync("/v1/split/groups", new { name = "Big", currency = "IDR", members = Enumerable.Range(0, 51).Select(i => new { name = $"p{i}" }).ToArray() }))
            .AssertProblem(400, "validation_failed");
        (await t.Http.PostJsonAsync("/v1/split/groups", new { name = "x", currency = "rupiah", members = new[] { new { name = "a" } } })).AssertProblem(400, "validation_failed");

        // Idempotency-Key: a replay gets the first answer (and creates nothing), another body with the same key is refused.
        var body = new { description = "Once", amount = 500, paid_by = new[] { new { member = "m1", amount = 500 } }, split = Equal() };
        var first = await t.Http.PostJsonAsync(path, body, idempotencyKey: "k-1");
        var replay = await t.Http.PostJsonAsync(path, body, idempotencyKey: "k-1");
        Assert.Equal(HttpStatusCode.Created, first.Response.StatusCode);
        Assert.Equal((string)first.Body!["id"]!, (string)replay.Body!["id"]!);
        Assert.True(replay.Response.Headers.Contains("Idempotent-Replayed"));
        (await t.Http.PostJsonAsync(path, body with { amount = 501, paid_by = new[] { new { member = "m1", amount = 501 } } }, idempotencyKey: "k-1"))
            .AssertProblem(422, "idempotency_key_reused");
        Assert.Single((await t.Http.GetJsonAsync(path)).Body!["data"]!.AsArray());
        // The same client id with another body is a conflict, with the same body the first result.
        var withId = new { id = "fixed", description = "A", amount = 10, paid_by = new[] { new { member = "m1", amount = 10 } }, split = Equal() };
        Assert.Equal(HttpStatusCode.Created, (await t.Http.PostJsonAsync(path, withId)).Response.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await t.Http.PostJsonAsync(path, withId)).Response.StatusCode);
        (await t.Http.PostJsonAsync(path, withId with { description = "B" })).AssertProblem(409, "expense_exists_with_different_fields");
    }
}

static class SplitHttp
{
    public static async Task<(HttpResponseMessage Response, JsonNode? Body)> DeleteAsyncJson(this HttpClient client, string path)
    {
        var response = await client.DeleteAsync(path);
        return (response, await Http.ReadAsync(response));
    }
}

public sealed class SqliteSplitBillTests(SqliteServerFixture fixture) : SplitBillContract(fixture), IClassFixture<SqliteServerFixture>;

public sealed class PostgresSplitBillTests(PostgresServerFixture fixture) : SplitBillContract(fixture), IClassFixture<PostgresServerFixture>;

/// <summary>PostgreSQL with the server as the application role of <c>deploy/postgres-roles.sql</c>: the split tables'
/// grants are enough for every flow (edits replace shares, removals delete members, the jobs update rows).</summary>
public sealed class AppRoleSplitBillTests(PostgresAppRoleServerFixture fixture) : SplitBillContract(fixture), IClassFixture<PostgresAppRoleServerFixture>;
