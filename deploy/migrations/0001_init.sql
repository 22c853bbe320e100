-- promo-oms schema, version 1. Applied by `promo-migrate` (and by every
-- service that needs PostgreSQL at start) inside one transaction under an
-- advisory lock; recorded in schema_migrations. Never edit an applied file:
-- add the next one. Money is bigint minor units with its currency; instants
-- are timestamptz (UTC).

-- Code definitions: the source of truth (the admin writes them, the validators
-- read them on a Redis miss). definition is the JSON of PRICING_SPEC.md
-- section 3 with version and updated_at.
CREATE TABLE codes (
    code        text PRIMARY KEY CHECK (code ~ '^[A-Z0-9_-]{3,64}$'),
    definition  jsonb NOT NULL,
    status      text NOT NULL CHECK (status IN ('active', 'paused', 'archived')),
    version     bigint NOT NULL CHECK (version > 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Customers with their tier and purchase history (fed by the CRM; the VIP
-- generator of the admin reads orders_count, total_spend and last_order_at).
CREATE TABLE customers (
    customer_id    text PRIMARY KEY,
    tier           text,
    orders_count   bigint NOT NULL DEFAULT 0 CHECK (orders_count >= 0),
    total_spend    bigint NOT NULL DEFAULT 0 CHECK (total_spend >= 0),
    currency       char(3),
    last_order_at  timestamptz,
    engagement     integer NOT NULL DEFAULT 0 CHECK (engagement BETWEEN 0 AND 100),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Units available per SKU (fed by inventory.levels).
CREATE TABLE inventory (
    sku         text PRIMARY KEY,
    stock       bigint NOT NULL CHECK (stock >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Every redemption a validator granted, written in the same batch as its
-- Kafka transaction: the durable source Redis usage counters are rebuilt
-- from. One row per (order, code): a redelivered order never counts twice.
CREATE TABLE redemptions (
    order_id        text NOT NULL,
    code            text NOT NULL,
    customer_id     text,
    reservation_id  text NOT NULL,
    reserved_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, code)
);
CREATE INDEX redemptions_code_customer ON redemptions (code, customer_id);

-- The audit trail: one row per code decision (promo.usage), exactly once.
CREATE TABLE usage_events (
    event_id         text PRIMARY KEY,
    order_id         text NOT NULL,
    channel          text NOT NULL,
    account          text NOT NULL,
    code             text NOT NULL,
    customer_id      text,
    outcome          text NOT NULL CHECK (outcome IN ('applied', 'rejected')),
    reason           text,
    value_applied    bigint NOT NULL CHECK (value_applied >= 0),
    currency         char(3) NOT NULL,
    occurred_at      timestamptz NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    kafka_partition  integer,
    kafka_offset     bigint
);
CREATE INDEX usage_events_code_time ON usage_events (code, occurred_at);
CREATE INDEX usage_events_time ON usage_events (occurred_at);
CREATE INDEX usage_events_order ON usage_events (order_id);

-- Applied redemptions per code and per customer, kept by the audit-sink in
-- the same transaction as the usage rows.
CREATE TABLE usage_counters (
    code         text PRIMARY KEY,
    redemptions  bigint NOT NULL DEFAULT 0,
    rejections   bigint NOT NULL DEFAULT 0
);
CREATE TABLE customer_usage_counters (
    code         text NOT NULL,
    customer_id  text NOT NULL,
    redemptions  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (code, customer_id)
);

-- Dead letters of every stage, for the DLQ view; source is
-- "<dlq topic>:<partition>:<offset>" of the DeadLetter record.
CREATE TABLE dead_letters (
    source             text PRIMARY KEY,
    stage              text NOT NULL,
    reason             text NOT NULL,
    error              text NOT NULL,
    attempts           integer NOT NULL,
    priority           bigint NOT NULL,
    first_failure_at   timestamptz,
    last_failure_at    timestamptz,
    source_topic       text,
    source_partition   integer,
    source_offset      bigint,
    original_key       bytea,
    original_value     bytea NOT NULL,
    original_headers   jsonb NOT NULL DEFAULT '[]',
    recorded_at        timestamptz NOT NULL DEFAULT now(),
    replayed_at        timestamptz,
    replayed_by        text
);
CREATE INDEX dead_letters_open ON dead_letters (priority DESC, last_failure_at)
    WHERE replayed_at IS NULL;

-- Every admin change: who, when, what, before and after.
CREATE TABLE admin_changes (
    id          bigserial PRIMARY KEY,
    actor       text NOT NULL,
    action      text NOT NULL,
    entity      text NOT NULL,
    entity_id   text NOT NULL,
    before      jsonb,
    after       jsonb,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX admin_changes_entity ON admin_changes (entity, entity_id, at);
