-- promo-oms schema, version 2: the admin service (services/admin,
-- docs/admin.md). Applied after 0001 by promo-migrate and every service
-- that needs PostgreSQL.

-- API tokens, stored only as the SHA-256 (hex) of the token; a revoked token
-- keeps its row (the audit trail names it).
CREATE TABLE admin_tokens (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    role          text NOT NULL CHECK (role IN ('admin', 'marketer', 'analyst', 'checkout')),
    token_sha256  text NOT NULL UNIQUE CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text NOT NULL,
    revoked_at    timestamptz
);

-- What the admin keeps about a code beyond its definition: a description
-- for people, the IANA time zone its window was entered in, and who created
-- and last changed it.
ALTER TABLE codes
    ADD COLUMN description text NOT NULL DEFAULT '' CHECK (length(description) <= 1000),
    ADD COLUMN timezone    text,
    ADD COLUMN created_by  text,
    ADD COLUMN updated_by  text;
CREATE INDEX codes_updated ON codes (updated_at DESC, code);

-- The audit views: admin changes by time and actor, dead letters by stage.
CREATE INDEX admin_changes_at ON admin_changes (at);
CREATE INDEX admin_changes_actor ON admin_changes (actor, at);
CREATE INDEX dead_letters_stage ON dead_letters (stage, priority DESC);
CREATE INDEX usage_events_customer ON usage_events (customer_id, occurred_at);
