-- Least privilege for the application role on PostgreSQL. Run as the schema owner after `neraca migrate`
-- (migrations run as the owner; the server can then run as `neraca_app` with MigrateOnStart=false).
-- The journal is append-only twice over: triggers refuse UPDATE/DELETE/TRUNCATE, and the role has no such grants.
CREATE ROLE neraca_app LOGIN;
GRANT USAGE ON SCHEMA public TO neraca_app;
GRANT SELECT, INSERT ON transfers, transfer_resolutions, chain_links, events TO neraca_app;
-- entries is a view over the journal (migration 0104); entries_v1 holds the entries posted before it. INSERT only for a
-- server of the previous version during a rolling deployment (the view's trigger puts its rows in entries_v1).
GRANT SELECT, INSERT ON entries, entries_v1 TO neraca_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON tenants, api_keys, ledgers, ledger_heads, accounts, outbox, idempotency_keys, open_pendings TO neraca_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO neraca_app;
GRANT SELECT ON schema_migrations TO neraca_app;
