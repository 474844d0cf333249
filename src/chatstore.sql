-- chatstore: a store for chatbot conversations.
-- This file is the single source of the install script; the Makefile builds chatstore--VERSION.sql from it.
-- Every reference is schema-qualified, operators included, so nothing a user creates elsewhere can change it.

\echo Use "CREATE EXTENSION chatstore" to load this file. \quit

-- CREATE EXTENSION uses a schema chatstore that exists already: refuse one that a non-superuser prepared, whose
-- owner could otherwise drop or replace what this script creates in it.
DO $$
BEGIN
    IF NOT (SELECT r.rolsuper OR r.oid OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) CURRENT_USER)
            FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
            WHERE n.nspname OPERATOR(pg_catalog.=) 'chatstore') THEN
        RAISE EXCEPTION 'schema chatstore is owned by a role that is neither a superuser nor the user creating the extension'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Drop or rename that schema, then run CREATE EXTENSION chatstore again.';
    END IF;
END
$$;

--
-- Tables
--

CREATE TABLE chatstore.conversation (
    id               uuid        NOT NULL,
    user_id          text        NOT NULL,
    title            text,
    model            text,
    status           text        NOT NULL DEFAULT 'active',
    metadata         jsonb       NOT NULL DEFAULT '{}',
    message_count    bigint      NOT NULL DEFAULT 0,
    token_count      bigint      NOT NULL DEFAULT 0,
    last_seq         integer     NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL,
    last_activity_at timestamptz NOT NULL,
    archived_at      timestamptz,
    state            text        NOT NULL DEFAULT 'active',
    key              text,
    -- last_activity_at rounded down to 10 minutes: what the indexes hold (see below)
    activity_bucket  timestamptz NOT NULL GENERATED ALWAYS AS
        (pg_catalog.date_bin('00:10:00'::pg_catalog.interval, last_activity_at, '2000-01-01 00:00:00+00'::pg_catalog.timestamptz)) STORED,
    CONSTRAINT conversation_pkey PRIMARY KEY (id)
    -- No CHECK constraints: every append updates this row, and PostgreSQL parses and evaluates every CHECK of a
    -- table at each UPDATE (three checks here cost an append about 8% of its CPU time). The functions, which alone
    -- write these tables, keep status in ('active', 'archived'), archived_at set exactly when archived, state in
    -- ('active', 'paused', 'completed') and the counters true; test/invariants.sql checks them after a random
    -- workload.
) WITH (fillfactor = 70);

-- Every append updates its conversation row (counters, last_activity_at). No index holds last_activity_at itself:
-- the indexes hold activity_bucket, which changes once in 10 minutes of a conversation's activity, so nearly every
-- append's update is HOT (the new row version goes to the same page, no index gets an entry), helped by the
-- fillfactor's free space. Orders by activity stay exact: activity_bucket never decreases as last_activity_at
-- grows, so rows read in bucket order are sorted by last_activity_at within each bucket (an incremental sort).

-- list_conversations: one user's conversations of one status and state, most recent activity first (a list of
-- several statuses or states merges their runs; a metadata filter is checked along the run). state is a column of
-- this index rather than an index of its own.
CREATE INDEX conversation_user_activity_idx
    ON chatstore.conversation (user_id, status, state, activity_bucket);

-- archive(): active conversations idle the longest; list_all_conversations.
CREATE INDEX conversation_idle_idx
    ON chatstore.conversation (activity_bucket)
    WHERE status OPERATOR(pg_catalog.=) 'active';

-- list_all_conversations: archived conversations by activity (appends never touch these rows).
CREATE INDEX conversation_archived_activity_idx
    ON chatstore.conversation (activity_bucket)
    WHERE status OPERATOR(pg_catalog.=) 'archived';

-- purge(): archived conversations archived the longest ago.
CREATE INDEX conversation_archived_idx
    ON chatstore.conversation (archived_at)
    WHERE status OPERATOR(pg_catalog.=) 'archived';

COMMENT ON TABLE chatstore.conversation IS
    'chatstore conversations: one row each, with counters kept by the chatstore functions';

COMMENT ON COLUMN chatstore.conversation.activity_bucket IS
    'last_activity_at rounded down to 10 minutes (generated): the indexes hold it instead of last_activity_at, so that an append''s update of the row is HOT';

COMMENT ON COLUMN chatstore.conversation.key IS
    'the application''s name for the conversation, unique per user: a keyed conversation''s id is the version 5 UUID of (user_id, key) (chatstore.conversation_id); NULL for conversations made by create_conversation';

CREATE TABLE chatstore.message (
    conversation_id  uuid        NOT NULL,
    seq              integer     NOT NULL,
    id               uuid        NOT NULL,
    role             text        NOT NULL,
    content          text        NOT NULL,
    metadata         jsonb       NOT NULL DEFAULT '{}',
    model            text,
    tokens           integer     NOT NULL,
    created_at       timestamptz NOT NULL,
    idempotency_key  text,
    input_tokens     integer,
    output_tokens    integer,
    latency_ms       integer,
    user_id          text        NOT NULL,
    CONSTRAINT message_pkey PRIMARY KEY (conversation_id, seq)
    -- No foreign key to the conversation: its check is a trigger and a query at every append (about 8% of an
    -- append's CPU time). Every function that writes a message holds its conversation's row lock, and every path
    -- that deletes a conversation deletes its messages first, in the same transaction; test/invariants.sql checks
    -- that no message lacks its conversation.
);

-- append(..., idempotency_key): one message per key and conversation.
CREATE UNIQUE INDEX message_idempotency_key_idx
    ON chatstore.message (conversation_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- usage() and stats(): messages by creation time. BRIN, because every index on this table is written at every
-- append and messages arrive in time order: a range summary costs an append next to nothing, where a B-tree on
-- created_at would cost a tree descent and page writes each time.
CREATE INDEX message_created_at_idx
    ON chatstore.message USING brin (created_at) WITH (autosummarize = on);

COMMENT ON TABLE chatstore.message IS
    'chatstore messages of active conversations, ordered by seq within a conversation';

-- Archived messages, partitioned by archive month: chatstore creates a month's partition (a plain table named
-- archived_message_YYYYMM, not a member of the extension) when it first archives in that month, and purge()
-- drops whole months. Each partition has its own primary key (conversation_id, archived_at, seq); the parent has
-- none, because pg_dump could not restore a partition whose key is attached to an index of the extension's.
-- Each partition gets the row-level security below (policies do not reach a partition read directly), and is made
-- with the settings that change DDL (default_tablespace, default_table_access_method, ...) pinned, whoever calls.
-- No foreign key: only archive() writes here, with the conversation locked, and a key would make every purge
-- probe every month for every conversation it deletes.
CREATE TABLE chatstore.archived_message (
    conversation_id  uuid        NOT NULL,
    seq              integer     NOT NULL,
    id               uuid        NOT NULL,
    role             text        NOT NULL,
    content          text        NOT NULL,
    metadata         jsonb       NOT NULL DEFAULT '{}',
    model            text,
    tokens           integer     NOT NULL,
    created_at       timestamptz NOT NULL,
    idempotency_key  text,
    archived_at      timestamptz NOT NULL,
    input_tokens     integer,
    output_tokens    integer,
    latency_ms       integer,
    user_id          text        NOT NULL
) PARTITION BY RANGE (archived_at);

COMMENT ON TABLE chatstore.archived_message IS
    'chatstore messages of archived conversations, moved here whole by chatstore.archive(), one partition per archive month';

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

-- One row per run of the background archiver, the newest 1000 kept. Operational history, not chat data: pg_dump
-- does not keep its rows.
CREATE TABLE chatstore.archive_run (
    id                      bigint      GENERATED ALWAYS AS IDENTITY,
    database_name           name        NOT NULL,
    started_at              timestamptz NOT NULL,
    finished_at             timestamptz,
    conversations_archived  bigint      NOT NULL DEFAULT 0,
    messages_archived       bigint      NOT NULL DEFAULT 0,
    conversations_purged    bigint      NOT NULL DEFAULT 0,
    messages_purged         bigint      NOT NULL DEFAULT 0,
    error                   text,
    CONSTRAINT archive_run_pkey PRIMARY KEY (id)
);

COMMENT ON TABLE chatstore.archive_run IS
    'one row per run of the chatstore archiver: when, what it moved and purged, and any error; the last 1000 are kept';

-- The admin roles of this database: chatstore.grant_admin() adds a role, chatstore.revoke() removes it. A role
-- listed here (or a member of one, with INHERIT) acts for every user when it declares none; superusers always do.
-- Admin status is this row, never a privilege, so no blanket GRANT on the schema's functions or tables confers
-- it. Role names, as pg_dump writes grants: a renamed role must be granted again. Row-level security with no
-- policy: only its owner reads or writes it (chatstore's functions, as the extension's owner).
CREATE TABLE chatstore.admin_role (
    role_name        name        NOT NULL,
    CONSTRAINT admin_role_pkey PRIMARY KEY (role_name)
);

COMMENT ON TABLE chatstore.admin_role IS
    'the roles that chatstore.grant_admin() made admins in this database (superusers are admins without a row)';

ALTER TABLE chatstore.admin_role ENABLE ROW LEVEL SECURITY;

-- pg_dump keeps the rows of every chat table (the extension's own objects are recreated by CREATE EXTENSION);
-- the archive's month partitions are ordinary tables, which pg_dump keeps with their rows.
SELECT pg_catalog.pg_extension_config_dump('chatstore.conversation', '');
SELECT pg_catalog.pg_extension_config_dump('chatstore.message', '');
SELECT pg_catalog.pg_extension_config_dump('chatstore.admin_role', '');
SELECT pg_catalog.pg_extension_config_dump('chatstore.conversation_tag', '');

--
-- Functions
--

CREATE FUNCTION chatstore.uuidv7()
RETURNS uuid
AS 'MODULE_PATHNAME', 'chatstore_uuidv7'
LANGUAGE C VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION chatstore.uuidv7() IS
    'a new time-ordered RFC 9562 version 7 UUID';

CREATE FUNCTION chatstore.estimate_tokens(content text)
RETURNS integer
AS 'MODULE_PATHNAME', 'chatstore_estimate_tokens'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION chatstore.estimate_tokens(text) IS
    'the token count that append() stores for a message whose tokens are not given';

-- Conversations

CREATE FUNCTION chatstore.create_conversation(
    user_id text,
    title text DEFAULT NULL,
    metadata jsonb DEFAULT '{}',
    model text DEFAULT NULL)
RETURNS uuid
AS 'MODULE_PATHNAME', 'chatstore_create_conversation'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.create_conversation(text, text, jsonb, text) IS
    'creates a conversation owned by user_id and returns its id';

CREATE FUNCTION chatstore.get_conversation(conversation_id uuid)
RETURNS chatstore.conversation
AS 'MODULE_PATHNAME', 'chatstore_get_conversation'
LANGUAGE C STABLE;

COMMENT ON FUNCTION chatstore.get_conversation(uuid) IS
    'the conversation; P0002 when it does not exist';

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

CREATE FUNCTION chatstore.update_conversation(
    conversation_id uuid,
    title text DEFAULT NULL,
    metadata jsonb DEFAULT NULL,
    model text DEFAULT NULL)
RETURNS chatstore.conversation
AS 'MODULE_PATHNAME', 'chatstore_update_conversation'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.update_conversation(uuid, text, jsonb, text) IS
    'changes title, model and metadata (merged key by key; a JSON null removes a key); NULL arguments leave fields as they are';

CREATE FUNCTION chatstore.set_state(conversation_id uuid, state text)
RETURNS chatstore.conversation
AS 'MODULE_PATHNAME', 'chatstore_set_state'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.set_state(uuid, text) IS
    'sets the application''s lifecycle state of a conversation (active, paused or completed) and returns the conversation';

CREATE FUNCTION chatstore.delete_conversation(conversation_id uuid)
RETURNS boolean
AS 'MODULE_PATHNAME', 'chatstore_delete_conversation'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.delete_conversation(uuid) IS
    'deletes a conversation with all its messages, live and archived';

-- Keys: conversations named by the application

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

-- Messages

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

CREATE FUNCTION chatstore.append_many(conversation_id uuid, messages jsonb)
RETURNS SETOF chatstore.message
AS 'MODULE_PATHNAME', 'chatstore_append_many'
LANGUAGE C VOLATILE ROWS 10;

COMMENT ON FUNCTION chatstore.append_many(uuid, jsonb) IS
    'validates and stores a JSON array of chat-format messages, all or none, and returns them';

-- History

CREATE FUNCTION chatstore.history(
    conversation_id uuid,
    max_messages integer DEFAULT 20,
    before_seq integer DEFAULT NULL)
RETURNS SETOF chatstore.message
AS 'MODULE_PATHNAME', 'chatstore_history'
LANGUAGE C STABLE ROWS 20;

COMMENT ON FUNCTION chatstore.history(uuid, integer, integer) IS
    'the newest max_messages messages (before before_seq when given), oldest first';

CREATE FUNCTION chatstore.context(
    conversation_id uuid,
    max_tokens integer,
    max_messages integer DEFAULT NULL)
RETURNS SETOF chatstore.message
AS 'MODULE_PATHNAME', 'chatstore_context'
LANGUAGE C STABLE ROWS 20;

COMMENT ON FUNCTION chatstore.context(uuid, integer, integer) IS
    'the leading system messages and the longest run of newest messages that fit max_tokens, oldest first';

CREATE FUNCTION chatstore.history_json(
    conversation_id uuid,
    max_messages integer DEFAULT 20,
    max_tokens integer DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'chatstore_history_json'
LANGUAGE C STABLE;

COMMENT ON FUNCTION chatstore.history_json(uuid, integer, integer) IS
    'the history (or, with max_tokens, the context) as a chat-completion messages array';

-- Archive

CREATE FUNCTION chatstore.archive(
    older_than interval DEFAULT NULL,
    max_conversations integer DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'chatstore_archive'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.archive(interval, integer) IS
    'archives active conversations idle longer than older_than (default chatstore.archive_after) and returns how many';

CREATE FUNCTION chatstore.archive_conversation(conversation_id uuid)
RETURNS boolean
AS 'MODULE_PATHNAME', 'chatstore_archive_conversation'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.archive_conversation(uuid) IS
    'archives one conversation; false when it was archived already';

CREATE FUNCTION chatstore.restore(conversation_id uuid)
RETURNS boolean
AS 'MODULE_PATHNAME', 'chatstore_restore'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.restore(uuid) IS
    'makes an archived conversation active again; false when it was active already';

CREATE FUNCTION chatstore.purge(archived_before interval)
RETURNS bigint
AS 'MODULE_PATHNAME', 'chatstore_purge'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.purge(interval) IS
    'deletes the conversations archived longer ago than archived_before, with their messages, and returns how many';

CREATE FUNCTION chatstore.erase_user(user_id text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'chatstore_erase_user'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.erase_user(text) IS
    'deletes every conversation of one user, live and archived, with their messages, and returns how many';

-- Tags

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

-- Other

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

-- Usage

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

CREATE FUNCTION chatstore.daily_volume(
    days integer DEFAULT 7,
    time_zone text DEFAULT 'UTC')
RETURNS TABLE (day date, messages bigint)
AS 'MODULE_PATHNAME', 'chatstore_daily_volume'
LANGUAGE C STABLE ROWS 7;

COMMENT ON FUNCTION chatstore.daily_volume(integer, text) IS
    'messages created on each of the last days days (today included), newest first, days without messages as 0';

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

-- Privileges

-- PARALLEL UNSAFE (the default) on purpose: the row-level security policies call it, so a query under them never
-- runs in parallel workers, where chatstore.user_id_scope = 'transaction' cannot tell a value set in the leader's
-- transaction from a stale one (a worker restores the settings in a transaction of its own) and would count none.
CREATE FUNCTION chatstore.is_admin()
RETURNS boolean
AS 'MODULE_PATHNAME', 'chatstore_is_admin'
LANGUAGE C STABLE;

COMMENT ON FUNCTION chatstore.is_admin() IS
    'whether the calling role acts for every user when chatstore.user_id is not set (a superuser, or a role made admin by grant_admin)';

CREATE FUNCTION chatstore.set_user(user_id text)
RETURNS text
AS 'MODULE_PATHNAME', 'chatstore_set_user'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.set_user(text) IS
    'declares the user the current transaction acts for (chatstore.user_id, until the transaction ends) and returns it';

CREATE FUNCTION chatstore.grant_app(role regrole)
RETURNS void
AS 'MODULE_PATHNAME', 'chatstore_grant_app'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.grant_app(regrole) IS
    'lets a role use the chatstore API and read its own users'' rows, but not write the tables';

CREATE FUNCTION chatstore.grant_admin(role regrole)
RETURNS void
AS 'MODULE_PATHNAME', 'chatstore_grant_admin'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.grant_admin(regrole) IS
    'what grant_app grants, plus archiving in bulk and stats, and makes the role an admin (chatstore.admin_role), who acts for every user';

CREATE FUNCTION chatstore.revoke(role regrole)
RETURNS void
AS 'MODULE_PATHNAME', 'chatstore_revoke'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION chatstore.revoke(regrole) IS
    'takes back what grant_app and grant_admin gave a role, admin status included';

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

-- Nothing is granted to PUBLIC: chatstore.grant_app() and grant_admin() hand out the two levels.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA chatstore FROM PUBLIC;

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

-- Row-level security for roles that read the tables directly: with chatstore.user_id set, that user's rows;
-- without it, every row for an admin and none for an app role.  The functions run as the extension's owner
-- and filter by chatstore.user_id themselves.  Every chat table carries its owner's user id, so each policy is
-- one expression over the row, without a subquery (Citus refuses subqueries in policies); is_admin() remembers
-- its answer for the rest of the scan, so it costs one lookup per query, not one per row.
ALTER TABLE chatstore.conversation ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatstore.message ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatstore.archived_message ENABLE ROW LEVEL SECURITY;
ALTER TABLE chatstore.conversation_tag ENABLE ROW LEVEL SECURITY;

CREATE POLICY conversation_of_user ON chatstore.conversation FOR SELECT
USING (user_id OPERATOR(pg_catalog.=) pg_catalog.current_setting('chatstore.user_id', true)
       OR (COALESCE(pg_catalog.current_setting('chatstore.user_id', true), '') OPERATOR(pg_catalog.=) ''
           AND chatstore.is_admin()));

CREATE POLICY message_of_user ON chatstore.message FOR SELECT
USING (user_id OPERATOR(pg_catalog.=) pg_catalog.current_setting('chatstore.user_id', true)
       OR (COALESCE(pg_catalog.current_setting('chatstore.user_id', true), '') OPERATOR(pg_catalog.=) ''
           AND chatstore.is_admin()));

CREATE POLICY archived_message_of_user ON chatstore.archived_message FOR SELECT
USING (user_id OPERATOR(pg_catalog.=) pg_catalog.current_setting('chatstore.user_id', true)
       OR (COALESCE(pg_catalog.current_setting('chatstore.user_id', true), '') OPERATOR(pg_catalog.=) ''
           AND chatstore.is_admin()));

CREATE POLICY conversation_tag_of_user ON chatstore.conversation_tag FOR SELECT
USING (user_id OPERATOR(pg_catalog.=) pg_catalog.current_setting('chatstore.user_id', true)
       OR (COALESCE(pg_catalog.current_setting('chatstore.user_id', true), '') OPERATOR(pg_catalog.=) ''
           AND chatstore.is_admin()));
