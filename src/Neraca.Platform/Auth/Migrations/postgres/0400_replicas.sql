-- Issue #4: API-key listing by tenant in id (= creation) order, end-user refresh tokens and the built-in JWT signing key.
CREATE INDEX api_keys_tenant_id ON api_keys (tenant_id, id);

-- Refresh tokens are stored as SHA-256; rotation marks the used one and issues the next of the same family.
-- Reusing a used token revokes the whole family (it was stolen or replayed). Times: microseconds since the epoch.
CREATE TABLE refresh_tokens (
    id text PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants (id),
    family_id text NOT NULL,
    subject text NOT NULL,
    scopes text NOT NULL,
    token_hash bytea NOT NULL UNIQUE,
    created_at_us bigint NOT NULL,
    expires_at_us bigint NOT NULL,
    used_at_us bigint NULL,
    revoked_at_us bigint NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (tenant_id, family_id);
CREATE INDEX refresh_tokens_subject ON refresh_tokens (tenant_id, subject);

-- The key the built-in token endpoint signs with when none is configured: created once, shared by every replica.
CREATE TABLE auth_signing_keys (
    id text PRIMARY KEY,
    algorithm text NOT NULL,
    secret bytea NOT NULL,
    created_at_us bigint NOT NULL
);
