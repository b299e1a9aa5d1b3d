-- Banking (issue #16), second part: withdrawals to banks and e-wallets through the payouts capability, and the
-- tenant's banking settings (its time zone).

-- A withdrawal is the payout 'bank:wd:<id>' from the account (payouts reserve, send, then post or void). Banking keeps
-- why and for whom. destination_enc is the destination (JSON) as AES-256-GCM ciphertext with its key id, bound to
-- (table, column, tenant, id), kept so that a withdrawal whose process died before asking payouts is finished by its
-- backstop job; lists show destination_masked. request_hash is a keyed hash of the request's fields: "the same
-- request" for a retry, compared without decrypting.
CREATE TABLE banking_withdrawals (
    tenant_id text NOT NULL,
    id text NOT NULL,
    account_id text NOT NULL,
    customer_id text NOT NULL,
    amount bigint NOT NULL,
    destination_type text NOT NULL,
    destination_code text NOT NULL,
    destination_masked text NOT NULL,
    destination_enc text NOT NULL,
    reference text NOT NULL,
    description text NULL,
    request_hash text NOT NULL,
    status text NOT NULL,
    payout_id text NULL,
    failure_code text NULL,
    failure_detail text NULL,
    limit_customer text NULL,
    limit_day text NULL,
    created_at_us bigint NOT NULL,
    updated_at_us bigint NOT NULL,
    completed_at_us bigint NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX banking_withdrawals_account ON banking_withdrawals (tenant_id, account_id, created_at_us, id);

-- One row per tenant that changed a default (Banking:TimeZone / TenantTimeZones apply otherwise).
CREATE TABLE banking_settings (
    tenant_id text NOT NULL PRIMARY KEY,
    time_zone text NOT NULL,
    updated_at_us bigint NOT NULL
);

-- The time zone a statement's dates were read in, fixed when it is requested: a later change of the tenant's time zone
-- never changes what an issued (or pending) statement covers. NULL on statements issued before this migration (they
-- were all in the configured zone).
ALTER TABLE banking_statements ADD COLUMN time_zone text NULL;
