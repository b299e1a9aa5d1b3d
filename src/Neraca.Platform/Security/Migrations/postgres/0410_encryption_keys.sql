-- Field encryption (personal and bank data of payouts, earned wage access and banking): the key ring used when none
-- is configured (Encryption:KeysFile or Encryption:Keys): generated once, shared by every replica. Configured keys
-- are never written here. Rows: 'data:<id>' (AES-256-GCM keys), 'lookup' (HMAC key of the lookup hashes).
CREATE TABLE encryption_keys (
    id text PRIMARY KEY,
    secret bytea NOT NULL,
    created_at_us bigint NOT NULL
);
