-- Issue #18: one-time sign-in codes a tenant's backend creates for an end user (POST /v1/web/sign-in-codes); the web
-- app exchanges one for a session cookie. Stored as SHA-256; used once; short-lived. Times: microseconds since the epoch.
CREATE TABLE web_sign_in_codes (
    code_hash bytea PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants (id),
    subject text NOT NULL,
    scopes text NOT NULL,
    created_at_us bigint NOT NULL,
    expires_at_us bigint NOT NULL,
    used_at_us bigint NULL
);
CREATE INDEX web_sign_in_codes_expiry ON web_sign_in_codes (tenant_id, expires_at_us);
