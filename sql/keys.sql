-- Keys: conversations named by the application (conversation_id, get_or_create_conversation, append_by_key).
\pset null '(null)'

-- A keyed conversation's id is the version 5 UUID of (user_id, key) under chatstore's namespace
-- 60a52937-8627-4f07-a9f9-ccfb143757cc, over the name "<bytes of user_id>:<user_id><key>"; in Python:
-- uuid.uuid5(uuid.UUID('60a52937-8627-4f07-a9f9-ccfb143757cc'), f"{len(user_id.encode())}:{user_id}{key}")
SELECT chatstore.conversation_id('kuser', 'default') AS kdefault \gset
SELECT :'kdefault' AS id, pg_catalog.substr(:'kdefault', 15, 1) AS uuid_version,
       pg_catalog.substr(:'kdefault', 20, 1) IN ('8', '9', 'a', 'b') AS rfc_variant;
-- the length prefix keeps ('a', 'bc') and ('ab', 'c') apart; bytes count, not characters
SELECT chatstore.conversation_id('a', 'bc') AS a_bc, chatstore.conversation_id('ab', 'c') AS ab_c;
SELECT chatstore.conversation_id('é', 'x') AS e_x, chatstore.conversation_id('é', 'x') = chatstore.conversation_id('e', 'x') AS same;
-- keys are compared byte for byte: case and trailing spaces make other keys
SELECT count(DISTINCT chatstore.conversation_id('kuser', k)) AS distinct_ids
FROM unnest(ARRAY['tab', 'Tab', 'tab ', ' tab']) k;

-- get_or_create_conversation creates the conversation on the first call, with title, metadata and model
SELECT chatstore.get_or_create_conversation('kuser', 'default', 'Coaching', '{"channel": "web"}', 'gpt-4o') = :'kdefault'
       AS first_call_gives_the_derived_id;
SELECT id = :'kdefault' AS same_id, user_id, key, title, model, metadata, status, message_count
FROM chatstore.get_conversation(:'kdefault');
-- a later call returns the same conversation and ignores title, metadata and model
SELECT chatstore.get_or_create_conversation('kuser', 'default', 'Another title', '{"channel": "app"}', 'other') = :'kdefault'
       AS second_call_same_id;
SELECT title, model, metadata FROM chatstore.get_conversation(:'kdefault');
-- the key is per user: another user's 'default' is another conversation
SELECT chatstore.get_or_create_conversation('kother', 'default') = :'kdefault' AS same_as_kusers;
SELECT count(*) AS conversations_keyed_default FROM chatstore.conversation WHERE key = 'default';
-- list_conversations and get_conversation show the key; create_conversation's conversations have none
SELECT chatstore.create_conversation('kuser', 'unkeyed') AS unkeyed \gset
SELECT title, key FROM chatstore.list_conversations('kuser') ORDER BY title;
-- metadata given as NULL means {}
SELECT chatstore.get_or_create_conversation('kuser', 'null-metadata', metadata => NULL) AS knull \gset
SELECT metadata FROM chatstore.get_conversation(:'knull');

-- append_by_key creates the conversation on first use, in the same call
SELECT chatstore.conversation_id('kuser', 'tab-7f3a') AS ktab \gset
SELECT conversation_id = :'ktab' AS in_keyed_conversation, seq, role, content
FROM chatstore.append_by_key('kuser', 'tab-7f3a', 'user', 'Hello!');
SELECT user_id, key, title, model, metadata, status, message_count, last_seq FROM chatstore.get_conversation(:'ktab');
SELECT seq, role, content, model, tokens
FROM chatstore.append_by_key('kuser', 'tab-7f3a', 'assistant', 'Hi there!', '{"finish": "stop"}', 5, 'gpt-4o-mini');
SELECT seq, role, content FROM chatstore.history(:'ktab');
-- every guarantee of append: an idempotency key stores a message once
SELECT seq, content FROM chatstore.append_by_key('kuser', 'tab-7f3a', 'user', 'Once', idempotency_key => 'msg-1');
SELECT seq, content FROM chatstore.append_by_key('kuser', 'tab-7f3a', 'user', 'Once', idempotency_key => 'msg-1');
-- (the messages' sum first: on Citus a subquery over a chat table next to a chatstore function runs on a shard)
SELECT sum(tokens) AS message_tokens FROM chatstore.message WHERE conversation_id = :'ktab' \gset
SELECT message_count, last_seq, token_count = :message_tokens AS tokens_counted
FROM chatstore.get_conversation(:'ktab');
-- the usage of the model call, as append stores it (by name and by position)
SELECT seq, input_tokens, output_tokens, latency_ms
FROM chatstore.append_by_key('kuser', 'tab-7f3a', 'assistant', 'Measured', input_tokens => 120, output_tokens => 30, latency_ms => 850);
SELECT seq, input_tokens, output_tokens, latency_ms
FROM chatstore.append_by_key('kuser', 'tab-7f3a', 'assistant', 'Positional', NULL, NULL, 'gpt-4o-mini', NULL, 7, 8, 9);
SELECT seq, input_tokens, output_tokens, latency_ms FROM chatstore.message WHERE conversation_id = :'ktab' AND seq >= 4 ORDER BY seq;
SELECT chatstore.append_by_key('kuser', 'never-made', 'assistant', 'ok', latency_ms => -1);
\echo :SQLSTATE
-- ... and the same validation: a bad message is refused and the conversation is not created either
SELECT chatstore.append_by_key('kuser', 'never-made', 'narrator', 'Once upon a time');
\echo :SQLSTATE
SELECT chatstore.append_by_key('kuser', 'never-made', 'user', '   ');
\echo :SQLSTATE
SELECT chatstore.append_by_key('kuser', 'never-made', 'user', 'ok', idempotency_key => '');
\echo :SQLSTATE
SELECT chatstore.append_by_key('kuser', 'never-made', 'user', 'ok', tokens => -1);
\echo :SQLSTATE
SELECT chatstore.append_by_key('kuser', 'never-made', 'user', NULL);
\echo :SQLSTATE
SELECT count(*) AS never_made FROM chatstore.conversation WHERE id = chatstore.conversation_id('kuser', 'never-made');

-- errors of the key and the user id: NULL 22004, empty 22023, over 255 bytes 22001 (as for user_id)
SELECT chatstore.get_or_create_conversation('kuser', NULL);
\echo :SQLSTATE
SELECT chatstore.get_or_create_conversation(NULL, 'default');
\echo :SQLSTATE
SELECT chatstore.get_or_create_conversation('kuser', '');
\echo :SQLSTATE
SELECT chatstore.append_by_key('kuser', '', 'user', 'Hello');
\echo :SQLSTATE
SELECT chatstore.conversation_id('', 'default');
\echo :SQLSTATE
SELECT chatstore.conversation_id('kuser', NULL);
\echo :SQLSTATE
SELECT chatstore.get_or_create_conversation('kuser', repeat('k', 255)) = chatstore.conversation_id('kuser', repeat('k', 255)) AS key_of_255_bytes;
SELECT chatstore.get_or_create_conversation('kuser', repeat('k', 256));
\echo :SQLSTATE
SELECT chatstore.append_by_key('kuser', repeat('é', 128), 'user', 'Hello');
\echo :SQLSTATE
SELECT chatstore.get_or_create_conversation('kuser', 'x', title => repeat('t', 1001));
\echo :SQLSTATE
SELECT chatstore.get_or_create_conversation('kuser', 'x', metadata => '[1]');
\echo :SQLSTATE
SELECT chatstore.get_or_create_conversation('kuser', 'x', model => repeat('m', 256));
\echo :SQLSTATE
SELECT count(*) AS x_not_made FROM chatstore.conversation WHERE id = chatstore.conversation_id('kuser', 'x');

-- an archived keyed conversation: get_or_create returns it as it is; append_by_key refuses, as append does,
-- with a hint to restore it (restoring is the application's decision, as for append)
SELECT chatstore.archive_conversation(:'ktab');
SELECT chatstore.get_or_create_conversation('kuser', 'tab-7f3a') = :'ktab' AS archived_is_returned;
SELECT status FROM chatstore.get_conversation(:'ktab');
SELECT chatstore.append_by_key('kuser', 'tab-7f3a', 'user', 'Back again');
\echo :SQLSTATE
SELECT chatstore.restore(:'ktab');
SELECT seq, content FROM chatstore.append_by_key('kuser', 'tab-7f3a', 'user', 'Back again');

-- a deleted keyed conversation frees its key: the next use creates a new, empty conversation with the same id
SELECT chatstore.delete_conversation(:'ktab');
SELECT seq, content FROM chatstore.append_by_key('kuser', 'tab-7f3a', 'user', 'A fresh start');
SELECT message_count, last_seq FROM chatstore.get_conversation(:'ktab');

-- a row that holds a key's id but is not that (user, key)'s conversation is never returned (cannot happen
-- through chatstore's functions; written here by hand)
INSERT INTO chatstore.conversation (id, user_id, created_at, last_activity_at, key)
VALUES (chatstore.conversation_id('kvictim', 'default'), 'kintruder', now(), now(), 'default');
SELECT chatstore.get_or_create_conversation('kvictim', 'default');
\echo :SQLSTATE
SELECT chatstore.append_by_key('kvictim', 'default', 'user', 'Hello');
\echo :SQLSTATE

-- per-user isolation: with a declared user, user_id must be that user (42501), as for create_conversation
BEGIN;
SELECT chatstore.set_user('kuser');
SELECT chatstore.get_or_create_conversation('kuser', 'default') = :'kdefault' AS own_key;
SELECT chatstore.get_or_create_conversation('kother', 'default');
\echo :SQLSTATE
ROLLBACK;
BEGIN;
SELECT chatstore.set_user('kuser');
SELECT chatstore.append_by_key('kother', 'default', 'user', 'Hello');
\echo :SQLSTATE
ROLLBACK;
-- an app role gets the functions from grant_app, and must declare its user (42501 otherwise)
CREATE ROLE regress_keys_app LOGIN;
SELECT chatstore.grant_app('regress_keys_app');
SELECT p::text AS function, has_function_privilege('regress_keys_app', p, 'EXECUTE') AS granted
FROM unnest(ARRAY['chatstore.conversation_id(text, text)',
                  'chatstore.get_or_create_conversation(text, text, text, jsonb, text)',
                  'chatstore.append_by_key(text, text, text, text, jsonb, integer, text, text, integer, integer, integer)']::regprocedure[]) p;
SET ROLE regress_keys_app;
SELECT chatstore.append_by_key('kapp', 'default', 'user', 'Hello');
\echo :SQLSTATE
BEGIN;
SELECT chatstore.set_user('kapp');
SELECT seq, content FROM chatstore.append_by_key('kapp', 'default', 'user', 'Hello');
SELECT key, message_count FROM chatstore.list_conversations('kapp');
COMMIT;
RESET ROLE;
SELECT chatstore.revoke('regress_keys_app');
DROP ROLE regress_keys_app;
