-- Usage per message (input_tokens, output_tokens, latency_ms, model), usage(), daily_volume(), stats()'s response
-- times and the operators' storage(). Date-independent: messages are placed at fixed instants of 2024 by UPDATEs
-- (as superuser), and the session's time zone is not UTC, to show that usage() counts UTC days unless told.
DROP EXTENSION chatstore;
CREATE EXTENSION chatstore;
SET TimeZone = 'Asia/Tokyo';
\set VERBOSITY default

-- append: the usage of the model call that made the message, at the end of the arguments; all optional
SELECT chatstore.create_conversation('alice', 'coaching', model => 'gpt-4o-mini') AS a1 \gset
SELECT seq, role, model, tokens, input_tokens, output_tokens, latency_ms
FROM chatstore.append(:'a1', 'user', 'I want to build an AI-powered fitness app');
-- seed 004's add_message: the response time and the follow-up suggestions (kept in metadata)
SELECT seq, model, input_tokens, output_tokens, latency_ms, metadata
FROM chatstore.append(:'a1', 'assistant', 'Who would be most disappointed if it did not exist?',
                      metadata => '{"phase": "risk_assessment",
                                    "suggestions": ["What is the biggest assumption?", "Who needs this most?"]}',
                      model => 'gpt-4o', input_tokens => 120, output_tokens => 35, latency_ms => 1500);
-- seed 003's response: prompt and completion tokens, model used, completion time
SELECT seq, model, input_tokens, output_tokens, latency_ms
FROM chatstore.append(:'a1', 'assistant', 'A second answer', NULL, NULL, 'gpt-4o', NULL, 200, 80, 2500);
-- zero is a value; each figure may come alone
SELECT seq, input_tokens, output_tokens, latency_ms
FROM chatstore.append(:'a1', 'assistant', 'cached', input_tokens => 0, output_tokens => 0, latency_ms => 0);
SELECT seq, input_tokens, output_tokens, latency_ms FROM chatstore.append(:'a1', 'assistant', 'timed', latency_ms => 7);

-- append_many: the same figures as top-level keys of each element ("usage" and other unknown keys are refused)
SELECT seq, model, input_tokens, output_tokens, latency_ms, metadata
FROM chatstore.append_many(:'a1', '[
  {"role": "user", "content": "What should I test first?"},
  {"role": "assistant", "content": "Talk to ten users.", "model": "gpt-4o", "input_tokens": 310,
   "output_tokens": 42, "latency_ms": 980, "metadata": {"suggestions": ["How do I find them?"]}},
  {"role": "assistant", "content": "null figures are no figures", "input_tokens": null, "latency_ms": null}]');

-- suggestions round-trip: stored metadata comes back as given from history(); history_json gives the chat
-- format, which has no usage fields (usage stays in the columns)
SELECT seq, metadata -> 'suggestions' AS suggestions, metadata ->> 'phase' AS phase
FROM chatstore.history(:'a1') WHERE metadata ? 'suggestions';
SELECT jsonb_array_elements(chatstore.history_json(:'a1', 2));

-- errors: negative or implausible figures (22023), bad JSON values (22023); nothing is stored
SELECT chatstore.append(:'a1', 'assistant', 'x', input_tokens => -1);
\echo :SQLSTATE
SELECT chatstore.append(:'a1', 'assistant', 'x', output_tokens => -5);
\echo :SQLSTATE
SELECT chatstore.append(:'a1', 'assistant', 'x', latency_ms => -1);
\echo :SQLSTATE
SELECT chatstore.append(:'a1', 'assistant', 'x', latency_ms => 86400001);
\echo :SQLSTATE
SELECT chatstore.append(:'a1', 'assistant', 'x', input_tokens => 100000001);
\echo :SQLSTATE
SELECT chatstore.append_many(:'a1', '[{"role": "assistant", "content": "x", "latency_ms": -3}]');
\echo :SQLSTATE
SELECT chatstore.append_many(:'a1', '[{"role": "assistant", "content": "x", "output_tokens": 1.5}]');
\echo :SQLSTATE
SELECT chatstore.append_many(:'a1', '[{"role": "assistant", "content": "x", "input_tokens": "12"}]');
\echo :SQLSTATE
SELECT chatstore.append_many(:'a1', '[{"role": "assistant", "content": "x", "latency_ms": 1e12}]');
\echo :SQLSTATE
SELECT chatstore.append_many(:'a1', '[{"role": "assistant", "content": "x", "usage": {"prompt_tokens": 3}}]');
\echo :SQLSTATE
SELECT message_count FROM chatstore.get_conversation(:'a1');

-- Place the messages in time (UTC):
--   alice a1: seq 1-5 on 2024-03-01 at 10:00 + seq minutes, seq 6-8 on 2024-03-02 at 02:00 (still 1 March in New York)
--   bob   b1: two answers on 2024-03-02 at 12:00, by model claude
--   alice a2: archived, one answer on 2024-02-29 (leap day) at 23:59:59.999999, one on 2024-03-03 (after the period)
SELECT chatstore.create_conversation('bob') AS b1 \gset
SELECT count(*) FROM chatstore.append_many(:'b1', '[
  {"role": "assistant", "content": "b one", "model": "claude", "input_tokens": 1000, "output_tokens": 100, "latency_ms": 300},
  {"role": "assistant", "content": "b two", "model": "claude", "input_tokens": 2000, "output_tokens": 200, "latency_ms": 500}]');
SELECT chatstore.create_conversation('alice') AS a2 \gset
SELECT count(*) FROM chatstore.append_many(:'a2', '[
  {"role": "assistant", "content": "leap", "model": "gpt-4o", "input_tokens": 5, "output_tokens": 6, "latency_ms": 40},
  {"role": "assistant", "content": "later", "model": "gpt-4o", "input_tokens": 7, "output_tokens": 8, "latency_ms": 60}]');
-- (each time written out: Citus refuses timestamptz arithmetic on a column in an UPDATE, a STABLE operator)
UPDATE chatstore.message SET created_at = CASE seq WHEN 1 THEN '2024-03-01 10:01+00'::timestamptz
                                                  WHEN 2 THEN '2024-03-01 10:02+00' WHEN 3 THEN '2024-03-01 10:03+00'
                                                  WHEN 4 THEN '2024-03-01 10:04+00' ELSE '2024-03-01 10:05+00' END
WHERE conversation_id = :'a1' AND seq <= 5;
UPDATE chatstore.message SET created_at = '2024-03-02 02:00+00' WHERE conversation_id = :'a1' AND seq > 5;
UPDATE chatstore.message SET created_at = '2024-03-02 12:00+00' WHERE conversation_id = :'b1';
UPDATE chatstore.message SET created_at = CASE seq WHEN 1 THEN '2024-02-29 23:59:59.999999+00'::timestamptz
                                                  ELSE '2024-03-03 00:00+00' END
WHERE conversation_id = :'a2';
UPDATE chatstore.conversation SET created_at = '2024-03-01 10:00+00', last_activity_at = '2024-03-02 02:00+00' WHERE id = :'a1';
UPDATE chatstore.conversation SET created_at = '2024-03-02 12:00+00', last_activity_at = '2024-03-02 12:00+00' WHERE id = :'b1';
UPDATE chatstore.conversation SET created_at = '2024-02-29 23:00+00', last_activity_at = '2024-03-03 00:00+00' WHERE id = :'a2';
SELECT chatstore.archive_conversation(:'a2');

-- usage(): per UTC day by default, over [since, until): live and archived; a day without usage figures has 0 tokens
SELECT * FROM chatstore.usage('2024-02-29 00:00+00', '2024-03-03 00:00+00');
-- per model (NULL: messages stored without a model), per user, per day and model, and one total
SELECT model, messages, input_tokens, output_tokens, total_tokens, avg_latency_ms, min_latency_ms, max_latency_ms
FROM chatstore.usage('2024-03-01 00:00+00', '2024-03-03 00:00+00', '{model}');
SELECT user_id, messages, total_tokens, avg_latency_ms
FROM chatstore.usage('2024-02-01 00:00+00', '2024-04-01 00:00+00', '{user}');
SELECT day, model, messages, total_tokens
FROM chatstore.usage('2024-02-01 00:00+00', '2024-04-01 00:00+00', group_by => '{model,day}');
SELECT * FROM chatstore.usage('2024-02-01 00:00+00', NULL, '{}');
-- the end is exclusive, the start inclusive (the leap-day message is the last microsecond of 29 February)
SELECT day, messages FROM chatstore.usage('2024-03-01 00:00+00', '2024-03-01 10:03+00');
SELECT day, messages FROM chatstore.usage('2024-02-29 23:59:59.999999+00', '2024-03-01 00:00+00');
-- calendar days in another time zone: 02:00 UTC on 2 March is 1 March in New York
SELECT day, messages FROM chatstore.usage('2024-02-01 00:00+00', '2024-04-01 00:00+00', time_zone => 'America/New_York');
-- one user's (for an admin, for_user filters), and an empty period
SELECT day, model, user_id, messages, total_tokens
FROM chatstore.usage('2024-02-01 00:00+00', '2024-04-01 00:00+00', '{day,model,user}', for_user => 'alice');
SELECT count(*) FROM chatstore.usage('2024-03-01 00:00+00', '2024-03-01 00:00+00');
SELECT count(*) FROM chatstore.usage('2025-01-01 00:00+00', '2024-01-01 00:00+00');
-- errors
SELECT * FROM chatstore.usage(NULL);
\echo :SQLSTATE
SELECT * FROM chatstore.usage('2024-01-01', group_by => '{week}');
\echo :SQLSTATE
SELECT * FROM chatstore.usage('2024-01-01', group_by => '{day,NULL}');
\echo :SQLSTATE
SELECT * FROM chatstore.usage('2024-01-01', group_by => NULL);
\echo :SQLSTATE
SELECT * FROM chatstore.usage('2024-01-01', time_zone => 'Mars/Olympus_Mons');
\echo :SQLSTATE

-- the live table's scan is index-backed: a BRIN index on created_at (cheap at append)
SELECT indexdef FROM pg_indexes WHERE indexname = 'message_created_at_idx';
-- (on Citus in the plan of each shard, whose index is named after it; SET LOCAL reaches the shards)
BEGIN;
SET LOCAL enable_seqscan = off;
DO $$
DECLARE
    line text;
    uses_index boolean := false;
BEGIN
    FOR line IN EXPLAIN (COSTS OFF)
        SELECT count(*) FROM chatstore.message WHERE created_at >= '2024-03-01' AND created_at < '2024-03-02'
    LOOP
        uses_index := uses_index OR line ~ 'Bitmap Index Scan on message_created_at_idx';
    END LOOP;
    RAISE NOTICE 'a bitmap index scan of message_created_at_idx: %', uses_index;
END
$$;
COMMIT;

-- stats(): seed 004's response times (avg / min / max latency_ms) over every message that has one, live and archived
SELECT conversations, messages, archived_messages, avg_messages_per_conversation, avg_latency_ms, min_latency_ms, max_latency_ms
FROM chatstore.stats();
SELECT s.avg_latency_ms = (SELECT round(avg(latency_ms), 2) FROM (SELECT latency_ms FROM chatstore.message
                           UNION ALL SELECT latency_ms FROM chatstore.archived_message) m) AS avg_ok
FROM chatstore.stats() s;

-- per-user isolation: an app role with a declared user gets only its own figures, whatever for_user says
CREATE ROLE regress_usage_app LOGIN;
SELECT chatstore.grant_app('regress_usage_app');
SELECT has_function_privilege('regress_usage_app', 'chatstore.usage(timestamptz, timestamptz, text[], text, text)', 'EXECUTE') AS usage,
       has_function_privilege('regress_usage_app', 'chatstore.daily_volume(integer, text)', 'EXECUTE') AS daily_volume,
       has_function_privilege('regress_usage_app', 'chatstore.storage()', 'EXECUTE') AS storage;
SET ROLE regress_usage_app;
SELECT * FROM chatstore.usage('2024-01-01');
\echo :SQLSTATE
BEGIN;
SELECT chatstore.set_user('bob');
SELECT user_id, messages, total_tokens FROM chatstore.usage('2024-01-01', group_by => '{user}');
SELECT count(*) FROM chatstore.usage('2024-01-01', group_by => '{user}', for_user => 'alice');
SELECT user_id, messages FROM chatstore.usage('2024-01-01', group_by => '{user}', for_user => 'bob');
SELECT sum(messages) FROM chatstore.daily_volume(3);
COMMIT;
BEGIN;
SELECT chatstore.set_user('alice');
SELECT day, messages, total_tokens FROM chatstore.usage('2024-01-01');
COMMIT;
-- storage() is for admins: not granted to an app role, and refused to a non-admin granted EXECUTE anyhow
SELECT * FROM chatstore.storage();
\echo :SQLSTATE
RESET ROLE;
GRANT EXECUTE ON FUNCTION chatstore.storage() TO regress_usage_app;
SET ROLE regress_usage_app;
SELECT * FROM chatstore.storage();
\echo :SQLSTATE
RESET ROLE;
SELECT chatstore.revoke('regress_usage_app');
REVOKE ALL ON FUNCTION chatstore.storage() FROM regress_usage_app;
DROP ROLE regress_usage_app;

-- daily_volume(days): the last days days in the time zone, today first, zeros included; today's are the
-- messages appended now (every other message is in 2024)
SELECT count(*) FROM chatstore.append_many(:'b1', '[{"role": "user", "content": "now"}, {"role": "user", "content": "now too"}]');
SELECT d.day = (now() AT TIME ZONE 'UTC')::date - (row_number() OVER () - 1)::int AS consecutive_days, d.messages
FROM chatstore.daily_volume(3) d;
SELECT count(*), sum(messages) FROM chatstore.daily_volume();
SELECT count(*) FROM chatstore.daily_volume(10000, 'Pacific/Kiritimati');
SELECT * FROM chatstore.daily_volume(0);
\echo :SQLSTATE
SELECT * FROM chatstore.daily_volume(10001);
\echo :SQLSTATE
SELECT * FROM chatstore.daily_volume(7, 'nowhere');
\echo :SQLSTATE

-- storage(): sizes are the machine's, so the test checks their types and relations, not values
SELECT pg_typeof(live_bytes) AS live_bytes, pg_typeof(archive_bytes) AS archive_bytes,
       pg_typeof(oldest_active_idle) AS idle, jsonb_typeof(relations) AS relations
FROM chatstore.storage();
SELECT live_bytes > 0 AS live_positive, archive_bytes >= 0 AS archive_nonnegative,
       archive_months = (SELECT count(*) FROM pg_inherits WHERE inhparent = 'chatstore.archived_message'::regclass) AS one_per_month,
       live_bytes = (SELECT sum((r ->> 'total_bytes')::bigint) FROM jsonb_array_elements(relations) r
                     WHERE r ->> 'archive_month' IS NULL) AS live_is_the_sum,
       archive_bytes = (SELECT COALESCE(sum((r ->> 'total_bytes')::bigint), 0) FROM jsonb_array_elements(relations) r
                        WHERE r ->> 'archive_month' IS NOT NULL) AS archive_is_the_sum
FROM chatstore.storage();
-- each relation: live tables first, then each archive month, with heap + indexes + TOAST = total
SELECT r ->> 'relation' LIKE 'chatstore.archived_message_%' AS archive,
       (r ->> 'archive_month') IS NOT NULL AS has_month,
       (r ->> 'relation') = 'chatstore.archived_message_' || replace(r ->> 'archive_month', '-', '')
         OR r ->> 'archive_month' IS NULL AS month_names_the_partition,
       (r ->> 'heap_bytes')::bigint >= 0 AND (r ->> 'index_bytes')::bigint >= 0 AND (r ->> 'toast_bytes')::bigint >= 0 AS sizes_ok,
       (r ->> 'heap_bytes')::bigint + (r ->> 'index_bytes')::bigint + (r ->> 'toast_bytes')::bigint
         = (r ->> 'total_bytes')::bigint AS parts_add_up,
       jsonb_typeof(r -> 'rows_estimate') IN ('number', 'null') AS rows_estimate_ok
FROM chatstore.storage() s, jsonb_array_elements(s.relations) r
ORDER BY 1, r ->> 'relation' LIMIT 4;
SELECT array_agg(r ->> 'archive_month' ORDER BY r ->> 'archive_month') =
       (SELECT array_agg(to_char(to_date(right(c.relname, 6), 'YYYYMM'), 'YYYY-MM') ORDER BY c.relname)
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'chatstore.archived_message'::regclass) AS every_month_present
FROM chatstore.storage() s, jsonb_array_elements(s.relations) r WHERE r ->> 'archive_month' IS NOT NULL;
-- the live relations: the conversations, their tags and the messages (live_bytes is their sum, checked above)
SELECT r ->> 'relation' AS live_relation
FROM chatstore.storage() s, jsonb_array_elements(s.relations) WITH ORDINALITY AS e(r, n)
WHERE r ->> 'archive_month' IS NULL ORDER BY n;
-- row estimates after ANALYZE
ANALYZE chatstore.message;
SELECT (r ->> 'rows_estimate')::bigint AS message_rows
FROM chatstore.storage() s, jsonb_array_elements(s.relations) r WHERE r ->> 'relation' = 'chatstore.message';
-- the active conversation idle the longest: a1 (last activity 2024-03-02; b1 had an append now)
SELECT oldest_active_conversation = :'a1' AS oldest_is_a1,
       oldest_active_idle >= now() - '2024-03-02 02:00+00'::timestamptz AS idle_since_its_last_activity
FROM chatstore.storage();
-- the archiver's last run: none yet, then the newest run's outcome
SELECT last_run_started_at, last_run_outcome, last_run_error FROM chatstore.storage();
INSERT INTO chatstore.archive_run (database_name, started_at, finished_at, conversations_archived)
VALUES (current_database(), '2024-03-04 03:00+00', '2024-03-04 03:00:02+00', 10);
SELECT last_run_started_at AT TIME ZONE 'UTC' AS started, last_run_finished_at AT TIME ZONE 'UTC' AS finished,
       last_run_outcome, last_run_error FROM chatstore.storage();
INSERT INTO chatstore.archive_run (database_name, started_at, finished_at, error)
VALUES (current_database(), '2024-03-05 03:00+00', '2024-03-05 03:00:01+00', 'could not obtain lock');
SELECT last_run_outcome, last_run_error FROM chatstore.storage();
INSERT INTO chatstore.archive_run (database_name, started_at) VALUES (current_database(), '2024-03-06 03:00+00');
SELECT last_run_outcome, last_run_finished_at FROM chatstore.storage();
DELETE FROM chatstore.archive_run;

-- restore brings the usage figures back with the messages
SELECT chatstore.restore(:'a2');
SELECT seq, model, input_tokens, output_tokens, latency_ms FROM chatstore.history(:'a2');
RESET TimeZone;
