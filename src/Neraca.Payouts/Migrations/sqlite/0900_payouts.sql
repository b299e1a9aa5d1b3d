-- Payouts (docs/payouts.md): money leaving to a bank account or e-wallet through a provider, one row per payout with
-- the saga's persisted state. Times are integer microseconds since the Unix epoch, like the ledger's.
CREATE TABLE payouts (
    tenant_id text NOT NULL,
    id text NOT NULL,                              -- the caller's id: the idempotency anchor
    status text NOT NULL,                          -- requested, reserved, submitted, unknown, succeeded, failed
    request_hash text NOT NULL,                    -- keyed hash of the request's fields: same id + other body = conflict
    ledger_id text NOT NULL,
    currency text NOT NULL,
    source_account text NOT NULL,
    clearing_account text NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0),
    destination_type text NOT NULL,
    destination_code text NOT NULL,
    destination_account_number text NOT NULL,      -- encrypted (Encryption key ring), context payouts.<column>|tenant|id
    destination_account_masked text NOT NULL,      -- ******7890, what responses and logs show
    destination_account_name text NULL,            -- encrypted
    reference text NOT NULL,
    description text NULL,
    notify_job_type text NULL,
    provider_key text NOT NULL,                    -- the provider's idempotency key, derived from tenant + id
    provider_reference text NULL,                  -- the provider's id of the disbursement
    provider_outcome text NULL,                    -- succeeded | failed once the provider said so (then the complete step runs)
    failure_code text NULL,
    failure_reason text NULL,
    created_at_us bigint NOT NULL,
    updated_at_us bigint NOT NULL,
    submitted_at_us bigint NULL,
    unknown_since_us bigint NULL,
    finished_at_us bigint NULL,
    PRIMARY KEY (tenant_id, id)
);
-- Callbacks name the payout by its provider key only (the signed body carries no tenant we would trust otherwise).
CREATE UNIQUE INDEX payouts_provider_key ON payouts (provider_key);
-- Lists, newest first.
CREATE INDEX payouts_tenant_created ON payouts (tenant_id, created_at_us DESC, id DESC);
-- The recovery sweep and the gauges look only at payouts still in flight.
CREATE INDEX payouts_open ON payouts (status, updated_at_us) WHERE status IN ('requested', 'reserved', 'submitted', 'unknown');
