-- chatstore 1.0.1 -> 1.1: the seed applications' data layers (keys, lifecycle, tags, search, usage, statistics,
-- export). Every change to src/chatstore.sql since 1.0.1 is repeated here, so an updated install equals a fresh one
-- (test/programs/upgrade compares them).

\echo Use "ALTER EXTENSION chatstore UPDATE TO '1.1'" to load this file. \quit

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
