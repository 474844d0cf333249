-- Archive: archive (by idle time), archive_conversation, restore; the archive_after setting.
-- (an empty store: the suites before this one share the database)
DROP EXTENSION chatstore;
CREATE EXTENSION chatstore;
\pset null '(null)'
-- four conversations with three messages each; two idle for 100 days, one for 10 days, one fresh
SELECT chatstore.create_conversation('alice', 'idle ' || n) FROM generate_series(1, 4) n \g /dev/null
-- (the ids first: on Citus a chatstore function called over a query of a chat table would run on a shard)
WITH c AS MATERIALIZED (SELECT id FROM chatstore.conversation)
SELECT count(*) FROM c,
  LATERAL chatstore.append_many(c.id, '[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                                        {"role": "user", "content": "bye"}]');
-- (tests may move time by hand; applications never write the tables)
UPDATE chatstore.conversation SET last_activity_at = now() - interval '100 days' WHERE title IN ('idle 1', 'idle 2');
UPDATE chatstore.conversation SET last_activity_at = now() - interval '10 days' WHERE title = 'idle 3';

-- the default idle time is chatstore.archive_after
SHOW chatstore.archive_after;
SELECT chatstore.archive();
SELECT title, status, archived_at IS NOT NULL AS has_archived_at, message_count
FROM chatstore.conversation ORDER BY title;
-- the live table no longer holds their messages; the archive does
SELECT c.title, (SELECT count(*) FROM chatstore.message m WHERE m.conversation_id = c.id) AS live,
       (SELECT count(*) FROM chatstore.archived_message a WHERE a.conversation_id = c.id) AS archived
FROM chatstore.conversation c ORDER BY title;
-- nothing left that old
SELECT chatstore.archive();
-- older_than overrides the setting; so does SET
SELECT chatstore.archive('30 days');
SET chatstore.archive_after = '1 day';
SHOW chatstore.archive_after;
SELECT chatstore.archive();
SET chatstore.archive_after = '0';
SELECT chatstore.archive(max_conversations => 1);
SELECT title, status FROM chatstore.conversation ORDER BY title;
RESET chatstore.archive_after;
SET chatstore.archive_after = 'soon';
\echo :SQLSTATE
SET chatstore.archive_after = '-1 day';
\echo :SQLSTATE
-- errors
SELECT chatstore.archive('-1 day');
\echo :SQLSTATE
SELECT chatstore.archive(max_conversations => 0);
\echo :SQLSTATE

-- restore: messages move back, the conversation is active, its last activity is now
SELECT id AS c FROM chatstore.conversation WHERE title = 'idle 1' \gset
SELECT chatstore.restore(:'c');
SELECT status, archived_at, last_activity_at > now() - interval '1 minute' AS active_now
FROM chatstore.get_conversation(:'c');
SELECT (SELECT count(*) FROM chatstore.message WHERE conversation_id = :'c') AS live,
       (SELECT count(*) FROM chatstore.archived_message WHERE conversation_id = :'c') AS archived;
SELECT seq, role, content FROM chatstore.history(:'c');
-- appends continue the seq
SELECT seq, content FROM chatstore.append(:'c', 'user', 'back again');
SELECT chatstore.restore(:'c');
-- archive_conversation archives one conversation whatever its idle time
SELECT chatstore.archive_conversation(:'c');
SELECT chatstore.archive_conversation(:'c');
SELECT status, message_count FROM chatstore.get_conversation(:'c');
SELECT count(*) FROM chatstore.archived_message WHERE conversation_id = :'c';
-- round trip: archive and restore keep every message unchanged
CREATE TEMP TABLE before_move AS SELECT * FROM chatstore.history(:'c', 10000);
SELECT chatstore.restore(:'c');
SELECT chatstore.archive_conversation(:'c');
SELECT chatstore.restore(:'c');
-- (the stored rows fetched first, and compared as text here: on Citus a row's text made on the worker would follow
-- the worker's time zone)
WITH m AS MATERIALIZED (SELECT * FROM chatstore.message WHERE conversation_id = :'c')
SELECT count(*) AS unchanged FROM before_move b JOIN m ON (b.*)::text = (m.*)::text;
-- errors
SELECT chatstore.archive_conversation('00000000-0000-7000-8000-000000000000');
\echo :SQLSTATE
SELECT chatstore.restore('00000000-0000-7000-8000-000000000000');
\echo :SQLSTATE
SELECT chatstore.archive_conversation(NULL);
\echo :SQLSTATE
SELECT chatstore.restore(NULL);
\echo :SQLSTATE
-- archive and restore work inside a transaction and roll back with it
BEGIN;
SELECT chatstore.archive_conversation(:'c');
ROLLBACK;
SELECT count(*) AS live FROM chatstore.message WHERE conversation_id = :'c' \gset
SELECT status, :live AS live FROM chatstore.get_conversation(:'c');
