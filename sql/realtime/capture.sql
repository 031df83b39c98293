-- Change capture with triggers + NOTIFY. Repeatable: re-applied whenever this file changes.
-- The `herald_capture` trigger also marks a table as captured for the replication change source, which keeps
-- its publication equal to realtime.captured_tables() and turns the triggers off (realtime.set_capture_triggers).
--
-- Every captured row change sends on channel `herald_changes` the JSON text
--   {"schema":…,"table":…,"type":"INSERT|UPDATE|DELETE","xid":"<txid>","columns":[{"name":…,"type":…}],
--    "record":{…} (INSERT, UPDATE),"old_record":{…} (UPDATE, DELETE)}
-- built as text so that keys keep this order, and sent as realtime.notify_change() sends (which carries database
-- broadcasts, sql/realtime/broadcast.sql).

-- Re-applying this file replaces the functions that the event trigger `herald_capture_refresh` (below) calls
-- after every DDL command: it stays off until the end of the file.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = 'herald_capture_refresh')
       AND (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        ALTER EVENT TRIGGER herald_capture_refresh DISABLE;
    END IF;
END
$$;

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

-- What the capture trigger needs to know about a table, precomputed so that it reads no catalog per row.
-- It becomes the arguments of the table's `herald_capture` trigger (TG_ARGV, numbered from 0):
--   [0] the table's oid: the trigger trusts the others only when it fires for that table;
--   [1] the `columns` JSON text: [{"name","type"}] in column order, dropped columns left out;
--   [2] 'full' (replica identity FULL: old_record is the whole old row) or 'keys';
--   [3…] with 'keys', the identity's key columns in column order: default → the primary key, INDEX → the
--        identity index's columns, NOTHING (or no primary key) → none, so old_record is {}.
CREATE OR REPLACE FUNCTION realtime.capture_arguments(relation oid)
RETURNS text[]
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    identity "char";
    columns text;
    arguments text[];
    key_column text;
BEGIN
    SELECT c.relreplident INTO identity FROM pg_class c WHERE c.oid = relation;
    SELECT '[' || coalesce(string_agg(
               '{"name":' || to_json(a.attname::text)::text || ',"type":' || to_json(t.typname::text)::text || '}',
               ',' ORDER BY a.attnum), '') || ']'
      INTO columns
      FROM pg_attribute a
      JOIN pg_type t ON t.oid = a.atttypid
     WHERE a.attrelid = relation AND a.attnum > 0 AND NOT a.attisdropped;
    -- Assigning element 0 first makes the array start at 0, like TG_ARGV.
    arguments[0] := relation::text;
    arguments[1] := columns;
    arguments[2] := CASE WHEN identity = 'f' THEN 'full' ELSE 'keys' END;
    FOR key_column IN
        SELECT a.attname::text
          FROM pg_index i
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
         WHERE i.indrelid = relation
           AND ((identity = 'd' AND i.indisprimary) OR (identity = 'i' AND i.indisreplident))
         ORDER BY a.attnum
    LOOP
        arguments := arguments || key_column;
    END LOOP;
    RETURN arguments;
END
$$;

-- The row trigger. SECURITY DEFINER so that roles writing the table need no rights on realtime.*.
-- It runs for every captured row, so it does as little as it can: the table's columns and replica identity come
-- precomputed in TG_ARGV (kept current by the event trigger below), and it has no SET clause (saving and
-- restoring search_path on every call cost a sixth of the trigger's time). Instead every name is schema-qualified,
-- operators too (`OPERATOR(pg_catalog.||)`; pg_catalog.concat would read better but is slower), so the writer's
-- search_path cannot substitute objects of its own in this owner-privileged code.
CREATE OR REPLACE FUNCTION realtime.capture_changes()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
AS $$
DECLARE
    arguments pg_catalog.text[] := TG_ARGV;
    payload pg_catalog.text;
    old_row pg_catalog.json;
    key_members pg_catalog.text[] := '{}';
    parked_id pg_catalog.int8;
BEGIN
    -- No arguments (there is no event trigger to keep them current), or arguments made for another table (a
    -- partition's clone of its parent's trigger): look this table up for this row.
    IF TG_NARGS OPERATOR(pg_catalog.=) 0 OR arguments[0] OPERATOR(pg_catalog.<>) TG_RELID::pg_catalog.text THEN
        arguments := realtime.capture_arguments(TG_RELID);
    END IF;
    payload := '{"schema":'
        OPERATOR(pg_catalog.||) pg_catalog.to_json(TG_TABLE_SCHEMA::pg_catalog.text)::pg_catalog.text
        OPERATOR(pg_catalog.||) ',"table":'
        OPERATOR(pg_catalog.||) pg_catalog.to_json(TG_TABLE_NAME::pg_catalog.text)::pg_catalog.text
        OPERATOR(pg_catalog.||) ',"type":"' OPERATOR(pg_catalog.||) TG_OP
        OPERATOR(pg_catalog.||) '","xid":"' OPERATOR(pg_catalog.||) pg_catalog.txid_current()::pg_catalog.text
        OPERATOR(pg_catalog.||) '","columns":' OPERATOR(pg_catalog.||) arguments[1];
    IF TG_OP OPERATOR(pg_catalog.<>) 'DELETE' THEN
        -- row_to_json keeps column order and is compact (to_jsonb would sort keys and add spaces).
        payload := payload OPERATOR(pg_catalog.||) ',"record":'
            OPERATOR(pg_catalog.||) pg_catalog.row_to_json(NEW)::pg_catalog.text;
    END IF;
    IF TG_OP OPERATOR(pg_catalog.<>) 'INSERT' THEN
        old_row := pg_catalog.row_to_json(OLD);
        IF arguments[2] OPERATOR(pg_catalog.=) 'full' THEN
            payload := payload OPERATOR(pg_catalog.||) ',"old_record":'
                OPERATOR(pg_catalog.||) old_row::pg_catalog.text;
        ELSE
            FOR key_index IN 3 .. pg_catalog.array_upper(arguments, 1) LOOP
                key_members := pg_catalog.array_append(key_members,
                    pg_catalog.to_json(arguments[key_index])::pg_catalog.text OPERATOR(pg_catalog.||) ':'
                    OPERATOR(pg_catalog.||)
                    pg_catalog.json_object_field(old_row, arguments[key_index])::pg_catalog.text);
            END LOOP;
            payload := payload OPERATOR(pg_catalog.||) ',"old_record":{'
                OPERATOR(pg_catalog.||) pg_catalog.array_to_string(key_members, ',') OPERATOR(pg_catalog.||) '}';
        END IF;
    END IF;
    payload := payload OPERATOR(pg_catalog.||) '}';
    -- realtime.notify_change(), inlined: calling it cost more than these lines.
    IF pg_catalog.octet_length(payload) OPERATOR(pg_catalog.>) 7900 THEN
        INSERT INTO realtime.change_payloads (payload) VALUES (payload) RETURNING id INTO parked_id;
        PERFORM pg_catalog.pg_notify('herald_changes',
            '{"ref":' OPERATOR(pg_catalog.||) parked_id::pg_catalog.text OPERATOR(pg_catalog.||) '}');
    ELSE
        PERFORM pg_catalog.pg_notify('herald_changes', payload);
    END IF;
    RETURN NULL;
END
$$;

-- Creates or replaces a table's `herald_capture` trigger, keeping whether it is enabled (the replication source
-- turns capture triggers off). It carries its precomputed arguments only while the event trigger
-- `herald_capture_refresh` keeps them current; without it (a migration by a role that is not superuser) every
-- row looks them up, slower but never stale.
CREATE OR REPLACE FUNCTION realtime.install_capture_trigger(target regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    previous_state "char";
BEGIN
    SELECT tgenabled INTO previous_state FROM pg_trigger WHERE tgrelid = target AND tgname = 'herald_capture';
    EXECUTE format(
        'CREATE OR REPLACE TRIGGER herald_capture AFTER INSERT OR UPDATE OR DELETE ON %s '
        'FOR EACH ROW EXECUTE FUNCTION realtime.capture_changes(%s)',
        target,
        (SELECT coalesce(string_agg(quote_literal(argument), ', '), '')
           FROM unnest(realtime.expected_capture_arguments(target)) AS argument));
    IF previous_state IS NOT NULL AND previous_state <> 'O' THEN
        EXECUTE format('ALTER TABLE %s %s TRIGGER herald_capture', target,
                       CASE previous_state WHEN 'D' THEN 'DISABLE' WHEN 'A' THEN 'ENABLE ALWAYS' ELSE 'ENABLE REPLICA' END);
    END IF;
END
$$;

-- The arguments a table's `herald_capture` trigger should carry now: capture_arguments() while the event trigger
-- keeps them current, none otherwise.
CREATE OR REPLACE FUNCTION realtime.expected_capture_arguments(target regclass)
RETURNS text[]
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'herald_capture_refresh' AND evtenabled <> 'D')
        THEN realtime.capture_arguments(target)
        ELSE '{}'::text[]
    END
$$;

-- Re-creates the capture triggers whose arguments are out of date (a column added, dropped, renamed or retyped,
-- a type renamed, the replica identity or primary key changed; call it after dropping or disabling the event
-- trigger, which then no longer keeps them current). With
-- `relations`, only the triggers a change to those tables can affect: theirs, and those of tables with a column
-- of their row type (or its array), whose name a rename changes. Partitions' clones of a parent's trigger are left
-- alone (the parent's re-creation replaces them). Returns how many changed.
CREATE OR REPLACE FUNCTION realtime.refresh_capture_triggers(relations oid[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target regclass;
    arguments bytea;
    changed integer := 0;
BEGIN
    FOR target, arguments IN
        SELECT tg.tgrelid::regclass, tg.tgargs
          FROM pg_trigger tg
         WHERE tg.tgname = 'herald_capture' AND tg.tgparentid = 0
           AND (relations IS NULL
                OR tg.tgrelid = ANY (relations)
                OR EXISTS (SELECT 1
                             FROM pg_attribute a
                             JOIN pg_class r ON r.oid = ANY (relations)
                             JOIN pg_type rowtype ON rowtype.oid = r.reltype
                            WHERE a.attrelid = tg.tgrelid AND a.atttypid IN (rowtype.oid, rowtype.typarray)))
    LOOP
        -- pg_trigger.tgargs holds each argument followed by a zero byte.
        IF arguments IS DISTINCT FROM (
            SELECT coalesce(string_agg(convert_to(argument, getdatabaseencoding()) || '\x00'::bytea, ''::bytea), ''::bytea)
              FROM unnest(realtime.expected_capture_arguments(target)) AS argument)
        THEN
            PERFORM realtime.install_capture_trigger(target);
            changed := changed + 1;
        END IF;
    END LOOP;
    RETURN changed;
END
$$;

-- Runs after every DDL command, so that no capture trigger ever sends a stale column list or key. Comparing costs
-- a catalog look-up per captured table, so the commands that cannot change an existing table's columns, types or
-- keys are let through first (CREATE TRIGGER includes the refresh's own re-creations), and ALTER TABLE (the
-- commonest, also how set_capture_triggers() turns triggers on and off) checks only what the altered tables can
-- affect. Any other command checks every captured table, as a rename or a drop with CASCADE can come from many
-- commands. SECURITY DEFINER: the command's author may own the table but not realtime.*.
CREATE OR REPLACE FUNCTION realtime.refresh_capture_triggers_after_ddl()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'CREATE INDEX', 'ALTER INDEX', 'CREATE VIEW',
                  'CREATE MATERIALIZED VIEW', 'REFRESH MATERIALIZED VIEW', 'CREATE FUNCTION', 'CREATE PROCEDURE',
                  'CREATE TRIGGER', 'CREATE SEQUENCE', 'CREATE TYPE', 'CREATE DOMAIN', 'CREATE SCHEMA',
                  'CREATE EXTENSION', 'CREATE POLICY', 'ALTER POLICY', 'DROP POLICY', 'CREATE PUBLICATION',
                  'ALTER PUBLICATION', 'GRANT', 'REVOKE', 'ALTER DEFAULT PRIVILEGES', 'COMMENT') THEN
        RETURN;
    ELSIF TG_TAG = 'ALTER TABLE' THEN
        PERFORM realtime.refresh_capture_triggers(ARRAY(
            SELECT objid FROM pg_event_trigger_ddl_commands() WHERE classid = 'pg_class'::regclass));
    ELSE
        PERFORM realtime.refresh_capture_triggers();
    END IF;
END
$$;
REVOKE EXECUTE ON FUNCTION realtime.refresh_capture_triggers_after_ddl() FROM PUBLIC;

-- Only a superuser may create (or re-enable) an event trigger; without one the capture triggers look their table
-- up per row. ENABLE ALWAYS: DDL run with session_replication_role = replica must refresh them too.
DO $$
BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = 'herald_capture_refresh') THEN
            CREATE EVENT TRIGGER herald_capture_refresh ON ddl_command_end
                EXECUTE FUNCTION realtime.refresh_capture_triggers_after_ddl();
        END IF;
        ALTER EVENT TRIGGER herald_capture_refresh ENABLE ALWAYS;
    END IF;
END
$$;

-- Superseded by capture_arguments(): the trigger no longer queries the catalog per row.
DROP FUNCTION IF EXISTS realtime.replica_identity_record(oid, json);

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
        PERFORM realtime.install_capture_trigger(target);
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

-- Gives the capture triggers of an existing database their arguments (or current ones) when this file changes.
SELECT realtime.refresh_capture_triggers();
