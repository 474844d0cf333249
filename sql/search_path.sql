-- Extension-script safety: every internal reference is schema-qualified, operators included. With look-alike
-- functions and operators in public ahead of pg_catalog, or with an empty search_path, chatstore behaves the
-- same; and CREATE EXTENSION under a hostile search_path binds nothing to the look-alikes.
-- (an empty store: the suites before this one share the database)
DROP EXTENSION chatstore;
CREATE EXTENSION chatstore;
CREATE ROLE regress_chat_hostile LOGIN;
GRANT CREATE ON SCHEMA public TO regress_chat_hostile;
SET ROLE regress_chat_hostile;
-- operators that say "equal" and "less" to everything, and functions that lie
CREATE FUNCTION public.always(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR public.= (leftarg = text, rightarg = text, function = public.always);
CREATE FUNCTION public.always(uuid, uuid) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR public.= (leftarg = uuid, rightarg = uuid, function = public.always);
CREATE FUNCTION public.always(integer, bigint) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR public.< (leftarg = integer, rightarg = bigint, function = public.always);
CREATE FUNCTION public.always(integer, integer) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR public.> (leftarg = integer, rightarg = integer, function = public.always);
CREATE FUNCTION public.jsonb_typeof(jsonb) RETURNS text LANGUAGE sql AS 'SELECT ''object''';
CREATE FUNCTION public.current_setting(text, boolean) RETURNS text LANGUAGE sql AS 'SELECT ''alice''';
CREATE FUNCTION public.jsonb_each(jsonb, OUT key text, OUT value jsonb) RETURNS SETOF record
  LANGUAGE sql AS 'SELECT ''evil''::text, ''null''::jsonb';
RESET ROLE;

-- a new session, so that chatstore prepares its queries under the hostile search_path
\c
SET search_path = public, pg_catalog;
SELECT 'a'::text = 'b'::text AS hostile_equal_is_active;
SELECT chatstore.create_conversation('alice', 'first') AS c1 \gset
SELECT chatstore.create_conversation('bob', 'second') AS c2 \gset
SELECT count(*) FROM chatstore.append_many(:'c1', '[{"role": "system", "content": "s"}, {"role": "user", "content": "one"},
  {"role": "assistant", "content": "two"}]');
SELECT count(*) FROM chatstore.append_many(:'c2', '[{"role": "user", "content": "other"}]');
SELECT seq, content FROM chatstore.history(:'c1');
SELECT seq, content FROM chatstore.history(:'c1', 10, before_seq => 2);
SELECT seq, content FROM chatstore.context(:'c1', 1000);
SELECT chatstore.history_json(:'c2');
SELECT seq, content FROM chatstore.append(:'c1', 'user', 'keyed', idempotency_key => 'k');
SELECT seq, content FROM chatstore.append(:'c1', 'user', 'other text', idempotency_key => 'other');
SELECT title FROM chatstore.list_conversations('alice');
SELECT metadata FROM chatstore.update_conversation(:'c1', metadata => '{"a": 1, "b": null}');
SELECT chatstore.append(:'c1', 'user', 'x', '[1]');
SELECT chatstore.archive_conversation(:'c2');
SELECT seq, content FROM chatstore.history(:'c1');
SELECT chatstore.restore(:'c2');
SELECT conversations, messages FROM chatstore.stats();
SELECT chatstore.delete_conversation(:'c2');
SELECT count(*) FROM chatstore.message;

-- the same with an empty search_path, in a new session
\c
SET search_path = '';
SELECT seq, content FROM chatstore.history(:'c1', 2);
SELECT seq, content FROM chatstore.append(:'c1', 'assistant', 'still fine');
SELECT count(*) FROM chatstore.context(:'c1', 100);
SELECT chatstore.archive('0');
SELECT chatstore.restore(:'c1');
SELECT conversations, messages FROM chatstore.stats();

-- CREATE EXTENSION under the hostile search_path binds nothing to public's look-alikes
SET search_path = public, pg_catalog;
DROP EXTENSION chatstore;
CREATE EXTENSION chatstore;
SELECT count(*) AS chatstore_objects_using_public
FROM pg_depend d
WHERE d.refobjid IN (SELECT p.oid FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
                     UNION SELECT o.oid FROM pg_operator o WHERE o.oprnamespace = 'public'::regnamespace)
  AND (d.classid, d.objid) IN (SELECT 'pg_constraint'::regclass, c.oid FROM pg_constraint c WHERE c.connamespace = 'chatstore'::regnamespace
                               UNION SELECT 'pg_policy'::regclass, p.oid FROM pg_policy p
                                     WHERE p.polrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'chatstore'::regnamespace)
                               UNION SELECT 'pg_class'::regclass, c.oid FROM pg_class c WHERE c.relnamespace = 'chatstore'::regnamespace
                               UNION SELECT 'pg_proc'::regclass, p.oid FROM pg_proc p WHERE p.pronamespace = 'chatstore'::regnamespace);
SELECT chatstore.create_conversation('carol') AS c3 \gset
SELECT (chatstore.append(:'c3', 'user', repeat('x', 1))).seq;
SELECT chatstore.update_conversation(:'c3', metadata => '[1]');
SELECT chatstore.create_conversation('carol', metadata => '[]');

-- clean up
RESET search_path;
DROP OWNED BY regress_chat_hostile;
REVOKE CREATE ON SCHEMA public FROM regress_chat_hostile;
DROP ROLE regress_chat_hostile;
