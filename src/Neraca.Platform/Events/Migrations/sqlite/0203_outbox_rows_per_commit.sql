-- An outbox row may stand for all the events of one posting commit (issue #21): event_seq is the first of them,
-- last_seq the last, and the row covers the events of the writing transaction in between (Events/EventEnvelope.cs,
-- EventLog). A batch of 8,000 transfers writes one outbox row instead of 8,000, and the relay claims, relays and deletes
-- it as one. NULL: the row's one event (every other writer of events).
ALTER TABLE outbox ADD COLUMN last_seq bigint NULL;
