using System.Collections;
using System.Globalization;
using System.Net;
using System.Reflection;
using System.Text;
using Dapper;
using Neraca.Auth;
using Neraca.Caching;
using Neraca.Events;
using Neraca.Hosting;
using Neraca.Idempotency;
using Neraca.Jobs;
using Neraca.Ledger;
using Neraca.Observability;
using Neraca.RateLimiting;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;
using Npgsql;

namespace Neraca.Tests.Hosting;

/// <summary>Settings from the environment, and bad settings refused before the database is touched.</summary>
public sealed class SettingsTests
{
    [Theory]
    [InlineData("NERACA_BOOTSTRAP_API_KEY", "BOOTSTRAPAPIKEY")]
    [InlineData("NERACA_LEDGER__BATCH_OPERATIONS_MAX", "LEDGER:BATCHOPERATIONSMAX")]
    [InlineData("NERACA_Ledger__BatchOperationsMax", "Ledger:BatchOperationsMax")]
    [InlineData("NERACA_JOBS__RECURRING__ledger.expire_pending__CRON", "JOBS:RECURRING:ledger.expire_pending:CRON")]
    [InlineData("NERACA_JOBS__TYPES__idempotency.prune__ITEMS_PER_SECOND_MAX", "JOBS:TYPES:idempotency.prune:ITEMSPERSECONDMAX")]
    [InlineData("NERACA_RATE_LIMITS__TENANTS__ACME_BANK__API_KEY_PER_MINUTE", "RATELIMITS:TENANTS:ACME_BANK:APIKEYPERMINUTE")]
    [InlineData("NERACA_LOGGING__LOG_LEVEL__Neraca.Jobs", "LOGGING:LOGLEVEL:Neraca.Jobs")]
    [InlineData("NERACA_OBSERVABILITY__METRICS__BEARER_TOKEN", "OBSERVABILITY:METRICS:BEARERTOKEN")]
    public void Environment_names_map_to_settings_keeping_dictionary_keys_as_written(string variable, string key) =>
        Assert.Equal(key, EnvironmentSettings.ToConfigurationKey(variable));

    [Theory]
    [InlineData("PATH")]
    [InlineData("NERACA_")]
    [InlineData("NERACAX_DATABASE")]
    public void Other_variables_are_not_settings(string variable) => Assert.Null(EnvironmentSettings.ToConfigurationKey(variable));

    static readonly (string Section, Type Options)[] Sections =
    [
        ("", typeof(NeracaOptions)), ("Ledger", typeof(LedgerOptions)), ("Jobs", typeof(JobsOptions)), ("Events", typeof(EventsOptions)),
        ("Auth", typeof(AuthOptions)), ("Observability", typeof(ObservabilityOptions)), ("RateLimits", typeof(RateLimitOptions)),
        ("Redis", typeof(RedisOptions)), ("Cache", typeof(CacheOptions)), ("Idempotency", typeof(IdempotencyOptions)),
    ];

    [Fact]
    public void Every_setting_has_an_environment_name_in_the_documented_form()
    {
        const string key = "some.key_with_Underscores"; // a dictionary key as awkward as they come
        var checkedSettings = 0;
        foreach (var (section, type) in Sections)
            foreach (var (path, variable) in Settings(section.Length == 0 ? [] : [section], type, key))
            {
                var mapped = EnvironmentSettings.ToConfigurationKey(variable);
                Assert.True(mapped is not null && Same(path, mapped), $"{variable} maps to {mapped}, not {path}");
                checkedSettings++;
            }
        Assert.True(checkedSettings > 60, $"only {checkedSettings} settings found");

        // Setting names compare case-insensitively, dictionary keys exactly.
        static bool Same(string path, string mapped) => path.Split(':').Zip(mapped.Split(':')).All(p =>
            p.First.Contains('_', StringComparison.Ordinal) ? p.First == p.Second : string.Equals(p.First, p.Second, StringComparison.OrdinalIgnoreCase))
            && path.Split(':').Length == mapped.Split(':').Length;
    }

    /// <summary>Each leaf setting below <paramref name="type"/> with its configuration path and its environment variable
    /// written as the README says (upper case, words separated by single underscores, sections by double ones).</summary>
    static IEnumerable<(string Path, string Variable)> Settings(List<string> path, Type type, string key)
    {
        foreach (var p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite))
        {
            var t = Nullable.GetUnderlyingType(p.PropertyType) ?? p.PropertyType;
            List<string> here = [.. path, p.Name];
            if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(Dictionary<,>))
            {
                var value = t.GetGenericArguments()[1];
                if (IsLeaf(value)) yield return Leaf([.. here, key]);
                else foreach (var s in Settings([.. here, key], value, key)) yield return s;
            }
            else if (IsLeaf(t) || typeof(IEnumerable).IsAssignableFrom(t)) yield return Leaf(here);
            else foreach (var s in Settings(here, t, key)) yield return s;
        }

        static bool IsLeaf(Type t) => t.IsPrimitive || t.IsEnum || t == typeof(string) || t == typeof(decimal) || t == typeof(TimeSpan);

        (string, string) Leaf(List<string> segments) => (string.Join(':', segments),
            "NERACA_" + string.Join("__", segments.Select(s => s == key ? s : Snake(s))));
    }

    static string Snake(string name)
    {
        var b = new StringBuilder();
        for (var i = 0; i < name.Length; i++)
        {
            if (i > 0 && char.IsUpper(name[i]) && !char.IsUpper(name[i - 1])) b.Append('_');
            b.Append(char.ToUpperInvariant(name[i]));
        }
        return b.ToString();
    }

    [Fact]
    public async Task Server_process_takes_a_schedule_whose_name_has_underscores_from_the_environment()
    {
        var database = await TestStores.NewDatabaseAsync(StoreKind.Sqlite);
        await using var server = await ServerProcess.StartAsync([], new Dictionary<string, string>
        {
            ["NERACA_DATABASE"] = database,
            ["NERACA_BOOTSTRAP_API_KEY"] = NeracaServer.BootstrapKey,
            ["NERACA_JOBS__SCHEDULER_INTERVAL_MS"] = "100",
            // Every second instead of the default every ten minutes; other schedules off so only this one enqueues.
            ["NERACA_JOBS__RECURRING__ledger.expire_pending__CRON"] = "* * * * * *",
            ["NERACA_JOBS__RECURRING__audit.checkpoint__ENABLED"] = "false",
            ["NERACA_JOBS__RECURRING__idempotency.prune__ENABLED"] = "false",
        });
        using var http = server.CreateClient(NeracaServer.BootstrapKey); // the key came from the environment too

        var slots = await Polling.Eventually(async () =>
        {
            var page = await http.GetJsonAsync($"/v1/jobs?type={ExpirePendingTransfersJob.TypeName}&limit=100");
            Assert.Equal(HttpStatusCode.OK, page.Response.StatusCode);
            return page.Body!["data"]!.AsArray()
                .Select(j => DateTimeOffset.Parse((string)j!["slot"]!, CultureInfo.InvariantCulture)).Order().ToList();
        }, s => s.Count >= 3, "three slots of ledger.expire_pending");

        Assert.All(slots.Zip(slots.Skip(1)), p => Assert.Equal(TimeSpan.FromSeconds(1), p.Second - p.First));
    }

    [Theory]
    [InlineData(StoreKind.Sqlite, "NERACA_JOBS__RECURRING__ledger.expire_pending__CRON", "every night", "Jobs:Recurring:ledger.expire_pending")]
    [InlineData(StoreKind.Postgres, "NERACA_JOBS__RECURRING__ledger.expire_pending__CRON", "every night", "Jobs:Recurring:ledger.expire_pending")]
    [InlineData(StoreKind.Sqlite, "NERACA_BOOTSTRAP_API_KEY", "secret", "BootstrapApiKey")]
    [InlineData(StoreKind.Postgres, "NERACA_BOOTSTRAP_API_KEY", "secret", "BootstrapApiKey")]
    [InlineData(StoreKind.Postgres, "NERACA_JOBS__LEASE_SECONDS", "soon", "Jobs:LeaseSeconds")]
    [InlineData(StoreKind.Postgres, "NERACA_EVENTS__RABBIT_MQ_URL", "http://broker", "RabbitMqUrl")]
    [InlineData(StoreKind.Sqlite, "NERACA_LEDGER__BATCH_OPERATIONS_MAX", "0", "BatchOperationsMax")]
    public async Task A_bad_setting_stops_start_up_before_any_migration_touches_the_database(StoreKind kind, string variable, string value, string named)
    {
        var database = await TestStores.NewDatabaseAsync(kind);
        if (kind == StoreKind.Sqlite) await File.WriteAllBytesAsync(database["sqlite:".Length..], []);

        var (output, exitCode) = await ProcessRunner.RunForExitAsync("dotnet", [ServerProcess.ServerDll, "--urls", "http://127.0.0.1:0"],
            env: new Dictionary<string, string> { ["NERACA_DATABASE"] = database, [variable] = value });

        Assert.Equal(2, exitCode);
        Assert.Contains("Invalid configuration", output, StringComparison.Ordinal);
        Assert.Contains(named, output, StringComparison.Ordinal);
        if (kind == StoreKind.Sqlite)
        {
            Assert.Equal(0, new FileInfo(database["sqlite:".Length..]).Length);
            return;
        }
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        Assert.Equal(0L, await connection.ExecuteScalarAsync<long>(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"));
        Assert.Null(await connection.ExecuteScalarAsync<string?>("SELECT to_regclass('public.schema_migrations')::text"));
    }
}
