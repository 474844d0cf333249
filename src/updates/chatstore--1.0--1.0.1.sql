-- chatstore 1.0 -> 1.0.1: hardening (calendar-correct partitions, background worker, locks, privileges, limits).
-- Every change to src/chatstore.sql since 1.0 is repeated here, so an updated install equals a fresh one
-- (test/programs/upgrade compares them).

\echo Use "ALTER EXTENSION chatstore UPDATE TO '1.0.1'" to load this file. \quit

-- Privileges: admin status is explicit, a row in chatstore.admin_role, never inferred from EXECUTE on archive().
CREATE TABLE chatstore.admin_role (
    role_name        name        NOT NULL,
    CONSTRAINT admin_role_pkey PRIMARY KEY (role_name)
);

COMMENT ON TABLE chatstore.admin_role IS
    'the roles that chatstore.grant_admin() made admins in this database (superusers are admins without a row)';

ALTER TABLE chatstore.admin_role ENABLE ROW LEVEL SECURITY;

SELECT pg_catalog.pg_extension_config_dump('chatstore.admin_role', '');

-- 1.0's admins carried forward: 1.0's grant_admin() granted EXECUTE on archive() and SELECT on archive_run, and never
-- EXECUTE on grant_admin() itself, so a role granted the first two directly but not the third (superusers aside) was
-- made an admin by grant_admin and becomes one here. A role that got EXECUTE from a blanket GRANT EXECUTE ON ALL
-- FUNCTIONS IN SCHEMA chatstore (which 1.0 took for an admin) also holds EXECUTE on grant_admin(), and is no admin any
-- more. A warning names every role carried forward (extension scripts show no notices).
DO $$
DECLARE
    carried text;
BEGIN
    WITH admins AS (
        INSERT INTO chatstore.admin_role (role_name)
        SELECT DISTINCT r.rolname
        FROM pg_catalog.pg_proc p
        CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) f
        JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) f.grantee
        WHERE p.oid OPERATOR(pg_catalog.=) 'chatstore.archive(interval, integer)'::pg_catalog.regprocedure
          AND f.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
          AND NOT r.rolsuper
          AND EXISTS (SELECT FROM pg_catalog.pg_class c CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) t
                      WHERE c.oid OPERATOR(pg_catalog.=) 'chatstore.archive_run'::pg_catalog.regclass
                        AND t.grantee OPERATOR(pg_catalog.=) f.grantee
                        AND t.privilege_type OPERATOR(pg_catalog.=) 'SELECT')
          AND NOT EXISTS (SELECT FROM pg_catalog.pg_proc g CROSS JOIN LATERAL pg_catalog.aclexplode(g.proacl) e
                          WHERE g.oid OPERATOR(pg_catalog.=) 'chatstore.grant_admin(pg_catalog.regrole)'::pg_catalog.regprocedure
                            AND e.grantee OPERATOR(pg_catalog.=) f.grantee
                            AND e.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE')
        RETURNING role_name)
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(role_name::pg_catalog.text), ', ' ORDER BY role_name)
    INTO carried FROM admins;
    IF carried IS NOT NULL THEN
        RAISE WARNING 'chatstore admins carried forward from 1.0: %', carried
            USING HINT = 'Admin status is now explicit (chatstore.admin_role); chatstore.revoke() takes it back.';
    END IF;
END
$$;

COMMENT ON FUNCTION chatstore.get_conversation(uuid) IS
    'the conversation; P0002 when it does not exist';

COMMENT ON FUNCTION chatstore.is_admin() IS
    'whether the calling role acts for every user when chatstore.user_id is not set (a superuser, or a role made admin by grant_admin)';

-- Identity for the current transaction only. Like every function, not granted to PUBLIC: run chatstore.grant_app()
-- (or grant_admin()) again for each role after this update.
CREATE FUNCTION chatstore.set_user(user_id text)
RETURNS text
AS 'MODULE_PATHNAME', 'chatstore_set_user'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.set_user(text) IS
    'declares the user the current transaction acts for (chatstore.user_id, until the transaction ends) and returns it';

REVOKE ALL ON FUNCTION chatstore.set_user(text) FROM PUBLIC;

COMMENT ON FUNCTION chatstore.grant_admin(regrole) IS
    'what grant_app grants, plus archiving in bulk and stats, and makes the role an admin (chatstore.admin_role), who acts for every user';

COMMENT ON FUNCTION chatstore.revoke(regrole) IS
    'takes back what grant_app and grant_admin gave a role, admin status included';

-- The archive's month partitions get the archive's row-level security (1.0 made them without it, so a role granted
-- SELECT on a partition read every user's archived messages there). New partitions get it when chatstore makes them.
DO $$
DECLARE
    part record;
BEGIN
    FOR part IN
        SELECT n.nspname, c.relname, c.oid
        FROM pg_catalog.pg_inherits i
        JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid
        JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
        WHERE i.inhparent OPERATOR(pg_catalog.=) 'chatstore.archived_message'::pg_catalog.regclass
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY', part.nspname, part.relname);
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_policy p
                       WHERE p.polrelid OPERATOR(pg_catalog.=) part.oid
                         AND p.polname OPERATOR(pg_catalog.=) 'archived_message_of_user') THEN
            EXECUTE pg_catalog.format(
                'CREATE POLICY archived_message_of_user ON %I.%I FOR SELECT'
                ' USING (EXISTS (SELECT 1 FROM chatstore.conversation c'
                ' WHERE c.id OPERATOR(pg_catalog.=) conversation_id))', part.nspname, part.relname);
        END IF;
    END LOOP;
END
$$;
