-- chatstore 1.0.1 -> 1.1: the seed applications' data layers (keys, lifecycle, tags, search, usage, statistics,
-- export). Every change to src/chatstore.sql since 1.0.1 is repeated here, so an updated install equals a fresh one
-- (test/programs/upgrade compares them).

\echo Use "ALTER EXTENSION chatstore UPDATE TO '1.1'" to load this file. \quit
