-- What each subscriber of postgres_changes may see (reference section 3.6), decided for many subscribers and
-- many changes in one call: Herald groups the subscribers of a batch of changes by their JWT role and the claims
-- the table's policies read, and asks once per batch, instead of once per subscriber per change as upstream does.

-- Which JWT claims an expression reads, or NULL when it reads them in a way this cannot follow. `expression` is a
-- policy's deparsed expression (pg_get_expr) or, with `function_body`, a LANGUAGE sql function's body. Understood
-- reads: `current_setting('request.jwt.claims'[, missing_ok])::jsonb ->> 'key'` (or `->`, or `::json`) and
-- `current_setting('request.jwt.claim.key'[, missing_ok])`. Anything else mentioning `request.jwt`, a
-- `current_setting` whose name is not one literal, and (in a function body) any word beyond casts, `select`,
-- `nullif` and `coalesce` (it could call something that reads the claims) make the answer NULL.
CREATE OR REPLACE FUNCTION realtime.claims_read_by(expression text, function_body boolean)
RETURNS text[]
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    setting_arguments constant text := $re$(?:::text)?\s*(?:,\s*(?:true|false)\s*)?\)$re$;
    claims_member constant text := $re$current_setting\(\s*'request\.jwt\.claims'$re$ || setting_arguments
        || $re$\s*\)?\s*::\s*jsonb?\s*\)?\s*->>?\s*'((?:[^']|'')*)'$re$;
    one_claim constant text := $re$current_setting\(\s*'request\.jwt\.claim\.((?:[^']|'')+)'$re$ || setting_arguments;
    keys text[];
    rest text;
    word text;
BEGIN
    SELECT coalesce(array_agg(replace(m[1], '''''', '''')), '{}') INTO keys
    FROM (SELECT regexp_matches(expression, claims_member, 'gi') UNION ALL SELECT regexp_matches(expression, one_claim, 'gi')) AS read(m);
    rest := regexp_replace(regexp_replace(expression, claims_member, ' ', 'gi'), one_claim, ' ', 'gi');
    IF rest ~* 'request\.jwt'
        OR (SELECT count(*) FROM regexp_matches(rest, $re$current_setting\s*\($re$, 'gi'))
            <> (SELECT count(*) FROM regexp_matches(rest, $re$current_setting\(\s*'(?:[^']|'')*'(?:::text)?\s*[,)]$re$, 'gi'))
    THEN
        RETURN NULL;
    END IF;
    IF function_body THEN
        FOR word IN
            SELECT lower(w[1]) FROM regexp_matches(regexp_replace(rest, $re$'(?:[^']|'')*'$re$, ' ', 'g'), '([a-z_][a-z0-9_$]*)', 'gi') AS w
        LOOP
            IF word NOT IN ('select', 'nullif', 'coalesce', 'current_setting', 'pg_catalog', 'as', 'true', 'false', 'null',
                'uuid', 'text', 'jsonb', 'json', 'boolean', 'bool', 'integer', 'int', 'bigint') THEN
                RETURN NULL;
            END IF;
        END LOOP;
    END IF;
    RETURN keys;
END
$$;

-- The claims that row level security on `entity` can read when a row is selected, sorted, or NULL when Herald
-- cannot tell (then every distinct set of claims is checked on its own). Followed: the SELECT policies'
-- expressions, the SQL functions they call (such as auth.uid()), and the policies of the tables with RLS their
-- subqueries read. Views, domains, functions in other languages, and builtins that run SQL text or change settings
-- make it NULL. `tables` and `functions` are the catalog rows the answer was read from (see
-- realtime.catalog_fingerprint).
DROP FUNCTION IF EXISTS realtime.policy_claim_keys(regclass, integer);
CREATE OR REPLACE FUNCTION realtime.policy_claim_analysis(
    entity regclass, depth integer DEFAULT 0, OUT keys text[], OUT tables oid[], OUT functions oid[]
)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    policy record;
    called record;
    referenced record;
    nested record;
    found text[];
BEGIN
    keys := '{}';
    tables := ARRAY[entity::oid];
    functions := '{}';
    FOR policy IN
        SELECT p.polqual::text AS tree, pg_get_expr(p.polqual, p.polrelid) AS expression
        FROM pg_policy p WHERE p.polrelid = entity AND p.polcmd IN ('r', '*') AND p.polqual IS NOT NULL
    LOOP
        found := realtime.claims_read_by(policy.expression, false);
        IF found IS NULL OR policy.tree ~ '\{COERCETODOMAIN' THEN
            keys := NULL;
            RETURN;
        END IF;
        keys := keys || found;
        FOR called IN
            SELECT f.oid, f.pronamespace = 'pg_catalog'::regnamespace AS builtin, f.proname::text AS name,
                l.lanname = 'sql' AND f.prosqlbody IS NULL AS sql_text, f.prosrc
            FROM pg_proc f JOIN pg_language l ON l.oid = f.prolang
            WHERE f.oid IN (
                SELECT m[2]::oid FROM regexp_matches(policy.tree, ':(funcid|opfuncid|aggfnoid|winfnoid) (\d+)', 'g') AS m
                UNION
                SELECT o.oprcode::oid FROM pg_operator o
                WHERE o.oid IN (SELECT m[1]::oid FROM regexp_matches(policy.tree, ':opno (\d+)', 'g') AS m)
            )
        LOOP
            IF called.builtin THEN
                IF called.name = 'set_config' OR called.name ~ '_to_xml' THEN
                    keys := NULL;
                    RETURN;
                END IF;
                CONTINUE;
            END IF;
            functions := functions || called.oid;
            found := CASE WHEN called.sql_text THEN realtime.claims_read_by(called.prosrc, true) END;
            IF found IS NULL THEN
                keys := NULL;
                RETURN;
            END IF;
            keys := keys || found;
        END LOOP;
        FOR referenced IN
            SELECT c.oid, c.relkind, c.relrowsecurity FROM pg_class c
            WHERE c.oid IN (SELECT m[1]::oid FROM regexp_matches(policy.tree, ':relid (\d+)', 'g') AS m) AND c.oid <> entity
        LOOP
            tables := tables || referenced.oid;
            IF referenced.relkind = 'v' OR (referenced.relrowsecurity AND depth >= 4) THEN
                keys := NULL;
                RETURN;
            END IF;
            IF referenced.relrowsecurity THEN
                nested := realtime.policy_claim_analysis(referenced.oid, depth + 1);
                tables := tables || nested.tables;
                functions := functions || nested.functions;
                IF nested.keys IS NULL THEN
                    keys := NULL;
                    RETURN;
                END IF;
                keys := keys || nested.keys;
            END IF;
        END LOOP;
    END LOOP;
    keys := ARRAY(SELECT DISTINCT k FROM unnest(keys) AS k ORDER BY k);
END
$$;
REVOKE EXECUTE ON FUNCTION realtime.policy_claim_analysis(regclass, integer) FROM PUBLIC;

-- What changes whenever anything an analysis read changes: the tables' pg_class rows (ENABLE ROW LEVEL SECURITY),
-- their policies (CREATE, ALTER, DROP POLICY) and the functions' pg_proc rows (CREATE OR REPLACE, DROP). Each
-- update of a catalog row gives it a new xmin; ANALYZE and VACUUM update pg_class in place and change nothing.
CREATE OR REPLACE FUNCTION realtime.catalog_fingerprint(tables oid[], functions oid[])
RETURNS text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT concat_ws('|',
        (SELECT string_agg(c.oid || ':' || c.xmin, ',' ORDER BY c.oid) FROM pg_class c WHERE c.oid = ANY(tables)),
        (SELECT string_agg(p.oid || ':' || p.xmin, ',' ORDER BY p.oid) FROM pg_policy p WHERE p.polrelid = ANY(tables)),
        (SELECT string_agg(f.oid || ':' || f.xmin, ',' ORDER BY f.oid) FROM pg_proc f WHERE f.oid = ANY(functions)))
$$;
REVOKE EXECUTE ON FUNCTION realtime.catalog_fingerprint(oid[], oid[]) FROM PUBLIC;

-- realtime.policy_claim_analysis(entity).keys, remembered by the session with the fingerprint of what it read:
-- the analysis costs ~1.5 ms and every check of a table with RLS needs it, the fingerprint ~0.1 ms.
CREATE OR REPLACE FUNCTION realtime.policy_claim_keys(entity regclass)
RETURNS text[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    remembered record;
    first record;
    second record;
    fingerprint text;
BEGIN
    IF to_regclass('pg_temp.herald_policy_claims') IS NULL THEN
        CREATE TEMPORARY TABLE herald_policy_claims (
            entity oid PRIMARY KEY, tables oid[] NOT NULL, functions oid[] NOT NULL, fingerprint text NOT NULL, keys text[]
        );
    END IF;
    SELECT * INTO remembered FROM pg_temp.herald_policy_claims AS r WHERE r.entity = policy_claim_keys.entity;
    IF FOUND AND remembered.fingerprint = realtime.catalog_fingerprint(remembered.tables, remembered.functions) THEN
        RETURN remembered.keys;
    END IF;
    -- A policy or function committed while this reads could leave a fingerprint newer than the keys: only an
    -- analysis that comes out the same before and after the fingerprint is remembered.
    first := realtime.policy_claim_analysis(entity);
    fingerprint := realtime.catalog_fingerprint(first.tables, first.functions);
    second := realtime.policy_claim_analysis(entity);
    IF second IS NOT DISTINCT FROM first THEN
        INSERT INTO pg_temp.herald_policy_claims AS r VALUES (entity, first.tables, first.functions, fingerprint, first.keys)
        ON CONFLICT ON CONSTRAINT herald_policy_claims_pkey DO UPDATE
        SET tables = excluded.tables, functions = excluded.functions, fingerprint = excluded.fingerprint, keys = excluded.keys;
    END IF;
    RETURN second.keys;
END
$$;
REVOKE EXECUTE ON FUNCTION realtime.policy_claim_keys(regclass) FROM PUBLIC;

-- Waits (at most 2 s) until every transaction in `xids` (32-bit ids, as the WAL has them) is visible to a new
-- snapshot. A change can reach Herald from the WAL as soon as its commit record is flushed, before the committing
-- backend has left the proc array: until then no snapshot sees its row, and a visibility probe would hide it from
-- everyone. One snapshot per round answers for all of them.
CREATE OR REPLACE FUNCTION realtime.wait_until_visible(xids bigint[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    snapshot pg_snapshot;
    next_xid bigint;
    deadline timestamptz := clock_timestamp() + interval '2 seconds';
BEGIN
    LOOP
        snapshot := pg_current_snapshot();
        next_xid := pg_snapshot_xmax(snapshot)::text::bigint;
        -- The 64-bit id is the one nearest the snapshot's xmax with the same low 32 bits. It can be past xmax:
        -- xmax is the latest completed id + 1, and a running transaction may have a later id than that when an
        -- older one is still running too.
        EXIT WHEN clock_timestamp() > deadline OR NOT EXISTS (
            SELECT FROM unnest(xids) AS x,
                LATERAL (SELECT next_xid >> 32 << 32 | x) AS same_epoch(xid),
                LATERAL (SELECT same_epoch.xid + CASE
                    WHEN same_epoch.xid > next_xid + 2147483648 THEN -4294967296
                    WHEN same_epoch.xid < next_xid - 2147483648 THEN 4294967296
                    ELSE 0 END) AS f(full_xid)
            WHERE f.full_xid >= 0 AND NOT pg_visible_in_snapshot(f.full_xid::text::xid8, snapshot)
        );
        PERFORM pg_sleep(0.0005);
    END LOOP;
END
$$;
REVOKE EXECUTE ON FUNCTION realtime.wait_until_visible(bigint[]) FROM PUBLIC;

-- The name of this session's row probe for a table (a temporary function, created on first use): given the rows
-- to check (the table's row type, only the primary key filled), and per group its role (NULL: see nothing) and
-- `request.jwt.claims`, it returns per group the indexes of the rows the group may SELECT right now. Planning a
-- probe costs more than running it and it runs once per group: a function's plans are kept across calls, and its
-- loop over the groups runs no dynamic SQL. The name carries the table's name and key columns, so a renamed table
-- or a changed key gets a new probe.
CREATE OR REPLACE FUNCTION realtime.row_probe(entity regclass, primary_key text[])
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    probe text := format('herald_probe_%s_%s', entity::oid, left(md5(entity::text || '|' || array_to_string(primary_key, '|')), 16));
BEGIN
    IF NOT EXISTS (SELECT FROM pg_proc WHERE proname = probe AND pronamespace = pg_my_temp_schema()) THEN
        -- A scalar subquery per row, not EXISTS: the planner would turn EXISTS into a semi-join that may scan and
        -- run the policies on the whole table.
        EXECUTE format($create$
            CREATE FUNCTION pg_temp.%1$I(rows_to_check %2$s[], group_roles text[], group_claims text[])
            RETURNS jsonb[]
            LANGUAGE plpgsql
            SET search_path = pg_catalog, pg_temp
            AS $probe$
            #variable_conflict use_variable
            DECLARE
                answers jsonb[] := '{}';
                visible jsonb;
                assumed_role text;
                group_role text;
                claims text;
            BEGIN
                FOR group_role, claims IN SELECT * FROM unnest(group_roles, group_claims) LOOP
                    IF group_role IS NULL THEN
                        visible := '[]';
                    ELSE
                        -- Groups come role by role: switch roles only when it changes.
                        IF assumed_role IS DISTINCT FROM group_role THEN
                            PERFORM set_config('role', group_role, true);
                            PERFORM set_config('request.jwt.claim.role', group_role, true);
                            assumed_role := group_role;
                        END IF;
                        PERFORM set_config('request.jwt.claims', claims, true);
                        PERFORM set_config('request.jwt.claim.sub', coalesce(claims::jsonb->>'sub', ''), true);
                        SELECT coalesce(jsonb_agg(r.i - 1), '[]') INTO visible
                        FROM generate_subscripts(rows_to_check, 1) AS r(i)
                        WHERE (SELECT true FROM %2$s AS t WHERE %3$s LIMIT 1);
                    END IF;
                    answers := answers || visible;
                END LOOP;
                IF assumed_role IS NOT NULL THEN
                    PERFORM set_config('role', 'none', true);
                END IF;
                RETURN answers;
            EXCEPTION WHEN OTHERS THEN
                -- A policy failed for some group (its changes to settings are undone). A failing policy hides the
                -- rows from that group alone: ask again group by group (one handler per call, not per group: a
                -- handler costs as much as a check).
                IF cardinality(group_roles) = 1 THEN
                    RETURN ARRAY['[]'::jsonb];
                END IF;
                RETURN ARRAY(
                    SELECT (pg_temp.%1$I(rows_to_check, ARRAY[g.group_role], ARRAY[g.claims]))[1]
                    FROM unnest(group_roles, group_claims) WITH ORDINALITY AS g(group_role, claims, n)
                    ORDER BY g.n
                );
            END
            $probe$
            $create$,
            probe,
            entity,
            (SELECT string_agg(format('t.%1$I = (rows_to_check[r.i]).%1$I', c), ' AND ') FROM unnest(primary_key) AS c)
        );
    END IF;
    RETURN 'pg_temp.' || quote_ident(probe);
END
$$;
REVOKE EXECUTE ON FUNCTION realtime.row_probe(regclass, text[]) FROM PUBLIC;

-- realtime.visible_rows(checks jsonb) → jsonb, with checks = one entry per table of the batch:
--   [{"entity": "public.messages", "keys": [{"id": 1}, …], "claim_keys": ["team"] or null,
--     "groups": [{"role": "authenticated", "claims": {…}}, …]}]
-- and the answer, in the same order:
--   [{"primary_key": ["id"], "rls": true, "claim_keys": ["team"], "stale": false,
--     "columns": {"authenticated": ["id", "body"], …}, "visible": [[0, 2], null, …]}]
-- `columns` are, per role, the columns it may SELECT (attnum order); `visible[g]` the indexes of the keys whose
-- rows group g's role may SELECT right now, with `request.jwt.claims` set to the group's claims, under the
-- table's row level security policies, or null when every key is (a table without RLS). A policy that fails to
-- evaluate hides the row; a role that cannot be assumed sees nothing and is named in "errors".
-- `claim_keys` in the answer are the claims the table's policies read now ([] without RLS, null when unknown: see
-- realtime.policy_claim_keys). A check that names `claim_keys` says its groups carry only those claims (Herald
-- merges the subscribers that agree on them); it is answered only while the policies read no other claim,
-- otherwise the answer is "stale" (nothing visible) and the caller asks again with the new keys.
-- `xids` (optional): the transactions that wrote the rows; the check first waits until they are visible
-- (realtime.wait_until_visible), for tables without RLS too: the same transaction may have changed the privileges
-- or turned RLS on, and the catalogs must be read as they are after it.
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
    claim_keys text[];
    stale boolean;
    group_role text;
    group_roles text[];
    group_claims text[];
    role_columns jsonb;
    columns_by_role jsonb;
    key_readers text[];
    failed_roles jsonb;
    visible_by_group jsonb[];
    answers jsonb[] := '{}';
BEGIN
    PERFORM realtime.wait_until_visible(ARRAY(
        SELECT DISTINCT x::bigint FROM jsonb_array_elements(checks) AS c, jsonb_array_elements_text(c->'xids') AS x
    ));
    FOR item IN SELECT value FROM jsonb_array_elements(checks) LOOP
        entity := (item->>'entity')::regclass;
        SELECT c.relrowsecurity INTO row_security FROM pg_class c WHERE c.oid = entity;
        claim_keys := CASE WHEN row_security THEN realtime.policy_claim_keys(entity) ELSE '{}' END;
        stale := coalesce(jsonb_typeof(item->'claim_keys') = 'array', false)
            AND (claim_keys IS NULL OR NOT (item->'claim_keys') @> to_jsonb(claim_keys));
        SELECT coalesce(array_agg(a.attname::text ORDER BY k.n), '{}') INTO primary_key
        FROM pg_index i
        CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = entity AND i.indisprimary;
        SELECT coalesce(array_agg(g->>'role' ORDER BY n), '{}'), coalesce(array_agg((g->'claims')::text ORDER BY n), '{}')
        INTO group_roles, group_claims
        FROM jsonb_array_elements(item->'groups') WITH ORDINALITY AS e(g, n);
        -- Column privileges once per role, and which roles may select the whole key (only those are probed).
        columns_by_role := '{}';
        key_readers := '{}';
        failed_roles := '{}';
        FOR group_role IN SELECT DISTINCT r FROM unnest(group_roles) AS r LOOP
            BEGIN
                role_columns := (
                    SELECT coalesce(jsonb_agg(a.attname ORDER BY a.attnum), '[]')
                    FROM pg_attribute a
                    WHERE a.attrelid = entity AND a.attnum > 0 AND NOT a.attisdropped
                        AND has_column_privilege(group_role, entity, a.attnum, 'SELECT')
                );
                columns_by_role := columns_by_role || jsonb_build_object(group_role, role_columns);
                IF role_columns @> to_jsonb(primary_key) THEN
                    key_readers := key_readers || group_role;
                END IF;
            EXCEPTION WHEN OTHERS THEN
                failed_roles := failed_roles || jsonb_build_object(group_role, SQLERRM);
            END;
        END LOOP;
        IF stale OR (row_security AND cardinality(primary_key) = 0) THEN
            visible_by_group := array_fill('[]'::jsonb, ARRAY[cardinality(group_roles)]);
        ELSIF NOT row_security THEN
            visible_by_group := ARRAY(
                SELECT CASE WHEN failed_roles ? r THEN '[]'::jsonb ELSE 'null' END
                FROM unnest(group_roles) WITH ORDINALITY AS u(r, n) ORDER BY n
            );
        ELSE
            -- Rows are checked by primary key, so the policies see each row as it is now. A group whose role failed
            -- or may not select the whole key sees nothing (its role is passed as NULL).
            group_roles := ARRAY(
                SELECT CASE WHEN r = ANY (key_readers) THEN r END
                FROM unnest(group_roles) WITH ORDINALITY AS u(r, n) ORDER BY n
            );
            EXECUTE format(
                'SELECT %s(ARRAY(SELECT jsonb_populate_record(NULL::%s, k) FROM jsonb_array_elements($1) AS k), $2, $3)',
                realtime.row_probe(entity, primary_key), entity
            ) INTO visible_by_group USING item->'keys', group_roles, group_claims;
        END IF;
        answers := answers || jsonb_build_object(
            'primary_key', to_jsonb(primary_key), 'rls', row_security, 'claim_keys', to_jsonb(claim_keys),
            'stale', stale, 'columns', columns_by_role, 'errors', failed_roles, 'visible', to_jsonb(visible_by_group)
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
