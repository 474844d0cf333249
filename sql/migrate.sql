-- Migration in one call: import_langchain (LangChain's PostgresChatMessageHistory tables, both layouts) and
-- import_sessions (seed 000's messages table): the mapping, all or nothing per session, idempotency and
-- continuation, conflicts, every error, and privileges (the caller must be able to read the source itself).
\pset null '(null)'
SET TimeZone = 'UTC';

--
-- langchain-postgres: PostgresChatMessageHistory.create_tables() makes this table (name chosen by the application)
--
CREATE TABLE chat_history (
    id SERIAL PRIMARY KEY,
    session_id UUID NOT NULL,
    message JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_chat_history_session_id ON chat_history (session_id);

-- what message_to_dict() writes: {"type": ..., "data": model_dump()}, every field of the message, set or not
-- session 1: a system prompt, a question, a tool call (with usage and model), the tool's answer, the reply as a
-- list of content blocks
INSERT INTO chat_history (session_id, message, created_at) VALUES
('00000000-0000-4000-8000-000000000001', '{"type": "system", "data": {"content": "You are a concise travel assistant.", "additional_kwargs": {}, "response_metadata": {}, "type": "system", "name": null, "id": null}}', '2024-05-01 12:00:00+00'),
('00000000-0000-4000-8000-000000000001', '{"type": "human", "data": {"content": "What is the weather in Lisbon?", "additional_kwargs": {"client": "ios"}, "response_metadata": {}, "type": "human", "name": null, "id": null, "example": false}}', '2024-05-01 12:00:01+00'),
('00000000-0000-4000-8000-000000000001', '{"type": "ai", "data": {"content": "", "additional_kwargs": {}, "response_metadata": {"model_name": "gpt-4o-2024-08-06", "finish_reason": "tool_calls"}, "type": "ai", "name": null, "id": "run-1", "example": false, "tool_calls": [{"name": "get_weather", "args": {"city": "Lisbon"}, "id": "call_1", "type": "tool_call"}], "invalid_tool_calls": [], "usage_metadata": {"input_tokens": 120, "output_tokens": 18, "total_tokens": 138}}}', '2024-05-01 12:00:02+00'),
('00000000-0000-4000-8000-000000000001', '{"type": "tool", "data": {"content": "sunny, 24 C", "additional_kwargs": {}, "response_metadata": {}, "type": "tool", "name": "get_weather", "id": null, "tool_call_id": "call_1", "artifact": null, "status": "success"}}', '2024-05-01 12:00:03+00'),
('00000000-0000-4000-8000-000000000001', '{"type": "ai", "data": {"content": [{"type": "text", "text": "Sunny, "}, {"type": "image_url", "image_url": {"url": "https://example.com/sun.png"}}, {"type": "text", "text": "24 C."}], "additional_kwargs": {}, "response_metadata": {"model": "claude-3-5-sonnet"}, "type": "ai", "name": null, "id": "run-2", "example": false, "tool_calls": [], "invalid_tool_calls": [], "usage_metadata": null}}', '2024-05-01 12:00:09+00');
-- session 2: a chat message with a role, a chunk type, a function message
INSERT INTO chat_history (session_id, message, created_at) VALUES
('00000000-0000-4000-8000-000000000002', '{"type": "chat", "data": {"content": "Hello from a ChatMessage", "role": "user", "additional_kwargs": {}, "response_metadata": {}, "type": "chat"}}', '2024-05-02 08:00:00+00'),
('00000000-0000-4000-8000-000000000002', '{"type": "AIMessageChunk", "data": {"content": "A streamed answer", "additional_kwargs": {}, "response_metadata": {}, "type": "AIMessageChunk", "tool_call_chunks": []}}', '2024-05-02 08:00:01+00'),
('00000000-0000-4000-8000-000000000002', '{"type": "function", "data": {"content": "42", "name": "answer", "additional_kwargs": {}, "response_metadata": {}, "type": "function"}}', '2024-05-02 08:00:02+00');
-- session 3: its second message has an unknown type, so the session fails and nothing of it is stored
INSERT INTO chat_history (session_id, message, created_at) VALUES
('00000000-0000-4000-8000-000000000003', '{"type": "human", "data": {"content": "First"}}', '2024-05-03 08:00:00+00'),
('00000000-0000-4000-8000-000000000003', '{"type": "remove", "data": {"content": "", "id": "m1"}}', '2024-05-03 08:00:01+00');
-- session 4: a user message longer than chatstore.max_user_message_chars (set to 40 below): 22001
INSERT INTO chat_history (session_id, message, created_at) VALUES
('00000000-0000-4000-8000-000000000004', '{"type": "human", "data": {"content": "This question is much longer than forty characters."}}', '2024-05-04 08:00:00+00');

-- one call: every session of the table becomes lc-alice's conversation keyed by its session id
BEGIN;
SET LOCAL chatstore.max_user_message_chars = 40;
SELECT key, status, messages, sqlstate, error, detail,
       conversation_id = chatstore.conversation_id(user_id, key) AS keyed
FROM chatstore.import_langchain('chat_history', for_user => 'lc-alice') ORDER BY key;
COMMIT;
-- the failed sessions left nothing behind
SELECT key, message_count, last_seq, created_at, last_activity_at, metadata
FROM chatstore.conversation WHERE user_id = 'lc-alice' ORDER BY key;

-- what maps to what: roles, content (a list gives its text blocks, kept whole in metadata.langchain.content),
-- name / tool_call_id / tool_calls (as the chat API writes them) as append_many keeps them, every other field
-- that is set under metadata.langchain, the model from response_metadata, usage from usage_metadata, the times
SELECT seq, role, content, jsonb_pretty(metadata) AS metadata, model, input_tokens, output_tokens,
       tokens = chatstore.estimate_tokens(content) AS estimated, created_at
FROM chatstore.history(chatstore.conversation_id('lc-alice', '00000000-0000-4000-8000-000000000001'), 100);
SELECT seq, role, content, metadata
FROM chatstore.history(chatstore.conversation_id('lc-alice', '00000000-0000-4000-8000-000000000002'), 100);
-- history_json gives chat API messages back, the tool call included
SELECT jsonb_pretty(chatstore.history_json(chatstore.conversation_id('lc-alice', '00000000-0000-4000-8000-000000000001'), 10));
SELECT chatstore.transcript(chatstore.conversation_id('lc-alice', '00000000-0000-4000-8000-000000000001'));

-- a second run imports nothing twice: the imported sessions are skipped, the bad ones fail again
BEGIN;
SET LOCAL chatstore.max_user_message_chars = 40;
SELECT key, status, messages, sqlstate
FROM chatstore.import_langchain('chat_history', for_user => 'lc-alice') ORDER BY key;
COMMIT;
SELECT sum(message_count) AS stored FROM chatstore.conversation WHERE user_id = 'lc-alice';

-- the application went on meanwhile: new rows in session 1, a new session 5, session 3's bad row fixed (and
-- session 4's limit back at its default). The next run appends what is new with the next seq numbers and imports
-- the rest.
INSERT INTO chat_history (session_id, message, created_at) VALUES
('00000000-0000-4000-8000-000000000001', '{"type": "human", "data": {"content": "And tomorrow?"}}', '2024-05-05 09:00:00+00'),
('00000000-0000-4000-8000-000000000005', '{"type": "human", "data": {"content": "A new session"}}', '2024-05-05 09:00:01+00'),
('00000000-0000-4000-8000-000000000001', '{"type": "ai", "data": {"content": "Cloudy, 21 C."}}', '2024-05-05 09:00:02+00');
UPDATE chat_history SET message = '{"type": "ai", "data": {"content": "Second"}}'
WHERE session_id = '00000000-0000-4000-8000-000000000003' AND message->>'type' = 'remove';
-- the counts of a run, by status
SELECT status, count(*) AS sessions, sum(messages) AS messages
FROM chatstore.import_langchain('chat_history', for_user => 'lc-alice') GROUP BY status ORDER BY status;
SELECT key, message_count, last_seq, created_at, last_activity_at
FROM chatstore.conversation WHERE user_id = 'lc-alice' ORDER BY key;
SELECT seq, role, content, created_at
FROM chatstore.history(chatstore.conversation_id('lc-alice', '00000000-0000-4000-8000-000000000001'), 100)
WHERE seq > 4;

-- after the switch the application appends to chatstore itself: the table is a prefix of the conversation, so a
-- run skips it
SELECT seq FROM chatstore.append_by_key('lc-alice', '00000000-0000-4000-8000-000000000005', 'assistant', 'Welcome!');
SELECT key, status, messages FROM chatstore.import_langchain('chat_history', for_user => 'lc-alice')
WHERE key = '00000000-0000-4000-8000-000000000005';
-- LangChain's clear() deleted a session's rows and it started over: neither is a prefix of the other, 23505,
-- the conversation stays as it is
DELETE FROM chat_history WHERE session_id = '00000000-0000-4000-8000-000000000002';
INSERT INTO chat_history (session_id, message, created_at) VALUES
('00000000-0000-4000-8000-000000000002', '{"type": "human", "data": {"content": "Starting over"}}', '2024-05-06 08:00:00+00');
SELECT key, status, messages, sqlstate, error, detail
FROM chatstore.import_langchain('chat_history', for_user => 'lc-alice')
WHERE key = '00000000-0000-4000-8000-000000000002';
SELECT message_count FROM chatstore.conversation WHERE id = chatstore.conversation_id('lc-alice', '00000000-0000-4000-8000-000000000002');
-- an archived conversation with nothing new is skipped; with new rows it fails with 55000 until restored
SELECT chatstore.archive_conversation(chatstore.conversation_id('lc-alice', '00000000-0000-4000-8000-000000000003'));
SELECT key, status, messages FROM chatstore.import_langchain('chat_history', for_user => 'lc-alice')
WHERE key = '00000000-0000-4000-8000-000000000003';
INSERT INTO chat_history (session_id, message, created_at) VALUES
('00000000-0000-4000-8000-000000000003', '{"type": "human", "data": {"content": "Third"}}', '2024-05-06 09:00:00+00');
SELECT key, status, messages, sqlstate, error, detail FROM chatstore.import_langchain('chat_history', for_user => 'lc-alice')
WHERE key = '00000000-0000-4000-8000-000000000003';
SELECT chatstore.restore(chatstore.conversation_id('lc-alice', '00000000-0000-4000-8000-000000000003'));
SELECT key, status, messages FROM chatstore.import_langchain('chat_history', for_user => 'lc-alice')
WHERE key = '00000000-0000-4000-8000-000000000003';
-- a completed one: 55000 with a hint to set it active; a paused one becomes active, as an append makes it
SELECT state FROM chatstore.set_state(chatstore.conversation_id('lc-alice', '00000000-0000-4000-8000-000000000003'), 'completed');
INSERT INTO chat_history (session_id, message, created_at) VALUES
('00000000-0000-4000-8000-000000000003', '{"type": "ai", "data": {"content": "Fourth"}}', '2024-05-06 09:00:01+00');
SELECT key, status, sqlstate, error, detail FROM chatstore.import_langchain('chat_history', for_user => 'lc-alice')
WHERE key = '00000000-0000-4000-8000-000000000003';
SELECT state FROM chatstore.set_state(chatstore.conversation_id('lc-alice', '00000000-0000-4000-8000-000000000003'), 'paused');
SELECT key, status, messages FROM chatstore.import_langchain('chat_history', for_user => 'lc-alice')
WHERE key = '00000000-0000-4000-8000-000000000003';
SELECT state, message_count FROM chatstore.get_conversation(chatstore.conversation_id('lc-alice', '00000000-0000-4000-8000-000000000003'));

--
-- langchain_community's PostgresChatMessageHistory: message_store(id, session_id text, message), no created_at.
-- Each session's user from a mapping (users), else for_user.
--
CREATE TABLE message_store (id SERIAL PRIMARY KEY, session_id TEXT NOT NULL, message JSONB NOT NULL);
INSERT INTO message_store (session_id, message) VALUES
('bob-1', '{"type": "human", "data": {"content": "hi", "additional_kwargs": {}, "type": "human", "example": false}}'),
('carol-1', '{"type": "human", "data": {"content": "hello"}}'),
('bob-1', '{"type": "ai", "data": {"content": "hi bob", "additional_kwargs": {}, "type": "ai", "example": false}}'),
('orphan', '{"type": "human", "data": {"content": "whose?"}}'),
('odd', '{"type": "human", "data": {"content": "a number as user"}}');
BEGIN;
SELECT user_id, key, status, messages, sqlstate, error
FROM chatstore.import_langchain('message_store', users => '{"bob-1": "lc-bob", "carol-1": "lc-carol", "odd": 7}')
ORDER BY key;
-- without created_at a message's time is the time of the import (now() taken here: in a query over the chat tables,
-- Citus would evaluate it on the worker, whose transaction began later)
SELECT now() AS import_began \gset
SELECT c.user_id, c.key, c.message_count, c.created_at >= :'import_began' AS import_time,
       (SELECT bool_and(m.created_at >= :'import_began') FROM chatstore.message m WHERE m.conversation_id = c.id)
       AS messages_too
FROM chatstore.conversation c WHERE c.user_id IN ('lc-bob', 'lc-carol') ORDER BY c.key;
COMMIT;
-- for_user covers the sessions the mapping leaves out
SELECT user_id, key, status, messages FROM chatstore.import_langchain('message_store',
    for_user => 'lc-dave', users => '{"bob-1": "lc-bob", "carol-1": "lc-carol", "odd": "lc-dave"}') ORDER BY key;

-- bad messages, each failing its own session: not an object, no data, content of the wrong type, a chat role
-- chatstore has no use for, tool calls that are not a list, usage figures that are not whole or negative, a NULL
-- message, an empty session id, metadata over the limit. Blank content is kept: every imported message carries
-- metadata (its LangChain type), and append keeps blank content that comes with metadata.
CREATE TABLE bad_store (id SERIAL PRIMARY KEY, session_id TEXT NOT NULL, message JSONB);
INSERT INTO bad_store (session_id, message) VALUES
('b1', '"just a string"'),
('b2', '{"type": "human"}'),
('b3', '{"type": "human", "data": {"content": 7}}'),
('b4', '{"type": "chat", "data": {"content": "x", "role": "narrator"}}'),
('b5', '{"type": "ai", "data": {"content": "x", "tool_calls": {"name": "f"}}}'),
('b6', '{"type": "ai", "data": {"content": "x", "usage_metadata": {"input_tokens": 1.5}}}'),
('b7', '{"type": "ai", "data": {"content": "x", "usage_metadata": {"output_tokens": -1}}}'),
('b8', NULL),
('', '{"type": "human", "data": {"content": "empty session id"}}'),
('b9', ('{"type": "ai", "data": {"content": "x", "additional_kwargs": {"big": "' || repeat('x', 70000) || '"}}}')::jsonb),
('b10', '{"type": "human", "data": {"content": "   "}}'),
('b11', '{"type": "human", "data": {"content": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}}');
SELECT key, status, sqlstate, error, detail FROM chatstore.import_langchain('bad_store', for_user => 'lc-erin') ORDER BY key;
SELECT key, m.content, m.metadata FROM chatstore.conversation c JOIN chatstore.message m ON m.conversation_id = c.id
WHERE c.user_id = 'lc-erin' ORDER BY key;

-- the columns a LangChain table must have, and its created_at a timestamptz
CREATE TABLE no_message (id serial, session_id text);
SELECT * FROM chatstore.import_langchain('no_message', for_user => 'x');
\echo :SQLSTATE
CREATE TABLE odd_time (id serial, session_id text, message jsonb, created_at date);
SELECT * FROM chatstore.import_langchain('odd_time', for_user => 'x');
\echo :SQLSTATE
-- a view or a message column of type json or text works too
SET client_min_messages = error;  -- Citus warns that it creates the view on the coordinator only, as chat_history
CREATE VIEW history_view AS SELECT id, session_id::text || '-v' AS session_id, message::text AS message, created_at
FROM chat_history WHERE session_id = '00000000-0000-4000-8000-000000000002';
RESET client_min_messages;
SELECT key, status, messages FROM chatstore.import_langchain('history_view', for_user => 'lc-alice');
-- arguments
SELECT * FROM chatstore.import_langchain(NULL, for_user => 'x');
\echo :SQLSTATE
SELECT * FROM chatstore.import_langchain('chat_history');
\echo :SQLSTATE
SELECT * FROM chatstore.import_langchain('chat_history', for_user => '');
\echo :SQLSTATE
SELECT * FROM chatstore.import_langchain('chat_history', for_user => repeat('u', 256));
\echo :SQLSTATE
SELECT * FROM chatstore.import_langchain('chat_history', users => '["x"]');
\echo :SQLSTATE
SELECT * FROM chatstore.import_langchain('idx_chat_history_session_id', for_user => 'x');
\echo :SQLSTATE
SELECT * FROM chatstore.import_langchain('no_such_table', for_user => 'x');
\echo :SQLSTATE

--
-- seed 000's hand-written layer: users, sessions, messages (timestamps without time zone, holding UTC)
--
CREATE TABLE users (user_id TEXT PRIMARY KEY, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
                    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE sessions (session_id TEXT, user_id TEXT, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
                       last_accessed TIMESTAMP DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (session_id, user_id),
                       FOREIGN KEY (user_id) REFERENCES users(user_id) ON DELETE CASCADE);
CREATE TABLE messages (id SERIAL PRIMARY KEY, session_id TEXT NOT NULL, user_id TEXT NOT NULL, role TEXT NOT NULL,
                       content TEXT NOT NULL, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
                       FOREIGN KEY (session_id, user_id) REFERENCES sessions(session_id, user_id) ON DELETE CASCADE);
INSERT INTO users (user_id) VALUES ('s0-user1'), ('s0-user2');
INSERT INTO sessions (session_id, user_id) VALUES ('default', 's0-user1'), ('tab-7f3a', 's0-user1'),
    ('default', 's0-user2'), ('broken', 's0-user2');
INSERT INTO messages (session_id, user_id, role, content, created_at) VALUES
('default', 's0-user1', 'system', 'You are a helpful coach.', '2024-03-01 10:00:00'),
('default', 's0-user1', 'assistant', 'Hi! I am your coach.', '2024-03-01 10:00:01'),
('tab-7f3a', 's0-user1', 'user', 'A second tab', '2024-03-02 11:00:00'),
('default', 's0-user2', 'user', 'I am user2', '2024-03-03 12:00:00'),
('default', 's0-user1', 'user', 'How do I stay focused?', '2024-03-01 10:00:05'),
('broken', 's0-user2', 'user', 'fine', '2024-03-04 12:00:00'),
('broken', 's0-user2', 'bot', 'a role chatstore does not know', '2024-03-04 12:00:01');
-- one call migrates every session of every user
SELECT user_id, key, status, messages, sqlstate, error
FROM chatstore.import_sessions('messages') ORDER BY user_id, key;
SELECT user_id, key, message_count, created_at, last_activity_at
FROM chatstore.list_conversations('s0-user1', status => NULL) ORDER BY key;
SELECT seq, role, content, metadata, created_at
FROM chatstore.history(chatstore.conversation_id('s0-user1', 'default'), 100);
-- again: nothing twice; a new message is continued; the broken session, fixed, is imported
SELECT status, count(*) AS sessions, sum(messages) AS messages FROM chatstore.import_sessions('messages')
GROUP BY status ORDER BY status;
INSERT INTO messages (session_id, user_id, role, content, created_at) VALUES
('default', 's0-user1', 'assistant', 'One thing at a time.', '2024-03-05 10:00:00');
UPDATE messages SET role = 'assistant' WHERE role = 'bot';
SELECT user_id, key, status, messages FROM chatstore.import_sessions('messages') ORDER BY user_id, key;
SELECT seq, role, content, created_at
FROM chatstore.history(chatstore.conversation_id('s0-user1', 'default'), 100) WHERE seq > 3;
-- time_zone: the zone of a created_at without time zone (an unknown zone: 22023)
CREATE TABLE local_messages (id serial, session_id text, user_id text, role text, content text, created_at timestamp);
INSERT INTO local_messages (session_id, user_id, role, content, created_at)
VALUES ('t', 's0-user3', 'user', 'written in Lisbon summer time', '2024-07-01 12:00:00');
SELECT user_id, key, status FROM chatstore.import_sessions('local_messages', time_zone => 'Europe/Lisbon');
SELECT created_at FROM chatstore.history(chatstore.conversation_id('s0-user3', 't'));
SELECT * FROM chatstore.import_sessions('local_messages', time_zone => 'Mars/Olympus');
\echo :SQLSTATE
SELECT * FROM chatstore.import_sessions('local_messages', time_zone => NULL);
\echo :SQLSTATE
SELECT * FROM chatstore.import_sessions('chat_history');
\echo :SQLSTATE
-- a timestamptz is taken as it is
CREATE TABLE tz_messages (id serial, session_id text, user_id text, role text, content text, created_at timestamptz);
INSERT INTO tz_messages (session_id, user_id, role, content, created_at)
VALUES ('tz', 's0-user3', 'user', 'with its offset', '2024-07-01 12:00:00+02');
SELECT user_id, key, status FROM chatstore.import_sessions('tz_messages', time_zone => 'Asia/Tokyo');
SELECT created_at FROM chatstore.history(chatstore.conversation_id('s0-user3', 'tz'));
-- NULLs in the source fail their session; without created_at a message's time is the time of the import
CREATE TABLE null_messages (id serial, session_id text, user_id text, role text, content text);
INSERT INTO null_messages (session_id, user_id, role, content) VALUES
('n1', NULL, 'user', 'no user'), ('n2', 's0-user3', 'user', NULL), (NULL, 's0-user3', 'user', 'no session'),
('n3', 's0-user3', 'user', 'fine');
BEGIN;
SELECT user_id, key, status, sqlstate, error FROM chatstore.import_sessions('null_messages') ORDER BY key;
SELECT created_at >= now() AS import_time FROM chatstore.history(chatstore.conversation_id('s0-user3', 'n3'));
COMMIT;

--
-- privileges: granted by grant_admin only; the caller must be able to read the source itself
--
CREATE ROLE regress_migrate_admin LOGIN;
CREATE ROLE regress_migrate_app LOGIN;
SELECT chatstore.grant_admin('regress_migrate_admin');
SELECT chatstore.grant_app('regress_migrate_app');
SET ROLE regress_migrate_app;
BEGIN;
SELECT chatstore.set_user('lc-alice');
SELECT * FROM chatstore.import_langchain('chat_history', for_user => 'lc-alice');
\echo :SQLSTATE
ROLLBACK;
RESET ROLE;
-- an admin that may not read the table: 42501, before anything is read
SET ROLE regress_migrate_admin;
SELECT * FROM chatstore.import_langchain('chat_history', for_user => 'lc-frank');
\echo :SQLSTATE
SELECT * FROM chatstore.import_sessions('messages');
\echo :SQLSTATE
RESET ROLE;
-- SELECT on some of the columns it reads is not enough
GRANT SELECT (id, session_id) ON chat_history TO regress_migrate_admin;
SET ROLE regress_migrate_admin;
SELECT * FROM chatstore.import_langchain('chat_history', for_user => 'lc-frank');
\echo :SQLSTATE
RESET ROLE;
-- SELECT on the columns it reads is enough
GRANT SELECT (id, session_id, message, created_at) ON chat_history TO regress_migrate_admin;
SET ROLE regress_migrate_admin;
SELECT status, count(*) FROM chatstore.import_langchain('chat_history', for_user => 'lc-frank') GROUP BY status;
RESET ROLE;
-- the source is read as the caller: row-level security on it applies (the owner would see every row)
CREATE TABLE rls_history (id serial, session_id text, message jsonb);
INSERT INTO rls_history (session_id, message) VALUES ('visible', '{"type": "human", "data": {"content": "yes"}}'),
    ('hidden', '{"type": "human", "data": {"content": "no"}}');
ALTER TABLE rls_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY only_visible ON rls_history FOR SELECT USING (session_id = 'visible');
GRANT SELECT ON rls_history TO regress_migrate_admin;
SET ROLE regress_migrate_admin;
SELECT key, status FROM chatstore.import_langchain('rls_history', for_user => 'lc-grace');
-- a declared user imports only its own sessions: another user's fail with 42501
BEGIN;
SELECT chatstore.set_user('lc-grace');
SELECT user_id, key, status, sqlstate, error FROM chatstore.import_langchain('rls_history',
    users => '{"visible": "lc-heidi"}');
ROLLBACK;
RESET ROLE;
SELECT key FROM chatstore.conversation WHERE user_id IN ('lc-grace', 'lc-heidi');
-- not granted to PUBLIC
SELECT has_function_privilege('public', 'chatstore.import_langchain(regclass, text, jsonb)', 'EXECUTE') AS lc_public,
       has_function_privilege('public', 'chatstore.import_sessions(regclass, text)', 'EXECUTE') AS sessions_public,
       has_function_privilege('regress_migrate_app', 'chatstore.import_langchain(regclass, text, jsonb)', 'EXECUTE') AS lc_app,
       has_function_privilege('regress_migrate_admin', 'chatstore.import_sessions(regclass, text)', 'EXECUTE') AS sessions_admin;
DROP OWNED BY regress_migrate_admin, regress_migrate_app;
DROP ROLE regress_migrate_admin, regress_migrate_app;
