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
