-- Full-text search: chatstore.search over live and archived messages, English stems and phrases, CJK substrings,
-- identifiers as written, snippets, filters, paging, per-user isolation, errors; the index is what answers.
\pset null '(null)'
SELECT chatstore.create_conversation('search_alice', 'travel') AS a1 \gset
SELECT chatstore.create_conversation('search_alice', 'code') AS a2 \gset
SELECT chatstore.create_conversation('search_bob', 'bob') AS b1 \gset
SELECT count(*) FROM chatstore.append_many(:'a1', '[
 {"role": "user", "content": "I was running through the park with my dogs yesterday."},
 {"role": "assistant", "content": "The quick brown fox jumps over the lazy dog."},
 {"role": "user", "content": "我喜欢东京的天气。"},
 {"role": "user", "content": "東京都に住んでいます。"},
 {"role": "user", "content": "서울에서 만나요."},
 {"role": "assistant", "content": "A dog runs; another dog runs faster than the first dog."}]');
SELECT count(*) FROM chatstore.append_many(:'a2', '[
 {"role": "user", "content": "Why does snake_case_name() fail when I call Class.method with --flag?"},
 {"role": "assistant", "content": "Because snake case names and class methods need no flag; try `--verbose` or foo-bar.py."}]');
SELECT count(*) FROM chatstore.append(:'b1', 'user', 'Bob runs with his dogs in 東京 and calls snake_case_name.');
-- every message carries its conversation's owner
SELECT user_id, count(*) FROM chatstore.message WHERE conversation_id IN (:'a1', :'a2', :'b1') GROUP BY 1 ORDER BY 1;

-- a compact view of a search's rows (PL/pgSQL: Citus cannot plan a parameter of an SQL function; the search runs
-- first, in a materialized CTE: on Citus a chatstore function in a query over a chat table would run on a shard)
SET client_min_messages = error;  -- Citus warns that it creates a pg_temp function on the coordinator only
CREATE FUNCTION pg_temp.found(u text, q text, c uuid DEFAULT NULL, r text DEFAULT NULL, n int DEFAULT 20)
RETURNS TABLE (conv text, seq int, role text, archived boolean, snippet text) LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY
  WITH s AS MATERIALIZED (
    SELECT * FROM chatstore.search(u, q, conversation_id => c, role => r, max_results => n) WITH ORDINALITY)
  SELECT cv.title, s.seq, s.role, s.archived, s.snippet
  FROM s JOIN chatstore.conversation cv ON cv.id = s.conversation_id
  ORDER BY s.ordinality;
END
$$;
RESET client_min_messages;

-- English: stems (run finds running and runs), phrases in order only, stop words skipped
SELECT * FROM pg_temp.found('search_alice', 'run');
SELECT * FROM pg_temp.found('search_alice', '"brown fox"');
SELECT * FROM pg_temp.found('search_alice', '"fox brown"');
SELECT * FROM pg_temp.found('search_alice', 'the lazy dogs');
-- OR and exclusion
SELECT * FROM pg_temp.found('search_alice', 'fox OR park');
SELECT * FROM pg_temp.found('search_alice', 'dog -lazy');
-- ranking: more matches rank higher (seq 6 says "dog" three times); then the shorter message
SELECT seq, round(rank::numeric, 4) AS rank FROM chatstore.search('search_alice', 'dog');
-- search_rank: the sum over the query's terms that occur of 1 + ln(occurrences), divided by
-- 1 + ln(1 + code points / 1000); an English term counts the words whose stem it is (any case, any script),
-- an identifier or CJK text where it occurs; a term given twice counts once
SELECT round(chatstore.search_rank('a dog', 'dog')::numeric, 4) AS one,
       round(chatstore.search_rank('a dog and a dog', 'dog')::numeric, 4) AS twice,
       round(chatstore.search_rank('a dog and a cat', 'dog cat')::numeric, 4) AS two_terms,
       round(chatstore.search_rank('a dog' || repeat(' x', 1000), 'dog')::numeric, 4) AS long,
       round(chatstore.search_rank('happy dogs, HAPPY days', 'happiness')::numeric, 4) AS stem_y,
       round(chatstore.search_rank('hotdog', 'dog')::numeric, 4) AS inside_a_word,
       round(chatstore.search_rank('call snake_case_name() or Snake_Case_Name', 'snake_case_name')::numeric, 4) AS identifier,
       round(chatstore.search_rank('東京都に住んでいます', '東京')::numeric, 4) AS cjk;
SELECT w, round(chatstore.search_rank('I was ' || w || ' it', w)::numeric, 4) AS rank
FROM unnest(ARRAY['using', 'making', 'dying', 'cities']) w;
SELECT round(chatstore.search_rank('the citizen', 'city')::numeric, 4) AS another_word,
       round(chatstore.search_rank('a blue sky', 'skiing')::numeric, 4) AS another_stem,
       round(chatstore.search_rank('École, ÉCOLE, une école', 'école')::numeric, 4) AS any_case,
       round(chatstore.search_rank('a dog', 'dog dog')::numeric, 4) AS twice_in_the_query,
       round(chatstore.search_rank('a dog', 'dog OR dogs')::numeric, 4) AS same_stem_twice;
SELECT 1.0 + ln(2) AS expected_twice, 2.0 AS expected_two_terms, 1.0 / (1.0 + ln(1.0 + 2005 / 1000.0)) AS expected_long;
SELECT chatstore.search_rank('x', '');
\echo :SQLSTATE
SELECT chatstore.search_rank(NULL, 'dog') IS NULL AS strict;
-- CJK: substrings of two or more characters, in Chinese, Japanese and Korean
SELECT * FROM pg_temp.found('search_alice', '东京');
SELECT * FROM pg_temp.found('search_alice', '東京');
SELECT * FROM pg_temp.found('search_alice', '住んで');
SELECT * FROM pg_temp.found('search_alice', '東京都に住');
SELECT * FROM pg_temp.found('search_alice', '서울');
SELECT * FROM pg_temp.found('search_alice', '에서 만나');
-- a CJK string that is not a substring: its bigrams out of order do not match
SELECT * FROM pg_temp.found('search_alice', '京東');
-- identifiers as written: the whole token, not its parts
SELECT * FROM pg_temp.found('search_alice', 'snake_case_name');
SELECT * FROM pg_temp.found('search_alice', 'Class.method');
SELECT * FROM pg_temp.found('search_alice', '--flag');
SELECT * FROM pg_temp.found('search_alice', '--verbose');
SELECT * FROM pg_temp.found('search_alice', 'foo-bar.py');
-- the English word still finds both spellings
SELECT * FROM pg_temp.found('search_alice', 'flag');
-- the query as tsquery: the owner's lexeme ANDed with the terms
SELECT chatstore.search_query('search_alice', 'runs "quick brown" snake_case_name --flag 東京都 -lazy cat OR dog');

-- filters: conversation, role, time range
SELECT * FROM pg_temp.found('search_alice', 'dog', c => :'a2');
SELECT * FROM pg_temp.found('search_alice', 'dog', r => 'assistant');
SELECT count(*) FROM chatstore.search('search_alice', 'dog', since => now() - interval '1 hour', until => now() + interval '1 hour');
SELECT count(*) FROM chatstore.search('search_alice', 'dog', since => now() + interval '1 hour');
SELECT count(*) FROM chatstore.search('search_alice', 'dog', until => '2000-01-01');

-- paging: pages of 1 by the last row's (rank, conversation_id, seq) give all rows in order, each once
CREATE TEMP TABLE page AS SELECT 1 AS page, * FROM chatstore.search('search_alice', 'dog', max_results => 1);
DO $$
DECLARE
  last record;
BEGIN
  FOR p IN 2..5 LOOP
    SELECT * INTO last FROM page ORDER BY page DESC LIMIT 1;
    INSERT INTO page SELECT p, * FROM chatstore.search('search_alice', 'dog', max_results => 1,
        after_rank => last.rank, after_conversation_id => last.conversation_id, after_seq => last.seq);
  END LOOP;
END $$;
SELECT array_agg(seq ORDER BY page) = (SELECT array_agg(seq) FROM chatstore.search('search_alice', 'dog')) AS same,
       count(*) FROM page;

-- archived messages are found, and marked archived
SELECT chatstore.archive_conversation(:'a2') IS NOT NULL AS archived;
SELECT * FROM pg_temp.found('search_alice', 'snake_case_name');
SELECT chatstore.restore(:'a2') IS NOT NULL AS restored;
SELECT * FROM pg_temp.found('search_alice', 'snake_case_name');

-- isolation: bob never finds alice's messages, whatever he searches
SELECT * FROM pg_temp.found('search_bob', 'snake_case_name');
SELECT * FROM pg_temp.found('search_bob', '東京');
CREATE ROLE search_app LOGIN;
SELECT chatstore.grant_app('search_app');
BEGIN;
SET LOCAL ROLE search_app;
SELECT chatstore.set_user('search_bob');
SELECT seq, snippet FROM chatstore.search('search_bob', 'dogs');
SELECT count(*) FROM chatstore.search('search_alice', 'dogs');
ROLLBACK;
BEGIN;
SET LOCAL ROLE search_app;
SELECT count(*) FROM chatstore.search('search_bob', 'dogs');
\echo :SQLSTATE
ROLLBACK;
SELECT chatstore.revoke('search_app');
DROP ROLE search_app;

-- a snippet of a long message: 200 characters from a word before the first match, cuts marked …
SELECT chatstore.create_conversation('search_carol') AS c1 \gset
SELECT count(*) FROM chatstore.append(:'c1', 'user', repeat('lorem ipsum ', 40) || 'the needle is here ' || repeat('dolor sit ', 40));
SELECT length(snippet) <= 204 AS short, snippet FROM chatstore.search('search_carol', 'needle');

-- errors
SELECT * FROM chatstore.search('search_alice', '');
\echo :SQLSTATE
SELECT * FROM chatstore.search('search_alice', '   ');
\echo :SQLSTATE
SELECT * FROM chatstore.search('search_alice', 'the and of');
\echo :SQLSTATE
SELECT * FROM chatstore.search('search_alice', '東');
\echo :SQLSTATE
SELECT * FROM chatstore.search('search_alice', '-dog');
\echo :SQLSTATE
SELECT * FROM chatstore.search('search_alice', repeat('x', 1001));
\echo :SQLSTATE
SELECT * FROM chatstore.search(NULL, 'dog');
\echo :SQLSTATE
SELECT * FROM chatstore.search('search_alice', NULL);
\echo :SQLSTATE
SELECT * FROM chatstore.search('search_alice', 'dog', role => 'robot');
\echo :SQLSTATE
SELECT * FROM chatstore.search('search_alice', 'dog', max_results => 0);
\echo :SQLSTATE
SELECT * FROM chatstore.search('search_alice', 'dog', after_rank => 0.1);
\echo :SQLSTATE

-- the index answers: the plan of search's own query reads message_search_idx and each archive partition's index
-- (the planner would read a table this small whole; with that option off it shows which index it can use)
SELECT chatstore.archive_conversation(:'a2') IS NOT NULL AS archived;
SELECT count(*) = count(*) FILTER (WHERE indexrelid::regclass::text LIKE '%search_idx') AS every_partition_indexed
FROM pg_index i JOIN pg_inherits h ON h.inhrelid = i.indrelid
WHERE h.inhparent = 'chatstore.archived_message'::regclass AND i.indexprs IS NOT NULL;
-- which index scans the plan of a search query holds (the partitions', on Citus the shards', names end in digits);
-- SET LOCAL reaches the shards on Citus
SET client_min_messages = error;  -- Citus warns that it creates a pg_temp function on the coordinator only
CREATE FUNCTION pg_temp.plan(q text) RETURNS TABLE (live_index boolean, archive_partition_indexes boolean,
                                                    sequential_scan boolean) LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  live_index := false;
  archive_partition_indexes := false;
  sequential_scan := false;
  FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
    live_index := live_index OR line ~ 'Bitmap Index Scan on message_search_idx';
    archive_partition_indexes := archive_partition_indexes
      OR line ~ 'Bitmap Index Scan on archived_message_[0-9]{6}_search_idx';
    sequential_scan := sequential_scan OR line ~ 'Seq Scan';
  END LOOP;
  RETURN NEXT;
END $$;
RESET client_min_messages;
BEGIN;
SET LOCAL enable_seqscan = off;
SELECT * FROM pg_temp.plan($$SELECT seq FROM chatstore.message WHERE chatstore.search_vector(user_id, content)
  @@ chatstore.search_query('search_alice', 'dog') AND user_id = 'search_alice'$$);
SELECT * FROM pg_temp.plan($$SELECT seq FROM chatstore.archived_message WHERE chatstore.search_vector(user_id, content)
  @@ chatstore.search_query('search_alice', 'dog') AND user_id = 'search_alice'$$);
COMMIT;
SELECT chatstore.restore(:'a2') IS NOT NULL AS restored;

-- filters by the conversation's tag and lifecycle state ('dog' and 'flag' match in both of alice's conversations)
SELECT chatstore.tag(:'a2', 'work');
SELECT (chatstore.set_state(:'a1', 'paused')).state;
WITH s AS MATERIALIZED (SELECT * FROM chatstore.search('search_alice', 'dog OR flag', tag => 'work'))
SELECT cv.title, count(*) FROM s JOIN chatstore.conversation cv ON cv.id = s.conversation_id GROUP BY 1 ORDER BY 1;
WITH s AS MATERIALIZED (SELECT * FROM chatstore.search('search_alice', 'dog OR flag', tag => '  work '))
SELECT cv.title, count(*) FROM s JOIN chatstore.conversation cv ON cv.id = s.conversation_id GROUP BY 1 ORDER BY 1;
WITH s AS MATERIALIZED (SELECT * FROM chatstore.search('search_alice', 'dog OR flag', state => 'paused'))
SELECT cv.title, count(*) FROM s JOIN chatstore.conversation cv ON cv.id = s.conversation_id GROUP BY 1 ORDER BY 1;
SELECT count(*) FROM chatstore.search('search_alice', 'dog OR flag', tag => 'work', state => 'paused');
SELECT count(*) FROM chatstore.search('search_alice', 'dog', tag => 'no such tag');
SELECT chatstore.search('search_alice', 'dog', state => 'sleeping');
\echo :SQLSTATE
SELECT chatstore.search('search_alice', 'dog', tag => '   ');
\echo :SQLSTATE

-- a query word holding punctuation that the index splits at finds the message it was copied from: the query's words
-- are split exactly as the content is (at ()[]{}<>,;"'` and white space, an apostrophe inside a word kept)
SELECT chatstore.create_conversation('search_dave', 'punctuation') AS d1 \gset
SELECT count(*) FROM chatstore.append(:'d1', 'user', 'hello, world the snake_case_name and Class.method() here; don''t stop');
SELECT q, (SELECT count(*) FROM chatstore.search('search_dave', q)) AS found
FROM unnest(ARRAY['hello', 'hello,', 'hello, world', 'don''t', 'don''t stop', 'Class.method()', '(hello)', 'hello;',
                  'method()', 'snake_case_name;', '"hello, world"', '"don''t stop"', '-(world) hello', 'world OR nothing,',
                  'class', 'Class.method', '(snake_case_name)']) q;
-- the words are the tokens the index holds (a contraction is kept whole; Class.method also as its English parts)
SELECT chatstore.search_query('search_dave', 'hello, don''t Class.method() method() (snake_case_name);');
SELECT chatstore.search_vector('search_dave', 'Class.method() don''t ''quoted''');
SELECT snippet FROM chatstore.search('search_dave', 'don''t Class.method()');
-- still nothing: a word that is not in it, the parts of an identifier in another order
SELECT count(*) FROM chatstore.search('search_dave', 'hello, planet');
SELECT count(*) FROM chatstore.search('search_dave', 'method.class');

-- search can be turned off (a superuser's choice): the search indexes of the live table and of every archive
-- partition go, appends write no search entries, search refuses with 55000; an archive partition made meanwhile has
-- no search index; turned on again, every index is back as chatstore made it and finds what was stored meanwhile
SELECT string_agg(pg_get_indexdef(i.indexrelid), '; ' ORDER BY c.relname) AS search_indexes
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE c.relnamespace = 'chatstore'::regnamespace AND c.relname LIKE '%search\_idx' \gset
SELECT count(*) >= 3 AS live_and_two_months FROM pg_class
WHERE relnamespace = 'chatstore'::regnamespace AND relname LIKE '%search\_idx';
-- (only superusers: not even a role that was granted EXECUTE on it)
CREATE ROLE search_dba;
GRANT USAGE ON SCHEMA chatstore TO search_dba;
GRANT EXECUTE ON FUNCTION chatstore.set_search(boolean) TO search_dba;
SET ROLE search_dba;
SELECT chatstore.set_search(false);
\echo :SQLSTATE
RESET ROLE;
REVOKE ALL ON FUNCTION chatstore.set_search(boolean) FROM search_dba;
REVOKE ALL ON SCHEMA chatstore FROM search_dba;
DROP ROLE search_dba;
SELECT chatstore.set_search(NULL);
\echo :SQLSTATE
SELECT chatstore.set_search(false) AS changed;
SELECT chatstore.set_search(false) AS changed;
SELECT count(*) AS search_indexes FROM pg_class
WHERE relnamespace = 'chatstore'::regnamespace AND relname LIKE '%search\_idx';
SELECT chatstore.search('search_alice', 'dog');
\echo :SQLSTATE
SELECT chatstore.search('search_bob', 'dog');
\echo :SQLSTATE
SELECT seq FROM chatstore.append(:'a1', 'user', 'The neighbour''s dog barked while search was off.');
-- next month's partition (empty) is made again by the next archive call, without a search index
DO $$
BEGIN
  EXECUTE (SELECT format('DROP TABLE chatstore.%I', c.relname) FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
           WHERE h.inhparent = 'chatstore.archived_message'::regclass ORDER BY c.relname DESC LIMIT 1);
END $$;
SELECT chatstore.archive_conversation(:'a2') IS NOT NULL AS archived;
SELECT count(*) AS search_indexes FROM pg_class
WHERE relnamespace = 'chatstore'::regnamespace AND relname LIKE '%search\_idx';
SELECT chatstore.set_search(true) AS changed;
SELECT chatstore.set_search(true) AS changed;
SELECT string_agg(pg_get_indexdef(i.indexrelid), '; ' ORDER BY c.relname) = :'search_indexes' AS same_indexes
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE c.relnamespace = 'chatstore'::regnamespace AND c.relname LIKE '%search\_idx';
SELECT * FROM pg_temp.found('search_alice', 'barked');
SELECT * FROM pg_temp.found('search_alice', 'snake_case_name');
-- a store that must keep appending builds the live index itself first, without blocking appends (CONCURRENTLY);
-- set_search(true) then builds the partitions' indexes
SELECT chatstore.set_search(false) AS changed;
CREATE INDEX CONCURRENTLY message_search_idx ON chatstore.message
  USING gin (chatstore.search_vector(user_id, content)) WITH (fastupdate = on, gin_pending_list_limit = 256);
SELECT count(*) AS search_indexes FROM pg_class
WHERE relnamespace = 'chatstore'::regnamespace AND relname LIKE '%search\_idx';
SELECT chatstore.set_search(true) AS changed;
SELECT string_agg(pg_get_indexdef(i.indexrelid), '; ' ORDER BY c.relname) = :'search_indexes' AS same_indexes
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE c.relnamespace = 'chatstore'::regnamespace AND c.relname LIKE '%search\_idx';
-- an interrupted CREATE INDEX CONCURRENTLY leaves an invalid index (made so here by hand): search is off, and
-- set_search(true) builds it again
UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'chatstore.message_search_idx'::regclass;
SELECT chatstore.search('search_alice', 'dog');
\echo :SQLSTATE
SELECT chatstore.set_search(true) AS changed;
SELECT indisvalid FROM pg_index WHERE indexrelid = 'chatstore.message_search_idx'::regclass;
SELECT count(*) > 0 AS found FROM chatstore.search('search_alice', 'dog');
SELECT chatstore.restore(:'a2') IS NOT NULL AS restored;
