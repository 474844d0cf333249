"""chatstore benchmark: chatstore against the alternatives, side by side in one run on one server.

Run by `make bench` (test/bench/run), against a throwaway cluster with fsync=on. Compares, on the same data:
  - chatstore's C functions;
  - the hand-written floor: the best plain SQL doing the same work on chatstore's own tables;
  - the common ORM layout (users/sessions/messages, save = several statements in a transaction);
  - LangChain's Postgres chat history layout (one jsonb row per message).
Every figure is the median of BENCH_REPEATS runs; ratios come from the same run. Writes results.md, results.json
and latency.png (gnuplot) to BENCH_OUT (default bench-results/).

Knobs (environment): BENCH_SECONDS (per measurement, default 5), BENCH_REPEATS (default 3), BENCH_MAX_MESSAGES (top
of the growth series, default 10000000), BENCH_ARCHIVE_MESSAGES (default 1000000), BENCH_SECTIONS (a comma-separated
subset of append,last20,context,growth,archive,memory,search,append-cost,append-load; a partial run writes
results.json and the plot, the report needs them all), BENCH_LOAD_MESSAGES (append-load, default 1000000).
Run with Debian's Python (/usr/bin/python3, package python3-psycopg).
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import psycopg

SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
MAX_MESSAGES = int(os.environ.get("BENCH_MAX_MESSAGES", "10000000"))
ARCHIVE_MESSAGES = int(os.environ.get("BENCH_ARCHIVE_MESSAGES", "1000000"))
OUT = os.environ.get("BENCH_OUT", "bench-results")
ALL_SECTIONS = ["append", "last20", "context", "growth", "archive", "memory", "search", "append-cost", "append-load"]
LOAD_MESSAGES = int(os.environ.get("BENCH_LOAD_MESSAGES", "1000000"))
SEARCH_MESSAGES = int(os.environ.get("BENCH_SEARCH_MESSAGES", "1000000"))
SECTIONS = os.environ.get("BENCH_SECTIONS", ",".join(ALL_SECTIONS)).split(",")
HERE = os.path.dirname(os.path.abspath(__file__))

# A typical chat message of about 200 characters (45 o200k tokens by chatstore's estimate).
CONTENT = ("Could you summarise the main points of the report for me, and list the three risks "
           "that the authors think matter most for next year's budget? Keep it short, please.")
TOKENS = 45

results = {}


def log(*args):
    print(*args, flush=True)


def conn():
    return psycopg.connect(autocommit=True)


def sql(query, params=None):
    with conn() as c:
        return c.execute(query, params).fetchall() if params is not None or query.lstrip().upper().startswith(("SELECT", "WITH")) else c.execute(query)


def execute(query):
    with conn() as c:
        c.execute(query)


def scalar(query, params=None):
    with conn() as c:
        return c.execute(query, params).fetchone()[0]


# ---------------------------------------------------------------- data


def load(first, last, messages, label, everywhere=True):
    """Conversations first..last with `messages` messages each, appended interleaved (message 1 of every
    conversation, then message 2, ...) as a live store fills up; in every layout, or only in chatstore's."""
    log(f"  loading conversations {first}..{last} x {messages} messages ({label})")
    body = f"'message ' || k || ' of ' || n || ': ' || {quote(CONTENT)}"
    role = "CASE WHEN k % 2 = 1 THEN 'user' ELSE 'assistant' END"
    with conn() as c:
        c.execute(f"""
            INSERT INTO chatstore.conversation (id, user_id, title, created_at, last_activity_at,
                                                message_count, token_count, last_seq)
            SELECT alt.cid(n), 'user' || (n % 1000), {quote(label)}, now(), now(), {messages}, {messages * TOKENS}, {messages}
            FROM generate_series({first}, {last}) n""")
        if everywhere:
            c.execute("INSERT INTO alt.users (external_id) SELECT 'user' || u FROM generate_series(0, 999) u "
                      "ON CONFLICT DO NOTHING")
            c.execute(f"""
                INSERT INTO alt.sessions (session_id, user_id)
                SELECT alt.cid(n), u.id FROM generate_series({first}, {last}) n
                JOIN alt.users u ON u.external_id = 'user' || (n % 1000)""")
        if messages == 0:
            return
        # in slices, so that one statement never holds too much
        step = max(1, 2_000_000 // max(1, last - first + 1))
        for k0 in range(1, messages + 1, step):
            k1 = min(messages, k0 + step - 1)
            series = f"generate_series({k0}, {k1}) k, generate_series({first}, {last}) n"
            c.execute(f"""
                INSERT INTO chatstore.message (conversation_id, seq, id, role, content, tokens, created_at, user_id)
                SELECT alt.cid(n), k, chatstore.uuidv7(), {role}, {body}, {TOKENS}, now(), 'user' || (n % 1000)
                FROM {series} ORDER BY k, n""")
            if not everywhere:
                continue
            c.execute(f"""
                INSERT INTO alt.messages (session_id, user_id, role, content, created_at)
                SELECT alt.cid(n), 1 + n % 1000, {role}, {body}, now() + k * interval '1 ms' FROM {series} ORDER BY k, n""")
            c.execute(f"""
                INSERT INTO alt.lc_messages (session_id, message)
                SELECT alt.cid(n), jsonb_build_object('type', CASE WHEN k % 2 = 1 THEN 'human' ELSE 'ai' END,
                                                      'data', jsonb_build_object('content', {body}, 'additional_kwargs', '{{}}'::jsonb))
                FROM {series} ORDER BY k, n""")


def quote(s):
    return "'" + s.replace("'", "''") + "'"


def vacuum_analyze():
    execute("VACUUM ANALYZE chatstore.conversation, chatstore.message, alt.users, alt.sessions, alt.messages, alt.lc_messages")


def live_messages():
    return scalar("SELECT count(*) FROM chatstore.message")


# ---------------------------------------------------------------- pgbench


SCRIPTS = {
    # append one message
    "append/chatstore": f"\\set c random(:lo, :hi)\nSELECT chatstore.append(alt.cid(:c), 'user', {quote(CONTENT)});\n",
    "append/floor": f"""\\set c random(:lo, :hi)
WITH c AS (UPDATE chatstore.conversation
              SET last_seq = last_seq + 1, message_count = message_count + 1, token_count = token_count + {TOKENS},
                  last_activity_at = greatest(last_activity_at, now())
            WHERE id = alt.cid(:c) AND status = 'active' RETURNING id, last_seq, user_id)
INSERT INTO chatstore.message (conversation_id, seq, id, role, content, tokens, created_at, user_id)
SELECT c.id, c.last_seq, gen_random_uuid(), 'user', {quote(CONTENT)}, {TOKENS}, now(), c.user_id FROM c RETURNING *;
""",
    "append/orm": f"""\\set c random(:lo, :hi)
BEGIN;
INSERT INTO alt.users (external_id) VALUES ('user' || (:c % 1000)) ON CONFLICT (external_id) DO NOTHING;
SELECT id AS uid FROM alt.users WHERE external_id = 'user' || (:c % 1000) \\gset
INSERT INTO alt.sessions (session_id, user_id) VALUES (alt.cid(:c), :uid) ON CONFLICT (session_id) DO NOTHING;
UPDATE alt.sessions SET last_access = now() WHERE session_id = alt.cid(:c);
INSERT INTO alt.messages (session_id, user_id, role, content) VALUES (alt.cid(:c), :uid, 'user', {quote(CONTENT)});
COMMIT;
""",
    # append-cost only: one INSERT of a chatstore message row, its seq given by the client, no conversation update:
    # what writing chatstore's row itself costs, without the seq, the counters and the function
    "append/row": f"""\\set c random(:lo, :hi)
\\set s random(1000000, 900000000)
INSERT INTO chatstore.message (conversation_id, seq, id, role, content, tokens, created_at, user_id)
VALUES (alt.cid(:c), :s, gen_random_uuid(), 'user', {quote(CONTENT)}, {TOKENS}, now(), 'user' || (:c % 1000)) RETURNING *;
""",
    # append-cost only: what an append that does not update the conversation would run (counters derived when
    # read), as one statement: a transaction lock on the conversation (an advisory lock: no row lock, nothing
    # written), its status and owner read, the next seq from the message index (above 1,000,000,000, so that it
    # never meets chatstore's or row's seqs in the same conversations), one INSERT (which skips, rarely, a seq that
    # the other client took after this statement's snapshot: a real one would lock first, then read)
    "append/derived": f"""\\set c random(:lo, :hi)
WITH l AS (SELECT pg_advisory_xact_lock(hashtext(alt.cid(:c)::text))),
     c AS (SELECT id, user_id FROM chatstore.conversation, l
           WHERE id = alt.cid(:c) AND status = 'active' AND state <> 'completed')
INSERT INTO chatstore.message (conversation_id, seq, id, role, content, tokens, created_at, user_id)
SELECT c.id, greatest(1000000000, (SELECT max(seq) FROM chatstore.message m WHERE m.conversation_id = alt.cid(:c))) + 1,
       gen_random_uuid(), 'user', {quote(CONTENT)}, {TOKENS}, now(), c.user_id FROM c
ON CONFLICT (conversation_id, seq) DO NOTHING RETURNING *;
""",
    "append/langchain": f"""\\set c random(:lo, :hi)
INSERT INTO alt.lc_messages (session_id, message)
VALUES (alt.cid(:c), jsonb_build_object('type', 'human', 'data', jsonb_build_object('content', {quote(CONTENT)}, 'additional_kwargs', '{{}}'::jsonb)));
""",
    # the last 20 messages (the alternatives read the whole conversation, as they do)
    "last20/chatstore": "\\set c random(:lo, :hi)\nSELECT * FROM chatstore.history(alt.cid(:c), 20);\n",
    "last20/floor": "\\set c random(:lo, :hi)\nSELECT * FROM chatstore.message WHERE conversation_id = alt.cid(:c) ORDER BY seq DESC LIMIT 20;\n",
    "last20/orm": "\\set c random(:lo, :hi)\nSELECT * FROM alt.messages WHERE session_id = alt.cid(:c) ORDER BY created_at;\n",
    "last20/langchain": "\\set c random(:lo, :hi)\nSELECT message FROM alt.lc_messages WHERE session_id = alt.cid(:c) ORDER BY id;\n",
    # the token-budget window (leading system messages + newest run within 2000 tokens)
    "context/chatstore": "\\set c random(:lo, :hi)\nSELECT * FROM chatstore.context(alt.cid(:c), 2000);\n",
    "context/floor": """\\set c random(:lo, :hi)
WITH RECURSIVE sys AS (
  SELECT m.* FROM chatstore.message m
  WHERE m.conversation_id = alt.cid(:c) AND m.role = 'system'
    AND m.seq < coalesce((SELECT min(seq) FROM chatstore.message WHERE conversation_id = alt.cid(:c) AND role <> 'system'), 2147483647)),
budget AS (SELECT 2000 - coalesce(sum(tokens), 0) AS left_over, coalesce(max(seq), 0) AS after FROM sys),
walk AS (
  SELECT m.seq, m.tokens AS total FROM chatstore.message m, budget b
  WHERE m.conversation_id = alt.cid(:c)
    AND m.seq = (SELECT last_seq FROM chatstore.conversation WHERE id = alt.cid(:c)) AND m.seq > b.after AND m.tokens <= b.left_over
  UNION ALL
  SELECT m.seq, w.total + m.tokens FROM walk w JOIN chatstore.message m ON m.conversation_id = alt.cid(:c) AND m.seq = w.seq - 1,
         budget b
  WHERE m.seq > b.after AND w.total + m.tokens <= b.left_over)
SELECT * FROM sys
UNION ALL
SELECT m.* FROM chatstore.message m JOIN walk w ON m.conversation_id = alt.cid(:c) AND m.seq = w.seq
ORDER BY seq;
""",
}


SEARCH_USERS = 20
SEARCH_FIRST = 8_000_001
# seed 002's way (ILIKE over the user's rows, with an index on user_id), a hand-written tsvector + GIN query
# (expression index on to_tsvector('english', content), filtered by user_id, ranked, with ts_headline on the page),
# and chatstore.search; a random user among 20 and a random word found in 1 message in 500
SCRIPTS.update({
    "search/chatstore": "\\set u random(0, 19)\n\\set w random(0, 499)\n"
                        "SELECT * FROM chatstore.search('suser' || :u, 'keyword' || :w);\n",
    "search/ilike": "\\set u random(0, 19)\n\\set w random(0, 499)\n"
                    "SELECT conversation_id, seq, content FROM alt.search_hw WHERE user_id = 'suser' || :u "
                    "AND content ILIKE '%keyword' || :w || ' %';\n",
    "search/handwritten": "\\set u random(0, 19)\n\\set w random(0, 499)\n"
                          "SELECT conversation_id, seq, rank, ts_headline('english', content, q) FROM ("
                          "SELECT conversation_id, seq, content, q, ts_rank(to_tsvector('english', content), q) AS rank "
                          "FROM alt.search_hw, websearch_to_tsquery('english', 'keyword' || :w) q "
                          "WHERE user_id = 'suser' || :u AND to_tsvector('english', content) @@ q "
                          "ORDER BY rank DESC, conversation_id, seq LIMIT 20) s;\n",
})


def pgbench(name, lo, hi, clients=1, seconds=SECONDS, options=None):
    """Run one pgbench measurement; returns (tps, median latency ms, p99 latency ms)."""
    with tempfile.TemporaryDirectory() as d:
        script = os.path.join(d, "script.sql")
        with open(script, "w") as f:
            f.write(SCRIPTS[name])
        prefix = os.path.join(d, "log")
        out = subprocess.run(
            ["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", str(clients), "-T", str(seconds),
             "-D", f"lo={lo}", "-D", f"hi={hi}", "-f", script, "-l", "--log-prefix", prefix],
            capture_output=True, text=True,
            env=dict(os.environ, PGOPTIONS=options) if options else None)
        if out.returncode != 0:
            raise RuntimeError(f"pgbench {name} failed:\n{out.stdout}\n{out.stderr}")
        tps = float(re.search(r"tps = ([0-9.]+) \(without initial", out.stdout).group(1))
        lat = []
        for fn in os.listdir(d):
            if fn.startswith("log"):
                with open(os.path.join(d, fn)) as f:
                    lat.extend(int(line.split()[2]) for line in f)
        lat.sort()
        return tps, lat[len(lat) // 2] / 1000.0, lat[min(len(lat) - 1, int(len(lat) * 0.99))] / 1000.0


def measure(name, lo, hi, clients=1, seconds=SECONDS, repeats=REPEATS, options=None):
    runs = [pgbench(name, lo, hi, clients, seconds, options) for _ in range(repeats)]
    tps = statistics.median(r[0] for r in runs)
    p50 = statistics.median(r[1] for r in runs)
    p99 = statistics.median(r[2] for r in runs)
    log(f"  {name:22} clients {clients}: {tps:9.0f} tps, median {p50:7.3f} ms, p99 {p99:7.3f} ms  "
        f"(runs: {', '.join(f'{r[0]:.0f}' for r in runs)} tps)")
    return {"tps": tps, "p50_ms": p50, "p99_ms": p99, "runs_tps": [r[0] for r in runs]}


LAYOUTS = ["chatstore", "floor", "orm", "langchain"]

# conversation id ranges
SIZES = {20: (1, 100), 1000: (101, 120), 10000: (121, 130)}
APPEND = (200001, 201000)
GROWTH_FIRST = 1_000_001
ARCH_A = 3_000_001          # archived by chatstore in batches
ARCH_B = 4_000_001          # moved by the pgmq-style statement
ACTIVE = (5_000_001, 5_000_100)
PURGE = 6_000_001
MEMORY = (7_000_001, 7_000_002, 7_000_003)    # 100,000, 1,000 and 10,000 messages


def bench_append():
    log("== append throughput and latency")
    out = {}
    for clients in (1, 2):
        for layout in LAYOUTS:
            out[f"{layout}/{clients}"] = measure(f"append/{layout}", *APPEND, clients=clients)
    results["append"] = out
    clear_appends()


def clear_appends():
    """Take the appended messages out again, so that the store's size is what the next part says it is."""
    ids = f"SELECT alt.cid(n) FROM generate_series({APPEND[0]}, {APPEND[1]}) n"
    with conn() as c:
        c.execute(f"DELETE FROM chatstore.message WHERE conversation_id IN ({ids})")
        c.execute(f"UPDATE chatstore.conversation SET last_seq = 0, message_count = 0, token_count = 0 WHERE id IN ({ids})")
        c.execute(f"DELETE FROM alt.messages WHERE session_id IN ({ids})")
        c.execute(f"DELETE FROM alt.lc_messages WHERE session_id IN ({ids})")
    vacuum_analyze()


def rebuild_search_index():
    """Turn search on again (chatstore.set_search(true): turned off to measure appends without the search index),
    with memory enough for a GIN build over the whole store (the default 64MB makes it take minutes)."""
    with conn() as c:
        c.execute("SET maintenance_work_mem = '1GB'")
        c.execute("SELECT chatstore.set_search(true)")


def search_with_full_pending_list():
    """chatstore.search while the live search index's pending list is nearly full of other users' appends (what a
    search reads besides the index); returns the measurement with the list's pages."""
    execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
    execute("SELECT gin_clean_pending_list('chatstore.message_search_idx')")
    seq = 1_000_000
    while scalar("SELECT pending_pages FROM pgstatginindex('chatstore.message_search_idx')") < 27:
        execute(f"""INSERT INTO chatstore.message (conversation_id, seq, id, role, content, tokens, created_at, user_id)
                    SELECT alt.cid(n), {seq}, chatstore.uuidv7(), 'user', {quote(CONTENT)}, {TOKENS}, now(), 'user' || n
                    FROM generate_series({APPEND[0]}, {APPEND[0] + 19}) n""")
        seq += 1
    pages = scalar("SELECT pending_pages FROM pgstatginindex('chatstore.message_search_idx')")
    o = measure("search/chatstore", 0, 0)
    o["pending_pages"] = int(pages)
    clear_appends()
    log(f"  search with {pages} pending pages (limit 256 kB: 32): p50 {o['p50_ms']:.3f} ms")
    return o


def bench_search():
    log(f"== search: {SEARCH_MESSAGES:,} messages of {SEARCH_USERS} users; append CPU-bound with and without the index")
    per = 100
    convs = SEARCH_MESSAGES // per
    body = ("'message ' || k || ' of ' || n || ': ' || " + quote(CONTENT) +
            " || ' keyword' || ((k * 7919 + n) % 500) || ' end'")
    with conn() as c:
        c.execute("SELECT chatstore.set_search(false)")
        c.execute(f"""INSERT INTO chatstore.conversation (id, user_id, title, created_at, last_activity_at,
                                                         message_count, token_count, last_seq)
                      SELECT alt.cid(n), 'suser' || (n % {SEARCH_USERS}), 'search', now(), now(), {per}, {per * TOKENS}, {per}
                      FROM generate_series({SEARCH_FIRST}, {SEARCH_FIRST + convs - 1}) n""")
        c.execute(f"""INSERT INTO chatstore.message (conversation_id, seq, id, role, content, tokens, created_at, user_id)
                      SELECT alt.cid(n), k, chatstore.uuidv7(), 'user', {body}, {TOKENS}, now(), 'suser' || (n % {SEARCH_USERS})
                      FROM generate_series(1, {per}) k, generate_series({SEARCH_FIRST}, {SEARCH_FIRST + convs - 1}) n
                      ORDER BY k, n""")
        c.execute("CREATE TABLE alt.search_hw AS SELECT user_id, conversation_id, seq, content FROM chatstore.message "
                  "WHERE user_id LIKE 'suser%'")
        c.execute("CREATE INDEX ON alt.search_hw (user_id)")
        c.execute("CREATE INDEX ON alt.search_hw USING gin (to_tsvector('english', content))")
        c.execute("SET maintenance_work_mem = '512MB'")
        c.execute("SELECT chatstore.set_search(true)")
        c.execute("VACUUM ANALYZE chatstore.message, chatstore.conversation, alt.search_hw")
        sizes = c.execute("SELECT pg_relation_size('chatstore.message_search_idx'), "
                          "(SELECT sum(pg_relation_size(i.indexrelid)) FROM pg_index i WHERE i.indrelid = 'alt.search_hw'::regclass "
                          "AND i.indexprs IS NOT NULL)").fetchone()
        # the three return the same messages
        same = all(
            sorted(r[0:2] for r in c.execute("SELECT conversation_id, seq FROM chatstore.search(%s, %s, max_results => 10000)",
                                              (f"suser{u}", f"keyword{w}")).fetchall()) ==
            sorted(r[0:2] for r in c.execute("SELECT conversation_id, seq FROM alt.search_hw WHERE user_id = %s "
                                              "AND content ILIKE %s", (f"suser{u}", f"%keyword{w} %")).fetchall())
            for u, w in ((0, 1), (3, 77), (19, 499)))
    out = {"messages": SEARCH_MESSAGES, "users": SEARCH_USERS, "same_rows": same,
           "index_bytes": int(sizes[0]), "handwritten_index_bytes": int(sizes[1])}
    for layout in ("chatstore", "handwritten", "ilike"):
        out[layout] = measure(f"search/{layout}", 0, 0, repeats=1 if layout == "ilike" else REPEATS)
    out["chatstore_pending"] = search_with_full_pending_list()
    # append, CPU-bound (synchronous_commit off), with the search index and without it, side by side
    cpu = "-c synchronous_commit=off"
    for with_index in (True, False):
        if not with_index:
            execute("SELECT chatstore.set_search(false)")
        for layout in ("chatstore", "floor"):
            out[f"append/{layout}/{'index' if with_index else 'no-index'}"] = measure(
                f"append/{layout}", *APPEND, options=cpu)
        clear_appends()
    rebuild_search_index()
    results["search"] = out
    log(f"  same rows: {same}; index {int(sizes[0]) / 1e6:.0f} MB (hand-written: {int(sizes[1]) / 1e6:.0f} MB)")
    log(f"  search p50: chatstore {out['chatstore']['p50_ms']:.3f} ms, hand-written {out['handwritten']['p50_ms']:.3f} ms, "
        f"ILIKE {out['ilike']['p50_ms']:.3f} ms: {ratio(out['ilike']['p50_ms'], out['chatstore']['p50_ms']):.0f}x the scan, "
        f"{ratio(out['chatstore']['p50_ms'], out['handwritten']['p50_ms']):.2f}x the hand-written query")
    for k in ("index", "no-index"):
        a, f = out[f"append/chatstore/{k}"]["tps"], out[f"append/floor/{k}"]["tps"]
        log(f"  append CPU-bound, {k}: chatstore {a:.0f} tps, floor {f:.0f} tps: {ratio(a, f):.2f}x the floor")


LOAD = (9_000_001, 9_001_000)      # append-load: 1,000 conversations


def table_stats(table):
    """Cumulative inserts, updates and HOT updates of a table (a fresh connection: the pgbench backends have exited
    and flushed their statistics)."""
    with conn() as c:
        c.execute("SELECT pg_stat_clear_snapshot()")
        return c.execute("SELECT n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = %s::regclass",
                         (table,)).fetchone()


def cost_run(layout, options):
    """One CPU-bound append run of a layout: tps, WAL bytes per append, and the conversation's HOT share."""
    table = "alt.lc_messages" if layout == "langchain" else "chatstore.message"
    execute("CHECKPOINT")
    ins0, _, _ = table_stats(table)
    _, upd0, hot0 = table_stats("chatstore.conversation")
    lsn0 = scalar("SELECT pg_current_wal_lsn()")
    tps, _, _ = pgbench(f"append/{layout}", *APPEND, clients=2, options=options)
    wal = scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", (lsn0,))
    ins1, _, _ = table_stats(table)
    _, upd1, hot1 = table_stats("chatstore.conversation")
    n = max(ins1 - ins0, 1)
    return {"tps": tps, "wal_per_append": float(wal) / n,
            "hot_share": (hot1 - hot0) / (upd1 - upd0) if upd1 > upd0 else None}


def bench_append_cost():
    """Issue 12's figures: CPU-bound append (synchronous_commit off, 2 clients, 1,000 conversations) of chatstore,
    the same-schema floor, an append without the conversation update (append/derived), one INSERT of chatstore's
    message row alone (append/row) and a bare one-row insert in LangChain's layout, interleaved runs, medians; with
    the search index and with search turned off; WAL bytes per append and the HOT share of the conversation updates; index writes
    per append."""
    log("== append cost, CPU-bound: chatstore, the same-schema floor, a bare insert; WAL bytes; HOT share")
    cpu = "-c synchronous_commit=off"
    out = {}
    # the search index as chatstore makes it (entries into its pending list); the same index writing each entry
    # into its trees at once (fastupdate off, as 1.1 did before issue 12), for chatstore and the bare insert only;
    # no search index
    for key in ("index", "index-direct", "no-index"):
        if key == "index-direct":
            execute("SELECT gin_clean_pending_list('chatstore.message_search_idx')")
            execute("ALTER INDEX chatstore.message_search_idx SET (fastupdate = off)")
        if key == "no-index":
            execute("SELECT chatstore.set_search(false)")
        layouts = (("chatstore", "langchain") if key == "index-direct"
                   else ("chatstore", "floor", "derived", "row", "langchain"))
        runs = {layout: [] for layout in layouts}
        for _ in range(REPEATS):
            for layout in runs:
                runs[layout].append(cost_run(layout, cpu))
        for layout, rs in runs.items():
            out[f"{layout}/{key}"] = {
                "tps": statistics.median(r["tps"] for r in rs),
                "wal_per_append": statistics.median(r["wal_per_append"] for r in rs),
                "hot_share": statistics.median(r["hot_share"] for r in rs) if rs[0]["hot_share"] is not None else None,
                "runs_tps": [r["tps"] for r in rs]}
            o = out[f"{layout}/{key}"]
            log(f"  {layout:10} {key:8}: {o['tps']:8.0f} tps, {o['wal_per_append']:6.0f} WAL bytes/append"
                + (f", HOT {o['hot_share']:.1%}" if o["hot_share"] is not None and layout != "langchain" else "")
                + f"  (runs: {', '.join(f'{t:.0f}' for t in o['runs_tps'])})")
        clear_appends()
    rebuild_search_index()
    # index entries an append writes: message_pkey 1; the BRIN on created_at only when a new block range starts;
    # the search index one per lexeme of the message; the conversation's three indexes only when the update is not
    # HOT (the idempotency index only for a keyed append)
    lexemes = scalar("SELECT length(chatstore.search_vector('u', %s))", (CONTENT,))
    for key in ("index", "index-direct", "no-index"):
        hot = out[f"chatstore/{key}"]["hot_share"] or 0
        out[f"chatstore/{key}"]["index_writes_per_append"] = 1 + (lexemes if key != "no-index" else 0) + 3 * (1 - hot)
    out["bare_index_writes_per_append"] = 2
    results["append_cost"] = out
    for key in ("index", "index-direct", "no-index"):
        c, b = out[f"chatstore/{key}"], out[f"langchain/{key}"]
        log(f"  {key}: chatstore {ratio(c['tps'], b['tps']):.2f}x the bare insert's tps, WAL"
            f" {ratio(c['wal_per_append'], b['wal_per_append']):.2f}x the bare insert's,"
            f" {c['index_writes_per_append']:.1f} index entries per append (bare insert: 2)")


def bench_append_load():
    """The conversation table and its indexes under a long append load: LOAD_MESSAGES appends to 1,000
    conversations (2 clients, CPU-bound), autovacuum on; sizes before and after."""
    log(f"== append load: {LOAD_MESSAGES:,} appends to 1,000 conversations; the conversation table's size")
    execute(f"INSERT INTO chatstore.conversation (id, user_id, title, created_at, last_activity_at) "
            f"SELECT alt.cid(n), 'load' || (n % 100), 'load', now(), now() FROM generate_series({LOAD[0]}, {LOAD[1]}) n")
    execute("VACUUM ANALYZE chatstore.conversation")
    size_sql = ("SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'chatstore' AND (c.relname = 'conversation' OR c.oid IN "
                "(SELECT indexrelid FROM pg_index WHERE indrelid = 'chatstore.conversation'::regclass)) ORDER BY 1")
    before = dict(sql(size_sql))
    _, upd0, hot0 = table_stats("chatstore.conversation")
    per_client = LOAD_MESSAGES // 2
    with tempfile.TemporaryDirectory() as d:
        script = os.path.join(d, "script.sql")
        with open(script, "w") as f:
            f.write(SCRIPTS["append/chatstore"])
        t0 = time.time()
        subprocess.run(["pgbench", "-n", "-M", "prepared", "-c", "2", "-j", "2", "-t", str(per_client),
                        "-D", f"lo={LOAD[0]}", "-D", f"hi={LOAD[1]}", "-f", script],
                       check=True, capture_output=True, env=dict(os.environ, PGOPTIONS="-c synchronous_commit=off"))
        seconds = time.time() - t0
    after = dict(sql(size_sql))
    _, upd1, hot1 = table_stats("chatstore.conversation")
    out = {"appends": per_client * 2, "seconds": seconds, "hot_share": (hot1 - hot0) / max(upd1 - upd0, 1),
           "bytes_before": before, "bytes_after": after}
    results["append_load"] = out
    log(f"  {per_client * 2:,} appends in {seconds:.0f} s, HOT {out['hot_share']:.1%}")
    for rel in sorted(before):
        log(f"  {rel:40} {before[rel] / 1e3:10.0f} kB before, {after[rel] / 1e3:10.0f} kB after")
    execute(f"DELETE FROM chatstore.message WHERE conversation_id IN "
            f"(SELECT alt.cid(n) FROM generate_series({LOAD[0]}, {LOAD[1]}) n)")
    execute(f"DELETE FROM chatstore.conversation WHERE id IN (SELECT alt.cid(n) FROM generate_series({LOAD[0]}, {LOAD[1]}) n)")


def bench_last20():
    log("== the last 20 messages of conversations of 20, 1,000 and 10,000 messages")
    out = {}
    for size, (lo, hi) in SIZES.items():
        for layout in LAYOUTS:
            out[f"{layout}/{size}"] = measure(f"last20/{layout}", lo, hi)
    results["last20"] = out


def bench_context():
    log("== token-budget window (2,000 tokens) of 10,000-message conversations")
    lo, hi = SIZES[10000]
    results["context"] = {layout: measure(f"context/{layout}", lo, hi) for layout in ("chatstore", "floor")}
    # both return the same rows
    floor_sql = SCRIPTS["context/floor"].split("\n", 1)[1].replace(":c", "%(c)s")
    with conn() as c:
        same = all(
            [r[1] for r in c.execute("SELECT * FROM chatstore.context(alt.cid(%(c)s), 2000)", {"c": n}).fetchall()] ==
            [r[1] for r in c.execute(floor_sql, {"c": n}).fetchall()]
            for n in range(lo, hi + 1))
    results["context"]["same_rows"] = same
    log(f"  both return the same rows: {same}")


def growth():
    log("== growth: append and last-20 latency as the store grows")
    series = []
    steps = [s for s in (100_000, 300_000, 1_000_000, 3_000_000, 10_000_000, 30_000_000) if s <= MAX_MESSAGES]
    if MAX_MESSAGES not in steps:
        steps.append(MAX_MESSAGES)
    next_id = GROWTH_FIRST
    for target in steps:
        have = live_messages()
        # at least 100 conversations of 100 messages to read from, then up to the target size
        convs = max(100 if next_id == GROWTH_FIRST else 0, (target - have) // 100)
        if convs > 0:
            load(next_id, next_id + convs - 1, 100, "growth")
            next_id += convs
            vacuum_analyze()
            clear_appends()
        size = live_messages()
        lo, hi = GROWTH_FIRST, next_id - 1
        point = {"messages": size}
        for layout in LAYOUTS:
            point[f"last20/{layout}"] = measure(f"last20/{layout}", lo, hi, repeats=1)["p50_ms"]
            point[f"append/{layout}"] = measure(f"append/{layout}", *APPEND, repeats=1)["p50_ms"]
        # what grows with the store: reading the same 100 conversations as at the first point (the pages they
        # touch stay in the CPU's caches) against reading from all of them; and the buffers one history() touches
        point["last20/chatstore-first100"] = measure("last20/chatstore", GROWTH_FIRST, GROWTH_FIRST + 99,
                                                     repeats=1)["p50_ms"]
        point["buffers/chatstore"] = history_buffers(lo, hi)
        series.append(point)
        log(f"  at {size:,} messages: " + ", ".join(f"{k} {v:.1f}" if k.startswith("buffers/") else f"{k} {v:.3f} ms"
                                                       for k, v in point.items() if k != "messages"))
    results["growth"] = series


def history_buffers(lo, hi, samples=50):
    """The mean number of shared buffers chatstore.history(c, 20) touches, over conversations spread across lo..hi."""
    total = 0
    with conn() as c:
        for i in range(samples):
            n = lo + (hi - lo) * i // max(1, samples - 1)
            plan = c.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT * FROM chatstore.history(alt.cid(%s), 20)",
                             (n,)).fetchone()[0][0]["Plan"]
            total += plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]
    return total / samples


class Sampler(threading.Thread):
    """Appends to active conversations in a loop, recording each call's latency."""

    def __init__(self):
        super().__init__(daemon=True)
        self.lat = []
        self.stop = threading.Event()

    def run(self):
        with conn() as c:
            n = 0
            while not self.stop.is_set():
                t = time.perf_counter()
                c.execute("SELECT chatstore.append(alt.cid(%s), 'user', %s)", (ACTIVE[0] + n % 100, CONTENT))
                self.lat.append((time.perf_counter() - t) * 1000)
                n += 1


def sample(during):
    """Run `during` while appends to other conversations are timed; returns (result, p50, p99, max)."""
    s = Sampler()
    s.start()
    time.sleep(0.5)
    mark = len(s.lat)
    res = during()
    s.stop.set()
    s.join()
    lat = sorted(s.lat[mark:]) or [0]
    return res, lat[len(lat) // 2], lat[int(len(lat) * 0.99)], lat[-1]


def bench_archive():
    log("== archive: chatstore (batches of chatstore.archive_batch_size, one transaction each) "
        "against one pgmq-style statement")
    per = 50
    convs = ARCHIVE_MESSAGES // per
    load(ARCH_A, ARCH_A + convs - 1, per, "archive-a", everywhere=False)
    load(ARCH_B, ARCH_B + convs - 1, per, "archive-b", everywhere=False)
    load(ACTIVE[0], ACTIVE[1], 10, "active", everywhere=False)
    execute(f"UPDATE chatstore.conversation SET last_activity_at = now() - interval '1 year' "
            f"WHERE title IN ('archive-a', 'archive-b')")
    vacuum_analyze()
    out = {}

    def idle_sleep():
        time.sleep(3)

    _, p50, p99, mx = sample(idle_sleep)
    out["baseline_append"] = {"p50_ms": p50, "p99_ms": p99, "max_ms": mx}
    log(f"  appends with nothing else running: median {p50:.3f} ms, p99 {p99:.3f} ms, max {mx:.1f} ms")

    # chatstore: what the background archiver does, batch by batch (only set A is idle enough: 'archive-b'
    # conversations are made to look fresh for this part)
    execute("UPDATE chatstore.conversation SET last_activity_at = now() WHERE title = 'archive-b'")
    batch = 500     # chatstore.archive_batch_size's default

    def chatstore_archive():
        t = time.perf_counter()
        moved = 0
        with conn() as c:
            while True:
                n = c.execute("SELECT chatstore.archive('1 day', %s)", (batch,)).fetchone()[0]
                moved += n
                if n < batch:
                    break
        return moved, time.perf_counter() - t

    (moved, secs), p50, p99, mx = sample(chatstore_archive)
    out["chatstore"] = {"conversations": moved, "messages": moved * per, "seconds": secs,
                        "messages_per_second": moved * per / secs,
                        "append_p50_ms": p50, "append_p99_ms": p99, "append_max_ms": mx}
    log(f"  chatstore: {moved * per:,} messages in {secs:.2f} s = {moved * per / secs:,.0f} msg/s; "
        f"appends meanwhile: median {p50:.3f} ms, p99 {p99:.3f} ms, max {mx:.1f} ms")

    def pgmq_move():
        t = time.perf_counter()
        with conn() as c:
            n = c.execute("""
                WITH moved AS (DELETE FROM chatstore.message
                               WHERE conversation_id IN (SELECT id FROM chatstore.conversation WHERE title = 'archive-b')
                               RETURNING *)
                INSERT INTO alt.pq_archive SELECT *, now() FROM moved""").rowcount
        return n, time.perf_counter() - t

    (n, secs), p50, p99, mx = sample(pgmq_move)
    out["pgmq"] = {"messages": n, "seconds": secs, "messages_per_second": n / secs,
                   "append_p50_ms": p50, "append_p99_ms": p99, "append_max_ms": mx}
    log(f"  pgmq-style: {n:,} messages in {secs:.2f} s = {n / secs:,.0f} msg/s; "
        f"appends meanwhile: median {p50:.3f} ms, p99 {p99:.3f} ms, max {mx:.1f} ms")
    results["archive"] = out


def bench_purge():
    log("== purge of 1,000,000 archived messages (the oldest of three months)")
    per = 50
    convs = ARCHIVE_MESSAGES // per
    months = [3, 2, 1]
    with conn() as c:
        for i, m in enumerate(months):
            first = PURGE + i * convs
            count = convs if m == 3 else convs // 5
            at = f"date_trunc('month', now()) - interval '{m} months' + interval '10 days'"
            month = c.execute(f"SELECT to_char({at}, 'YYYYMM'), date_trunc('month', {at}), "
                              f"date_trunc('month', {at}) + interval '1 month'").fetchone()
            name = f"archived_message_{month[0]}"
            if c.execute("SELECT to_regclass(%s) IS NULL", (f"chatstore.{name}",)).fetchone()[0]:
                # made as chatstore makes a month's partition (src/archive.c), search index included: a later
                # section searches the whole store
                c.execute(f"CREATE TABLE chatstore.{name} (LIKE chatstore.archived_message INCLUDING DEFAULTS "
                          f"INCLUDING CONSTRAINTS, PRIMARY KEY (conversation_id, archived_at, seq))")
                c.execute(f"CREATE INDEX {name}_search_idx ON chatstore.{name} "
                          f"USING gin (chatstore.search_vector(user_id, content)) WITH (fastupdate = on)")
                c.execute(f"ALTER TABLE chatstore.archived_message ATTACH PARTITION chatstore.{name} "
                          f"FOR VALUES FROM ('{month[1].isoformat()}') TO ('{month[2].isoformat()}')")
            c.execute(f"""
                INSERT INTO chatstore.conversation (id, user_id, title, status, created_at, last_activity_at,
                                                    archived_at, message_count, token_count, last_seq)
                SELECT alt.cid(n), 'user' || (n % 1000), 'purge', 'archived', {at}, {at}, {at}, {per}, {per * TOKENS}, {per}
                FROM generate_series({first}, {first + count - 1}) n""")
            rows = f"""SELECT alt.cid(n), k, chatstore.uuidv7(), 'user', {quote(CONTENT)}, {TOKENS}, {at}, 'user' || (n % 1000)
                       FROM generate_series(1, {per}) k, generate_series({first}, {first + count - 1}) n ORDER BY k, n"""
            c.execute(f"INSERT INTO chatstore.archived_message (conversation_id, seq, id, role, content, tokens, "
                      f"created_at, user_id, archived_at) SELECT *, {at} FROM ({rows}) r")
            c.execute(f"INSERT INTO alt.pq_archive (conversation_id, seq, id, role, content, tokens, created_at, "
                      f"user_id, archived_at) SELECT *, {at} FROM ({rows}) r")
        c.execute("VACUUM ANALYZE alt.pq_archive")
        c.execute("VACUUM ANALYZE chatstore.archived_message")
        cutoff_age = c.execute("SELECT now() - (date_trunc('month', now()) - interval '2 months')").fetchone()[0]
        size_before = c.execute("SELECT pg_total_relation_size('alt.pq_archive')").fetchone()[0]
        t = time.perf_counter()
        purged = c.execute("SELECT chatstore.purge(%s)", (cutoff_age,)).fetchone()[0]
        cs = time.perf_counter() - t
        t = time.perf_counter()
        deleted = c.execute("DELETE FROM alt.pq_archive WHERE archived_at < now() - %s", (cutoff_age,)).rowcount
        pq = time.perf_counter() - t
        size_after = c.execute("SELECT pg_total_relation_size('alt.pq_archive')").fetchone()[0]
        t = time.perf_counter()
        c.execute("VACUUM alt.pq_archive")
        vac = time.perf_counter() - t
        size_vacuumed = c.execute("SELECT pg_total_relation_size('alt.pq_archive')").fetchone()[0]
    results["purge"] = {"chatstore": {"conversations": purged, "messages": purged * per, "seconds": cs},
                        "pgmq": {"messages": deleted, "seconds": pq, "vacuum_seconds": vac,
                                 "table_bytes_before": size_before, "table_bytes_after": size_after,
                                 "table_bytes_after_vacuum": size_vacuumed}}
    log(f"  chatstore.purge: {purged:,} conversations ({purged * per:,} messages) in {cs:.3f} s (drops the month)")
    log(f"  pgmq-style DELETE: {deleted:,} messages in {pq:.3f} s, then VACUUM {vac:.3f} s; the table stays "
        f"{size_after / 1e6:.0f} MB ({size_vacuumed / 1e6:.0f} MB after VACUUM; it was {size_before / 1e6:.0f} MB)")


def bench_live_size():
    log("== the live table after archiving: its size follows the live data")
    # set A (archived above) had ARCHIVE_MESSAGES messages; after VACUUM their space is reused by new appends
    with conn() as c:
        c.execute("VACUUM chatstore.message")
        before = c.execute("SELECT pg_relation_size('chatstore.message')").fetchone()[0]
        live = c.execute("SELECT count(*) FROM chatstore.message").fetchone()[0]
    per = 50
    convs = ARCHIVE_MESSAGES // per
    load(ARCH_A + 2 * convs, ARCH_A + 3 * convs - 1, per, "refill", everywhere=False)
    with conn() as c:
        after = c.execute("SELECT pg_relation_size('chatstore.message')").fetchone()[0]
    results["live_size"] = {"bytes_after_archive_and_vacuum": before, "live_messages": live,
                            "bytes_after_refill": after, "refill_messages": ARCHIVE_MESSAGES}
    log(f"  after archiving {ARCHIVE_MESSAGES:,} messages and VACUUM: {before / 1e6:.0f} MB; "
        f"after appending {ARCHIVE_MESSAGES:,} new ones: {after / 1e6:.0f} MB (+{(after - before) / 1e6:.0f} MB)")


class RssSampler(threading.Thread):
    """Polls a backend's private resident memory (RssAnon: its own allocations, not the shared buffers it
    touches) every millisecond and keeps the peak."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            with open(f"/proc/{self.pid}/status") as f:
                anon = int(re.search(r"RssAnon:\s+(\d+) kB", f.read()).group(1))
            self.peak = max(self.peak, anon)
            time.sleep(0.001)


def bench_memory():
    log("== backend memory while reading the history of a 100,000-message conversation (work_mem 64kB)")
    load(MEMORY[0], MEMORY[0], 100_000, "memory-big", everywhere=False)
    load(MEMORY[1], MEMORY[1], 1_000, "memory-small", everywhere=False)
    load(MEMORY[2], MEMORY[2], 10_000, "memory-medium", everywhere=False)
    out = {}
    # each window against a conversation it just fills, then against the 100,000-message one
    for window, small in ((1000, ("1,000", MEMORY[1])), (10000, ("10,000", MEMORY[2]))):
        for label, n in (small, ("100,000", MEMORY[0])):
            with conn() as c:
                pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
                c.execute("SET work_mem = '64kB'")
                c.execute("SELECT count(*) FROM chatstore.history(alt.cid(%s), 1)", (n,))   # load the library
                sampler = RssSampler(pid)
                sampler.start()
                rows = 0
                before = None
                while True:
                    got = c.execute("SELECT min(seq), count(*) FROM chatstore.history(alt.cid(%s), %s, %s)",
                                    (n, window, before)).fetchone()
                    if got[1] == 0:
                        break
                    rows += got[1]
                    before = got[0]
                got = c.execute("SELECT count(*) FROM chatstore.context(alt.cid(%s), 100000000, %s)", (n, window)).fetchone()
                sampler.stop.set()
                sampler.join()
            out[f"{label}/{window}"] = {"rows": rows, "peak_private_kb": sampler.peak}
            log(f"  {label}-message conversation, windows of {window:,}: {rows:,} messages read; "
                f"peak private memory {sampler.peak:,} kB")
    results["memory"] = out


# ---------------------------------------------------------------- report


def ratio(a, b):
    return a / b if b else float("nan")


def report():
    a = results["append"]
    h = results["last20"]
    g = results["growth"]
    ctx = results["context"]
    lines = []
    add = lines.append
    machine = subprocess.run(["sh", "-c", "nproc; grep -m1 'model name' /proc/cpuinfo | cut -d: -f2; "
                              "free -g | awk '/Mem/{print $2}'; psql -XAtc 'SHOW server_version'; psql -XAtc 'SHOW shared_buffers'"],
                             capture_output=True, text=True).stdout.split("\n")
    add(f"Measured {time.strftime('%Y-%m-%d')} on {machine[0].strip()} cores ({machine[1].strip()}), "
        f"{machine[2].strip()} GB RAM, PostgreSQL {machine[3].strip()}, shared_buffers={machine[4].strip()}, fsync=on, "
        f"{SECONDS} s per measurement, median of {REPEATS} runs (growth: 1 run per point).")
    add("")
    add("### Append (one message per transaction, random conversation among 1,000)")
    add("")
    add("| layout | 1 client tps | median ms | p99 ms | 2 clients tps | median ms | p99 ms |")
    add("|---|---:|---:|---:|---:|---:|---:|")
    for layout in LAYOUTS:
        r1, r2 = a[f"{layout}/1"], a[f"{layout}/2"]
        add(f"| {layout} | {r1['tps']:.0f} | {r1['p50_ms']:.3f} | {r1['p99_ms']:.3f} | "
            f"{r2['tps']:.0f} | {r2['p50_ms']:.3f} | {r2['p99_ms']:.3f} |")
    add("")
    add("### The last 20 messages (median latency, ms)")
    add("")
    add("| conversation length | chatstore.history | floor | ORM (reads all) | LangChain (reads all) |")
    add("|---:|---:|---:|---:|---:|")
    for size in SIZES:
        add(f"| {size:,} | " + " | ".join(f"{h[f'{layout}/{size}']['p50_ms']:.3f}" for layout in LAYOUTS) + " |")
    add("")
    add(f"### Token-budget window, 2,000 tokens, 10,000-message conversations")
    add("")
    add(f"chatstore.context {ctx['chatstore']['p50_ms']:.3f} ms ({ctx['chatstore']['tps']:.0f} tps) against the "
        f"best plain SQL (recursive CTE walking back from the newest message) {ctx['floor']['p50_ms']:.3f} ms "
        f"({ctx['floor']['tps']:.0f} tps): {ratio(ctx['floor']['p50_ms'], ctx['chatstore']['p50_ms']):.2f}x.")
    add("")
    add("### Growth (median latency, ms)")
    add("")
    add("| live messages | " + " | ".join(f"last 20 {layout}" for layout in LAYOUTS) + " | " +
        " | ".join(f"append {layout}" for layout in LAYOUTS) + " |")
    add("|---:|" + "---:|" * 8)
    for p in g:
        add(f"| {p['messages']:,} | " + " | ".join(f"{p[f'last20/{layout}']:.3f}" for layout in LAYOUTS) + " | " +
            " | ".join(f"{p[f'append/{layout}']:.3f}" for layout in LAYOUTS) + " |")
    add("")
    add("The last 20 are read from a random conversation among all those of the growth series (100 at the first "
        "point, 100 messages each, appended interleaved). What grows is where they lie, not how much is read:")
    add("")
    add("| live messages | last 20 chatstore, all conversations | the same 100 conversations as at the first point | "
        "buffers per history() call |")
    add("|---:|---:|---:|---:|")
    for p in g:
        add(f"| {p['messages']:,} | {p['last20/chatstore']:.3f} | {p['last20/chatstore-first100']:.3f} | "
            f"{p['buffers/chatstore']:.1f} |")
    add("")
    if "archive" in results:
        ar, pu = results["archive"], results["purge"]
        add(f"### Archive and purge ({ARCHIVE_MESSAGES:,} messages)")
        add("")
        add("| | messages/s | appends to other conversations meanwhile: median / p99 / max ms |")
        add("|---|---:|---:|")
        b = ar["baseline_append"]
        add(f"| nothing running | | {b['p50_ms']:.3f} / {b['p99_ms']:.3f} / {b['max_ms']:.1f} |")
        for k, label in (("chatstore", "chatstore, batches of one transaction"), ("pgmq", "pgmq-style single statement")):
            x = ar[k]
            add(f"| {label} | {x['messages_per_second']:,.0f} | {x['append_p50_ms']:.3f} / {x['append_p99_ms']:.3f} / "
                f"{x['append_max_ms']:.1f} |")
        add("")
        add(f"Purge of the oldest month ({pu['chatstore']['messages']:,} messages of three months' archive): "
            f"chatstore.purge {pu['chatstore']['seconds']:.3f} s, all done (it drops the month's partition); "
            f"pgmq-style DELETE {pu['pgmq']['seconds']:.3f} s, which leaves {pu['pgmq']['messages']:,} dead rows: "
            f"VACUUM then takes {pu['pgmq']['vacuum_seconds']:.3f} s more, and the table stays "
            f"{pu['pgmq']['table_bytes_after_vacuum'] / 1e6:.0f} MB (it was "
            f"{pu['pgmq']['table_bytes_before'] / 1e6:.0f} MB).")
        ls = results["live_size"]
        add("")
        add(f"Live table: {ls['bytes_after_archive_and_vacuum'] / 1e6:.0f} MB after archiving and VACUUM; "
            f"{ls['bytes_after_refill'] / 1e6:.0f} MB after appending {ls['refill_messages']:,} new messages.")
    if "memory" in results:
        m = results["memory"]
        add("")
        add("Backend peak private memory (RssAnon) paging through a whole conversation with chatstore.history and "
            "reading its largest context, work_mem 64kB:")
        add("")
        add("| window | conversation as long as the window | 100,000-message conversation |")
        add("|---:|---:|---:|")
        for window, small in ((1000, "1,000"), (10000, "10,000")):
            add(f"| {window:,} | {m[f'{small}/{window}']['peak_private_kb']:,} kB | "
                f"{m[f'100,000/{window}']['peak_private_kb']:,} kB |")
    if "append_cost" in results:
        ac = results["append_cost"]
        add("")
        add("Append cost, CPU-bound (synchronous_commit off, 2 clients, 1,000 conversations; interleaved runs, medians):")
        add("")
        add("| | tps | / bare insert | WAL bytes per append | / bare insert | HOT share | index entries per append |")
        add("|---|---:|---:|---:|---:|---:|---:|")
        for key, label in (("index", "with the search index"),
                           ("index-direct", "search index without a pending list"), ("no-index", "without it")):
            b = ac[f"langchain/{key}"]
            for layout in ("chatstore", "floor", "derived", "row"):
                if f"{layout}/{key}" not in ac:
                    continue
                o = ac[f"{layout}/{key}"]
                add(f"| {layout} ({label}) | {o['tps']:.0f} | {ratio(o['tps'], b['tps']):.2f} | {o['wal_per_append']:.0f} | "
                    f"{ratio(o['wal_per_append'], b['wal_per_append']):.2f} | "
                    + (f"{o['hot_share']:.1%}" if o["hot_share"] is not None else "") + " | "
                    + (f"{o['index_writes_per_append']:.1f} |" if layout == "chatstore" else " |"))
            add(f"| bare insert ({label} run) | {b['tps']:.0f} | 1.00 | {b['wal_per_append']:.0f} | 1.00 | | 2 |")
    if "append_load" in results:
        al = results["append_load"]
        add("")
        add(f"Append load: {al['appends']:,} appends to 1,000 conversations in {al['seconds']:.0f} s, "
            f"HOT {al['hot_share']:.1%}; sizes before and after (autovacuum on):")
        add("")
        add("| relation | before | after |")
        add("|---|---:|---:|")
        for rel in sorted(al["bytes_before"]):
            add(f"| {rel} | {al['bytes_before'][rel] / 1e3:.0f} kB | {al['bytes_after'][rel] / 1e3:.0f} kB |")
    add("")
    add("### Targets")
    add("")
    targets = []
    for clients in (1, 2):
        targets.append((f"append {clients} client(s): chatstore >= 0.95x floor",
                        ratio(a[f"chatstore/{clients}"]["tps"], a[f"floor/{clients}"]["tps"]), 0.95, ">="))
        targets.append((f"append {clients} client(s): chatstore >= 2x ORM",
                        ratio(a[f"chatstore/{clients}"]["tps"], a[f"orm/{clients}"]["tps"]), 2.0, ">="))
    for alt in ("orm", "langchain"):
        targets.append((f"last 20 of 10,000: chatstore >= 50x faster than {alt}",
                        ratio(h[f"{alt}/10000"]["p50_ms"], h["chatstore/10000"]["p50_ms"]), 50.0, ">="))
    targets.append(("last 20 of 10,000: chatstore within 1.1x of floor",
                    ratio(h["chatstore/10000"]["p50_ms"], h["floor/10000"]["p50_ms"]), 1.1, "<="))
    first = next((p for p in g if p["messages"] >= 100_000), g[0])
    targets.append((f"last 20 at {g[-1]['messages']:,} within 1.3x of at {first['messages']:,}",
                    ratio(g[-1]["last20/chatstore"], first["last20/chatstore"]), 1.3, "<="))
    add("| target | measured | met |")
    add("|---|---:|---|")
    for name, value, bound, op in targets:
        met = value >= bound if op == ">=" else value <= bound
        add(f"| {name} | {value:.2f}x | {'yes' if met else 'NO'} |")
    results["targets"] = [{"target": n, "value": v, "met": (v >= b if o == ">=" else v <= b)} for n, v, b, o in targets]
    md = "\n".join(lines) + "\n"
    with open(os.path.join(OUT, "results.md"), "w") as f:
        f.write(md)
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    plot(g)
    print()
    print(md)


def plot(g):
    data = os.path.join(OUT, "growth.dat")
    with open(data, "w") as f:
        f.write("# messages " + " ".join(f"last20_{layout}" for layout in LAYOUTS) + " " +
                " ".join(f"append_{layout}" for layout in LAYOUTS) + "\n")
        for p in g:
            f.write(f"{p['messages']} " + " ".join(str(p[f'last20/{layout}']) for layout in LAYOUTS) + " " +
                    " ".join(str(p[f'append/{layout}']) for layout in LAYOUTS) + "\n")
    gp = f"""
set terminal pngcairo size 1100,450 font ',10'
set output '{os.path.join(OUT, "latency.png")}'
set multiplot layout 1,2 title 'chatstore and the alternatives: median latency as the store grows (100 messages per conversation)'
set logscale xy
set xlabel 'live messages in the store'
set ylabel 'median latency (ms)'
set key top left
set grid
set format x '10^{{%L}}'
set title 'last 20 messages of a conversation'
plot '{data}' using 1:2 with linespoints title 'chatstore.history', \\
     '' using 1:3 with linespoints title 'hand-written SQL floor', \\
     '' using 1:4 with linespoints title 'ORM layout (reads all)', \\
     '' using 1:5 with linespoints title 'LangChain layout (reads all)'
set title 'append one message'
set yrange [0.1:3]
plot '{data}' using 1:6 with linespoints title 'chatstore.append', \\
     '' using 1:7 with linespoints title 'hand-written SQL floor', \\
     '' using 1:8 with linespoints title 'ORM layout (save)', \\
     '' using 1:9 with linespoints title 'LangChain layout'
unset multiplot
"""
    subprocess.run(["gnuplot"], input=gp, text=True, check=True)


def main():
    os.makedirs(OUT, exist_ok=True)
    log(f"chatstore benchmark: {SECONDS} s per measurement, {REPEATS} runs, growth to {MAX_MESSAGES:,} messages")
    execute("DROP SCHEMA IF EXISTS alt CASCADE")
    execute("DROP EXTENSION IF EXISTS chatstore")
    execute("CREATE EXTENSION chatstore")
    with open(os.path.join(HERE, "schema.sql")) as f:
        execute(f.read())
    log("== loading")
    for size, (lo, hi) in SIZES.items():
        load(lo, hi, size, f"size-{size}")
    load(APPEND[0], APPEND[1], 0, "append")
    # a system prompt at the start of the 10,000-message conversations, for the token-budget window
    execute(f"UPDATE chatstore.message SET role = 'system' WHERE seq = 1 AND conversation_id IN "
            f"(SELECT alt.cid(n) FROM generate_series({SIZES[10000][0]}, {SIZES[10000][1]}) n)")
    vacuum_analyze()
    execute("CHECKPOINT")
    if "append" in SECTIONS:
        bench_append()
    if "last20" in SECTIONS:
        bench_last20()
    if "context" in SECTIONS:
        bench_context()
    if "growth" in SECTIONS:
        growth()
    if "archive" in SECTIONS:
        bench_archive()
        bench_purge()
        bench_live_size()
    if "memory" in SECTIONS:
        bench_memory()
    if "search" in SECTIONS:
        bench_search()
    if "append-cost" in SECTIONS:
        bench_append_cost()
    if "append-load" in SECTIONS:
        bench_append_load()
    if set(SECTIONS) >= set(ALL_SECTIONS):
        report()
        return
    # a partial run: its figures and, with the growth series, the plot
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    if "growth" in results:
        plot(results["growth"])


if __name__ == "__main__":
    sys.exit(main())
