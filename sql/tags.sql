-- Tags: tag, untag, rename_tag, delete_tag, tags, conversations_by_tag; the tag rules and limits; isolation
-- between users; tags through archive/restore, delete_conversation, purge and erase_user.
-- (an empty store: the suites before this one share the database)
DROP EXTENSION chatstore;
CREATE EXTENSION chatstore;
\pset null '(null)'

-- alice's conversations a1..a5 and bob's b1 (fixed ids, so the errors read the same every run), last active
-- 1, 2, 3, 10 and 30 days ago: relative to now(), so no result depends on today's date
\set a1 '00000000-0000-7000-8000-0000000000a1'
\set a2 '00000000-0000-7000-8000-0000000000a2'
\set a3 '00000000-0000-7000-8000-0000000000a3'
\set a4 '00000000-0000-7000-8000-0000000000a4'
\set a5 '00000000-0000-7000-8000-0000000000a5'
\set b1 '00000000-0000-7000-8000-0000000000b1'
\set missing '00000000-0000-7000-8000-00000000dead'
INSERT INTO chatstore.conversation (id, user_id, title, created_at, last_activity_at)
SELECT id::uuid, u, t, now() - interval '40 days', now() - d * interval '1 day'
FROM (VALUES (:'a1', 'alice', 'a1', 1), (:'a2', 'alice', 'a2', 2), (:'a3', 'alice', 'a3', 3),
             (:'a4', 'alice', 'a4', 10), (:'a5', 'alice', 'a5', 30), (:'b1', 'bob', 'b1', 1)) v(id, u, t, d);

-- tag returns all the conversation's tags, sorted; white space at either end is removed; a tag the
-- conversation has already, or one given twice, is kept once
SELECT chatstore.tag(:'a1', 'work', 'urgent');
SELECT chatstore.tag(:'a1', '  work ', E'\tideas\n', 'ideas', 'Work');
SELECT chatstore.tag(:'a2', 'work');
SELECT chatstore.tag(:'a3', 'work', 'ideas');
SELECT chatstore.tag(:'a4', 'work');
SELECT chatstore.tag(:'a5', 'work', 'old');
SELECT chatstore.tag(:'b1', 'work', 'bob-only');
-- an empty list changes nothing and returns the tags (one way to read a conversation's tags)
SELECT chatstore.tag(:'a2', VARIADIC '{}'::text[]);
-- the tags keep the owner's user id and the time they were put on
SELECT conversation_id, tag, user_id, tagged_at <= now() AS tagged_at_set
FROM chatstore.conversation_tag ORDER BY conversation_id, tag COLLATE "C";

-- tags(): a user's tags with their counts, sorted
SELECT * FROM chatstore.tags('alice');
SELECT * FROM chatstore.tags('bob');
SELECT * FROM chatstore.tags('nobody');

-- untag returns the tags left; a tag the conversation does not have is ignored
SELECT chatstore.untag(:'a1', 'Work', 'no-such-tag');
SELECT chatstore.untag(:'a1', ' urgent ');
SELECT chatstore.tag(:'a1', 'urgent');

-- errors: NULLs 22004, empty or blank tags 22023, a missing conversation P0002
SELECT chatstore.tag(NULL, 'x');
\echo :SQLSTATE
SELECT chatstore.tag(:'a1', VARIADIC NULL::text[]);
\echo :SQLSTATE
SELECT chatstore.tag(:'a1', 'x', NULL);
\echo :SQLSTATE
SELECT chatstore.tag(:'a1', '');
\echo :SQLSTATE
SELECT chatstore.tag(:'a1', E' \t\u3000 ');
\echo :SQLSTATE
SELECT chatstore.tag(:'missing', 'x');
\echo :SQLSTATE
SELECT chatstore.untag(:'missing', 'x');
\echo :SQLSTATE
SELECT chatstore.untag(:'a1', '');
\echo :SQLSTATE

-- limits: a tag at most chatstore.max_tag_chars code points (default 100; 22001 over), a conversation at most
-- chatstore.max_tags_per_conversation tags (default 100; 54000 over, and nothing of that call is kept)
SHOW chatstore.max_tag_chars;
SHOW chatstore.max_tags_per_conversation;
SELECT array_length(chatstore.tag(:'a2', repeat('é', 100)), 1) AS tags_of_a2;
SELECT chatstore.tag(:'a2', repeat('é', 101));
\echo :SQLSTATE
SELECT chatstore.untag(:'a2', repeat('é', 100));
SET chatstore.max_tags_per_conversation = 3;
SELECT chatstore.tag(:'a2', 't1', 't2');
SELECT chatstore.tag(:'a2', 't3');
\echo :SQLSTATE
SELECT chatstore.tag(:'a2', 't2', 'work');
-- lowered below what a conversation has, tag still accepts tags it has, and untag works
SET chatstore.max_tags_per_conversation = 1;
SELECT chatstore.tag(:'a2', 'work');
-- but not one more next to them
SELECT chatstore.tag(:'a2', 'work', 't3');
\echo :SQLSTATE
SELECT chatstore.untag(:'a2', 't1', 't2');
RESET chatstore.max_tags_per_conversation;
-- a tag's limit goes up to 500 code points (an index entry must hold it)
SET chatstore.max_tag_chars = 501;
\echo :SQLSTATE

-- conversations_by_tag: most recent activity first, keyset paging as list_conversations
SELECT title FROM chatstore.conversations_by_tag('alice', 'work');
SELECT title FROM chatstore.conversations_by_tag('alice', ' work ', max_results => 2);
SELECT title FROM chatstore.conversations_by_tag('alice', 'work', max_results => 2, before => :'a2');
SELECT title FROM chatstore.conversations_by_tag('alice', 'work', max_results => 2, before => :'a4');
SELECT title FROM chatstore.conversations_by_tag('alice', 'ideas');
SELECT title FROM chatstore.conversations_by_tag('alice', 'no-such-tag');
-- seed 002's exercise, one call: alice's chats tagged 'work' of the last 7 days
SELECT title, now() - last_activity_at < interval '7 days' AS within_7_days
FROM chatstore.conversations_by_tag('alice', 'work', active_since => '7 days');
SELECT title FROM chatstore.conversations_by_tag('alice', 'work', '7 days', 1);
SELECT title FROM chatstore.conversations_by_tag('alice', 'work', '7 days', 1, :'a1');
-- errors
SELECT * FROM chatstore.conversations_by_tag(NULL, 'work');
\echo :SQLSTATE
SELECT * FROM chatstore.conversations_by_tag('alice', NULL);
\echo :SQLSTATE
SELECT * FROM chatstore.conversations_by_tag('alice', '');
\echo :SQLSTATE
SELECT * FROM chatstore.conversations_by_tag('alice', 'work', max_results => 0);
\echo :SQLSTATE
SELECT * FROM chatstore.conversations_by_tag('alice', 'work', active_since => '-1 day');
\echo :SQLSTATE
SELECT * FROM chatstore.conversations_by_tag('alice', 'work', status => 'paused');
\echo :SQLSTATE
SELECT * FROM chatstore.conversations_by_tag('alice', 'work', before => :'b1');
\echo :SQLSTATE

-- archive and restore: the tags stay on the conversation; the status filter
SELECT chatstore.archive_conversation(:'a3');
SELECT chatstore.tag(:'a3', 'archived-too');
SELECT title, status FROM chatstore.conversations_by_tag('alice', 'work', status => 'archived');
SELECT title, status FROM chatstore.conversations_by_tag('alice', 'work', status => 'active');
SELECT * FROM chatstore.tags('alice');
SELECT chatstore.restore(:'a3');
SELECT chatstore.untag(:'a3', 'archived-too');
SELECT title, status FROM chatstore.conversations_by_tag('alice', 'ideas');

-- rename_tag: returns how many conversations; into a tag a conversation has already, the two merge
SELECT chatstore.tag(:'a4', 'ideas');
SELECT chatstore.rename_tag('alice', 'work', 'job');
SELECT * FROM chatstore.tags('alice');
SELECT chatstore.rename_tag('alice', 'ideas', ' job ');
SELECT * FROM chatstore.tags('alice');
SELECT chatstore.tag(:'a1', VARIADIC '{}');
SELECT chatstore.rename_tag('alice', 'job', 'job');
SELECT chatstore.rename_tag('alice', 'no-such-tag', 'x');
SELECT chatstore.rename_tag('alice', 'job', repeat('x', 101));
\echo :SQLSTATE
SELECT chatstore.rename_tag('alice', 'job', '');
\echo :SQLSTATE
SELECT chatstore.rename_tag('alice', NULL, 'x');
\echo :SQLSTATE
-- bob's 'work' is his own
SELECT * FROM chatstore.tags('bob');

-- delete_tag: returns how many conversations lost it
SELECT chatstore.delete_tag('alice', 'old');
SELECT chatstore.delete_tag('alice', 'old');
SELECT * FROM chatstore.tags('alice');
SELECT chatstore.delete_tag('alice', NULL);
\echo :SQLSTATE

-- isolation: an app role acting for bob sees none of alice's tags and cannot tag her conversations
CREATE ROLE regress_chat_tags_app LOGIN;
SELECT chatstore.grant_app('regress_chat_tags_app');
SET ROLE regress_chat_tags_app;
BEGIN;
SELECT chatstore.set_user('bob');
SELECT * FROM chatstore.tags('bob');
SELECT * FROM chatstore.tags('alice');
SELECT title FROM chatstore.conversations_by_tag('alice', 'job');
SELECT conversation_id, tag FROM chatstore.conversation_tag ORDER BY 1, 2;
SELECT chatstore.rename_tag('alice', 'job', 'bobs-now');
SELECT chatstore.delete_tag('alice', 'job');
SAVEPOINT s;
SELECT chatstore.tag(:'a1', 'from-bob');
\echo :SQLSTATE
ROLLBACK TO s;
SELECT chatstore.untag(:'a1', 'job');
\echo :SQLSTATE
ROLLBACK TO s;
SELECT chatstore.tag(:'b1', 'mine');
COMMIT;
-- an app role with no user declared: 42501, as every function
SELECT * FROM chatstore.tags('bob');
\echo :SQLSTATE
SELECT count(*) FROM chatstore.conversation_tag;
-- the app role reads the table but cannot write it
BEGIN;
SELECT chatstore.set_user('bob');
DELETE FROM chatstore.conversation_tag;
\echo :SQLSTATE
ROLLBACK;
RESET ROLE;
SELECT * FROM chatstore.tags('alice');
SELECT * FROM chatstore.tags('bob');

-- delete_conversation, purge and erase_user take the tags along
SELECT chatstore.delete_conversation(:'a1');
SELECT count(*) AS tags_of_a1 FROM chatstore.conversation_tag WHERE conversation_id = :'a1';
SELECT chatstore.archive_conversation(:'a5');
SELECT chatstore.tag(:'a5', 'purged-soon');
SELECT chatstore.purge('0 seconds');
SELECT count(*) AS tags_of_a5 FROM chatstore.conversation_tag WHERE conversation_id = :'a5';
SELECT chatstore.archive_conversation(:'a2');
SELECT * FROM chatstore.tags('alice');
SELECT chatstore.erase_user('alice');
SELECT count(*) AS tags_of_alice FROM chatstore.conversation_tag WHERE user_id = 'alice';
SELECT * FROM chatstore.tags('bob');

-- the index serves a user's tags (on Citus: in the plan of each shard, whose index is named after it)
SET enable_seqscan = off;
DO $$
DECLARE
    line text;
    uses_index boolean := false;
BEGIN
    FOR line IN EXPLAIN (COSTS OFF)
        SELECT conversation_id FROM chatstore.conversation_tag WHERE user_id = 'bob' AND tag = 'work'
    LOOP
        uses_index := uses_index OR line ~ 'Index Only Scan using conversation_tag_user_tag_idx';
    END LOOP;
    RAISE NOTICE 'an index only scan of conversation_tag_user_tag_idx: %', uses_index;
END
$$;
RESET enable_seqscan;

SELECT chatstore.revoke('regress_chat_tags_app');
DROP ROLE regress_chat_tags_app;
