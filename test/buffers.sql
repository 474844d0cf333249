-- pgTAP: the cost of a window follows the window, not the conversation. Reading the last 20 messages of a
-- 100,000-message conversation touches about as many buffers as of a 100-message one; so does a token-budget
-- context. And every function is served by an index: no sequential scan of a chat table (stats() aside,
-- which reads every conversation row by design).
BEGIN;
SELECT plan(6);

SELECT chatstore.create_conversation('big') AS big \gset
SELECT chatstore.create_conversation('small') AS small \gset
-- 100,000 messages in batches of 1,000, interleaved with the small conversation's 100
SELECT count(*) FROM generate_series(1, 100) b,
  LATERAL chatstore.append_many(:'big',
    (SELECT jsonb_agg(jsonb_build_object('role', CASE WHEN k % 2 = 0 THEN 'assistant' ELSE 'user' END,
                                         'content', 'message ' || (b * 1000 + k) || ' ' || repeat('lorem ipsum ', 8)))
     FROM generate_series(1, 1000) k)) m \g /dev/null
SELECT count(*) FROM generate_series(1, 100) k,
  LATERAL chatstore.append(:'small', CASE WHEN k % 2 = 0 THEN 'assistant' ELSE 'user' END,
                           'message ' || k || ' ' || repeat('lorem ipsum ', 8)) \g /dev/null
-- 5,000 other conversations of 500 users, so that the planner weighs a real table
SELECT count(chatstore.create_conversation('user' || (n % 500))) FROM generate_series(1, 5000) n \g /dev/null
ANALYZE chatstore.conversation;
ANALYZE chatstore.message;

-- shared buffers touched (hit + read) by one statement, measured on its second run (the first also
-- reads catalogs and prepares plans)
CREATE FUNCTION pg_temp.buffers(query text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  line text;
  total bigint := 0;
BEGIN
  EXECUTE 'EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || query;
  FOR line IN EXECUTE 'EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || query LOOP
    IF line ~ '^\s*->' OR total > 0 THEN CONTINUE; END IF;   -- the top node's line comes first
    IF line ~ 'Buffers: shared' THEN
      total := coalesce(substring(line FROM 'hit=(\d+)')::bigint, 0) + coalesce(substring(line FROM 'read=(\d+)')::bigint, 0);
    END IF;
  END LOOP;
  RETURN total;
END $$;

SELECT pg_temp.buffers(format('SELECT * FROM chatstore.history(%L, 20)', :'big')) AS big_history \gset
SELECT pg_temp.buffers(format('SELECT * FROM chatstore.history(%L, 20)', :'small')) AS small_history \gset
SELECT pg_temp.buffers(format('SELECT * FROM chatstore.context(%L, 400)', :'big')) AS big_context \gset
SELECT pg_temp.buffers(format('SELECT * FROM chatstore.context(%L, 400)', :'small')) AS small_context \gset
SELECT pg_temp.buffers(format('SELECT * FROM chatstore.history(%L, 20, before_seq => 50000)', :'big')) AS big_middle \gset
\echo history last 20: 100,000 messages :big_history buffers, 100 messages :small_history buffers
\echo context 400 tokens: 100,000 messages :big_context buffers, 100 messages :small_context buffers

SELECT cmp_ok(pg_temp.buffers(format('SELECT * FROM chatstore.history(%L, 10000)', :'big')), '>', 10 * :big_history::bigint,
              'buffers touched inside the function are measured: a 10,000-message window costs far more');
SELECT cmp_ok(:big_history::bigint, '<=', :small_history::bigint + 5,
              format('history(20): %s buffers at 100,000 messages, %s at 100', :big_history, :small_history));
SELECT cmp_ok(:big_middle::bigint, '<=', :small_history::bigint + 5,
              format('history(20, before_seq) in the middle: %s buffers', :big_middle));
SELECT cmp_ok(:big_context::bigint, '<=', :small_context::bigint + 5,
              format('context(400 tokens): %s buffers at 100,000 messages, %s at 100', :big_context, :small_context));
SELECT cmp_ok(pg_temp.buffers(format('SELECT chatstore.history_json(%L, 20)', :'big')), '<=', :small_history::bigint + 5,
              'history_json costs what history costs');

-- no sequential scans of chat tables by any function (pg_stat_xact_* counts this transaction's scans)
CREATE TEMP TABLE scans_before AS
SELECT relname, seq_scan FROM pg_stat_xact_user_tables WHERE schemaname = 'chatstore';
SELECT chatstore.get_conversation(:'big') IS NOT NULL AS got \g /dev/null
SELECT count(*) FROM chatstore.list_conversations('big') \g /dev/null
SELECT count(*) FROM chatstore.list_conversations('big', NULL) \g /dev/null
SELECT id AS user1_conv FROM chatstore.conversation WHERE user_id = 'user1' ORDER BY id LIMIT 1 \gset
SELECT count(*) FROM chatstore.list_conversations('user1', 'active', 3, :'user1_conv') \g /dev/null
SELECT count(*) FROM chatstore.list_conversations('user1', NULL, 3, :'user1_conv', 'paused', '{"a": 1}') \g /dev/null
SELECT count(*) FROM chatstore.list_conversations('big', state => 'completed', metadata => '{"a": 1}') \g /dev/null
SELECT chatstore.set_state(:'small', 'paused') IS NOT NULL \g /dev/null
SELECT chatstore.update_conversation(:'small', title => 'renamed') IS NOT NULL \g /dev/null
SELECT (chatstore.append(:'big', 'user', 'one more')).seq \g /dev/null
SELECT (chatstore.append(:'big', 'user', 'keyed', idempotency_key => 'k1')).seq \g /dev/null
SELECT count(*) FROM chatstore.history(:'big', 50, 70000) \g /dev/null
SELECT count(*) FROM chatstore.context(:'big', 1000, 30) \g /dev/null
SELECT chatstore.history_json(:'small', 5, 200) IS NOT NULL \g /dev/null
SELECT chatstore.archive() \g /dev/null
SELECT chatstore.archive_conversation(:'small') \g /dev/null
SELECT count(*) FROM chatstore.history(:'small') \g /dev/null
SELECT chatstore.restore(:'small') \g /dev/null
SELECT chatstore.delete_conversation(:'small') \g /dev/null
SELECT is((SELECT array_agg(a.relname::text ORDER BY a.relname) FROM pg_stat_xact_user_tables a JOIN scans_before b USING (relname)
           WHERE a.schemaname = 'chatstore' AND a.seq_scan > b.seq_scan),
          NULL, 'no function scans a chat table sequentially');

-- (test/archive_long.sql archives a conversation this long whole, on Citus too)

SELECT * FROM finish();
ROLLBACK;
