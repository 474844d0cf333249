-- pgTAP: archive moves a long conversation whole, and restore brings it back whole (on one node and, under make
-- test-citus, on a distributed install, where the move is a copy and a delete routed to the conversation's shard).
-- Counts are taken first (\gset), so that no query over the chat tables carries a pgTAP call to a shard.
BEGIN;
SELECT plan(6);

SELECT chatstore.create_conversation('long') AS big \gset
-- 100,000 messages in batches of 1,000, then one more
SELECT count(*) FROM generate_series(1, 100) b,
  LATERAL chatstore.append_many(:'big',
    (SELECT jsonb_agg(jsonb_build_object('role', CASE WHEN k % 2 = 0 THEN 'assistant' ELSE 'user' END,
                                         'content', 'message ' || (b * 1000 + k) || ' ' || repeat('lorem ipsum ', 8)))
     FROM generate_series(1, 1000) k)) m \g /dev/null
SELECT (chatstore.append(:'big', 'user', 'one more')).seq AS last_seq \gset

SELECT chatstore.archive_conversation(:'big') AS archived \gset
SELECT count(*) AS in_archive FROM chatstore.archived_message WHERE conversation_id = :'big' \gset
SELECT count(*) AS left_live FROM chatstore.message WHERE conversation_id = :'big' \gset
SELECT ok(:'archived'::boolean AND :last_seq = 100001, 'a 100,001-message conversation archives');
SELECT is(:in_archive::bigint, 100001::bigint, 'all its messages are in the archive');
SELECT is(:left_live::bigint, 0::bigint, 'none left in the live table');

SELECT chatstore.restore(:'big') AS restored \gset
SELECT count(*) AS in_archive FROM chatstore.archived_message WHERE conversation_id = :'big' \gset
SELECT count(*) AS live FROM chatstore.message WHERE conversation_id = :'big' \gset
SELECT ok(:'restored'::boolean, 'restore brings it back');
SELECT is(:live::bigint, 100001::bigint, 'every message live again');
SELECT is(:in_archive::bigint, 0::bigint, 'none left in the archive');

SELECT * FROM finish();
ROLLBACK;
