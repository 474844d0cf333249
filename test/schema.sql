-- pgTAP: the schema keeps the promises of DESIGN.md: keys start with the conversation id, every user-data
-- table is dumped by pg_dump, no triggers, every object documented, write functions are not STRICT.
BEGIN;
SELECT plan(30);

SELECT has_schema('chatstore');
-- the tables, not the archive's month partitions (on a distributed install distribute() made two ahead)
SELECT is(ARRAY(SELECT c.relname::text FROM pg_class c
                WHERE c.relnamespace = 'chatstore'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
                ORDER BY 1),
          ARRAY['admin_role', 'archive_run', 'archived_message', 'conversation', 'conversation_tag', 'message'],
          'Schema chatstore should have the correct tables');
SELECT col_is_pk('chatstore', 'conversation', 'id', 'conversation key is its id');
SELECT col_is_pk('chatstore', 'message', ARRAY['conversation_id', 'seq'], 'message key is (conversation_id, seq)');
SELECT lives_ok($$SELECT chatstore.archive_conversation(chatstore.create_conversation('x'))$$, 'archiving creates a month partition');
SELECT is((SELECT count(*) FROM pg_inherits i WHERE i.inhparent = 'chatstore.archived_message'::regclass
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conrelid = i.inhrelid AND c.contype = 'p'
                               AND c.conkey = (SELECT array_agg(attnum ORDER BY array_position(ARRAY['conversation_id', 'archived_at', 'seq'], attname::text))::int2[] FROM pg_attribute WHERE attrelid = i.inhrelid AND attname IN ('conversation_id', 'archived_at', 'seq')))),
          0::bigint, 'each archive partition''s key is (conversation_id, archived_at, seq)');

-- Citus-ready: every unique index of a message table starts with conversation_id (conversation_tag's key too)
SELECT is((SELECT count(*) FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
           JOIN pg_namespace n ON n.oid = t.relnamespace
           WHERE n.nspname = 'chatstore' AND t.relname IN ('message', 'archived_message', 'conversation_tag') AND i.indisunique
             AND (SELECT attname FROM pg_attribute WHERE attrelid = t.oid AND attnum = i.indkey[0]) <> 'conversation_id'),
          0::bigint, 'every unique index of a message table starts with conversation_id');
SELECT is((SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
           WHERE n.nspname = 'chatstore' AND c.contype = 'f'
             AND (c.conkey <> ARRAY[1]::int2[] OR (SELECT attname FROM pg_attribute WHERE attrelid = c.conrelid AND attnum = c.conkey[1]) <> 'conversation_id')),
          0::bigint, 'foreign keys only on conversation_id');
SELECT hasnt_fk('chatstore', 'message', 'no foreign key on the append path (the functions keep messages with their conversation)');
SELECT col_is_pk('chatstore', 'conversation_tag', ARRAY['conversation_id', 'tag'], 'tag key is (conversation_id, tag)');
SELECT fk_ok('chatstore', 'conversation_tag', 'conversation_id', 'chatstore', 'conversation', 'id');
SELECT is((SELECT partstrat::text FROM pg_partitioned_table WHERE partrelid = 'chatstore.archived_message'::regclass), 'r',
          'the archive is partitioned by range (of archived_at)');
SELECT is((SELECT count(*) FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid
           JOIN pg_namespace n ON n.oid = t.relnamespace
           WHERE n.nspname = 'chatstore' AND NOT g.tgisinternal),
          0::bigint, 'no triggers on chat tables');

-- pg_dump keeps every user-data table
SELECT set_eq($$SELECT c.relname::text FROM pg_extension e, unnest(e.extconfig) AS x(oid) JOIN pg_class c ON c.oid = x.oid
              WHERE e.extname = 'chatstore'$$,
              ARRAY['conversation', 'message', 'admin_role', 'conversation_tag'],
              'the chat tables and the admin roles are registered with pg_extension_config_dump (the archive''s partitions are ordinary tables)');

-- the extension's shape
SELECT is((SELECT extrelocatable FROM pg_extension WHERE extname = 'chatstore'), false, 'not relocatable');
SELECT is((SELECT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
           WHERE e.extname = 'chatstore'), 'chatstore', 'installed in schema chatstore');
SELECT functions_are('chatstore', ARRAY[
  'uuidv7', 'estimate_tokens', 'create_conversation', 'get_conversation', 'list_conversations',
  'update_conversation', 'delete_conversation', 'append', 'append_many', 'history', 'context',
  'history_json', 'archive', 'archive_conversation', 'restore', 'purge', 'erase_user', 'stats', 'is_admin',
  'grant_app', 'grant_admin', 'revoke', 'set_user', 'set_state',
  'tag', 'untag', 'rename_tag', 'delete_tag', 'tags', 'conversations_by_tag',
  'conversation_id', 'get_or_create_conversation', 'append_by_key', 'usage', 'daily_volume', 'storage',
  'search', 'search_query', 'search_vector', 'search_rank', 'set_search',
  'export_conversation', 'import_conversation', 'transcript', 'rewind', 'list_all_conversations',
  'distribute', 'undistribute_on_drop', 'refuse_trigger', 'import_langchain', 'import_sessions']);
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'chatstore' AND p.prolang <> (SELECT oid FROM pg_language WHERE lanname = 'c')),
          NULL, 'every API function is written in C');
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'chatstore' AND p.proisstrict),
          ARRAY['estimate_tokens', 'search_rank', 'search_vector'],
          'only estimate_tokens, search_rank and search_vector (pure, read-only) are STRICT: a NULL never silently skips a write');
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'chatstore' AND obj_description(p.oid, 'pg_proc') IS NULL),
          NULL, 'every function has a comment');
SELECT is((SELECT array_agg(c.relname::text) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'chatstore' AND c.relkind = 'r' AND obj_description(c.oid, 'pg_class') IS NULL),
          NULL, 'every table has a comment');

-- privileges: nothing for PUBLIC
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'chatstore' AND has_function_privilege('public', p.oid, 'EXECUTE')),
          NULL, 'no function is executable by PUBLIC');
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'chatstore' AND p.prosecdef),
          NULL, 'no function is SECURITY DEFINER: they become the owner in C, after looking at the caller');
SELECT is((SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'chatstore' AND c.relname IN ('conversation', 'message', 'archived_message', 'conversation_tag')
             AND NOT c.relrowsecurity),
          NULL, 'row-level security on every chat table');
-- Citus refuses subqueries in row-level-security policies: every chat table's and archive partition's policy is one
-- expression over its own row (the owner's user_id), checked in the stored expression tree (SUBLINK) and its text
SELECT is((SELECT array_agg(c.relname::text || '.' || p.polname ORDER BY c.relname, p.polname)
           FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'chatstore'
             AND (coalesce(p.polqual::text, '') LIKE '%SUBLINK%' OR coalesce(p.polwithcheck::text, '') LIKE '%SUBLINK%'
                  OR coalesce(pg_get_expr(p.polqual, p.polrelid), '') ILIKE '%select%'
                  OR coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '') ILIKE '%select%')),
          NULL, 'no row-level-security policy of a chat table or archive partition contains a subquery');
SELECT is((SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'chatstore' AND c.relkind IN ('r', 'p') AND c.relname <> 'admin_role' AND c.relname <> 'archive_run'
             AND NOT (c.relrowsecurity AND EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid AND p.polcmd = 'r'
                                                     AND pg_get_expr(p.polqual, p.polrelid) LIKE '((user_id = current_setting(%'))),
          NULL, 'every chat table and archive partition has row-level security with a SELECT policy on its own user_id');

-- signatures and defaults of the API
SELECT function_returns('chatstore', 'append', ARRAY['uuid', 'text', 'text', 'jsonb', 'integer', 'text', 'text', 'integer', 'integer', 'integer'], 'chatstore.message');
SELECT function_returns('chatstore', 'history', ARRAY['uuid', 'integer', 'integer'], 'setof chatstore.message');
SELECT is(pg_get_function_arguments('chatstore.list_conversations(text, text, integer, uuid, text, jsonb)'::regprocedure),
          'user_id text, status text DEFAULT ''active''::text, max_results integer DEFAULT 50, before uuid DEFAULT NULL::uuid, state text DEFAULT NULL::text, metadata jsonb DEFAULT NULL::jsonb',
          'list_conversations defaults');
SELECT is(pg_get_function_arguments('chatstore.context(uuid, integer, integer)'::regprocedure),
          'conversation_id uuid, max_tokens integer, max_messages integer DEFAULT NULL::integer',
          'context defaults');

SELECT * FROM finish();
ROLLBACK;
