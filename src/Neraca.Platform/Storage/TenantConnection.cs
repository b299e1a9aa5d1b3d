using System.Data;
using System.Data.Common;
using System.Diagnostics.CodeAnalysis;
using Npgsql;

namespace Neraca.Storage;

/// <summary>A PostgreSQL connection opened in a <see cref="TenantScope"/>: each command it creates runs
/// <c>CALL neraca_enter_tenant(tenant)</c> in front of its own statements, in the same transaction (an explicit one, or
/// the implicit one the statements of one command share until their Sync), so that row-level security confines every
/// statement to the tenant. Per statement rather than per session because behind PgBouncer in transaction mode the next
/// statement may run on another server connection (see <see cref="RowLevelSecurity"/>).</summary>
internal sealed class TenantConnection(NpgsqlConnection inner, string tenantId) : DbConnection
{
    public NpgsqlConnection Inner => inner;

    public string TenantId => tenantId;

    /// <summary>The Npgsql connection under <paramref name="connection"/> (for <c>NpgsqlBatch</c>, which the caller must
    /// confine itself: see <see cref="RowLevelSecurity.EnterProcedure"/>).</summary>
    public static NpgsqlConnection Npgsql(DbConnection connection) => connection switch
    {
        TenantConnection t => t.Inner,
        NpgsqlConnection n => n,
        _ => throw new ArgumentException($"Not a PostgreSQL connection: {connection.GetType().Name}.", nameof(connection)),
    };

    [AllowNull]
    public override string ConnectionString { get => inner.ConnectionString; set => inner.ConnectionString = value; }
    public override string Database => inner.Database;
    public override string DataSource => inner.DataSource;
    public override string ServerVersion => inner.ServerVersion;
    public override ConnectionState State => inner.State;
    public override int ConnectionTimeout => inner.ConnectionTimeout;

    public override void ChangeDatabase(string databaseName) => inner.ChangeDatabase(databaseName);
    public override void Open() => inner.Open();
    public override Task OpenAsync(CancellationToken cancellationToken) => inner.OpenAsync(cancellationToken);
    public override void Close() => inner.Close();
    public override Task CloseAsync() => inner.CloseAsync();

    protected override DbTransaction BeginDbTransaction(IsolationLevel isolationLevel) => inner.BeginTransaction(isolationLevel);

    protected override async ValueTask<DbTransaction> BeginDbTransactionAsync(IsolationLevel isolationLevel, CancellationToken cancellationToken) =>
        await inner.BeginTransactionAsync(isolationLevel, cancellationToken);

    protected override DbCommand CreateDbCommand() => new TenantCommand(inner.CreateCommand(), this);

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await inner.DisposeAsync();
        await base.DisposeAsync();
    }
}

/// <summary>A command of a <see cref="TenantConnection"/>; see there.</summary>
internal sealed class TenantCommand(NpgsqlCommand inner, TenantConnection connection) : DbCommand
{
    const string ParameterName = "neraca_rls_tenant";

    string _text = "";
    NpgsqlParameter? _tenant;

    [AllowNull]
    public override string CommandText { get => _text; set => _text = value ?? ""; }
    public override int CommandTimeout { get => inner.CommandTimeout; set => inner.CommandTimeout = value; }
    public override CommandType CommandType { get => inner.CommandType; set => inner.CommandType = value; }
    public override bool DesignTimeVisible { get => inner.DesignTimeVisible; set => inner.DesignTimeVisible = value; }
    public override UpdateRowSource UpdatedRowSource { get => inner.UpdatedRowSource; set => inner.UpdatedRowSource = value; }

    // The Npgsql connection, not the wrapper: Dapper sends a list as one PostgreSQL array (for "= ANY(@ids)") only when
    // the command's connection is an NpgsqlConnection (it looks at the type's name), and expands it otherwise.
    protected override DbConnection? DbConnection
    {
        get => inner.Connection;
        set => throw new NotSupportedException("A tenant-scoped command stays on its connection.");
    }

    protected override DbParameterCollection DbParameterCollection => inner.Parameters;
    protected override DbTransaction? DbTransaction { get => inner.Transaction; set => inner.Transaction = (NpgsqlTransaction?)value; }

    public override void Cancel() => inner.Cancel();
    protected override DbParameter CreateDbParameter() => inner.CreateParameter();

    /// <summary>Puts the tenant statement in front of the caller's (after a leading BEGIN, which must come first to set
    /// its isolation level). Done at every execution: Dapper may run a command again after clearing its parameters.</summary>
    void Confine()
    {
        if (inner.CommandType != CommandType.Text)
            throw new NotSupportedException("Tenant-scoped connections run text commands only.");
        var parameters = inner.Parameters;
        if (_tenant is not null && parameters.Contains(_tenant)) parameters.Remove(_tenant);
        // Npgsql sends a command with positional placeholders ($1) as it is, as one statement: nothing can go in front.
        if (parameters.Any(p => p.ParameterName.Length == 0))
            throw new NotSupportedException("Tenant-scoped connections take named parameters (@name) only.");
        _tenant = new NpgsqlParameter(ParameterName, connection.TenantId);
        parameters.Add(_tenant);
        var enter = $"CALL {RowLevelSecurity.EnterProcedure}(@{ParameterName})";
        var text = _text.TrimStart();
        inner.CommandText = text.StartsWith("BEGIN", StringComparison.OrdinalIgnoreCase) && !text.Contains(';', StringComparison.Ordinal)
            ? $"{text}; {enter}"
            : $"{enter}; {_text}";
    }

    public override int ExecuteNonQuery()
    {
        Confine();
        return inner.ExecuteNonQuery();
    }

    public override object? ExecuteScalar()
    {
        Confine();
        return inner.ExecuteScalar();
    }

    protected override DbDataReader ExecuteDbDataReader(CommandBehavior behavior)
    {
        Confine();
        return inner.ExecuteReader(behavior);
    }

    public override Task<int> ExecuteNonQueryAsync(CancellationToken cancellationToken)
    {
        Confine();
        return inner.ExecuteNonQueryAsync(cancellationToken);
    }

    public override Task<object?> ExecuteScalarAsync(CancellationToken cancellationToken)
    {
        Confine();
        return inner.ExecuteScalarAsync(cancellationToken);
    }

    protected override async Task<DbDataReader> ExecuteDbDataReaderAsync(CommandBehavior behavior, CancellationToken cancellationToken)
    {
        Confine();
        return await inner.ExecuteReaderAsync(behavior, cancellationToken);
    }

    public override void Prepare()
    {
        Confine();
        inner.Prepare();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await inner.DisposeAsync();
        await base.DisposeAsync();
    }
}
