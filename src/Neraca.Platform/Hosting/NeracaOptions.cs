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

    /// <summary>How long, in seconds, a caller's last write position is kept for read-your-writes with a
    /// <see cref="ReadDatabase"/> (Storage/ReadYourWrites.cs): longer than the replica ever lags. Default 300.</summary>
    [Range(1, 86_400)]
    public int ReadYourWritesSeconds { get; set; } = 300;

    /// <summary>A file holding the <see cref="Database"/> setting (a mounted secret), instead of the setting itself.
    /// Its password is read again whenever a new connection is opened, so a rotated password takes effect without a
    /// restart (the rest of the file is read once).</summary>
    public string? DatabaseFile { get; set; }

    /// <summary>A file holding the <see cref="ReadDatabase"/> setting; its password is re-read like <see cref="DatabaseFile"/>'s.</summary>
    public string? ReadDatabaseFile { get; set; }

    /// <summary><c>none</c> (default): connections go straight to PostgreSQL. <c>transaction</c>: through a pooler in
    /// transaction mode (PgBouncer <c>pool_mode=transaction</c>): no automatic prepared statements (unless the
    /// connection string sets <c>Max Auto Prepare</c>, e.g. for PgBouncer 1.21+ with <c>max_prepared_statements</c>) and
    /// no LISTEN (the event relay polls instead). Nothing else Neraca does keeps session state.</summary>
    [RegularExpression("^(?i)(none|transaction)$", ErrorMessage = "DatabasePooler must be none or transaction.")]
    public string DatabasePooler { get; set; } = "none";

    /// <summary>On PostgreSQL, run each request's statements as the role <c>neraca_tenant</c>, which row-level security
    /// confines to the request's tenant (default on; docs/security.md). Off leaves the policies in place but unused.</summary>
    public bool RowLevelSecurity { get; set; } = true;

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

    /// <summary>On SIGTERM, how long <c>/health/ready</c> reports unhealthy while the server keeps serving, before it
    /// stops accepting connections: the time a load balancer needs to take it out of rotation. Default 0.</summary>
    [Range(0, 300)]
    public int ShutdownDrainSeconds { get; set; }

    /// <summary>At start, how long to keep trying to reach an unavailable database (restarting, failing over, behind a
    /// pooler that is not up yet) before giving up with an error exit, in seconds. Default 120.</summary>
    [Range(0, 3600)]
    public int DatabaseStartupWaitSeconds { get; set; } = 120;

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
