using System.ComponentModel.DataAnnotations;

namespace Neraca.Hosting;

/// <summary>Top-level settings. Every key can be set in appsettings.json, as an environment variable
/// with the <c>NERACA_</c> prefix (<c>NERACA_DATABASE</c>, <c>NERACA_MAX_REQUEST_BODY_BYTES</c>; see EnvironmentSettings (in the host)) or on the
/// command line (<c>--database ...</c>).</summary>
public sealed class NeracaOptions
{
    /// <summary>Empty (default) selects the embedded SQLite store at <see cref="SqlitePath"/>. An Npgsql
    /// connection string (<c>Host=...;Database=...</c>) or a <c>postgres://user:pass@host:port/db</c> URL selects
    /// PostgreSQL; <c>sqlite:PATH</c> selects SQLite at PATH.</summary>
    public string? Database { get; set; }

    /// <summary>Optional read replica (PostgreSQL only) for history, lists and statements.</summary>
    public string? ReadDatabase { get; set; }

    /// <summary>File of the embedded SQLite store. Default <c>./data/neraca.db</c>.</summary>
    [Required]
    public string SqlitePath { get; set; } = "./data/neraca.db";

    /// <summary>Comma-separated roles this process plays: <c>api</c>, <c>worker</c>, <c>scheduler</c>. Default all.</summary>
    [Required]
    public string Role { get; set; } = "api,worker,scheduler";

    /// <summary>Admin key of the <c>default</c> tenant created on first start. Generated and printed once when absent.</summary>
    public string? BootstrapApiKey { get; set; }

    /// <summary>Apply pending migrations at start-up (default). Turn off to run <c>neraca migrate</c> as a separate step.</summary>
    public bool MigrateOnStart { get; set; } = true;

    /// <summary>Largest request body accepted, in bytes. Default 1 MiB; batches of 8,000 transfers need about 2 MiB,
    /// so the batch endpoint has its own limit (<see cref="BatchRequestBodyBytesMax"/>).</summary>
    [Range(1024, 256L * 1024 * 1024)]
    public long MaxRequestBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>Largest body of <c>POST /v1/transfers/batch</c>, in bytes. Default 8 MiB.</summary>
    [Range(1024, 256L * 1024 * 1024)]
    public long BatchRequestBodyBytesMax { get; set; } = 8 * 1024 * 1024;

    /// <summary>How long a graceful shutdown waits for in-flight requests and batches, in seconds.</summary>
    [Range(1, 600)]
    public int ShutdownTimeoutSeconds { get; set; } = 30;

    /// <summary>Maximum connections in the PostgreSQL pool of this process.</summary>
    [Range(2, 1000)]
    public int DatabasePoolSizeMax { get; set; } = 50;
}

/// <summary>The roles one Neraca binary can play; deployments scale them apart.</summary>
[Flags]
public enum NeracaRoles
{
    None = 0,
    Api = 1,
    Worker = 2,
    Scheduler = 4,
    All = Api | Worker | Scheduler,
}

public static class NeracaRolesParser
{
    public static bool TryParse(string? text, out NeracaRoles roles)
    {
        roles = NeracaRoles.None;
        if (string.IsNullOrWhiteSpace(text)) return false;
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            switch (part.ToLowerInvariant())
            {
                case "api": roles |= NeracaRoles.Api; break;
                case "worker": roles |= NeracaRoles.Worker; break;
                case "scheduler": roles |= NeracaRoles.Scheduler; break;
                case "all": roles |= NeracaRoles.All; break;
                default: return false;
            }
        }
        return roles != NeracaRoles.None;
    }
}
