-- Broadcast from the database (reference section 4.3). Repeatable: re-applied whenever this file changes.
--
-- realtime.send() and realtime.send_binary() insert a row into realtime.messages; the INSERT trigger below turns
-- each broadcast row into a notification on `herald_changes`, the stream that carries row changes, so broadcasts
-- and changes reach Herald in commit order:
--   {"broadcast": {"id": "<uuid>", "topic": …, "event": …, "private": true|false,
--                  "payload": <the jsonb> | null, "binary_payload": "<base64url, unpadded>" | null}}
-- Big notifications are parked like row changes (realtime.notify_change(), capture.sql).

-- The sub-topic being sent to (set by send()) or authorized (set by Herald); for RLS policies on realtime.messages.
CREATE OR REPLACE FUNCTION realtime.topic()
RETURNS text
LANGUAGE sql
STABLE
AS $$
    SELECT nullif(current_setting('realtime.topic', true), '')
$$;

-- Broadcasts a JSON payload to `topic` (a sub-topic, e.g. 'room1'), with `payload.id` set to the message id
-- unless present. Never fails: any error (bad arguments, an RLS refusal) becomes a warning and the caller's
-- transaction goes on.
CREATE OR REPLACE FUNCTION realtime.send(payload jsonb, event text, topic text, private boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    generated_id uuid;
BEGIN
    BEGIN
        generated_id := gen_random_uuid();
        IF NOT payload ? 'id' THEN
            payload := jsonb_set(payload, '{id}', to_jsonb(generated_id));
        END IF;
        PERFORM set_config('realtime.topic', topic, true);
        INSERT INTO realtime.messages (id, payload, event, topic, private, extension)
        VALUES (generated_id, payload, event, topic, private, 'broadcast');
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'WarnSendingBroadcastMessage: %', SQLERRM;
    END;
END
$$;

-- Broadcasts raw bytes (delivered as a binary user broadcast; V1 sockets do not get it). Never fails, like send().
CREATE OR REPLACE FUNCTION realtime.send_binary(payload bytea, event text, topic text, private boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    generated_id uuid;
BEGIN
    BEGIN
        generated_id := gen_random_uuid();
        PERFORM set_config('realtime.topic', topic, true);
        INSERT INTO realtime.messages (id, binary_payload, event, topic, private, extension)
        VALUES (generated_id, payload, event, topic, private, 'broadcast');
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'WarnSendingBroadcastMessage: %', SQLERRM;
    END;
END
$$;

-- For row triggers: broadcasts {"old_record","record","operation","table","schema"} (+ "id") to a private topic.
-- Errors here, unlike in send(), abort the statement, with upstream's messages.
CREATE OR REPLACE FUNCTION realtime.broadcast_changes(
    topic_name text,
    event_name text,
    operation text,
    table_name text,
    table_schema text,
    new record,
    old record,
    level text DEFAULT 'ROW'
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF level = 'STATEMENT' THEN
        RAISE EXCEPTION 'function can only be triggered for each row, not for each statement';
    END IF;
    IF operation IS NULL OR operation NOT IN ('INSERT', 'UPDATE', 'DELETE') THEN
        RAISE EXCEPTION 'Unexpected operation type: %', operation;
    END IF;
    PERFORM realtime.send(
        jsonb_build_object('old_record', old, 'record', new, 'operation', operation, 'table', table_name, 'schema', table_schema),
        event_name,
        topic_name
    );
EXCEPTION WHEN OTHERS THEN
    RAISE EXCEPTION 'Failed to process the row: %', SQLERRM;
END
$$;

-- The INSERT trigger on realtime.messages. SECURITY DEFINER so that roles allowed to send need no rights on
-- realtime.change_payloads.
CREATE OR REPLACE FUNCTION realtime.capture_broadcast()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM realtime.notify_change(jsonb_build_object('broadcast', jsonb_build_object(
        'id', NEW.id,
        'topic', NEW.topic,
        'event', NEW.event,
        'private', NEW.private,
        'payload', NEW.payload,
        -- base64url without padding (PostgreSQL's base64 also wraps lines): Herald's JWT decoder reads it.
        'binary_payload', translate(encode(NEW.binary_payload, 'base64'), E'+/=\n', '-_')
    ))::text);
    RETURN NULL;
END
$$;

-- Only 'broadcast' rows are delivered; the authorization checks of a later issue write probe rows and roll back.
CREATE OR REPLACE TRIGGER herald_broadcast
    AFTER INSERT ON realtime.messages
    FOR EACH ROW
    WHEN (NEW.extension = 'broadcast')
    EXECUTE FUNCTION realtime.capture_broadcast();

-- Deletes messages older than `retention`; Herald runs it periodically. Returns how many were deleted.
CREATE OR REPLACE FUNCTION realtime.delete_old_messages(retention interval)
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH deleted AS (
        DELETE FROM realtime.messages WHERE inserted_at < localtimestamp - retention RETURNING 1
    )
    SELECT count(*) FROM deleted
$$;
