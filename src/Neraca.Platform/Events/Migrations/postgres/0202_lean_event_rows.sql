-- Issue #21: a posting writes an event row and an outbox row per transfer (their data is rendered from the journal on
-- read, Events/EventData.cs), and nothing reads either table by anything but seq. Two checks on that path guarded
-- nothing that can happen, at an index probe (and, for the foreign key, a queued trigger event) per transfer:
-- * the outbox's foreign key: each outbox row is inserted by the statement that inserts its event and takes that row's
--   seq; events are never deleted.
-- * the unique index on events.id: ids are fresh ULIDs (80 random bits within each millisecond) and no read looks an
--   event up by id.
-- SQLite, the embedded store, keeps both (dropping a constraint there means rebuilding the table).
ALTER TABLE outbox DROP CONSTRAINT outbox_event_seq_fkey;
ALTER TABLE events DROP CONSTRAINT events_id_key;
