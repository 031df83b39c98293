-- Broadcast from the database (reference section 4.3): rows written by realtime.send() / send_binary()
-- (sql/realtime/broadcast.sql). Upstream's columns; unlike upstream the table is not partitioned by day: Herald
-- deletes rows older than its retention (3 days by default) with realtime.delete_old_messages(), so the
-- primary key is the id alone and inserted_at is indexed for that sweep.
CREATE TABLE realtime.messages (
    topic text NOT NULL,
    extension text NOT NULL,
    payload jsonb,
    binary_payload bytea,
    event text,
    private boolean DEFAULT false,
    updated_at timestamp NOT NULL DEFAULT now(),
    inserted_at timestamp NOT NULL DEFAULT now(),
    id uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    CONSTRAINT messages_one_payload CHECK (payload IS NULL OR binary_payload IS NULL)
);

CREATE INDEX messages_inserted_at_idx ON realtime.messages (inserted_at);

-- Policies on this table decide who may read and write private channels (a later issue); Herald's own
-- connection owns the table and is not subject to them.
ALTER TABLE realtime.messages ENABLE ROW LEVEL SECURITY;
