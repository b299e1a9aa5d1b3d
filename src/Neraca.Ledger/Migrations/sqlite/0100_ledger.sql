-- The ledger. Times are integer microseconds since the Unix epoch (*_us) on both stores: exact, portable,
-- and the same bytes in the audit hash chain. Money is bigint minor units; never floating point.

CREATE TABLE ledgers (
    tenant_id text NOT NULL REFERENCES tenants (id),
    id text NOT NULL,
    code text NOT NULL,
    asset text NOT NULL,
    scale integer NOT NULL,
    name text NULL,
    metadata text NULL,
    created_at_us bigint NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, code)
);

-- One row per ledger, locked by every posting transaction of that ledger: the audit chain head and the
-- ledger-wide posting sequence. Every write transaction touches exactly one ledger.
CREATE TABLE ledger_heads (
    tenant_id text NOT NULL,
    ledger_id text NOT NULL,
    last_link bigint NOT NULL DEFAULT 0,
    head blob NOT NULL,
    last_seq bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, ledger_id),
    FOREIGN KEY (tenant_id, ledger_id) REFERENCES ledgers (tenant_id, id)
);

-- Balances are state (updated in place by the posting pipeline); the journal below is the truth they
-- are checked against.
CREATE TABLE accounts (
    tenant_id text NOT NULL,
    id text NOT NULL,
    ledger_id text NOT NULL,
    normal_balance integer NOT NULL,          -- 1 debit, 2 credit
    code integer NOT NULL DEFAULT 0,
    name text NULL,
    flags integer NOT NULL DEFAULT 0,          -- 1 debits_must_not_exceed_credits, 2 credits_must_not_exceed_debits
    overdraft_limit bigint NOT NULL DEFAULT 0,
    metadata text NULL,
    debits_posted bigint NOT NULL DEFAULT 0,
    credits_posted bigint NOT NULL DEFAULT 0,
    debits_pending bigint NOT NULL DEFAULT 0,
    credits_pending bigint NOT NULL DEFAULT 0,
    entry_count bigint NOT NULL DEFAULT 0,
    created_at_us bigint NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, ledger_id) REFERENCES ledgers (tenant_id, id),
    CHECK (debits_posted >= 0 AND credits_posted >= 0 AND debits_pending >= 0 AND credits_pending >= 0)
);
CREATE INDEX accounts_ledger ON accounts (tenant_id, ledger_id, id);

-- Journal: every transfer as submitted (pending ones included). Append-only.
CREATE TABLE transfers (
    tenant_id text NOT NULL,
    id text NOT NULL,
    ledger_id text NOT NULL,
    seq bigint NOT NULL,                       -- ledger-wide posting order
    link bigint NOT NULL,                      -- audit chain link that covers it
    debit_account_id text NOT NULL,
    credit_account_id text NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0),
    pending integer NOT NULL,
    timeout_at_us bigint NULL,
    code integer NOT NULL DEFAULT 0,
    description text NULL,
    metadata text NULL,
    reverses text NULL,
    effective_at_us bigint NOT NULL,
    created_at_us bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX transfers_ledger_seq ON transfers (tenant_id, ledger_id, seq);
CREATE INDEX transfers_debit ON transfers (tenant_id, debit_account_id, seq);
CREATE INDEX transfers_credit ON transfers (tenant_id, credit_account_id, seq);
CREATE INDEX transfers_reverses ON transfers (tenant_id, reverses) WHERE reverses IS NOT NULL;
CREATE INDEX transfers_pending_timeout ON transfers (timeout_at_us) WHERE pending = 1 AND timeout_at_us IS NOT NULL;

-- Journal: how a pending transfer ended (1 posted, 2 voided, 3 expired). At most one per transfer.
CREATE TABLE transfer_resolutions (
    tenant_id text NOT NULL,
    transfer_id text NOT NULL,
    ledger_id text NOT NULL,
    seq bigint NOT NULL,
    link bigint NOT NULL,
    kind integer NOT NULL,
    amount bigint NOT NULL,
    resolved_at_us bigint NOT NULL,
    PRIMARY KEY (tenant_id, transfer_id)
);

-- Journal: posted movements per account with the running balance after each (history and point-in-time
-- balances are queries, not replays).
CREATE TABLE entries (
    tenant_id text NOT NULL,
    account_id text NOT NULL,
    entry_no bigint NOT NULL,
    ledger_id text NOT NULL,
    seq bigint NOT NULL,
    link bigint NOT NULL,
    transfer_id text NOT NULL,
    direction integer NOT NULL,               -- 1 debit, 2 credit
    amount bigint NOT NULL,
    balance_after bigint NOT NULL,
    posted_at_us bigint NOT NULL,
    effective_at_us bigint NOT NULL,
    PRIMARY KEY (tenant_id, account_id, entry_no)
);
CREATE INDEX entries_posted_at ON entries (tenant_id, account_id, posted_at_us);
CREATE INDEX entries_effective_at ON entries (tenant_id, account_id, effective_at_us, entry_no);
CREATE INDEX entries_link ON entries (tenant_id, ledger_id, link);

-- Journal: the per-ledger SHA-256 chain; link n hashes link n-1's hash and the canonical bytes of what
-- the transaction that wrote link n posted.
CREATE TABLE chain_links (
    tenant_id text NOT NULL,
    ledger_id text NOT NULL,
    link bigint NOT NULL,
    prev_hash blob NOT NULL,
    hash blob NOT NULL,
    first_seq bigint NOT NULL,
    last_seq bigint NOT NULL,
    committed_at_us bigint NOT NULL,
    PRIMARY KEY (tenant_id, ledger_id, link)
);

-- Durable event log, written in the same transaction as what it describes. Append-only.
CREATE TABLE events (
    seq integer PRIMARY KEY AUTOINCREMENT,
    id text NOT NULL UNIQUE,
    tenant_id text NOT NULL,
    ledger_id text NULL,
    type text NOT NULL,
    subject text NOT NULL,
    payload text NOT NULL,
    created_at_us bigint NOT NULL
);
CREATE INDEX events_tenant_seq ON events (tenant_id, seq);

-- Work queue of the relay: a row per event not yet relayed (deleted once relayed).
CREATE TABLE outbox (
    event_seq bigint PRIMARY KEY REFERENCES events (seq)
);

-- Idempotency-Key records (IETF httpapi draft): fingerprint of the request, response once done.
CREATE TABLE idempotency_keys (
    tenant_id text NOT NULL,
    key text NOT NULL,
    fingerprint blob NOT NULL,
    state integer NOT NULL,                   -- 1 in flight, 2 completed
    status_code integer NULL,
    response_body blob NULL,
    response_headers text NULL,
    created_at_us bigint NOT NULL,
    expires_at_us bigint NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at_us);

-- The journal is append-only.
CREATE TRIGGER transfers_no_update BEFORE UPDATE ON transfers BEGIN SELECT RAISE(ABORT, 'table transfers is append-only'); END;
CREATE TRIGGER transfers_no_delete BEFORE DELETE ON transfers BEGIN SELECT RAISE(ABORT, 'table transfers is append-only'); END;
CREATE TRIGGER transfer_resolutions_no_update BEFORE UPDATE ON transfer_resolutions BEGIN SELECT RAISE(ABORT, 'table transfer_resolutions is append-only'); END;
CREATE TRIGGER transfer_resolutions_no_delete BEFORE DELETE ON transfer_resolutions BEGIN SELECT RAISE(ABORT, 'table transfer_resolutions is append-only'); END;
CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries BEGIN SELECT RAISE(ABORT, 'table entries is append-only'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries BEGIN SELECT RAISE(ABORT, 'table entries is append-only'); END;
CREATE TRIGGER chain_links_no_update BEFORE UPDATE ON chain_links BEGIN SELECT RAISE(ABORT, 'table chain_links is append-only'); END;
CREATE TRIGGER chain_links_no_delete BEFORE DELETE ON chain_links BEGIN SELECT RAISE(ABORT, 'table chain_links is append-only'); END;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'table events is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'table events is append-only'); END;
