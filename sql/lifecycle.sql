-- Lifecycle: the application's state of a conversation (active, paused, completed), set_state, appends to paused
-- and completed conversations, and the state and metadata filters of list_conversations and stats.
-- (an empty store: the suites before this one share the database)
DROP EXTENSION chatstore;
CREATE EXTENSION chatstore;
\pset null '(null)'

-- a coach's sessions (fixed ids and times, so that order and errors read the same every run): c01..c12, one an hour
-- apart, phases in turn; and another user's three sessions with the same phases
INSERT INTO chatstore.conversation (id, user_id, title, metadata, created_at, last_activity_at)
SELECT ('00000000-0000-7000-8000-0000000000' || lpad(n::text, 2, '0'))::uuid, 'coach', 'session ' || n,
       jsonb_build_object('phase', (ARRAY['risk_assessment', 'customer_discovery', 'problem_validation',
                                          'solution_validation'])[1 + n % 4], 'n', n),
       timestamptz '2025-06-14 12:00+00' + n * interval '1 hour', timestamptz '2025-06-14 12:00+00' + n * interval '1 hour'
FROM generate_series(1, 12) n;
INSERT INTO chatstore.conversation (id, user_id, title, metadata, created_at, last_activity_at)
SELECT ('00000000-0000-7000-8000-0000000001' || lpad(n::text, 2, '0'))::uuid, 'other', 'other ' || n,
       jsonb_build_object('phase', (ARRAY['risk_assessment', 'customer_discovery', 'problem_validation',
                                          'solution_validation'])[1 + n % 4]),
       timestamptz '2025-06-14 12:00+00' + n * interval '1 hour', timestamptz '2025-06-14 12:00+00' + n * interval '1 hour'
FROM generate_series(1, 3) n;
\set c1 '00000000-0000-7000-8000-000000000001'
\set c2 '00000000-0000-7000-8000-000000000002'
\set c3 '00000000-0000-7000-8000-000000000003'
\set c4 '00000000-0000-7000-8000-000000000004'
\set o1 '00000000-0000-7000-8000-000000000101'

-- a new conversation is active, in both senses
SELECT chatstore.create_conversation('newbie', 'new') AS new \gset
SELECT status, state FROM chatstore.get_conversation(:'new');

-- set_state returns the conversation; a state change is not activity (last_activity_at stays)
SELECT title, status, state, last_activity_at = created_at AS no_activity
FROM chatstore.set_state(:'c1', 'paused');
SELECT title, state FROM chatstore.set_state(:'c2', 'completed');
SELECT title, state FROM chatstore.set_state(:'c2', 'completed');    -- the same state again: no error
SELECT state FROM chatstore.conversation WHERE id = :'c1';

-- errors: an unknown state lists the valid ones; 'archived' is a status, with a hint to archive_conversation
SELECT chatstore.set_state(:'c1', 'done');
\echo :SQLSTATE
SELECT chatstore.set_state(:'c1', 'archived');
\echo :SQLSTATE
SELECT chatstore.set_state(:'c1', 'Active');
\echo :SQLSTATE
SELECT chatstore.set_state(:'c1', NULL);
\echo :SQLSTATE
SELECT chatstore.set_state(NULL, 'active');
\echo :SQLSTATE
SELECT chatstore.set_state('00000000-0000-7000-8000-00000000dead', 'active');
\echo :SQLSTATE
-- another user's conversation does not exist for the coach
BEGIN;
SELECT chatstore.set_user('coach') \g /dev/null
SELECT chatstore.set_state(:'o1', 'completed');
\echo :SQLSTATE
ROLLBACK;
SELECT state FROM chatstore.conversation WHERE id = :'o1';

-- appending to a paused conversation stores the message and resumes it (state active again)
SELECT seq, content FROM chatstore.append(:'c1', 'user', 'I am back');
SELECT state, message_count FROM chatstore.conversation WHERE id = :'c1';
SELECT chatstore.set_state(:'c1', 'paused') \g /dev/null
SELECT seq FROM chatstore.append_many(:'c1', '[{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}]');
SELECT state, message_count FROM chatstore.conversation WHERE id = :'c1';

-- appending to a completed conversation is refused (55000, nothing stored), append and append_many alike
SELECT chatstore.append(:'c2', 'user', 'one more thing');
\echo :SQLSTATE
SELECT chatstore.append_many(:'c2', '[{"role": "user", "content": "one more thing"}]');
\echo :SQLSTATE
SELECT state, message_count, last_seq FROM chatstore.conversation WHERE id = :'c2';
-- an idempotent retry of a message stored before completion returns that message; a new key is refused
SELECT chatstore.set_state(:'c3', 'active') \g /dev/null
SELECT seq, content FROM chatstore.append(:'c3', 'user', 'final answer?', idempotency_key => 'k1');
SELECT chatstore.set_state(:'c3', 'completed') \g /dev/null
SELECT seq, content FROM chatstore.append(:'c3', 'user', 'final answer?', idempotency_key => 'k1');
SELECT chatstore.append(:'c3', 'user', 'final answer?', idempotency_key => 'k2');
\echo :SQLSTATE
SELECT state, message_count FROM chatstore.conversation WHERE id = :'c3';
-- set active again, and the conversation continues
SELECT chatstore.set_state(:'c3', 'active') \g /dev/null
SELECT seq, content FROM chatstore.append(:'c3', 'user', 'one more thing');

-- state and archive are independent: the state survives archive and restore, and can be set while archived
SELECT chatstore.set_state(:'c4', 'paused') \g /dev/null
SELECT chatstore.append(:'c4', 'user', 'before the archive') \g /dev/null
SELECT chatstore.set_state(:'c4', 'paused') \g /dev/null
SELECT chatstore.archive_conversation(:'c4');
SELECT status, state FROM chatstore.get_conversation(:'c4');
SELECT status, state FROM chatstore.set_state(:'c4', 'completed');
-- archived comes first: the append would need a restore before anything else
SELECT chatstore.append(:'c4', 'user', 'hello?');
\echo :SQLSTATE
SELECT chatstore.restore(:'c4');
SELECT status, state, message_count FROM chatstore.get_conversation(:'c4');
SELECT chatstore.append(:'c4', 'user', 'hello?');
\echo :SQLSTATE

-- the coach's sessions now: c1 active (resumed) and archived, c2 and c4 completed, three paused, the rest active
UPDATE chatstore.conversation SET last_activity_at = created_at WHERE user_id = 'coach';
-- (the ids first: on Citus a chatstore function called from a query over a chat table runs on a shard)
WITH c AS MATERIALIZED (SELECT id FROM chatstore.conversation
                        WHERE user_id = 'coach' AND title IN ('session 5', 'session 9', 'session 10'))
SELECT chatstore.set_state(id, 'paused') FROM c \g /dev/null
SELECT chatstore.archive_conversation(:'c1');
SELECT title, status, state, metadata->>'phase' AS phase FROM chatstore.conversation
WHERE user_id = 'coach' ORDER BY last_activity_at DESC, id DESC;

-- list_conversations: by state, by metadata containment, both, with status
SELECT title, state FROM chatstore.list_conversations('coach', state => 'paused');
SELECT title, state FROM chatstore.list_conversations('coach', state => 'completed');
SELECT title, state FROM chatstore.list_conversations('coach', status => NULL, state => 'completed');
SELECT title, metadata->>'phase' AS phase
FROM chatstore.list_conversations('coach', metadata => '{"phase": "customer_discovery"}');
SELECT title, status FROM chatstore.list_conversations('coach', status => NULL, metadata => '{"phase": "customer_discovery"}');
SELECT title FROM chatstore.list_conversations('coach', state => 'paused', metadata => '{"phase": "customer_discovery"}');
SELECT title FROM chatstore.list_conversations('coach', metadata => '{"phase": "customer_discovery", "n": 5}');
SELECT title FROM chatstore.list_conversations('coach', metadata => '{"phase": "no such phase"}');
SELECT count(*) FROM chatstore.list_conversations('coach', metadata => '{}');
-- without filters, as before: every state of the status, most recent activity first
SELECT title, state FROM chatstore.list_conversations('coach', max_results => 5);

-- keyset paging with filters: pages of 2 put together are the whole filtered list, in order
SET client_min_messages = error;  -- Citus warns that it creates a pg_temp function on the coordinator only
CREATE FUNCTION pg_temp.pages(flt_status text, flt_state text, flt_metadata jsonb) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    result text[] := '{}';
    last uuid;
    page text[];
    page_last uuid;
BEGIN
    LOOP
        SELECT array_agg(l.title ORDER BY l.ordinality), (array_agg(l.id ORDER BY l.ordinality DESC))[1]
        INTO page, page_last
        FROM chatstore.list_conversations('coach', flt_status, 2, last, flt_state, flt_metadata) WITH ORDINALITY AS l;
        EXIT WHEN page IS NULL;
        result := result || page;
        last := page_last;
    END LOOP;
    RETURN result;
END
$$;
RESET client_min_messages;
SELECT f.status, f.state, f.metadata, pg_temp.pages(f.status, f.state, f.metadata) AS paged,
       pg_temp.pages(f.status, f.state, f.metadata)
         = ARRAY(SELECT title FROM chatstore.list_conversations('coach', f.status, 100, NULL, f.state, f.metadata)) AS same
FROM (VALUES ('active', NULL, NULL), (NULL, NULL, NULL), ('active', 'active', NULL), (NULL, 'completed', NULL),
             ('active', NULL, '{"phase": "solution_validation"}'::jsonb),
             (NULL, 'active', '{"phase": "risk_assessment"}'::jsonb)) f (status, state, metadata);
-- before need not match the filters any more: the page starts below its position
SELECT title FROM chatstore.list_conversations('coach', before => '00000000-0000-7000-8000-000000000010', state => 'completed');

-- errors of the filters
SELECT chatstore.list_conversations('coach', state => 'archived');
\echo :SQLSTATE
SELECT chatstore.list_conversations('coach', state => 'done');
\echo :SQLSTATE
SELECT chatstore.list_conversations('coach', metadata => '["phase"]');
\echo :SQLSTATE
SELECT chatstore.list_conversations('coach', metadata => '"customer_discovery"');
\echo :SQLSTATE

-- per-user isolation: the other user's sessions share the phases but never appear
SELECT count(*) FROM chatstore.list_conversations('coach', status => NULL, max_results => 100)
WHERE user_id <> 'coach';
BEGIN;
SELECT chatstore.set_user('coach') \g /dev/null
SELECT count(*) FROM chatstore.list_conversations('other', status => NULL, metadata => '{"phase": "customer_discovery"}');
SELECT title FROM chatstore.list_conversations('coach', metadata => '{"phase": "customer_discovery"}');
ROLLBACK;

-- stats: conversations per state (live and archived), and the same figures for one state or metadata
SELECT * FROM chatstore.stats();
SELECT * FROM chatstore.stats('paused');
SELECT * FROM chatstore.stats(metadata => '{"phase": "customer_discovery"}');
SELECT * FROM chatstore.stats('completed', '{"phase": "customer_discovery"}');
BEGIN;
SELECT chatstore.set_user('other') \g /dev/null
SELECT conversations, state_active, state_paused, state_completed FROM chatstore.stats();
ROLLBACK;
SELECT chatstore.stats('archived');
\echo :SQLSTATE
SELECT chatstore.stats(metadata => '[]');
\echo :SQLSTATE

-- index-backed: with a realistic number of rows (one user with 2,000 conversations among 20,000), the filtered
-- list reads the index runs of (user_id, status, state, last_activity_at, id), each stopping at a page. The query
-- is list_conversations' own, prepared with parameters as the function prepares it. (On a distributed install
-- the function runs another query, one plain query over every shard, with the same filters and the same index in
-- each shard: prepared here on Citus, which cannot plan the one-node query generically.)
SELECT NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus') AS one_node \gset
INSERT INTO chatstore.conversation (id, user_id, metadata, state, created_at, last_activity_at)
SELECT chatstore.uuidv7(), CASE WHEN n % 10 = 0 THEN 'coach' ELSE 'user' || n % 997 END,
       jsonb_build_object('phase', (ARRAY['risk_assessment', 'customer_discovery', 'problem_validation',
                                          'solution_validation'])[1 + n / 10 % 4]),
       (ARRAY['active', 'active', 'paused', 'completed'])[1 + n / 40 % 4],
       timestamptz '2025-01-01 00:00+00' + n * interval '1 minute', timestamptz '2025-01-01 00:00+00' + n * interval '1 minute'
FROM generate_series(1, 20000) n;
ANALYZE chatstore.conversation;
\if :one_node
SET plan_cache_mode = force_generic_plan;
PREPARE list (text, text, timestamptz, uuid, integer, text, jsonb) AS
SELECT id, user_id, title, model, status, metadata, message_count, token_count, last_seq, created_at, last_activity_at, archived_at, state, key, activity_bucket FROM
 (VALUES ('active', 'active'), ('active', 'paused'), ('active', 'completed'),
         ('archived', 'active'), ('archived', 'paused'), ('archived', 'completed'))
   AS k (k_status, k_state)
 CROSS JOIN LATERAL
 (SELECT id, user_id, title, model, status, metadata, message_count, token_count, last_seq, created_at, last_activity_at, archived_at, state, key, activity_bucket FROM chatstore.conversation c
   WHERE c.user_id OPERATOR(pg_catalog.=) $1
     AND c.status OPERATOR(pg_catalog.=) k.k_status
     AND c.state OPERATOR(pg_catalog.=) k.k_state
     AND c.activity_bucket OPERATOR(pg_catalog.<=) $3
     AND (c.last_activity_at, c.id) OPERATOR(pg_catalog.<) ($3, $4)
     AND ($7 IS NULL OR c.metadata OPERATOR(pg_catalog.@>) $7)
   ORDER BY c.activity_bucket DESC, c.last_activity_at DESC, c.id DESC LIMIT $5) c
 WHERE ($2 IS NULL OR k.k_status OPERATOR(pg_catalog.=) $2)
   AND ($6 IS NULL OR k.k_state OPERATOR(pg_catalog.=) $6)
 ORDER BY last_activity_at DESC, id DESC LIMIT $5;
\else
PREPARE list (text, text, timestamptz, uuid, integer, text, jsonb) AS
SELECT id, user_id, title, model, status, metadata, message_count, token_count, last_seq, created_at, last_activity_at, archived_at, state, key, activity_bucket FROM chatstore.conversation c
 WHERE c.user_id OPERATOR(pg_catalog.=) $1
   AND ($2 IS NULL OR c.status OPERATOR(pg_catalog.=) $2)
   AND ($6 IS NULL OR c.state OPERATOR(pg_catalog.=) $6)
   AND c.activity_bucket OPERATOR(pg_catalog.<=) $3
   AND (c.last_activity_at, c.id) OPERATOR(pg_catalog.<) ($3, $4)
   AND ($7 IS NULL OR c.metadata OPERATOR(pg_catalog.@>) $7)
 ORDER BY c.last_activity_at DESC, c.id DESC LIMIT $5;
\endif
-- the plan: the index of (user_id, status, state, activity_bucket) searched by user, status and state, under a
-- Limit of its own (each run stops at a page; on Citus each shard) and the page's Limit; no sequential scan
DO $$
DECLARE
    line text;
    by_index boolean := false;
    seq_scan boolean := false;
    limits integer := 0;
BEGIN
    FOR line IN EXPLAIN (COSTS OFF)
        EXECUTE list('coach', 'active', 'infinity', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 20, 'paused',
                     '{"phase": "customer_discovery"}')
    LOOP
        by_index := by_index OR line ~ 'Index Cond: \(\(user_id = [^)]*\) AND \(status = [^)]*\) AND \(state = ';
        seq_scan := seq_scan OR line ~ 'Seq Scan';
        limits := limits + (line ~ '^ *(->  )?Limit$')::integer;
    END LOOP;
    RAISE NOTICE 'index conditions on user, status and state: %, a sequential scan: %, limits: %',
        by_index, seq_scan, limits;
END
$$;
-- the function returns what the prepared query returns
CREATE TEMP TABLE listed AS
EXECUTE list('coach', 'active', 'infinity', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 20, 'paused', '{"phase": "customer_discovery"}');
SELECT count(*), ARRAY(SELECT id FROM chatstore.list_conversations('coach', 'active', 20, NULL, 'paused', '{"phase": "customer_discovery"}'))
     = ARRAY(SELECT id FROM listed ORDER BY last_activity_at DESC, id DESC) AS same FROM listed;
DEALLOCATE list;
RESET plan_cache_mode;
