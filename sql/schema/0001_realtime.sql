-- Herald's own tables. `herald.schema_migrations` is created by the migrator before anything runs.

CREATE SCHEMA IF NOT EXISTS realtime;
CREATE SCHEMA IF NOT EXISTS herald;

-- Change payloads too big for NOTIFY (8000 bytes), parked by realtime.capture_changes() and taken
-- (DELETE ... RETURNING) by Herald's listener when the `{"ref": id}` notification arrives.
CREATE TABLE realtime.change_payloads (
    id bigserial PRIMARY KEY,
    payload text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
