"""make bench, section citus: append and last-20 latency on a Citus cluster next to one node, in one run.

Run by test/bench/citus, which starts both (a Citus coordinator with two workers, chatstore distributed, and a one-node
server, all with the binaries of $PG_CONFIG, fsync = off, on 127.0.0.1) and passes their ports in BENCH_CITUS_PORT and
BENCH_ONE_PORT. Loads the same small store into each (BENCH_CITUS_CONVERSATIONS conversations of 100 messages, default
500, plus 100 empty ones that the append workload fills), then measures with pgbench (-M prepared, the median of
BENCH_REPEATS runs of BENCH_SECONDS seconds, as test/bench/bench.py does, whose pgbench runner it uses):
  - append: chatstore.append() to a random one of the 100 conversations;
  - last-20: chatstore.history(id, 20) of a random conversation of 100 messages;
with 1 client (latency) and 4 clients (throughput). Prints a table and writes citus.md and citus.json to BENCH_OUT.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (its pgbench runner, the message text and the knobs BENCH_SECONDS, BENCH_REPEATS)
import psycopg  # noqa: E402

CONVERSATIONS = int(os.environ.get("BENCH_CITUS_CONVERSATIONS", "500"))
MESSAGES = 100
APPEND = (CONVERSATIONS + 1, CONVERSATIONS + 100)
DATABASE = "bench"
CID = "('00000000-0000-7000-8000-' || lpad(:c::text, 12, '0'))::uuid"

bench.SCRIPTS.update({
    "citus/append": f"\\set c random(:lo, :hi)\nSELECT chatstore.append({CID}, 'user', {bench.quote(bench.CONTENT)});\n",
    "citus/last20": f"\\set c random(:lo, :hi)\nSELECT * FROM chatstore.history({CID}, 20);\n",
})


def load(port):
    """The same store on each server: conversations 1..CONVERSATIONS with MESSAGES messages, the append range empty."""
    cid = "('00000000-0000-7000-8000-' || lpad(n::text, 12, '0'))::uuid"
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname=DATABASE, autocommit=True) as c:
        for first, last, messages in ((1, CONVERSATIONS, MESSAGES), (APPEND[0], APPEND[1], 0)):
            c.execute(f"""
                INSERT INTO chatstore.conversation (id, user_id, title, created_at, last_activity_at,
                                                    message_count, token_count, last_seq)
                SELECT {cid}, 'user' || (n % 100), 'bench', now(), now(), {messages}, {messages * bench.TOKENS}, {messages}
                FROM generate_series({first}, {last}) n""")
        c.execute(f"""
            INSERT INTO chatstore.message (conversation_id, seq, id, role, content, tokens, created_at, user_id)
            SELECT {cid}, k, chatstore.uuidv7(), CASE WHEN k % 2 = 1 THEN 'user' ELSE 'assistant' END,
                   'message ' || k || ': ' || {bench.quote(bench.CONTENT)}, {bench.TOKENS}, now(), 'user' || (n % 100)
            FROM generate_series(1, {MESSAGES}) k, generate_series(1, {CONVERSATIONS}) n""")
        c.execute("VACUUM ANALYZE")
        c.execute("CHECKPOINT")


def main():
    out = os.environ.get("BENCH_OUT", "bench-results")
    os.makedirs(out, exist_ok=True)
    servers = {"one node": int(os.environ["BENCH_ONE_PORT"]), "Citus": int(os.environ["BENCH_CITUS_PORT"])}
    bench.log(f"citus: {bench.SECONDS} s per measurement, median of {bench.REPEATS}; "
              f"{CONVERSATIONS} conversations of {MESSAGES} messages")
    results = {}
    for label, port in servers.items():
        bench.log(f"== {label} (port {port})")
        load(port)
        os.environ.update(PGHOST="127.0.0.1", PGPORT=str(port), PGUSER="postgres", PGDATABASE=DATABASE)
        for workload, (lo, hi) in (("append", APPEND), ("last20", (1, CONVERSATIONS))):
            for clients in (1, 4):
                results[f"{label}/{workload}/{clients}"] = bench.measure(f"citus/{workload}", lo, hi, clients=clients)
    rows = ["| workload | clients | one node: median ms | one node: tps | Citus: median ms | Citus: tps |",
            "|---|---|---|---|---|---|"]
    for workload, name in (("append", "append()"), ("last20", "history(id, 20)")):
        for clients in (1, 4):
            one, cit = results[f"one node/{workload}/{clients}"], results[f"Citus/{workload}/{clients}"]
            rows.append(f"| {name} | {clients} | {one['p50_ms']:.2f} | {one['tps']:.0f} | "
                        f"{cit['p50_ms']:.2f} | {cit['tps']:.0f} |")
    table = "\n".join(rows)
    bench.log(table)
    with open(os.path.join(out, "citus.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(out, "citus.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
