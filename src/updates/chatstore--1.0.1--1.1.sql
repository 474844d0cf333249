-- chatstore 1.0.1 -> 1.1: the seed applications' data layers (keys, lifecycle, tags, search, usage, statistics,
-- export). Every change to src/chatstore.sql since 1.0.1 is repeated here, so an updated install equals a fresh one
-- (test/programs/upgrade compares them).

\echo Use "ALTER EXTENSION chatstore UPDATE TO '1.1'" to load this file. \quit

-- search: the conversation's owner on every message (live and archived), so that search, usage and row-level
-- security need no join. Backfilled from the conversation; the archive's month partitions get it from the parent.
ALTER TABLE chatstore.message ADD COLUMN user_id text;
UPDATE chatstore.message m SET user_id = c.user_id
FROM chatstore.conversation c WHERE c.id OPERATOR(pg_catalog.=) m.conversation_id;
ALTER TABLE chatstore.message ALTER COLUMN user_id SET NOT NULL;
ALTER TABLE chatstore.archived_message ADD COLUMN user_id text;
UPDATE chatstore.archived_message m SET user_id = c.user_id
FROM chatstore.conversation c WHERE c.id OPERATOR(pg_catalog.=) m.conversation_id;
ALTER TABLE chatstore.archived_message ALTER COLUMN user_id SET NOT NULL;

--
-- Search
--

-- What the search index holds for a message: its English lexemes (pg_catalog.english, by name), the tokens that
-- carry ASCII punctuation kept whole and lower-cased (identifiers such as snake_case_name, Class.method, --flag),
-- every pair of adjacent CJK characters, and one lexeme naming the owner that every search ANDs in.
CREATE FUNCTION chatstore.search_vector(user_id text, content text)
RETURNS tsvector
AS 'MODULE_PATHNAME', 'chatstore_search_vector'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION chatstore.search_vector(text, text) IS
    'the search index''s vector of a message: English lexemes, identifiers as written, CJK bigrams and the owner';

CREATE FUNCTION chatstore.search_query(user_id text, query text)
RETURNS tsquery
AS 'MODULE_PATHNAME', 'chatstore_search_query'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION chatstore.search_query(text, text) IS
    'the tsquery that search() runs against search_vector for a user''s query';

CREATE FUNCTION chatstore.search(
    user_id text,
    query text,
    conversation_id uuid DEFAULT NULL,
    role text DEFAULT NULL,
    since timestamptz DEFAULT NULL,
    until timestamptz DEFAULT NULL,
    max_results integer DEFAULT 20,
    after_rank real DEFAULT NULL,
    after_conversation_id uuid DEFAULT NULL,
    after_seq integer DEFAULT NULL)
RETURNS TABLE (conversation_id uuid, seq integer, role text, created_at timestamptz, archived boolean,
               rank real, snippet text)
AS 'MODULE_PATHNAME', 'chatstore_search'
LANGUAGE C STABLE ROWS 20;

COMMENT ON FUNCTION chatstore.search(text, text, uuid, text, timestamptz, timestamptz, integer, real, uuid, integer) IS
    'a user''s live and archived messages matching a query, best first, with a snippet; pass the last row''s rank, conversation_id and seq as after_* for the next page';

-- The search index (each archive partition gets its own, made with the partition). Without a pending list
-- (fastupdate off), so that a search never reads other users' recent appends.
CREATE INDEX message_search_idx
    ON chatstore.message USING gin (chatstore.search_vector(user_id, content)) WITH (fastupdate = off);

-- The search index of every archive partition made before the update (new ones get it when archive makes them).
DO $$
DECLARE
  part text;
BEGIN
  FOR part IN SELECT c.relname FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid
              WHERE i.inhparent OPERATOR(pg_catalog.=) 'chatstore.archived_message'::pg_catalog.regclass LOOP
    EXECUTE pg_catalog.format('CREATE INDEX %I ON chatstore.%I USING gin (chatstore.search_vector(user_id, content))'
                              ' WITH (fastupdate = off)', part OPERATOR(pg_catalog.||) '_search_idx', part);
  END LOOP;
END
$$;

-- Nothing is granted to PUBLIC: chatstore.grant_app() grants the search functions (run it again for app roles
-- granted before the update).
REVOKE ALL ON FUNCTION chatstore.search(text, text, uuid, text, timestamptz, timestamptz, integer, real, uuid, integer),
    chatstore.search_query(text, text), chatstore.search_vector(text, text) FROM PUBLIC;
