-- chatstore 1.0.1 -> 1.1: the seed applications' data layers (keys, lifecycle, tags, search, usage, statistics,
-- export). Every change to src/chatstore.sql since 1.0.1 is repeated here, so an updated install equals a fresh one
-- (test/programs/upgrade compares them).

\echo Use "ALTER EXTENSION chatstore UPDATE TO '1.1'" to load this file. \quit

-- lifecycle: the application's state of a conversation (active, paused, completed), chatstore.set_state, and
-- filters by state and metadata in list_conversations and stats.
ALTER TABLE chatstore.conversation
    ADD COLUMN state text NOT NULL DEFAULT 'active',
    ADD CONSTRAINT conversation_state_check
        CHECK (state OPERATOR(pg_catalog.=) ANY (ARRAY['active', 'paused', 'completed']::pg_catalog.text[]));

DROP INDEX chatstore.conversation_user_activity_idx;
CREATE INDEX conversation_user_activity_idx
    ON chatstore.conversation (user_id, status, state, last_activity_at, id);

-- list_conversations and stats get new arguments: the old functions are renamed, the new ones created, the
-- EXECUTE grants of the old ones (grant_app, grant_admin) given to the new ones, and the old ones dropped.
ALTER FUNCTION chatstore.list_conversations(text, text, integer, uuid) RENAME TO list_conversations_1_0_1;
ALTER FUNCTION chatstore.stats() RENAME TO stats_1_0_1;

CREATE FUNCTION chatstore.list_conversations(
    user_id text,
    status text DEFAULT 'active',
    max_results integer DEFAULT 50,
    before uuid DEFAULT NULL,
    state text DEFAULT NULL,
    metadata jsonb DEFAULT NULL)
RETURNS SETOF chatstore.conversation
AS 'MODULE_PATHNAME', 'chatstore_list_conversations'
LANGUAGE C STABLE ROWS 50;

COMMENT ON FUNCTION chatstore.list_conversations(text, text, integer, uuid, text, jsonb) IS
    'one page of a user''s conversations, most recent activity first, optionally of one state and containing metadata; pass the last id of a page as before to get the next';

CREATE FUNCTION chatstore.set_state(conversation_id uuid, state text)
RETURNS chatstore.conversation
AS 'MODULE_PATHNAME', 'chatstore_set_state'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.set_state(uuid, text) IS
    'sets the application''s lifecycle state of a conversation (active, paused or completed) and returns the conversation';

CREATE FUNCTION chatstore.stats(
    state text DEFAULT NULL,
    metadata jsonb DEFAULT NULL,
    OUT conversations bigint,
    OUT active_conversations bigint,
    OUT archived_conversations bigint,
    OUT messages bigint,
    OUT archived_messages bigint,
    OUT avg_messages_per_conversation numeric,
    OUT state_active bigint,
    OUT state_paused bigint,
    OUT state_completed bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'chatstore_stats'
LANGUAGE C STABLE;

COMMENT ON FUNCTION chatstore.stats(text, jsonb) IS
    'counts of conversations and messages, live and archived, and of conversations per state; optionally of one state and containing metadata';

REVOKE ALL ON FUNCTION chatstore.list_conversations(text, text, integer, uuid, text, jsonb),
    chatstore.set_state(uuid, text), chatstore.stats(text, jsonb) FROM PUBLIC;

DO $$
DECLARE
    g record;
BEGIN
    FOR g IN
        SELECT DISTINCT p.newsig, f.grantee
        FROM (VALUES ('chatstore.list_conversations_1_0_1(text, text, integer, uuid)',
                      'chatstore.list_conversations(text, text, integer, uuid, text, jsonb)'),
                     ('chatstore.stats_1_0_1()', 'chatstore.stats(text, jsonb)')) p (oldsig, newsig)
        JOIN pg_catalog.pg_proc o ON o.oid OPERATOR(pg_catalog.=) p.oldsig::pg_catalog.regprocedure
        CROSS JOIN LATERAL pg_catalog.aclexplode(o.proacl) f
        WHERE f.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
          AND f.grantee OPERATOR(pg_catalog.<>) o.proowner
          AND f.grantee OPERATOR(pg_catalog.<>) 0
    LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %I', g.newsig, pg_catalog.pg_get_userbyid(g.grantee));
    END LOOP;
END
$$;

DROP FUNCTION chatstore.list_conversations_1_0_1(text, text, integer, uuid);
DROP FUNCTION chatstore.stats_1_0_1();
