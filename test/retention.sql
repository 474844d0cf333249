-- pgTAP: retention. purge() deletes conversations archived before its cutoff, dropping the archive's month
-- partitions that end by the cutoff whole and deleting row by row only in the month the cutoff falls in;
-- erase_user() deletes one user's conversations, live and archived; partitions are made as needed.
-- No expectation depends on the session's time zone (pinned to UTC, as the partitions are) or on the date: the
-- partitions archive() makes are checked against the archived_at it recorded, not against now() (archive() reads
-- the clock, which may pass a month's end during the test); test/programs/time-travel runs this file at month ends.
BEGIN;
SELECT plan(33);
SET LOCAL TimeZone = 'UTC';
-- the test's helper functions live in a schema of their own (not pg_temp: on Citus, queries over the chat tables
-- run them on the workers, where a session's temporary functions do not exist); dropped at the end
CREATE SCHEMA retention_test;

-- month partitions: archive() creates this month's and next month's
CREATE FUNCTION retention_test.part(m timestamptz) RETURNS text LANGUAGE sql AS
$$ SELECT 'archived_message_' || to_char(date_trunc('month', m AT TIME ZONE 'UTC'), 'YYYYMM') $$;
CREATE FUNCTION retention_test.partitions() RETURNS text[] LANGUAGE sql AS
$$ SELECT coalesce(array_agg(c.relname::text ORDER BY c.relname), '{}') FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
   WHERE i.inhparent = 'chatstore.archived_message'::regclass $$;
-- a conversation with n messages, archived at time "at" (tests move time by hand: a past month's partition is made
-- as chatstore makes them, and the rows are moved into it)
CREATE FUNCTION retention_test.archived(who text, n int, at timestamptz) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
  c uuid := chatstore.create_conversation(who);
  p text := retention_test.part(at);
  m timestamptz := date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
BEGIN
  PERFORM chatstore.append(c, 'user', 'message ' || k) FROM generate_series(1, n) k;
  PERFORM chatstore.archive_conversation(c);
  IF to_regclass('chatstore.' || p) IS NULL THEN
    EXECUTE format('CREATE TABLE chatstore.%I (LIKE chatstore.archived_message INCLUDING DEFAULTS INCLUDING CONSTRAINTS,'
                   ' PRIMARY KEY (conversation_id, archived_at, seq))', p);
    EXECUTE format('ALTER TABLE chatstore.archived_message ATTACH PARTITION chatstore.%I FOR VALUES FROM (%L) TO (%L)',
                   p, m, m + interval '1 month');
  END IF;
  UPDATE chatstore.archived_message SET archived_at = at WHERE conversation_id = c;
  UPDATE chatstore.conversation SET archived_at = at WHERE id = c;
  RETURN c;
END $$;

-- (on a distributed install distribute() made two months ahead: those, whichever month it ran in)
CREATE FUNCTION retention_test.distributed() RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE d boolean := false;
BEGIN
  IF to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
    EXECUTE 'SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition WHERE logicalrelid = ''chatstore.conversation''::regclass)'
      INTO d;
  END IF;
  RETURN d;
END $$;
SELECT is(retention_test.partitions(),
          CASE WHEN retention_test.distributed()
               THEN (SELECT ARRAY[retention_test.part(m), retention_test.part(m + interval '1 month')]
                     FROM (SELECT to_timestamp(substr(min(p), 18), 'YYYYMM') AS m FROM unnest(retention_test.partitions()) p) f)
               ELSE '{}' END,
          'no partition before anything is archived (on a distributed install, the two months distribute() made)');
SELECT chatstore.create_conversation('nobody') AS idle \gset
UPDATE chatstore.conversation SET last_activity_at = now() - interval '1 day' WHERE id = :'idle';
SELECT is(chatstore.archive('1 hour'), 1::bigint, 'archive() archives');
-- (the time archive() recorded fetched first: on Citus a function in a query over a chat table runs on a shard)
SELECT archived_at AS idle_at FROM chatstore.conversation WHERE id = :'idle' \gset
SELECT is(retention_test.partitions(), ARRAY[retention_test.part(:'idle_at'), retention_test.part(:'idle_at'::timestamptz + interval '1 month')],
          'and made the partitions of this month and the next');
SELECT is(chatstore.restore(:'idle'), true, 'restore');

-- archived conversations in four months: 4 months ago, 2 months ago (two, on either side of a cutoff), and now
SELECT retention_test.archived('alice', 3, date_trunc('month', now()) - interval '4 months' + interval '10 days') AS old1 \gset
SELECT retention_test.archived('bob', 5, date_trunc('month', now()) - interval '4 months' + interval '20 days') AS old2 \gset
SELECT retention_test.archived('alice', 2, date_trunc('month', now()) - interval '2 months' + interval '3 days') AS mid_early \gset
SELECT retention_test.archived('bob', 4, date_trunc('month', now()) - interval '2 months' + interval '25 days') AS mid_late \gset
SELECT retention_test.archived('alice', 6, now() - interval '1 minute') AS recent \gset
SELECT chatstore.create_conversation('alice') AS live \gset
SELECT count(*) FROM generate_series(1, 7) k, LATERAL chatstore.append(:'live', 'user', 'live ' || k) \g /dev/null
-- (the partitions named by the rows' archive times: on Citus a row's tableoid is its shard's)
SELECT is((WITH a AS MATERIALIZED (SELECT DISTINCT archived_at FROM chatstore.archived_message)
           SELECT count(*) FROM unnest(retention_test.partitions()) p
           WHERE p IN (SELECT retention_test.part(archived_at) FROM a)),
          3::bigint, 'archived messages in three month partitions');
CREATE TEMP TABLE parts_before AS SELECT unnest(retention_test.partitions()) AS p;
SELECT is((SELECT count(*) FROM chatstore.archived_message), 20::bigint, '20 archived messages');

-- an archived conversation in a past month still reads and restores (its archived_at names the partition)
SELECT is((SELECT array_agg(content ORDER BY seq) FROM chatstore.history(:'old1')), ARRAY['message 1', 'message 2', 'message 3'],
          'history of a conversation archived 4 months ago');
SELECT is((SELECT count(*) FROM chatstore.context(:'mid_late', 1000)), 4::bigint, 'context of one archived 2 months ago');

-- purge with a cutoff in the middle of the month two months back
SELECT (now() - (date_trunc('month', now()) - interval '2 months' + interval '14 days')) AS age \gset
CREATE TEMP TABLE old_month AS SELECT retention_test.part(date_trunc('month', now()) - interval '4 months') AS p;
SELECT is(chatstore.purge(:'age'), 3::bigint, 'purge deletes the 3 conversations archived before the cutoff');
SELECT ok(NOT (SELECT p FROM old_month) = ANY (retention_test.partitions()), 'the month wholly before the cutoff is dropped whole');
SELECT is(retention_test.partitions(), (SELECT array_agg(p ORDER BY p) FROM parts_before WHERE p <> (SELECT p FROM old_month)),
          'the later months stay');
-- (counts of given conversations fetched first: on Citus a query of conversations on one shard, is() included, runs
-- on that shard)
SELECT count(*) AS n FROM chatstore.conversation WHERE id IN (:'old1', :'old2', :'mid_early') \gset
SELECT is(:n::bigint, 0::bigint, 'purged conversations are gone');
SELECT count(*) AS n FROM chatstore.archived_message WHERE conversation_id IN (:'old1', :'old2', :'mid_early') \gset
SELECT is(:n::bigint, 0::bigint, 'with their messages');
SELECT count(*) AS n FROM chatstore.archived_message WHERE conversation_id = :'mid_late' \gset
SELECT is(:n::bigint, 4::bigint, 'the month of the cutoff keeps what was archived after it');
SELECT count(*) AS n FROM chatstore.archived_message WHERE conversation_id = :'recent' \gset
SELECT is(:n::bigint, 6::bigint, 'this month is untouched');
SELECT count(*) AS n FROM chatstore.message WHERE conversation_id = :'live' \gset
SELECT is(:n::bigint, 7::bigint, 'live conversations are untouched');
SELECT is(chatstore.purge(:'age'), 0::bigint, 'purging again finds nothing');
SELECT is(chatstore.restore(:'mid_late'), true, 'a conversation that survived a purge restores');
SELECT count(*) AS n FROM chatstore.message WHERE conversation_id = :'mid_late' \gset
SELECT is(:n::bigint, 4::bigint, 'with all its messages');

-- purge acting for one user touches only that user's conversations
SELECT retention_test.archived('carol', 2, now() - interval '1 day') AS carol_conv \gset
SELECT retention_test.archived('dave', 2, now() - interval '1 day') AS dave_conv \gset
SET LOCAL chatstore.user_id = 'carol';
SELECT is(chatstore.purge('1 hour'), 1::bigint, 'acting for carol, purge deletes only carol''s');
RESET chatstore.user_id;
SELECT count(*) AS n FROM chatstore.conversation WHERE id = :'dave_conv' \gset
SELECT is(:n::bigint, 1::bigint, 'dave''s stays');
SELECT is(chatstore.purge('0'), 2::bigint, 'purge(''0'') deletes every archived conversation');
SELECT is((SELECT count(*) FROM chatstore.archived_message), 0::bigint, 'the archive is empty');

-- errors
SELECT throws_ok($$SELECT chatstore.purge('-1 day')$$, '22023', 'archived_before must not be negative', 'negative age: 22023');
SELECT throws_ok($$SELECT chatstore.purge(NULL)$$, '22004', 'archived_before must not be null', 'NULL: 22004');

-- erase_user: every conversation of one user, live and archived, and nothing else
SELECT chatstore.create_conversation('erin') AS e1 \gset
SELECT count(*) FROM chatstore.append_many(:'e1', '[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]') \g /dev/null
SELECT retention_test.archived('erin', 3, now() - interval '1 minute') AS e2 \gset
SELECT retention_test.archived('erin', 2, date_trunc('month', now()) - interval '1 month' + interval '5 days') AS e3 \gset
SELECT chatstore.create_conversation('frank') AS f1 \gset
SELECT count(*) FROM chatstore.append_many(:'f1', '[{"role": "user", "content": "mine"}]') \g /dev/null
SELECT is(chatstore.erase_user('erin'), 3::bigint, 'erase_user deletes the user''s 3 conversations');
SELECT is((SELECT count(*) FROM chatstore.conversation WHERE user_id = 'erin'), 0::bigint, 'none left');
SELECT count(*) AS live FROM chatstore.message WHERE conversation_id IN (:'e1', :'e2', :'e3') \gset
SELECT count(*) AS archived FROM chatstore.archived_message WHERE conversation_id IN (:'e1', :'e2', :'e3') \gset
SELECT is(:live::bigint + :archived::bigint, 0::bigint, 'no message left, live or archived');
SELECT is((SELECT count(*) FROM chatstore.history(:'f1')), 1::bigint, 'other users keep theirs');
SELECT is(chatstore.erase_user('erin'), 0::bigint, 'erasing again finds nothing');
SET LOCAL chatstore.user_id = 'frank';
SELECT is(chatstore.erase_user('someone else'), 0::bigint, 'acting for one user, erase_user cannot reach another');
RESET chatstore.user_id;
SELECT throws_ok($$SELECT chatstore.erase_user(NULL)$$, '22004', 'user_id must not be null', 'NULL: 22004');

-- DROP EXTENSION takes the partitions with it
DROP EXTENSION chatstore;
SELECT is((SELECT count(*) FROM pg_class WHERE relname LIKE 'archived_message%'), 0::bigint,
          'DROP EXTENSION drops the archive and its partitions');

SET LOCAL client_min_messages = warning;  -- the names of the helper functions dropped with their schema
DROP SCHEMA retention_test CASCADE;
SELECT * FROM finish();
ROLLBACK;
