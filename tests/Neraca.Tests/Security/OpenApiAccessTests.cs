using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Neraca.Tenancy;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Ledger;

namespace Neraca.Tests.Security;

/// <summary>Access control for every operation of the server's OpenAPI document, so an endpoint added tomorrow is covered
/// without new test code (#20): each operation names the scopes it needs (<c>x-neraca-scopes</c>) or says it is anonymous;
/// a key holding every other scope gets 403 on it; and another tenant's key asking for this tenant's ids gets exactly the
/// answer it gets for ids that exist nowhere (status and code), and changes nothing.</summary>
public sealed class OpenApiAccessTests(SqliteServerFixture fixture) : IClassFixture<SqliteServerFixture>
{
    const string Seeded = "x1";
    const string Nobody = "zz-nobody-9";

    sealed record Operation(string Method, string Path, string[] Scopes, bool Anonymous)
    {
        public override string ToString() => $"{Method} {Path}";
    }

    // Operations any authenticated caller may use whatever its scopes: none today. One added without a scope policy fails
    // the test until it gets one, or is listed here on purpose.
    static readonly string[] Unscoped = [];

    [Fact]
    public async Task Every_operation_names_its_scopes_and_a_key_holding_all_the_others_gets_403()
    {
        var operations = await OperationsAsync();
        Assert.Equal(Unscoped, operations.Where(o => o.Scopes.Length == 0 && !o.Anonymous).Select(o => o.ToString()).Order(StringComparer.Ordinal));

        var failures = new List<string>();
        var checkedOps = 0;
        foreach (var group in operations.Where(o => o.Scopes.Length > 0).GroupBy(o => string.Join(' ', o.Scopes)))
        {
            var others = Scopes.All.Where(s => s != Scopes.Admin && !group.First().Scopes.Contains(s)).ToArray();
            var tenant = await fixture.Server.NewTenantAsync(others);
            foreach (var op in group)
            {
                var (status, code) = await AnswerAsync(tenant.Http, op, Seeded);
                checkedOps++;
                if (status != 403) failures.Add($"{op} (needs {group.Key}): {status} {code} for a key with {string.Join(' ', others)}");
            }
        }
        Assert.True(failures.Count == 0, $"{failures.Count} operations did not refuse a key without their scope:\n" + string.Join('\n', failures));
        Assert.True(checkedOps > 50, $"only {checkedOps} operations checked");
    }

    [Fact]
    public async Task Another_tenants_key_learns_nothing_from_this_tenants_ids_and_changes_nothing()
    {
        var owner = await fixture.Server.NewTenantAsync();
        await SeedAsync(owner.Http);
        var before = await SnapshotAsync(owner.Http);
        var stranger = await fixture.Server.NewTenantAsync();

        var failures = new List<string>();
        var ownerSees = new List<string>();
        foreach (var op in (await OperationsAsync()).Where(o => o.Path.Contains('{', StringComparison.Ordinal) && !o.Anonymous))
        {
            var theirs = await AnswerAsync(stranger.Http, op, Seeded);
            // An operation on the caller's own namespace (revoking its subject "x1") may succeed for both: still nothing learnt,
            // and the owner's snapshot below shows nothing of the owner's changed.
            var nobodys = await AnswerAsync(stranger.Http, op, Nobody);
            if (theirs != nobodys) failures.Add($"{op}: {theirs} for the other tenant's ids, {nobodys} for ids nobody has");
            if (op.Method == "GET" && (await AnswerAsync(owner.Http, op, Seeded)).Status == 200) ownerSees.Add(op.ToString());
        }
        Assert.True(failures.Count == 0, $"{failures.Count} answers told the other tenant something:\n" + string.Join('\n', failures));
        // The comparison means something only if the owner's ids are real: the owner reads them on many operations.
        Assert.True(ownerSees.Count >= 15, $"the owner read its own seeded ids on only {ownerSees.Count} operations: {string.Join(", ", ownerSees)}");
        Assert.Equal(before, await SnapshotAsync(owner.Http));
        await Conservation.AssertAsync(fixture.Server, owner.Id);
    }

    async Task<List<Operation>> OperationsAsync()
    {
        using var anonymous = fixture.Server.CreateClient();
        var document = (await anonymous.GetJsonAsync("/openapi/v1.json")).Body!;
        return (from path in document["paths"]!.AsObject()
                from method in path.Value!.AsObject()
                let scopes = method.Value!["x-neraca-scopes"]?.AsArray().Select(s => (string)s!).ToArray() ?? []
                select new Operation(method.Key.ToUpperInvariant(), path.Key, scopes, method.Value!["x-neraca-anonymous"] is not null)).ToList();
    }

    /// <summary>Status and problem code of the operation with every path parameter set to <paramref name="id"/>, and an
    /// empty JSON object as the body of a write. Headers only: a stream answers at once and then stays open.</summary>
    static async Task<(int Status, string? Code)> AnswerAsync(HttpClient http, Operation op, string id)
    {
        var target = OpenApiHostileInputTests.Fill(op.Path, _ => id);
        using var request = new HttpRequestMessage(new HttpMethod(op.Method), target);
        if (op.Method is "POST" or "PUT" or "PATCH") request.Content = new StringContent("{}", Encoding.UTF8, "application/json");
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, deadline.Token);
        string? code = null;
        if (response.Content.Headers.ContentType?.MediaType == "application/problem+json")
            code = (string?)JsonNode.Parse(await response.Content.ReadAsStringAsync(deadline.Token))?["code"];
        return ((int)response.StatusCode, code);
    }

    /// <summary>Something named <c>x1</c> in every product where that is one call: a ledger, its account and transfer,
    /// a split-bill group with a member and an expense, an EWA employer, a banking customer, a settlement counterparty.</summary>
    static async Task SeedAsync(HttpClient http)
    {
        var ledger = new LedgerClient(http);
        await ledger.LedgerAsync(Seeded);
        await ledger.AccountAsync("x1-bank", ledger: Seeded, normal: "debit");
        await ledger.AccountAsync(Seeded, ledger: Seeded);
        Assert.Equal(HttpStatusCode.Created, (await ledger.TransferAsync(Seeded, "x1-bank", Seeded, 1_000)).Response.StatusCode);
        await CreatedAsync(http, "/v1/split/groups", new
        {
            id = Seeded, name = "Kos", currency = "IDR", members = new object[] { new { id = Seeded, name = "Ana" }, new { id = "m2", name = "Budi" } },
        });
        await CreatedAsync(http, $"/v1/split/groups/{Seeded}/expenses", new
        {
            id = Seeded, description = "Makan", amount = 2_000, paid_by = new[] { new { member = Seeded, amount = 2_000 } }, split = new { mode = "equal" },
        });
        await CreatedAsync(http, "/v1/ewa/employers", new { id = Seeded, name = "PT Satu", payday_day = 25 });
        await CreatedAsync(http, "/v1/customers", new { id = Seeded, name = "Sari Dewi", kyc_level = "basic", phone = "+6281200000001" });
        await CreatedAsync(http, "/v1/settlement/counterparties", new
        {
            id = Seeded, name = "Bank Satu", type = "bank", settlement_account = Seeded, cash_account = "x1-bank",
            cutoff_local_time = "16:00", time_zone = "Asia/Jakarta",
        });
    }

    static async Task CreatedAsync(HttpClient http, string path, object body)
    {
        var r = await http.PostJsonAsync(path, body);
        Assert.True(r.Response.StatusCode == HttpStatusCode.Created, $"{path}: {r.Body?.ToJsonString()}");
    }

    static async Task<string> SnapshotAsync(HttpClient http)
    {
        var text = new StringBuilder();
        foreach (var list in new[]
        {
            "/v1/ledgers", "/v1/accounts?limit=200", "/v1/transfers?limit=200", $"/v1/split/groups/{Seeded}", $"/v1/split/groups/{Seeded}/expenses",
            $"/v1/ewa/employers/{Seeded}", $"/v1/customers/{Seeded}", $"/v1/settlement/counterparties/{Seeded}",
        })
        {
            var r = await http.GetJsonAsync(list);
            text.Append(list).Append(' ').Append((int)r.Response.StatusCode).Append(' ').Append(r.Body?.ToJsonString()).Append('\n');
        }
        return text.ToString();
    }
}
