-- Events: the feed's visibility horizon, the relay's wake-up, webhook endpoints and their deliveries.

-- The transaction that wrote each event (xid8 as bigint: 64-bit, never wraps). bigserial values can commit
-- out of order across concurrent transactions, so the feed serves only events whose transaction is older than
-- every transaction still in flight (pg_snapshot_xmin); see Events/EventFeed.cs.
ALTER TABLE events ADD COLUMN tx_id bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX events_tenant_tx ON events (tenant_id, tx_id);

-- Wakes the relay (and the SSE streams) when a posting transaction that wrote outbox rows commits; one
-- notification per statement, delivered at commit, never for a rolled-back transaction.
CREATE FUNCTION neraca_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('neraca_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION neraca_outbox_notify();

CREATE TABLE webhook_endpoints (
    tenant_id text NOT NULL REFERENCES tenants (id),
    id text NOT NULL,
    url text NOT NULL,
    event_types text NOT NULL,                 -- space-separated patterns: '*', 'transfer.*', 'transfer.posted'
    description text NULL,
    secret text NOT NULL,                      -- the HMAC key; needed in clear to sign
    state smallint NOT NULL,                   -- 1 enabled, 2 disabled
    consecutive_failures integer NOT NULL DEFAULT 0,
    disabled_reason text NULL,
    created_at_us bigint NOT NULL,
    disabled_at_us bigint NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX webhook_endpoints_enabled ON webhook_endpoints (tenant_id) WHERE state = 1;

-- One row per (endpoint, event): the relay writes them, the dispatcher sends them.
CREATE TABLE webhook_deliveries (
    id text PRIMARY KEY,
    tenant_id text NOT NULL,
    endpoint_id text NOT NULL,
    event_seq bigint NOT NULL REFERENCES events (seq),
    ordering_key text NOT NULL,                -- what must stay in order: the account(s) a transfer event touches,
    ordering_key2 text NULL,                   -- else the event's subject; one delivery per key in flight per endpoint
    state smallint NOT NULL,                   -- 1 pending, 2 delivered, 3 dead (the dead-letter queue)
    attempts integer NOT NULL DEFAULT 0,       -- attempts since created or last replayed (drives backoff and the DLQ)
    attempt_count integer NOT NULL DEFAULT 0,  -- all attempts ever (numbers webhook_attempts)
    next_attempt_at_us bigint NOT NULL,
    lease_until_us bigint NOT NULL DEFAULT 0,  -- a worker is sending it until then; expired leases are taken over
    lease_token text NULL,
    last_status_code integer NULL,
    last_error text NULL,
    created_at_us bigint NOT NULL,
    delivered_at_us bigint NULL,
    dead_at_us bigint NULL,
    UNIQUE (tenant_id, endpoint_id, event_seq),
    FOREIGN KEY (tenant_id, endpoint_id) REFERENCES webhook_endpoints (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (tenant_id, endpoint_id, event_seq) WHERE state = 1;
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (tenant_id, endpoint_id, ordering_key, event_seq) WHERE state = 1;
CREATE INDEX webhook_deliveries_order2 ON webhook_deliveries (tenant_id, endpoint_id, ordering_key2, event_seq) WHERE state = 1 AND ordering_key2 IS NOT NULL;
CREATE INDEX webhook_deliveries_list ON webhook_deliveries (tenant_id, endpoint_id, id);
CREATE INDEX webhook_deliveries_dead ON webhook_deliveries (tenant_id, endpoint_id, id) WHERE state = 3;

CREATE TABLE webhook_attempts (
    delivery_id text NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt_no integer NOT NULL,
    started_at_us bigint NOT NULL,
    duration_us bigint NOT NULL,
    status_code integer NULL,
    error text NULL,
    response_body text NULL,                   -- first KiB of the receiver's answer
    PRIMARY KEY (delivery_id, attempt_no)
);
