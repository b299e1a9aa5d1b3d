-- Earned wage access (issue #14). Every table is keyed by tenant first. Times are integer microseconds since the
-- Unix epoch (as in the ledger); calendar dates are ISO text 'YYYY-MM-DD' in the employer's time zone.
-- Personal and bank data (*_enc) is field-encrypted by Neraca.Security (key id inside each value).

CREATE TABLE ewa_employers (
    tenant_id text NOT NULL,
    id text NOT NULL,
    name text NOT NULL,
    time_zone text NOT NULL,
    payday_day integer NOT NULL,
    holidays text NOT NULL,                    -- JSON array of 'YYYY-MM-DD'
    max_percent_bps integer NOT NULL,
    cycle_cap bigint NOT NULL,
    withdrawal_min bigint NOT NULL,
    withdrawal_max bigint NOT NULL,
    withdrawals_per_cycle_max integer NOT NULL,
    fee_flat bigint NOT NULL,
    fee_payer text NOT NULL,                   -- employee | employer
    blackout_days integer NOT NULL,
    waiting_days integer NOT NULL,
    funding text NOT NULL,                     -- employer_prefunded | provider_funded
    attendance_overdue_days integer NOT NULL,
    nightly_date text NULL,                    -- the last local date the nightly work was enqueued for
    attendance_at_us bigint NULL,              -- the last attendance upload
    created_at_us bigint NOT NULL,
    updated_at_us bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- Who acts for one employer only: an API key (principal 'key:<api key id>') or an end user ('sub:<subject>').
-- Callers not listed here with a server key are the platform operator (tenant-wide).
CREATE TABLE ewa_employer_access (
    tenant_id text NOT NULL,
    principal text NOT NULL,
    employer_id text NOT NULL,
    role text NOT NULL,                        -- admin | staff
    created_at_us bigint NOT NULL,
    PRIMARY KEY (tenant_id, principal, employer_id)
);

CREATE TABLE ewa_employees (
    tenant_id text NOT NULL,
    employer_id text NOT NULL,
    employee_id text NOT NULL,
    id text NOT NULL,                          -- surrogate id: the encryption context and job keys
    subject text NOT NULL,                     -- end-user token subject: 'ewa:<employer>:<employee_id>'
    name_enc text NOT NULL,
    email_enc text NULL,
    phone_enc text NULL,
    pay_type text NOT NULL,                    -- monthly | daily | hourly
    pay_rate bigint NOT NULL,
    start_date text NOT NULL,
    bank_code text NOT NULL,
    bank_account_enc text NOT NULL,
    status text NOT NULL,                      -- active | paused | terminated
    row_hash text NOT NULL,                    -- keyed hash of the imported fields: tells unchanged rows
    created_at_us bigint NOT NULL,
    updated_at_us bigint NOT NULL,
    PRIMARY KEY (tenant_id, employer_id, employee_id)
);
CREATE UNIQUE INDEX ewa_employees_id ON ewa_employees (tenant_id, id);
CREATE UNIQUE INDEX ewa_employees_subject ON ewa_employees (tenant_id, subject);

CREATE TABLE ewa_attendance (
    tenant_id text NOT NULL,
    employer_id text NOT NULL,
    employee_id text NOT NULL,
    work_date text NOT NULL,
    centihours integer NOT NULL,               -- hours x 100 (two decimals)
    updated_at_us bigint NOT NULL,
    PRIMARY KEY (tenant_id, employer_id, employee_id, work_date)
);

-- One row per employee and cycle: the serialization point of withdrawals (a guarded UPDATE in the transaction that
-- records the withdrawal) and the running figures the balance shows.
CREATE TABLE ewa_employee_cycles (
    tenant_id text NOT NULL,
    employer_id text NOT NULL,
    employee_id text NOT NULL,
    cycle text NOT NULL,                       -- the cycle's payday
    withdrawn bigint NOT NULL DEFAULT 0,       -- advances + fees the employee pays, of withdrawals not failed
    advances bigint NOT NULL DEFAULT 0,
    employee_fees bigint NOT NULL DEFAULT 0,
    employer_fees bigint NOT NULL DEFAULT 0,
    withdrawals integer NOT NULL DEFAULT 0,
    carry_in bigint NOT NULL DEFAULT 0,        -- unrecovered from the previous cycle
    earned_snapshot bigint NULL,               -- the nightly accrual
    snapshot_date text NULL,
    PRIMARY KEY (tenant_id, employer_id, employee_id, cycle)
);
CREATE INDEX ewa_employee_cycles_cycle ON ewa_employee_cycles (tenant_id, employer_id, cycle, employee_id);

CREATE TABLE ewa_withdrawals (
    tenant_id text NOT NULL,
    id text NOT NULL,
    employer_id text NOT NULL,
    employee_id text NOT NULL,
    cycle text NOT NULL,
    amount bigint NOT NULL,
    fee bigint NOT NULL,
    fee_payer text NOT NULL,
    status text NOT NULL,                      -- pending | processing | paid | failed
    destination_enc text NOT NULL,             -- JSON {type, code, account_number}
    destination_masked text NOT NULL,
    payout_id text NULL,
    failure_code text NULL,
    created_at_us bigint NOT NULL,
    updated_at_us bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX ewa_withdrawals_employee ON ewa_withdrawals (tenant_id, employer_id, employee_id, id);
CREATE INDEX ewa_withdrawals_cycle ON ewa_withdrawals (tenant_id, employer_id, cycle, status);
CREATE INDEX ewa_withdrawals_payout ON ewa_withdrawals (tenant_id, payout_id);
CREATE INDEX ewa_withdrawals_created ON ewa_withdrawals (tenant_id, employer_id, created_at_us);

CREATE TABLE ewa_cycles (
    tenant_id text NOT NULL,
    employer_id text NOT NULL,
    cycle text NOT NULL,
    start_date text NOT NULL,
    status text NOT NULL,                      -- closing | closed
    employees integer NOT NULL DEFAULT 0,
    advances bigint NOT NULL DEFAULT 0,
    fees bigint NOT NULL DEFAULT 0,
    due bigint NOT NULL DEFAULT 0,
    recovered bigint NOT NULL DEFAULT 0,
    carried bigint NOT NULL DEFAULT 0,
    closed_at_us bigint NULL,
    PRIMARY KEY (tenant_id, employer_id, cycle)
);

-- The deduction report of a closed cycle: written by the close, never changed afterwards.
CREATE TABLE ewa_deductions (
    tenant_id text NOT NULL,
    employer_id text NOT NULL,
    cycle text NOT NULL,
    employee_id text NOT NULL,
    withdrawals integer NOT NULL,
    advances bigint NOT NULL,
    fees bigint NOT NULL,
    carry_in bigint NOT NULL,
    due bigint NOT NULL,
    net_pay bigint NOT NULL,
    recovered bigint NOT NULL,
    carried bigint NOT NULL,
    PRIMARY KEY (tenant_id, employer_id, cycle, employee_id)
);

CREATE TABLE ewa_imports (
    tenant_id text NOT NULL,
    id text NOT NULL,
    employer_id text NOT NULL,
    status text NOT NULL,                      -- queued | running | completed
    content_enc text NULL,                     -- the uploaded CSV, encrypted (it carries bank accounts); cleared when done
    total_rows integer NOT NULL,
    processed integer NOT NULL DEFAULT 0,
    created integer NOT NULL DEFAULT 0,
    updated integer NOT NULL DEFAULT 0,
    unchanged integer NOT NULL DEFAULT 0,
    rejected integer NOT NULL DEFAULT 0,
    ignored_columns text NOT NULL,             -- JSON array: header columns the import does not use
    job_id text NULL,
    created_at_us bigint NOT NULL,
    finished_at_us bigint NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE ewa_import_errors (
    tenant_id text NOT NULL,
    import_id text NOT NULL,
    line integer NOT NULL,
    employee_id text NULL,
    reason text NOT NULL,
    PRIMARY KEY (tenant_id, import_id, line)
);
