-- stats(): counts of conversations and messages, live and archived.
-- Start from an empty store: DROP EXTENSION and CREATE EXTENSION again work (and drop every chat row).
DROP EXTENSION chatstore;
CREATE EXTENSION chatstore;
SELECT * FROM chatstore.stats();
SELECT chatstore.create_conversation('alice') AS a \gset
SELECT chatstore.create_conversation('bob') AS b \gset
SELECT chatstore.create_conversation('bob') AS c \gset
SELECT count(*) FROM generate_series(1, 4) n, LATERAL chatstore.append(:'a', 'user', 'message ' || n);
SELECT count(*) FROM generate_series(1, 3) n, LATERAL chatstore.append(:'b', 'user', 'message ' || n);
SELECT chatstore.archive_conversation(:'b');
SELECT * FROM chatstore.stats();
-- the figures follow the tables
SELECT s.messages = (SELECT count(*) FROM chatstore.message) AS live_ok,
       s.archived_messages = (SELECT count(*) FROM chatstore.archived_message) AS archived_ok
FROM chatstore.stats() s;
SELECT chatstore.delete_conversation(:'a');
SELECT * FROM chatstore.stats();
