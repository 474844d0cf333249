-- Privilege levels and per-user isolation: two app roles, two users, an admin role.  Runs on one node and on
-- Citus (make test-citus) with the same output; the checks that cannot run on Citus are in privileges_local.
-- (an empty store: the suites before this one share the database)
DROP EXTENSION chatstore;
CREATE EXTENSION chatstore;
\pset null '(null)'
CREATE ROLE regress_chat_app1 LOGIN;
CREATE ROLE regress_chat_app2 LOGIN;
CREATE ROLE regress_chat_admin LOGIN;
CREATE ROLE regress_chat_nobody LOGIN;
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
\echo :SQLSTATE
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
-- direct SELECTs show only bob's rows (row-level security; declared for the transaction, as a role that reads
-- the tables directly does: on Citus only SET LOCAL and set_user() reach the shards, privileges_local reads with the
-- session's value)
BEGIN;
SET LOCAL chatstore.user_id = 'bob';
SELECT user_id, title FROM chatstore.conversation ORDER BY title;
SELECT content FROM chatstore.message;
COMMIT;
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
-- chatstore.set_user() is the easy way: the user for this transaction only, checked like a user_id argument
BEGIN;
SELECT chatstore.set_user('alice');
SHOW chatstore.user_id;
SELECT title FROM chatstore.get_conversation(:'alice_conv');
SELECT user_id, title FROM chatstore.conversation;
COMMIT;
SHOW chatstore.user_id;
BEGIN;
SELECT chatstore.set_user('bob');
SAVEPOINT s;
SELECT chatstore.set_user('alice');
ROLLBACK TO SAVEPOINT s;
SHOW chatstore.user_id;
COMMIT;
SELECT chatstore.set_user('');
\echo :SQLSTATE
SELECT chatstore.set_user(repeat('x', 256));
\echo :SQLSTATE
SELECT chatstore.set_user(NULL);
\echo :SQLSTATE
-- outside a transaction block it declares the user for its own statement only, and says so
SELECT chatstore.set_user('alice');
SHOW chatstore.user_id;

-- SET LOCAL ends with the transaction: without a user, every function gives an app role the same error
SHOW chatstore.user_id;
SELECT chatstore.create_conversation('bob');
\echo :SQLSTATE
SELECT chatstore.get_conversation(:'bob_conv');
\echo :SQLSTATE
SELECT chatstore.list_conversations('bob');
\echo :SQLSTATE
SELECT chatstore.update_conversation(:'bob_conv', title => 'x');
\echo :SQLSTATE
SELECT chatstore.delete_conversation(:'bob_conv');
\echo :SQLSTATE
SELECT chatstore.append(:'bob_conv', 'user', 'hi');
\echo :SQLSTATE
SELECT chatstore.append(:'bob_conv', 'user', 'hi', idempotency_key => 'k');
\echo :SQLSTATE
SELECT chatstore.append_many(:'bob_conv', '[{"role": "user", "content": "hi"}]');
\echo :SQLSTATE
SELECT chatstore.history(:'bob_conv');
\echo :SQLSTATE
SELECT chatstore.context(:'bob_conv', 100);
\echo :SQLSTATE
SELECT chatstore.history_json(:'bob_conv');
\echo :SQLSTATE
SELECT chatstore.archive_conversation(:'bob_conv');
\echo :SQLSTATE
SELECT chatstore.restore(:'bob_conv');
\echo :SQLSTATE
-- (the same for a conversation that does not exist: nothing is told about conversations)
SELECT chatstore.history('00000000-0000-7000-8000-000000000000');
\echo :SQLSTATE
-- direct reads show no rows (row-level security), and is_admin() says why
SELECT count(*) FROM chatstore.conversation;
SELECT chatstore.is_admin();
RESET ROLE;

-- an admin without chatstore.user_id acts for every user
SET ROLE regress_chat_admin;
SELECT user_id, title FROM chatstore.conversation ORDER BY user_id, title;
SELECT count(*) FROM chatstore.message;
SELECT seq, content FROM chatstore.history(:'alice_conv');
SELECT conversations, messages FROM chatstore.stats();
-- and with it, for that user only
BEGIN;
SET LOCAL chatstore.user_id = 'bob';
SELECT user_id, title FROM chatstore.conversation ORDER BY title;
SELECT conversations, messages FROM chatstore.stats();
COMMIT;
-- (archive() in a transaction of its own: on Citus the first archiving of a month makes the month's partition, which
-- Citus refuses after reads of the chat tables over several connections in the same transaction)
BEGIN;
SET LOCAL chatstore.user_id = 'bob';
SELECT chatstore.archive('0');
COMMIT;
SELECT user_id, status FROM chatstore.conversation ORDER BY user_id, status;
RESET ROLE;

-- get_conversation of a missing conversation is P0002 for an admin too, not a row of NULLs
SET ROLE regress_chat_admin;
SELECT * FROM chatstore.get_conversation('00000000-0000-7000-8000-000000000000');
\echo :SQLSTATE
RESET ROLE;

-- admin status is explicit: the blanket grants that make an application's life easy do not confer it
CREATE ROLE regress_chat_blanket LOGIN;
GRANT USAGE ON SCHEMA chatstore TO regress_chat_blanket;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA chatstore TO regress_chat_blanket;
GRANT SELECT ON ALL TABLES IN SCHEMA chatstore TO regress_chat_blanket;
SET ROLE regress_chat_blanket;
SELECT chatstore.is_admin();
SELECT count(*) FROM chatstore.conversation;
SELECT count(*) FROM chatstore.message;
SELECT count(*) FROM chatstore.admin_role;
SELECT chatstore.archive('0');
\echo :SQLSTATE
SELECT chatstore.purge('0');
\echo :SQLSTATE
SELECT chatstore.erase_user('alice');
\echo :SQLSTATE
SELECT chatstore.stats();
\echo :SQLSTATE
SELECT chatstore.history(:'alice_conv');
\echo :SQLSTATE
-- declaring a user, it acts for that user only, as an app role does
BEGIN;
SELECT chatstore.set_user('bob');
SELECT conversations FROM chatstore.stats();
SELECT user_id FROM chatstore.conversation;
COMMIT;
-- it cannot make itself an admin, nor change anyone's privileges: EXECUTE on the grant functions is not enough
INSERT INTO chatstore.admin_role VALUES ('regress_chat_blanket');
\echo :SQLSTATE
SELECT chatstore.grant_admin('regress_chat_blanket');
\echo :SQLSTATE
SELECT chatstore.revoke('regress_chat_admin');
\echo :SQLSTATE
SELECT chatstore.grant_app('regress_chat_nobody');
\echo :SQLSTATE
SELECT chatstore.is_admin();
RESET ROLE;
-- not even with every table privilege: row-level security on admin_role has no policy for it
GRANT ALL ON ALL TABLES IN SCHEMA chatstore TO regress_chat_blanket;
SET ROLE regress_chat_blanket;
INSERT INTO chatstore.admin_role VALUES ('regress_chat_blanket');
\echo :SQLSTATE
SELECT chatstore.is_admin();
RESET ROLE;
-- (a trigger it creates on a chat table, which GRANT ALL allows: privileges_local)
REVOKE ALL ON ALL TABLES IN SCHEMA chatstore FROM regress_chat_blanket;
GRANT SELECT ON ALL TABLES IN SCHEMA chatstore TO regress_chat_blanket;
-- grant_admin makes it an admin, revoke takes that back
SELECT chatstore.grant_admin('regress_chat_blanket');
SELECT role_name FROM chatstore.admin_role ORDER BY role_name;
SET ROLE regress_chat_blanket;
SELECT chatstore.is_admin();
SELECT count(*) FROM chatstore.conversation;
RESET ROLE;
SELECT chatstore.revoke('regress_chat_blanket');
SELECT role_name FROM chatstore.admin_role ORDER BY role_name;
-- (revoke took the blanket grants too; grant_app gives back the app level, and no admin status)
SELECT chatstore.grant_app('regress_chat_blanket');
SET ROLE regress_chat_blanket;
SELECT chatstore.is_admin();
RESET ROLE;
-- the policies call is_admin() on every row, and it remembers its answer at each call site while the role, the
-- transaction and the command stay the same: a PL/pgSQL expression, kept for the whole transaction, still sees a
-- change of admin_role (written directly here, so that no catalog change replans the expression) and of role at
-- once (answers as regress_chat_blanket: before it is an admin, as one, after; then as the superuser)
DO $$
DECLARE
  answers text := '';
BEGIN
  FOR step IN 1..4 LOOP
    IF step = 2 THEN INSERT INTO chatstore.admin_role VALUES ('regress_chat_blanket'); END IF;
    IF step = 3 THEN DELETE FROM chatstore.admin_role WHERE role_name = 'regress_chat_blanket'; END IF;
    IF step < 4 THEN PERFORM pg_catalog.set_config('role', 'regress_chat_blanket', true); END IF;
    answers := answers || chatstore.is_admin()::text || ' ';
    PERFORM pg_catalog.set_config('role', 'none', true);
  END LOOP;
  RAISE NOTICE 'is_admin: %', answers;
END
$$;
-- a member of an admin role that inherits its privileges is an admin; one that does not inherit is not
CREATE ROLE regress_chat_ops LOGIN IN ROLE regress_chat_admin;
CREATE ROLE regress_chat_noinherit LOGIN NOINHERIT IN ROLE regress_chat_admin;
SELECT chatstore.grant_app('regress_chat_ops'), chatstore.grant_app('regress_chat_noinherit');
SET ROLE regress_chat_ops;
SELECT chatstore.is_admin();
SET ROLE regress_chat_noinherit;
SELECT chatstore.is_admin();
RESET ROLE;
-- only a superuser may change chatstore.user_id_scope
SET ROLE regress_chat_app2;
SET chatstore.user_id_scope = 'session';
\echo :SQLSTATE
RESET ROLE;

-- how long an identity lasts under chatstore.user_id_scope = 'transaction' (under 'session', where a session-level
-- SET counts for direct reads too, which Citus does not pass on to the shards: privileges_local)
\set scope transaction
\i sql/privileges_scope.inc
RESET chatstore.user_id_scope;

-- revoke takes everything back
SELECT chatstore.revoke('regress_chat_app1');
SET ROLE regress_chat_app1;
SELECT chatstore.history(:'alice_conv');
\echo :SQLSTATE
RESET ROLE;

-- clean up the cluster-wide roles
SELECT chatstore.revoke('regress_chat_app2');
SELECT chatstore.revoke('regress_chat_admin');
SELECT chatstore.revoke('regress_chat_blanket');
SELECT chatstore.revoke('regress_chat_ops'), chatstore.revoke('regress_chat_noinherit');
DROP ROLE regress_chat_app1, regress_chat_app2, regress_chat_nobody, regress_chat_ops, regress_chat_noinherit;
SELECT chatstore.grant_app(NULL);
\echo :SQLSTATE
SELECT chatstore.grant_app('no_such_role');
\echo :SQLSTATE

-- (the extension takes with it the blanket grants made above, which revoke() leaves: they are not chatstore's)
DROP EXTENSION chatstore;
CREATE EXTENSION chatstore;
DROP ROLE regress_chat_admin, regress_chat_blanket;
