-- Conversations: create, get, list (keyset paging), update (metadata merge), delete.
\pset null '(null)'

-- create_conversation returns a version 7 uuid; defaults fill the rest
SELECT chatstore.create_conversation('alice', 'Trip to Lisbon', '{"channel": "web"}', 'gpt-4o') AS c1 \gset
SELECT pg_catalog.substr(:'c1', 15, 1) AS uuid_version;
SELECT user_id, title, model, status, metadata, message_count, token_count, last_seq,
       created_at = last_activity_at AS fresh, archived_at
FROM chatstore.get_conversation(:'c1');

SELECT chatstore.create_conversation('alice') AS c2 \gset
SELECT title, model, metadata FROM chatstore.get_conversation(:'c2');
SELECT chatstore.create_conversation('alice', metadata => NULL) AS c3 \gset
SELECT metadata FROM chatstore.get_conversation(:'c3');

-- errors
SELECT chatstore.create_conversation(NULL);
\echo :SQLSTATE
SELECT chatstore.create_conversation('');
\echo :SQLSTATE
SELECT chatstore.create_conversation('alice', metadata => '[1, 2]');
\echo :SQLSTATE
SELECT chatstore.create_conversation('alice', metadata => '"text"');
\echo :SQLSTATE
SET chatstore.max_metadata_bytes = 64;
SELECT chatstore.create_conversation('alice', metadata => jsonb_build_object('note', repeat('x', 100)));
\echo :SQLSTATE
RESET chatstore.max_metadata_bytes;

-- limits: user_id and model are identifiers, at most 255 bytes; a title at most chatstore.max_title_chars code
-- points (default 1000); over a limit: 22001, with the length, the limit and the setting
SELECT chatstore.create_conversation(repeat('u', 255)) AS lim \gset
SELECT octet_length(user_id) AS user_bytes
FROM chatstore.get_conversation(:'lim');
SELECT chatstore.create_conversation(repeat('u', 256));
\echo :SQLSTATE
SHOW chatstore.max_title_chars;
SELECT chatstore.create_conversation('dora', repeat('t', 1000), model => repeat('m', 255)) AS lim \gset
SELECT length(title) AS title_code_points, octet_length(model) AS model_bytes
FROM chatstore.get_conversation(:'lim');
SELECT chatstore.create_conversation('dora', repeat('t', 1001));
\echo :SQLSTATE
SELECT chatstore.create_conversation('dora', repeat('t', 20000000));
\echo :SQLSTATE
SELECT chatstore.create_conversation('dora', model => repeat('m', 256));
\echo :SQLSTATE
SELECT chatstore.create_conversation('dora', model => repeat('é', 128));
\echo :SQLSTATE
SELECT chatstore.create_conversation('dora', model => repeat('m', 20000000));
\echo :SQLSTATE
-- code points, not bytes and not what the eye sees: a family emoji is 7 code points (25 bytes)
SET chatstore.max_title_chars = 7;
SELECT chatstore.create_conversation('dora', E'\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466') AS lim \gset
SELECT title, length(title) AS code_points, octet_length(title) AS bytes
FROM chatstore.get_conversation(:'lim');
SELECT chatstore.create_conversation('dora', E'\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 ');
\echo :SQLSTATE
SET chatstore.max_title_chars = 2000;
SELECT chatstore.create_conversation('dora', repeat('ü', 2000)) AS lim \gset
SELECT length(title) AS title_code_points
FROM chatstore.get_conversation(:'lim');
RESET chatstore.max_title_chars;
-- the limit is policy: an application role cannot raise it for itself
CREATE ROLE chatstore_title_tester LOGIN;
SET ROLE chatstore_title_tester;
SET chatstore.max_title_chars = 1000000;
\echo :SQLSTATE
RESET ROLE;
DROP ROLE chatstore_title_tester;

-- get_conversation: P0002 for an unknown id (as every function that takes a conversation id; 1.0 returned NULL,
-- which SELECT * turned into one row of NULLs), 22004 for a NULL id
SELECT * FROM chatstore.get_conversation('00000000-0000-7000-8000-000000000000');
\echo :SQLSTATE
SELECT chatstore.get_conversation('00000000-0000-7000-8000-000000000000') IS NULL AS missing;
\echo :SQLSTATE
SELECT chatstore.get_conversation(NULL);
\echo :SQLSTATE

-- list_conversations: most recent activity first, keyset paging with "before"
SELECT chatstore.create_conversation('bob', 'b' || i) FROM generate_series(1, 5) i \g /dev/null
SELECT title FROM chatstore.list_conversations('bob');
SELECT title FROM chatstore.list_conversations('bob', max_results => 2);
SELECT id AS page_end FROM chatstore.list_conversations('bob', max_results => 2) OFFSET 1 \gset
SELECT title FROM chatstore.list_conversations('bob', max_results => 2, before => :'page_end');
SELECT count(*) FROM chatstore.list_conversations('nobody');
SELECT count(*) FROM chatstore.list_conversations('alice', status => 'archived');
SELECT count(*) FROM chatstore.list_conversations('alice', status => NULL);
SELECT chatstore.list_conversations('alice', status => 'deleted');
\echo :SQLSTATE
SELECT chatstore.list_conversations('alice', max_results => 0);
\echo :SQLSTATE
SELECT chatstore.list_conversations('alice', max_results => 10001);
\echo :SQLSTATE
SELECT chatstore.list_conversations(NULL);
\echo :SQLSTATE
SELECT chatstore.list_conversations('alice', before => '00000000-0000-7000-8000-000000000000');
\echo :SQLSTATE

-- update_conversation: NULL leaves a field; metadata merges key by key; JSON null removes a key
SELECT title, model, metadata FROM chatstore.update_conversation(:'c1', title => 'Lisbon in May');
SELECT title, model, metadata
FROM chatstore.update_conversation(:'c1', metadata => '{"channel": null, "lang": "pt", "tags": ["a", null]}');
SELECT title, model, metadata FROM chatstore.update_conversation(:'c1', model => 'gpt-4.1');
SELECT title, metadata FROM chatstore.update_conversation(:'c1');
SELECT chatstore.update_conversation(:'c1', metadata => '[]');
\echo :SQLSTATE
SET chatstore.max_metadata_bytes = 64;
SELECT chatstore.update_conversation(:'c1', metadata => jsonb_build_object('note', repeat('x', 100)));
\echo :SQLSTATE
RESET chatstore.max_metadata_bytes;
SELECT metadata FROM chatstore.get_conversation(:'c1');
-- update_conversation: the same limits on title and model, checked before anything changes
SELECT length(title) AS title_code_points, octet_length(model) AS model_bytes
FROM chatstore.update_conversation(:'c1', title => repeat('t', 1000), model => repeat('m', 255));
SELECT chatstore.update_conversation(:'c1', title => repeat('t', 1001));
\echo :SQLSTATE
SELECT chatstore.update_conversation(:'c1', title => repeat('t', 20000000));
\echo :SQLSTATE
SELECT chatstore.update_conversation(:'c1', model => repeat('m', 256));
\echo :SQLSTATE
SELECT chatstore.update_conversation(:'c1', model => repeat('m', 20000000));
\echo :SQLSTATE
SELECT length(title) AS title_code_points, octet_length(model) AS model_bytes FROM chatstore.get_conversation(:'c1');
SET chatstore.max_title_chars = 10;
SELECT chatstore.update_conversation(:'c1', title => 'Lisbon in May', model => 'gpt-4.1');
\echo :SQLSTATE
SELECT title, model FROM chatstore.update_conversation(:'c1', title => 'Lisbon', model => 'gpt-4.1');
RESET chatstore.max_title_chars;
SELECT chatstore.update_conversation('00000000-0000-7000-8000-000000000000', title => 'x');
\echo :SQLSTATE
SELECT chatstore.update_conversation(NULL);
\echo :SQLSTATE

-- delete_conversation removes the conversation and its messages, live and archived
SELECT (chatstore.append(:'c2', 'user', 'hello')).seq;
SELECT chatstore.delete_conversation(:'c2');
SELECT NOT EXISTS (SELECT FROM chatstore.conversation WHERE id = :'c2') AS gone,
       (SELECT count(*) FROM chatstore.message WHERE conversation_id = :'c2') AS messages;
\set VERBOSITY sqlstate
SELECT chatstore.get_conversation(:'c2');
\set VERBOSITY default
SELECT (chatstore.append(:'c3', 'user', 'hello')).seq;
SELECT chatstore.archive_conversation(:'c3');
SELECT chatstore.delete_conversation(:'c3');
SELECT (SELECT count(*) FROM chatstore.archived_message WHERE conversation_id = :'c3') AS archived_messages;
SELECT chatstore.delete_conversation('00000000-0000-7000-8000-000000000000');
\echo :SQLSTATE
SELECT chatstore.delete_conversation(NULL);
\echo :SQLSTATE

-- uuidv7: version 7, variant 10, increasing within a session
SELECT bool_and(substr(u::text, 15, 1) = '7') AS version_7,
       bool_and(substr(u::text, 20, 1) IN ('8', '9', 'a', 'b')) AS variant_10,
       count(DISTINCT u) AS distinct_ids
FROM (SELECT chatstore.uuidv7() AS u FROM generate_series(1, 1000)) s;
SELECT bool_and(a < b) AS increasing
FROM (SELECT u AS a, lead(u) OVER (ORDER BY n) AS b
      FROM (SELECT n, chatstore.uuidv7() AS u FROM generate_series(1, 1000) n) s) t
WHERE b IS NOT NULL;

-- a NULL metadata argument leaves the stored object alone, even over a limit lowered since
SELECT chatstore.create_conversation('alice', metadata => jsonb_build_object('note', repeat('x', 100))) AS big \gset
SET chatstore.max_metadata_bytes = 64;
SELECT title, metadata->>'note' = repeat('x', 100) AS kept FROM chatstore.update_conversation(:'big', title => 'renamed');
SELECT chatstore.update_conversation(:'big', metadata => '{"more": 1}');
\echo :SQLSTATE
RESET chatstore.max_metadata_bytes;
