using System.Net;
using System.Text.Json.Nodes;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Ledger;

namespace Neraca.Tests.Banking;

/// <summary>Withdrawals to banks and e-wallets through the payouts capability (the built-in sandbox: it pays 500 ms
/// after submission, and account numbers starting with 000 fail there as "no such account").</summary>
public abstract partial class BankingContract
{
    static object Bank(string number = "1234567890") => new { type = "bank", code = "BCA", account_number = number, account_name = "Budi Santoso" };

    static Task<(HttpResponseMessage Response, JsonNode? Body)> WithdrawAsync(HttpClient http, string account, object body, string? idempotencyKey = null) =>
        http.PostJsonAsync($"/v1/accounts/{account}/withdrawals", body, idempotencyKey);

    static Task<JsonNode> FinishedAsync(BankingWorld w, string account, string id) =>
        Polling.Eventually(async () => (await w.Http.GetJsonAsync($"/v1/accounts/{account}/withdrawals/{id}")).Body!,
            b => (string?)b["status"] is "succeeded" or "failed", $"withdrawal {id} ended");

    [Fact]
    public async Task Withdrawal_pays_out_once_shows_in_history_and_events_and_respects_holds()
    {
        var w = await WorldAsync();
        await w.WalletAsync("cus_w", "acc_w", 1_000_000);
        Assert.Equal(HttpStatusCode.Created, (await w.Http.PostJsonAsync("/v1/accounts/acc_w/holds", new { id = "hw", amount = 100_000, reason = "Hotel" })).Response.StatusCode);

        // The hold is respected: 950,000 is more than the 900,000 available. Refused withdrawals are refused again on retry.
        var tooMuch = await WithdrawAsync(w.Http, "acc_w", new { id = "wd0", amount = 950_000, destination = Bank(), reference = "Cash out" });
        tooMuch.AssertProblem(422, "insufficient_funds");
        Assert.Equal("wd0", (string?)tooMuch.Body!["withdrawal_id"]);
        (await WithdrawAsync(w.Http, "acc_w", new { id = "wd0", amount = 950_000, destination = Bank(), reference = "Cash out" })).AssertProblem(422, "insufficient_funds");

        var body = new { id = "wd1", amount = 300_000, destination = Bank(), reference = "Cash out", description = "To my BCA account" };
        var created = await WithdrawAsync(w.Http, "acc_w", body);
        Assert.Equal(HttpStatusCode.Created, created.Response.StatusCode);
        Assert.Equal("******7890", (string?)created.Body!["destination"]!["account_number_masked"]);
        Assert.DoesNotContain("1234567890", created.Body.ToJsonString(), StringComparison.Ordinal);
        Assert.DoesNotContain("Budi", created.Body.ToJsonString(), StringComparison.Ordinal);

        var done = await FinishedAsync(w, "acc_w", "wd1");
        Assert.Equal("succeeded", (string?)done["status"]);
        Assert.Equal("bank:wd:wd1", (string?)done["payout_id"]);
        var s = await w.SummaryAsync("acc_w");
        Assert.Equal(700_000L, (long)s["current"]!);
        Assert.Equal(600_000L, (long)s["available"]!);
        Assert.Equal(0L, (long)s["pending_debits"]!);

        // The same request again pays nothing more; other fields under the same id are a conflict.
        var replay = await WithdrawAsync(w.Http, "acc_w", body);
        Assert.Equal(HttpStatusCode.OK, replay.Response.StatusCode);
        Assert.Equal("succeeded", (string?)replay.Body!["status"]);
        (await WithdrawAsync(w.Http, "acc_w", body with { amount = 300_001 })).AssertProblem(409, "withdrawal_exists_with_different_fields");

        // A replayed Idempotency-Key: the first response again, one withdrawal; another body under the key is refused.
        var keyed = new { amount = 50_000, destination = Bank("9876543210"), reference = "Weekly" };
        var first = await WithdrawAsync(w.Http, "acc_w", keyed, idempotencyKey: "wk-1");
        Assert.Equal(HttpStatusCode.Created, first.Response.StatusCode);
        var again = await WithdrawAsync(w.Http, "acc_w", keyed, idempotencyKey: "wk-1");
        Assert.Equal((string?)first.Body!["id"], (string?)again.Body!["id"]);
        (await WithdrawAsync(w.Http, "acc_w", keyed with { amount = 50_001 }, idempotencyKey: "wk-1")).AssertProblem(422, "idempotency_key_reused");
        await FinishedAsync(w, "acc_w", (string)first.Body["id"]!);
        Assert.Equal(650_000L, (long)(await w.SummaryAsync("acc_w"))["current"]!);
        var list = (await w.Http.GetJsonAsync("/v1/accounts/acc_w/withdrawals")).Body!["data"]!.AsArray();
        Assert.Equal([(string)first.Body["id"]!, "wd1", "wd0"], list.Select(x => (string)x!["id"]!));
        Assert.Equal(["succeeded", "succeeded", "failed"], list.Select(x => (string)x!["status"]!));

        // The history line: the payout's reservation, posted, with banking's reference and the masked destination.
        var line = Assert.Single((await w.Http.GetJsonAsync("/v1/accounts/acc_w/transactions?q=cash")).Body!["data"]!.AsArray())!;
        Assert.Equal("payout:bank:wd:wd1:reserve", (string?)line["transfer_id"]);
        Assert.Equal("withdrawal", (string?)line["kind"]);
        Assert.Equal("debit", (string?)line["direction"]);
        Assert.Equal(300_000L, (long)line["amount"]!);
        Assert.Equal(700_000L, (long)line["balance_after"]!);
        Assert.Equal("BCA ******7890", (string?)line["counterparty"]);
        var walk = (await w.Http.GetJsonAsync("/v1/accounts/acc_w/transactions")).Body!["data"]!.AsArray();
        Assert.Equal(["top_up", "withdrawal", "withdrawal"], walk.Select(x => (string?)x!["kind"]));

        // Events through the outbox, without the account number or the holder's name; none stored in clear either.
        Assert.Equal(["wd1", (string)first.Body["id"]!], (await EventsAsync(w, "withdrawal.succeeded")).Select(e => e.Subject));
        Assert.Contains(await EventsAsync(w, "withdrawal.requested"), e => e.Subject == "wd1");
        Assert.Equal(["wd0"], (await EventsAsync(w, "withdrawal.failed")).Select(e => e.Subject));
        var all = string.Join("\n", (await RawAsync("SELECT payload FROM events WHERE tenant_id = @t AND type LIKE 'withdrawal.%'", new { t = w.Tenant.Id }))
            .Select(e => (string)e["payload"]!));
        Assert.DoesNotContain("1234567890", all, StringComparison.Ordinal);
        Assert.DoesNotContain("Budi", all, StringComparison.Ordinal);
        var raw = Assert.Single(await RawAsync("SELECT destination_enc, destination_masked FROM banking_withdrawals WHERE tenant_id = @t AND id = 'wd1'",
            new { t = w.Tenant.Id }));
        Assert.StartsWith("e1:", (string)raw["destination_enc"]!, StringComparison.Ordinal);
        Assert.DoesNotContain("1234567890", (string)raw["destination_enc"]!, StringComparison.Ordinal);
        await Conservation.AssertAsync(Server, w.Tenant.Id);
    }

    [Fact]
    public async Task Withdrawal_that_fails_at_the_provider_returns_the_money_and_the_limit()
    {
        var w = await WorldAsync();
        await w.WalletAsync("cus_x", "acc_x", 300_000_000);
        var r = await WithdrawAsync(w.Http, "acc_x", new { id = "wdx", amount = 150_000_000, destination = Bank("0001234567"), reference = "Cash out" });
        Assert.Equal(HttpStatusCode.Created, r.Response.StatusCode);
        Assert.Equal("processing", (string?)r.Body!["status"]);

        var done = await FinishedAsync(w, "acc_x", "wdx");
        Assert.Equal("failed", (string?)done["status"]);
        Assert.Equal("invalid_destination", (string?)done["failure_code"]);
        var s = await w.SummaryAsync("acc_x");
        Assert.Equal(300_000_000L, (long)s["current"]!);
        Assert.Equal(300_000_000L, (long)s["available"]!);
        Assert.Equal(0L, (long)s["pending_debits"]!);
        // Nothing left the account: no history line, and the whole day's limit (basic: 200,000,000) is there again.
        Assert.DoesNotContain((await w.Http.GetJsonAsync("/v1/accounts/acc_x/transactions")).Body!["data"]!.AsArray(), x => (string?)x!["kind"] == "withdrawal");
        Assert.Equal(HttpStatusCode.Created, (await w.PayAsync("x1", "acc_x", "acc_house", 200_000_000)).Response.StatusCode);
        Assert.Equal(["wdx"], (await EventsAsync(w, "withdrawal.failed")).Select(e => e.Subject));
        Assert.Equal(150_000_000L, (long)(await w.Http.GetJsonAsync("/v1/payouts/bank:wd:wdx")).Body!["amount"]!);
        Assert.Equal("failed", (string?)(await w.Http.GetJsonAsync("/v1/payouts/bank:wd:wdx")).Body!["status"]);
        // A replay answers the failed withdrawal as it ended.
        var replay = await WithdrawAsync(w.Http, "acc_x", new { id = "wdx", amount = 150_000_000, destination = Bank("0001234567"), reference = "Cash out" });
        Assert.Equal(HttpStatusCode.OK, replay.Response.StatusCode);
        Assert.Equal("failed", (string?)replay.Body!["status"]);
        await Conservation.AssertAsync(Server, w.Tenant.Id);
    }

    [Fact]
    public async Task Withdrawals_respect_blocks_status_daily_limits_and_ownership()
    {
        var w = await WorldAsync();
        await w.WalletAsync("cus_y", "acc_y", 500_000_000);
        await w.Http.PostJsonAsync("/v1/accounts/acc_y/blocks", new { id = "yb", type = "debit", reason = "fraud review" });
        (await WithdrawAsync(w.Http, "acc_y", new { id = "y1", amount = 1_000, destination = Bank() })).AssertProblem(422, "account_blocked");
        await w.Http.DeleteAsync("/v1/accounts/acc_y/blocks/yb");
        await w.Http.PostJsonAsync("/v1/accounts/acc_y/freeze", new { });
        (await WithdrawAsync(w.Http, "acc_y", new { id = "y2", amount = 1_000, destination = Bank() })).AssertProblem(422, "account_frozen");
        await w.Http.PostJsonAsync("/v1/accounts/acc_y/unfreeze", new { });

        // Payments and withdrawals share the day's limit (basic: 200,000,000).
        Assert.Equal(HttpStatusCode.Created, (await w.PayAsync("y3", "acc_y", "acc_house", 150_000_000)).Response.StatusCode);
        var over = await WithdrawAsync(w.Http, "acc_y", new { id = "y4", amount = 60_000_000, destination = Bank() });
        over.AssertProblem(422, "limit_exceeded");
        Assert.Equal(200_000_000L, (long)over.Body!["limit"]!);
        Assert.Equal(50_000_000L, (long)over.Body!["remaining"]!);

        // Bad input is a problem, never a 500.
        (await WithdrawAsync(w.Http, "acc_y", new { id = "y5", amount = -1, destination = Bank() })).AssertProblem(400, "validation_failed");
        (await WithdrawAsync(w.Http, "acc_y", new { id = "y5", amount = 1, destination = new { type = "bank", code = "BCA", account_number = "12ab" } }))
            .AssertProblem(400, "validation_failed");
        (await WithdrawAsync(w.Http, "acc_y", new { id = "y5", amount = 1 })).AssertProblem(400, "validation_failed");
        (await w.Http.PostRawAsync("/v1/accounts/acc_y/withdrawals", """{"id":"y5","amount":"1","destination":{"type":"bank","code":"BCA","account_number":"1234567890"}}"""))
            .AssertProblem(400, "validation_failed");
        (await WithdrawAsync(w.Http, "acc_y", new { id = new string('y', 41), amount = 1, destination = Bank() })).AssertProblem(400, "validation_failed");

        // The customer withdraws from its own account only; another tenant does not see the account at all.
        var me = await w.EndUserAsync("cus_y");
        var mine = await WithdrawAsync(me, "acc_y", new { id = "y6", amount = 10_000, destination = new { type = "ewallet", code = "GOPAY", account_number = "081234567890" } });
        Assert.Equal(HttpStatusCode.Created, mine.Response.StatusCode);
        Assert.Equal("succeeded", (string?)(await FinishedAsync(w, "acc_y", "y6"))["status"]);
        (await WithdrawAsync(me, "acc_house", new { id = "y7", amount = 1, destination = Bank() })).AssertProblem(404, "account_not_found");
        (await me.GetJsonAsync("/v1/accounts/acc_house/withdrawals")).AssertProblem(404, "account_not_found");
        var other = await WorldAsync();
        (await WithdrawAsync(other.Http, "acc_y", new { id = "y8", amount = 1, destination = Bank() })).AssertProblem(404, "account_not_found");
        (await other.Http.GetJsonAsync("/v1/accounts/acc_y/withdrawals/y6")).AssertProblem(404, "account_not_found");
        (await w.Http.GetJsonAsync("/v1/accounts/acc_house/withdrawals/y6")).AssertProblem(404, "withdrawal_not_found");
    }
}
