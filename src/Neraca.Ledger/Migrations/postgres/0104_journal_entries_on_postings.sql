-- One journal row per posting. A posted transfer used to write its row plus two entries rows (four indexes each); the
-- INSERT INTO entries was the most expensive statement of the write path. From this version a posting carries its two
-- entries (numbers and running balances) on the row that causes them: the transfer for a transfer created posted, the
-- resolution for the post of a pending transfer. `entries` becomes a view with exactly the old columns, so every reader
-- sees the same rows; entries posted before this version stay in entries_v1 (append-only triggers included).
ALTER TABLE entries RENAME TO entries_v1;
-- Audit verification reads a link's entries by its seq range, like its transfers and resolutions.
CREATE INDEX entries_v1_ledger_seq ON entries_v1 (tenant_id, ledger_id, seq);

-- NULL when the row posts nothing: a pending transfer's creation.
ALTER TABLE transfers
    ADD COLUMN debit_entry_no bigint NULL,
    ADD COLUMN credit_entry_no bigint NULL,
    ADD COLUMN debit_balance_after bigint NULL,
    ADD COLUMN credit_balance_after bigint NULL;
-- NULL for a void or an expiry (they post nothing); a post names the accounts and the business time of its entries.
ALTER TABLE transfer_resolutions
    ADD COLUMN debit_account_id text NULL,
    ADD COLUMN credit_account_id text NULL,
    ADD COLUMN effective_at_us bigint NULL,
    ADD COLUMN debit_entry_no bigint NULL,
    ADD COLUMN credit_entry_no bigint NULL,
    ADD COLUMN debit_balance_after bigint NULL,
    ADD COLUMN credit_balance_after bigint NULL;

-- An account's entries in order (history pages, balance at a time): one index per side of each journal table, merged
-- by entry_no through the view.
CREATE INDEX transfers_debit_entry ON transfers (tenant_id, debit_account_id, debit_entry_no) WHERE debit_entry_no IS NOT NULL;
CREATE INDEX transfers_credit_entry ON transfers (tenant_id, credit_account_id, credit_entry_no) WHERE credit_entry_no IS NOT NULL;
CREATE INDEX transfer_resolutions_debit_entry ON transfer_resolutions (tenant_id, debit_account_id, debit_entry_no) WHERE debit_entry_no IS NOT NULL;
CREATE INDEX transfer_resolutions_credit_entry ON transfer_resolutions (tenant_id, credit_account_id, credit_entry_no) WHERE credit_entry_no IS NOT NULL;

-- One branch per side of each journal table; rows that post nothing have a NULL entry_no. The filter stands outside
-- the union on purpose: PostgreSQL flattens a UNION ALL into one append of its branches only when the branches have
-- no WHERE of their own and exactly the same column types, and only then does it push a reader's filters into each
-- branch (where entry_no IS NOT NULL lets it use the partial indexes) and merge the branches' index order for
-- ORDER BY entry_no LIMIT n (a history page reads n rows, not the account's whole history).
CREATE VIEW entries AS
SELECT tenant_id, account_id, entry_no, ledger_id, seq, link, transfer_id, direction, amount, balance_after, posted_at_us, effective_at_us
FROM (
    SELECT tenant_id, account_id, entry_no, ledger_id, seq, link, transfer_id, direction, amount, balance_after, posted_at_us, effective_at_us
    FROM entries_v1
    UNION ALL
    SELECT tenant_id, debit_account_id, debit_entry_no, ledger_id, seq, link, id, 1::smallint, amount, debit_balance_after, created_at_us, effective_at_us
    FROM transfers
    UNION ALL
    SELECT tenant_id, credit_account_id, credit_entry_no, ledger_id, seq, link, id, 2::smallint, amount, credit_balance_after, created_at_us, effective_at_us
    FROM transfers
    UNION ALL
    SELECT tenant_id, debit_account_id, debit_entry_no, ledger_id, seq, link, transfer_id, 1::smallint, amount, debit_balance_after, resolved_at_us, effective_at_us
    FROM transfer_resolutions
    UNION ALL
    SELECT tenant_id, credit_account_id, credit_entry_no, ledger_id, seq, link, transfer_id, 2::smallint, amount, credit_balance_after, resolved_at_us, effective_at_us
    FROM transfer_resolutions
) sides
WHERE entry_no IS NOT NULL;

-- A server of the previous version still inserts its entries into `entries` during a rolling deployment: they land in
-- entries_v1, where the view and the audit chain find them.
CREATE FUNCTION neraca_entries_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO entries_v1 (tenant_id, account_id, entry_no, ledger_id, seq, link, transfer_id, direction, amount, balance_after, posted_at_us, effective_at_us)
    VALUES (NEW.tenant_id, NEW.account_id, NEW.entry_no, NEW.ledger_id, NEW.seq, NEW.link, NEW.transfer_id, NEW.direction, NEW.amount, NEW.balance_after,
            NEW.posted_at_us, NEW.effective_at_us);
    RETURN NEW;
END $$;
CREATE TRIGGER entries_insert INSTEAD OF INSERT ON entries FOR EACH ROW EXECUTE FUNCTION neraca_entries_insert();
