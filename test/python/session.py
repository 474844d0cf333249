"""A short chatstore session from Python (psycopg 3): the same steps as test/node/session.js and the README.

Connection parameters come from the PG* environment variables (or pass a conninfo string as argument); run as an
app role (chatstore.grant_app): one transaction that declares its user, errors caught in savepoints.
"""
import sys

import psycopg
from psycopg.types.json import Jsonb

with psycopg.connect(sys.argv[1] if len(sys.argv) > 1 else "") as conn, conn.transaction():
    conn.execute("SELECT chatstore.set_user(%s)", ("alice",))
    conv = conn.execute(
        "SELECT chatstore.create_conversation(%s, %s, %s)",
        ("alice", "Weekend in Lisbon", Jsonb({"channel": "web"})),
    ).fetchone()[0]
    print("created conversation, version", str(conv)[14])

    def append(role, content, key=None):
        seq, tokens = conn.execute(
            "SELECT seq, tokens FROM chatstore.append(%s, %s, %s, idempotency_key => %s)",
            (conv, role, content, key),
        ).fetchone()
        print(f"appended {role}: seq {seq}, {tokens} tokens")

    append("system", "You are a concise travel assistant.")
    append("user", "Plan two days in Lisbon.")
    append("assistant", "Day 1: Alfama, tram 28 and Belém. Day 2: Sintra.")
    append("user", "And where should we eat?", key="msg-4")
    append("user", "And where should we eat?", key="msg-4")  # a retry stores nothing

    print("history, last 3:")
    for seq, role, content in conn.execute(
        "SELECT seq, role, content FROM chatstore.history(%s, 3)", (conv,)
    ):
        print(f"  {seq} {role}: {content}")

    print("context within 30 tokens:",
          [s for (s,) in conn.execute("SELECT seq FROM chatstore.context(%s, 30)", (conv,))])
    print("chat JSON, last 2:", conn.execute("SELECT chatstore.history_json(%s, 2)", (conv,)).fetchone()[0])

    try:
        with conn.transaction():  # a savepoint: the error rolls back only this
            conn.execute("SELECT seq FROM chatstore.append(%s, 'user', %s)", (conv, "x" * 40000))
    except psycopg.Error as e:
        print("too long:", e.sqlstate, e.diag.message_primary, "|", e.diag.message_detail)

    print("archived:", conn.execute("SELECT chatstore.archive_conversation(%s)", (conv,)).fetchone()[0])
    try:
        with conn.transaction():
            conn.execute("SELECT seq FROM chatstore.append(%s, 'user', 'hello?')", (conv,))
    except psycopg.Error as e:
        print("append to archived:", e.sqlstate, e.diag.message_hint.replace(str(conv), "<id>"))
    print("restored:", conn.execute("SELECT chatstore.restore(%s)", (conv,)).fetchone()[0])
    print("conversations:", conn.execute(
        "SELECT title, message_count, status FROM chatstore.list_conversations(%s)", ("alice",)).fetchall())
