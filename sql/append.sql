-- Messages: append with validation, limits and their settings, idempotency, counters, append_many.
\pset null '(null)'
SELECT chatstore.create_conversation('alice', 'Append tests') AS c \gset
-- an archived conversation with a known id, for the error text
INSERT INTO chatstore.conversation (id, user_id, status, created_at, last_activity_at, archived_at)
VALUES ('00000000-0000-7000-8000-0000000000a1', 'carol', 'archived', now(), now(), now());

-- append returns the stored row: seq counts 1, 2, 3 ... per conversation
SELECT conversation_id = :'c' AS same_conversation, seq, role, content, metadata, model, tokens,
       pg_catalog.substr(id::text, 15, 1) AS uuid_version, idempotency_key
FROM chatstore.append(:'c', 'system', 'You are a concise travel assistant.');
SELECT seq, role, content, metadata, model, tokens
FROM chatstore.append(:'c', 'user', 'Plan two days in Lisbon.', '{"client": "ios"}', 7, NULL);
SELECT seq, role, model, tokens
FROM chatstore.append(:'c', 'assistant', 'Day 1: Alfama and Belém. Day 2: Sintra.', model => 'gpt-4o');
SELECT seq, role, content
FROM chatstore.append(:'c', 'tool', '{"weather": "sunny"}');

-- tokens: estimated when not given (estimate_tokens shows the same figure)
SELECT tokens = chatstore.estimate_tokens(content) AS estimated, tokens > 0 AS positive
FROM chatstore.message WHERE conversation_id = :'c' AND seq = 3;
SELECT chatstore.estimate_tokens('') AS empty, chatstore.estimate_tokens(NULL) AS null_text;

-- the conversation's counters move with every append, in the same transaction
-- (the messages' sum first: on Citus a subquery over a chat table next to a chatstore function runs on a shard)
SELECT sum(tokens) AS message_tokens FROM chatstore.message WHERE conversation_id = :'c' \gset
SELECT message_count, last_seq, token_count = :message_tokens AS tokens_match,
       last_activity_at > created_at AS active_later
FROM chatstore.get_conversation(:'c');
BEGIN;
SELECT (chatstore.append(:'c', 'user', 'This one is rolled back.')).seq;
ROLLBACK;
SELECT message_count, last_seq FROM chatstore.get_conversation(:'c');

-- roles
SELECT chatstore.append(:'c', 'bot', 'hi');
\echo :SQLSTATE
SELECT chatstore.append(:'c', 'User', 'hi');
\echo :SQLSTATE
SELECT chatstore.append(:'c', '', 'hi');
\echo :SQLSTATE

-- NULLs in required arguments: 22004, never a NULL result
SELECT chatstore.append(NULL, 'user', 'hi');
\echo :SQLSTATE
SELECT chatstore.append(:'c', NULL, 'hi');
\echo :SQLSTATE
SELECT chatstore.append(:'c', 'user', NULL);
\echo :SQLSTATE

-- missing and archived conversations
SELECT chatstore.append('00000000-0000-7000-8000-000000000000', 'user', 'hi');
\echo :SQLSTATE
SELECT chatstore.append('00000000-0000-7000-8000-0000000000a1', 'user', 'hi');
\echo :SQLSTATE

-- blank content: empty, or only code points with the Unicode White_Space property; refused unless the message
-- carries metadata (an assistant tool call, say)
SELECT chatstore.append(:'c', 'user', '');
\echo :SQLSTATE
SELECT chatstore.append(:'c', 'user', E' \t\n\r\f\u000b ');
\echo :SQLSTATE
-- NEL, NO-BREAK SPACE, OGHAM SPACE MARK, EN QUAD .. HAIR SPACE, LINE and PARAGRAPH SEPARATOR, NARROW NO-BREAK
-- SPACE, MEDIUM MATHEMATICAL SPACE, IDEOGRAPHIC SPACE: the whole White_Space set outside ASCII
SELECT chatstore.append(:'c', 'user',
  E'\u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000');
\echo :SQLSTATE
SELECT chatstore.append(:'c', 'user', E'\u3000');
\echo :SQLSTATE
SELECT chatstore.append(:'c', 'assistant', '', '{}');
\echo :SQLSTATE
SELECT seq, role, content, metadata
FROM chatstore.append(:'c', 'assistant', '', '{"tool_calls": [{"id": "call_1", "type": "function"}]}');
SELECT chatstore.create_conversation('alice', 'Invisible content') AS cb \gset
-- everything else is content, visible or not, and is stored as given: one ZERO WIDTH SPACE (real assistant
-- messages of public chat data sets are exactly that), read back byte for byte
SELECT seq, role, encode(convert_to(content, 'UTF8'), 'hex') AS utf8, length(content) AS code_points
FROM chatstore.append(:'cb', 'assistant', E'\u200b');
SELECT seq, content = E'\u200b' AS same, encode(convert_to(content, 'UTF8'), 'hex') AS utf8
FROM chatstore.history(:'cb', 1);
-- ZWNJ, ZWJ, SOFT HYPHEN, COMBINING GRAPHEME JOINER, VARIATION SELECTOR-16, WORD JOINER, BYTE ORDER MARK, MONGOLIAN
-- VOWEL SEPARATOR, HANGUL FILLER, BRAILLE BLANK, and white space around a ZERO WIDTH SPACE
CREATE TEMP TABLE invisible (n int, name text, s text);
INSERT INTO invisible VALUES
  (1, 'zwnj', E'\u200c'), (2, 'zwj', E'\u200d'), (3, 'soft hyphen', E'\u00ad'), (4, 'cgj', E'\u034f'),
  (5, 'vs16', E'\ufe0f'), (6, 'word joiner', E'\u2060'), (7, 'bom', E'\ufeff'), (8, 'mvs', E'\u180e'),
  (9, 'hangul filler', E'\u3164'), (10, 'braille blank', E'\u2800'), (11, 'spaces and zwsp', E' \u200b\n');
SELECT v.name, m.role, encode(convert_to(m.content, 'UTF8'), 'hex') AS utf8, m.content = v.s AS same
FROM invisible v, LATERAL chatstore.append(:'cb', 'user', v.s) m
ORDER BY v.n;
SELECT count(*) AS read_back_byte_for_byte
FROM chatstore.history(:'cb', 11) h JOIN invisible v ON convert_to(h.content, 'UTF8') = convert_to(v.s, 'UTF8');
-- append_many applies the same rule
SELECT seq, role, encode(convert_to(content, 'UTF8'), 'hex') AS utf8
FROM chatstore.append_many(:'cb', $$[{"role": "user", "content": "\u200d"}, {"role": "assistant", "content": "\u200b"}]$$);
SELECT chatstore.append_many(:'cb', $$[{"role": "user", "content": "ok"}, {"role": "assistant", "content": "\u00a0\u2029"}]$$);
\echo :SQLSTATE

-- metadata: a JSON object within chatstore.max_metadata_bytes
SELECT chatstore.append(:'c', 'user', 'hi', '[1]');
\echo :SQLSTATE
SELECT chatstore.append(:'c', 'user', 'hi', '3');
\echo :SQLSTATE
SET chatstore.max_metadata_bytes = 100;
SELECT chatstore.append(:'c', 'user', 'hi', jsonb_build_object('blob', repeat('x', 200)));
\echo :SQLSTATE
RESET chatstore.max_metadata_bytes;
SHOW chatstore.max_metadata_bytes;

-- tokens
SELECT chatstore.append(:'c', 'user', 'hi', tokens => -1);
\echo :SQLSTATE
SELECT seq, tokens FROM chatstore.append(:'c', 'user', 'hi', tokens => 0);

-- length limits count code points (what char_length counts), not bytes and not user-perceived characters
SHOW chatstore.max_message_chars;
SHOW chatstore.max_user_message_chars;
SET chatstore.max_user_message_chars = 1000;
SELECT seq, length(content) AS chars, octet_length(content) AS bytes
FROM chatstore.append(:'c', 'user', repeat('é', 1000));
SELECT chatstore.append(:'c', 'user', repeat('é', 1001));
\echo :SQLSTATE
SELECT seq, role, length(content) AS chars FROM chatstore.append(:'c', 'assistant', repeat('ü', 1001));
SELECT seq, length(content) AS chars FROM chatstore.append(:'c', 'user', repeat('😀', 1000));
SELECT chatstore.append(:'c', 'user', repeat('😀', 1001));
\echo :SQLSTATE
-- a family emoji is one character on screen and 7 code points (4 people joined by 3 ZERO WIDTH JOINERs)
SET chatstore.max_user_message_chars = 7;
SELECT length(content) AS code_points, octet_length(content) AS bytes
FROM chatstore.append(:'cb', 'user', E'\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466');
SELECT chatstore.append(:'cb', 'user', E'\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466!');
\echo :SQLSTATE
SET chatstore.max_user_message_chars = 1000;
SET chatstore.max_message_chars = 500;
SELECT chatstore.append(:'c', 'assistant', repeat('a', 501));
\echo :SQLSTATE
SELECT chatstore.append(:'c', 'user', repeat('a', 501));
\echo :SQLSTATE
RESET chatstore.max_message_chars;
RESET chatstore.max_user_message_chars;
SELECT length((chatstore.append(:'c', 'user', repeat('a', 32000))).content) AS user_default_limit;
SELECT chatstore.append(:'c', 'user', repeat('a', 32001));
\echo :SQLSTATE
SELECT length((chatstore.append(:'c', 'assistant', repeat('a', 100000))).content) AS all_roles_default_limit;
SELECT chatstore.append(:'c', 'assistant', repeat('a', 100001));
\echo :SQLSTATE
-- the limits are set by a superuser (postgresql.conf, ALTER DATABASE/ROLE ... SET, or GRANT SET ON PARAMETER)
CREATE ROLE chatstore_limit_tester LOGIN;
SET ROLE chatstore_limit_tester;
SET chatstore.max_user_message_chars = 1000000;
\echo :SQLSTATE
RESET ROLE;
DROP ROLE chatstore_limit_tester;

-- model is an identifier: at most 255 bytes (bytes, not code points), 22001 over
SELECT seq, octet_length(model) AS model_bytes FROM chatstore.append(:'cb', 'assistant', 'ok', model => repeat('m', 255));
SELECT chatstore.append(:'cb', 'assistant', 'ok', model => repeat('m', 256));
\echo :SQLSTATE
SELECT chatstore.append(:'cb', 'assistant', 'ok', model => repeat('é', 128));
\echo :SQLSTATE
SELECT chatstore.append(:'cb', 'assistant', 'ok', model => repeat('m', 20000000));
\echo :SQLSTATE
SELECT chatstore.append_many(:'cb', jsonb_build_array(jsonb_build_object('role', 'assistant', 'content', 'ok',
                                                                       'model', repeat('m', 20000000))));
\echo :SQLSTATE

-- idempotency: the same key again returns the first message and stores nothing
SELECT seq, content, idempotency_key FROM chatstore.append(:'c', 'user', 'Book a table', idempotency_key => 'req-42');
SELECT last_seq AS before_retry FROM chatstore.get_conversation(:'c') \gset
SELECT seq, content, idempotency_key FROM chatstore.append(:'c', 'user', 'Book a table', idempotency_key => 'req-42');
SELECT seq, content FROM chatstore.append(:'c', 'user', 'Different text, same key', idempotency_key => 'req-42');
SELECT last_seq = :before_retry AS nothing_stored FROM chatstore.get_conversation(:'c');
SELECT count(*) FROM chatstore.message WHERE idempotency_key = 'req-42';
-- a key is per conversation
SELECT chatstore.create_conversation('alice') AS c2 \gset
SELECT seq, content FROM chatstore.append(:'c2', 'user', 'Book a table', idempotency_key => 'req-42');
SELECT chatstore.append(:'c', 'user', 'x', idempotency_key => '');
\echo :SQLSTATE
SELECT chatstore.append(:'c', 'user', 'x', idempotency_key => repeat('k', 256));
\echo :SQLSTATE
SELECT octet_length(idempotency_key) AS key_bytes FROM chatstore.append(:'cb', 'user', 'x', idempotency_key => repeat('k', 255));
SELECT chatstore.append('00000000-0000-7000-8000-000000000000', 'user', 'x', idempotency_key => 'k');
\echo :SQLSTATE
SELECT chatstore.append('00000000-0000-7000-8000-0000000000a1', 'user', 'x', idempotency_key => 'k');
\echo :SQLSTATE

-- seq is gapless and the counters equal the real counts
SELECT count(*) = max(seq) AND min(seq) = 1 AS gapless FROM chatstore.message WHERE conversation_id = :'c';
SELECT count(*) AS n, sum(tokens) AS t FROM chatstore.message WHERE conversation_id = :'c' \gset
SELECT message_count = :n AND last_seq = :n AND token_count = :t AS counters_true
FROM chatstore.get_conversation(:'c');

-- append_many: a chat-format JSON array, all stored or none
SELECT chatstore.create_conversation('alice', 'Import') AS c3 \gset
SELECT seq, role, content, metadata, model, tokens
FROM chatstore.append_many(:'c3', $$[
  {"role": "system", "content": "You are terse."},
  {"role": "user", "content": "Weather in Porto?", "tokens": 5},
  {"role": "assistant", "content": null, "tool_calls": [{"id": "call_9", "type": "function",
     "function": {"name": "weather", "arguments": "{\"city\": \"Porto\"}"}}]},
  {"role": "tool", "content": "18°C, cloudy", "tool_call_id": "call_9", "name": "weather"},
  {"role": "assistant", "content": "18°C and cloudy.", "model": "gpt-4o", "metadata": {"latency_ms": 420}}
]$$);
SELECT message_count, last_seq FROM chatstore.get_conversation(:'c3');
-- one bad element: nothing is stored, and the error names the element
SELECT chatstore.append_many(:'c3', '[{"role": "user", "content": "ok"}, {"role": "robot", "content": "no"}]');
\echo :SQLSTATE
SELECT chatstore.append_many(:'c3', '[{"role": "user", "content": "ok"}, {"role": "user", "content": "  "}]');
\echo :SQLSTATE
SET chatstore.max_user_message_chars = 10;
SELECT chatstore.append_many(:'c3', '[{"role": "user", "content": "ok"}, {"role": "user", "content": "far too long for it"}]');
\echo :SQLSTATE
RESET chatstore.max_user_message_chars;
SELECT chatstore.append_many(:'c3', '[{"role": "user"}]');
\echo :SQLSTATE
SELECT chatstore.append_many(:'c3', '[{"content": "no role"}]');
\echo :SQLSTATE
SELECT chatstore.append_many(:'c3', '[{"role": "user", "contnet": "typo"}]');
\echo :SQLSTATE
SELECT chatstore.append_many(:'c3', '[{"role": "user", "content": ["parts"]}]');
\echo :SQLSTATE
SELECT chatstore.append_many(:'c3', '[{"role": "user", "content": "x", "tokens": 1.5}]');
\echo :SQLSTATE
SELECT chatstore.append_many(:'c3', '[{"role": "user", "content": "x", "tokens": -2}]');
\echo :SQLSTATE
SELECT chatstore.append_many(:'c3', '[{"role": "user", "content": "x", "tokens": 99999999999}]');
\echo :SQLSTATE
SELECT chatstore.append_many(:'c3', '[{"role": "user", "content": "x", "metadata": [1]}]');
\echo :SQLSTATE
SELECT chatstore.append_many(:'c3', '["just text"]');
\echo :SQLSTATE
SELECT chatstore.append_many(:'c3', '{"role": "user", "content": "not in an array"}');
\echo :SQLSTATE
SELECT chatstore.append_many(:'c3', '[]');
\echo :SQLSTATE
SELECT chatstore.append_many(:'c3', NULL);
\echo :SQLSTATE
SELECT chatstore.append_many(NULL, '[{"role": "user", "content": "x"}]');
\echo :SQLSTATE
SELECT chatstore.append_many('00000000-0000-7000-8000-000000000000', '[{"role": "user", "content": "x"}]');
\echo :SQLSTATE
SELECT chatstore.append_many('00000000-0000-7000-8000-0000000000a1', '[{"role": "user", "content": "x"}]');
\echo :SQLSTATE
SELECT message_count, last_seq FROM chatstore.get_conversation(:'c3');
SELECT count(*) FROM chatstore.message WHERE conversation_id = :'c3';

-- a read-only transaction: writes are refused with 25006 and a plain message; reads work
BEGIN READ ONLY;
SELECT chatstore.append(:'c', 'user', 'hi');
\echo :SQLSTATE
ROLLBACK;
BEGIN READ ONLY;
SELECT count(*) FROM chatstore.history(:'c', 3);
ROLLBACK;
-- a huge bad argument is cut short in the error message
SELECT chatstore.append(:'c', repeat('ü', 100000), 'hi');

-- a database whose encoding is not UTF-8 applies the same rule to the code points it can hold
\set regress_db :DBNAME
SET client_min_messages = warning;  -- Citus notes that it makes a database on the coordinator alone
CREATE DATABASE chatstore_latin1 TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C';
CREATE DATABASE chatstore_euc_jp TEMPLATE template0 ENCODING 'EUC_JP' LC_COLLATE 'C' LC_CTYPE 'C';
RESET client_min_messages;
\c chatstore_latin1
SET client_encoding = 'UTF8';
CREATE EXTENSION chatstore;
SELECT chatstore.create_conversation('alice') AS cl \gset
SELECT chatstore.append(:'cl', 'user', E'\u00a0 \u0085\t');
\echo :SQLSTATE
SELECT seq, encode(convert_to(content, 'UTF8'), 'hex') AS utf8, length(content) AS code_points
FROM chatstore.append(:'cl', 'user', E'\u00ad');
SELECT seq, encode(convert_to(content, 'UTF8'), 'hex') AS utf8 FROM chatstore.append(:'cl', 'user', E'\u00a0\u00e9');
\c chatstore_euc_jp
SET client_encoding = 'UTF8';
CREATE EXTENSION chatstore;
SELECT chatstore.create_conversation('alice') AS cj \gset
SELECT chatstore.append(:'cj', 'user', E'\u3000 \u3000');
\echo :SQLSTATE
SELECT seq, encode(convert_to(content, 'UTF8'), 'hex') AS utf8, length(content) AS code_points
FROM chatstore.append(:'cj', 'user', E'\u3000\u3001');
\c :regress_db
DROP DATABASE chatstore_latin1;
DROP DATABASE chatstore_euc_jp;
