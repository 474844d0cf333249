"""One client of test/programs/crash-safety: appends to random conversations until told to stop, through crashes.

    crash_clients.py CONNINFO CLIENT_NO CONVERSATIONS_FILE OUT_FILE STOP_FILE SEED

Each call is one of
  - chatstore.append(conv, role, content)                          (60 %)
  - chatstore.append(conv, role, content, idempotency_key => tag)  (20 %)
  - chatstore.append_many(conv, 2 to 4 messages)                   (20 %)
and every message's content starts with a tag unique to that attempt ("c<client>-<n>", "c<client>-<n>.<i>" in a
batch), so the checker can find it again. Once a call has returned, each message it stored is written to OUT_FILE
as an "ack" line and flushed (the server is killed, never this process, so what is flushed is kept).

When the connection breaks (the postmaster was killed), the outcome of the call in flight is unknown: it is written
as "lost" lines (one per message, all with the batch's tag in the group column), and the client reconnects until the
server is back or STOP_FILE exists. A keyed append in flight is then retried with the same key: the server must
return the one message with that key, whether the first attempt committed or not; the retry's result is the ack.

Any error other than a broken connection or a server that is starting or shutting down is unexpected: it is written
as an "error" line and the call is not retried (it changed nothing, so its messages must be absent).

OUT_FILE lines are tab-separated, for COPY: kind, client, conversation_id, seq, message id, content, group, group size
(\\N where unknown).
"""
import os
import random
import sys
import time

import psycopg
from psycopg.types.json import Jsonb

conninfo, client, conv_file, out_file, stop_file, seed = sys.argv[1:7]
rng = random.Random(int(seed))
with open(conv_file) as f:
    conversations = [line.strip() for line in f if line.strip()]
out = open(out_file, "a", buffering=1)
words = "the quick brown fox jumps over a lazy dog while seventeen tokenizers count every syllable".split()
counts = {"ack": 0, "lost": 0, "error": 0, "retried": 0, "reconnects": 0}


def record(kind, conv, seq, msg_id, content, group, size):
    n = "\\N"
    out.write("\t".join(str(x) if x is not None else n
                        for x in (kind, client, conv, seq, msg_id, content, group, size)) + "\n")
    out.flush()


def connection_broken(e):
    """Whether an error means the server went away (the call's outcome is then unknown)."""
    if isinstance(e, (psycopg.OperationalError, psycopg.InterfaceError)):
        return True
    # 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now, 08xxx connection exceptions
    return bool(e.sqlstate) and (e.sqlstate.startswith("57P") or e.sqlstate.startswith("08"))


def connect():
    """A new connection, or None once STOP_FILE exists."""
    while not os.path.exists(stop_file):
        try:
            return psycopg.connect(conninfo, autocommit=True, connect_timeout=3)
        except psycopg.Error:
            time.sleep(0.1)
    return None


def text(tag):
    return tag + " " + " ".join(rng.choice(words) for _ in range(rng.randint(0, 40)))


def one_call(conn, n, pending):
    """Make one call (or retry the pending keyed append); returns the messages it stored, acknowledged."""
    if pending is not None:
        conv, role, content, key = pending
        kind = "keyed"
    else:
        conv = rng.choice(conversations)
        r = rng.random()
        kind = "plain" if r < 0.6 else "keyed" if r < 0.8 else "many"
        tag = f"c{client}-{n}"
        role = rng.choice(("user", "assistant"))
        content, key = text(tag), tag
    if kind == "many":
        batch = [{"role": rng.choice(("user", "assistant")), "content": text(f"{tag}.{i}")}
                 for i in range(rng.randint(2, 4))]
        try:
            rows = conn.execute("SELECT seq, id, content FROM chatstore.append_many(%s, %s)",
                                (conv, Jsonb(batch))).fetchall()
        except psycopg.Error as e:
            what = "lost" if connection_broken(e) else "error"
            for m in batch:
                record(what, conv, None, None, m["content"], tag, len(batch))
            counts[what] += len(batch)
            if what == "error":
                print(f"client {client}: unexpected error {e.sqlstate}: {e}", file=sys.stderr)
            return what, None
        for seq, msg_id, c in rows:
            record("ack", conv, seq, msg_id, c, tag, len(batch))
        counts["ack"] += len(rows)
        return "ack", None
    try:
        if kind == "plain":
            row = conn.execute("SELECT seq, id, content FROM chatstore.append(%s, %s, %s)",
                               (conv, role, content)).fetchone()
        else:
            row = conn.execute("SELECT seq, id, content FROM chatstore.append(%s, %s, %s, idempotency_key => %s)",
                               (conv, role, content, key)).fetchone()
    except psycopg.Error as e:
        if connection_broken(e):
            if kind == "keyed":     # retried after reconnecting; not written as lost
                return "lost", (conv, role, content, key)
            record("lost", conv, None, None, content, content.split(" ")[0], 1)
            counts["lost"] += 1
            return "lost", None
        record("error", conv, None, None, content, content.split(" ")[0], 1)
        counts["error"] += 1
        print(f"client {client}: unexpected error {e.sqlstate}: {e}", file=sys.stderr)
        return "error", None
    if row[2] != content:
        print(f"client {client}: append returned content {row[2]!r}, sent {content!r}", file=sys.stderr)
        record("error", conv, row[0], row[1], content, content.split(" ")[0], 1)
        counts["error"] += 1
        return "error", None
    record("ack", conv, row[0], row[1], content, content.split(" ")[0], 1)
    counts["ack"] += 1
    if pending is not None:
        counts["retried"] += 1
    return "ack", None


def main():
    conn = connect()
    n = 0
    pending = None
    while conn is not None:
        if os.path.exists(stop_file):
            break
        if pending is None:
            n += 1
        result, pending = one_call(conn, n, pending)
        if result == "lost":
            try:
                conn.close()
            except Exception:
                pass
            conn = connect()
            counts["reconnects"] += 1
    if pending is not None:         # stopped before the keyed retry could be made: its outcome stays unknown
        conv, role, content, key = pending
        record("lost", conv, None, None, content, key, 1)
        counts["lost"] += 1
    if conn is not None:
        conn.close()
    print(f"client {client}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 1 if counts["error"] else 0


sys.exit(main())
