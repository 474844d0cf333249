-- Privilege levels and per-user isolation: two app roles, two users, an admin role.
-- (an empty store: the suites before this one share the database)
DROP EXTENSION chatstore;
CREATE EXTENSION chatstore;
\pset null '(null)'
CREATE ROLE regress_chat_app1;
CREATE ROLE regress_chat_app2;
CREATE ROLE regress_chat_admin;
CREATE ROLE regress_chat_nobody;
SELECT chatstore.grant_app('regress_chat_app1');
SELECT chatstore.grant_app('regress_chat_app2');
SELECT chatstore.grant_admin('regress_chat_admin');

-- nothing is granted to PUBLIC: a role without a grant cannot even use the schema
SET ROLE regress_chat_nobody;
SELECT chatstore.history('00000000-0000-7000-8000-000000000000');
\echo :SQLSTATE
SELECT count(*) FROM chatstore.conversation;
\echo :SQLSTATE
RESET ROLE;
-- and the grant functions are for superusers
SET ROLE regress_chat_admin;
SELECT chatstore.grant_admin('regress_chat_app1');
\echo :SQLSTATE
RESET ROLE;

-- alice's and bob's conversations (fixed ids, so that the errors below read the same every run)
\set alice_conv '00000000-0000-7000-8000-00000000a11c'
\set bob_conv '00000000-0000-7000-8000-000000000b0b'
INSERT INTO chatstore.conversation (id, user_id, title, created_at, last_activity_at) VALUES
  (:'alice_conv', 'alice', 'alice''s trip', now(), now()), (:'bob_conv', 'bob', 'bob''s code', now(), now());

-- app1 acts for alice, app2 for bob; each declares its user per transaction with SET LOCAL
SET ROLE regress_chat_app1;
BEGIN;
SET LOCAL chatstore.user_id = 'alice';
SELECT seq, content FROM chatstore.append(:'alice_conv', 'user', 'Where is the Louvre?');
SELECT user_id, title FROM chatstore.list_conversations('alice');
COMMIT;
SET ROLE regress_chat_app2;
BEGIN;
SET LOCAL chatstore.user_id = 'bob';
SELECT seq, content FROM chatstore.append(:'bob_conv', 'user', 'Why does my test fail?');
SELECT chatstore.create_conversation('bob', 'bob''s second') IS NOT NULL AS created;
COMMIT;
-- (SET without LOCAL holds for the session: handy here, where every statement is its own transaction)
SET chatstore.user_id = 'bob';
-- bob's session cannot see, change or even detect alice's conversation: it does not exist for it
SELECT chatstore.get_conversation(:'alice_conv');
SELECT chatstore.history(:'alice_conv');
\echo :SQLSTATE
SELECT chatstore.context(:'alice_conv', 100);
\echo :SQLSTATE
SELECT chatstore.history_json(:'alice_conv');
\echo :SQLSTATE
SELECT chatstore.append(:'alice_conv', 'user', 'injected');
\echo :SQLSTATE
SELECT chatstore.append(:'alice_conv', 'user', 'injected', idempotency_key => 'k');
\echo :SQLSTATE
SELECT chatstore.append_many(:'alice_conv', '[{"role": "user", "content": "injected"}]');
\echo :SQLSTATE
SELECT chatstore.update_conversation(:'alice_conv', title => 'mine now');
\echo :SQLSTATE
SELECT chatstore.archive_conversation(:'alice_conv');
\echo :SQLSTATE
SELECT chatstore.restore(:'alice_conv');
\echo :SQLSTATE
SELECT chatstore.delete_conversation(:'alice_conv');
\echo :SQLSTATE
SELECT count(*) FROM chatstore.list_conversations('alice');
SELECT count(*) FROM chatstore.list_conversations('bob', before => :'alice_conv');
\echo :SQLSTATE
SELECT chatstore.create_conversation('alice');
\echo :SQLSTATE
-- direct SELECTs show only bob's rows (row-level security)
SELECT user_id, title FROM chatstore.conversation ORDER BY title;
SELECT content FROM chatstore.message;
-- and an app role cannot write the tables: only the functions can
INSERT INTO chatstore.message (conversation_id, seq, id, role, content, tokens, created_at)
VALUES (:'bob_conv', 2, chatstore.uuidv7(), 'user', 'forged', 1, now());
\echo :SQLSTATE
UPDATE chatstore.conversation SET title = 'x';
\echo :SQLSTATE
DELETE FROM chatstore.message;
\echo :SQLSTATE
-- admin functions are not for app roles
SELECT chatstore.archive();
\echo :SQLSTATE
SELECT chatstore.stats();
\echo :SQLSTATE
RESET chatstore.user_id;

-- the same role acting for alice in another transaction sees alice's rows: isolation is per declared user
SET ROLE regress_chat_app2;
BEGIN;
SET LOCAL chatstore.user_id = 'alice';
SELECT title FROM chatstore.get_conversation(:'alice_conv');
SELECT user_id, title FROM chatstore.conversation;
COMMIT;
-- from a driver, set_config(..., true) is SET LOCAL with the user as a parameter
BEGIN;
SELECT set_config('chatstore.user_id', 'alice', true) AS declared;
SELECT title FROM chatstore.get_conversation(:'alice_conv');
COMMIT;
-- SET LOCAL ends with the transaction: without a user, an app role sees nothing
SHOW chatstore.user_id;
SELECT chatstore.get_conversation(:'bob_conv');
SELECT chatstore.history(:'bob_conv');
\echo :SQLSTATE
SELECT count(*) FROM chatstore.list_conversations('bob');
SELECT count(*) FROM chatstore.conversation;
SELECT chatstore.create_conversation('bob');
\echo :SQLSTATE
RESET ROLE;

-- an admin without chatstore.user_id acts for every user
SET ROLE regress_chat_admin;
SELECT user_id, title FROM chatstore.conversation ORDER BY user_id;
SELECT count(*) FROM chatstore.message;
SELECT seq, content FROM chatstore.history(:'alice_conv');
SELECT conversations, messages FROM chatstore.stats();
-- and with it, for that user only
BEGIN;
SET LOCAL chatstore.user_id = 'bob';
SELECT user_id, title FROM chatstore.conversation;
SELECT conversations, messages FROM chatstore.stats();
SELECT chatstore.archive('0');
COMMIT;
SELECT status FROM chatstore.conversation ORDER BY user_id;
RESET ROLE;

-- revoke takes everything back
SELECT chatstore.revoke('regress_chat_app1');
SET ROLE regress_chat_app1;
SELECT chatstore.history(:'alice_conv');
\echo :SQLSTATE
RESET ROLE;

-- clean up the cluster-wide roles
SELECT chatstore.revoke('regress_chat_app2');
SELECT chatstore.revoke('regress_chat_admin');
DROP ROLE regress_chat_app1, regress_chat_app2, regress_chat_admin, regress_chat_nobody;
SELECT chatstore.grant_app(NULL);
\echo :SQLSTATE
SELECT chatstore.grant_app('no_such_role');
\echo :SQLSTATE
