using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Jobs;
using Neraca.Payouts;
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
        var payload = JsonNode.Parse((await Server.Services.GetRequiredService<Neraca.Storage.Database>().OpenAsync(CancellationToken.None)) is { } c
            ? await Dapper.SqlMapper.ExecuteScalarAsync<string>(c, "SELECT payload FROM jobs WHERE id = @id", new { id = notify[0].Id }) ?? "{}"
            : "{}")!;
        Assert.Equal("ewa:wd_1", (string?)payload["payout_id"]);
        Assert.Equal("succeeded", (string?)payload["status"]);
    }
}

public sealed class SqlitePayoutContractTests(SqliteServerFixture fixture) : PayoutContract(fixture), IClassFixture<SqliteServerFixture>;

public sealed class PostgresPayoutContractTests(PostgresServerFixture fixture) : PayoutContract(fixture), IClassFixture<PostgresServerFixture>;
