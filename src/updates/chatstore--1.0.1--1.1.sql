-- chatstore 1.0.1 -> 1.1: the seed applications' data layers (keys, lifecycle, tags, search, usage, statistics,
-- export). Every change to src/chatstore.sql since 1.0.1 is repeated here, so an updated install equals a fresh one
-- (test/programs/upgrade compares them).

\echo Use "ALTER EXTENSION chatstore UPDATE TO '1.1'" to load this file. \quit

-- Export and import

CREATE FUNCTION chatstore.export_conversation(conversation_id uuid)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'chatstore_export_conversation'
LANGUAGE C STABLE;

COMMENT ON FUNCTION chatstore.export_conversation(uuid) IS
    'the conversation with every message, live or archived, as one JSON document of format chatstore.conversation/1';

CREATE FUNCTION chatstore.import_conversation(data jsonb, as_new boolean DEFAULT false)
RETURNS uuid
AS 'MODULE_PATHNAME', 'chatstore_import_conversation'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.import_conversation(jsonb, boolean) IS
    'validates and stores an export, all or nothing, under its id (a no-op when stored already) or as a new conversation, and returns its id';

CREATE FUNCTION chatstore.transcript(conversation_id uuid)
RETURNS text
AS 'MODULE_PATHNAME', 'chatstore_transcript'
LANGUAGE C STABLE;

COMMENT ON FUNCTION chatstore.transcript(uuid) IS
    'a plain-text transcript of the conversation for people to read';

REVOKE ALL ON FUNCTION chatstore.export_conversation(uuid), chatstore.import_conversation(jsonb, boolean),
    chatstore.transcript(uuid) FROM PUBLIC;
