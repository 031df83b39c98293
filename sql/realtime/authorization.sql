-- What each subscriber of postgres_changes may see (reference section 3.6), decided for many subscribers and
-- many changes in one call: Herald groups the subscribers of a batch of changes by their JWT (role + claims)
-- and asks once per batch, instead of once per subscriber per change as upstream does.
--
-- realtime.visible_rows(checks jsonb) → jsonb, with checks = one entry per table of the batch:
--   [{"entity": "public.messages", "keys": [{"id": 1}, …], "groups": [{"role": "authenticated", "claims": {…}}, …]}]
-- and the answer, in the same order:
--   [{"primary_key": ["id"], "rls": true, "columns": {"authenticated": ["id", "body"], …},
--     "visible": [[0, 2], null, …]}]
-- `columns` are, per role, the columns it may SELECT (attnum order); `visible[g]` the indexes of the keys whose
-- rows group g's role may SELECT right now, with `request.jwt.claims` set to the group's claims, under the
-- table's row level security policies, or null when every key is (a table without RLS). A policy that fails to
-- evaluate hides the row; a role that cannot be assumed sees nothing and is named in "errors".
-- The caller must be a member of every role it names (sql/schema/0003_roles.sql grants the standard three).
CREATE OR REPLACE FUNCTION realtime.visible_rows(checks jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    item jsonb;
    entity regclass;
    primary_key text[];
    row_security boolean;
    probe text;
    keys_literal text;
    group_value jsonb;
    group_role text;
    columns_by_role jsonb;
    failed_roles jsonb;
    visible jsonb;
    visible_by_group jsonb[];
    answers jsonb[] := '{}';
BEGIN
    FOR item IN SELECT value FROM jsonb_array_elements(checks) LOOP
        entity := (item->>'entity')::regclass;
        SELECT c.relrowsecurity INTO row_security FROM pg_class c WHERE c.oid = entity;
        SELECT coalesce(array_agg(a.attname::text ORDER BY k.n), '{}') INTO primary_key
        FROM pg_index i
        CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = entity AND i.indisprimary;
        -- Column privileges once per role.
        columns_by_role := '{}';
        failed_roles := '{}';
        FOR group_role IN SELECT DISTINCT g->>'role' FROM jsonb_array_elements(item->'groups') AS g LOOP
            BEGIN
                columns_by_role := columns_by_role || jsonb_build_object(group_role, (
                    SELECT coalesce(jsonb_agg(a.attname ORDER BY a.attnum), '[]')
                    FROM pg_attribute a
                    WHERE a.attrelid = entity AND a.attnum > 0 AND NOT a.attisdropped
                        AND has_column_privilege(group_role, entity, a.attnum, 'SELECT')
                ));
            EXCEPTION WHEN OTHERS THEN
                failed_roles := failed_roles || jsonb_build_object(group_role, SQLERRM);
            END;
        END LOOP;
        -- One prepared probe per table and session: planning it costs more than running it, and it runs once per
        -- group. Rows are checked by primary key, so the policies see the row as it is now.
        probe := NULL;
        IF row_security AND cardinality(primary_key) > 0 THEN
            probe := 'herald_probe_' || entity::oid;
            IF NOT EXISTS (SELECT FROM pg_prepared_statements WHERE name = probe) THEN
                EXECUTE format(
                    'PREPARE %1$I(jsonb) AS SELECT coalesce(jsonb_agg(e.n - 1), ''[]'') '
                    'FROM jsonb_array_elements($1) WITH ORDINALITY AS e(value, n) '
                    'CROSS JOIN LATERAL jsonb_populate_record(NULL::%2$s, e.value) AS k '
                    'WHERE EXISTS (SELECT FROM %2$s AS t WHERE %3$s)',
                    probe,
                    entity,
                    (SELECT string_agg(format('t.%1$I = k.%1$I', c), ' AND ') FROM unnest(primary_key) AS c)
                );
            END IF;
            keys_literal := format('EXECUTE %I(%L)', probe, item->'keys');
        END IF;
        visible_by_group := '{}';
        FOR group_value IN SELECT value FROM jsonb_array_elements(item->'groups') LOOP
            group_role := group_value->>'role';
            IF failed_roles ? group_role THEN
                visible := '[]';
            ELSIF NOT row_security THEN
                visible := 'null';
            ELSIF probe IS NULL OR NOT (columns_by_role->group_role) @> to_jsonb(primary_key) THEN
                visible := '[]';
            ELSE
                PERFORM set_config('role', group_role, true);
                PERFORM set_config('request.jwt.claims', (group_value->'claims')::text, true);
                PERFORM set_config('request.jwt.claim.sub', coalesce(group_value->'claims'->>'sub', ''), true);
                PERFORM set_config('request.jwt.claim.role', group_role, true);
                BEGIN
                    EXECUTE keys_literal INTO visible;
                EXCEPTION WHEN OTHERS THEN
                    visible := '[]';
                END;
                PERFORM set_config('role', 'none', true);
            END IF;
            visible_by_group := visible_by_group || visible;
        END LOOP;
        answers := answers || jsonb_build_object(
            'primary_key', to_jsonb(primary_key), 'rls', row_security, 'columns', columns_by_role,
            'errors', failed_roles, 'visible', to_jsonb(visible_by_group)
        );
    END LOOP;
    RETURN to_jsonb(answers);
END
$$;
-- Only Herald's own connection asks.
REVOKE EXECUTE ON FUNCTION realtime.visible_rows(jsonb) FROM PUBLIC;

-- Whether a JWT role can be assumed for these checks (checked when a channel subscribes to postgres_changes).
CREATE OR REPLACE FUNCTION realtime.can_assume_role(role_name text)
RETURNS boolean
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN EXISTS (SELECT FROM pg_roles WHERE rolname = role_name) THEN pg_has_role(current_user, role_name, 'MEMBER') ELSE false END
$$;

-- What a token may do on a private channel (reference section 4.4), as the row level security policies on
-- realtime.messages decide with the token's role and claims and `realtime.topic` set to the channel's topic:
-- read = the role can SELECT a probe row of that extension, write = it can INSERT one. Probes are rolled back, and
-- a policy that fails counts as "no".
CREATE OR REPLACE FUNCTION realtime.can_access_channel(channel_topic text, role_name text, claims jsonb, channel_extension text, writing boolean)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    probe uuid;
    allowed boolean := false;
BEGIN
    BEGIN
        IF NOT writing THEN
            INSERT INTO realtime.messages (topic, extension, private, payload)
            VALUES (channel_topic, channel_extension, true, '{}') RETURNING id INTO probe;
        END IF;
        PERFORM set_config('role', role_name, true);
        PERFORM set_config('request.jwt.claims', claims::text, true);
        PERFORM set_config('request.jwt.claim.sub', coalesce(claims->>'sub', ''), true);
        PERFORM set_config('request.jwt.claim.role', role_name, true);
        PERFORM set_config('realtime.topic', channel_topic, true);
        IF writing THEN
            INSERT INTO realtime.messages (topic, extension, private, payload) VALUES (channel_topic, channel_extension, true, '{}');
            allowed := true;
        ELSE
            SELECT EXISTS (SELECT FROM realtime.messages AS m WHERE m.id = probe) INTO allowed;
        END IF;
        -- Undo the probes (and the role switch) with the rest of this block.
        RAISE EXCEPTION USING ERRCODE = 'HL001';
    EXCEPTION
        WHEN SQLSTATE 'HL001' THEN NULL;
        WHEN OTHERS THEN allowed := false;
    END;
    RETURN allowed;
END
$$;
REVOKE EXECUTE ON FUNCTION realtime.can_access_channel(text, text, jsonb, text, boolean) FROM PUBLIC;
