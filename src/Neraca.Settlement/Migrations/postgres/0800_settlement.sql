-- Settlement (issue #17): counterparties with their business calendar, settlement runs and their per-counterparty items.
-- Money moves only through the ledger API; these tables hold configuration and what was decided.
CREATE TABLE settlement_counterparties (
    tenant_id text NOT NULL,
    id text NOT NULL,
    name text NOT NULL,
    type text NOT NULL,                        -- bank | ewallet | switch
    settlement_account text NOT NULL,          -- ledger account whose day is netted
    cash_account text NOT NULL,                -- ledger account (nostro/bank) the net settles against; statements reconcile it
    suspense_account text NULL,                -- ledger account for write-offs
    cutoff_local_time text NOT NULL,           -- HH:mm in time_zone
    time_zone text NOT NULL,                   -- IANA id
    closed_weekdays text NOT NULL,             -- JSON array of weekday names; their activity rolls to the next open day
    csv_mapping text NULL,                     -- JSON: how this counterparty's CSV statements are read
    matching_rules text NULL,                  -- JSON: ordered rules; NULL = defaults
    closed_through text NULL,                  -- last business date the close-of-business sweep enqueued (yyyy-MM-dd)
    created_at_us bigint NOT NULL,
    updated_at_us bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE settlement_runs (
    tenant_id text NOT NULL,
    id text NOT NULL,
    business_date text NOT NULL,               -- yyyy-MM-dd
    status text NOT NULL,                      -- pending | posted | failed
    triggered_by text NOT NULL,                -- api | schedule
    failure_code text NULL,
    failure_detail text NULL,
    created_at_us bigint NOT NULL,
    updated_at_us bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
-- Runs list by id (a ULID: creation order), optionally of one business date.
CREATE INDEX settlement_runs_date ON settlement_runs (tenant_id, business_date, id);

CREATE TABLE settlement_run_items (
    tenant_id text NOT NULL,
    run_id text NOT NULL,
    counterparty_id text NOT NULL,
    business_date text NOT NULL,
    settlement_account text NOT NULL,
    cash_account text NOT NULL,
    window_from_us bigint NOT NULL,
    window_to_us bigint NOT NULL,
    credits bigint NOT NULL,
    debits bigint NOT NULL,
    entry_count bigint NOT NULL,
    net bigint NOT NULL,                       -- credits - debits on the settlement account
    transfer_id text NULL,                     -- settle:{counterparty}:{date}; NULL when net = 0
    status text NOT NULL,                      -- pending | posted | failed (the run's)
    PRIMARY KEY (tenant_id, run_id, counterparty_id)
);
-- A business date of a counterparty is settled once, ever: a failed run gives the date back.
CREATE UNIQUE INDEX settlement_run_items_once ON settlement_run_items (tenant_id, counterparty_id, business_date) WHERE status <> 'failed';
