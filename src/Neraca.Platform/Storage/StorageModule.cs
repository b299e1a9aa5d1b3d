using Microsoft.Extensions.Options;
using Neraca.Hosting;
using Neraca.Tenancy;

namespace Neraca.Storage;

public static class StorageModule
{
    public static WebApplicationBuilder AddStorage(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<NeracaOptions>>().Value;
            return Database.Create(o);
        });
        builder.Services.AddSingleton<ReadYourWrites>();
        // The one place a store kind becomes SQL: every store takes the dialect instead of testing Database.Kind.
        builder.Services.AddSingleton(sp => SqlDialect.For(sp.GetRequiredService<Database>()));
        builder.Services.AddMigrations(typeof(StorageModule).Assembly);
        builder.Services.AddSingleton(sp => new MigrationRunner(sp.GetRequiredService<Database>(), sp.GetRequiredService<SqlDialect>(),
            MigrationRunner.Embedded(sp.GetRequiredService<SqlDialect>().Kind, sp.GetServices<MigrationAssembly>().Select(m => m.Assembly)),
            sp.GetRequiredService<ILogger<MigrationRunner>>(), sp.GetRequiredService<TimeProvider>()));
        builder.Services.AddSingleton<StorageStartup>();
        return builder;
    }

    /// <summary>Registers the migrations a capability's assembly embeds (both stores). Each capability calls this in its
    /// own <c>AddXxx</c>; the runner applies them all, in version order, under one lock.</summary>
    public static IServiceCollection AddMigrations(this IServiceCollection services, System.Reflection.Assembly assembly)
    {
        services.AddSingleton(new MigrationAssembly(assembly));
        return services;
    }
}

/// <summary>An assembly whose embedded <c>Migrations/{postgres,sqlite}/*.sql</c> belong to the schema.</summary>
public sealed record MigrationAssembly(System.Reflection.Assembly Assembly);

/// <summary>What runs before the server takes traffic: migrations, then the first tenant, both under the migration lock
/// so replicas starting together do each exactly once.</summary>
public sealed partial class StorageStartup(MigrationRunner runner, TenantStore tenants, IOptions<NeracaOptions> options, ILogger<StorageStartup> logger)
{
    public Task<IReadOnlyList<int>> MigrateAsync(CancellationToken ct) => runner.ApplyAsync(ct, BootstrapAsync);

    /// <summary>Migrates (or checks the schema), waiting up to <see cref="NeracaOptions.DatabaseStartupWaitSeconds"/>
    /// for a database that is unavailable: a replica started during a database restart or failover must come up once
    /// the database does, not crash (the fault-injection suite found one exiting with an unhandled connection error).</summary>
    public async Task PrepareAsync(CancellationToken ct)
    {
        var deadline = DateTime.UtcNow.AddSeconds(options.Value.DatabaseStartupWaitSeconds);
        var delay = TimeSpan.FromMilliseconds(250);
        while (true)
        {
            try
            {
                await PrepareOnceAsync(ct);
                return;
            }
            catch (Exception e) when (Database.IsUnavailable(e) && DateTime.UtcNow + delay < deadline && !ct.IsCancellationRequested)
            {
                LogDatabaseUnavailable(logger, delay.TotalSeconds, Describe(e));
                await Task.Delay(delay, ct);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
            }
        }
    }

    async Task PrepareOnceAsync(CancellationToken ct)
    {
        if (options.Value.MigrateOnStart)
        {
            await MigrateAsync(ct);
            return;
        }
        // Migrations are a separate deployment step: refuse to serve an outdated schema.
        var pending = await runner.PendingAsync(ct);
        if (pending.Count > 0)
            throw new MigrationException($"{pending.Count} migration(s) pending ({string.Join(", ", pending)}); run 'neraca migrate' first.");
    }

    async Task BootstrapAsync(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction? tx)
    {
        var created = await tenants.CreateTenantAsync(connection, tx, TenantStore.DefaultTenantId, "Default tenant", CancellationToken.None);
        var configured = options.Value.BootstrapApiKey;
        if (!string.IsNullOrEmpty(configured))
        {
            if (!ApiKey.IsWellFormed(configured))
                throw new OptionsValidationException(nameof(NeracaOptions.BootstrapApiKey), typeof(NeracaOptions),
                    ["BootstrapApiKey must look like nrc_ followed by letters and digits (13-200 characters)."]);
            await tenants.AddKeyAsync(connection, tx, TenantStore.DefaultTenantId, "bootstrap", configured, [Scopes.Admin], null, CancellationToken.None);
            return;
        }
        if (!created) return;
        var key = ApiKey.Generate();
        await tenants.AddKeyAsync(connection, tx, TenantStore.DefaultTenantId, "bootstrap", key, [Scopes.Admin], null, CancellationToken.None);
        LogBootstrapKeyCreated(logger);
        Console.WriteLine($"""

            Created tenant 'default' with an admin API key. It is shown only this once; store it now:
              {key}
            (Set NERACA_BOOTSTRAP_API_KEY to choose it yourself.)

            """);
    }

    // Npgsql's own message ("Exception while reading from stream") hides the cause: a timeout, a reset, an early close.
    static string Describe(Exception e) =>
        e.GetBaseException() is var root && root != e ? $"{e.Message} ({root.GetType().Name}: {root.Message})" : e.Message;

    [LoggerMessage(2, LogLevel.Warning, "The database is unavailable at start; trying again in {DelaySeconds} s: {Reason}")]
    static partial void LogDatabaseUnavailable(ILogger logger, double delaySeconds, string reason);

    [LoggerMessage(1, LogLevel.Warning, "Created tenant 'default' with a generated admin API key (printed once on standard output)")]
    static partial void LogBootstrapKeyCreated(ILogger logger);
}
