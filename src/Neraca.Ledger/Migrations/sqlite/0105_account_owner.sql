-- End-user ownership (issue 23, finding 4): the subject (`sub`) of the end-user tokens that may see and debit an
-- account. NULL: no end user owns it (funding, fee, settlement accounts), only server keys reach it. Set at creation by
-- a server, never changed. The index serves an end user's account list and the owner filter of its transfer list.
ALTER TABLE accounts ADD COLUMN owner text NULL;
CREATE INDEX accounts_owner ON accounts (tenant_id, owner, id) WHERE owner IS NOT NULL;
