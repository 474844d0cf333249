-- rewind (take a conversation back to an earlier message; seed 002's update_chat) and list_all_conversations
-- (an admin's view of every user's conversations; seed 004's dashboard).
-- (an empty store: the suites before this one share the database)
DROP EXTENSION chatstore;
CREATE EXTENSION chatstore;
\pset null '(null)'

INSERT INTO chatstore.conversation (id, user_id, title, created_at, last_activity_at)
VALUES ('00000000-0000-7000-8000-0000000000aa', 'rw_alice', 'chat', now() - interval '1 minute', now() - interval '1 minute');
\set c '00000000-0000-7000-8000-0000000000aa'
SELECT count(*) FROM chatstore.append_many(:'c', '[
 {"role": "user", "content": "one"}, {"role": "assistant", "content": "two two"},
 {"role": "user", "content": "three three three"}, {"role": "assistant", "content": "four"}]');
SELECT seq FROM chatstore.append(:'c', 'user', 'five', idempotency_key => 'k5');
SELECT last_activity_at AS before_rewind FROM chatstore.conversation WHERE id = :'c' \gset

-- rewind to seq 3: the two messages after it go, the counters follow, the next append gets seq 4
SELECT chatstore.rewind(:'c', 3) AS removed;
SELECT seq, content FROM chatstore.history(:'c', 100);
SELECT last_seq, message_count, token_count = (SELECT sum(tokens) FROM chatstore.message WHERE conversation_id = :'c') AS tokens_follow,
       last_activity_at > :'before_rewind' AS activity
FROM chatstore.conversation WHERE id = :'c';
SELECT seq FROM chatstore.append(:'c', 'assistant', 'four again');
-- the idempotency key of a removed message is free again: the same key appends anew
SELECT seq, content FROM chatstore.append(:'c', 'user', 'five again', idempotency_key => 'k5');
SELECT seq, content FROM chatstore.append(:'c', 'user', 'five again', idempotency_key => 'k5');

-- to the last seq: nothing to remove
SELECT chatstore.rewind(:'c', 5) AS removed;

-- seed 002's update_chat: replace the whole content in one transaction
BEGIN;
SELECT chatstore.rewind(:'c', 0) AS removed;
SELECT count(*) FROM chatstore.append_many(:'c', '[{"role": "user", "content": "new question"},
                                                  {"role": "assistant", "content": "new answer"}]');
COMMIT;
SELECT chatstore.history_json(:'c', 100);
SELECT last_seq, message_count FROM chatstore.get_conversation(:'c');

-- a paused conversation stays paused
SELECT (chatstore.set_state(:'c', 'paused')).state;
SELECT chatstore.rewind(:'c', 1) AS removed;
SELECT state, last_seq FROM chatstore.get_conversation(:'c');

-- errors
SELECT chatstore.rewind(:'c', -1);
\echo :SQLSTATE
SELECT chatstore.rewind(:'c', 2);
\echo :SQLSTATE
SELECT chatstore.rewind(:'c', NULL);
\echo :SQLSTATE
SELECT chatstore.rewind(NULL, 0);
\echo :SQLSTATE
SELECT chatstore.rewind('00000000-0000-7000-8000-00000000dead', 0);
\echo :SQLSTATE
SELECT (chatstore.set_state(:'c', 'completed')).state;
SELECT chatstore.rewind(:'c', 0);
\echo :SQLSTATE
SELECT (chatstore.set_state(:'c', 'active')).state;
SELECT chatstore.archive_conversation(:'c');
SELECT chatstore.rewind(:'c', 0);
\echo :SQLSTATE
SELECT chatstore.restore(:'c');
-- another user's conversation is not there for the declared user
BEGIN;
SELECT chatstore.set_user('rw_bob');
SELECT chatstore.rewind(:'c', 0);
\echo :SQLSTATE
ROLLBACK;
SELECT last_seq, message_count FROM chatstore.get_conversation(:'c');

-- an app role may rewind its user's conversations
CREATE ROLE regress_chat_rewind_app LOGIN;
SELECT chatstore.grant_app('regress_chat_rewind_app');
SET ROLE regress_chat_rewind_app;
BEGIN;
SELECT chatstore.set_user('rw_alice');
SELECT chatstore.rewind(:'c', 0) AS removed;
COMMIT;
-- list_all_conversations is for admins
SELECT count(*) FROM chatstore.list_all_conversations();
\echo :SQLSTATE
RESET ROLE;

-- list_all_conversations: every user's conversations, most recent activity first, keyset pages
DELETE FROM chatstore.message;
DELETE FROM chatstore.conversation;
INSERT INTO chatstore.conversation (id, user_id, title, metadata, created_at, last_activity_at)
SELECT ('00000000-0000-7000-8000-0000000000' || lpad(n::text, 2, '0'))::uuid, 'user' || (n % 3), 'c' || n,
       jsonb_build_object('phase', CASE WHEN n % 2 = 0 THEN 'even' ELSE 'odd' END),
       timestamptz '2025-06-14 12:00+00' + n * interval '1 hour', timestamptz '2025-06-14 12:00+00' + n * interval '1 hour'
FROM generate_series(1, 9) n;
SELECT chatstore.archive_conversation('00000000-0000-7000-8000-000000000008');
SELECT (chatstore.set_state('00000000-0000-7000-8000-000000000007', 'completed')).state;
SELECT title, user_id, status FROM chatstore.list_all_conversations(max_results => 3);
SELECT title, user_id, status FROM chatstore.list_all_conversations(max_results => 3,
                                                                  before => '00000000-0000-7000-8000-000000000006');
SELECT string_agg(title, ' ' ORDER BY last_activity_at DESC) AS all_statuses FROM chatstore.list_all_conversations(status => NULL);
SELECT string_agg(title, ' ') AS archived FROM chatstore.list_all_conversations(status => 'archived');
SELECT string_agg(title, ' ') AS completed FROM chatstore.list_all_conversations(state => 'completed');
SELECT string_agg(title, ' ') AS even_phase FROM chatstore.list_all_conversations(status => NULL, metadata => '{"phase": "even"}');
-- a page boundary at an archived conversation, with both statuses
SELECT string_agg(title, ' ') AS after_c8 FROM chatstore.list_all_conversations(status => NULL, max_results => 2,
                                                                              before => '00000000-0000-7000-8000-000000000008');
-- acting for one user: that user's only
BEGIN;
SELECT chatstore.set_user('user1');
SELECT string_agg(title, ' ') AS user1 FROM chatstore.list_all_conversations(status => NULL);
-- (c3 is user0's)
SELECT count(*) FROM chatstore.list_all_conversations(before => '00000000-0000-7000-8000-000000000003');
\echo :SQLSTATE
ROLLBACK;
-- the active ones are read through the index of idle conversations (newest activity first; on Citus in the plan
-- of each shard, whose index is named after it)
SET enable_seqscan = off;
DO $$
DECLARE
    line text;
    uses_index boolean := false;
BEGIN
    FOR line IN EXPLAIN (COSTS OFF) SELECT id FROM chatstore.conversation c
        WHERE c.status = 'active' ORDER BY c.activity_bucket DESC, c.last_activity_at DESC, c.id DESC LIMIT 3
    LOOP
        uses_index := uses_index OR line ~ 'Index Scan Backward using conversation_idle_idx';
    END LOOP;
    RAISE NOTICE 'a backward index scan of conversation_idle_idx: %', uses_index;
END
$$;
RESET enable_seqscan;
-- errors
SELECT count(*) FROM chatstore.list_all_conversations(status => 'gone');
\echo :SQLSTATE
SELECT count(*) FROM chatstore.list_all_conversations(max_results => 0);
\echo :SQLSTATE
SELECT count(*) FROM chatstore.list_all_conversations(max_results => NULL);
\echo :SQLSTATE
SELECT count(*) FROM chatstore.list_all_conversations(before => '00000000-0000-7000-8000-00000000dead');
\echo :SQLSTATE
SELECT count(*) FROM chatstore.list_all_conversations(state => 'archived');
\echo :SQLSTATE

DROP OWNED BY regress_chat_rewind_app;
DROP ROLE regress_chat_rewind_app;
