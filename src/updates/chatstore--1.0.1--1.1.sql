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

-- stats() gains the response times: new OUT columns, so a new result type.
DROP FUNCTION chatstore.stats();

CREATE FUNCTION chatstore.stats(
    OUT conversations bigint,
    OUT active_conversations bigint,
    OUT archived_conversations bigint,
    OUT messages bigint,
    OUT archived_messages bigint,
    OUT avg_messages_per_conversation numeric,
    OUT avg_latency_ms numeric,
    OUT min_latency_ms integer,
    OUT max_latency_ms integer)
RETURNS record
AS 'MODULE_PATHNAME', 'chatstore_stats'
LANGUAGE C STABLE;

COMMENT ON FUNCTION chatstore.stats() IS
    'counts of conversations and messages, live and archived, and the response times (latency_ms) of the messages';

REVOKE ALL ON FUNCTION chatstore.stats() FROM PUBLIC;

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
