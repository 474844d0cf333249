-- Export, import and transcript: the export's shape, import under its id and as new, idempotency, conflicts,
-- validation (all or nothing), per-user isolation, and the transcript's exact text.
\pset null '(null)'
-- An export written by hand, with fixed ids and times so the output is stable: a system prompt, a question, a tool
-- call (blank content, the call in metadata), the tool's answer, and the final reply with its own model and an
-- idempotency key. Messages leave out what has a default (metadata, model, tokens, idempotency_key).
SELECT '{"format": "chatstore.conversation/1", "conversation": {"id": "01900000-0000-7000-8000-000000000001", "user_id": "alice", "title": "Weather in Lisbon", "model": "gpt-4o", "metadata": {"source": "web"}, "created_at": "2024-05-01T12:00:00.000000Z", "last_activity_at": "2024-05-01T12:00:09.250000Z"}, "messages": [{"seq": 1, "id": "01900000-0000-7000-8000-000000000011", "role": "system", "content": "You are a concise travel assistant.", "created_at": "2024-05-01T12:00:00Z"}, {"seq": 2, "id": "01900000-0000-7000-8000-000000000012", "role": "user", "content": "What is the weather in Lisbon?\nAnd tomorrow?", "metadata": {"client": "ios"}, "tokens": 12, "created_at": "2024-05-01T12:00:01.5Z"}, {"seq": 3, "id": "01900000-0000-7000-8000-000000000013", "role": "assistant", "content": "", "metadata": {"tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Lisbon\"}"}}]}, "created_at": "2024-05-01T12:00:02Z"}, {"seq": 4, "id": "01900000-0000-7000-8000-000000000014", "role": "tool", "content": "{\"today\": \"sunny, 24 C\", \"tomorrow\": \"cloudy, 21 C\"}", "metadata": {"tool_call_id": "call_1"}, "created_at": "2024-05-01T12:00:03Z"}, {"seq": 5, "id": "01900000-0000-7000-8000-000000000015", "role": "assistant", "content": "Sunny today (24 C); cloudy tomorrow (21 C).", "model": "gpt-4o-mini", "tokens": 14, "created_at": "2024-05-01T12:00:09.25Z", "idempotency_key": "reply-1"}], "tags": []}'::jsonb AS doc \gset

-- import under its id (the default) returns the id; counters are computed from the messages
SELECT chatstore.import_conversation(:'doc') AS imported;
-- (the messages' sum first: Citus refuses a correlated subquery next to a set-returning function)
SELECT sum(tokens) AS message_tokens FROM chatstore.message
WHERE conversation_id = '01900000-0000-7000-8000-000000000001' \gset
SELECT user_id, title, model, status, metadata, message_count, last_seq,
       token_count = :message_tokens AS tokens_match,
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
       || '{"metadata": {}, "model": null, "idempotency_key": null, "created_at": "2024-05-01T12:00:00.000000Z",
            "input_tokens": null, "output_tokens": null, "latency_ms": null}'
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
-- a time needs its UTC offset or Z: without one it would be read in the session's TimeZone; "now" and the other
-- special values mean another time at each import
SET TimeZone = 'Asia/Tokyo';
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{messages,1,created_at}', '"2024-06-01T00:00:01"'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{conversation,created_at}', '"2024-06-01 00:00:00"'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{conversation,created_at}', '"now"'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{conversation,created_at}', '"2024-06-01"'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{conversation,last_activity_at}', '"today"'));
\echo :SQLSTATE
RESET TimeZone;
-- any offset is accepted (what to_jsonb() of a timestamptz writes in any TimeZone), in these forms
SELECT chatstore.import_conversation(jsonb_set(jsonb_set(jsonb_set(:'bad',
         '{conversation,created_at}', '"2024-06-01T02:00:00+02:00"'),
         '{messages,0,created_at}', '"2024-05-31 19:00:00.000000-05"'),
         '{messages,1,created_at}', '"2024-06-01T05:30:01+0530"')) = '01900000-0000-7000-8000-0000000000b1' AS offsets_accepted;
SELECT created_at AT TIME ZONE 'UTC' AS created_utc FROM chatstore.get_conversation('01900000-0000-7000-8000-0000000000b1');
SELECT seq, created_at AT TIME ZONE 'UTC' AS created_utc FROM chatstore.history('01900000-0000-7000-8000-0000000000b1');
SELECT chatstore.delete_conversation('01900000-0000-7000-8000-0000000000b1');
-- the conversation's times enclose its messages' (usage() and the listings rely on it): refused, not corrected
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{conversation,last_activity_at}', '"2024-06-01T00:00:00.5Z"'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{conversation,created_at}', '"2024-06-01T00:00:00.000001Z"'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(jsonb_set(:'bad', '{messages}', '[]'),
         '{conversation,last_activity_at}', '"2024-05-31T23:59:59Z"'));
\echo :SQLSTATE
-- equal times are fine: created with its first message, last active at its newest
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{conversation,last_activity_at}', '"2024-06-01T00:00:01Z"'))
       = '01900000-0000-7000-8000-0000000000b1' AS equal_times_accepted;
SELECT chatstore.delete_conversation('01900000-0000-7000-8000-0000000000b1');
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{messages,1,id}', '"not-a-uuid"'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{messages,1,id}', '"01900000-0000-7000-8000-0000000000b2"'));
\echo :SQLSTATE
SELECT chatstore.import_conversation('[1, 2]');
\echo :SQLSTATE
-- the same idempotency key twice in one conversation (append would have returned the first message)
SELECT chatstore.import_conversation(jsonb_set(jsonb_set(:'bad', '{messages,0,idempotency_key}', '"k"'), '{messages,1,idempotency_key}', '"k"'));
\echo :SQLSTATE
-- usage figures, as append checks them: whole numbers, not negative, within their bounds
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{messages,1,input_tokens}', '-1'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{messages,1,output_tokens}', '100000001'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{messages,1,latency_ms}', '86400001'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{messages,1,latency_ms}', '"fast"'));
\echo :SQLSTATE
-- the key, as get_or_create_conversation checks it; the state, as set_state checks it
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{conversation,key}', '""'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{conversation,key}', to_jsonb(repeat('k', 256))));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{conversation,key}', '7'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{conversation,state}', '"archived"'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{conversation,state}', '"done"'));
\echo :SQLSTATE
-- a keyed conversation under its id: the id must be chatstore.conversation_id(user_id, key)
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{conversation,key}', '"tab-1"'));
\echo :SQLSTATE
-- tags, as tag() checks them: strings (white space at the ends trimmed), each once, within the limits
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{tags}', '{"travel": 1}'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{tags}', '[" "]'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{tags}', '["travel", 3]'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{tags}', '["travel", {"tag": "work", "taged_at": "2024-06-01T00:00:00Z"}]'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{tags}', '[{"tagged_at": "2024-06-01T00:00:00Z"}]'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{tags}', '["travel", {"tag": "work", "tagged_at": "soon"}]'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{tags}', '["travel", " travel"]'));
\echo :SQLSTATE
SET chatstore.max_tag_chars = 3;
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{tags}', '["abc", "travel"]'));
\echo :SQLSTATE
RESET chatstore.max_tag_chars;
SET chatstore.max_tags_per_conversation = 2;
SELECT chatstore.import_conversation(jsonb_set(:'bad', '{tags}', '["a", "b", "c"]'));
\echo :SQLSTATE
RESET chatstore.max_tags_per_conversation;
SELECT chatstore.import_conversation(NULL);
\echo :SQLSTATE
SELECT chatstore.import_conversation(:'bad', NULL);
\echo :SQLSTATE
\set VERBOSITY terse
SELECT count(*) AS nothing_stored FROM chatstore.conversation WHERE id = '01900000-0000-7000-8000-0000000000b1';
SELECT count(*) AS no_messages FROM chatstore.message WHERE conversation_id = '01900000-0000-7000-8000-0000000000b1';

-- a keyed conversation (its id derived from user and key), paused, with usage figures on its messages and two tags:
-- the export carries all of it, and import restores it exactly
SELECT chatstore.conversation_id('alice', 'tab-1') AS keyed_id;
SELECT '{"format": "chatstore.conversation/1", "conversation": {"id": "895216a3-e4f1-5ead-9ebf-24417ae1629d", "user_id": "alice", "key": "tab-1", "state": "paused", "title": "Coaching", "created_at": "2024-07-01T09:00:00Z"}, "messages": [{"seq": 1, "id": "01900000-0000-7000-8000-0000000000c1", "role": "user", "content": "Where do I start?", "created_at": "2024-07-01T09:00:00Z", "input_tokens": 5}, {"seq": 2, "id": "01900000-0000-7000-8000-0000000000c2", "role": "assistant", "content": "With ten customer interviews.", "metadata": {"suggestions": ["Who to ask?", "What to ask?"]}, "created_at": "2024-07-01T09:00:02.5Z", "input_tokens": 812, "output_tokens": 9, "latency_ms": 2450}], "tags": ["  work ", {"tag": "coaching", "tagged_at": "2024-07-01T09:05:00Z"}]}'::jsonb AS kdoc \gset
SELECT chatstore.import_conversation(:'kdoc') AS keyed_imported;
SELECT key, state, status, message_count, last_activity_at AT TIME ZONE 'UTC' AS last_activity_utc
FROM chatstore.get_conversation('895216a3-e4f1-5ead-9ebf-24417ae1629d');
-- each message gets the conversation's user_id; usage figures as given, NULL where not given
SELECT seq, user_id, input_tokens, output_tokens, latency_ms, metadata
FROM chatstore.message WHERE conversation_id = '895216a3-e4f1-5ead-9ebf-24417ae1629d' ORDER BY seq;
-- tags stored trimmed, with the conversation's user_id; a tag given as a string is dated at the last activity
SELECT tag, user_id, tagged_at AT TIME ZONE 'UTC' AS tagged_utc
FROM chatstore.conversation_tag WHERE conversation_id = '895216a3-e4f1-5ead-9ebf-24417ae1629d' ORDER BY tag;
SELECT * FROM chatstore.tags('alice');
-- the key works as get_or_create_conversation's and append_by_key's key
SELECT chatstore.get_or_create_conversation('alice', 'tab-1') AS same_conversation;
-- the export: key, state, usage figures, tags sorted, each with tagged_at
SELECT jsonb_pretty(chatstore.export_conversation('895216a3-e4f1-5ead-9ebf-24417ae1629d'));
SELECT chatstore.export_conversation('895216a3-e4f1-5ead-9ebf-24417ae1629d') AS ke \gset
-- imported again (the export or the document): a no-op; differing in a 1.1 field: 23505
SELECT chatstore.import_conversation(:'ke') AS ke_again, chatstore.import_conversation(:'kdoc') AS kdoc_again;
SELECT chatstore.import_conversation(jsonb_set(:'ke', '{conversation,state}', '"completed"'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'ke', '{messages,1,latency_ms}', '2451'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'ke', '{messages,0,output_tokens}', '1'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'ke', '{tags}', '["coaching", "work", "x"]'));
\echo :SQLSTATE
SELECT chatstore.import_conversation(jsonb_set(:'ke', '{tags,0,tagged_at}', '"2024-07-01T09:05:01Z"'));
\echo :SQLSTATE
-- as new, a keyed conversation keeps its key and so gets the id of (user_id, key): for the same user that is the
-- stored one, a no-op when the same but for message ids, else 23505
SELECT chatstore.import_conversation(:'ke', as_new => true) AS as_new_same_user;
\set VERBOSITY default
SELECT chatstore.import_conversation(jsonb_set(:'ke', '{conversation,title}', '"Other"'), as_new => true);
\echo :SQLSTATE
\set VERBOSITY terse
-- for another user, the id of that user's key; without the key, a new id
SELECT chatstore.import_conversation(jsonb_set(:'ke', '{conversation,user_id}', '"bob"'), as_new => true)
       = chatstore.conversation_id('bob', 'tab-1') AS bobs_keyed_id;
SELECT chatstore.import_conversation(jsonb_set(:'ke', '{conversation,key}', 'null'), as_new => true) AS copy \gset
SELECT key, state, substr(:'copy', 15, 1) AS uuid_version FROM chatstore.get_conversation(:'copy');
SELECT chatstore.export_conversation(:'copy') -> 'tags' = :'ke'::jsonb -> 'tags' AS copy_has_the_tags;
-- tags and usage survive archive and restore; deleted and imported again, the conversation comes back with its tags
SELECT chatstore.archive_conversation('895216a3-e4f1-5ead-9ebf-24417ae1629d');
SELECT chatstore.export_conversation('895216a3-e4f1-5ead-9ebf-24417ae1629d') = :'ke' AS same_when_archived;
SELECT chatstore.import_conversation(:'ke') AS archived_keyed_again;
SELECT chatstore.delete_conversation('895216a3-e4f1-5ead-9ebf-24417ae1629d');
SELECT count(*) AS tags_gone FROM chatstore.conversation_tag WHERE conversation_id = '895216a3-e4f1-5ead-9ebf-24417ae1629d';
SELECT chatstore.import_conversation(:'ke') AS keyed_restored;
SELECT chatstore.export_conversation('895216a3-e4f1-5ead-9ebf-24417ae1629d') = :'ke' AS identical;

-- export and transcript of a conversation that does not exist: P0002
SELECT chatstore.export_conversation('01900000-0000-7000-8000-0000000000ff');
\echo :SQLSTATE
SELECT chatstore.transcript('01900000-0000-7000-8000-0000000000ff');
\echo :SQLSTATE
SELECT chatstore.export_conversation(NULL);
\echo :SQLSTATE

-- per-user isolation: a declared user exports, imports and reads only its own conversations; admins any
CREATE ROLE regress_export_app LOGIN;
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
-- key, state and tags in the header; usage (tokens in and out, latency) with each message that has it
SELECT chatstore.transcript('895216a3-e4f1-5ead-9ebf-24417ae1629d');
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

-- a conversation without a key cannot take the id of a key (it would squat on another user's key)
SELECT chatstore.import_conversation(jsonb_build_object('format', 'chatstore.conversation/1',
  'conversation', jsonb_build_object('id', chatstore.conversation_id('alice', 'tab-42'), 'user_id', 'bob',
                                     'created_at', '2024-05-01T12:00:00Z')));
\echo :SQLSTATE
SELECT count(*) FROM chatstore.conversation WHERE id = chatstore.conversation_id('alice', 'tab-42');
