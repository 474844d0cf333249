-- Export, import and transcript: the export's shape, import under its id and as new, idempotency, conflicts,
-- validation (all or nothing), per-user isolation, and the transcript's exact text.
\pset null '(null)'
-- An export written by hand, with fixed ids and times so the output is stable: a system prompt, a question, a tool
-- call (blank content, the call in metadata), the tool's answer, and the final reply with its own model and an
-- idempotency key. Messages leave out what has a default (metadata, model, tokens, idempotency_key).
SELECT '{"format": "chatstore.conversation/1", "conversation": {"id": "01900000-0000-7000-8000-000000000001", "user_id": "alice", "title": "Weather in Lisbon", "model": "gpt-4o", "metadata": {"source": "web"}, "created_at": "2024-05-01T12:00:00.000000Z", "last_activity_at": "2024-05-01T12:00:09.250000Z"}, "messages": [{"seq": 1, "id": "01900000-0000-7000-8000-000000000011", "role": "system", "content": "You are a concise travel assistant.", "created_at": "2024-05-01T12:00:00Z"}, {"seq": 2, "id": "01900000-0000-7000-8000-000000000012", "role": "user", "content": "What is the weather in Lisbon?\nAnd tomorrow?", "metadata": {"client": "ios"}, "tokens": 12, "created_at": "2024-05-01T12:00:01.5Z"}, {"seq": 3, "id": "01900000-0000-7000-8000-000000000013", "role": "assistant", "content": "", "metadata": {"tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Lisbon\"}"}}]}, "created_at": "2024-05-01T12:00:02Z"}, {"seq": 4, "id": "01900000-0000-7000-8000-000000000014", "role": "tool", "content": "{\"today\": \"sunny, 24 C\", \"tomorrow\": \"cloudy, 21 C\"}", "metadata": {"tool_call_id": "call_1"}, "created_at": "2024-05-01T12:00:03Z"}, {"seq": 5, "id": "01900000-0000-7000-8000-000000000015", "role": "assistant", "content": "Sunny today (24 C); cloudy tomorrow (21 C).", "model": "gpt-4o-mini", "tokens": 14, "created_at": "2024-05-01T12:00:09.25Z", "idempotency_key": "reply-1"}], "tags": []}'::jsonb AS doc \gset

-- import under its id (the default) returns the id; counters are computed from the messages
SELECT chatstore.import_conversation(:'doc') AS imported;
SELECT user_id, title, model, status, metadata, message_count, last_seq,
       token_count = (SELECT sum(tokens) FROM chatstore.message WHERE conversation_id = c.id) AS tokens_match,
       created_at AT TIME ZONE 'UTC' AS created_utc, last_activity_at AT TIME ZONE 'UTC' AS last_activity_utc
FROM chatstore.get_conversation('01900000-0000-7000-8000-000000000001') c;
SELECT seq, id, role, metadata, model, tokens = chatstore.estimate_tokens(content) AS estimated, tokens,
       created_at AT TIME ZONE 'UTC' AS created_utc, idempotency_key
FROM chatstore.history('01900000-0000-7000-8000-000000000001', 100);

-- the export: every field, times in UTC with microseconds, whatever the session's TimeZone and DateStyle
SELECT jsonb_pretty(chatstore.export_conversation('01900000-0000-7000-8000-000000000001'));
SELECT chatstore.export_conversation('01900000-0000-7000-8000-000000000001') AS e \gset
BEGIN;
SET LOCAL TimeZone = 'America/Los_Angeles';
SET LOCAL DateStyle = 'SQL, DMY';
SELECT chatstore.export_conversation('01900000-0000-7000-8000-000000000001') = :'e' AS same_in_other_zone;
ROLLBACK;
-- what a message left out is filled in as append fills it: the export equals the document plus those fields
SELECT (:'e'::jsonb -> 'messages' -> 0) = (:'doc'::jsonb -> 'messages' -> 0)
       || '{"metadata": {}, "model": null, "idempotency_key": null, "created_at": "2024-05-01T12:00:00.000000Z"}'
       || jsonb_build_object('tokens', chatstore.estimate_tokens('You are a concise travel assistant.')) AS filled_in;

-- the same export imported again: a no-op that returns the id
SELECT chatstore.import_conversation(:'e') AS again, chatstore.import_conversation(:'doc') AS doc_again;
SELECT count(*) AS messages FROM chatstore.message WHERE conversation_id = '01900000-0000-7000-8000-000000000001';
-- an export differing in anything, under a stored id: 23505, nothing changes
SELECT chatstore.import_conversation(jsonb_set(:'e', '{messages,1,content}', '"Changed."'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'e', '{conversation,title}', '"Another title"'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(:'e'::jsonb #- '{messages,4}');
\echo :SQLSTATE
SELECT chatstore.export_conversation('01900000-0000-7000-8000-000000000001') = :'e' AS unchanged;

-- an archived conversation exports as it did when active (where it is stored is not part of the export), and
-- importing its export again is still a no-op
SELECT chatstore.archive_conversation('01900000-0000-7000-8000-000000000001');
SELECT chatstore.export_conversation('01900000-0000-7000-8000-000000000001') = :'e' AS same_when_archived;
SELECT chatstore.import_conversation(:'e') AS archived_again;
-- deleted and imported again, it comes back exactly, and active
SELECT chatstore.delete_conversation('01900000-0000-7000-8000-000000000001');
SELECT chatstore.import_conversation(:'e') AS restored;
SELECT status, chatstore.export_conversation(id) = :'e' AS identical
FROM chatstore.get_conversation('01900000-0000-7000-8000-000000000001');

-- as a new conversation: new conversation and message ids (UUIDv7), everything else kept
SELECT chatstore.import_conversation(:'e', as_new => true) AS n \gset
SELECT :'n' <> '01900000-0000-7000-8000-000000000001' AS new_id, substr(:'n', 15, 1) AS uuid_version;
SELECT (chatstore.export_conversation(:'n') -> 'conversation') - 'id'
         = (:'e'::jsonb -> 'conversation') - 'id' AS same_but_conversation_id;
SELECT count(*) AS messages, count(DISTINCT id) AS distinct_ids,
       bool_and(id::text NOT LIKE '01900000-0000-7000-8000-0000000000%') AS new_message_ids
FROM chatstore.message WHERE conversation_id = :'n';
SELECT (SELECT jsonb_agg(m - 'id') FROM jsonb_array_elements(chatstore.export_conversation(:'n') -> 'messages') m)
     = (SELECT jsonb_agg(m - 'id') FROM jsonb_array_elements(:'e'::jsonb -> 'messages') m) AS same_messages;
-- as new, ids may be left out; an import under its id needs them
SELECT chatstore.import_conversation(:'doc'::jsonb #- '{conversation,id}' #- '{messages,0,id}', true) IS NOT NULL AS ok;
SELECT chatstore.import_conversation(:'doc'::jsonb #- '{conversation,id}');
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'doc', '{conversation,id}', '"01900000-0000-7000-8000-0000000000f1"') #- '{messages,0,id}');
\echo :SQLSTATE

-- the smallest import: a user and a creation time; last activity defaults to the newest time given
SELECT chatstore.import_conversation('{"format": "chatstore.conversation/1", "conversation": {"id": "01900000-0000-7000-8000-000000000002", "user_id": "alice", "created_at": "2024-06-01T00:00:00Z"}}');
SELECT jsonb_pretty(chatstore.export_conversation('01900000-0000-7000-8000-000000000002'));
SELECT chatstore.import_conversation('{"format": "chatstore.conversation/1", "conversation": {"id": "01900000-0000-7000-8000-000000000003", "user_id": "alice", "created_at": "2024-06-01T00:00:00Z"}, "messages": [{"role": "user", "content": "Hi", "created_at": "2024-06-02T00:00:00Z", "id": "01900000-0000-7000-8000-000000000031"}]}');
SELECT message_count, last_seq, last_activity_at AT TIME ZONE 'UTC' AS last_activity_utc
FROM chatstore.get_conversation('01900000-0000-7000-8000-000000000003');

-- validation, as append validates, before anything is written: each failure stores nothing
SELECT '{"format": "chatstore.conversation/1", "conversation": {"id": "01900000-0000-7000-8000-0000000000b1", "user_id": "alice", "created_at": "2024-06-01T00:00:00Z"}, "messages": [{"id": "01900000-0000-7000-8000-0000000000b2", "role": "user", "content": "fine", "created_at": "2024-06-01T00:00:00Z"}, {"id": "01900000-0000-7000-8000-0000000000b3", "role": "assistant", "content": "fine too", "created_at": "2024-06-01T00:00:01Z"}]}'::jsonb AS bad \gset
SELECT chatstore.import_conversation(:'bad') = '01900000-0000-7000-8000-0000000000b1' AS valid_one_passes;
SELECT chatstore.delete_conversation('01900000-0000-7000-8000-0000000000b1');
\set VERBOSITY default
-- roles
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{messages,1,role}', '"bot"'));
\echo :SQLSTATE
-- blank content without metadata
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{messages,1,content}', '" \n\t"'));
\echo :SQLSTATE
-- the content limits and their settings
SET chatstore.max_user_message_chars = 3;
SELECT chatstore.import_conversation(:'bad');
\echo :SQLSTATE
RESET chatstore.max_user_message_chars;
-- metadata: an object, within chatstore.max_metadata_bytes
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{messages,1,metadata}', '[1]'));
\echo :SQLSTATE
SET chatstore.max_metadata_bytes = 64;
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{messages,1,metadata}', jsonb_build_object('x', repeat('x', 100))));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{conversation,metadata}', jsonb_build_object('x', repeat('x', 100))));
\echo :SQLSTATE
RESET chatstore.max_metadata_bytes;
-- tokens, model, idempotency key, title, user_id
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{messages,1,tokens}', '-1'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{messages,1,tokens}', '1.5'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{messages,1,model}', to_jsonb(repeat('m', 256))));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{messages,1,idempotency_key}', '""'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{conversation,title}', to_jsonb(repeat('t', 1001))));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{conversation,user_id}', '""'));
\echo :SQLSTATE
-- seq numbers: kept, so they must run 1, 2, 3, ...; import does not renumber
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{messages,1,seq}', '3'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(jsonb_set(:'bad', '{messages,0,seq}', '2'), '{messages,1,seq}', '1'));
\echo :SQLSTATE
-- the format: its name, known keys only, the right types, times, ids once each
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{format}', '"chatstore.conversation/2"'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(:'bad'::jsonb - 'format');
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{messages,1,contnet}', '"typo"'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(:'bad'::jsonb || '{"message_count": 2}');
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{messages}', '{}'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{messages,1,created_at}', '"yesterday-ish"'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{messages,1,created_at}', '"infinity"'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(:'bad'::jsonb #- '{messages,1,created_at}');
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{messages,1,id}', '"not-a-uuid"'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{messages,1,id}', '"01900000-0000-7000-8000-0000000000b2"'));
\echo :SQLSTATE
SELECT chatstore.import_conversation('[1, 2]');
\echo :SQLSTATE
-- the same idempotency key twice in one conversation (append would have returned the first message)
SELECT chatstore.import_conversation(jsonb_set(jsonb_set(:'bad', '{messages,0,idempotency_key}', '"k"'), '{messages,1,idempotency_key}', '"k"'));
\echo :SQLSTATE
-- tags: until chatstore keeps tags, only an empty list
SELECT chatstore.import_conversation(:'bad'::jsonb || '{"tags": ["travel"]}');
\echo :SQLSTATE
SELECT chatstore.import_conversation(NULL);
\echo :SQLSTATE
SELECT chatstore.import_conversation(:'bad', NULL);
\echo :SQLSTATE
\set VERBOSITY terse
SELECT count(*) AS nothing_stored FROM chatstore.conversation WHERE id = '01900000-0000-7000-8000-0000000000b1';
SELECT count(*) AS no_messages FROM chatstore.message WHERE conversation_id = '01900000-0000-7000-8000-0000000000b1';

-- export and transcript of a conversation that does not exist: P0002
SELECT chatstore.export_conversation('01900000-0000-7000-8000-0000000000ff');
\echo :SQLSTATE
SELECT chatstore.transcript('01900000-0000-7000-8000-0000000000ff');
\echo :SQLSTATE
SELECT chatstore.export_conversation(NULL);
\echo :SQLSTATE

-- per-user isolation: a declared user exports, imports and reads only its own conversations; admins any
CREATE ROLE regress_export_app;
SELECT chatstore.grant_app('regress_export_app');
SET ROLE regress_export_app;
SELECT chatstore.export_conversation('01900000-0000-7000-8000-000000000001');
\echo :SQLSTATE
BEGIN;
SELECT chatstore.set_user('bob');
SELECT chatstore.export_conversation('01900000-0000-7000-8000-000000000001');
\echo :SQLSTATE
ROLLBACK;
BEGIN;
SELECT chatstore.set_user('bob');
SELECT chatstore.transcript('01900000-0000-7000-8000-000000000001');
\echo :SQLSTATE
ROLLBACK;
BEGIN;
SELECT chatstore.set_user('bob');
SELECT chatstore.import_conversation(:'e', true);
\echo :SQLSTATE
ROLLBACK;
-- bob's copy under alice's id: 23505 (the id is taken), whoever owns it
BEGIN;
SELECT chatstore.set_user('bob');
SELECT chatstore.import_conversation(jsonb_set(:'e', '{conversation,user_id}', '"bob"'));
\echo :SQLSTATE
ROLLBACK;
BEGIN;
SELECT chatstore.set_user('bob');
SELECT chatstore.import_conversation(jsonb_set(:'e', '{conversation,user_id}', '"bob"'), true) AS b \gset
SELECT user_id, message_count FROM chatstore.get_conversation(:'b');
COMMIT;
BEGIN;
SELECT chatstore.set_user('alice');
SELECT chatstore.export_conversation('01900000-0000-7000-8000-000000000001') = :'e' AS alice_exports;
SELECT chatstore.import_conversation(:'e') AS alice_imports_again;
\set VERBOSITY sqlstate
SELECT chatstore.export_conversation(:'b');
\set VERBOSITY terse
ROLLBACK;
-- the app role may not write the tables itself
INSERT INTO chatstore.conversation (id, user_id, created_at, last_activity_at) VALUES (chatstore.uuidv7(), 'bob', now(), now());
\echo :SQLSTATE
RESET ROLE;
SELECT chatstore.export_conversation(:'b') -> 'conversation' ->> 'user_id' AS admin_exports_bobs;

-- the transcript: header, then each message as "role (time):" and its content; tool calls in brief
SELECT chatstore.transcript('01900000-0000-7000-8000-000000000001');
SELECT chatstore.transcript('01900000-0000-7000-8000-000000000002');
-- a long tool call is cut at 200 characters; several calls are one line each
SELECT chatstore.import_conversation(jsonb_build_object('format', 'chatstore.conversation/1',
    'conversation', '{"id": "01900000-0000-7000-8000-000000000004", "user_id": "alice", "created_at": "2024-06-01T00:00:00Z"}'::jsonb,
    'messages', jsonb_build_array(jsonb_build_object('id', '01900000-0000-7000-8000-000000000041', 'role', 'assistant',
        'content', 'Looking both up.', 'created_at', '2024-06-01T00:00:00Z', 'metadata', jsonb_build_object('name', 'planner',
        'tool_calls', jsonb_build_array(
            jsonb_build_object('id', 'a', 'type', 'function', 'function', jsonb_build_object('name', 'search', 'arguments', repeat('x', 250))),
            jsonb_build_object('id', 'b', 'type', 'function', 'function', jsonb_build_object('name', 'lookup', 'arguments', '{}'))))))));
SELECT chatstore.transcript('01900000-0000-7000-8000-000000000004');
-- an archived conversation says so (with the time it was archived)
SELECT chatstore.archive_conversation('01900000-0000-7000-8000-000000000004');
SELECT chatstore.transcript('01900000-0000-7000-8000-000000000004') ~ E'\nArchived: \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC\n' AS says_archived;

DROP OWNED BY regress_export_app;
DROP ROLE regress_export_app;
