-- Banking (issue #16): customers, their accounts (each a ledger account of the same id), blocks, holds, payments and
-- their daily limit usage, searchable transaction details, statements and the admin audit log. Money itself lives only
-- in the ledger; these tables hold what the ledger does not know (who, why, limits, documents).

-- Personal data (name, phone, email, national_id) is AES-256-GCM ciphertext with its key id (Neraca.Security), bound to
-- (table, column, tenant, id); *_hash are keyed HMACs of the normalised values for exact lookups.
CREATE TABLE banking_customers (
    tenant_id text NOT NULL,
    id text NOT NULL,
    subject text NOT NULL,
    name text NOT NULL,
    phone text NULL,
    email text NULL,
    national_id text NULL,
    phone_hash text NULL,
    email_hash text NULL,
    national_id_hash text NULL,
    kyc_level text NOT NULL,
    status text NOT NULL,
    created_at_us bigint NOT NULL,
    updated_at_us bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX banking_customers_subject ON banking_customers (tenant_id, subject);
CREATE INDEX banking_customers_phone ON banking_customers (tenant_id, phone_hash) WHERE phone_hash IS NOT NULL;
CREATE INDEX banking_customers_email ON banking_customers (tenant_id, email_hash) WHERE email_hash IS NOT NULL;
CREATE INDEX banking_customers_national_id ON banking_customers (tenant_id, national_id_hash) WHERE national_id_hash IS NOT NULL;

CREATE TABLE banking_accounts (
    tenant_id text NOT NULL,
    id text NOT NULL,
    customer_id text NOT NULL,
    product text NOT NULL,
    currency text NOT NULL,
    ledger text NOT NULL,
    status text NOT NULL,
    overdraft_limit bigint NOT NULL,
    created_at_us bigint NOT NULL,
    closed_at_us bigint NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX banking_accounts_customer ON banking_accounts (tenant_id, customer_id, id);

CREATE TABLE banking_blocks (
    tenant_id text NOT NULL,
    id text NOT NULL,
    account_id text NOT NULL,
    type text NOT NULL,
    reason text NOT NULL,
    created_at_us bigint NOT NULL,
    removed_at_us bigint NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX banking_blocks_account ON banking_blocks (tenant_id, account_id) WHERE removed_at_us IS NULL;

-- A hold is the pending ledger transfer 'bank:hold:<id>' from the account to the ledger's holds account.
CREATE TABLE banking_holds (
    tenant_id text NOT NULL,
    id text NOT NULL,
    account_id text NOT NULL,
    amount bigint NOT NULL,
    captured_amount bigint NOT NULL DEFAULT 0,
    reason text NOT NULL,
    status text NOT NULL,
    expires_at_us bigint NOT NULL,
    created_at_us bigint NOT NULL,
    resolved_at_us bigint NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX banking_holds_account ON banking_holds (tenant_id, account_id, created_at_us);
CREATE INDEX banking_holds_expiry ON banking_holds (expires_at_us) WHERE status = 'active';

-- A payment is the ledger transfer 'bank:pay:<id>'; limit_customer/limit_day name the usage row it counts against.
CREATE TABLE banking_payments (
    tenant_id text NOT NULL,
    id text NOT NULL,
    from_account text NOT NULL,
    to_account text NOT NULL,
    amount bigint NOT NULL,
    reference text NULL,
    description text NULL,
    status text NOT NULL,
    failure_code text NULL,
    failure_detail text NULL,
    limit_customer text NULL,
    limit_day text NULL,
    created_at_us bigint NOT NULL,
    completed_at_us bigint NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE banking_limit_usage (
    tenant_id text NOT NULL,
    customer_id text NOT NULL,
    day text NOT NULL,
    used bigint NOT NULL,
    PRIMARY KEY (tenant_id, customer_id, day)
);

-- What a transfer means to one account: counterparty, reference, description. Running balances come from the ledger.
CREATE TABLE banking_transactions (
    tenant_id text NOT NULL,
    account_id text NOT NULL,
    transfer_id text NOT NULL,
    kind text NOT NULL,
    direction text NOT NULL,
    amount bigint NOT NULL,
    counterparty text NULL,
    reference text NULL,
    description text NULL,
    posted_at_us bigint NOT NULL,
    PRIMARY KEY (tenant_id, account_id, transfer_id)
);
CREATE INDEX banking_transactions_posted ON banking_transactions (tenant_id, account_id, posted_at_us, transfer_id);
-- Full-text search over description and reference (FTS5, an external-content table over the rows above; the table is
-- append-only, so an insert trigger keeps it current).
CREATE VIRTUAL TABLE banking_transactions_fts USING fts5(description, reference, content='banking_transactions', content_rowid='rowid',
    tokenize='unicode61');
CREATE TRIGGER banking_transactions_fts_insert AFTER INSERT ON banking_transactions BEGIN
    INSERT INTO banking_transactions_fts (rowid, description, reference) VALUES (new.rowid, coalesce(new.description, ''), coalesce(new.reference, ''));
END;

CREATE TABLE banking_statements (
    tenant_id text NOT NULL,
    id text NOT NULL,
    account_id text NOT NULL,
    period_from text NOT NULL,
    period_to text NOT NULL,
    status text NOT NULL,
    currency text NOT NULL,
    scale integer NOT NULL,
    opening_balance bigint NULL,
    closing_balance bigint NULL,
    credits bigint NULL,
    debits bigint NULL,
    entry_count bigint NULL,
    created_at_us bigint NOT NULL,
    ready_at_us bigint NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX banking_statements_period ON banking_statements (tenant_id, account_id, period_from, period_to);

CREATE TABLE banking_statement_files (
    tenant_id text NOT NULL,
    statement_id text NOT NULL,
    format text NOT NULL,
    sha256 text NOT NULL,
    size_bytes bigint NOT NULL,
    chunks integer NOT NULL,
    PRIMARY KEY (tenant_id, statement_id, format)
);

CREATE TABLE banking_statement_chunks (
    tenant_id text NOT NULL,
    statement_id text NOT NULL,
    format text NOT NULL,
    chunk_no integer NOT NULL,
    data blob NOT NULL,
    PRIMARY KEY (tenant_id, statement_id, format, chunk_no)
);

-- The monthly statement run of a tenant for a period, once.
CREATE TABLE banking_statement_runs (
    tenant_id text NOT NULL,
    period_from text NOT NULL,
    created_at_us bigint NOT NULL,
    PRIMARY KEY (tenant_id, period_from)
);

-- Who changed customers, accounts, limits, blocks and holds. Append-only: the application role may only insert and
-- read on PostgreSQL, and triggers refuse UPDATE and DELETE for everyone.
CREATE TABLE banking_audit_log (
    seq integer PRIMARY KEY AUTOINCREMENT,
    tenant_id text NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    target_type text NOT NULL,
    target_id text NOT NULL,
    details text NOT NULL,
    created_at_us bigint NOT NULL
);
CREATE INDEX banking_audit_log_tenant ON banking_audit_log (tenant_id, seq);

CREATE TRIGGER banking_audit_log_no_update BEFORE UPDATE ON banking_audit_log BEGIN
    SELECT RAISE(ABORT, 'banking_audit_log is append-only');
END;
CREATE TRIGGER banking_audit_log_no_delete BEFORE DELETE ON banking_audit_log BEGIN
    SELECT RAISE(ABORT, 'banking_audit_log is append-only');
END;
