using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Neraca.Demo;
using Neraca.Ledger;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Ledger;
using Neraca.Tests.Web;

namespace Neraca.Tests.Demo;

/// <summary>A database the demo seeded (<c>neraca demo</c>: 40 simulated days through the products' APIs), then the
/// normal server on it with the real clock, as <c>neraca serve --demo</c> runs them.</summary>
public abstract class DemoFixture(StoreKind kind) : IAsyncLifetime
{
    NeracaServer? _server;

    public StoreKind Kind { get; } = kind;
    public string Database { get; private set; } = "";
    public string OperatorKey { get; private set; } = "";
    public string Output { get; private set; } = "";
    public NeracaServer Server => _server ?? throw new InvalidOperationException("fixture not started");
    public HttpClient Http { get; private set; } = default!;

    public async ValueTask InitializeAsync()
    {
        Database = await TestStores.NewDatabaseAsync(Kind);
        var output = new StringWriter();
        OperatorKey = await DemoCommand.SeedAsync(DemoCommand.WithDemoDefaults(["--database", Database]), output, CancellationToken.None)
            ?? throw new InvalidOperationException("a first run made no operator key:\n" + output);
        Output = output.ToString();
        _server = await NeracaServer.StartAsync(Database);
        Http = _server.CreateClient(OperatorKey);
    }

    public async ValueTask DisposeAsync()
    {
        Http?.Dispose();
        if (_server is not null) await _server.DisposeAsync();
    }
}

public sealed class SqliteDemoFixture() : DemoFixture(StoreKind.Sqlite);

public sealed class PostgresDemoFixture() : DemoFixture(StoreKind.Postgres);

public abstract class DemoContract(DemoFixture fixture)
{
    protected DemoFixture Fixture => fixture;
    HttpClient Http => fixture.Http;

    async Task<JsonNode> GetAsync(string path)
    {
        var (response, body) = await Http.GetJsonAsync(path);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET {path}: {(int)response.StatusCode} {body?.ToJsonString()}");
        return body!;
    }

    protected static IEnumerable<JsonNode> Data(JsonNode page) => page["data"]!.AsArray().Select(x => x!);

    [Fact]
    public async Task Every_product_holds_its_story_told_over_forty_simulated_days()
    {
        Assert.Contains("closed by the nightly job", fixture.Output, StringComparison.Ordinal);

        // Earned wage access: two employers, 250 employees, a closed payday with its deduction report, withdrawals paid
        // and one failed at the sandbox (its legs reversed).
        var employers = Data(await GetAsync("/v1/ewa/employers")).Select(e => (string)e["id"]!).Order().ToList();
        Assert.Equal([DemoSeeder.Nusantara, DemoSeeder.Sinar], employers);
        var employees = 0;
        var withdrawals = new List<JsonNode>();
        foreach (var employer in employers)
        {
            string? after = null;
            do
            {
                var page = await GetAsync($"/v1/ewa/employers/{employer}/employees?limit=200" + (after is null ? "" : "&after=" + after));
                employees += Data(page).Count();
                after = (string?)page["next_cursor"];
            } while (after is not null);
            var closed = Data(await GetAsync($"/v1/ewa/employers/{employer}/cycles")).Single(c => (string?)c["status"] == "closed");
            Assert.True((long)closed["recovered"]! > 0, closed.ToJsonString());
            var (deductions, csv) = await Http.GetJsonAsync($"/v1/ewa/employers/{employer}/cycles/{(string)closed["payday"]!}/deductions?format=csv");
            Assert.Equal(HttpStatusCode.OK, deductions.StatusCode);
            var from = DateOnly.FromDateTime(DateTime.UtcNow).AddDays(-DemoSeeder.Days - 2).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
            var to = DateOnly.FromDateTime(DateTime.UtcNow).AddDays(2).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
            withdrawals.AddRange(Data(await GetAsync($"/v1/ewa/employers/{employer}/reports/withdrawals?from={from}&to={to}")));
        }
        Assert.Equal(250, employees);
        Assert.True(withdrawals.Count(w => (string?)w["status"] == "paid") > 100, $"{withdrawals.Count} withdrawals");
        var failed = Assert.Single(withdrawals, w => (string?)w["status"] == "failed");
        Assert.Equal(DemoSeeder.FailingEmployee, (string?)failed["employee_id"]);
        Assert.All(withdrawals, w => Assert.Contains((string?)w["status"], new[] { "paid", "failed" }));

        // Split bills: three groups, every split mode, a US dollar expense and a processed receipt, settled by wallet and cash.
        var groups = Data(await GetAsync("/v1/split/groups")).Select(g => (string)g["id"]!).Order().ToList();
        Assert.Equal(["kos-tebet", DemoSeeder.BaliGroup, "makan-siang"], groups);
        var bali = Data(await GetAsync($"/v1/split/groups/{DemoSeeder.BaliGroup}/expenses")).ToList();
        Assert.Equal(["equal", "exact", "itemized", "percent", "shares"], bali.Select(e => (string)e["split"]!["mode"]!).Distinct().Order());
        Assert.Contains(bali, e => (string?)e["currency"] == "USD");
        Assert.Equal("ready", (string?)bali.Single(e => (string?)e["id"] == "bebek-bengil")["receipt"]!["status"]);
        var settlements = Data(await GetAsync($"/v1/split/groups/{DemoSeeder.BaliGroup}/settlements")).ToList();
        Assert.Equal(["cash", "wallet"], settlements.Select(s => (string)s["method"]!).Order());

        // Banking: last month's statement of every wallet, holds captured, expired and active, a withdrawal that succeeded.
        var lastMonth = new DateOnly(DateTime.UtcNow.Year, DateTime.UtcNow.Month, 1).AddMonths(-1).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        var statements = Data(await GetAsync("/v1/accounts/acc-ana/statements")).ToList();
        Assert.Contains(statements, s => (string?)s["from"] == lastMonth && (string?)s["status"] == "ready");
        Assert.Equal("expired", (string?)(await GetAsync("/v1/accounts/acc-budi/holds/hold-hotel"))["status"]);
        Assert.Equal("captured", (string?)(await GetAsync("/v1/accounts/acc-ana/holds/hold-rental"))["status"]);
        Assert.Equal("active", (string?)(await GetAsync("/v1/accounts/acc-citra/holds/hold-deposit"))["status"]);
        Assert.Equal("succeeded", (string?)(await GetAsync("/v1/accounts/acc-dewi/withdrawals/wd-dewi-1"))["status"]);
        var history = Data(await GetAsync("/v1/accounts/acc-ana/transactions?limit=200")).ToList();
        Assert.True(history.Count > 20, $"{history.Count} history lines");

        // Reconciliation: BCA's statement matched line by line, and the fee nobody booked waits in the queue.
        var exception = Assert.Single(Data(await GetAsync("/v1/reconciliation/exceptions?status=open")));
        Assert.Contains("ADM-", exception.ToJsonString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Books_balance_and_every_audit_chain_verifies_on_every_ledger_the_demo_created()
    {
        await Conservation.AssertAsync(fixture.Server, DemoSeeder.TenantId);
        var ledgers = Data(await GetAsync("/v1/ledgers")).Select(l => (string)l["id"]!).ToList();
        Assert.True(ledgers.Count >= 3, $"{ledgers.Count} ledgers"); // ewa-idr, bank-idr, recon-idr
        foreach (var ledger in ledgers)
        {
            var audit = await GetAsync($"/v1/ledgers/{ledger}/audit");
            Assert.True((bool)audit["verified"]!, audit.ToJsonString());
        }
        var output = new StringWriter();
        Assert.Equal(0, await LedgerModule.VerifyAuditChainsAsync(fixture.Server.Services, DemoSeeder.TenantId, null, output, CancellationToken.None));

        // The jobs of the simulated days, the nightly audit verification among them (it ran while money moved), all finished.
        Assert.Empty(Data(await GetAsync("/v1/jobs?state=dead")).Select(j => j.ToJsonString()));
        Assert.NotEmpty(Data(await GetAsync("/v1/jobs?state=succeeded&type=audit.verify")));
    }

    [Fact]
    public async Task A_second_run_changes_nothing_and_says_where_the_credentials_were_shown()
    {
        var before = await SnapshotAsync();
        var output = new StringWriter();
        Assert.Null(await DemoCommand.SeedAsync(DemoCommand.WithDemoDefaults(["--database", fixture.Database]), output, CancellationToken.None));
        Assert.Contains("already seeded", output.ToString(), StringComparison.Ordinal);
        Assert.Contains("neraca demo --new-operator-key", output.ToString(), StringComparison.Ordinal);
        Assert.Equal(before, await SnapshotAsync());
    }

    /// <summary>What the demo tenant holds: row counts of every product table and every account's balances.</summary>
    async Task<string> SnapshotAsync()
    {
        var database = fixture.Server.Services.GetRequiredService<Database>();
        await using var c = await database.OpenAsync(CancellationToken.None);
        var lines = new List<string>();
        foreach (var table in new[]
                 {
                     "transfers", "accounts", "ewa_employees", "ewa_attendance", "ewa_withdrawals", "ewa_cycles", "ewa_deductions", "split_groups",
                     "split_expenses", "split_settlements", "banking_customers", "banking_payments", "banking_holds", "banking_withdrawals",
                     "banking_statements", "recon_statements", "recon_lines", "recon_exceptions", "payouts", "events",
                 })
            lines.Add($"{table}: {await c.ExecuteScalarAsync<long>($"SELECT count(*) FROM {table} WHERE tenant_id = @t", new { t = DemoSeeder.TenantId })}");
        lines.AddRange(await c.QueryAsync<string>("""
            SELECT id || ' ' || debits_posted || ' ' || credits_posted || ' ' || debits_pending || ' ' || credits_pending FROM accounts
            WHERE tenant_id = @t ORDER BY id
            """, new { t = DemoSeeder.TenantId }));
        return string.Join("\n", lines);
    }
}

public sealed class SqliteDemoTests(SqliteDemoFixture fixture) : DemoContract(fixture), IClassFixture<SqliteDemoFixture>
{
    /// <summary>One journey through the seeded data in a real browser: the employer's HR admin finds the closed payday
    /// and its deductions; the employee sees what they earned and their paid withdrawals.</summary>
    [Fact]
    public async Task An_employer_and_an_employee_find_the_seeded_history_in_the_web_app()
    {
        await using var browser = await Chromium.LaunchAsync();
        var payday = (string)Data((await Fixture.Http.GetJsonAsync($"/v1/ewa/employers/{DemoSeeder.Nusantara}/cycles")).Body!)
            .Single(c => (string?)c["status"] == "closed")["payday"]!;
        async Task<string> LinkAsync(string subject)
        {
            var code = await Fixture.Http.PostJsonAsync("/v1/web/sign-in-codes", new { subject, scopes = new[] { "ewa:read", "ewa:write" } });
            Assert.Equal(HttpStatusCode.Created, code.Response.StatusCode);
            return (string)code.Body!["url"]!;
        }
        await using (var hr = await BrowserJourney.StartAsync(browser, Fixture.Server.BaseAddress, "demo-employer"))
            await hr.RunAsync(async j =>
            {
                Assert.Equal(200, await j.GotoAsync(await LinkAsync(DemoSeeder.HrSubject(DemoSeeder.Nusantara))));
                Assert.Equal(200, await j.ClickAndWaitAsync("main form button[type=submit]"));
                Assert.Equal(200, await j.GotoAsync($"/app/ewa/employers/{DemoSeeder.Nusantara}/cycles"));
                Assert.Contains("Closed", await j.TextAsync($"[data-testid=cycles] tr[data-cycle='{payday}']"), StringComparison.Ordinal);
                Assert.Equal(200, await j.GotoAsync($"/app/ewa/employers/{DemoSeeder.Nusantara}/roster"));
                Assert.Contains("N001", await j.TextAsync("[data-testid=employees]"), StringComparison.Ordinal);
            });
        await using (var employee = await BrowserJourney.StartAsync(browser, Fixture.Server.BaseAddress, "demo-employee", "id-ID"))
            await employee.RunAsync(async j =>
            {
                Assert.Equal(200, await j.GotoAsync(await LinkAsync(DemoSeeder.EmployeeSubject(DemoSeeder.Nusantara, DemoSeeder.DemoEmployee))));
                Assert.Equal(200, await j.ClickAndWaitAsync("main form button[type=submit]"));
                Assert.Equal(200, await j.GotoAsync("/app/ewa"));
                Assert.StartsWith("Rp ", await j.TextAsync("[data-testid=ewa-earned]"), StringComparison.Ordinal);
                Assert.NotEmpty(await j.TextsAsync("[data-testid=withdrawals] tbody tr"));
                Assert.Contains("Dibayar", await j.TextAsync("[data-testid=withdrawals]"), StringComparison.Ordinal);
            });
    }

    /// <summary>A database that has seen later times than the story's start cannot take its history: refused, unchanged.</summary>
    [Fact]
    public async Task A_database_with_recent_activity_is_refused_with_a_clear_message()
    {
        var database = await TestStores.NewDatabaseAsync(StoreKind.Sqlite);
        await using (var server = await NeracaServer.StartAsync(database))
            await Polling.Eventually(async () =>
            {
                await using var c = await server.Services.GetRequiredService<Database>().OpenAsync(CancellationToken.None);
                return await c.ExecuteScalarAsync<long>("SELECT count(*) FROM job_schedules") > 0;
            }, "the scheduler registers its schedules");
        var e = await Assert.ThrowsAsync<DemoException>(() =>
            DemoCommand.SeedAsync(DemoCommand.WithDemoDefaults(["--database", database]), TextWriter.Null, CancellationToken.None));
        Assert.Contains("after the demo's simulated start", e.Message, StringComparison.Ordinal);
        Assert.Contains("database of its own", e.Message, StringComparison.Ordinal);
    }
}

public sealed class PostgresDemoTests(PostgresDemoFixture fixture) : DemoContract(fixture), IClassFixture<PostgresDemoFixture>;
