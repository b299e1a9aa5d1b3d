-- Least privilege on PostgreSQL: an owner role that runs migrations and an application role the server connects as.
--
-- Run it as a superuser (or a member of both roles) connected to Neraca's database, before the first `neraca migrate`
-- and again after every `neraca migrate` (it is idempotent; docs/operations.md has the whole procedure):
--
--   psql -v ON_ERROR_STOP=1 -d neraca -f deploy/postgres-roles.sql
--   NERACA_DATABASE='Host=...;Database=neraca;Username=neraca_owner;Password=...' neraca migrate
--   psql -v ON_ERROR_STOP=1 -d neraca -f deploy/postgres-roles.sql
--   NERACA_DATABASE='Host=...;Database=neraca;Username=neraca_app;Password=...' NERACA_MIGRATE_ON_START=false neraca
--
-- Roles are created without passwords: set them with `ALTER ROLE neraca_owner PASSWORD '...'` (never in this file).
-- The journal is append-only twice over: triggers refuse UPDATE/DELETE/TRUNCATE even to the owner, and the application
-- role holds no UPDATE, DELETE or TRUNCATE on it.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'neraca_owner') THEN CREATE ROLE neraca_owner LOGIN; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'neraca_app') THEN CREATE ROLE neraca_app LOGIN; END IF;
END $$;

-- The owner owns the schema and every table its migrations create; nobody else may create objects in it.
ALTER SCHEMA public OWNER TO neraca_owner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO neraca_app;

-- A table a later migration adds is readable and insertable by the server at once (all an append-only table needs)
-- and its sequences usable. UPDATE and DELETE it gets only when the table is added to the list below and this script
-- runs again after the migration: forgetting fails safe, as "permission denied" in that feature's tests.
ALTER DEFAULT PRIVILEGES FOR ROLE neraca_owner IN SCHEMA public GRANT SELECT, INSERT ON TABLES TO neraca_app;
ALTER DEFAULT PRIVILEGES FOR ROLE neraca_owner IN SCHEMA public GRANT USAGE ON SEQUENCES TO neraca_app;

-- Every table (and view) of the schema with exactly what the server's statements do to it. A migration that adds a
-- table adds it here in the same change (tests/Neraca.Tests/Hosting/LeastPrivilegeTests.cs fails until it does).
-- UPDATE also covers row locks: SELECT ... FOR UPDATE needs it.
DO $$
DECLARE
    grants constant text[] := ARRAY[
        -- the journal, append-only
        'transfers',            'SELECT, INSERT',
        'transfer_resolutions', 'SELECT, INSERT',
        'entries',              'SELECT, INSERT',   -- a view over the journal (migration 0104); INSERT only for a server of
        'entries_v1',           'SELECT, INSERT',   -- the previous version during a rolling deployment (the view's trigger)
        'chain_links',          'SELECT, INSERT',
        'events',               'SELECT, INSERT',
        -- written once, never changed by the server
        'ledgers',              'SELECT, INSERT',
        'audit_checkpoints',    'SELECT, INSERT',
        'auth_signing_keys',    'SELECT, INSERT',
        'encryption_keys',      'SELECT, INSERT',
        'webhook_attempts',     'SELECT, INSERT',
        'tenants',              'SELECT, INSERT, UPDATE (name)',  -- UPDATE (one column) only to lock a tenant's row
        'schema_migrations',    'SELECT',                         -- MigrateOnStart=false checks nothing is pending
        -- state
        'api_keys',             'SELECT, INSERT, UPDATE',
        'ledger_heads',         'SELECT, INSERT, UPDATE',
        'accounts',             'SELECT, INSERT, UPDATE',
        'refresh_tokens',       'SELECT, INSERT, UPDATE',
        'webhook_deliveries',   'SELECT, INSERT, UPDATE',
        'job_schedules',        'SELECT, INSERT, UPDATE',
        'open_pendings',        'SELECT, INSERT, DELETE',
        'outbox',               'SELECT, INSERT, UPDATE, DELETE',
        'idempotency_keys',     'SELECT, INSERT, UPDATE, DELETE',
        'webhook_endpoints',    'SELECT, INSERT, UPDATE, DELETE',
        'jobs',                 'SELECT, INSERT, UPDATE, DELETE',
        'job_runs',             'SELECT, INSERT, UPDATE, DELETE',
        'job_slots',            'SELECT, INSERT, UPDATE, DELETE',
        -- settlement and reconciliation (issue #17): matches are append-only, the rest is state
        'recon_matches',        'SELECT, INSERT',
        'settlement_counterparties', 'SELECT, INSERT, UPDATE',
        'settlement_runs',      'SELECT, INSERT, UPDATE',
        'settlement_run_items', 'SELECT, INSERT, UPDATE',
        'recon_statements',     'SELECT, INSERT, UPDATE',
        'recon_lines',          'SELECT, INSERT, UPDATE',
        'recon_exceptions',     'SELECT, INSERT, UPDATE',
        'web_sign_in_codes',    'SELECT, INSERT, UPDATE, DELETE',
        'payouts',              'SELECT, INSERT, UPDATE, DELETE',   -- DELETE: a request the ledger refused leaves nothing
        -- earned wage access (0500); deductions and import errors are written once
        'ewa_employers',        'SELECT, INSERT, UPDATE',
        'ewa_employer_access',  'SELECT, INSERT, UPDATE, DELETE',
        'ewa_employees',        'SELECT, INSERT, UPDATE',
        'ewa_attendance',       'SELECT, INSERT, UPDATE',
        'ewa_employee_cycles',  'SELECT, INSERT, UPDATE',
        'ewa_withdrawals',      'SELECT, INSERT, UPDATE',
        'ewa_cycles',           'SELECT, INSERT, UPDATE',
        'ewa_deductions',       'SELECT, INSERT',
        'ewa_imports',          'SELECT, INSERT, UPDATE',
        'ewa_import_errors',    'SELECT, INSERT',
        -- banking (issue #16): the audit log is append-only; statements and their files are written once
        'banking_audit_log',        'SELECT, INSERT',
        'banking_statement_files',  'SELECT, INSERT',
        'banking_statement_chunks', 'SELECT, INSERT',
        'banking_statement_runs',   'SELECT, INSERT',
        'banking_transactions',     'SELECT, INSERT',
        'banking_customers',        'SELECT, INSERT, UPDATE',
        'banking_accounts',         'SELECT, INSERT, UPDATE',
        'banking_blocks',           'SELECT, INSERT, UPDATE',
        'banking_holds',            'SELECT, INSERT, UPDATE',
        'banking_payments',         'SELECT, INSERT, UPDATE',
        'banking_limit_usage',      'SELECT, INSERT, UPDATE',
        'banking_statements',       'SELECT, INSERT, UPDATE',
        'banking_withdrawals',      'SELECT, INSERT, UPDATE',
        'banking_settings',         'SELECT, INSERT, UPDATE'
    ];
BEGIN
    FOR i IN 1 .. array_length(grants, 1) BY 2 LOOP
        -- Before the first migration the tables do not exist yet: the script's second run grants them.
        IF to_regclass(format('public.%I', grants[i])) IS NOT NULL THEN
            EXECUTE format('REVOKE ALL ON public.%I FROM neraca_app', grants[i]);
            EXECUTE format('GRANT %s ON public.%I TO neraca_app', grants[i + 1], grants[i]);
        END IF;
    END LOOP;
END $$;

GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO neraca_app;

-- Split bills (issue 15): activity is append-only; shares are replaced when an expense is edited; members without
-- history are deleted when removed.
DO $$
DECLARE
    grants text[] := ARRAY[
        'split_activity',    'SELECT, INSERT',
        'split_groups',      'SELECT, INSERT, UPDATE',
        'split_expenses',    'SELECT, INSERT, UPDATE',
        'split_settlements', 'SELECT, INSERT, UPDATE',
        'split_recurring',   'SELECT, INSERT, UPDATE',
        'split_members',     'SELECT, INSERT, UPDATE, DELETE',
        'split_shares',      'SELECT, INSERT, UPDATE, DELETE'
    ];
BEGIN
    FOR i IN 1 .. array_length(grants, 1) BY 2 LOOP
        IF to_regclass(format('public.%I', grants[i])) IS NOT NULL THEN
            EXECUTE format('REVOKE ALL ON public.%I FROM neraca_app', grants[i]);
            EXECUTE format('GRANT %s ON public.%I TO neraca_app', grants[i + 1], grants[i]);
        END IF;
    END LOOP;
END $$;
