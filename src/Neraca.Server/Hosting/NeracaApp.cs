using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Microsoft.AspNetCore.Authorization;
using Neraca.Auth;
using Neraca.Banking;
using Neraca.Caching;
using Neraca.Demo;
using Neraca.Events;
using Neraca.Idempotency;
using Neraca.Jobs;
using Neraca.Ledger;
using Neraca.Observability;
using Neraca.Payouts;
using Neraca.RateLimiting;
using Neraca.Security;
using Neraca.Settlement;
using Neraca.SplitBill;
using Neraca.Storage;
using Neraca.Tenancy;
using Neraca.Wellness;
using Neraca.Web;

namespace Neraca.Hosting;

/// <summary>Builds the one Neraca binary: <c>serve</c> (default), <c>migrate</c>, <c>tenant create</c>.</summary>
public static class NeracaApp
{
    public const string DefaultUrl = "http://127.0.0.1:5080";

    static readonly Dictionary<string, string> SwitchMappings = new(StringComparer.OrdinalIgnoreCase)
    {
        ["--database"] = nameof(NeracaOptions.Database),
        ["--read-database"] = nameof(NeracaOptions.ReadDatabase),
        ["--sqlite-path"] = nameof(NeracaOptions.SqlitePath),
        ["--role"] = nameof(NeracaOptions.Role),
        ["--bootstrap-api-key"] = nameof(NeracaOptions.BootstrapApiKey),
    };

    /// <summary>Builds the web application with every capability this process's roles need. Tests call this too.
    /// <paramref name="time"/> replaces the system clock for every reading and timer (the demo's simulated history).</summary>
    public static WebApplication Create(string[] args, TimeProvider? time = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.AddInMemoryCollection(NeracaEnvironment());
        builder.Configuration.AddCommandLine(args, SwitchMappings);
        if (string.IsNullOrEmpty(builder.Configuration["urls"]) && string.IsNullOrEmpty(builder.Configuration["ASPNETCORE_URLS"]))
            builder.WebHost.UseUrls(DefaultUrl);

        builder.AddServiceDefaults();
        builder.AddStorage();
        builder.AddTenancy();
        builder.AddCaching();
        builder.AddRateLimits();
        builder.AddAuth();
        builder.AddFieldEncryption();
        builder.AddIdempotency();
        builder.AddLedger();
        builder.AddJobs();
        builder.AddEvents();
        builder.AddObservability();
        builder.AddPayouts();
        builder.AddWellness();
        builder.AddSplitBill();
        builder.AddBanking();
        builder.AddSettlement();
        builder.AddWeb();
        if (time is not null)
        {
            builder.Services.RemoveAll<TimeProvider>();
            builder.Services.AddSingleton(time);
        }

        var app = builder.Build();
        app.UseServiceDefaults();
        app.UseAuthentication();
        // Before the gate: callers without valid credentials are limited per IP too, so key guessing gets 429s.
        app.UseRateLimits();
        // Everything under /v1 needs a key, also routes that do not exist: an anonymous caller learns nothing.
        // Only endpoints marked AllowAnonymous (refreshing an end user's token) are open.
        app.UseWhen(c => c.Request.Path.StartsWithSegments("/v1"), v1 => v1.Use(async (context, next) =>
        {
            if (context.User.Identity?.IsAuthenticated != true && context.GetEndpoint()?.Metadata.GetMetadata<IAllowAnonymous>() is null)
            {
                await context.ChallengeAsync();
                return;
            }
            await next(context);
        }));
        app.UseAuthorization();
        // From here on, every statement of the request is confined to the caller's tenant (row-level security).
        app.Use(async (context, next) =>
        {
            if (context.User.FindFirst(NeracaClaims.TenantId)?.Value is not { Length: > 0 } tenant)
            {
                await next(context);
                return;
            }
            using (TenantScope.Enter(tenant)) await next(context);
        });
        // A caller's reads after its own writes skip a replica that has not replayed them yet.
        app.Use((context, next) => context.RequestServices.GetRequiredService<ReadYourWrites>().InvokeAsync(context, next));
        app.UseIdempotency();
        app.MapWeb();
        app.MapLedger();
        app.MapJobsApi();
        app.MapAuthApi();
        app.MapEventsApi();
        app.MapObservabilityApi();
        app.MapPayouts();
        app.MapWellness();
        app.MapSplitBill();
        app.MapBanking();
        app.MapSettlement();
        return app;
    }

    /// <summary><c>NERACA_BOOTSTRAP_API_KEY</c> → <c>BootstrapApiKey</c>, <c>NERACA_LEDGER__BATCH_OPERATIONS_MAX</c> →
    /// <c>Ledger:BatchOperationsMax</c>, <c>NERACA_JOBS__RECURRING__ledger.expire_pending__CRON</c> →
    /// <c>Jobs:Recurring:ledger.expire_pending:Cron</c>: the rules are in <see cref="EnvironmentSettings"/>. Any setting
    /// can also come from a file (a mounted secret): <c>NERACA_BOOTSTRAP_API_KEY_FILE=/run/secrets/key</c> sets
    /// <c>BootstrapApiKey</c> to the file's content (without its final line break), and wins over <c>NERACA_BOOTSTRAP_API_KEY</c>.</summary>
    static IEnumerable<KeyValuePair<string, string?>> NeracaEnvironment()
    {
        var variables = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .Select(e => ((string)e.Key, (string?)e.Value)).ToList();
        foreach (var (name, value) in variables)
            if (EnvironmentSettings.ToFileConfigurationKey(name) is null && EnvironmentSettings.ToConfigurationKey(name) is { } key)
                yield return new(key, value);
        foreach (var (name, value) in variables)
            if (EnvironmentSettings.ToFileConfigurationKey(name) is { } key)
                yield return new(key, ReadSettingFile(name, value));
    }

    static string ReadSettingFile(string variable, string? path)
    {
        try
        {
            return File.ReadAllText(path ?? "").TrimEnd('\r', '\n');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new OptionsValidationException(variable, typeof(NeracaOptions), [$"{variable}: cannot read '{path}': {e.Message}"]);
        }
    }

    public static async Task<int> RunAsync(string[] args)
    {
        var command = args.Length > 0 && !args[0].StartsWith('-') ? args[0] : "serve";
        var rest = command == "serve" && (args.Length == 0 || args[0].StartsWith('-')) ? args : args[1..];
        // `demo` seeds the demo tenant and exits; `serve --demo` seeds it (once) and serves (docs/demo.md).
        var demo = command == "demo" || (command == "serve" && rest.Contains("--demo", StringComparer.OrdinalIgnoreCase));
        var newOperatorKey = command == "demo" && rest.Contains("--new-operator-key", StringComparer.OrdinalIgnoreCase);
        if (demo)
            rest = DemoCommand.WithDemoDefaults(rest.Where(a => !a.Equals("--demo", StringComparison.OrdinalIgnoreCase)
                && !a.Equals("--new-operator-key", StringComparison.OrdinalIgnoreCase)).ToArray());
        try
        {
            string? operatorKey = null;
            if (demo && !newOperatorKey) operatorKey = await DemoCommand.SeedAsync(rest, Console.Out, CancellationToken.None);
            await using var app = Create(rest);
            SettingsCheck.ValidateAll(app.Services); // every setting, naming the bad ones, before any command opens the database
            return command switch
            {
                "serve" when demo => await ServeAsync(app, url => DemoCommand.PrintWhereToLookAsync(app, url, operatorKey, Console.Out, CancellationToken.None)),
                "serve" => await ServeAsync(app),
                "demo" when newOperatorKey => DemoCommand.PrintNewOperatorKey(await DemoCommand.NewOperatorKeyAsync(app, CancellationToken.None), Console.Out),
                "demo" => DemoCommand.PrintSeeded(operatorKey, Console.Out),
                "migrate" => await MigrateAsync(app),
                "tenant" => await TenantAsync(app, rest),
                "audit" => await AuditAsync(app, rest),
                "sandbox" => await Payouts.Sandbox.SandboxHost.RunAsync(rest),
                _ => Usage($"Unknown command '{command}'."),
            };
        }
        catch (OptionsValidationException e)
        {
            await Console.Error.WriteLineAsync("Invalid configuration: " + string.Join(" ", e.Failures));
            return 2;
        }
        catch (InvalidOperationException e) when (SettingsCheck.IsBindingFailure(e))
        {
            await Console.Error.WriteLineAsync("Invalid configuration: " + e.Message);
            return 2;
        }
        catch (MigrationException e)
        {
            await Console.Error.WriteLineAsync("Migration error: " + e.Message);
            return 3;
        }
        catch (DemoException e)
        {
            await Console.Error.WriteLineAsync("Demo: " + e.Message);
            return 1;
        }
    }

    static int Usage(string error)
    {
        Console.Error.WriteLine(error);
        Console.Error.WriteLine("""
            Usage: neraca [serve] [--role api,worker,scheduler] [--database CONN] [--urls URL] [--demo]
                   neraca demo [--database CONN | --sqlite-path PATH] [--new-operator-key]   (docs/demo.md)
                   neraca migrate [--database CONN]
                   neraca tenant create ID [--name NAME]
                   neraca audit verify [--tenant ID] [--ledger CODE]   (exit code 1 when a chain does not verify)
                   neraca sandbox payouts --port N [...]   (the payout provider sandbox; docs/payouts.md)
            """);
        return 64;
    }

    /// <summary>Serves until shut down; <paramref name="afterStart"/> runs once the server listens, with its URL.</summary>
    static async Task<int> ServeAsync(WebApplication app, Func<string, Task>? afterStart = null)
    {
        var startup = app.Services.GetRequiredService<StorageStartup>();
        await startup.PrepareAsync(app.Lifetime.ApplicationStopping);
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
            var url = addresses.FirstOrDefault() ?? DefaultUrl;
            var database = app.Services.GetRequiredService<Database>();
            Console.WriteLine($"""
                Neraca is running on {url} ({database.Description})
                  API reference: {url}/docs     OpenAPI: {url}/openapi/v1.json
                  Health:        {url}/health/live   {url}/health/ready
                """);
        });
        if (afterStart is null)
        {
            await app.RunAsync();
            return 0;
        }
        await app.StartAsync();
        var listening = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault() ?? DefaultUrl;
        await afterStart(listening);
        await app.WaitForShutdownAsync();
        return 0;
    }

    static async Task<int> MigrateAsync(WebApplication app)
    {
        var applied = await app.Services.GetRequiredService<StorageStartup>().MigrateAsync(CancellationToken.None);
        var database = app.Services.GetRequiredService<Database>();
        Console.WriteLine(applied.Count == 0
            ? $"{database.Description}: schema is up to date."
            : $"{database.Description}: applied {applied.Count} migration(s): {string.Join(", ", applied)}.");
        return 0;
    }

    /// <summary>Offline verification of the audit hash chains, straight from the database.</summary>
    static async Task<int> AuditAsync(WebApplication app, string[] args)
    {
        if (args.Length < 1 || args[0] != "verify") return Usage("Expected: audit verify [--tenant ID] [--ledger CODE]");
        var failed = await LedgerModule.VerifyAuditChainsAsync(app.Services, app.Configuration["tenant"], app.Configuration["ledger"], Console.Out,
            CancellationToken.None);
        return failed == 0 ? 0 : 1;
    }

    static async Task<int> TenantAsync(WebApplication app, string[] args)
    {
        if (args.Length < 2 || args[0] != "create") return Usage("Expected: tenant create ID [--name NAME]");
        var id = args[1];
        if (!Ids.IsValid(id)) return Usage("A tenant id is 1-64 characters of A-Z a-z 0-9 . _ : -");
        var name = app.Configuration["name"] ?? id;
        await app.Services.GetRequiredService<StorageStartup>().MigrateAsync(CancellationToken.None);
        var tenants = app.Services.GetRequiredService<TenantStore>();
        if (!await tenants.CreateTenantAsync(id, name, CancellationToken.None))
            return Usage($"Tenant '{id}' already exists.");
        var key = ApiKey.Generate();
        await tenants.AddKeyAsync(id, "admin", key, [Scopes.Admin], null, CancellationToken.None);
        Console.WriteLine($"Created tenant '{id}'. Its admin API key (shown once, store it now):\n  {key}");
        return 0;
    }
}
