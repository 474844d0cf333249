-- The archive's month partitions: chatstore makes them with its own DDL settings whatever the calling session set,
-- and each has the archive's row-level security, so that reading a partition directly shows no more than the parent.
-- (an empty store: the suites before this one share the database)
DROP EXTENSION chatstore;
CREATE EXTENSION chatstore;
CREATE ROLE regress_chat_app LOGIN;
SELECT chatstore.grant_app('regress_chat_app');

-- a tablespace the app role may not use, and a second table access method
SET allow_in_place_tablespaces = true;
CREATE TABLESPACE regress_chat_restricted LOCATION '';
RESET allow_in_place_tablespaces;
CREATE ACCESS METHOD regress_chat_heap2 TYPE TABLE HANDLER heap_tableam_handler;

-- the app role's session asks for both, then archives the first conversations of the month: chatstore makes this
-- month's and next month's partitions
SET ROLE regress_chat_app;
SET default_tablespace = regress_chat_restricted;
SET default_table_access_method = regress_chat_heap2;
BEGIN;
SET LOCAL chatstore.user_id = 'alice';
SELECT chatstore.create_conversation('alice') AS alice_conv \gset
SELECT seq FROM chatstore.append(:'alice_conv', 'user', 'alice: my password is hunter2');
SELECT chatstore.archive_conversation(:'alice_conv');
COMMIT;
BEGIN;
SET LOCAL chatstore.user_id = 'bob';
SELECT chatstore.create_conversation('bob') AS bob_conv \gset
SELECT seq FROM chatstore.append(:'bob_conv', 'user', 'bob: hello');
SELECT chatstore.archive_conversation(:'bob_conv');
COMMIT;
RESET default_tablespace;
RESET default_table_access_method;
RESET ROLE;

-- the partitions and their keys are in the database's default tablespace, heap tables, with row-level security
SELECT count(*) AS partitions,
       count(*) FILTER (WHERE c.reltablespace = 0) AS in_default_tablespace,
       count(*) FILTER (WHERE am.amname = 'heap') AS heap,
       count(*) FILTER (WHERE c.relrowsecurity) AS row_security
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_am am ON am.oid = c.relam
WHERE i.inhparent = 'chatstore.archived_message'::regclass;
SELECT count(*) AS partition_keys, count(*) FILTER (WHERE c.reltablespace = 0) AS in_default_tablespace
FROM pg_inherits i JOIN pg_index x ON x.indrelid = i.inhrelid JOIN pg_class c ON c.oid = x.indexrelid
WHERE i.inhparent = 'chatstore.archived_message'::regclass AND x.indisprimary;
-- each with the archive's own policy
SELECT count(*) AS partitions_with_the_archive_policy
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_policy p ON p.polrelid = i.inhrelid
JOIN pg_policy pp ON pp.polrelid = i.inhparent AND pp.polname = p.polname
WHERE i.inhparent = 'chatstore.archived_message'::regclass
  AND (p.polcmd, p.polpermissive, p.polroles) = (pp.polcmd, pp.polpermissive, pp.polroles)
  AND replace(pg_get_expr(p.polqual, p.polrelid), c.relname || '.', 'archived_message.')
      = pg_get_expr(pp.polqual, pp.polrelid);

-- the common grant of every table in the schema, then the app role acting for bob reads the archive and every
-- partition directly: bob's messages only
GRANT SELECT ON ALL TABLES IN SCHEMA chatstore TO regress_chat_app;
SET ROLE regress_chat_app;
BEGIN;
SET LOCAL chatstore.user_id = 'bob';
SELECT content FROM chatstore.archived_message;
SELECT m.content AS read_from_a_partition
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,
     LATERAL xmltable('/table/row' PASSING query_to_xml(format('SELECT content FROM chatstore.%I', c.relname), false, false, '')
                      COLUMNS content text) m
WHERE i.inhparent = 'chatstore.archived_message'::regclass
ORDER BY 1;
COMMIT;
-- acting for nobody, nothing
SELECT count(*) AS read_from_partitions
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,
     LATERAL xmltable('/table/row' PASSING query_to_xml(format('SELECT content FROM chatstore.%I', c.relname), false, false, '')
                      COLUMNS content text) m
WHERE i.inhparent = 'chatstore.archived_message'::regclass;
RESET ROLE;

-- clean up the cluster-wide objects, and leave the extension created as the other suites expect
DROP EXTENSION chatstore;
DROP TABLESPACE regress_chat_restricted;
DROP ACCESS METHOD regress_chat_heap2;
DROP OWNED BY regress_chat_app;
DROP ROLE regress_chat_app;
CREATE EXTENSION chatstore;
