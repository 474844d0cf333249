-- The checks of privileges.sql that cannot run on Citus, on one node (make test-citus skips this suite, and
-- test/citus/run says why): direct reads with a session-level SET of chatstore.user_id (Citus passes only SET LOCAL
-- on to the shards), a trigger on a chat table (Citus refuses triggers on distributed tables), the placeholder of a
-- session that has not loaded chatstore yet (chatstore is preloaded on every Citus node), and the update from 1.0
-- (1.0's policies hold subqueries, which Citus refuses).
-- (an empty store: the suites before this one share the database)
DROP EXTENSION chatstore;
CREATE EXTENSION chatstore;
\pset null '(null)'
CREATE ROLE regress_chat_app2 LOGIN;
CREATE ROLE regress_chat_admin LOGIN;
CREATE ROLE regress_chat_blanket LOGIN;
SELECT chatstore.grant_app('regress_chat_app2');
SELECT chatstore.grant_admin('regress_chat_admin');

-- alice's and bob's conversations, as in privileges
\set alice_conv '00000000-0000-7000-8000-00000000a11c'
\set bob_conv '00000000-0000-7000-8000-000000000b0b'
INSERT INTO chatstore.conversation (id, user_id, title, created_at, last_activity_at) VALUES
  (:'alice_conv', 'alice', 'alice''s trip', now(), now()), (:'bob_conv', 'bob', 'bob''s code', now(), now());
SET ROLE regress_chat_app2;
BEGIN;
SET LOCAL chatstore.user_id = 'bob';
SELECT seq, content FROM chatstore.append(:'bob_conv', 'user', 'Why does my test fail?');
SELECT chatstore.create_conversation('bob', 'bob''s second') IS NOT NULL AS created;
COMMIT;
-- SET without LOCAL holds for the session (under chatstore.user_id_scope = 'session', the default), for direct
-- SELECTs too: they show only bob's rows (row-level security)
SET chatstore.user_id = 'bob';
SELECT user_id, title FROM chatstore.conversation ORDER BY title;
SELECT content FROM chatstore.message;
RESET chatstore.user_id;
RESET ROLE;

-- a trigger that a role with every table privilege (GRANT ALL gives TRIGGER) creates on a chat table would run as
-- chatstore's owner, a superuser, with its own function or with a superuser's function and a WHEN clause calling its
-- own: only a superuser may create a trigger there (the event trigger chatstore_refuse_trigger, 42501)
SELECT chatstore.grant_app('regress_chat_blanket');
GRANT ALL ON ALL TABLES IN SCHEMA chatstore TO regress_chat_blanket;
CREATE SCHEMA regress_chat_own AUTHORIZATION regress_chat_blanket;
SET ROLE regress_chat_blanket;
CREATE FUNCTION regress_chat_own.t() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
CREATE FUNCTION regress_chat_own.evil(text) RETURNS boolean LANGUAGE sql AS 'SELECT false';
CREATE TRIGGER regress_chat_t BEFORE INSERT ON chatstore.message FOR EACH ROW EXECUTE FUNCTION regress_chat_own.t();
\echo :SQLSTATE
CREATE TRIGGER regress_chat_w BEFORE INSERT ON chatstore.message FOR EACH ROW
  WHEN (regress_chat_own.evil(NEW.content)) EXECUTE FUNCTION pg_catalog.suppress_redundant_updates_trigger();
\echo :SQLSTATE
CREATE TRIGGER regress_chat_t BEFORE INSERT ON chatstore.conversation_tag FOR EACH ROW EXECUTE FUNCTION regress_chat_own.t();
\echo :SQLSTATE
RESET ROLE;
-- and chatstore refuses to write while one exists that was made before (chatstore 1.0.x made no event trigger; here
-- the event trigger is disabled for a moment): a function of a non-superuser's, or a WHEN clause
ALTER EVENT TRIGGER chatstore_refuse_trigger DISABLE;
SET ROLE regress_chat_blanket;
CREATE TRIGGER regress_chat_t BEFORE INSERT ON chatstore.message FOR EACH ROW EXECUTE FUNCTION regress_chat_own.t();
RESET ROLE;
ALTER EVENT TRIGGER chatstore_refuse_trigger ENABLE;
SET ROLE regress_chat_blanket;
BEGIN;
SELECT chatstore.set_user('alice');
SELECT seq FROM chatstore.append(:'alice_conv', 'user', 'through a trigger');
\echo :SQLSTATE
ROLLBACK;
RESET ROLE;
DROP TRIGGER regress_chat_t ON chatstore.message;
ALTER EVENT TRIGGER chatstore_refuse_trigger DISABLE;
SET ROLE regress_chat_blanket;
CREATE TRIGGER regress_chat_w BEFORE INSERT ON chatstore.message FOR EACH ROW
  WHEN (regress_chat_own.evil(NEW.content)) EXECUTE FUNCTION pg_catalog.suppress_redundant_updates_trigger();
RESET ROLE;
ALTER EVENT TRIGGER chatstore_refuse_trigger ENABLE;
SET ROLE regress_chat_blanket;
BEGIN;
SELECT chatstore.set_user('alice');
SELECT seq FROM chatstore.append(:'alice_conv', 'user', 'through a WHEN clause');
\echo :SQLSTATE
ROLLBACK;
RESET ROLE;
DROP SCHEMA regress_chat_own CASCADE;
BEGIN;
SELECT chatstore.set_user('alice');
SELECT count(*) > 0 AS appended FROM chatstore.append(:'alice_conv', 'user', 'the trigger is gone');
ROLLBACK;
-- a superuser's trigger (its function a superuser's, no WHEN clause) is made and does not stop chatstore
CREATE FUNCTION pg_temp.t() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
CREATE TRIGGER regress_chat_su BEFORE UPDATE ON chatstore.conversation_tag FOR EACH ROW EXECUTE FUNCTION pg_temp.t();
BEGIN;
SELECT chatstore.set_user('alice');
SELECT count(*) > 0 AS appended FROM chatstore.append(:'alice_conv', 'user', 'next to a superuser''s trigger');
ROLLBACK;
DROP TRIGGER regress_chat_su ON chatstore.conversation_tag;
REVOKE ALL ON ALL TABLES IN SCHEMA chatstore FROM regress_chat_blanket;

-- how long an identity lasts under chatstore.user_id_scope = 'session' (privileges runs it under 'transaction')
\set scope session
\i sql/privileges_scope.inc
RESET chatstore.user_id_scope;
-- under 'transaction', a value set before chatstore was loaded into the session (a new session here) does not count:
-- not for the row-level security of a direct read that comes first either (the policies call chatstore.is_admin(),
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

SELECT chatstore.revoke('regress_chat_app2'), chatstore.revoke('regress_chat_admin'), chatstore.revoke('regress_chat_blanket');
DROP ROLE regress_chat_app2;

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
