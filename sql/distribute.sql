-- chatstore.distribute() where Citus is absent: 55000, with a hint that says what to do (test/programs/citus
-- checks it on a Citus cluster; test/citus/run skips this suite there)
\set VERBOSITY default
SELECT chatstore.distribute();
\echo :SQLSTATE
SELECT chatstore.distribute(0);
\echo :SQLSTATE
-- superusers only, even with EXECUTE on it
CREATE ROLE regress_chat_distributor;
GRANT USAGE ON SCHEMA chatstore TO regress_chat_distributor;
GRANT EXECUTE ON FUNCTION chatstore.distribute(integer) TO regress_chat_distributor;
SET ROLE regress_chat_distributor;
SELECT chatstore.distribute();
\echo :SQLSTATE
RESET ROLE;
REVOKE ALL ON FUNCTION chatstore.distribute(integer) FROM regress_chat_distributor;
REVOKE ALL ON SCHEMA chatstore FROM regress_chat_distributor;
DROP ROLE regress_chat_distributor;
