-- The search indexes' pending lists (one node: on Citus the partitions' and the live table's indexes are in the
-- shards, whose lists the workers' autovacuum merges; test/citus/run skips this suite).
CREATE EXTENSION pgstattuple;
SELECT chatstore.create_conversation('pend_user', 'pending') AS p1 \gset
SELECT count(*) FROM chatstore.append_many(:'p1', '[{"role": "user", "content": "the quick brown fox"},
  {"role": "assistant", "content": "jumps over the lazy dog"}]');

-- an archive partition's search index keeps a pending list (archive writes batches), which archive merges at the
-- end of each call: nothing is left pending for a search to read
SELECT chatstore.archive_conversation(:'p1') IS NOT NULL AS archived;
SELECT count(*) > 0 AS partitions, bool_and(c.reloptions @> '{fastupdate=on}') AS pending_list,
       sum(s.pending_pages) AS pages_left_pending
FROM pg_index i JOIN pg_inherits h ON h.inhrelid = i.indrelid JOIN pg_class c ON c.oid = i.indexrelid,
     LATERAL pgstatginindex(c.oid) s
WHERE h.inhparent = 'chatstore.archived_message'::regclass AND i.indexprs IS NOT NULL;
SELECT seq, archived FROM chatstore.search('pend_user', 'fox');
SELECT chatstore.restore(:'p1') IS NOT NULL AS restored;

-- the live table's search index keeps a short pending list (appends add their entries there, and PostgreSQL merges
-- the list into the index in bulk), which every search also reads: a message is found while its entries are
-- pending, and after the merge. A new session, so that search plans its query with the index forced (these tables
-- are small enough to be read whole), and autovacuum kept off the table, so that nothing merges the list meanwhile.
\c -
ALTER TABLE chatstore.message SET (autovacuum_enabled = off);
SELECT c.reloptions FROM pg_class c WHERE c.oid = 'chatstore.message_search_idx'::regclass;
SELECT pg_catalog.gin_clean_pending_list('chatstore.message_search_idx') >= 0 AS emptied;
SELECT count(*) FROM chatstore.append(:'p1', 'user', 'a zebracorn crossed the road');
SELECT pending_tuples > 0 AS pending FROM pgstatginindex('chatstore.message_search_idx');
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT 1 FROM chatstore.message
WHERE chatstore.search_vector(user_id, content) @@ chatstore.search_query('pend_user', 'zebracorn');
SELECT seq, snippet FROM chatstore.search('pend_user', 'zebracorn');
SELECT pg_catalog.gin_clean_pending_list('chatstore.message_search_idx') > 0 AS merged;
SELECT pending_tuples FROM pgstatginindex('chatstore.message_search_idx');
SELECT seq, snippet FROM chatstore.search('pend_user', 'zebracorn');
RESET enable_seqscan;
ALTER TABLE chatstore.message RESET (autovacuum_enabled);
SELECT chatstore.erase_user('pend_user');
DROP EXTENSION pgstattuple;
