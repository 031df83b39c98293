-- The roles a JWT's `role` claim names (Supabase's convention). Herald assumes them (SET ROLE) to decide what
-- each subscriber may read, so they must exist and Herald's own role must be a member of each. NOLOGIN: nobody
-- connects as them. service_role bypasses row level security, as upstream's does.
-- Roles belong to the whole cluster, and several databases may be migrated at once: a role created meanwhile by
-- another session is fine.
DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = role_name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT%s', role_name, CASE WHEN role_name = 'service_role' THEN ' BYPASSRLS' ELSE '' END);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        END IF;
        -- A superuser may assume any role already.
        IF NOT pg_has_role(current_user, role_name, 'MEMBER') THEN
            EXECUTE format('GRANT %I TO %I', role_name, current_user);
        END IF;
    END LOOP;
END
$$;

-- Supabase's default: the three roles may read the public schema's tables (present and future ones created by
-- this role), and row level security policies narrow what each user sees. Revoke per table to hide one
-- (`REVOKE SELECT ON public.t FROM anon`), or per column.
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO anon, authenticated, service_role;

-- Private channels are authorized by policies on realtime.messages, checked as the token's role: the roles may
-- read and insert rows there, and row level security (enabled on the table, no policies by default) decides.
GRANT USAGE ON SCHEMA realtime TO anon, authenticated, service_role;
GRANT SELECT, INSERT ON realtime.messages TO anon, authenticated, service_role;
