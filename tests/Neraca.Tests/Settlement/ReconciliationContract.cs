using System.Net;
using System.Text.Json.Nodes;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Ledger;

namespace Neraca.Tests.Settlement;

/// <summary>Statement import, matching and the exception queue over HTTP, on both stores (classes at the end).</summary>
public abstract class ReconciliationContract(ServerFixture fixture)
{
    Task<SettlementWorld> WorldAsync() => SettlementWorld.CreateAsync(fixture);

    static void AssertSampleMatches(Dictionary<int, JsonNode> lines)
    {
        Assert.Equal(Samples.Mt940Lines, lines.Count);
        var expected = new Dictionary<int, (string Status, string? Rule, string[] Transfers)>
        {
            [1] = ("matched", "exact_reference", ["topup-0001"]),
            [2] = ("matched", "exact_reference", ["topup-0002"]),
            [3] = ("matched", "amount_date", ["topup-0003"]),
            [4] = ("matched", "amount_date", ["fee-2611"]),
            [5] = ("matched", "exact_reference", ["topup-0004"]),
            [6] = ("matched", "exact_reference", ["rev-topup-0004"]),
            [7] = ("matched", "many_to_one", ["BATCH0142-01", "BATCH0142-02", "BATCH0142-03"]),
            [8] = ("exception", null, []),
            [9] = ("exception", null, []),
        };
        foreach (var (no, (status, rule, transfers)) in expected)
        {
            var line = lines[no];
            Assert.True((string)line["status"]! == status, $"line {no}: {line.ToJsonString()}");
            Assert.Equal(rule, (string?)line["rule"]);
            Assert.Equal(transfers, line["transfer_ids"]!.AsArray().Select(t => (string)t!).ToArray());
        }
        Assert.Equal(-650_000L, (long)lines[4]["amount"]!);
        Assert.Equal(-5_000_000L, (long)lines[6]["amount"]!);
    }

    [Fact]
    public async Task Mt940_import_matches_by_rule_queues_exceptions_and_resolutions_keep_the_books_balanced()
    {
        var w = await WorldAsync();
        await Samples.SeedTransfersAsync(w, w.Day, extraUnbooked: true);
        var file = Samples.Mt940(w.Day);
        var statement = await w.ImportAndMatchAsync(file, "text/plain");
        var id = (string)statement["id"]!;
        Assert.Equal(("mt940", "exceptions", 9L, 7L, 2L), ((string)statement["format"]!, (string)statement["status"]!, (long)statement["line_count"]!,
            (long)statement["matched_count"]!, (long)statement["exception_count"]!));
        Assert.Equal((100_000_000L, 179_084_567L), ((long)statement["opening_balance"]!, (long)statement["closing_balance"]!));
        Assert.Equal("BCAIIDJA/0123456789", (string)statement["account_ref"]!);
        AssertSampleMatches(await w.LinesAsync(id));

        // Re-importing the same file is a no-op that answers the first import.
        var again = await w.ImportAsync(file, "text/plain");
        Assert.Equal(HttpStatusCode.OK, again.Response.StatusCode);
        Assert.Equal(id, (string)again.Body!["id"]!);
        Assert.Single((await w.Http.GetJsonAsync("/v1/reconciliation/statements")).Body!["data"]!.AsArray());

        var open = await w.ExceptionsAsync("&status=open");
        Assert.Equal(2, open.Count);
        var duplicate = open.Single(e => (int)e["line_no"]! == 8);
        var unknown = open.Single(e => (int)e["line_no"]! == 9);
        Assert.Equal(("unmatched_line", 25_000_000L, "INV-7781"), ((string)duplicate["kind"]!, (long)duplicate["amount"]!, (string)duplicate["reference"]!));

        // Manual match must add up, may not reuse a matched transfer, and unknown actions are refused.
        (await w.Http.PostJsonAsync($"/v1/reconciliation/exceptions/{duplicate["id"]}/resolve", new { action = "match", transfer_ids = new[] { "topup-0003" } }))
            .AssertProblem(422, "match_invalid");
        (await w.Http.PostJsonAsync($"/v1/reconciliation/exceptions/{duplicate["id"]}/resolve", new { action = "match", transfer_ids = new[] { "topup-0002" } }))
            .AssertProblem(409, "transfer_already_matched");
        (await w.Http.PostJsonAsync($"/v1/reconciliation/exceptions/{duplicate["id"]}/resolve", new { action = "delete" })).AssertProblem(400, "validation_failed");
        (await w.Http.PostJsonAsync($"/v1/reconciliation/exceptions/{duplicate["id"]}/resolve", new { action = "match" })).AssertProblem(400, "validation_failed");

        var ignored = await w.Http.PostJsonAsync($"/v1/reconciliation/exceptions/{duplicate["id"]}/resolve", new { action = "ignore", note = "bank sent it twice" });
        Assert.Equal(HttpStatusCode.OK, ignored.Response.StatusCode);
        Assert.Equal(("resolved", "ignore"), ((string)ignored.Body!["status"]!, (string)ignored.Body!["resolution"]!));
        var ignoredAgain = await w.Http.PostJsonAsync($"/v1/reconciliation/exceptions/{duplicate["id"]}/resolve", new { action = "ignore" });
        Assert.Equal(HttpStatusCode.OK, ignoredAgain.Response.StatusCode);
        (await w.Http.PostJsonAsync($"/v1/reconciliation/exceptions/{duplicate["id"]}/resolve", new { action = "write_off" })).AssertProblem(409, "exception_already_resolved");

        var suspenseBefore = await w.BalanceAsync("suspense");
        var bankBefore = await w.BalanceAsync("bank-bca");
        var writeOff = await w.Http.PostJsonAsync($"/v1/reconciliation/exceptions/{unknown["id"]}/resolve", new { action = "write_off", note = "unidentified credit" });
        Assert.Equal(HttpStatusCode.OK, writeOff.Response.StatusCode);
        var adjustment = $"recon:{unknown["id"]}:writeoff";
        Assert.Equal(adjustment, (string)writeOff.Body!["transfer_ids"]![0]!);
        Assert.Equal(bankBefore + 1_234_567, await w.BalanceAsync("bank-bca"));
        Assert.Equal(suspenseBefore - 1_234_567, await w.BalanceAsync("suspense"));
        var lines = await w.LinesAsync(id);
        Assert.Equal(("ignored", "matched", "write_off"), ((string)lines[8]["status"]!, (string)lines[9]["status"]!, (string)lines[9]["rule"]!));

        // Every line is settled now: the ledger transfer no line explains becomes an exception.
        var matched = (await w.Http.GetJsonAsync($"/v1/reconciliation/statements/{id}")).Body!;
        Assert.Equal("matched", (string)matched["status"]!);
        Assert.NotNull((string?)matched["fully_matched_at"]);
        var transferException = await Polling.Eventually(async () => (await w.ExceptionsAsync("&status=open")).SingleOrDefault(),
            e => e is not null, "an exception for the unbooked transfer topup-0005");
        Assert.Equal(("unmatched_transfer", "topup-0005", 9_900_000L), ((string)transferException!["kind"]!, (string)transferException["transfer_id"]!,
            (long)transferException["amount"]!));
        (await w.Http.PostJsonAsync($"/v1/reconciliation/exceptions/{transferException["id"]}/resolve", new { action = "match", transfer_ids = new[] { "topup-0005" } }))
            .AssertProblem(422, "resolution_not_applicable");
        var takenBack = await w.Http.PostJsonAsync($"/v1/reconciliation/exceptions/{transferException["id"]}/resolve", new { action = "write_off" });
        Assert.Equal(HttpStatusCode.OK, takenBack.Response.StatusCode);
        Assert.Equal(bankBefore + 1_234_567 - 9_900_000, await w.BalanceAsync("bank-bca"));
        await Conservation.AssertAsync(w.Server, w.TenantId);

        // Nothing left open, and the write-offs are not flagged by a later sweep.
        var reimport = await w.ImportAsync(file, "text/plain");
        Assert.Equal(HttpStatusCode.OK, reimport.Response.StatusCode);
        Assert.Empty(await w.ExceptionsAsync("&status=open"));
        Assert.Equal(3, (await w.ExceptionsAsync("&status=resolved")).Count);
    }

    [Theory]
    [InlineData("08")]
    [InlineData("02")]
    public async Task Camt053_import_streams_entries_and_matches_like_mt940(string version)
    {
        var w = await WorldAsync();
        await Samples.SeedTransfersAsync(w, w.Day);
        var statement = await w.ImportAndMatchAsync(Samples.Camt053(w.Day, version), "application/xml");
        Assert.Equal(("camt053", "0123456789", $"STMT{SettlementWorld.Yymmdd(w.Day)}01"), ((string)statement["format"]!, (string)statement["account_ref"]!,
            (string)statement["statement_ref"]!));
        AssertSampleMatches(await w.LinesAsync((string)statement["id"]!));
        var line6 = (await w.LinesAsync((string)statement["id"]!))[6];
        Assert.StartsWith("[reversal]", (string)line6["description"]!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_statement_that_breaks_its_format_or_its_balances_changes_nothing_and_names_the_line()
    {
        var w = await WorldAsync();
        var malformed = Samples.Mt940Malformed(w.Day);
        var expectedLine = malformed.Split('\n').ToList().FindIndex(l => l.Contains("D65OO", StringComparison.Ordinal)) + 1;
        var bad = await w.ImportAsync(malformed, "text/plain");
        bad.AssertProblem(422, "statement_invalid");
        Assert.Equal(expectedLine, (int)bad.Body!["line"]!);
        var unbalanced = await w.ImportAsync(Samples.Mt940Unbalanced(w.Day), "text/plain");
        unbalanced.AssertProblem(422, "statement_unbalanced");
        Assert.Equal(179_084_567L, (long)unbalanced.Body!["expected_closing_balance"]!);
        (await w.ImportAsync(Samples.Camt053(w.Day, closing: "1790845.68"), "application/xml")).AssertProblem(422, "statement_unbalanced");
        var badXml = await w.ImportAsync(Samples.Camt053(w.Day).Replace("<CdtDbtInd>DBIT</CdtDbtInd>", "<CdtDbtInd>DEBIT</CdtDbtInd>", StringComparison.Ordinal), "application/xml");
        badXml.AssertProblem(422, "statement_invalid");
        Assert.Equal("Ntry/CdtDbtInd", (string)badXml.Body!["element"]!);
        Assert.True((int)badXml.Body!["line"]! > 10);
        (await w.ImportAsync(Samples.Camt053(w.Day).Replace("camt.053.001.08", "camt.054.001.08", StringComparison.Ordinal), "application/xml"))
            .AssertProblem(422, "statement_format_unsupported");
        (await w.ImportAsync(Samples.Camt053(w.Day).Replace("IDR", "USD", StringComparison.Ordinal), "application/xml"))
            .AssertProblem(422, "statement_currency_mismatch");
        Assert.Empty((await w.Http.GetJsonAsync("/v1/reconciliation/statements")).Body!["data"]!.AsArray());
    }

    [Fact]
    public async Task Hostile_input_is_refused_with_a_stable_code()
    {
        var w = await WorldAsync();
        const string billionLaughs = """
            <?xml version="1.0"?>
            <!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
            <Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>&lol2;</BkToCstmrStmt></Document>
            """;
        (await w.ImportAsync(billionLaughs, "application/xml")).AssertProblem(422, "statement_invalid");
        const string xxe = """
            <?xml version="1.0"?>
            <!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>
            <Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">&x;</Document>
            """;
        (await w.ImportAsync(xxe, "application/xml")).AssertProblem(422, "statement_invalid");
        (await w.ImportAsync("<Document", "application/xml")).AssertProblem(422, "statement_invalid");
        (await w.ImportAsync(":20:X\n:25:Y\n:60F:C261301IDR1,00\n", "text/plain")).AssertProblem(422, "statement_invalid");
        (await w.ImportAsync(new string('x', 20_000), "text/plain")).AssertProblem(422, "statement_invalid");
        (await w.ImportAsync(":20:A\n:99:B\n", "text/plain")).AssertProblem(422, "statement_invalid");
        (await w.ImportAsync("", "text/plain")).AssertProblem(422, "statement_invalid");
        (await w.ImportAsync("{}", "application/json")).AssertProblem(415, "unsupported_media_type");
        (await w.ImportAsync(Samples.Mt940(w.Day), "text/plain", counterparty: "nobody")).AssertProblem(422, "counterparty_not_found");
        (await w.Http.PostRawAsync("/v1/reconciliation/statements", Samples.Mt940(w.Day), "text/plain")).AssertProblem(400, "validation_failed");
        var amountOverflow = Samples.Mt940(w.Day).Replace("C12345,67NTRF", "C99999999999999999999,00NTRF", StringComparison.Ordinal);
        (await w.ImportAsync(amountOverflow, "text/plain")).AssertProblem(422, "statement_invalid");
        var tooManyDecimals = Samples.Mt940(w.Day).Replace("C12345,67NTRF", "C12345,678NTRF", StringComparison.Ordinal);
        (await w.ImportAsync(tooManyDecimals, "text/plain")).AssertProblem(422, "statement_invalid");
        (await w.Http.GetJsonAsync("/v1/reconciliation/statements/stm_nope/lines")).AssertProblem(404, "statement_not_found");
        (await w.Http.GetJsonAsync("/v1/reconciliation/exceptions?status=maybe")).AssertProblem(400, "validation_failed");
        (await w.Http.PostJsonAsync("/v1/reconciliation/exceptions/exc_nope/resolve", new { action = "ignore" })).AssertProblem(404, "exception_not_found");
        (await w.Http.PostRawAsync("/v1/reconciliation/exceptions/exc_nope/resolve", """{"action":"ignore","extra":true}""")).AssertProblem(400, "validation_failed");
    }

    [Fact]
    public async Task Csv_statements_use_the_counterpartys_mapping_and_multipart_uploads_work()
    {
        var w = await WorldAsync();
        await w.TransferAsync("topup-0001", "bank-bca", "alice", 15_000_000, SettlementWorld.At(w.Day, 9), new { end_to_end_id = "E2E-0001" });
        await w.TransferAsync("cash-1", "bank-bca", "bob", 7_500_000, SettlementWorld.At(w.Day, 10));
        await w.TransferAsync("fee-1", "fees", "bank-bca", 650_000, SettlementWorld.At(w.Day, 11));
        var broken = await w.UploadAsync("mutasi.csv", Samples.Csv(w.Day, lastBalance: "1180000,01"), "text/csv");
        broken.AssertProblem(422, "statement_unbalanced");
        Assert.Equal(5, (int)broken.Body!["line"]!);
        var upload = await w.UploadAsync("mutasi.csv", Samples.Csv(w.Day), null);
        Assert.Equal(HttpStatusCode.Created, upload.Response.StatusCode);
        var id = (string)upload.Body!["id"]!;
        Assert.Equal(("csv", 100_000_000L, 118_000_000L), ((string)upload.Body!["format"]!, (long)upload.Body!["opening_balance"]!, (long)upload.Body!["closing_balance"]!));
        await Polling.Eventually(async () => (string?)(await w.Http.GetJsonAsync($"/v1/reconciliation/statements/{id}")).Body!["status"] == "exceptions", "csv matched");
        var lines = await w.LinesAsync(id);
        Assert.Equal("TOPUP VA 8808123; ALICE", (string)lines[1]["description"]!);
        Assert.Equal("KOREKSI \"MANUAL\"", (string)lines[4]["description"]!);
        Assert.Equal(new[] { "matched", "matched", "matched", "exception" }, lines.OrderBy(l => l.Key).Select(l => (string)l.Value["status"]!).ToArray());
        // A counterparty without a mapping cannot take CSV.
        Assert.Equal(HttpStatusCode.Created, (await w.Http.PostJsonAsync("/v1/settlement/counterparties", new
        {
            id = "mandiri", name = "Bank Mandiri", type = "bank", settlement_account = "due-bca", cash_account = "bank-bca", cutoff_local_time = "16:00", time_zone = "Asia/Jakarta",
        })).Response.StatusCode);
        (await w.ImportAsync(Samples.Csv(w.Day.AddDays(-1)), "text/csv", counterparty: "mandiri")).AssertProblem(422, "csv_mapping_required");
    }

    [Fact]
    public async Task Another_tenant_sees_no_statement_line_or_exception()
    {
        var w = await WorldAsync();
        await Samples.SeedTransfersAsync(w, w.Day);
        var statement = await w.ImportAndMatchAsync(Samples.Mt940(w.Day), "text/plain");
        var exception = (await w.ExceptionsAsync()).First();
        var other = await fixture.Server.NewTenantAsync();
        (await other.Http.GetJsonAsync($"/v1/reconciliation/statements/{statement["id"]}")).AssertProblem(404, "statement_not_found");
        (await other.Http.GetJsonAsync($"/v1/reconciliation/statements/{statement["id"]}/lines")).AssertProblem(404, "statement_not_found");
        (await other.Http.GetJsonAsync($"/v1/reconciliation/exceptions/{exception["id"]}")).AssertProblem(404, "exception_not_found");
        (await other.Http.PostJsonAsync($"/v1/reconciliation/exceptions/{exception["id"]}/resolve", new { action = "ignore" })).AssertProblem(404, "exception_not_found");
        Assert.Empty((await other.Http.GetJsonAsync("/v1/reconciliation/exceptions")).Body!["data"]!.AsArray());
        // The same file in another tenant is that tenant's own statement (and its counterparty must exist there).
        (await other.Http.PostRawAsync("/v1/reconciliation/statements?counterparty=bca", Samples.Mt940(w.Day), "text/plain")).AssertProblem(422, "counterparty_not_found");
    }
}

public sealed class SqliteReconciliationTests(SqliteServerFixture fixture) : ReconciliationContract(fixture), IClassFixture<SqliteServerFixture>;

public sealed class PostgresReconciliationTests(PostgresServerFixture fixture) : ReconciliationContract(fixture), IClassFixture<PostgresServerFixture>;
