-- Split bills (issue 15). Every table is keyed by tenant first; times are integer microseconds since the Unix epoch,
-- amounts integer minor units. Balances are sums over split_shares and completed split_settlements.

CREATE TABLE split_groups (
    tenant_id text NOT NULL,
    id text NOT NULL,
    name text NOT NULL,
    currency text NOT NULL,
    simplify_debts smallint NOT NULL,          -- 1 yes, 0 no
    invite_code text NOT NULL,
    created_at_us bigint NOT NULL,
    updated_at_us bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX split_groups_invite ON split_groups (tenant_id, invite_code);
CREATE INDEX split_groups_list ON split_groups (tenant_id, created_at_us, id);

CREATE TABLE split_members (
    tenant_id text NOT NULL,
    group_id text NOT NULL,
    id text NOT NULL,
    name text NOT NULL,
    account text NULL,                         -- a ledger wallet for wallet settle-ups
    subject text NULL,                         -- the end user (token subject) this member is
    status smallint NOT NULL,                  -- 1 active, 2 inactive, 3 removed
    position integer NOT NULL,
    created_at_us bigint NOT NULL,
    PRIMARY KEY (tenant_id, group_id, id)
);
CREATE UNIQUE INDEX split_members_subject ON split_members (tenant_id, subject, group_id) WHERE subject IS NOT NULL;

CREATE TABLE split_expenses (
    tenant_id text NOT NULL,
    group_id text NOT NULL,
    id text NOT NULL,
    description text NOT NULL,
    amount bigint NOT NULL,                    -- in the expense's currency
    currency text NOT NULL,
    exchange_rate text NULL,                   -- group currency per unit of the expense's currency, as sent
    group_amount bigint NOT NULL,              -- converted, banker's rounding
    expense_date text NOT NULL,                -- yyyy-mm-dd
    input text NOT NULL,                       -- the expense as last accepted (paid_by, split), JSON
    fingerprint text NOT NULL,                 -- SHA-256 of the creating request: same id + other body is a conflict
    recurring_id text NULL,
    created_by text NOT NULL,
    created_at_us bigint NOT NULL,
    updated_at_us bigint NOT NULL,
    deleted_at_us bigint NULL,
    receipt_status smallint NULL,              -- 1 processing, 2 ready, 3 rejected
    receipt_reason text NULL,
    receipt_upload text NULL,                  -- blob key of the raw upload while processing
    receipt_blob text NULL,                    -- blob key of the cleaned image (its SHA-256)
    receipt_type text NULL,
    receipt_thumb text NULL,
    receipt_width integer NULL,
    receipt_height integer NULL,
    PRIMARY KEY (tenant_id, group_id, id)
);
CREATE INDEX split_expenses_list ON split_expenses (tenant_id, group_id, created_at_us, id);

-- One row per member of an expense: what they paid and what they owe, both in the group's currency.
CREATE TABLE split_shares (
    tenant_id text NOT NULL,
    group_id text NOT NULL,
    expense_id text NOT NULL,
    member_id text NOT NULL,
    paid bigint NOT NULL,
    owed bigint NOT NULL,
    PRIMARY KEY (tenant_id, group_id, expense_id, member_id)
);
CREATE INDEX split_shares_member ON split_shares (tenant_id, group_id, member_id);

CREATE TABLE split_settlements (
    tenant_id text NOT NULL,
    group_id text NOT NULL,
    id text NOT NULL,
    from_member text NOT NULL,
    to_member text NOT NULL,
    amount bigint NOT NULL,
    method smallint NOT NULL,                  -- 1 cash, 2 wallet
    status smallint NOT NULL,                  -- 1 pending, 2 completed, 3 failed
    transfer_id text NULL,
    failure_code text NULL,
    failure_detail text NULL,
    fingerprint text NOT NULL,
    created_by text NOT NULL,
    created_by_subject text NULL,              -- wallet money moves as this end user sees the ledger
    created_at_us bigint NOT NULL,
    completed_at_us bigint NULL,
    PRIMARY KEY (tenant_id, group_id, id)
);
CREATE INDEX split_settlements_list ON split_settlements (tenant_id, group_id, created_at_us, id);

-- Who changed what: every create, edit and deletion with the state before and after.
CREATE TABLE split_activity (
    tenant_id text NOT NULL,
    group_id text NOT NULL,
    id text NOT NULL,                          -- act_ + ULID: sortable by time
    target text NOT NULL,                      -- expense, settlement, member, group, recurring
    target_id text NOT NULL,
    action text NOT NULL,
    actor text NOT NULL,
    at_us bigint NOT NULL,
    before_json text NULL,
    after_json text NULL,
    PRIMARY KEY (tenant_id, group_id, id)
);

CREATE TABLE split_recurring (
    tenant_id text NOT NULL,
    group_id text NOT NULL,
    id text NOT NULL,
    frequency smallint NOT NULL,               -- 1 weekly, 2 monthly
    start_date text NOT NULL,
    end_date text NULL,
    next_index integer NOT NULL,               -- the next period to materialise (0 = start_date)
    next_date text NOT NULL,
    template text NOT NULL,                    -- the expense to create each period, JSON
    active smallint NOT NULL,
    created_by text NOT NULL,
    created_at_us bigint NOT NULL,
    PRIMARY KEY (tenant_id, group_id, id)
);
CREATE INDEX split_recurring_due ON split_recurring (tenant_id, next_date) WHERE active = 1;
