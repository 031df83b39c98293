-- Change capture with triggers + NOTIFY. Repeatable: re-applied whenever this file changes.
-- The `herald_capture` trigger also marks a table as captured for the replication change source, which keeps
-- its publication equal to realtime.captured_tables() and turns the triggers off (realtime.set_capture_triggers).
--
-- Every captured row change sends on channel `herald_changes` the JSON text
--   {"schema":…,"table":…,"type":"INSERT|UPDATE|DELETE","xid":"<txid>","columns":[{"name":…,"type":…}],
--    "record":{…} (INSERT, UPDATE),"old_record":{…} (UPDATE, DELETE)}
-- built as text so that keys keep this order, through realtime.notify_change() (which also carries database
-- broadcasts, sql/realtime/broadcast.sql).

-- Sends one notification on `herald_changes`. Payloads over 7900 bytes (NOTIFY's limit is 8000) are parked in
-- realtime.change_payloads and `{"ref":<id>}` is sent instead; Herald's listener takes the parked text back.
-- Both NOTIFY and the parked row are transactional: a rolled-back transaction leaves nothing behind.
CREATE OR REPLACE FUNCTION realtime.notify_change(payload text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parked_id bigint;
BEGIN
    IF octet_length(payload) > 7900 THEN
        INSERT INTO realtime.change_payloads (payload) VALUES (payload) RETURNING id INTO parked_id;
        PERFORM pg_notify('herald_changes', '{"ref":' || parked_id || '}');
    ELSE
        PERFORM pg_notify('herald_changes', payload);
    END IF;
END
$$;
-- Internal: only Herald's SECURITY DEFINER triggers (which run as the owner) call it.
REVOKE EXECUTE ON FUNCTION realtime.notify_change(text) FROM PUBLIC;

-- The replica identity of OLD as JSON text, keys in column order: default → primary key,
-- FULL → every column, INDEX → the identity index's columns, NOTHING (or no primary key) → {}.
CREATE OR REPLACE FUNCTION realtime.replica_identity_record(relation oid, old_row json)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    identity "char";
    key_columns text[];
BEGIN
    SELECT c.relreplident INTO identity FROM pg_class c WHERE c.oid = relation;
    IF identity = 'f' THEN
        RETURN old_row::text;
    END IF;
    SELECT array_agg(a.attname::text)
      INTO key_columns
      FROM pg_index i
      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
     WHERE i.indrelid = relation
       AND ((identity = 'd' AND i.indisprimary) OR (identity = 'i' AND i.indisreplident));
    RETURN '{' || coalesce(
        (SELECT string_agg(to_json(member.key)::text || ':' || member.value::text, ',' ORDER BY member.position)
           FROM json_each(old_row) WITH ORDINALITY AS member(key, value, position)
          WHERE member.key = ANY (key_columns)),
        '') || '}';
END
$$;

-- The row trigger. SECURITY DEFINER so that roles writing the table need no rights on realtime.*.
CREATE OR REPLACE FUNCTION realtime.capture_changes()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    columns text;
    payload text;
BEGIN
    SELECT '[' || coalesce(string_agg(
               '{"name":' || to_json(a.attname::text)::text || ',"type":' || to_json(t.typname::text)::text || '}',
               ',' ORDER BY a.attnum), '') || ']'
      INTO columns
      FROM pg_attribute a
      JOIN pg_type t ON t.oid = a.atttypid
     WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped;

    payload := '{"schema":' || to_json(TG_TABLE_SCHEMA::text)::text
        || ',"table":' || to_json(TG_TABLE_NAME::text)::text
        || ',"type":' || to_json(TG_OP::text)::text
        || ',"xid":' || to_json(txid_current()::text)::text
        || ',"columns":' || columns;
    IF TG_OP <> 'DELETE' THEN
        -- row_to_json keeps column order and is compact (to_jsonb would sort keys and add spaces).
        payload := payload || ',"record":' || row_to_json(NEW)::text;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        payload := payload || ',"old_record":' || realtime.replica_identity_record(TG_RELID, row_to_json(OLD));
    END IF;
    PERFORM realtime.notify_change(payload || '}');
    RETURN NULL;
END
$$;

-- Starts capturing a table (idempotent) and tells Herald on channel `herald_catalog`.
CREATE OR REPLACE FUNCTION realtime.enable_capture(target regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    schema_name text;
    table_name text;
BEGIN
    SELECT n.nspname, c.relname INTO schema_name, table_name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = target;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = target AND tgname = 'herald_capture') THEN
        EXECUTE format(
            'CREATE TRIGGER herald_capture AFTER INSERT OR UPDATE OR DELETE ON %I.%I '
            'FOR EACH ROW EXECUTE FUNCTION realtime.capture_changes()',
            schema_name, table_name);
    END IF;
    PERFORM pg_notify('herald_catalog', schema_name || '.' || table_name);
END
$$;

-- Stops capturing a table (idempotent) and tells Herald on channel `herald_catalog`.
CREATE OR REPLACE FUNCTION realtime.disable_capture(target regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    schema_name text;
    table_name text;
BEGIN
    SELECT n.nspname, c.relname INTO schema_name, table_name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = target;
    EXECUTE format('DROP TRIGGER IF EXISTS herald_capture ON %I.%I', schema_name, table_name);
    PERFORM pg_notify('herald_catalog', schema_name || '.' || table_name);
END
$$;

-- Turns the capture triggers of every captured table on or off, keeping them (they mark the captured tables).
-- Herald's replication change source reads the WAL instead and turns them off, so writers no longer pay for them;
-- the trigger source turns them back on. Returns how many triggers changed.
CREATE OR REPLACE FUNCTION realtime.set_capture_triggers(enabled boolean)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target record;
    changed integer := 0;
BEGIN
    FOR target IN
        SELECT n.nspname, c.relname
          FROM pg_trigger tg
          JOIN pg_class c ON c.oid = tg.tgrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE tg.tgname = 'herald_capture' AND (tg.tgenabled <> 'D') IS DISTINCT FROM enabled
         ORDER BY 1, 2
    LOOP
        EXECUTE format('ALTER TABLE %I.%I %s TRIGGER herald_capture', target.nspname, target.relname,
                       CASE WHEN enabled THEN 'ENABLE' ELSE 'DISABLE' END);
        changed := changed + 1;
    END LOOP;
    RETURN changed;
END
$$;

-- Every captured table with its columns ([{"name","type"}] in attnum order) and primary key columns
-- (in key order; empty when there is none).
CREATE OR REPLACE FUNCTION realtime.captured_tables()
RETURNS TABLE (schema_name text, table_name text, columns jsonb, primary_key text[])
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT n.nspname::text,
           c.relname::text,
           (SELECT coalesce(jsonb_agg(jsonb_build_object('name', a.attname::text, 'type', t.typname::text) ORDER BY a.attnum), '[]')
              FROM pg_attribute a
              JOIN pg_type t ON t.oid = a.atttypid
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
           (SELECT coalesce(array_agg(a.attname::text ORDER BY array_position(i.indkey::int2[], a.attnum)), '{}')
              FROM pg_index i
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
             WHERE i.indrelid = c.oid AND i.indisprimary)
      FROM pg_trigger tg
      JOIN pg_class c ON c.oid = tg.tgrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE tg.tgname = 'herald_capture'
     ORDER BY 1, 2
$$;
