-- Audit verification reads a link's resolutions by its seq range.
CREATE INDEX transfer_resolutions_seq ON transfer_resolutions (tenant_id, ledger_id, seq);
