using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Xml.Linq;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;
using UglyToad.PdfPig;

namespace Neraca.Tests.Banking;

/// <summary>Issue #16, the banking product, on both stores (the classes at the end).</summary>
public abstract partial class BankingContract(ServerFixture fixture) : BankingTests(fixture)
{
    // ---------------- customers ----------------

    [Fact]
    public async Task Personal_data_is_never_stored_in_clear_and_is_masked_in_lists()
    {
        var w = await WorldAsync();
        await w.CustomerAsync("cus_siti", phone: "+62 812-3456-7890", name: "Siti Rahayu", email: "siti@example.co.id", nationalId: "3174012345670001");

        var raw = Assert.Single(await RawAsync("SELECT * FROM banking_customers WHERE tenant_id = @t AND id = 'cus_siti'", new { t = w.Tenant.Id }));
        raw.Remove("id");
        raw.Remove("subject");
        var stored = string.Join("|", raw.Values.Select(v => v?.ToString()));
        foreach (var secret in new[] { "Siti", "Rahayu", "6281234567890", "3456", "siti@example", "3174012345670001" })
            Assert.DoesNotContain(secret, stored, StringComparison.OrdinalIgnoreCase);
        Assert.StartsWith("e1:", (string)raw["name"]!, StringComparison.Ordinal);

        var one = await w.Http.GetJsonAsync("/v1/customers/cus_siti");
        Assert.Equal("Siti Rahayu", (string?)one.Body!["name"]);
        Assert.Equal("+6281234567890", (string?)one.Body!["phone"]);
        Assert.Equal("siti@example.co.id", (string?)one.Body!["email"]);

        var found = await w.Http.GetJsonAsync("/v1/customers?phone=" + Uri.EscapeDataString("+62-812-3456-7890"));
        var item = Assert.Single(found.Body!["data"]!.AsArray());
        Assert.Equal("cus_siti", (string?)item!["id"]);
        Assert.Equal("S*** R*****", (string?)item["name"]);
        Assert.Equal("**********7890", (string?)item["phone"]);
        Assert.Equal("s***@example.co.id", (string?)item["email"]);
        Assert.Empty((await w.Http.GetJsonAsync("/v1/customers?phone=%2B620000000")).Body!["data"]!.AsArray());
        Assert.Single((await w.Http.GetJsonAsync("/v1/customers?national_id=3174012345670001")).Body!["data"]!.AsArray());

        // Another tenant does not find it, by id or by phone.
        var other = await WorldAsync();
        (await other.Http.GetJsonAsync("/v1/customers/cus_siti")).AssertProblem(404, "customer_not_found");
        Assert.Empty((await other.Http.GetJsonAsync("/v1/customers?phone=%2B6281234567890")).Body!["data"]!.AsArray());

        // The audit log names the change, masked.
        var audit = await w.Http.GetJsonAsync("/v1/audit-log?target_type=customer&target_id=cus_siti");
        var record = Assert.Single(audit.Body!["data"]!.AsArray());
        Assert.Equal("customer.created", (string?)record!["action"]);
        Assert.Equal("S*** R*****", (string?)record["details"]!["name"]);
        Assert.DoesNotContain("Rahayu", audit.Body.ToJsonString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Customer_create_is_idempotent_and_patch_changes_only_what_it_names()
    {
        var w = await WorldAsync();
        var body = new { id = "cus_a", name = "Andi", phone = "+628111111111", kyc_level = "basic" };
        Assert.Equal(HttpStatusCode.Created, (await w.Http.PostJsonAsync("/v1/customers", body)).Response.StatusCode);
        var again = await w.Http.PostJsonAsync("/v1/customers", body);
        Assert.Equal(HttpStatusCode.OK, again.Response.StatusCode);
        (await w.Http.PostJsonAsync("/v1/customers", body with { name = "Andy" })).AssertProblem(409, "customer_exists_with_different_fields");

        using var patch = new HttpRequestMessage(HttpMethod.Patch, "/v1/customers/cus_a") { Content = System.Net.Http.Json.JsonContent.Create(new { kyc_level = "full" }) };
        var patched = await w.Http.SendAsync(patch);
        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        var c = (await w.Http.GetJsonAsync("/v1/customers/cus_a")).Body!;
        Assert.Equal("full", (string?)c["kyc_level"]);
        Assert.Equal("Andi", (string?)c["name"]);
        var audit = (await w.Http.GetJsonAsync("/v1/audit-log?target_id=cus_a")).Body!["data"]!.AsArray();
        Assert.Equal(["customer.created", "customer.updated"], audit.Select(a => (string)a!["action"]!));
        Assert.Equal("full", (string?)audit[1]!["details"]!["kyc_level"]);
        Assert.Null(audit[1]!["details"]!["name"]);
    }

    [Fact]
    public async Task Bad_input_is_a_problem_never_a_500()
    {
        var w = await WorldAsync();
        (await w.Http.PostRawAsync("/v1/customers", """{"id":"x","name":5}""")).AssertProblem(400, "validation_failed");
        (await w.Http.PostRawAsync("/v1/customers", """{"id":"x","name":"A","favourite":"blue"}""")).AssertProblem(400, "validation_failed");
        (await w.Http.PostRawAsync("/v1/customers", """{"id":"x","name":"A","phone":"call me"}""")).AssertProblem(400, "validation_failed");
        (await w.Http.PostRawAsync("/v1/payments", """{"id":"p","from_account":"acc_house","to_account":"switch","amount":-5}""")).AssertProblem(400, "validation_failed");
        (await w.Http.PostRawAsync("/v1/payments", """{"id":"p","from_account":"acc_house","to_account":"switch","amount":9223372036854775808}""")).AssertProblem(400, "validation_failed");
        (await w.Http.PostRawAsync("/v1/payments", """{"id":"p","from_account":"acc_house","to_account":"switch","amount":"12"}""")).AssertProblem(400, "validation_failed");
        (await w.Http.PostJsonAsync("/v1/accounts/acc_house/holds", new { amount = 10, reason = "x", expires_at = "2000-01-01T00:00:00Z" })).AssertProblem(400, "validation_failed");
        (await w.Http.PostJsonAsync("/v1/accounts/acc_house/statements", new { from = "2026-02-01", to = "2026-01-01" })).AssertProblem(400, "validation_failed");
        (await w.Http.GetJsonAsync("/v1/accounts/acc_house/transactions?after=not-a-cursor")).AssertProblem(400, "invalid_cursor");
        (await w.Http.GetJsonAsync("/v1/accounts/acc_house/transactions?limit=5000")).AssertProblem(400, "validation_failed");
        (await w.Http.PostJsonAsync("/v1/customers/cus_house/accounts", new { id = "acc_x", product = "wallet", currency = "XAU" })).AssertProblem(422, "unsupported_currency");
        var huge = new string('a', 2_000_000);
        var big = await w.Http.PostRawAsync("/v1/customers", $$"""{"id":"x","name":"{{huge}}"}""");
        Assert.True((int)big.Response.StatusCode is 400 or 413, big.Response.StatusCode.ToString());

        // Another tenant's account answers as if it did not exist.
        await w.WalletAsync("cus_only", "acc_only");
        var other = await WorldAsync();
        (await other.Http.GetJsonAsync("/v1/accounts/acc_only/summary")).AssertProblem(404, "account_not_found");
        (await other.Http.GetJsonAsync("/v1/accounts/acc_only/transactions")).AssertProblem(404, "account_not_found");
        (await other.Http.PostJsonAsync("/v1/accounts/acc_only/holds", new { id = "h", amount = 1, reason = "x" })).AssertProblem(404, "account_not_found");
        (await other.Http.PostJsonAsync("/v1/payments", new { id = "steal", from_account = "acc_only", to_account = "acc_house", amount = 1 })).AssertProblem(422, "account_not_found");
        (await other.Http.GetJsonAsync("/v1/customers/cus_only/accounts")).AssertProblem(404, "customer_not_found");

        // A replayed Idempotency-Key with a different body is refused.
        await w.TopUpAsync("acc_house", 10_000);
        var first = await w.Http.PostJsonAsync("/v1/payments", new { from_account = "acc_house", to_account = "switch", amount = 100 }, idempotencyKey: "k-1");
        Assert.Equal(HttpStatusCode.Created, first.Response.StatusCode);
        var replay = await w.Http.PostJsonAsync("/v1/payments", new { from_account = "acc_house", to_account = "switch", amount = 100 }, idempotencyKey: "k-1");
        Assert.Equal((string?)first.Body!["id"], (string?)replay.Body!["id"]);
        (await w.Http.PostJsonAsync("/v1/payments", new { from_account = "acc_house", to_account = "switch", amount = 101 }, idempotencyKey: "k-1"))
            .AssertProblem(422, "idempotency_key_reused");
        Assert.Equal(9_900L, (long)(await w.SummaryAsync("acc_house"))["current"]!);
    }

    // ---------------- limits ----------------

    [Fact]
    public async Task Daily_limit_by_kyc_level_names_the_limit_and_what_is_left()
    {
        var w = await WorldAsync();
        await w.WalletAsync("cus_b", "acc_b", 500_000_000);
        Assert.Equal(HttpStatusCode.Created, (await w.PayAsync("p1", "acc_b", "acc_house", 150_000_000)).Response.StatusCode);
        var over = await w.PayAsync("p2", "acc_b", "acc_house", 60_000_000);
        over.AssertProblem(422, "limit_exceeded");
        Assert.Equal(200_000_000L, (long)over.Body!["limit"]!);
        Assert.Equal(50_000_000L, (long)over.Body!["remaining"]!);

        // A retried payment neither pays nor counts twice.
        var retry = await w.PayAsync("p1", "acc_b", "acc_house", 150_000_000);
        Assert.Equal(HttpStatusCode.OK, retry.Response.StatusCode);
        Assert.Equal("completed", (string?)retry.Body!["status"]);
        Assert.Equal(350_000_000L, (long)(await w.SummaryAsync("acc_b"))["current"]!);
        Assert.Equal(HttpStatusCode.Created, (await w.PayAsync("p3", "acc_b", "acc_house", 50_000_000)).Response.StatusCode);
        (await w.PayAsync("p4", "acc_b", "acc_house", 1)).AssertProblem(422, "limit_exceeded");

        // A full-KYC customer has the higher limit; a failed payment (no funds) uses none of it.
        await w.WalletAsync("cus_c", "acc_c", 300_000_000, kyc: "full");
        (await w.PayAsync("c0", "acc_c", "acc_house", 400_000_000)).AssertProblem(422, "insufficient_funds");
        Assert.Equal(HttpStatusCode.Created, (await w.PayAsync("c1", "acc_c", "acc_house", 300_000_000)).Response.StatusCode);
        (await w.PayAsync("c0", "acc_c", "acc_house", 400_000_000)).AssertProblem(422, "insufficient_funds");
    }

    [Fact]
    public async Task Concurrent_payments_never_exceed_the_daily_limit_together()
    {
        var w = await WorldAsync();
        await w.WalletAsync("cus_d", "acc_d", 1_000_000_000);
        var results = await Task.WhenAll(Enumerable.Range(0, 10).Select(i => w.PayAsync($"d{i}", "acc_d", "acc_house", 50_000_000)));
        Assert.Equal(4, results.Count(r => r.Response.StatusCode == HttpStatusCode.Created));
        Assert.All(results.Where(r => r.Response.StatusCode != HttpStatusCode.Created), r => r.AssertProblem(422, "limit_exceeded"));
        Assert.Equal(800_000_000L, (long)(await w.SummaryAsync("acc_d"))["current"]!);
        var used = Assert.Single(await RawAsync("SELECT used FROM banking_limit_usage WHERE tenant_id = @t AND customer_id = 'cus_d'", new { t = w.Tenant.Id }));
        Assert.Equal(200_000_000L, Convert.ToInt64(used["used"], CultureInfo.InvariantCulture));
    }

    // ---------------- blocks, status, closing ----------------

    [Fact]
    public async Task Blocked_frozen_and_closed_accounts_refuse_payments_and_closing_needs_a_zero_balance()
    {
        var w = await WorldAsync();
        await w.WalletAsync("cus_e", "acc_e", 10_000);
        var block = await w.Http.PostJsonAsync("/v1/accounts/acc_e/blocks", new { id = "b1", type = "debit", reason = "fraud review" });
        Assert.Equal(HttpStatusCode.Created, block.Response.StatusCode);
        var refused = await w.PayAsync("e1", "acc_e", "acc_house", 100);
        refused.AssertProblem(422, "account_blocked");
        Assert.Equal("debit", (string?)refused.Body!["block_type"]);
        await w.TopUpAsync("acc_e", 1); // credits still arrive
        Assert.Equal(HttpStatusCode.OK, (await w.Http.DeleteAsync("/v1/accounts/acc_e/blocks/b1")).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await w.PayAsync("e2", "acc_e", "acc_house", 100)).Response.StatusCode);

        Assert.Equal(HttpStatusCode.Created, (await w.Http.PostJsonAsync("/v1/accounts/acc_e/blocks", new { id = "b2", type = "credit", reason = "court order" })).Response.StatusCode);
        (await w.PayAsync("e3", "acc_house", "acc_e", 1)).AssertProblem(422, "account_blocked");
        await w.Http.DeleteAsync("/v1/accounts/acc_e/blocks/b2");

        Assert.Equal(HttpStatusCode.OK, (await w.Http.PostJsonAsync("/v1/accounts/acc_e/freeze", new { reason = "kyc" })).Response.StatusCode);
        (await w.PayAsync("e4", "acc_e", "acc_house", 1)).AssertProblem(422, "account_frozen");
        Assert.Equal(HttpStatusCode.OK, (await w.Http.PostJsonAsync("/v1/accounts/acc_e/unfreeze", new { })).Response.StatusCode);

        var notEmpty = await w.Http.PostJsonAsync("/v1/accounts/acc_e/close", new { });
        notEmpty.AssertProblem(422, "account_not_empty");
        Assert.Equal(9_901L, (long)notEmpty.Body!["balance"]!);
        Assert.Equal(HttpStatusCode.Created, (await w.PayAsync("e5", "acc_e", "acc_house", 9_901)).Response.StatusCode);
        var closed = await w.Http.PostJsonAsync("/v1/accounts/acc_e/close", new { reason = "customer left" });
        Assert.Equal(HttpStatusCode.OK, closed.Response.StatusCode);
        Assert.Equal("closed", (string?)closed.Body!["status"]);
        (await w.PayAsync("e6", "acc_house", "acc_e", 1)).AssertProblem(422, "account_closed");

        var actions = (await w.Http.GetJsonAsync("/v1/audit-log?target_id=acc_e")).Body!["data"]!.AsArray().Select(a => (string)a!["action"]!).ToArray();
        Assert.Equal(["account.opened", "block.added", "block.removed", "block.added", "block.removed", "account.frozen", "account.unfrozen", "account.closed"], actions);
    }

    // ---------------- holds ----------------

    [Fact]
    public async Task Hold_reduces_available_and_a_partial_capture_releases_the_rest()
    {
        var w = await WorldAsync();
        await w.WalletAsync("cus_f", "acc_f", 10_000);
        var hold = await w.Http.PostJsonAsync("/v1/accounts/acc_f/holds", new { id = "h1", amount = 4_000, reason = "Hotel deposit" });
        Assert.Equal(HttpStatusCode.Created, hold.Response.StatusCode);
        var s = await w.SummaryAsync("acc_f");
        Assert.Equal(10_000L, (long)s["current"]!);
        Assert.Equal(4_000L, (long)s["holds"]!);
        Assert.Equal(6_000L, (long)s["available"]!);
        (await w.PayAsync("f1", "acc_f", "acc_house", 6_001)).AssertProblem(422, "insufficient_funds");

        var captured = await w.Http.PostJsonAsync("/v1/accounts/acc_f/holds/h1/capture", new { amount = 2_500 });
        Assert.Equal(HttpStatusCode.OK, captured.Response.StatusCode);
        Assert.Equal("captured", (string?)captured.Body!["status"]);
        Assert.Equal(2_500L, (long)captured.Body!["captured_amount"]!);
        s = await w.SummaryAsync("acc_f");
        Assert.Equal(7_500L, (long)s["current"]!);
        Assert.Equal(0L, (long)s["holds"]!);
        Assert.Equal(7_500L, (long)s["available"]!);
        (await w.Http.PostJsonAsync("/v1/accounts/acc_f/holds/h1/release", new { })).AssertProblem(422, "hold_not_active");

        Assert.Equal(HttpStatusCode.Created, (await w.Http.PostJsonAsync("/v1/accounts/acc_f/holds", new { id = "h2", amount = 1_000, reason = "Fuel" })).Response.StatusCode);
        var released = await w.Http.PostJsonAsync("/v1/accounts/acc_f/holds/h2/release", new { });
        Assert.Equal("released", (string?)released.Body!["status"]);
        Assert.Equal(7_500L, (long)(await w.SummaryAsync("acc_f"))["available"]!);

        // The captured part is in the history with the hold's reason.
        var history = (await w.Http.GetJsonAsync("/v1/accounts/acc_f/transactions")).Body!["data"]!.AsArray();
        var capture = Assert.Single(history, h => (string?)h!["transfer_id"] == "bank:hold:h1");
        Assert.Equal("Hotel deposit", (string?)capture!["description"]);
        Assert.Equal(7_500L, (long)capture["balance_after"]!);

        // A blocked account takes no new holds.
        await w.Http.PostJsonAsync("/v1/accounts/acc_f/blocks", new { id = "fb", type = "all", reason = "x" });
        (await w.Http.PostJsonAsync("/v1/accounts/acc_f/holds", new { id = "h3", amount = 1, reason = "x" })).AssertProblem(422, "account_blocked");
    }

    [Fact]
    public async Task Expired_hold_is_released_and_marked_expired()
    {
        var w = await WorldAsync();
        await w.WalletAsync("cus_g", "acc_g", 5_000);
        var expires = Fixture.Clock.UtcNow.AddSeconds(5).ToString("O", CultureInfo.InvariantCulture);
        Assert.Equal(HttpStatusCode.Created, (await w.Http.PostJsonAsync("/v1/accounts/acc_g/holds", new { id = "hx", amount = 3_000, reason = "Rental", expires_at = expires })).Response.StatusCode);
        Assert.Equal(2_000L, (long)(await w.SummaryAsync("acc_g"))["available"]!);
        // Past the expiry (a short jump: end-user tokens minted later are checked against the real clock). The ledger's
        // timeout voids the transfer; the job (enqueued here instead of waiting for its minute) marks the hold.
        Fixture.Clock.Jump(TimeSpan.FromSeconds(10));
        await Server.Services.GetRequiredService<Neraca.Jobs.JobStore>().EnqueueAsync(
            new Neraca.Jobs.JobRequest("default", "banking.expire_holds", Key: "expire-" + w.Tenant.Id), CancellationToken.None);
        var hold = await Polling.Eventually(async () => (await w.Http.GetJsonAsync("/v1/accounts/acc_g/holds/hx")).Body!, h => (string?)h["status"] == "expired",
            "the hold expired");
        Assert.Equal(0L, (long)hold["captured_amount"]!);
        var s = await w.SummaryAsync("acc_g");
        Assert.Equal(5_000L, (long)s["available"]!);
        Assert.Equal(0L, (long)s["holds"]!);
        (await w.Http.PostJsonAsync("/v1/accounts/acc_g/holds/hx/capture", new { })).AssertProblem(422, "hold_not_active");
    }

    // ---------------- history ----------------

    [Fact]
    public async Task History_has_running_balances_counterparties_and_full_text_search()
    {
        var w = await WorldAsync();
        await w.WalletAsync("cus_h", "acc_h", 1_000_000, kyc: "full");
        Assert.Equal(HttpStatusCode.Created, (await w.PayAsync("h1", "acc_h", "acc_house", 45_000, "INV-2026-001", "Coffee at Kopi Kenangan")).Response.StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await w.PayAsync("h2", "acc_h", "acc_house", 250_000, "PLN-778812", "Electricity bill PLN")).Response.StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await w.PayAsync("h3", "acc_h", "acc_house", 30_000, "INV-2026-002", "Kopi again")).Response.StatusCode);

        var all = (await w.Http.GetJsonAsync("/v1/accounts/acc_h/transactions")).Body!["data"]!.AsArray();
        Assert.Equal(["bank:pay:top-acc_h", "bank:pay:h1", "bank:pay:h2", "bank:pay:h3"], all.Select(i => (string)i!["transfer_id"]!));
        Assert.Equal([1_000_000L, 955_000L, 705_000L, 675_000L], all.Select(i => (long)i!["balance_after"]!));
        Assert.Equal(["credit", "debit", "debit", "debit"], all.Select(i => (string)i!["direction"]!));
        Assert.Equal("acc_house", (string?)all[1]!["counterparty"]);
        Assert.Equal("switch", (string?)all[0]!["counterparty"]);

        var kopi = (await w.Http.GetJsonAsync("/v1/accounts/acc_h/transactions?q=kopi")).Body!["data"]!.AsArray();
        Assert.Equal(["bank:pay:h1", "bank:pay:h3"], kopi.Select(i => (string)i!["transfer_id"]!));
        Assert.Equal(955_000L, (long)kopi[0]!["balance_after"]!);
        var invoice = (await w.Http.GetJsonAsync("/v1/accounts/acc_h/transactions?q=INV-2026-001")).Body!["data"]!.AsArray();
        Assert.Equal("bank:pay:h1", (string?)Assert.Single(invoice)!["transfer_id"]);
        var electricity = (await w.Http.GetJsonAsync("/v1/accounts/acc_h/transactions?q=electricity%20PLN")).Body!["data"]!.AsArray();
        Assert.Equal("PLN-778812", (string?)Assert.Single(electricity)!["reference"]);
        Assert.Empty((await w.Http.GetJsonAsync("/v1/accounts/acc_h/transactions?q=%22%20OR%20*")).Body!["data"]!.AsArray());
        var big = (await w.Http.GetJsonAsync("/v1/accounts/acc_h/transactions?min_amount=40000&max_amount=300000")).Body!["data"]!.AsArray();
        Assert.Equal(["bank:pay:h1", "bank:pay:h2"], big.Select(i => (string)i!["transfer_id"]!));

        // Cursor pages walk the same lines, with both kinds of query.
        foreach (var query in new[] { "", "&min_amount=1" })
        {
            var seen = new List<string>();
            string? after = null;
            do
            {
                var page = (await w.Http.GetJsonAsync($"/v1/accounts/acc_h/transactions?limit=1{query}" + (after is null ? "" : "&after=" + after))).Body!;
                seen.AddRange(page["data"]!.AsArray().Select(i => (string)i!["transfer_id"]!));
                after = (string?)page["next_cursor"];
            } while (after is not null);
            Assert.Equal(all.Select(i => (string)i!["transfer_id"]!), seen);
        }

        // The customer sees its own history, not another's.
        var me = await w.EndUserAsync("cus_h");
        Assert.Equal(4, (await me.GetJsonAsync("/v1/accounts/acc_h/transactions")).Body!["data"]!.AsArray().Count);
        (await me.GetJsonAsync("/v1/accounts/acc_house/transactions")).AssertProblem(404, "account_not_found");
    }

    // ---------------- end users ----------------

    [Fact]
    public async Task An_end_user_reaches_only_its_own_customer_and_accounts()
    {
        var w = await WorldAsync();
        await w.WalletAsync("cus_i", "acc_i", 10_000);
        var me = await w.EndUserAsync("cus_i");
        Assert.Equal(HttpStatusCode.OK, (await me.GetJsonAsync("/v1/customers/cus_i")).Response.StatusCode);
        (await me.GetJsonAsync("/v1/customers/cus_house")).AssertProblem(404, "customer_not_found");
        Assert.Equal(["cus_i"], (await me.GetJsonAsync("/v1/customers")).Body!["data"]!.AsArray().Select(c => (string)c!["id"]!));
        Assert.Equal(10_000L, (long)(await me.GetJsonAsync("/v1/accounts/acc_i/summary")).Body!["current"]!);
        (await me.GetJsonAsync("/v1/accounts/acc_house/summary")).AssertProblem(404, "account_not_found");
        (await me.PostJsonAsync("/v1/customers", new { id = "cus_z", name = "Z" })).AssertProblem(403, "server_key_required");
        (await me.PostJsonAsync("/v1/accounts/acc_i/holds", new { id = "hz", amount = 1, reason = "x" })).AssertProblem(403, "server_key_required");
        (await me.GetJsonAsync("/v1/audit-log")).AssertProblem(403, "insufficient_scope");

        Assert.Equal(HttpStatusCode.Created, (await w.PayAsync("i1", "acc_i", "acc_house", 1_000, as_: me)).Response.StatusCode);
        (await w.PayAsync("i2", "acc_house", "acc_i", 1_000, as_: me)).AssertProblem(404, "account_not_found");
        Assert.Equal(9_000L, (long)(await w.SummaryAsync("acc_i"))["current"]!);
    }

    // ---------------- point in time ----------------

    [Fact]
    public async Task Summary_at_a_past_moment_gives_the_balances_as_they_stood()
    {
        var w = await WorldAsync();
        await w.WalletAsync("cus_j", "acc_j", 10_000);
        await w.Http.PostJsonAsync("/v1/accounts/acc_j/holds", new { id = "hj", amount = 3_000, reason = "x" });
        Fixture.Clock.Jump(TimeSpan.FromSeconds(1));
        var then = Fixture.Clock.UtcNow.ToString("O", CultureInfo.InvariantCulture);
        Fixture.Clock.Jump(TimeSpan.FromSeconds(1));
        Assert.Equal(HttpStatusCode.Created, (await w.PayAsync("j1", "acc_j", "acc_house", 5_000)).Response.StatusCode);
        await w.Http.PostJsonAsync("/v1/accounts/acc_j/holds/hj/release", new { });

        var past = await w.SummaryAsync("acc_j", then);
        Assert.Equal(10_000L, (long)past["current"]!);
        Assert.Equal(3_000L, (long)past["holds"]!);
        Assert.Equal(7_000L, (long)past["available"]!);
        var now = await w.SummaryAsync("acc_j");
        Assert.Equal(5_000L, (long)now["current"]!);
        Assert.Equal(5_000L, (long)now["available"]!);
    }

    [Fact]
    public async Task Audit_log_refuses_changes_even_through_the_database()
    {
        var w = await WorldAsync();
        await using var c = await Server.Services.GetRequiredService<Database>().OpenAsync(CancellationToken.None);
        await Assert.ThrowsAnyAsync<System.Data.Common.DbException>(() =>
            c.ExecuteAsync("UPDATE banking_audit_log SET actor = 'nobody' WHERE tenant_id = @t", new { t = w.Tenant.Id }));
        await Assert.ThrowsAnyAsync<System.Data.Common.DbException>(() => c.ExecuteAsync("DELETE FROM banking_audit_log WHERE tenant_id = @t", new { t = w.Tenant.Id }));
        Assert.NotEmpty((await w.Http.GetJsonAsync("/v1/audit-log")).Body!["data"]!.AsArray());
    }
}

/// <summary>Statements need closed days: these tests jump their server's clock by days, so they have servers of their own
/// (end-user tokens of the other tests would not be valid yet against the real clock).</summary>
public abstract partial class BankingStatementContract(ServerFixture fixture) : BankingTests(fixture)
{
    // ---------------- statements ----------------

    [Fact]
    public async Task Statement_with_reversals_and_holds_balances_is_immutable_and_cache_friendly()
    {
        var w = await WorldAsync();
        await w.WalletAsync("cus_k", "acc_k", 1_000_000, kyc: "full", name: "Kartika Sari");
        var zone = TimeZoneInfo.FindSystemTimeZoneById("Asia/Jakarta");
        var day = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(Fixture.Clock.UtcNow, zone).DateTime);
        Assert.Equal(HttpStatusCode.Created, (await w.PayAsync("k1", "acc_k", "acc_house", 120_000, "INV-1", "Groceries")).Response.StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await w.PayAsync("k2", "acc_k", "acc_house", 80_000, "INV-2", "Books")).Response.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await w.Http.PostJsonAsync("/v1/payments/k2/reverse", new { })).Response.StatusCode);
        await w.Http.PostJsonAsync("/v1/accounts/acc_k/holds", new { id = "hk1", amount = 50_000, reason = "Hotel" });
        await w.Http.PostJsonAsync("/v1/accounts/acc_k/holds/hk1/capture", new { amount = 30_000 });
        await w.Http.PostJsonAsync("/v1/accounts/acc_k/holds", new { id = "hk2", amount = 10_000, reason = "Fuel" });
        await w.Http.PostJsonAsync("/v1/accounts/acc_k/holds/hk2/release", new { });

        (await w.Http.PostJsonAsync("/v1/accounts/acc_k/statements", new { from = day.AddDays(-1), to = day.AddDays(1) })).AssertProblem(422, "statement_period_open");
        Fixture.Clock.Jump(TimeSpan.FromDays(2));
        var requested = await w.Http.PostJsonAsync("/v1/accounts/acc_k/statements", new { from = day.AddDays(-1), to = day.AddDays(1) });
        Assert.Equal(HttpStatusCode.Accepted, requested.Response.StatusCode);
        var id = (string)requested.Body!["id"]!;
        Assert.Equal(HttpStatusCode.OK, (await w.Http.PostJsonAsync("/v1/accounts/acc_k/statements", new { from = day.AddDays(-1), to = day.AddDays(1) })).Response.StatusCode);
        var ready = await Polling.Eventually(async () => (await w.Http.GetJsonAsync($"/v1/accounts/acc_k/statements/{id}")).Body!,
            s => (string?)s["status"] == "ready", "the statement was rendered");
        Assert.Equal(0L, (long)ready["opening_balance"]!);
        Assert.Equal(1_000_000L + 80_000, (long)ready["total_credits"]!);
        Assert.Equal(120_000L + 80_000 + 30_000, (long)ready["total_debits"]!);
        Assert.Equal(850_000L, (long)ready["closing_balance"]!);
        Assert.Equal(5L, (long)ready["entry_count"]!);

        // CSV: fetched twice byte for byte; the ETag is its SHA-256; a conditional GET is a 304.
        var csv1 = await w.Http.GetAsync($"/v1/accounts/acc_k/statements/{id}.csv");
        var csvBytes = await csv1.Content.ReadAsByteArrayAsync();
        var csv2 = await w.Http.GetByteArrayAsync($"/v1/accounts/acc_k/statements/{id}.csv");
        Assert.Equal(csvBytes, csv2);
        Assert.Equal($"\"{Convert.ToHexStringLower(SHA256.HashData(csvBytes))}\"", csv1.Headers.ETag!.Tag);
        Assert.False(csv1.Headers.ETag.IsWeak);
        Assert.Contains("immutable", csv1.Headers.CacheControl!.ToString(), StringComparison.Ordinal);
        Assert.True(csv1.Headers.CacheControl.Private);
        using (var conditional = new HttpRequestMessage(HttpMethod.Get, $"/v1/accounts/acc_k/statements/{id}.csv"))
        {
            conditional.Headers.IfNoneMatch.Add(csv1.Headers.ETag);
            var notModified = await w.Http.SendAsync(conditional);
            Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
            Assert.Empty(await notModified.Content.ReadAsByteArrayAsync());
        }
        using (var byAccept = new HttpRequestMessage(HttpMethod.Get, $"/v1/accounts/acc_k/statements/{id}"))
        {
            byAccept.Headers.Accept.ParseAdd("text/csv");
            Assert.Equal(csvBytes, await (await w.Http.SendAsync(byAccept)).Content.ReadAsByteArrayAsync());
        }
        var rows = Encoding.UTF8.GetString(csvBytes).Split("\r\n", StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(l => l.Split(',')).ToList();
        Assert.Equal(["bank:pay:top-acc_k", "bank:pay:k1", "bank:pay:k2", "bank:rev:k2", "bank:hold:hk1"], rows.Select(r => r[2]));
        Assert.Equal(["10000.00", "8800.00", "8000.00", "8800.00", "8500.00"], rows.Select(r => r[5]));

        // The PDF as a person reads it: every CSV line's amounts and balance, the totals and the masked holder.
        var pdfBytes = await w.Http.GetByteArrayAsync($"/v1/accounts/acc_k/statements/{id}.pdf");
        Assert.Equal(pdfBytes, await w.Http.GetByteArrayAsync($"/v1/accounts/acc_k/statements/{id}.pdf"));
        using (var pdf = PdfDocument.Open(pdfBytes))
        {
            var lines = pdf.GetPages().SelectMany(p => p.GetWords()).Select(x => x.Text).ToList();
            var text = string.Join(" ", lines);
            foreach (var r in rows)
            {
                Assert.Contains(r[4], lines);
                Assert.Contains(r[5], lines);
            }
            Assert.Contains("Groceries", text, StringComparison.Ordinal);
            Assert.Contains("INV-1", lines);
            Assert.Contains("8500.00", text, StringComparison.Ordinal);
            Assert.Contains("K****** S***", text, StringComparison.Ordinal);
            Assert.DoesNotContain("Kartika", text, StringComparison.Ordinal);
        }

        // camt.053: booked balances, summary and one entry per line.
        var xml = XDocument.Parse(await w.Http.GetStringAsync($"/v1/accounts/acc_k/statements/{id}.xml"));
        XNamespace ns = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08";
        var stmt = xml.Root!.Element(ns + "BkToCstmrStmt")!.Element(ns + "Stmt")!;
        Assert.Equal(5, stmt.Elements(ns + "Ntry").Count());
        var balances = stmt.Elements(ns + "Bal").ToDictionary(b => b.Descendants(ns + "Cd").First().Value, b => b.Element(ns + "Amt")!.Value);
        Assert.Equal("0.00", balances["OPBD"]);
        Assert.Equal("8500.00", balances["CLBD"]);
        Assert.Equal("5", stmt.Element(ns + "TxsSummry")!.Element(ns + "TtlNtries")!.Element(ns + "NbOfNtries")!.Value);
        Assert.Equal(["CRDT", "DBIT", "DBIT", "CRDT", "DBIT"], stmt.Elements(ns + "Ntry").Select(n => n.Element(ns + "CdtDbtInd")!.Value));

        // Stored hashes are what was served; the statement.ready event went out through the outbox.
        var files = ready["files"]!.AsArray();
        Assert.Equal(["csv", "pdf", "xml"], files.Select(f => (string)f!["format"]!));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(pdfBytes)), (string?)files[1]!["sha256"]);
        var events = await RawAsync("SELECT type, subject FROM events WHERE tenant_id = @t ORDER BY seq", new { t = w.Tenant.Id });
        Assert.Contains(events, e => (string)e["type"]! == "statement.ready" && (string)e["subject"]! == id);
        Assert.Contains(events, e => (string)e["type"]! == "payment.completed" && (string)e["subject"]! == "k1");
        Assert.Contains(events, e => (string)e["type"]! == "payment.reversed" && (string)e["subject"]! == "k2");
        Assert.Contains(events, e => (string)e["type"]! == "customer.created" && (string)e["subject"]! == "cus_k");
        (await w.Http.GetJsonAsync($"/v1/accounts/acc_house/statements/{id}")).AssertProblem(404, "statement_not_found");
    }


    [Fact]
    public async Task A_month_statement_with_reversals_and_holds_agrees_line_by_line_with_the_books()
    {
        var w = await WorldAsync();
        await w.WalletAsync("cus_m", "acc_m", 2_000_000, kyc: "full", name: "Made Wirawan"); // before the month: its opening balance
        var local = TimeZoneInfo.ConvertTime(Fixture.Clock.UtcNow, TimeZoneInfo.FindSystemTimeZoneById("Asia/Jakarta"));
        var first = new DateOnly(local.Year, local.Month, 1).AddMonths(1);
        // The month less its last day: the monthly statements job issues whole months, so this statement is the test's own
        // (a whole month would race that job to the same statement and render in its turn).
        var last = first.AddMonths(1).AddDays(-2);
        static DateTimeOffset At(DateOnly d, int hour) => new(d.ToDateTime(new TimeOnly(hour, 0)), TimeSpan.FromHours(7));
        async Task Ok(Task<(HttpResponseMessage Response, JsonNode? Body)> call)
        {
            var r = await call;
            Assert.True(r.Response.IsSuccessStatusCode, r.Body?.ToJsonString());
        }

        // Every day a payment out; every 5th day the previous day's payment reversed; every 10th day (from the 3rd) money in;
        // a hold every 7th day, captured in part the next day; a hold on the 12th released on the 13th (no entry).
        var expected = new List<(string Transfer, bool Credit, long Amount)>();
        for (var d = first; d <= last; d = d.AddDays(1))
        {
            Fixture.Clock.JumpTo(At(d, 9));
            var n = d.Day;
            await Ok(w.PayAsync($"m-pay-{n}", "acc_m", "acc_house", 1_000 * n, $"INV-{n}", $"Belanja {n}"));
            expected.Add(($"bank:pay:m-pay-{n}", false, 1_000 * n));
            if (n % 5 == 0)
            {
                await Ok(w.Http.PostJsonAsync($"/v1/payments/m-pay-{n - 1}/reverse", new { }));
                expected.Add(($"bank:rev:m-pay-{n - 1}", true, 1_000 * (n - 1)));
            }
            if (n % 10 == 3)
            {
                await Ok(w.PayAsync($"m-in-{n}", BankingWorld.Switch, "acc_m", 50_000, $"TRF-{n}", "Transfer masuk"));
                expected.Add(($"bank:pay:m-in-{n}", true, 50_000));
            }
            if (n % 7 == 1 && n > 1)
            {
                await Ok(w.Http.PostJsonAsync($"/v1/accounts/acc_m/holds/m-hold-{n - 1}/capture", new { amount = 15_000 }));
                expected.Add(($"bank:hold:m-hold-{n - 1}", false, 15_000));
            }
            if (n % 7 == 0 && d < last) await Ok(w.Http.PostJsonAsync("/v1/accounts/acc_m/holds", new { id = $"m-hold-{n}", amount = 20_000, reason = "Hotel" }));
            if (n == 12) await Ok(w.Http.PostJsonAsync("/v1/accounts/acc_m/holds", new { id = "m-rel", amount = 30_000, reason = "Fuel" }));
            if (n == 13) await Ok(w.Http.PostJsonAsync("/v1/accounts/acc_m/holds/m-rel/release", new { }));
        }
        // Placed on the period's last day, captured after it: a later statement's entry, not this one's.
        await Ok(w.Http.PostJsonAsync("/v1/accounts/acc_m/holds", new { id = "m-late", amount = 40_000, reason = "Sewa" }));
        Fixture.Clock.JumpTo(At(last.AddDays(2), 9));
        await Ok(w.Http.PostJsonAsync("/v1/accounts/acc_m/holds/m-late/capture", new { amount = 40_000 }));

        var requested = await w.Http.PostJsonAsync("/v1/accounts/acc_m/statements", new { from = first, to = last });
        Assert.True(requested.Response.StatusCode == HttpStatusCode.Accepted, requested.Body?.ToJsonString());
        var id = (string)requested.Body!["id"]!;
        var ready = await Polling.Eventually(async () => (await w.Http.GetJsonAsync($"/v1/accounts/acc_m/statements/{id}")).Body!,
            s => (string?)s["status"] == "ready", "the period's statement was rendered", timeout: TimeSpan.FromMinutes(2));

        var credits = expected.Where(e => e.Credit).Sum(e => e.Amount);
        var debits = expected.Where(e => !e.Credit).Sum(e => e.Amount);
        Assert.Equal(2_000_000L, (long)ready["opening_balance"]!);
        Assert.Equal(credits, (long)ready["total_credits"]!);
        Assert.Equal(debits, (long)ready["total_debits"]!);
        Assert.Equal(2_000_000L + credits - debits, (long)ready["closing_balance"]!);
        Assert.Equal(expected.Count, (int)(long)ready["entry_count"]!);
        // The books agree: the account's balance at the end of the period's last day is the statement's closing balance.
        var atEnd = await w.SummaryAsync("acc_m", At(last.AddDays(1), 0).ToString("O", CultureInfo.InvariantCulture));
        Assert.Equal((long)ready["closing_balance"]!, (long)atEnd["current"]!);

        // Line by line: the same transfers in booking order, each with its amount and the running balance after it.
        var csv = Encoding.UTF8.GetString(await w.Http.GetByteArrayAsync($"/v1/accounts/acc_m/statements/{id}.csv"));
        var rows = csv.Split("\r\n", StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(l => l.Split(',')).ToList();
        static string Rupiah(long minor) => (minor / 100m).ToString("0.00", CultureInfo.InvariantCulture);
        Assert.Equal(expected.Select(e => e.Transfer), rows.Select(r => r[2]));
        Assert.Equal(expected.Select(e => e.Credit ? "credit" : "debit"), rows.Select(r => r[3]));
        Assert.Equal(expected.Select(e => Rupiah(e.Amount)), rows.Select(r => r[4]));
        var running = 2_000_000L;
        Assert.Equal(expected.Select(e => Rupiah(running += e.Credit ? e.Amount : -e.Amount)), rows.Select(r => r[5]));
        Assert.All(rows, r => Assert.InRange(DateOnly.ParseExact(r[1], "yyyy-MM-dd", CultureInfo.InvariantCulture), first, last));
    }
}

[Collection(BankingCollection.Name)]
public sealed class SqliteBankingTests(SqliteServerFixture fixture) : BankingContract(fixture), IClassFixture<SqliteServerFixture>;

[Collection(BankingCollection.Name)]
public sealed class PostgresBankingTests(PostgresServerFixture fixture) : BankingContract(fixture), IClassFixture<PostgresServerFixture>;

[Collection(BankingCollection.Name)]
public sealed class SqliteBankingStatementTests(SqliteServerFixture fixture) : BankingStatementContract(fixture), IClassFixture<SqliteServerFixture>;

[Collection(BankingCollection.Name)]
public sealed class PostgresBankingStatementTests(PostgresServerFixture fixture) : BankingStatementContract(fixture), IClassFixture<PostgresServerFixture>;

/// <summary>The banking classes run one at a time, to keep the 2-core machine responsive.</summary>
[CollectionDefinition(Name)]
public sealed class BankingCollection
{
    public const string Name = "banking";
}
