-- chatstore 1.0.1 -> 1.1: the seed applications' data layers (keys, lifecycle, tags, search, usage, statistics,
-- export). Every change to src/chatstore.sql since 1.0.1 is repeated here, so an updated install equals a fresh one
-- (test/programs/upgrade compares them).

\echo Use "ALTER EXTENSION chatstore UPDATE TO '1.1'" to load this file. \quit

-- Keys: conversations named by the application (a keyed conversation's id is derived from (user_id, key)).
ALTER TABLE chatstore.conversation ADD COLUMN key text;

COMMENT ON COLUMN chatstore.conversation.key IS
    'the application''s name for the conversation, unique per user: a keyed conversation''s id is the version 5 UUID of (user_id, key) (chatstore.conversation_id); NULL for conversations made by create_conversation';

CREATE FUNCTION chatstore.conversation_id(user_id text, key text)
RETURNS uuid
AS 'MODULE_PATHNAME', 'chatstore_conversation_id'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION chatstore.conversation_id(text, text) IS
    'the id of user_id''s conversation with this key (a version 5 UUID of the two), whether it exists or not';

CREATE FUNCTION chatstore.get_or_create_conversation(
    user_id text,
    key text,
    title text DEFAULT NULL,
    metadata jsonb DEFAULT NULL,
    model text DEFAULT NULL)
RETURNS uuid
AS 'MODULE_PATHNAME', 'chatstore_get_or_create_conversation'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.get_or_create_conversation(text, text, text, jsonb, text) IS
    'the id of user_id''s conversation with this key, created (with title, metadata, model) when there is none';

CREATE FUNCTION chatstore.append_by_key(
    user_id text,
    key text,
    role text,
    content text,
    metadata jsonb DEFAULT NULL,
    tokens integer DEFAULT NULL,
    model text DEFAULT NULL,
    idempotency_key text DEFAULT NULL)
RETURNS chatstore.message
AS 'MODULE_PATHNAME', 'chatstore_append_by_key'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.append_by_key(text, text, text, text, jsonb, integer, text, text) IS
    'append() to user_id''s conversation with this key, creating the conversation on first use';

-- Not granted to PUBLIC, like every function: chatstore.grant_app() grants them (run it again for each app role).
REVOKE ALL ON FUNCTION chatstore.conversation_id(text, text),
    chatstore.get_or_create_conversation(text, text, text, jsonb, text),
    chatstore.append_by_key(text, text, text, text, jsonb, integer, text, text) FROM PUBLIC;
