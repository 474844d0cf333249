-- chatstore 1.0 -> 1.0.1: hardening (calendar-correct partitions, background worker, locks, privileges, limits).
-- Every change to src/chatstore.sql since 1.0 is repeated here, so an updated install equals a fresh one
-- (test/programs/upgrade compares them).

\echo Use "ALTER EXTENSION chatstore UPDATE TO '1.0.1'" to load this file. \quit
