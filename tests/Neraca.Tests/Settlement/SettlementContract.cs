using System.Net;
using System.Text.Json.Nodes;
using Neraca.Ledger;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Ledger;

namespace Neraca.Tests.Settlement;

/// <summary>Counterparties, net positions and settlement runs over HTTP, on both stores (classes at the end).</summary>
public abstract class SettlementContract(ServerFixture fixture)
{
    Task<SettlementWorld> WorldAsync(object? counterparty = null) => SettlementWorld.CreateAsync(fixture, counterparty);

    /// <summary>Business date d of bca: 100,000.00 paid out via the bank and 30,000.00 in; one transfer after the cut-off
    /// (next date) and one the day before (previous date).</summary>
    static async Task SeedDayAsync(SettlementWorld w, DateOnly d)
    {
        await w.TransferAsync($"out-{d:MMdd}", "alice", "due-bca", 10_000_000, SettlementWorld.At(d, 10));
        await w.TransferAsync($"in-{d:MMdd}", "due-bca", "bob", 3_000_000, SettlementWorld.At(d, 12));
        await w.TransferAsync($"late-{d:MMdd}", "alice", "due-bca", 500_000, SettlementWorld.At(d, 17, 30));
        await w.TransferAsync($"early-{d:MMdd}", "alice", "due-bca", 200_000, SettlementWorld.At(d.AddDays(-1), 16));
    }

    [Fact]
    public async Task Counterparty_create_replay_conflict_and_validation()
    {
        var w = await WorldAsync();
        var again = await w.Http.PostJsonAsync("/v1/settlement/counterparties", SettlementWorld.DefaultCounterparty());
        Assert.Equal(HttpStatusCode.OK, again.Response.StatusCode);
        Assert.Equal("17:00", (string)again.Body!["cutoff_local_time"]!);
        Assert.Equal(3, again.Body!["matching_rules"]!.AsArray().Count);
        var changed = JsonSerializerHelpers.ToObject(SettlementWorld.DefaultCounterparty());
        changed["cutoff_local_time"] = "18:00";
        (await w.Http.PostJsonAsync("/v1/settlement/counterparties", changed)).AssertProblem(409, "counterparty_exists");
        var updated = await w.Http.SendAsync(new HttpRequestMessage(HttpMethod.Put, "/v1/settlement/counterparties/bca") { Content = System.Net.Http.Json.JsonContent.Create(changed) });
        Assert.Equal(HttpStatusCode.OK, updated.StatusCode);
        Assert.Equal("18:00", (string)(await w.Http.GetJsonAsync("/v1/settlement/counterparties/bca")).Body!["cutoff_local_time"]!);

        var bad = await w.Http.PostJsonAsync("/v1/settlement/counterparties", new
        {
            id = "bad id!", name = "", type = "bakery", settlement_account = "due-bca", cash_account = "due-bca", cutoff_local_time = "25:00",
            time_zone = "Mars/Olympus", closed_weekdays = new[] { "funday" }, matching_rules = new[] { new { type = "guess", tolerance = -1 } },
        });
        bad.AssertProblem(400, "validation_failed");
        var errors = bad.Body!["errors"]!.AsObject();
        foreach (var field in new[] { "id", "name", "type", "cash_account", "cutoff_local_time", "time_zone", "closed_weekdays", "matching_rules[0].type", "matching_rules[0].tolerance" })
            Assert.True(errors.ContainsKey(field), field + " in " + errors.ToJsonString());
        var unknown = JsonSerializerHelpers.ToObject(SettlementWorld.DefaultCounterparty("bri", cash: "nope"));
        var r = await w.Http.PostJsonAsync("/v1/settlement/counterparties", unknown);
        r.AssertProblem(422, "counterparty_account_invalid");
        Assert.Equal("cash_account", (string)r.Body!["field"]!);
        (await w.Http.PostRawAsync("/v1/settlement/counterparties", """{"id":"x","surprise":1}""")).AssertProblem(400, "validation_failed");
        (await w.Http.PostRawAsync("/v1/settlement/counterparties", """{"id":5}""")).AssertProblem(400, "validation_failed");
        var list = await w.Http.GetJsonAsync("/v1/settlement/counterparties?limit=1");
        Assert.Single(list.Body!["data"]!.AsArray());
        (await w.Http.GetJsonAsync("/v1/settlement/counterparties?limit=0")).AssertProblem(400, "validation_failed");
        (await w.Http.GetJsonAsync("/v1/settlement/counterparties?after=%%%")).AssertProblem(400, "invalid_cursor");
    }

    [Fact]
    public async Task Positions_follow_the_cut_off_and_a_run_posts_one_net_transfer_per_counterparty_once()
    {
        var w = await WorldAsync();
        var d = w.Day;
        await SeedDayAsync(w, d);
        var positions = await w.Http.GetJsonAsync($"/v1/settlement/positions?business_date={SettlementWorld.Iso(d)}");
        Assert.Equal(HttpStatusCode.OK, positions.Response.StatusCode);
        var p = positions.Body!["data"]![0]!;
        Assert.Equal(10_000_000L, (long)p["credits"]!);
        Assert.Equal(3_000_000L, (long)p["debits"]!);
        Assert.Equal(2L, (long)p["count"]!);
        Assert.Equal(7_000_000L, (long)p["net"]!);
        Assert.Equal("open", (string)p["status"]!);
        Assert.Equal(SettlementWorld.At(d.AddDays(-1), 17), DateTimeOffset.Parse((string)p["window_from"]!, System.Globalization.CultureInfo.InvariantCulture));
        // The transfer after the cut-off belongs to the next business date.
        var next = (await w.Http.GetJsonAsync($"/v1/settlement/positions?business_date={SettlementWorld.Iso(d.AddDays(1))}")).Body!["data"]![0]!;
        Assert.Equal(500_000L, (long)next["credits"]!);

        var bankBefore = await w.BalanceAsync("bank-bca");
        var run = await w.Http.PostJsonAsync("/v1/settlement/runs", new { business_date = SettlementWorld.Iso(d) });
        Assert.Equal(HttpStatusCode.Created, run.Response.StatusCode);
        Assert.Equal("posted", (string)run.Body!["status"]!);
        var item = run.Body!["items"]![0]!;
        Assert.Equal($"settle:bca:{SettlementWorld.Iso(d)}", (string)item["transfer_id"]!);
        var transfer = (await w.Ledger.GetTransferAsync(w.TenantId, (string)item["transfer_id"]!, default)).Value!;
        Assert.Equal(("due-bca", "bank-bca", 7_000_000L), (transfer.DebitAccount, transfer.CreditAccount, transfer.Amount));
        Assert.Equal(bankBefore - 7_000_000, await w.BalanceAsync("bank-bca"));

        // Settled once: the same request answers the same run, the position shows it settled with nothing left over.
        var replay = await w.Http.PostJsonAsync("/v1/settlement/runs", new { business_date = SettlementWorld.Iso(d), counterparties = new[] { "bca" } });
        Assert.Equal(HttpStatusCode.OK, replay.Response.StatusCode);
        Assert.Equal((string)run.Body!["id"]!, (string)replay.Body!["id"]!);
        var after = (await w.Http.GetJsonAsync($"/v1/settlement/positions?business_date={SettlementWorld.Iso(d)}")).Body!["data"]![0]!;
        Assert.Equal(("settled", 7_000_000L, 0L), ((string)after["status"]!, (long)after["net"]!, (long)after["unsettled"]!));

        // A second counterparty: a run without a list settles only what is left; naming both now conflicts.
        Assert.True((await w.Ledger.CreateAccountAsync(w.TenantId, new CreateAccountRequest("due-gopay", "idr", "credit"), default)).Succeeded);
        Assert.Equal(HttpStatusCode.Created, (await w.Http.PostJsonAsync("/v1/settlement/counterparties", new
        {
            id = "gopay", name = "GoPay", type = "ewallet", settlement_account = "due-gopay", cash_account = "bank-bca", cutoff_local_time = "17:00", time_zone = "Asia/Jakarta",
        })).Response.StatusCode);
        await w.TransferAsync("gopay-1", "due-gopay", "alice", 1_234_500, SettlementWorld.At(d, 8));
        var second = await w.Http.PostJsonAsync("/v1/settlement/runs", new { business_date = SettlementWorld.Iso(d) });
        Assert.Equal(HttpStatusCode.Created, second.Response.StatusCode);
        var gopay = Assert.Single(second.Body!["items"]!.AsArray())!;
        Assert.Equal(("gopay", -1_234_500L), ((string)gopay["counterparty"]!, (long)gopay["net"]!));
        var both = await w.Http.PostJsonAsync("/v1/settlement/runs", new { business_date = SettlementWorld.Iso(d), counterparties = new[] { "bca", "gopay" } });
        both.AssertProblem(409, "settlement_already_run");
        Assert.Equal(2, both.Body!["runs"]!.AsArray().Count);
        (await w.Http.PostJsonAsync("/v1/settlement/runs", new { business_date = SettlementWorld.Iso(d) })).AssertProblem(409, "settlement_already_run");
        await Conservation.AssertAsync(w.Server, w.TenantId);

        // Files.
        var csv = await w.Http.GetAsync($"/v1/settlement/runs/{run.Body!["id"]}/file?format=csv");
        Assert.Equal("text/csv", csv.Content.Headers.ContentType!.MediaType);
        var rows = (await csv.Content.ReadAsStringAsync()).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, rows.Length);
        Assert.StartsWith($"{run.Body!["id"]},{SettlementWorld.Iso(d)},bca,due-bca,bank-bca,10000000,3000000,2,7000000,P,7000000,settle:bca:", rows[1], StringComparison.Ordinal);
        var fixedText = await (await w.Http.GetAsync($"/v1/settlement/runs/{second.Body!["id"]}/file?format=fixed")).Content.ReadAsStringAsync();
        var records = fixedText.Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, records.Length);
        Assert.All(records, rec => Assert.Equal(170, rec.Length));
        Assert.Equal('R', records[1][41]);
        Assert.Equal("000000000001234500", records[1].Substring(42, 18));
        Assert.StartsWith("T0000000001000000000000000000000000000001234500", records[2], StringComparison.Ordinal);
        (await w.Http.GetJsonAsync($"/v1/settlement/runs/{run.Body!["id"]}/file?format=pdf")).AssertProblem(400, "validation_failed");
        var runs = await w.Http.GetJsonAsync($"/v1/settlement/runs?business_date={SettlementWorld.Iso(d)}");
        Assert.Equal(2, runs.Body!["data"]!.AsArray().Count);
    }

    [Fact]
    public async Task A_run_is_all_or_nothing_and_a_failed_run_gives_the_date_back()
    {
        var w = await WorldAsync();
        var d = w.Day;
        Assert.True((await w.Ledger.CreateAccountAsync(w.TenantId, new CreateAccountRequest("due-ovo", "idr", "credit"), default)).Succeeded);
        Assert.True((await w.Ledger.CreateAccountAsync(w.TenantId, new CreateAccountRequest("float-ovo", "idr", "credit", Flags: ["debits_must_not_exceed_credits"]), default)).Succeeded);
        Assert.Equal(HttpStatusCode.Created, (await w.Http.PostJsonAsync("/v1/settlement/counterparties", new
        {
            id = "ovo", name = "OVO", type = "ewallet", settlement_account = "due-ovo", cash_account = "float-ovo", cutoff_local_time = "17:00", time_zone = "Asia/Jakarta",
        })).Response.StatusCode);
        await SeedDayAsync(w, d);
        // OVO owes us: its net is negative, and settling it debits a float that holds nothing.
        await w.TransferAsync("ovo-1", "due-ovo", "alice", 400_000, SettlementWorld.At(d, 9));
        var failed = await w.Http.PostJsonAsync("/v1/settlement/runs", new { business_date = SettlementWorld.Iso(d) });
        Assert.Equal(HttpStatusCode.Created, failed.Response.StatusCode);
        Assert.Equal(("failed", "insufficient_funds"), ((string)failed.Body!["status"]!, (string)failed.Body!["failure_code"]!));
        Assert.Equal(LedgerCodes.TransferNotFound, (await w.Ledger.GetTransferAsync(w.TenantId, $"settle:bca:{SettlementWorld.Iso(d)}", default)).Error!.Code);
        await Conservation.AssertAsync(w.Server, w.TenantId);

        await w.TransferAsync("fund-ovo", "alice", "float-ovo", 400_000, SettlementWorld.At(d.AddDays(1), 9));
        var retry = await w.Http.PostJsonAsync("/v1/settlement/runs", new { business_date = SettlementWorld.Iso(d) });
        Assert.Equal(HttpStatusCode.Created, retry.Response.StatusCode);
        Assert.Equal("posted", (string)retry.Body!["status"]!);
        Assert.Equal(2, retry.Body!["items"]!.AsArray().Count);
        Assert.Equal(0, await w.BalanceAsync("float-ovo"));
        await Conservation.AssertAsync(w.Server, w.TenantId);
    }

    [Fact]
    public async Task A_run_validates_its_request_and_refuses_dates_that_have_not_begun_or_are_closed()
    {
        var w = await WorldAsync();
        (await w.Http.PostJsonAsync("/v1/settlement/runs", new { business_date = "01-12-2026" })).AssertProblem(400, "validation_failed");
        (await w.Http.PostRawAsync("/v1/settlement/runs", """{"business_date":20261201}""")).AssertProblem(400, "validation_failed");
        (await w.Http.PostJsonAsync("/v1/settlement/runs", new { business_date = SettlementWorld.Iso(w.Day), counterparties = new[] { "nobody" } }))
            .AssertProblem(422, "counterparty_not_found");
        (await w.Http.PostJsonAsync("/v1/settlement/runs", new { business_date = SettlementWorld.Iso(w.Day.AddDays(30)) })).AssertProblem(422, "not_a_business_date");
        // A run through the Idempotency-Key: the retry answers the first response.
        var key = Guid.NewGuid().ToString("N");
        var first = await w.Http.PostJsonAsync("/v1/settlement/runs", new { business_date = SettlementWorld.Iso(w.Day) }, key);
        var retried = await w.Http.PostJsonAsync("/v1/settlement/runs", new { business_date = SettlementWorld.Iso(w.Day) }, key);
        Assert.Equal(HttpStatusCode.Created, first.Response.StatusCode);
        Assert.Equal((string)first.Body!["id"]!, (string)retried.Body!["id"]!);
        (await w.Http.PostJsonAsync("/v1/settlement/runs", new { business_date = SettlementWorld.Iso(w.Day.AddDays(-1)) }, key)).AssertProblem(422, "idempotency_key_reused");
        var sunday = w.Day.AddDays(-(int)w.Day.DayOfWeek - 7);
        var closedCp = JsonSerializerHelpers.ToObject(SettlementWorld.DefaultCounterparty("bca"));
        closedCp["closed_weekdays"] = new JsonArray("saturday", "sunday");
        var put = await w.Http.SendAsync(new HttpRequestMessage(HttpMethod.Put, "/v1/settlement/counterparties/bca") { Content = System.Net.Http.Json.JsonContent.Create(closedCp) });
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        (await w.Http.PostJsonAsync("/v1/settlement/runs", new { business_date = SettlementWorld.Iso(sunday), counterparties = new[] { "bca" } }))
            .AssertProblem(422, "not_a_business_date");
        (await w.Http.GetJsonAsync("/v1/settlement/positions")).AssertProblem(400, "validation_failed");
        (await w.Http.GetJsonAsync("/v1/settlement/runs/run_nope")).AssertProblem(404, "settlement_run_not_found");
    }

    [Fact]
    public async Task Another_tenant_sees_none_of_it()
    {
        var w = await WorldAsync();
        await SeedDayAsync(w, w.Day);
        var run = await w.Http.PostJsonAsync("/v1/settlement/runs", new { business_date = SettlementWorld.Iso(w.Day) });
        var other = await fixture.Server.NewTenantAsync();
        (await other.Http.GetJsonAsync("/v1/settlement/counterparties/bca")).AssertProblem(404, "counterparty_not_found");
        (await other.Http.GetJsonAsync($"/v1/settlement/runs/{run.Body!["id"]}")).AssertProblem(404, "settlement_run_not_found");
        (await other.Http.GetJsonAsync($"/v1/settlement/runs/{run.Body!["id"]}/file")).AssertProblem(404, "settlement_run_not_found");
        Assert.Empty((await other.Http.GetJsonAsync("/v1/settlement/counterparties")).Body!["data"]!.AsArray());
        Assert.Empty((await other.Http.GetJsonAsync($"/v1/settlement/positions?business_date={SettlementWorld.Iso(w.Day)}")).Body!["data"]!.AsArray());
        // Its own counterparty may not use the first tenant's accounts.
        (await other.Http.PostJsonAsync("/v1/settlement/counterparties", SettlementWorld.DefaultCounterparty())).AssertProblem(422, "counterparty_account_invalid");
        // End users never see the provider's books, not even with ledger scopes.
        var (tokenResponse, token) = await w.Http.PostJsonAsync("/v1/auth/tokens", new { subject = "user-alice", scopes = new[] { "ledger:read", "ledger:write" } });
        Assert.Equal(HttpStatusCode.Created, tokenResponse.StatusCode);
        using var endUser = fixture.Server.CreateClient();
        endUser.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", (string)token!["access_token"]!);
        (await endUser.GetJsonAsync("/v1/settlement/counterparties")).AssertProblem(403, "server_key_required");
        (await endUser.PostJsonAsync("/v1/settlement/runs", new { business_date = SettlementWorld.Iso(w.Day) })).AssertProblem(403, "server_key_required");
        (await endUser.GetJsonAsync("/v1/reconciliation/exceptions")).AssertProblem(403, "server_key_required");
        var readOnly = await fixture.Server.NewTenantAsync(Neraca.Tenancy.Scopes.LedgerRead);
        (await readOnly.Http.PostJsonAsync("/v1/settlement/runs", new { business_date = SettlementWorld.Iso(w.Day) })).AssertProblem(403, "insufficient_scope");
    }
}

public sealed class SqliteSettlementTests(SqliteServerFixture fixture) : SettlementContract(fixture), IClassFixture<SqliteServerFixture>;

public sealed class PostgresSettlementTests(PostgresServerFixture fixture) : SettlementContract(fixture), IClassFixture<PostgresServerFixture>;
