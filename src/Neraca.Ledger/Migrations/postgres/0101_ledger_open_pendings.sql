-- Pending transfers not yet resolved (mutable work table, not journal): expiry scans only these, and their count
-- is the pending gauge. A row is inserted with the pending transfer and deleted with its resolution.
CREATE TABLE open_pendings (
    tenant_id text NOT NULL,
    transfer_id text NOT NULL,
    ledger_id text NOT NULL,
    timeout_at_us bigint NULL,
    PRIMARY KEY (tenant_id, transfer_id)
);
CREATE INDEX open_pendings_timeout ON open_pendings (timeout_at_us) WHERE timeout_at_us IS NOT NULL;

-- GET /v1/transfers pages by (created_at_us, id).
CREATE INDEX transfers_created ON transfers (tenant_id, created_at_us, id);
