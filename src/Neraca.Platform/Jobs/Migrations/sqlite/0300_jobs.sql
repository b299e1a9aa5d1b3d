-- Background jobs. Times are integer microseconds since the Unix epoch, like the ledger's.

-- The durable queue. A job is claimed by setting lock_token (the id of its current run) and pushing
-- due_at_us to the end of the lease; a worker that dies stops renewing it and another one takes over.
CREATE TABLE jobs (
    id text PRIMARY KEY,
    tenant_id text NOT NULL,
    type text NOT NULL,
    job_key text NULL,                         -- same tenant + type + key = the same job, enqueued once
    payload text NOT NULL,
    state integer NOT NULL,                   -- 1 queued, 2 running, 3 succeeded, 4 dead
    attempts integer NOT NULL DEFAULT 0,
    attempts_max integer NOT NULL,
    due_at_us bigint NOT NULL,                 -- queued: earliest start; running: lease expiry
    lock_token text NULL,
    checkpoint text NULL,                      -- where a chunked job resumes, committed with each chunk
    processed bigint NOT NULL DEFAULT 0,
    last_error text NULL,
    schedule text NULL,
    slot_us bigint NULL,
    created_at_us bigint NOT NULL,
    updated_at_us bigint NOT NULL,
    finished_at_us bigint NULL
);
CREATE UNIQUE INDEX jobs_key ON jobs (tenant_id, type, job_key) WHERE job_key IS NOT NULL;
CREATE INDEX jobs_due ON jobs (due_at_us) WHERE state IN (1, 2);
CREATE INDEX jobs_type_due ON jobs (type, due_at_us) WHERE state IN (1, 2);
CREATE INDEX jobs_tenant ON jobs (tenant_id, id);
CREATE INDEX jobs_finished ON jobs (finished_at_us) WHERE state IN (3, 4);

-- One row per attempt: who ran it, how it ended (1 succeeded, 2 failed, 3 abandoned: its lease expired).
CREATE TABLE job_runs (
    id text PRIMARY KEY,
    tenant_id text NOT NULL,
    job_id text NOT NULL,
    attempt integer NOT NULL,
    worker text NOT NULL,
    started_at_us bigint NOT NULL,
    finished_at_us bigint NULL,
    result integer NULL,
    error text NULL,
    processed bigint NOT NULL DEFAULT 0
);
CREATE INDEX job_runs_job ON job_runs (tenant_id, job_id, attempt);

-- Recurring schedules and the next slot each is due for.
CREATE TABLE job_schedules (
    name text PRIMARY KEY,
    cron text NOT NULL,
    time_zone text NOT NULL,
    next_slot_us bigint NOT NULL,
    updated_at_us bigint NOT NULL
);

-- One row per (schedule, slot) ever enqueued: the unique key is what makes a slot run once across replicas.
CREATE TABLE job_slots (
    schedule text NOT NULL,
    slot_us bigint NOT NULL,
    jobs integer NOT NULL,
    enqueued_at_us bigint NOT NULL,
    PRIMARY KEY (schedule, slot_us)
);
CREATE INDEX job_slots_slot ON job_slots (slot_us);

-- Audit-chain heads recorded by the hourly checkpoint job: verification can start from one, and a
-- rewritten chain no longer matches the head recorded before the rewrite.
CREATE TABLE audit_checkpoints (
    tenant_id text NOT NULL,
    ledger_id text NOT NULL,
    link bigint NOT NULL,
    head blob NOT NULL,
    last_seq bigint NOT NULL,
    recorded_at_us bigint NOT NULL,
    PRIMARY KEY (tenant_id, ledger_id, link)
);
