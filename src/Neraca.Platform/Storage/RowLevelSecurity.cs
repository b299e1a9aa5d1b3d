using System.Data.Common;
using Dapper;

namespace Neraca.Storage;

/// <summary>The tenant on whose behalf the current code runs: set for each authenticated request, and by code that works
/// for one tenant outside a request. On PostgreSQL every statement of a connection opened in a tenant scope runs as the
/// role <c>neraca_tenant</c> with that tenant set, and row-level security confines it to the tenant's rows: a query that
/// forgets its <c>tenant_id</c> filter sees nothing of another tenant (docs/security.md).</summary>
public static class TenantScope
{
    // The holder is shared by every execution context copied from the scope's; clearing it on exit means work that
    // captured a request's context (a loop started during the request) does not keep acting as its tenant afterwards.
    internal sealed class Holder(string tenantId)
    {
        public string? TenantId = tenantId;
    }

    static readonly AsyncLocal<Holder?> Ambient = new();

    /// <summary>The tenant of the current scope, or null outside any (system work: migrations, the event relay, jobs).</summary>
    public static string? Current => Ambient.Value?.TenantId;

    /// <summary>Enters <paramref name="tenantId"/>'s scope until the returned value is disposed.</summary>
    public static Scope Enter(string tenantId)
    {
        ArgumentException.ThrowIfNullOrEmpty(tenantId);
        var previous = Ambient.Value;
        var holder = new Holder(tenantId);
        Ambient.Value = holder;
        return new Scope(holder, previous);
    }

    public readonly struct Scope : IDisposable
    {
        readonly Holder _holder;
        readonly Holder? _previous;

        internal Scope(Holder holder, Holder? previous)
        {
            _holder = holder;
            _previous = previous;
        }

        public void Dispose()
        {
            _holder.TenantId = null;
            Ambient.Value = _previous;
        }
    }
}

/// <summary>PostgreSQL's second wall between tenants, kept in place at every migration run (under the migration lock),
/// so a table added later is covered without a migration of its own:
/// <list type="bullet">
/// <item>every table of the schema with a <c>tenant_id</c> column has row-level security enabled and forced (the owner
/// is bound too), with a policy that shows and accepts only the rows of the tenant set in <c>neraca.tenant</c> when one
/// is set; work outside any tenant (migrations, the event relay, the job scheduler) sets none and sees every row;</item>
/// <item><c>CALL neraca_enter_tenant(t)</c> sets the tenant for the current transaction only (<c>set_config(.., true)</c>,
/// i.e. <c>SET LOCAL</c>), which is safe behind PgBouncer in transaction mode. A connection opened in a
/// <see cref="TenantScope"/> sends it in front of every statement (<see cref="TenantConnection"/>): the statements of
/// one command run in one transaction, explicit or implicit;</item>
/// <item>a superuser is not bound by row-level security at all, so when the server connects as one (a development
/// set-up; production connects as <c>neraca_app</c>, deploy/postgres-roles.sql) the procedure also switches the
/// transaction to the role <c>neraca_tenant</c>, which has the tables' SELECT, INSERT, UPDATE and DELETE and owns
/// nothing. Only a superuser migration creates that role; without it a superuser connection's tenant statements fail
/// rather than run unconfined.</item>
/// </list>
/// This is a wall against a query that forgets its tenant filter, not against SQL injection: a statement can reset the
/// setting. Turned off with <c>RowLevelSecurity=false</c> (the policies stay and see everything).</summary>
public static class RowLevelSecurity
{
    /// <summary>The role a superuser connection's tenant statements run as.</summary>
    public const string Role = "neraca_tenant";

    /// <summary>The statement that confines the rest of the transaction to a tenant (parameter: the tenant id).</summary>
    public const string EnterProcedure = "neraca_enter_tenant";

    /// <summary>Tables without a <c>tenant_id</c> column that still hold one tenant's rows, with the condition that finds
    /// them through the parent (whose own policy applies inside it).</summary>
    static readonly (string Table, string Condition)[] Children =
    [
        ("webhook_attempts", "EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.id = webhook_attempts.delivery_id)"),
    ];

    internal const string EnsureSql = """
        DO $rls$
        DECLARE
            t record;
            tenant_rows constant text :=
                'COALESCE(current_setting(''neraca.tenant'', true), '''') = '''' OR tenant_id = current_setting(''neraca.tenant'', true)';
            superuser constant boolean := current_setting('is_superuser') = 'on';
        BEGIN
            IF superuser AND NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'neraca_tenant') THEN
                BEGIN
                    CREATE ROLE neraca_tenant NOLOGIN;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN
                    NULL; -- another database of the cluster created it at the same moment (roles are per cluster)
                END;
            END IF;
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'neraca_tenant') THEN
                IF NOT has_schema_privilege('neraca_tenant', current_schema(), 'USAGE') THEN
                    EXECUTE format('GRANT USAGE ON SCHEMA %I TO neraca_tenant', current_schema());
                END IF;
                FOR t IN SELECT c.oid::regclass AS rel FROM pg_class c
                         WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v')
                           AND NOT has_table_privilege('neraca_tenant', c.oid, 'SELECT, INSERT, UPDATE, DELETE')
                LOOP
                    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO neraca_tenant', t.rel);
                END LOOP;
                FOR t IN SELECT c.oid::regclass AS rel FROM pg_class c
                         WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'S'
                           -- CASE: SQL may test the privilege before the kind, and it fails on anything but a sequence
                           AND CASE WHEN c.relkind = 'S' THEN NOT has_sequence_privilege('neraca_tenant', c.oid, 'USAGE, SELECT, UPDATE') ELSE false END
                LOOP
                    EXECUTE format('GRANT USAGE, SELECT, UPDATE ON SEQUENCE %s TO neraca_tenant', t.rel);
                END LOOP;
            END IF;
            FOR t IN SELECT c.oid::regclass AS rel, c.relrowsecurity, c.relforcerowsecurity,
                            CASE WHEN c.relname::text = ANY({child_tables})
                                 THEN ({child_conditions})[array_position({child_tables}, c.relname::text)]
                                 ELSE tenant_rows END AS condition
                     FROM pg_class c
                     WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
                       AND (c.relname::text = ANY({child_tables}) OR EXISTS (SELECT 1 FROM pg_attribute a
                            WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped))
            LOOP
                IF NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = t.rel AND p.polname = 'neraca_tenant_rows') THEN
                    EXECUTE format('CREATE POLICY neraca_tenant_rows ON %s USING (%s) WITH CHECK (%s)', t.rel, t.condition, t.condition);
                END IF;
                IF NOT t.relrowsecurity THEN EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t.rel); END IF;
                IF NOT t.relforcerowsecurity THEN EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', t.rel); END IF;
            END LOOP;
            -- A view reads its tables as its owner, whom a superuser migration makes a superuser: as the caller instead.
            IF current_setting('server_version_num')::int >= 150000 THEN
                FOR t IN SELECT c.oid::regclass AS rel FROM pg_class c
                         WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'v'
                           AND NOT COALESCE('security_invoker=true' = ANY(c.reloptions), false)
                LOOP
                    EXECUTE format('ALTER VIEW %s SET (security_invoker = true)', t.rel);
                END LOOP;
            END IF;
            IF NOT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'neraca_enter_tenant' AND pronamespace = current_schema()::regnamespace) THEN
                -- is_superuser is the current role's: after the switch (or for neraca_app) it is off.
                CREATE PROCEDURE neraca_enter_tenant(tenant text) LANGUAGE sql
                AS $p$ SELECT set_config('neraca.tenant', tenant, true),
                              CASE WHEN current_setting('is_superuser') = 'on' THEN set_config('role', 'neraca_tenant', true) END $p$;
            END IF;
        END
        $rls$
        """;

    /// <summary>Puts the policies, the role's grants and the procedure in place where missing (PostgreSQL; idempotent).</summary>
    public static async Task EnsureAsync(DbConnection connection, DbTransaction? tx, CancellationToken ct)
    {
        // A DO block takes no parameters: the child tables go in as literals (fixed strings of this file).
        var sql = EnsureSql
            .Replace("{child_tables}", ArrayLiteral(Children.Select(c => c.Table)), StringComparison.Ordinal)
            .Replace("{child_conditions}", ArrayLiteral(Children.Select(c => c.Condition)), StringComparison.Ordinal);
        await connection.ExecuteAsync(new CommandDefinition(sql, transaction: tx, cancellationToken: ct));
    }

    static string ArrayLiteral(IEnumerable<string> values) =>
        "ARRAY[" + string.Join(", ", values.Select(v => "'" + v.Replace("'", "''", StringComparison.Ordinal) + "'")) + "]::text[]";
}
