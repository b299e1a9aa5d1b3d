-- One journal row per posting (see the PostgreSQL migration of the same number): a posting carries its two entries on
-- the row that causes them, `entries` becomes a view with the old columns, and entries posted before this version stay
-- in entries_v1 (its append-only triggers follow the rename).
ALTER TABLE entries RENAME TO entries_v1;
CREATE INDEX entries_v1_ledger_seq ON entries_v1 (tenant_id, ledger_id, seq);

-- NULL when the row posts nothing: a pending transfer's creation.
ALTER TABLE transfers ADD COLUMN debit_entry_no bigint NULL;
ALTER TABLE transfers ADD COLUMN credit_entry_no bigint NULL;
ALTER TABLE transfers ADD COLUMN debit_balance_after bigint NULL;
ALTER TABLE transfers ADD COLUMN credit_balance_after bigint NULL;
-- NULL for a void or an expiry (they post nothing); a post names the accounts and the business time of its entries.
ALTER TABLE transfer_resolutions ADD COLUMN debit_account_id text NULL;
ALTER TABLE transfer_resolutions ADD COLUMN credit_account_id text NULL;
ALTER TABLE transfer_resolutions ADD COLUMN effective_at_us bigint NULL;
ALTER TABLE transfer_resolutions ADD COLUMN debit_entry_no bigint NULL;
ALTER TABLE transfer_resolutions ADD COLUMN credit_entry_no bigint NULL;
ALTER TABLE transfer_resolutions ADD COLUMN debit_balance_after bigint NULL;
ALTER TABLE transfer_resolutions ADD COLUMN credit_balance_after bigint NULL;

CREATE INDEX transfers_debit_entry ON transfers (tenant_id, debit_account_id, debit_entry_no) WHERE debit_entry_no IS NOT NULL;
CREATE INDEX transfers_credit_entry ON transfers (tenant_id, credit_account_id, credit_entry_no) WHERE credit_entry_no IS NOT NULL;
CREATE INDEX transfer_resolutions_debit_entry ON transfer_resolutions (tenant_id, debit_account_id, debit_entry_no) WHERE debit_entry_no IS NOT NULL;
CREATE INDEX transfer_resolutions_credit_entry ON transfer_resolutions (tenant_id, credit_account_id, credit_entry_no) WHERE credit_entry_no IS NOT NULL;

-- Same shape as on PostgreSQL: the filter outside the union reaches every branch, and their partial indexes.
CREATE VIEW entries AS
SELECT tenant_id, account_id, entry_no, ledger_id, seq, link, transfer_id, direction, amount, balance_after, posted_at_us, effective_at_us
FROM (
    SELECT tenant_id, account_id, entry_no, ledger_id, seq, link, transfer_id, direction, amount, balance_after, posted_at_us, effective_at_us
    FROM entries_v1
    UNION ALL
    SELECT tenant_id, debit_account_id, debit_entry_no, ledger_id, seq, link, id, 1, amount, debit_balance_after, created_at_us, effective_at_us
    FROM transfers
    UNION ALL
    SELECT tenant_id, credit_account_id, credit_entry_no, ledger_id, seq, link, id, 2, amount, credit_balance_after, created_at_us, effective_at_us
    FROM transfers
    UNION ALL
    SELECT tenant_id, debit_account_id, debit_entry_no, ledger_id, seq, link, transfer_id, 1, amount, debit_balance_after, resolved_at_us, effective_at_us
    FROM transfer_resolutions
    UNION ALL
    SELECT tenant_id, credit_account_id, credit_entry_no, ledger_id, seq, link, transfer_id, 2, amount, credit_balance_after, resolved_at_us, effective_at_us
    FROM transfer_resolutions
) sides
WHERE entry_no IS NOT NULL;

-- A server of the previous version still inserts into `entries` during a rolling deployment: into entries_v1.
CREATE TRIGGER entries_insert INSTEAD OF INSERT ON entries BEGIN
    INSERT INTO entries_v1 (tenant_id, account_id, entry_no, ledger_id, seq, link, transfer_id, direction, amount, balance_after, posted_at_us, effective_at_us)
    VALUES (NEW.tenant_id, NEW.account_id, NEW.entry_no, NEW.ledger_id, NEW.seq, NEW.link, NEW.transfer_id, NEW.direction, NEW.amount, NEW.balance_after,
            NEW.posted_at_us, NEW.effective_at_us);
END;
