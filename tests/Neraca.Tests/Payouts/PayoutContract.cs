using System.Net;
using System.Text.Json.Nodes;
using System.Text;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Jobs;
using Neraca.Payouts;
using Neraca.Payouts.Provider;
using Neraca.Payouts.Sandbox;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Ledger;

namespace Neraca.Tests.Payouts;

/// <summary>The payout API against the built-in sandbox, run on both stores (the two classes at the end).</summary>
public abstract class PayoutContract(ServerFixture fixture)
{
    protected NeracaServer Server => fixture.Server;

    /// <summary>A tenant with a funded wallet <c>alice</c> (1,000,000) on ledger <c>wallets</c>.</summary>
    protected async Task<(TestTenant Tenant, LedgerClient Ledger)> FundedTenantAsync(long funds = 1_000_000)
    {
        var tenant = await Server.NewTenantAsync();
        var l = new LedgerClient(tenant.Http);
        await l.LedgerAsync();
        await l.AccountAsync("bank", normal: "debit");
        await l.AccountAsync("alice", flags: ["debits_must_not_exceed_credits"]);
        Assert.Equal(HttpStatusCode.Created, (await l.TransferAsync("topup", "bank", "alice", funds)).Response.StatusCode);
        return (tenant, l);
    }

    internal static JsonObject PayoutBody(string? id, long amount, string account = "1234567890", string code = "BCA", string type = "bank") => new()
    {
        ["id"] = id, ["source_account"] = "alice", ["amount"] = amount,
        ["destination"] = new JsonObject { ["type"] = type, ["code"] = code, ["account_number"] = account, ["account_name"] = "Budi Santoso" },
        ["reference"] = "Withdrawal",
    };

    internal static Task<JsonNode> SettledAsync(HttpClient http, string id) =>
        Polling.Eventually(async () => (await http.GetJsonAsync($"/v1/payouts/{id}")).Body!,
            p => (string?)p["status"] is PayoutStatuses.Succeeded or PayoutStatuses.Failed, $"payout {id} ends");

    [Fact]
    public async Task Payout_reserves_then_succeeds_through_the_sandbox_and_posts_to_the_clearing_account()
    {
        var (tenant, l) = await FundedTenantAsync();

        var created = await tenant.Http.PostJsonAsync("/v1/payouts", PayoutBody("po-1", 250_000));

        Assert.Equal(HttpStatusCode.Created, created.Response.StatusCode);
        Assert.Equal("reserved", (string?)created.Body!["status"]);
        Assert.Equal("******7890", (string?)created.Body["destination"]!["account_number_masked"]);
        Assert.Equal("B*** S******", (string?)created.Body["destination"]!["account_name"]);
        Assert.DoesNotContain("1234567890", created.Body.ToJsonString(), StringComparison.Ordinal);
        var reserved = await l.BalanceAsync("alice");
        Assert.Equal(250_000L, (long)reserved["debits_pending"]!);
        Assert.Equal(750_000L, (long)reserved["available"]!);

        var done = await SettledAsync(tenant.Http, "po-1");

        Assert.Equal("succeeded", (string?)done["status"]);
        Assert.StartsWith("disb_", (string?)done["provider_reference"], StringComparison.Ordinal);
        var alice = await l.BalanceAsync("alice");
        Assert.Equal(750_000L, (long)alice["posted"]!);
        Assert.Equal(0L, (long)alice["debits_pending"]!);
        var ledger = (await tenant.Http.GetJsonAsync("/v1/ledgers/wallets")).Body!;
        var clearing = await l.BalanceAsync(PayoutService.ClearingAccountId((string)ledger["id"]!));
        Assert.Equal(250_000L, (long)clearing["posted"]!);
        await Conservation.AssertAsync(Server, tenant.Id);
    }

    [Fact]
    public async Task In_process_request_enqueues_the_callers_notify_job_when_the_payout_ends()
    {
        var (tenant, _) = await FundedTenantAsync();
        var payouts = Server.Services.GetRequiredService<PayoutService>();

        var result = await payouts.RequestAsync(tenant.Id, new PayoutRequest("ewa:wd_1", "alice", 10_000,
            new PayoutDestination("ewallet", "GOPAY", "081234567890"), "EWA withdrawal", NotifyJobType: "ewa.payout_done"), CancellationToken.None);

        Assert.True(result.Created, result.ErrorDetail);
        Assert.Equal(PayoutStatuses.Reserved, result.Payout!.Status);
        await SettledAsync(tenant.Http, "ewa:wd_1");
        var jobs = Server.Services.GetRequiredService<JobStore>();
        var notify = await Polling.Eventually(() => jobs.ListAsync(tenant.Id, null, "ewa.payout_done", null, 10, CancellationToken.None),
            j => j.Count == 1, "the notify job");
        Assert.Equal("payout:ewa:wd_1", notify[0].Key);
        await using var connection = await Server.Services.GetRequiredService<Database>().OpenAsync(CancellationToken.None);
        var payload = JsonNode.Parse(await connection.ExecuteScalarAsync<string>("SELECT payload FROM jobs WHERE id = @id", new { id = notify[0].Id }) ?? "{}")!;
        Assert.Equal("ewa:wd_1", (string?)payload["payout_id"]);
        Assert.Equal("succeeded", (string?)payload["status"]);
    }
    [Fact]
    public async Task Replayed_idempotency_key_or_id_never_creates_a_second_payout()
    {
        var (tenant, l) = await FundedTenantAsync();
        var body = PayoutBody(null, 100_000);

        var first = await tenant.Http.PostJsonAsync("/v1/payouts", body, idempotencyKey: "k-1");
        var again = await tenant.Http.PostJsonAsync("/v1/payouts", body, idempotencyKey: "k-1");
        var id = (string)first.Body!["id"]!;
        var sameId = await tenant.Http.PostJsonAsync("/v1/payouts", PayoutBody(id, 100_000));
        var otherBody = await tenant.Http.PostJsonAsync("/v1/payouts", PayoutBody(id, 100_001));
        var keyReused = await tenant.Http.PostJsonAsync("/v1/payouts", PayoutBody(null, 5), idempotencyKey: "k-1");

        Assert.Equal(HttpStatusCode.Created, first.Response.StatusCode);
        Assert.StartsWith("po_", id, StringComparison.Ordinal);
        Assert.Equal(id, (string?)again.Body!["id"]);
        Assert.Equal("true", again.Response.Headers.GetValues("Idempotent-Replayed").Single());
        Assert.Equal(HttpStatusCode.OK, sameId.Response.StatusCode);
        Assert.Equal(id, (string?)sameId.Body!["id"]);
        otherBody.AssertProblem(409, "payout_conflict");
        Assert.Contains("amount", (string?)otherBody.Body!["detail"], StringComparison.Ordinal);
        keyReused.AssertProblem(422, "idempotency_key_reused");
        await SettledAsync(tenant.Http, id);
        var list = (await tenant.Http.GetJsonAsync("/v1/payouts")).Body!["data"]!.AsArray();
        Assert.Single(list);
        Assert.Equal(900_000L, (long)(await l.BalanceAsync("alice"))["posted"]!);
        var paid = Server.Services.GetRequiredService<BuiltInSandbox>().Provider.Paid();
        Assert.Single(paid, p => p.ExternalId == PayoutService.ProviderKey(tenant.Id, id));
    }

    [Fact]
    public async Task A_refused_request_leaves_nothing_behind()
    {
        var (tenant, l) = await FundedTenantAsync(funds: 1_000);

        var poor = await tenant.Http.PostJsonAsync("/v1/payouts", PayoutBody("po-poor", 5_000));
        var body = PayoutBody("po-ghost", 5);
        body["source_account"] = "ghost";
        var ghost = await tenant.Http.PostJsonAsync("/v1/payouts", body);

        poor.AssertProblem(422, "insufficient_funds");
        ghost.AssertProblem(404, "account_not_found");
        (await tenant.Http.GetJsonAsync("/v1/payouts/po-poor")).AssertProblem(404, "payout_not_found");
        (await tenant.Http.GetJsonAsync("/v1/payouts/po-ghost")).AssertProblem(404, "payout_not_found");
        // The same id works once the money is there: a refusal kept nothing that would conflict.
        Assert.Equal(HttpStatusCode.Created, (await l.TransferAsync("topup-2", "bank", "alice", 10_000)).Response.StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await tenant.Http.PostJsonAsync("/v1/payouts", PayoutBody("po-poor", 5_000))).Response.StatusCode);
    }

    [Fact]
    public async Task A_failed_payout_returns_the_money_to_the_source_and_emits_payout_failed()
    {
        var (tenant, l) = await FundedTenantAsync();

        var created = await tenant.Http.PostJsonAsync("/v1/payouts", PayoutBody("po-bad", 40_000, account: "0001234567"));
        var done = await SettledAsync(tenant.Http, "po-bad");

        Assert.Equal(HttpStatusCode.Created, created.Response.StatusCode);
        Assert.Equal("failed", (string?)done["status"]);
        Assert.Equal("invalid_destination", (string?)done["failure_code"]);
        var alice = await l.BalanceAsync("alice");
        Assert.Equal(1_000_000L, (long)alice["posted"]!);
        Assert.Equal(1_000_000L, (long)alice["available"]!);
        var events = await tenant.Http.EventsAsync("?type=payout.failed", 1);
        Assert.Single(events);
        Assert.Equal("po-bad", (string?)events[0]!["subject"]);
        Assert.Equal("******4567", (string?)events[0]!["data"]!["destination"]!["account_number_masked"]);
        Assert.DoesNotContain("0001234567", events.ToJsonString(), StringComparison.Ordinal);
        Assert.DoesNotContain(Server.Services.GetRequiredService<BuiltInSandbox>().Provider.Paid(), p => p.ExternalId == PayoutService.ProviderKey(tenant.Id, "po-bad"));
        await Conservation.AssertAsync(Server, tenant.Id);
    }

    [Fact]
    public async Task A_forged_or_stale_callback_is_refused_with_401_and_a_duplicate_changes_nothing()
    {
        var (tenant, l) = await FundedTenantAsync();
        await tenant.Http.PostJsonAsync("/v1/payouts", PayoutBody("po-cb", 70_000));
        var done = await SettledAsync(tenant.Http, "po-cb");
        Assert.Equal("succeeded", (string?)done["status"]);
        var secret = Server.Services.GetRequiredService<BuiltInSandbox>().CallbackSecret;
        var now = DateTimeOffset.UtcNow;
        var failedCallback = Encoding.UTF8.GetBytes(new JsonObject
        {
            ["id"] = "cb_forged", ["event"] = "disbursement.updated",
            ["disbursement"] = new JsonObject
            {
                ["id"] = (string?)done["provider_reference"], ["external_id"] = PayoutService.ProviderKey(tenant.Id, "po-cb"), ["amount"] = 70_000,
                ["currency"] = "IDR", ["status"] = "failed", ["failure_code"] = "INVALID_DESTINATION", ["failure_message"] = "x",
                ["created_at"] = now, ["updated_at"] = now,
            },
        }.ToJsonString());
        using var anonymous = Server.CreateClient();

        var forged = await CallbackAsync(anonymous, failedCallback, CallbackSignature.Sign("not-the-secret", now.ToUnixTimeSeconds(), failedCallback));
        var unsigned = await CallbackAsync(anonymous, failedCallback, null);
        var stale = await CallbackAsync(anonymous, failedCallback, CallbackSignature.Sign(secret, now.AddMinutes(-10).ToUnixTimeSeconds(), failedCallback));
        var tampered = await CallbackAsync(anonymous, [.. failedCallback, (byte)' '], CallbackSignature.Sign(secret, now.ToUnixTimeSeconds(), failedCallback));
        var duplicate = await CallbackAsync(anonymous, failedCallback, CallbackSignature.Sign(secret, now.ToUnixTimeSeconds(), failedCallback));

        forged.AssertProblem(401, "invalid_signature");
        unsigned.AssertProblem(401, "invalid_signature");
        stale.AssertProblem(401, "invalid_signature");
        tampered.AssertProblem(401, "invalid_signature");
        // Signed and fresh, but the payout's outcome is recorded: "duplicate", and it stays as it was.
        Assert.Equal(HttpStatusCode.OK, duplicate.Response.StatusCode);
        Assert.Equal("duplicate", (string?)duplicate.Body!["result"]);
        var after = (await tenant.Http.GetJsonAsync("/v1/payouts/po-cb")).Body!;
        Assert.Equal("succeeded", (string?)after["status"]);
        Assert.Null((string?)after["failure_code"]);
        Assert.Equal(930_000L, (long)(await l.BalanceAsync("alice"))["posted"]!);
    }

    static async Task<(HttpResponseMessage Response, JsonNode? Body)> CallbackAsync(HttpClient http, byte[] body, string? signature)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/payouts/callbacks") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new("application/json");
        if (signature is not null) request.Headers.Add(CallbackSignature.Header, signature);
        var response = await http.SendAsync(request);
        return (response, await Neraca.Tests.Infrastructure.Http.ReadAsync(response));
    }

    [Fact]
    public async Task Another_tenant_sees_none_of_the_payouts_and_may_use_the_same_id()
    {
        var (owner, _) = await FundedTenantAsync();
        var (other, _) = await FundedTenantAsync();
        Assert.Equal(HttpStatusCode.Created, (await owner.Http.PostJsonAsync("/v1/payouts", PayoutBody("po-shared", 1_000))).Response.StatusCode);

        (await other.Http.GetJsonAsync("/v1/payouts/po-shared")).AssertProblem(404, "payout_not_found");
        Assert.Empty((await other.Http.GetJsonAsync("/v1/payouts")).Body!["data"]!.AsArray());
        var own = await other.Http.PostJsonAsync("/v1/payouts", PayoutBody("po-shared", 2_000));

        Assert.Equal(HttpStatusCode.Created, own.Response.StatusCode);
        Assert.Equal(2_000L, (long)own.Body!["amount"]!);
        Assert.Equal(1_000L, (long)(await owner.Http.GetJsonAsync("/v1/payouts/po-shared")).Body!["amount"]!);
        // Its list holds its own payout only.
        Assert.Single((await other.Http.GetJsonAsync("/v1/payouts?limit=10")).Body!["data"]!.AsArray());
    }

    [Theory]
    [InlineData("""{"source_account":"alice","amount":"lots","reference":"r","destination":{"type":"bank","code":"BCA","account_number":"1234567890"}}""", "amount")]
    [InlineData("""{"source_account":"alice","amount":-5,"reference":"r","destination":{"type":"bank","code":"BCA","account_number":"1234567890"}}""", "amount")]
    [InlineData("""{"source_account":"alice","amount":9223372036854775808,"reference":"r","destination":{"type":"bank","code":"BCA","account_number":"1234567890"}}""", "amount")]
    [InlineData("""{"source_account":"alice","amount":5,"reference":"r","destination":{"type":"bank","code":"BCA","account_number":"1234567890"},"admin":true}""", "admin")]
    [InlineData("""{"source_account":"alice","amount":5,"reference":"r"}""", "destination")]
    [InlineData("""{"source_account":"alice","amount":5,"reference":"r","destination":{"type":"cash","code":"BCA","account_number":"1234567890"}}""", "destination.type")]
    [InlineData("""{"source_account":"alice","amount":5,"reference":"r","destination":{"type":"bank","code":"bca; drop","account_number":"1234567890"}}""", "destination.code")]
    [InlineData("""{"source_account":"alice","amount":5,"reference":"r","destination":{"type":"bank","code":"BCA","account_number":"12ab567890"}}""", "destination.account_number")]
    [InlineData("""{"source_account":"alice","amount":5,"reference":"r","destination":{"type":"ewallet","code":"OVO","account_number":"0812"}}""", "destination.account_number")]
    [InlineData("""{"id":"a/b","source_account":"alice","amount":5,"reference":"r","destination":{"type":"bank","code":"BCA","account_number":"1234567890"}}""", "id")]
    [InlineData("""{"source_account":"alice","amount":5,"reference":"","destination":{"type":"bank","code":"BCA","account_number":"1234567890"}}""", "reference")]
    [InlineData("""[1,2,3]""", "")]
    public async Task Hostile_input_is_a_400_naming_the_field_and_changes_nothing(string body, string field)
    {
        var (tenant, l) = await FundedTenantAsync();

        var r = await tenant.Http.PostRawAsync("/v1/payouts", body);

        r.AssertProblem(400, "validation_failed");
        if (field.Length > 0) Assert.Contains(field, r.Body!.ToJsonString(), StringComparison.Ordinal);
        Assert.Empty((await tenant.Http.GetJsonAsync("/v1/payouts")).Body!["data"]!.AsArray());
        Assert.Equal(1_000_000L, (long)(await l.BalanceAsync("alice"))["available"]!);
    }

    [Fact]
    public async Task Lists_page_with_a_cursor_and_refuse_bad_parameters()
    {
        var (tenant, _) = await FundedTenantAsync();
        for (var i = 0; i < 3; i++)
            Assert.Equal(HttpStatusCode.Created, (await tenant.Http.PostJsonAsync("/v1/payouts", PayoutBody($"po-page-{i}", 100 + i))).Response.StatusCode);

        var first = (await tenant.Http.GetJsonAsync("/v1/payouts?limit=2")).Body!;
        var second = (await tenant.Http.GetJsonAsync($"/v1/payouts?limit=2&after={(string)first["next_cursor"]!}")).Body!;

        Assert.Equal(["po-page-2", "po-page-1"], first["data"]!.AsArray().Select(p => (string)p!["id"]!));
        Assert.Equal(["po-page-0"], second["data"]!.AsArray().Select(p => (string)p!["id"]!));
        Assert.Null((string?)second["next_cursor"]);
        (await tenant.Http.GetJsonAsync("/v1/payouts?limit=0")).AssertProblem(400, "validation_failed");
        (await tenant.Http.GetJsonAsync("/v1/payouts?status=paid")).AssertProblem(400, "validation_failed");
        (await tenant.Http.GetJsonAsync("/v1/payouts?after=%%%")).AssertProblem(400, "invalid_cursor");
        (await tenant.Http.GetJsonAsync("/v1/payouts/" + new string('x', 200))).AssertProblem(404, "payout_not_found");
    }

    [Fact]
    public async Task Account_inquiry_answers_the_holders_masked_name()
    {
        var (tenant, _) = await FundedTenantAsync();

        var known = await tenant.Http.PostJsonAsync("/v1/payouts/account-inquiries",
            new { destination = new { type = "bank", code = "BRI", account_number = "1234567890" } });
        var unknown = await tenant.Http.PostJsonAsync("/v1/payouts/account-inquiries",
            new { destination = new { type = "bank", code = "BRI", account_number = "0009999999" } });

        Assert.Equal(HttpStatusCode.OK, known.Response.StatusCode);
        Assert.True((bool)known.Body!["valid"]!);
        Assert.Matches("^[A-Z]\\*+ [A-Z]\\*+$", (string)known.Body["account_name_masked"]!);
        Assert.False((bool)unknown.Body!["valid"]!);
        Assert.Equal("invalid_destination", (string?)unknown.Body["failure_code"]);
    }

    [Fact]
    public async Task Keys_without_the_payout_scopes_are_forbidden()
    {
        var tenant = await Server.NewTenantAsync(Neraca.Tenancy.Scopes.LedgerRead, Neraca.Tenancy.Scopes.LedgerWrite);

        var post = await tenant.Http.PostJsonAsync("/v1/payouts", PayoutBody("po-x", 1));
        var get = await tenant.Http.GetJsonAsync("/v1/payouts");

        Assert.Equal(HttpStatusCode.Forbidden, post.Response.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, get.Response.StatusCode);
    }
}


public sealed class SqlitePayoutContractTests(SqliteServerFixture fixture) : PayoutContract(fixture), IClassFixture<SqliteServerFixture>;

public sealed class PostgresPayoutContractTests(PostgresServerFixture fixture) : PayoutContract(fixture), IClassFixture<PostgresServerFixture>;
