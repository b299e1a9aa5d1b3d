using System.Net.Http.Headers;
using Dapper;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Neraca.Hosting;
using Neraca.Storage;
using Neraca.Tenancy;

namespace Neraca.Demo;

/// <summary><c>neraca demo</c> and <c>neraca serve --demo</c>: seeds the tenant <c>demo</c> with 40 days of history
/// (docs/demo.md). The history is made by a short-lived server on the same database whose clock starts 40 days ago and
/// is moved forward a day at a time, so every row, transfer, job and statement carries the time it would have had;
/// that server stops gracefully at the real now, and the normal server (real clock) then takes over the database.</summary>
public static class DemoCommand
{
    public const string DefaultSqlitePath = "./data/demo.db";
    public const string OperatorKeyName = "demo-operator";

    /// <summary>The demo's database is its own (<see cref="DefaultSqlitePath"/>) unless the caller names one: a
    /// database with recent activity cannot take 40 days of history (the clock would go backwards).</summary>
    public static string[] WithDemoDefaults(string[] args)
    {
        static bool Named(string[] args, string option) =>
            args.Any(a => a.Equals(option, StringComparison.OrdinalIgnoreCase) || a.StartsWith(option + "=", StringComparison.OrdinalIgnoreCase));
        var named = Named(args, "--database") || Named(args, "--sqlite-path")
            || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NERACA_DATABASE"))
            || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NERACA_SQLITE_PATH"));
        // A demo pays out through the built-in payout sandbox unless a provider is configured (also on PostgreSQL).
        string[] demo = [.. args, "--Payouts:AllowBuiltInSandbox=true"];
        return named ? demo : [.. demo, "--sqlite-path", DefaultSqlitePath];
    }

    /// <summary>Seeds the demo unless it is there already. Returns the operator key when this call made it, or null.</summary>
    /// <exception cref="DemoException">The database cannot take the demo, or a step of the story was refused.</exception>
    public static async Task<string?> SeedAsync(string[] args, TextWriter output, CancellationToken ct)
    {
        var end = DateTimeOffset.UtcNow;
        var start = DemoSeeder.StartFor(end);
        await using (var probe = NeracaApp.Create([.. args, "--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:Neraca.Storage.StorageStartup=Error"]))
        {
            SettingsCheck.ValidateAll(probe.Services);
            await probe.Services.GetRequiredService<StorageStartup>().MigrateAsync(ct);
            var database = probe.Services.GetRequiredService<Database>();
            await using var c = await database.OpenAsync(ct);
            var tenant = await c.ExecuteScalarAsync<long>(new CommandDefinition("SELECT count(*) FROM tenants WHERE id = @id",
                new { id = DemoSeeder.TenantId }, cancellationToken: ct));
            var complete = await c.ExecuteScalarAsync<long>(new CommandDefinition("SELECT count(*) FROM api_keys WHERE tenant_id = @id AND name = @name",
                new { id = DemoSeeder.TenantId, name = OperatorKeyName }, cancellationToken: ct));
            if (complete > 0)
            {
                output.WriteLine($"The demo tenant '{DemoSeeder.TenantId}' is already seeded in {database.Description}: nothing changed.");
                output.WriteLine("  Its operator API key was printed by the run that seeded it (keys are stored hashed, so it cannot be shown again);");
                output.WriteLine("  make another with: neraca demo --new-operator-key");
                return null;
            }
            if (tenant > 0)
                throw new DemoException($"An earlier demo run on {database.Description} stopped before it finished (tenant '{DemoSeeder.TenantId}' exists " +
                    "but has no operator key). The demo cannot resume a history half told: start again on a new database (delete the SQLite " +
                    "file, or drop and create the PostgreSQL database).");
            // The latest time the database has seen: every change of money or product state appends an event (posted
            // transfers included), and the scheduler stamps its schedules. Ledger tables are the ledger's to read.
            var latestUs = await c.ExecuteScalarAsync<long?>(new CommandDefinition("""
                SELECT max(v) FROM (
                    SELECT max(created_at_us) AS v FROM events WHERE tenant_id <> @id
                    UNION ALL SELECT max(created_at_us) FROM jobs WHERE tenant_id <> @id
                    UNION ALL SELECT max(updated_at_us) FROM job_schedules) x
                """, new { id = DemoSeeder.TenantId }, cancellationToken: ct));
            if (latestUs is { } us && DbTime.FromMicros(us) > start)
                throw new DemoException($"{database.Description} already holds activity from {DbTime.FromMicros(us):yyyy-MM-dd HH:mm} UTC, after the demo's " +
                    $"simulated start ({start:yyyy-MM-dd HH:mm} UTC). The demo tells the last {DemoSeeder.Days} days on a clock that starts then and only " +
                    "moves forward, and this database has already seen later times. Run it on a database of its own: by default " +
                    $"{DefaultSqlitePath}, or --sqlite-path PATH / --database CONN naming a new one.");
            output.WriteLine($"Seeding the demo tenant '{DemoSeeder.TenantId}' into {database.Description}: {DemoSeeder.Days} days of history on a simulated clock " +
                $"from {start:yyyy-MM-dd HH:mm} UTC...");
        }

        using var clock = new SimulatedClock(start);
        string[] simulated =
        [
            // Every role in this one process, whatever the caller's server runs: the story needs its jobs.
            .. args, "--urls", "http://127.0.0.1:0", "--role", "api,worker,scheduler",
            // The story's host runs every job at once instead of spreading it over hours of its simulated day.
            "--Wellness:EmployerSpreadSeconds=0", "--Jobs:PollIntervalMs=100", "--Jobs:SchedulerIntervalMs=500",
            "--Jobs:Recurring:ewa.nightly:SpreadWindowSeconds=0", "--Jobs:Recurring:banking.statements.monthly:SpreadWindowSeconds=0",
            "--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:Microsoft.Hosting.Lifetime=Warning",
            // The clock jumps a day at a time: the scheduler skips all but the last slots of the day, and a job running
            // across a jump loses its lease to another worker, which finishes it (as after an outage). Expected here.
            "--Logging:LogLevel:Neraca.Jobs.JobScheduler=Error", "--Logging:LogLevel:Neraca.Jobs.JobWorker=Error",
            // The story's one withdrawal to an unknown account fails on purpose.
            "--Logging:LogLevel:Neraca.Wellness.Withdrawals.WithdrawalService=Error",
        ];
        await using var host = NeracaApp.Create(simulated, clock.Time);
        await host.Services.GetRequiredService<StorageStartup>().PrepareAsync(ct);
        await host.StartAsync(ct);
        try
        {
            var tenants = host.Services.GetRequiredService<TenantStore>();
            await tenants.CreateTenantAsync(DemoSeeder.TenantId, "Neraca demo", ct);
            var seederKey = ApiKey.Generate();
            await tenants.AddKeyAsync(DemoSeeder.TenantId, "demo-seeder", seederKey, [Scopes.Admin], end.AddHours(1), ct);
            using var http = new HttpClient { BaseAddress = new Uri(Address(host)), Timeout = TimeSpan.FromSeconds(120) };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", seederKey);
            var api = new DemoApi(http);
            var started = DateTime.UtcNow;
            await new DemoSeeder(api, clock, end, output).RunAsync();

            // Made last: the operator's key marks the demo complete.
            var key = await api.PostAsync("/v1/api-keys", new { name = OperatorKeyName, scopes = new[] { Scopes.Admin } }, "operator-key");
            var seeder = (await api.GetAsync("/v1/api-keys?limit=100"))["data"]!.AsArray().First(k => (string?)k!["name"] == "demo-seeder")!;
            await api.PostAsync($"/v1/api-keys/{(string)seeder["id"]!}/revoke", new { }, "seeder-revoke");
            output.WriteLine($"Seeded in {(DateTime.UtcNow - started).TotalSeconds:F0} s.");
            return (string)key["key"]!;
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }
    }

    /// <summary>A new operator key for the demo tenant (<c>neraca demo --new-operator-key</c>).</summary>
    public static async Task<string> NewOperatorKeyAsync(WebApplication app, CancellationToken ct)
    {
        await app.Services.GetRequiredService<StorageStartup>().MigrateAsync(ct);
        var database = app.Services.GetRequiredService<Database>();
        await using (var c = await database.OpenAsync(ct))
            if (await c.ExecuteScalarAsync<long>(new CommandDefinition("SELECT count(*) FROM tenants WHERE id = @id", new { id = DemoSeeder.TenantId },
                    cancellationToken: ct)) == 0)
                throw new DemoException($"{database.Description} holds no demo tenant: run neraca demo first.");
        var key = ApiKey.Generate();
        await app.Services.GetRequiredService<TenantStore>().AddKeyAsync(DemoSeeder.TenantId, OperatorKeyName, key, [Scopes.Admin], null, ct);
        return key;
    }

    /// <summary>Where to look, printed once the normal server runs: one-time sign-in links (minted with a key that lives
    /// ten minutes and is revoked right after), the operator console, the API reference and the metrics.</summary>
    public static async Task PrintWhereToLookAsync(WebApplication app, string url, string? operatorKey, TextWriter output, CancellationToken ct)
    {
        var tenants = app.Services.GetRequiredService<TenantStore>();
        var key = ApiKey.Generate();
        await tenants.AddKeyAsync(DemoSeeder.TenantId, "demo-sign-in-links", key, [Scopes.Admin],
            app.Services.GetRequiredService<TimeProvider>().GetUtcNow().AddMinutes(10), ct);
        using var http = new HttpClient { BaseAddress = new Uri(Address(app)), Timeout = TimeSpan.FromSeconds(30) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var api = new DemoApi(http);
        var links = new List<(string Who, string Link)>();
        foreach (var (who, subject, scopes) in SignIns)
        {
            var code = await api.PostAsync("/v1/web/sign-in-codes", new { subject, scopes }, null);
            links.Add((who, url + (string)code["url"]!));
        }
        var self = (await api.GetAsync("/v1/api-keys?limit=100"))["data"]!.AsArray().Last(k => (string?)k!["name"] == "demo-sign-in-links")!;
        await api.PostAsync($"/v1/api-keys/{(string)self["id"]!}/revoke", new { }, null);

        output.WriteLine();
        output.WriteLine($"Demo tenant '{DemoSeeder.TenantId}' (docs/demo.md). Sign in to the web app (each link works once, for 5 minutes):");
        foreach (var (who, link) in links) output.WriteLine($"  {who,-36} {link}");
        output.WriteLine(operatorKey is null
            ? $"  {"Operator (console)",-36} {url}/operator/sign-in with the demo's operator API key (printed when it was seeded; new one: neraca demo --new-operator-key)"
            : $"  {"Operator (console)",-36} {url}/operator/sign-in with this API key (shown only this once; store it now):\n      {operatorKey}");
        output.WriteLine($"  {"API reference",-36} {url}/docs   (OpenAPI: {url}/openapi/v1.json; use the operator key as Bearer token)");
        output.WriteLine($"  {"Metrics",-36} {url}/metrics");
        output.WriteLine("  New sign-in links: restart with --demo (nothing is seeded twice), or POST /v1/web/sign-in-codes with the operator key.");
    }

    /// <summary>Who the demo signs in, as end users of the web app.</summary>
    public static readonly (string Who, string Subject, string[] Scopes)[] SignIns =
    [
        ("Employee (earned wage access)", DemoSeeder.EmployeeSubject(DemoSeeder.Nusantara, DemoSeeder.DemoEmployee), [Scopes.EwaRead, Scopes.EwaWrite]),
        ("Employer HR (PT Nusantara Logistik)", DemoSeeder.HrSubject(DemoSeeder.Nusantara), [Scopes.EwaRead, Scopes.EwaWrite]),
        ("Split-bill user (Ana)", "ana", [Scopes.SplitRead, Scopes.SplitWrite, Scopes.LedgerRead]),
        ("Bank customer (Budi)", "budi", [Scopes.BankingRead, Scopes.BankingWrite, Scopes.LedgerRead]),
    ];

    /// <summary>What <c>neraca demo</c> prints after seeding (the sign-in links need the running server).</summary>
    public static int PrintSeeded(string? operatorKey, TextWriter output)
    {
        if (operatorKey is not null)
            output.WriteLine($"""

                The demo's operator API key (web console and API), shown only this once; store it now:
                  {operatorKey}
                """);
        output.WriteLine("""
            Start the server on the same database with `neraca serve --demo` (and the same --database / --sqlite-path):
            it prints one-time sign-in links for an employee, an employer's HR admin, a split-bill user and a bank customer,
            the operator console, the API reference and the metrics. docs/demo.md tells what is where.
            """);
        return 0;
    }

    public static int PrintNewOperatorKey(string key, TextWriter output)
    {
        output.WriteLine($"A new operator API key for the demo tenant '{DemoSeeder.TenantId}' (shown only this once; store it now):\n  {key}");
        return 0;
    }

    static string Address(WebApplication app)
    {
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return address.Replace("://0.0.0.0:", "://127.0.0.1:", StringComparison.Ordinal).Replace("://[::]:", "://127.0.0.1:", StringComparison.Ordinal);
    }
}
