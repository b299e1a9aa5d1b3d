-- The posting path no longer notifies inside its transaction: PostgreSQL holds one database-wide lock from a
-- notifying transaction's pre-commit until its commit record is flushed, so every notifying commit waited for the
-- previous one's fsync and the ledgers of a deployment, which otherwise commit in parallel, took turns. A posting
-- transaction sets neraca.outbox_notify = off and notifies after its commit (Events/OutboxNotifier); every other
-- writer of events keeps the trigger.
CREATE OR REPLACE FUNCTION neraca_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('neraca.outbox_notify', true) IS DISTINCT FROM 'off' THEN
        PERFORM pg_notify('neraca_outbox', '');
    END IF;
    RETURN NULL;
END $$;
