-- Tenants own everything; every row of every capability carries tenant_id.
CREATE TABLE tenants (
    id text PRIMARY KEY,
    name text NOT NULL,
    created_at text NOT NULL
);

-- API keys are stored as SHA-256 of the full key; the clear key is shown once.
CREATE TABLE api_keys (
    id text PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants (id),
    name text NOT NULL,
    prefix text NOT NULL,
    key_hash blob NOT NULL UNIQUE,
    scopes text NOT NULL,
    created_at text NOT NULL,
    expires_at text NULL,
    revoked_at text NULL
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at);
