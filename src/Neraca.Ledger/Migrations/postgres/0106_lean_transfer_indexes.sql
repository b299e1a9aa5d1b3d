-- A posting wrote two index entries per side of a transfer: (tenant, account, seq) for the account filter of transfer
-- lists, and a partial (tenant, account, entry_no) for the account's entries in order. One full index per side
-- serves both: lists filter on its leading columns, history pages and balance-at reads walk it by entry_no (a pending
-- transfer's NULL entry_no is indexed too, and the entries view's `entry_no IS NOT NULL` skips it). Two index
-- entries less on every transfer written (issue #21, docs/performance.md).
-- On a large table the two builds hold off writes to transfers while they run (docs/deploy.md, migrations):
-- run this version's migration in a quiet window.
DROP INDEX transfers_debit;
DROP INDEX transfers_credit;
DROP INDEX transfers_debit_entry;
DROP INDEX transfers_credit_entry;
CREATE INDEX transfers_debit_entry ON transfers (tenant_id, debit_account_id, debit_entry_no);
CREATE INDEX transfers_credit_entry ON transfers (tenant_id, credit_account_id, credit_entry_no);
