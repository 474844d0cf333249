-- chatstore 1.0 -> 1.0.1: hardening (calendar-correct partitions, background worker, locks, privileges, limits).
-- Every change to src/chatstore.sql since 1.0 is repeated here, so an updated install equals a fresh one
-- (test/programs/upgrade compares them).

\echo Use "ALTER EXTENSION chatstore UPDATE TO '1.0.1'" to load this file. \quit

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
