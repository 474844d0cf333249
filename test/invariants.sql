-- pgTAP: invariants over a random workload. Whatever mix of appends, batch appends, retried idempotent
-- appends, archives and restores runs, seq stays gapless, counters equal real counts, live and archived
-- rows stay apart, windows equal their plain-SQL definitions, and paging visits every conversation once.
BEGIN;
SELECT plan(22);
SELECT setseed(0.42);

-- 30 conversations of 3 users
CREATE TEMP TABLE conv AS
SELECT n, chatstore.create_conversation('user' || (n % 3), 'c' || n) AS id FROM generate_series(1, 30) n;

-- 3000 single appends spread at random, with roles and sizes at random, some with idempotency keys
-- (sent twice: the retry must store nothing)
CREATE TEMP TABLE ops AS
SELECT r.i, c.id AS conv_id, r.role, r.content, r.idem
FROM (SELECT i, 1 + floor(random() * 30)::int AS k,
             (ARRAY['user', 'assistant', 'tool', 'system'])[1 + floor(random() * 4)::int] AS role,
             repeat(md5(i::text), 1 + floor(random() * 5)::int) AS content,
             CASE WHEN random() < 0.2 THEN 'key-' || i END AS idem
      FROM generate_series(1, 3000) i) r
JOIN conv c ON c.n = r.k;
SELECT is((SELECT count(*) FROM ops, LATERAL chatstore.append(conv_id, role, content, idempotency_key => idem)),
          3000::bigint, '3000 appends return a row each');
SELECT is((SELECT count(*) FROM ops o, LATERAL chatstore.append(o.conv_id, 'user', 'retry', idempotency_key => o.idem) m
           WHERE o.idem IS NOT NULL AND m.content = o.content),
          (SELECT count(*) FROM ops WHERE idem IS NOT NULL), 'retried idempotent appends return the first message');
-- batches
SELECT is((SELECT count(*) FROM conv c, LATERAL chatstore.append_many(c.id,
             (SELECT jsonb_agg(jsonb_build_object('role', 'user', 'content', 'batch ' || k)) FROM generate_series(1, 7) k))),
          210::bigint, 'append_many stores every element');
-- archive a third, restore some of them again
SELECT is((SELECT count(*) FROM conv WHERE n % 3 = 0 AND chatstore.archive_conversation(id)), 10::bigint, 'archived 10');
SELECT is((SELECT count(*) FROM conv WHERE n % 6 = 0 AND chatstore.restore(id)), 5::bigint, 'restored 5');
-- and append to restored ones again
SELECT is((SELECT count(*) FROM conv c, LATERAL chatstore.append(c.id, 'assistant', 'after restore') WHERE n % 6 = 0),
          5::bigint, 'appends continue after restore');

CREATE TEMP VIEW all_messages AS
SELECT conversation_id, seq, tokens, 'live' AS place FROM chatstore.message
UNION ALL SELECT conversation_id, seq, tokens, 'archive' FROM chatstore.archived_message;

SELECT is((SELECT count(*) FROM (SELECT conversation_id FROM all_messages GROUP BY conversation_id
                                 HAVING min(seq) <> 1 OR max(seq) <> count(*) OR count(DISTINCT seq) <> count(*)) x),
          0::bigint, 'seq is 1..n without gaps or duplicates in every conversation');
SELECT is((SELECT count(*) FROM chatstore.conversation c
           LEFT JOIN (SELECT conversation_id, count(*) AS n, sum(tokens) AS t FROM all_messages GROUP BY 1) m
             ON m.conversation_id = c.id
           WHERE c.message_count <> coalesce(m.n, 0) OR c.last_seq <> coalesce(m.n, 0) OR c.token_count <> coalesce(m.t, 0)),
          0::bigint, 'message_count, last_seq and token_count equal the real counts');
SELECT is((SELECT count(*) FROM (SELECT conversation_id FROM all_messages GROUP BY 1 HAVING count(DISTINCT place) > 1) x),
          0::bigint, 'no conversation has messages in both tables');
SELECT is((SELECT count(*) FROM chatstore.conversation c
           WHERE (c.status = 'archived') <> EXISTS (SELECT 1 FROM chatstore.archived_message a WHERE a.conversation_id = c.id)
             AND c.message_count > 0),
          0::bigint, 'archived conversations have their messages in the archive, active ones in the live table');
SELECT is((SELECT count(*) FROM all_messages), 3000 + 210 + 5::bigint, 'nothing lost, nothing duplicated');
-- what the table's constraints said before appends stopped paying for them (no foreign key, no CHECK)
SELECT is((SELECT count(*) FROM all_messages m WHERE NOT EXISTS (SELECT 1 FROM chatstore.conversation c WHERE c.id = m.conversation_id)),
          0::bigint, 'every message has its conversation');
SELECT is((SELECT count(*) FROM chatstore.conversation
           WHERE status NOT IN ('active', 'archived') OR (status = 'archived') <> (archived_at IS NOT NULL)
              OR state NOT IN ('active', 'paused', 'completed')),
          0::bigint, 'status, archived_at and state are consistent');

-- history equals its plain-SQL definition for many windows, live and archived
CREATE TEMP TABLE windows AS
SELECT c.id, (1 + random() * 40)::int AS max_messages,
       CASE WHEN random() < 0.5 THEN (1 + random() * 150)::int END AS before_seq
FROM conv c, generate_series(1, 5);
-- (the messages read first, in a materialized CTE, and the temporary tables compared with them here: on Citus a
-- correlated subquery from a temporary table into a chat table cannot be planned; the same for last_seq below)
SELECT is((WITH m AS MATERIALIZED (SELECT conversation_id, seq FROM chatstore.message
                                     UNION ALL SELECT conversation_id, seq FROM chatstore.archived_message)
           SELECT count(*) FROM windows w
           WHERE (SELECT array_agg(seq ORDER BY seq) FROM chatstore.history(w.id, w.max_messages, w.before_seq))
                 IS DISTINCT FROM
                 (SELECT array_agg(seq ORDER BY seq) FROM
                    (SELECT seq FROM m
                     WHERE m.conversation_id = w.id AND (w.before_seq IS NULL OR m.seq < w.before_seq)
                     ORDER BY seq DESC LIMIT w.max_messages) x)),
          0::bigint, 'history = newest max_messages with seq < before_seq, oldest first (150 windows)');

-- context: leading system messages, then a contiguous newest run within budget that cannot grow
CREATE TEMP TABLE budgets AS
SELECT c.id, (20 + random() * 2000)::int AS max_tokens FROM conv c, generate_series(1, 4);
-- (a copy, not a view: nothing writes the chat tables from here on, and on Citus the correlated subqueries below,
-- from temporary tables into a view over the chat tables, cannot be planned)
CREATE TEMP TABLE everything AS
SELECT conversation_id, seq, role, tokens FROM chatstore.message
UNION ALL SELECT conversation_id, seq, role, tokens FROM chatstore.archived_message;
CREATE TEMP VIEW leading_system AS
SELECT e.conversation_id, e.seq, e.tokens FROM everything e
WHERE e.role = 'system' AND NOT EXISTS (SELECT 1 FROM everything f
                                        WHERE f.conversation_id = e.conversation_id AND f.seq < e.seq AND f.role <> 'system');
-- only budgets that fit the system messages (smaller ones raise 22023, tested in pg_regress)
DELETE FROM budgets b WHERE (SELECT coalesce(sum(tokens), 0) FROM leading_system s WHERE s.conversation_id = b.id) > b.max_tokens;
CREATE TEMP TABLE ctx AS
SELECT b.id, b.max_tokens, x.seq, x.role, x.tokens
FROM budgets b CROSS JOIN LATERAL chatstore.context(b.id, b.max_tokens) x;
SELECT cmp_ok((SELECT count(DISTINCT (id, max_tokens)) FROM ctx), '>', 50::bigint, 'context checked on more than 50 budgets');
SELECT is((SELECT count(*) FROM (SELECT id, max_tokens FROM ctx GROUP BY 1, 2 HAVING sum(tokens) > max_tokens) x),
          0::bigint, 'context never exceeds max_tokens');
SELECT is((SELECT count(*) FROM (SELECT id, max_tokens FROM ctx c GROUP BY 1, 2
                                 HAVING array_agg(seq ORDER BY seq) FILTER (WHERE seq IN (SELECT seq FROM leading_system s WHERE s.conversation_id = c.id))
                                        IS DISTINCT FROM (SELECT array_agg(seq ORDER BY seq) FROM leading_system s WHERE s.conversation_id = c.id)) x),
          0::bigint, 'context always holds every leading system message');
SELECT is((WITH v AS MATERIALIZED (SELECT id, last_seq FROM chatstore.conversation)
           SELECT count(*) FROM (
             SELECT c.id, c.max_tokens,
                    min(c.seq) FILTER (WHERE c.seq NOT IN (SELECT seq FROM leading_system s WHERE s.conversation_id = c.id)) AS first_run,
                    count(*) FILTER (WHERE c.seq NOT IN (SELECT seq FROM leading_system s WHERE s.conversation_id = c.id)) AS run_len,
                    (SELECT last_seq FROM v WHERE v.id = c.id) AS last_seq
             FROM ctx c GROUP BY 1, 2) r
           WHERE r.run_len > 0 AND r.last_seq - r.first_run + 1 <> r.run_len),
          0::bigint, 'the newest run is contiguous and ends at the newest message');
SELECT is((WITH v AS MATERIALIZED (SELECT id, last_seq FROM chatstore.conversation)
           SELECT count(*) FROM (
             SELECT c.id, c.max_tokens, sum(c.tokens) AS used,
                    min(c.seq) FILTER (WHERE c.seq NOT IN (SELECT seq FROM leading_system s WHERE s.conversation_id = c.id)) AS first_run,
                    (SELECT max(seq) FROM leading_system s WHERE s.conversation_id = c.id) AS last_system,
                    (SELECT last_seq FROM v WHERE v.id = c.id) AS last_seq
             FROM ctx c GROUP BY 1, 2) r
           JOIN everything e ON e.conversation_id = r.id
                            AND e.seq = coalesce(r.first_run, r.last_seq + 1) - 1
                            AND e.seq > coalesce(r.last_system, 0)
           WHERE r.used + e.tokens <= r.max_tokens),
          0::bigint, 'the run is the longest: the next older message would not fit');

-- list_conversations pages through a user's conversations exactly once, in order
CREATE TEMP TABLE pages (page int, pos int, id uuid, last_activity_at timestamptz);
DO $$
DECLARE
  cursor_id uuid := NULL;
  p int := 0;
  got int;
BEGIN
  LOOP
    p := p + 1;
    INSERT INTO pages
    SELECT p, row_number() OVER (), l.id, l.last_activity_at
    FROM chatstore.list_conversations('user1', NULL, 3, cursor_id) l;
    GET DIAGNOSTICS got = ROW_COUNT;
    EXIT WHEN got < 3;
    SELECT id INTO cursor_id FROM pages WHERE page = p ORDER BY pos DESC LIMIT 1;
  END LOOP;
END $$;
SELECT set_eq('SELECT id FROM pages', $$SELECT id FROM chatstore.conversation WHERE user_id = 'user1'$$,
              'pages cover every conversation of the user');
SELECT is((SELECT count(*) FROM pages), (SELECT count(*) FROM chatstore.conversation WHERE user_id = 'user1'),
          'and each exactly once');
SELECT is((SELECT array_agg(id ORDER BY page, pos) FROM pages),
          (SELECT array_agg(id ORDER BY last_activity_at DESC, id DESC) FROM chatstore.conversation WHERE user_id = 'user1'),
          'in order of most recent activity');

SELECT * FROM finish();
ROLLBACK;
