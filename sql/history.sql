-- History windows: history (by count, by cursor), context (by token budget), history_json.
\pset null '(null)'
SELECT chatstore.create_conversation('alice', 'History tests') AS c \gset
-- a system prompt and 30 turns with known token counts: message n has n tokens (the system prompt 10)
SELECT count(*) FROM chatstore.append(:'c', 'system', 'You are a helpful assistant.', tokens => 10);
SELECT count(*) FROM generate_series(1, 30) n,
  LATERAL chatstore.append(:'c', CASE WHEN n % 2 = 1 THEN 'user' ELSE 'assistant' END, 'turn ' || n, tokens => n);

-- history: the newest max_messages, oldest first
SELECT seq, role, content FROM chatstore.history(:'c', 5);
SELECT count(*) FROM chatstore.history(:'c');
SELECT min(seq), max(seq) FROM chatstore.history(:'c');
-- paging back with before_seq: the 5 messages before seq 27, then before 22
SELECT seq, content FROM chatstore.history(:'c', 5, before_seq => 27);
SELECT seq, content FROM chatstore.history(:'c', 5, before_seq => 22);
SELECT seq, content FROM chatstore.history(:'c', 5, before_seq => 3);
SELECT count(*) FROM chatstore.history(:'c', 5, before_seq => 1);
SELECT count(*) FROM chatstore.history(:'c', 10000);
-- an empty conversation has an empty history
SELECT chatstore.create_conversation('alice') AS empty \gset
SELECT count(*) FROM chatstore.history(:'empty');
-- errors
SELECT chatstore.history(:'c', 0);
\echo :SQLSTATE
SELECT chatstore.history(:'c', 10001);
\echo :SQLSTATE
SELECT chatstore.history(:'c', NULL);
\echo :SQLSTATE
SELECT chatstore.history(NULL);
\echo :SQLSTATE
SELECT chatstore.history('00000000-0000-7000-8000-000000000000');
\echo :SQLSTATE

-- context: the leading system message, then the longest newest run that fits the budget
-- budget 100: system 10, then 30 + 29 + 28 = 87 fits (97), adding 27 would not
SELECT seq, role, content, tokens FROM chatstore.context(:'c', 100);
SELECT sum(tokens) AS used FROM chatstore.context(:'c', 100);
-- the run is contiguous: it stops at the first message that does not fit
SELECT seq, tokens FROM chatstore.context(:'c', 40);
SELECT seq, tokens FROM chatstore.context(:'c', 10);
-- max_messages caps the newest run (the system message comes in addition)
SELECT seq, tokens FROM chatstore.context(:'c', 1000, 2);
-- a budget bigger than the conversation returns all of it
SELECT count(*), sum(tokens) FROM chatstore.context(:'c', 100000);
-- several leading system messages all count; a system message later in the conversation is an ordinary one
SELECT chatstore.create_conversation('alice') AS c2 \gset
SELECT count(*) FROM chatstore.append_many(:'c2', '[
  {"role": "system", "content": "Rule one.", "tokens": 3},
  {"role": "system", "content": "Rule two.", "tokens": 3},
  {"role": "user", "content": "Hi", "tokens": 2},
  {"role": "system", "content": "Mid-conversation note.", "tokens": 4},
  {"role": "assistant", "content": "Hello!", "tokens": 2}]');
SELECT seq, role, content FROM chatstore.context(:'c2', 10);
SELECT seq, role, content FROM chatstore.context(:'c2', 6);
-- the system messages alone exceed the budget: an error, not an over-budget window
SELECT chatstore.context(:'c2', 5);
\echo :SQLSTATE
-- no system message: only the newest run
SELECT chatstore.create_conversation('alice') AS c3 \gset
SELECT count(*) FROM chatstore.append_many(:'c3', '[{"role": "user", "content": "a", "tokens": 5},
  {"role": "assistant", "content": "b", "tokens": 5}, {"role": "user", "content": "c", "tokens": 5}]');
SELECT seq, content FROM chatstore.context(:'c3', 12);
SELECT count(*) FROM chatstore.context(:'c3', 4);
SELECT count(*) FROM chatstore.context(:'empty', 100);
-- errors
SELECT chatstore.context(:'c', 0);
\echo :SQLSTATE
SELECT chatstore.context(:'c', -5);
\echo :SQLSTATE
SELECT chatstore.context(:'c', NULL);
\echo :SQLSTATE
SELECT chatstore.context(:'c', 100, 0);
\echo :SQLSTATE
SELECT chatstore.context(:'c', 100, 10001);
\echo :SQLSTATE
SELECT chatstore.context(NULL, 100);
\echo :SQLSTATE
SELECT chatstore.context('00000000-0000-7000-8000-000000000000', 100);
\echo :SQLSTATE

-- history_json: ready for a chat-completion API
SELECT jsonb_pretty(chatstore.history_json(:'c', 3));
SELECT jsonb_pretty(chatstore.history_json(:'c', 20, max_tokens => 70));
SELECT chatstore.history_json(:'c2', max_tokens => 6);
SELECT chatstore.history_json(:'empty');
-- tool calls round-trip through append_many and history_json
SELECT chatstore.create_conversation('alice') AS c4 \gset
SELECT count(*) FROM chatstore.append_many(:'c4', '[
  {"role": "user", "content": "Weather in Porto?"},
  {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]},
  {"role": "tool", "content": "18°C", "tool_call_id": "call_1"},
  {"role": "assistant", "content": "It is 18°C.", "metadata": {"latency_ms": 300}}]');
SELECT jsonb_pretty(chatstore.history_json(:'c4'));
-- errors
SELECT chatstore.history_json(:'c', 0);
\echo :SQLSTATE
SELECT chatstore.history_json(:'c', NULL);
\echo :SQLSTATE
SELECT chatstore.history_json(:'c', 20, 0);
\echo :SQLSTATE
SELECT chatstore.history_json(NULL);
\echo :SQLSTATE
SELECT chatstore.history_json('00000000-0000-7000-8000-000000000000');
\echo :SQLSTATE

-- archived conversations read the same way
SELECT chatstore.archive_conversation(:'c');
SELECT count(*) FROM chatstore.message WHERE conversation_id = :'c';
SELECT seq, role, content FROM chatstore.history(:'c', 5);
SELECT seq, content FROM chatstore.history(:'c', 3, before_seq => 10);
SELECT seq, tokens FROM chatstore.context(:'c', 100);
SELECT chatstore.history_json(:'c', 2);
SELECT chatstore.restore(:'c');
SELECT seq, role, content FROM chatstore.history(:'c', 5);
