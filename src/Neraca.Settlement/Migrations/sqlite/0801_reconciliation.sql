-- Reconciliation (issue #17): imported bank statements, their lines, matches (a transfer is matched once) and the
-- exception queue.
CREATE TABLE recon_statements (
    tenant_id text NOT NULL,
    id text NOT NULL,
    counterparty_id text NOT NULL,
    format text NOT NULL,                      -- csv | mt940 | camt053
    content_sha256 text NOT NULL,
    statement_ref text NULL,                   -- :20: / Stmt/Id
    account_ref text NULL,                     -- :25: / Acct/Id
    currency text NULL,
    opening_balance bigint NOT NULL,           -- signed minor units (credit balance positive)
    closing_balance bigint NOT NULL,
    period_from text NOT NULL,                 -- first value/booking date (yyyy-MM-dd)
    period_to text NOT NULL,
    line_count bigint NOT NULL,
    matched_count bigint NOT NULL DEFAULT 0,
    exception_count bigint NOT NULL DEFAULT 0,
    status text NOT NULL,                      -- matching | matched | exceptions
    imported_at_us bigint NOT NULL,
    fully_matched_at_us bigint NULL,
    PRIMARY KEY (tenant_id, id)
);
-- The same file is one statement: importing it again answers the first import.
CREATE UNIQUE INDEX recon_statements_content ON recon_statements (tenant_id, content_sha256);
CREATE INDEX recon_statements_unmatched ON recon_statements (imported_at_us) WHERE fully_matched_at_us IS NULL;

CREATE TABLE recon_lines (
    tenant_id text NOT NULL,
    statement_id text NOT NULL,
    line_no integer NOT NULL,                  -- 1-based order in the statement
    source_line integer NOT NULL,              -- line of the file it came from
    value_date text NOT NULL,
    booking_date text NULL,
    amount bigint NOT NULL,                    -- signed: credit (money in) positive
    reference text NULL,                       -- end-to-end id / customer reference
    bank_reference text NULL,
    description text NULL,
    status text NOT NULL,                      -- unmatched | matched | exception | ignored
    rule text NULL,
    transfer_ids text NULL,                    -- JSON array
    PRIMARY KEY (tenant_id, statement_id, line_no)
);

CREATE TABLE recon_matches (
    tenant_id text NOT NULL,
    transfer_id text NOT NULL,
    statement_id text NOT NULL,
    line_no integer NOT NULL,
    rule text NOT NULL,
    matched_at_us bigint NOT NULL,
    PRIMARY KEY (tenant_id, transfer_id)       -- nothing is matched twice
);

CREATE TABLE recon_exceptions (
    tenant_id text NOT NULL,
    id text NOT NULL,
    counterparty_id text NOT NULL,
    kind text NOT NULL,                        -- unmatched_line | unmatched_transfer
    statement_id text NOT NULL,
    line_no integer NULL,
    transfer_id text NULL,
    amount bigint NOT NULL,                    -- signed as on the statement (money in positive)
    value_date text NOT NULL,
    reference text NULL,
    status text NOT NULL,                      -- open | resolved
    resolution text NULL,                      -- match | write_off | ignore
    note text NULL,
    resolved_transfer_ids text NULL,           -- JSON array
    created_at_us bigint NOT NULL,
    resolved_at_us bigint NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX recon_exceptions_line ON recon_exceptions (tenant_id, statement_id, line_no) WHERE line_no IS NOT NULL;
CREATE UNIQUE INDEX recon_exceptions_transfer ON recon_exceptions (tenant_id, transfer_id) WHERE transfer_id IS NOT NULL;
CREATE INDEX recon_exceptions_status ON recon_exceptions (tenant_id, status, id);
CREATE INDEX recon_exceptions_open ON recon_exceptions (created_at_us) WHERE status = 'open';
