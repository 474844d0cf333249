-- Privilege levels and per-user isolation: two app roles, two users, an admin role.
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
-- and a trigger it creates on a chat table (GRANT ALL gives TRIGGER) would run as chatstore's owner, a superuser:
-- chatstore refuses to write while one exists
CREATE SCHEMA regress_chat_own AUTHORIZATION regress_chat_blanket;
SET ROLE regress_chat_blanket;
CREATE FUNCTION regress_chat_own.t() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
CREATE TRIGGER regress_chat_t BEFORE INSERT ON chatstore.message FOR EACH ROW EXECUTE FUNCTION regress_chat_own.t();
BEGIN;
SELECT chatstore.set_user('alice');
SELECT seq FROM chatstore.append(:'alice_conv', 'user', 'through a trigger');
\echo :SQLSTATE
ROLLBACK;
RESET ROLE;
DROP SCHEMA regress_chat_own CASCADE;
BEGIN;
SELECT chatstore.set_user('alice');
SELECT count(*) > 0 AS appended FROM chatstore.append(:'alice_conv', 'user', 'the trigger is gone');
ROLLBACK;
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

-- how long an identity lasts, under both values of chatstore.user_id_scope
\set scope session
\i sql/privileges_scope.inc
\set scope transaction
\i sql/privileges_scope.inc
RESET chatstore.user_id_scope;
-- nor, under 'transaction', a value set before chatstore was loaded into the session (a new session here): not
-- for the row-level security of a direct read that comes first either (the policies call chatstore.is_admin(),
-- so the read loads chatstore before it reads a row)
\c -
SET chatstore.user_id_scope = 'transaction';
SET ROLE regress_chat_app2;
SET chatstore.user_id = 'alice';
-- chatstore is not loaded yet: SHOW gives the placeholder as it was set
SHOW chatstore.user_id;
SELECT count(*) AS rows_visible FROM chatstore.conversation;
SELECT count(*) AS rows_visible FROM chatstore.message;
-- now it is, and the value does not count
SHOW chatstore.user_id;
SELECT title FROM chatstore.get_conversation(:'alice_conv');
\echo :SQLSTATE
RESET ROLE;
RESET chatstore.user_id;
RESET chatstore.user_id_scope;
\pset null '(null)'

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

-- ALTER EXTENSION UPDATE from 1.0 carries 1.0's admins forward: the roles granted EXECUTE on archive() and
-- SELECT on archive_run but not EXECUTE on grant_admin (what 1.0's grant_admin granted); a role with the blanket
-- EXECUTE grant, which 1.0 took for an admin, is none after the update, even with a blanket SELECT grant too
DROP EXTENSION chatstore;
CREATE EXTENSION chatstore VERSION '1.0';
CREATE ROLE regress_chat_both LOGIN;
SELECT chatstore.grant_admin('regress_chat_admin');
SELECT chatstore.grant_app('regress_chat_blanket');
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA chatstore TO regress_chat_blanket;
GRANT USAGE ON SCHEMA chatstore TO regress_chat_both;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA chatstore TO regress_chat_both;
GRANT SELECT ON ALL TABLES IN SCHEMA chatstore TO regress_chat_both;
SET ROLE regress_chat_blanket;
SELECT chatstore.is_admin() AS admin_in_1_0;
RESET ROLE;
ALTER EXTENSION chatstore UPDATE;
SELECT extversion = default_version AS updated FROM pg_extension, pg_available_extensions
WHERE extname = 'chatstore' AND name = 'chatstore';
SELECT role_name FROM chatstore.admin_role ORDER BY role_name;
SET ROLE regress_chat_admin;
SELECT chatstore.is_admin();
SET ROLE regress_chat_blanket;
SELECT chatstore.is_admin();
RESET ROLE;
-- set_user is new: the roles get it by running the grant functions again
SET ROLE regress_chat_blanket;
SELECT has_function_privilege('chatstore.set_user(text)', 'EXECUTE');
RESET ROLE;
SELECT chatstore.grant_app('regress_chat_blanket');
SET ROLE regress_chat_blanket;
SELECT has_function_privilege('chatstore.set_user(text)', 'EXECUTE');
RESET ROLE;
SELECT chatstore.revoke('regress_chat_admin'), chatstore.revoke('regress_chat_blanket'), chatstore.revoke('regress_chat_both');
DROP EXTENSION chatstore;
CREATE EXTENSION chatstore;
DROP ROLE regress_chat_admin, regress_chat_blanket, regress_chat_both;
