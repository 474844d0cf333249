"""Real-data round trip: every root-to-leaf path of the OpenAssistant trees in ../shared/data becomes one
conversation, stored through chatstore.append_many and read back through chatstore.history and
chatstore.history_json; every message must come back unchanged, character for character.

Run with Debian's Python (/usr/bin/python3, package python3-psycopg); connection from the PG* variables.
Skips (exit 77, which test/run-all counts as skipped) when ../shared/data is absent, as in a user's clone.
"""
import json
import os
import sys

import psycopg
from psycopg.types.json import Jsonb

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "oasst_en_100_trees.jsonl")
ROLES = {"prompter": "user", "assistant": "assistant"}


def paths(node, prefix):
    """Yield every root-to-leaf path below node as a list of (role, text)."""
    here = prefix + [(ROLES[node["role"]], node["text"])]
    replies = node.get("replies") or []
    if not replies:
        yield here
    for reply in replies:
        yield from paths(reply, here)


def main():
    if not os.path.exists(DATA):
        print("oasst-roundtrip: skipped: ../shared/data is not present")
        return 77
    conversations = []
    with open(DATA, encoding="utf-8") as f:
        for line in f:
            conversations.extend(paths(json.loads(line)["prompt"], []))
    messages = sum(len(c) for c in conversations)
    chars = sum(len(t) for c in conversations for _, t in c)
    bad = 0
    with psycopg.connect() as conn:
        conn.execute("CREATE EXTENSION chatstore")
        for conv in conversations:
            cid = conn.execute("SELECT chatstore.create_conversation('oasst')").fetchone()[0]
            stored = conn.execute(
                "SELECT seq FROM chatstore.append_many(%s, %s)",
                (cid, Jsonb([{"role": r, "content": t} for r, t in conv])),
            ).fetchall()
            back = conn.execute(
                "SELECT role, content FROM chatstore.history(%s, 10000)", (cid,)
            ).fetchall()
            as_json = conn.execute("SELECT chatstore.history_json(%s, 10000)", (cid,)).fetchone()[0]
            if [s for (s,) in stored] != list(range(1, len(conv) + 1)):
                bad += 1
                print("seq mismatch in conversation", cid)
            elif back != conv:
                bad += 1
                print("history differs in conversation", cid)
            elif as_json != [{"role": r, "content": t} for r, t in conv]:
                bad += 1
                print("history_json differs in conversation", cid)
        conn.rollback()
    print(f"oasst-roundtrip: {len(conversations)} conversations, {messages} messages, {chars} characters "
          f"stored with append_many and read back; {bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
