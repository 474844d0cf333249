-- chatstore 1.0.1 -> 1.1: the seed applications' data layers (keys, lifecycle, tags, search, usage, statistics,
-- export). Every change to src/chatstore.sql since 1.0.1 is repeated here, so an updated install equals a fresh one
-- (test/programs/upgrade compares them).

\echo Use "ALTER EXTENSION chatstore UPDATE TO '1.1'" to load this file. \quit

--
-- Usage, latency and model per message; usage(), daily_volume(), storage(); stats() with response times
--

ALTER TABLE chatstore.message
    ADD COLUMN input_tokens integer,
    ADD COLUMN output_tokens integer,
    ADD COLUMN latency_ms integer;

-- (reaches every archive month partition)
ALTER TABLE chatstore.archived_message
    ADD COLUMN input_tokens integer,
    ADD COLUMN output_tokens integer,
    ADD COLUMN latency_ms integer;

-- usage() and stats(): messages by creation time. BRIN, because every index on this table is written at every
-- append and messages arrive in time order: a range summary costs an append next to nothing, where a B-tree on
-- created_at would cost a tree descent and page writes each time.
CREATE INDEX message_created_at_idx
    ON chatstore.message USING brin (created_at) WITH (autosummarize = on);

-- append() takes the usage of the model call at the end of its arguments. A new signature, so the roles given
-- EXECUTE by grant_app() or grant_admin() get it by running them again (as for every function a version adds).
DROP FUNCTION chatstore.append(uuid, text, text, jsonb, integer, text, text);

CREATE FUNCTION chatstore.append(
    conversation_id uuid,
    role text,
    content text,
    metadata jsonb DEFAULT NULL,
    tokens integer DEFAULT NULL,
    model text DEFAULT NULL,
    idempotency_key text DEFAULT NULL,
    input_tokens integer DEFAULT NULL,
    output_tokens integer DEFAULT NULL,
    latency_ms integer DEFAULT NULL)
RETURNS chatstore.message
AS 'MODULE_PATHNAME', 'chatstore_append'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.append(uuid, text, text, jsonb, integer, text, text, integer, integer, integer) IS
    'validates and stores one message at the end of a conversation, with the usage of the model call that made it, and returns it';

REVOKE ALL ON FUNCTION chatstore.append(uuid, text, text, jsonb, integer, text, text, integer, integer, integer) FROM PUBLIC;

-- Tags (issue 11, section 3)

-- Tags: a user's labels on conversations, one row per (conversation, tag). The owner's user id is copied onto the
-- row (it never changes), so a user's tags come from one index and row-level security needs no subquery. The
-- foreign key cascades, so every path that deletes conversations (delete_conversation, purge, erase_user) takes
-- their tags along, including a tag added while the delete waited for it.
CREATE TABLE chatstore.conversation_tag (
    conversation_id  uuid        NOT NULL,
    tag              text        NOT NULL,
    user_id          text        NOT NULL,
    tagged_at        timestamptz NOT NULL,
    CONSTRAINT conversation_tag_pkey PRIMARY KEY (conversation_id, tag),
    CONSTRAINT conversation_tag_conversation_fkey FOREIGN KEY (conversation_id)
        REFERENCES chatstore.conversation (id) ON DELETE CASCADE
);

-- tags(), conversations_by_tag(), rename_tag(), delete_tag(): one user's tags, each with its conversations.
CREATE INDEX conversation_tag_user_tag_idx
    ON chatstore.conversation_tag (user_id, tag, conversation_id);

COMMENT ON TABLE chatstore.conversation_tag IS
    'chatstore tags: one row per tag of a conversation, with the owner''s user id, written by chatstore.tag() and its siblings';

SELECT pg_catalog.pg_extension_config_dump('chatstore.conversation_tag', '');

ALTER TABLE chatstore.conversation_tag ENABLE ROW LEVEL SECURITY;

-- Tags carry their owner's user id, so their policy needs no subquery (is_admin() is a plain call).
CREATE POLICY conversation_tag_of_user ON chatstore.conversation_tag FOR SELECT
USING (user_id OPERATOR(pg_catalog.=) pg_catalog.current_setting('chatstore.user_id', true)
       OR (COALESCE(pg_catalog.current_setting('chatstore.user_id', true), '') OPERATOR(pg_catalog.=) ''
           AND chatstore.is_admin()));

CREATE FUNCTION chatstore.tag(conversation_id uuid, VARIADIC tags text[])
RETURNS text[]
AS 'MODULE_PATHNAME', 'chatstore_tag'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.tag(uuid, text[]) IS
    'adds tags to a conversation and returns all its tags, sorted';

CREATE FUNCTION chatstore.untag(conversation_id uuid, VARIADIC tags text[])
RETURNS text[]
AS 'MODULE_PATHNAME', 'chatstore_untag'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.untag(uuid, text[]) IS
    'removes tags from a conversation and returns the tags it still has, sorted';

CREATE FUNCTION chatstore.rename_tag(user_id text, old_tag text, new_tag text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'chatstore_rename_tag'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.rename_tag(text, text, text) IS
    'renames a user''s tag on all its conversations (merging into new_tag where present) and returns how many';

CREATE FUNCTION chatstore.delete_tag(user_id text, tag text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'chatstore_delete_tag'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.delete_tag(text, text) IS
    'removes a user''s tag from all its conversations and returns how many';

CREATE FUNCTION chatstore.tags(user_id text)
RETURNS TABLE (tag text, conversations bigint)
AS 'MODULE_PATHNAME', 'chatstore_tags'
LANGUAGE C STABLE ROWS 20;

COMMENT ON FUNCTION chatstore.tags(text) IS
    'a user''s tags, sorted, each with the number of conversations that carry it';

CREATE FUNCTION chatstore.conversations_by_tag(
    user_id text,
    tag text,
    active_since interval DEFAULT NULL,
    max_results integer DEFAULT 50,
    before uuid DEFAULT NULL,
    status text DEFAULT NULL)
RETURNS SETOF chatstore.conversation
AS 'MODULE_PATHNAME', 'chatstore_conversations_by_tag'
LANGUAGE C STABLE ROWS 50;

COMMENT ON FUNCTION chatstore.conversations_by_tag(text, text, interval, integer, uuid, text) IS
    'one page of a user''s conversations carrying a tag (active within active_since), most recent activity first; pass the last id of a page as before to get the next';

REVOKE ALL ON FUNCTION chatstore.tag(uuid, text[]), chatstore.untag(uuid, text[]),
    chatstore.rename_tag(text, text, text), chatstore.delete_tag(text, text), chatstore.tags(text),
    chatstore.conversations_by_tag(text, text, interval, integer, uuid, text) FROM PUBLIC;
-- lifecycle: the application's state of a conversation (active, paused, completed), chatstore.set_state, and
-- filters by state and metadata in list_conversations and stats.
ALTER TABLE chatstore.conversation
    ADD COLUMN state text NOT NULL DEFAULT 'active',
    ADD CONSTRAINT conversation_state_check
        CHECK (state OPERATOR(pg_catalog.=) ANY (ARRAY['active', 'paused', 'completed']::pg_catalog.text[]));

DROP INDEX chatstore.conversation_user_activity_idx;
CREATE INDEX conversation_user_activity_idx
    ON chatstore.conversation (user_id, status, state, last_activity_at, id);

-- list_conversations and stats get new arguments (stats also new columns): the old functions are renamed, the new
-- ones created and the old ones dropped. Their grants are not copied: a GRANT in an extension script is recorded as
-- the extension's initial privilege, which pg_dump leaves out, so a restore would lose it. The warning at the end
-- names the roles to grant again.
ALTER FUNCTION chatstore.list_conversations(text, text, integer, uuid) RENAME TO list_conversations_1_0_1;
ALTER FUNCTION chatstore.stats() RENAME TO stats_1_0_1;

CREATE FUNCTION chatstore.list_conversations(
    user_id text,
    status text DEFAULT 'active',
    max_results integer DEFAULT 50,
    before uuid DEFAULT NULL,
    state text DEFAULT NULL,
    metadata jsonb DEFAULT NULL)
RETURNS SETOF chatstore.conversation
AS 'MODULE_PATHNAME', 'chatstore_list_conversations'
LANGUAGE C STABLE ROWS 50;

COMMENT ON FUNCTION chatstore.list_conversations(text, text, integer, uuid, text, jsonb) IS
    'one page of a user''s conversations, most recent activity first, optionally of one state and containing metadata; pass the last id of a page as before to get the next';

CREATE FUNCTION chatstore.set_state(conversation_id uuid, state text)
RETURNS chatstore.conversation
AS 'MODULE_PATHNAME', 'chatstore_set_state'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.set_state(uuid, text) IS
    'sets the application''s lifecycle state of a conversation (active, paused or completed) and returns the conversation';

CREATE FUNCTION chatstore.stats(
    state text DEFAULT NULL,
    metadata jsonb DEFAULT NULL,
    OUT conversations bigint,
    OUT active_conversations bigint,
    OUT archived_conversations bigint,
    OUT messages bigint,
    OUT archived_messages bigint,
    OUT avg_messages_per_conversation numeric,
    OUT state_active bigint,
    OUT state_paused bigint,
    OUT state_completed bigint,
    OUT avg_latency_ms numeric,
    OUT min_latency_ms integer,
    OUT max_latency_ms integer)
RETURNS record
AS 'MODULE_PATHNAME', 'chatstore_stats'
LANGUAGE C STABLE;

COMMENT ON FUNCTION chatstore.stats(text, jsonb) IS
    'counts of conversations and messages, live and archived, of conversations per state, and the response times (latency_ms) of their messages; optionally of one state and containing metadata';

REVOKE ALL ON FUNCTION chatstore.list_conversations(text, text, integer, uuid, text, jsonb),
    chatstore.set_state(uuid, text), chatstore.stats(text, jsonb) FROM PUBLIC;

DROP FUNCTION chatstore.list_conversations_1_0_1(text, text, integer, uuid);
DROP FUNCTION chatstore.stats_1_0_1();
-- Keys: conversations named by the application (a keyed conversation's id is derived from (user_id, key)).
ALTER TABLE chatstore.conversation ADD COLUMN key text;

-- Appends update their conversation row HOT: the indexes hold activity_bucket (last_activity_at rounded down to 10
-- minutes, generated) instead of last_activity_at, and the table keeps free space in each page. Adding the column
-- rewrites the table (with the new fillfactor).
-- No CHECK constraints on the conversation and no foreign key from message: PostgreSQL evaluates them at every
-- append (the checks parsed again at each UPDATE, the key a trigger and a query), about 16% of an append's CPU
-- time; the functions, which alone write these tables, keep what they said (test/invariants.sql checks it).
ALTER TABLE chatstore.conversation
    DROP CONSTRAINT conversation_status_check,
    DROP CONSTRAINT conversation_archived_at_check,
    DROP CONSTRAINT conversation_state_check;
ALTER TABLE chatstore.message DROP CONSTRAINT message_conversation_fkey;
ALTER TABLE chatstore.conversation SET (fillfactor = 70);
ALTER TABLE chatstore.conversation
    ADD COLUMN activity_bucket timestamptz NOT NULL GENERATED ALWAYS AS
        (pg_catalog.date_bin('00:10:00'::pg_catalog.interval, last_activity_at, '2000-01-01 00:00:00+00'::pg_catalog.timestamptz)) STORED;
COMMENT ON COLUMN chatstore.conversation.activity_bucket IS
    'last_activity_at rounded down to 10 minutes (generated): the indexes hold it instead of last_activity_at, so that an append''s update of the row is HOT';
DROP INDEX chatstore.conversation_user_activity_idx;
CREATE INDEX conversation_user_activity_idx
    ON chatstore.conversation (user_id, status, state, activity_bucket);
DROP INDEX chatstore.conversation_idle_idx;
CREATE INDEX conversation_idle_idx
    ON chatstore.conversation (activity_bucket)
    WHERE status OPERATOR(pg_catalog.=) 'active';
-- list_all_conversations: archived conversations by activity (appends never touch these rows).
CREATE INDEX conversation_archived_activity_idx
    ON chatstore.conversation (activity_bucket)
    WHERE status OPERATOR(pg_catalog.=) 'archived';

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
    idempotency_key text DEFAULT NULL,
    input_tokens integer DEFAULT NULL,
    output_tokens integer DEFAULT NULL,
    latency_ms integer DEFAULT NULL)
RETURNS chatstore.message
AS 'MODULE_PATHNAME', 'chatstore_append_by_key'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.append_by_key(text, text, text, text, jsonb, integer, text, text, integer, integer, integer) IS
    'append() to user_id''s conversation with this key, creating the conversation on first use';

-- Not granted to PUBLIC, like every function: chatstore.grant_app() grants them (run it again for each app role).
REVOKE ALL ON FUNCTION chatstore.conversation_id(text, text),
    chatstore.get_or_create_conversation(text, text, text, jsonb, text),
    chatstore.append_by_key(text, text, text, text, jsonb, integer, text, text, integer, integer, integer) FROM PUBLIC;


CREATE FUNCTION chatstore.usage(
    since timestamptz,
    until timestamptz DEFAULT NULL,
    group_by text[] DEFAULT '{day}',
    for_user text DEFAULT NULL,
    time_zone text DEFAULT 'UTC')
RETURNS TABLE (
    day date,
    model text,
    user_id text,
    messages bigint,
    input_tokens bigint,
    output_tokens bigint,
    total_tokens bigint,
    avg_latency_ms numeric,
    min_latency_ms integer,
    max_latency_ms integer)
AS 'MODULE_PATHNAME', 'chatstore_usage'
LANGUAGE C STABLE ROWS 30;

COMMENT ON FUNCTION chatstore.usage(timestamptz, timestamptz, text[], text, text) IS
    'messages, tokens and latency of the messages created in [since, until), live and archived, totalled per day, model and/or user';

REVOKE ALL ON FUNCTION chatstore.usage(timestamptz, timestamptz, text[], text, text) FROM PUBLIC;

CREATE FUNCTION chatstore.daily_volume(
    days integer DEFAULT 7,
    time_zone text DEFAULT 'UTC')
RETURNS TABLE (day date, messages bigint)
AS 'MODULE_PATHNAME', 'chatstore_daily_volume'
LANGUAGE C STABLE ROWS 7;

COMMENT ON FUNCTION chatstore.daily_volume(integer, text) IS
    'messages created on each of the last days days (today included), newest first, days without messages as 0';

REVOKE ALL ON FUNCTION chatstore.daily_volume(integer, text) FROM PUBLIC;

CREATE FUNCTION chatstore.storage(
    OUT live_bytes bigint,
    OUT archive_bytes bigint,
    OUT archive_months integer,
    OUT oldest_active_conversation uuid,
    OUT oldest_active_idle interval,
    OUT last_run_started_at timestamptz,
    OUT last_run_finished_at timestamptz,
    OUT last_run_outcome text,
    OUT last_run_error text,
    OUT relations jsonb)
RETURNS record
AS 'MODULE_PATHNAME', 'chatstore_storage'
LANGUAGE C STABLE;

COMMENT ON FUNCTION chatstore.storage() IS
    'for operators: the size of the live and archive storage (per relation and archive month), the idlest active conversation and the archiver''s last run';

REVOKE ALL ON FUNCTION chatstore.storage() FROM PUBLIC;

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

-- Row-level security without subqueries (Citus refuses them in policies): messages are filtered by their own
-- user_id instead of looking up their conversation, and the conversation's policy calls is_admin() directly
-- instead of through an initplan (is_admin() remembers its answer for the rest of the scan).
DROP POLICY conversation_of_user ON chatstore.conversation;
CREATE POLICY conversation_of_user ON chatstore.conversation FOR SELECT
USING (user_id OPERATOR(pg_catalog.=) pg_catalog.current_setting('chatstore.user_id', true)
       OR (COALESCE(pg_catalog.current_setting('chatstore.user_id', true), '') OPERATOR(pg_catalog.=) ''
           AND chatstore.is_admin()));

DROP POLICY message_of_user ON chatstore.message;
CREATE POLICY message_of_user ON chatstore.message FOR SELECT
USING (user_id OPERATOR(pg_catalog.=) pg_catalog.current_setting('chatstore.user_id', true)
       OR (COALESCE(pg_catalog.current_setting('chatstore.user_id', true), '') OPERATOR(pg_catalog.=) ''
           AND chatstore.is_admin()));

DROP POLICY archived_message_of_user ON chatstore.archived_message;
CREATE POLICY archived_message_of_user ON chatstore.archived_message FOR SELECT
USING (user_id OPERATOR(pg_catalog.=) pg_catalog.current_setting('chatstore.user_id', true)
       OR (COALESCE(pg_catalog.current_setting('chatstore.user_id', true), '') OPERATOR(pg_catalog.=) ''
           AND chatstore.is_admin()));

-- Every archive month partition has its own copy of the archive's policy (a partition read directly does not use
-- the parent's): replace it the same way (the update to 1.0.1 gave every partition one).
DO $$
DECLARE
    part record;
BEGIN
    FOR part IN
        SELECT n.nspname, c.relname
        FROM pg_catalog.pg_inherits i
        JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid
        JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
        WHERE i.inhparent OPERATOR(pg_catalog.=) 'chatstore.archived_message'::pg_catalog.regclass
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY', part.nspname, part.relname);
        EXECUTE pg_catalog.format('DROP POLICY IF EXISTS archived_message_of_user ON %I.%I', part.nspname, part.relname);
        EXECUTE pg_catalog.format(
            'CREATE POLICY archived_message_of_user ON %I.%I FOR SELECT'
            ' USING (user_id OPERATOR(pg_catalog.=) pg_catalog.current_setting(''chatstore.user_id'', true)'
            ' OR (COALESCE(pg_catalog.current_setting(''chatstore.user_id'', true), '''') OPERATOR(pg_catalog.=) '''''
            ' AND chatstore.is_admin()))', part.nspname, part.relname);
    END LOOP;
END
$$;

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

CREATE FUNCTION chatstore.search_rank(content text, query text)
RETURNS real
AS 'MODULE_PATHNAME', 'chatstore_search_rank'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION chatstore.search_rank(text, text) IS
    'how well a message''s content matches a search query: the order of search()''s results';

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
    after_seq integer DEFAULT NULL,
    tag text DEFAULT NULL,
    state text DEFAULT NULL)
RETURNS TABLE (conversation_id uuid, seq integer, role text, created_at timestamptz, archived boolean,
               rank real, snippet text)
AS 'MODULE_PATHNAME', 'chatstore_search'
LANGUAGE C STABLE ROWS 20;

COMMENT ON FUNCTION chatstore.search(text, text, uuid, text, timestamptz, timestamptz, integer, real, uuid, integer, text, text) IS
    'a user''s live and archived messages matching a query, best first, with a snippet; pass the last row''s rank, conversation_id and seq as after_* for the next page; tag and state filter by conversation';

-- The search index (each archive partition gets its own, made with the partition). Appends add their entries to
-- its pending list (fastupdate on), which PostgreSQL merges into the index in bulk: inserting a message's entries
-- one by one into the index's trees made an append about 1.3 times slower (make bench, append-cost). The list is
-- kept short (256 kB, gin_pending_list_limit), since every search also reads it: the append that fills it, or
-- autovacuum, merges it. chatstore.set_search(false) drops it (and set_search(true) makes it again, as here): an
-- update script must not take it for granted.
CREATE INDEX message_search_idx
    ON chatstore.message USING gin (chatstore.search_vector(user_id, content))
    WITH (fastupdate = on, gin_pending_list_limit = 256);

CREATE FUNCTION chatstore.set_search(enabled boolean)
RETURNS boolean
AS 'MODULE_PATHNAME', 'chatstore_set_search'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.set_search(boolean) IS
    'turns search on (builds the search indexes of the live table and the archive partitions) or off (drops them: appends write no search entries, search() refuses); false when it was so already; superusers only';

-- superusers only (it is DDL on the extension's tables)
REVOKE ALL ON FUNCTION chatstore.set_search(boolean) FROM PUBLIC;

-- The search index of every archive partition made before the update (new ones get it when archive makes them), with
-- a pending list as archive makes it (src/archive.c: archive merges it at the end of each call).
DO $$
DECLARE
  part text;
BEGIN
  FOR part IN SELECT c.relname FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid
              WHERE i.inhparent OPERATOR(pg_catalog.=) 'chatstore.archived_message'::pg_catalog.regclass LOOP
    EXECUTE pg_catalog.format('CREATE INDEX %I ON chatstore.%I USING gin (chatstore.search_vector(user_id, content))'
                              ' WITH (fastupdate = on)', part OPERATOR(pg_catalog.||) '_search_idx', part);
  END LOOP;
END
$$;

-- Nothing is granted to PUBLIC: chatstore.grant_app() grants the search functions (run it again for app roles
-- granted before the update).
REVOKE ALL ON FUNCTION chatstore.search(text, text, uuid, text, timestamptz, timestamptz, integer, real, uuid, integer, text, text),
    chatstore.search_query(text, text), chatstore.search_vector(text, text), chatstore.search_rank(text, text)
    FROM PUBLIC;

CREATE FUNCTION chatstore.list_all_conversations(
    status text DEFAULT 'active',
    max_results integer DEFAULT 50,
    before uuid DEFAULT NULL,
    state text DEFAULT NULL,
    metadata jsonb DEFAULT NULL)
RETURNS SETOF chatstore.conversation
AS 'MODULE_PATHNAME', 'chatstore_list_all_conversations'
LANGUAGE C STABLE ROWS 50;

COMMENT ON FUNCTION chatstore.list_all_conversations(text, integer, uuid, text, jsonb) IS
    'admin: one page of every user''s conversations, most recent activity first, with list_conversations'' filters; pass the last id of a page as before to get the next';

CREATE FUNCTION chatstore.rewind(conversation_id uuid, to_seq integer)
RETURNS integer
AS 'MODULE_PATHNAME', 'chatstore_rewind'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.rewind(uuid, integer) IS
    'removes the messages after to_seq (0: all of them) from an active conversation, so that the next append gets to_seq + 1; returns how many it removed';

-- Nothing is granted to PUBLIC: grant_app() grants rewind, grant_admin() list_all_conversations (run them again for
-- roles granted before the update).
REVOKE ALL ON FUNCTION chatstore.list_all_conversations(text, integer, uuid, text, jsonb),
    chatstore.rewind(uuid, integer) FROM PUBLIC;

-- Citus

CREATE FUNCTION chatstore.distribute(shard_count integer DEFAULT 32)
RETURNS boolean
AS 'MODULE_PATHNAME', 'chatstore_distribute'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.distribute(integer) IS
    'on a Citus coordinator: distributes the chat tables by conversation id, colocated, moving their rows to the workers; false when distributed already';

CREATE FUNCTION chatstore.undistribute_on_drop()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'chatstore_undistribute_on_drop'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.undistribute_on_drop() IS
    'event trigger of DROP EXTENSION: before chatstore is dropped, removes its distributed tables'' shards from the Citus workers';

-- DROP EXTENSION chatstore on a Citus coordinator: the shards go first (Citus's own drop trigger does not see the
-- tables an extension takes with it); any other DROP EXTENSION costs a look at the statement.
CREATE EVENT TRIGGER chatstore_undistribute_on_drop ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION')
    EXECUTE FUNCTION chatstore.undistribute_on_drop();

COMMENT ON EVENT TRIGGER chatstore_undistribute_on_drop IS
    'removes chatstore''s shards from the Citus workers before DROP EXTENSION chatstore';

CREATE FUNCTION chatstore.refuse_trigger()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'chatstore_refuse_trigger'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.refuse_trigger() IS
    'event trigger of CREATE TRIGGER: refuses a trigger on a chatstore table (a Citus shard of one included) unless a superuser makes it';

-- chatstore writes to its tables as the extension's owner, a superuser, and a trigger runs as whoever fires it (its
-- WHEN clause too): a trigger there that a non-superuser makes (a role with TRIGGER on a chat table, which a blanket
-- GRANT ALL gives) is refused when it is made, on every node, Citus workers' shards included, where chatstore's
-- check before each write (which also refuses older such triggers) does not reach. It costs nothing but at CREATE
-- TRIGGER.
CREATE EVENT TRIGGER chatstore_refuse_trigger ON ddl_command_end
    WHEN TAG IN ('CREATE TRIGGER')
    EXECUTE FUNCTION chatstore.refuse_trigger();

COMMENT ON EVENT TRIGGER chatstore_refuse_trigger IS
    'refuses a trigger on a chatstore table (a Citus shard of one included) unless a superuser makes it';

REVOKE ALL ON FUNCTION chatstore.distribute(integer), chatstore.undistribute_on_drop(),
    chatstore.refuse_trigger() FROM PUBLIC;

-- On a Citus worker (Citus creates chatstore there when the coordinator distributes it), the shards' row-level
-- security policies call is_admin(), and an application role's own queries over the chat tables may call the pure
-- functions (search_vector, search_query, search_rank, estimate_tokens, uuidv7), as the role that reads through
-- the coordinator: grant_app() granted them on the coordinator only (Citus does not pass function grants on to the
-- workers). There, every role may execute these; nothing else of chatstore.
DO $$
BEGIN
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_local_group') IS NOT NULL THEN
        IF (SELECT g.worker FROM (SELECT pg_catalog.bool_or(groupid OPERATOR(pg_catalog.<>) 0) AS worker
                                  FROM pg_catalog.pg_dist_local_group) g) THEN
            GRANT EXECUTE ON FUNCTION chatstore.is_admin(), chatstore.search_vector(text, text),
                chatstore.search_query(text, text), chatstore.search_rank(text, text),
                chatstore.estimate_tokens(text), chatstore.uuidv7() TO PUBLIC;
        END IF;
    END IF;
END
$$;

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

-- Migration in one call

CREATE FUNCTION chatstore.import_langchain(source regclass, for_user text DEFAULT NULL, users jsonb DEFAULT NULL)
RETURNS TABLE (user_id text, key text, conversation_id uuid, status text, messages integer, sqlstate text,
               error text, detail text)
AS 'MODULE_PATHNAME', 'chatstore_import_langchain'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.import_langchain(regclass, text, jsonb) IS
    'stores each session of a LangChain PostgresChatMessageHistory table as the keyed conversation of its user, all or nothing per session, importing only what is new when run again; one row per session';

CREATE FUNCTION chatstore.import_sessions(source regclass, time_zone text DEFAULT 'UTC')
RETURNS TABLE (user_id text, key text, conversation_id uuid, status text, messages integer, sqlstate text,
               error text, detail text)
AS 'MODULE_PATHNAME', 'chatstore_import_sessions'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.import_sessions(regclass, text) IS
    'stores each (user_id, session_id) of a messages table (id, session_id, user_id, role, content, created_at) as the keyed conversation of that user, all or nothing per session, importing only what is new when run again; one row per session';

REVOKE ALL ON FUNCTION chatstore.import_langchain(regclass, text, jsonb), chatstore.import_sessions(regclass, text)
    FROM PUBLIC;

-- 1.1 replaced append, list_conversations and stats (new arguments or columns) and added functions: the roles that
-- used chatstore keep what they had only after chatstore.grant_app() or grant_admin() runs for them again. (A GRANT
-- here would be recorded as the extension's initial privilege, which pg_dump leaves out.)
DO $$
DECLARE
    roles text;
BEGIN
    SELECT pg_catalog.string_agg(DISTINCT pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(f.grantee)), ', ')
    INTO roles
    FROM pg_catalog.pg_proc p CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) f
    WHERE p.oid OPERATOR(pg_catalog.=) 'chatstore.history(uuid, integer, integer)'::pg_catalog.regprocedure
      AND f.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
      AND f.grantee OPERATOR(pg_catalog.<>) p.proowner AND f.grantee OPERATOR(pg_catalog.<>) 0;
    IF roles IS NOT NULL THEN
        RAISE WARNING 'chatstore 1.1: grant these roles their level again: %', roles
            USING HINT = 'Run SELECT chatstore.grant_app(''role'') (or grant_admin) for each: 1.1 replaced append, list_conversations and stats and added functions.';
    END IF;
END
$$;
