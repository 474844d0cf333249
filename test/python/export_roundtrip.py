"""Export/import round trip over real data: every conversation of ../shared/data (the OpenAssistant trees, one
conversation per root-to-leaf path, and the hh-rlhf transcripts, the rejected final reply kept in metadata) is stored
in database A through chatstore.append_many, exported with chatstore.export_conversation, imported into database B
with chatstore.import_conversation (under its id), and exported again from B: the two exports must be identical
JSON. On the way it also checks that importing the same export again is a no-op returning the id, that an import as
a new conversation differs only in its ids, and that archived conversations export as they did when active.

The 1.1 fields ride along: every third conversation is keyed (created by get_or_create_conversation, so its id is
derived from user and key), some are paused or completed (set_state), assistant replies carry usage figures
(input_tokens, output_tokens, latency_ms through append_many), and every other conversation is tagged (tag(), one
tag with non-ASCII letters). A keyed conversation imported as new keeps its key, hence its id: into the database that
holds it already, that import is a no-op returning the id.

Run with Debian's Python (/usr/bin/python3, package python3-psycopg). Databases: EXPORT_DB_A and EXPORT_DB_B (the
rest of the connection from the PG* variables). Data: CHATSTORE_DATA_DIR, default ../shared/data next to the
project; skips (exit 77) when it is absent. All of it: 2,938 conversations, 13,718 messages, about 15 seconds.
"""
import gzip
import json
import os
import re
import sys

import psycopg
from psycopg.types.json import Jsonb

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA_DIR = os.environ.get("CHATSTORE_DATA_DIR") or os.path.join(os.path.dirname(ROOT), "shared", "data")
OASST = os.path.join(DATA_DIR, "oasst_en_100_trees.jsonl")
HH = os.path.join(DATA_DIR, "hh_rlhf_harmless_base_test.jsonl.gz")
ROLES = {"prompter": "user", "assistant": "assistant"}


def oasst_paths(node, prefix):
    """Yield every root-to-leaf path below node as a list of chat-format messages (as oasst_roundtrip.py does),
    each with the tree's own fields in metadata."""
    here = prefix + [{
        "role": ROLES[node["role"]],
        "content": node["text"],
        "metadata": {"oasst": {k: node.get(k) for k in ("message_id", "lang", "rank", "synthetic")}},
    }]
    replies = node.get("replies") or []
    if not replies:
        yield here
    for reply in replies:
        yield from oasst_paths(reply, here)


TURN = re.compile(r"\n\n(Human|Assistant): ")


def hh_turns(transcript):
    """Split "\\n\\nHuman: ...\\n\\nAssistant: ..." into chat-format messages."""
    parts = TURN.split(transcript)
    return [{"role": "user" if who == "Human" else "assistant", "content": text}
            for who, text in zip(parts[1::2], parts[2::2])]


def usage(messages, n):
    """Usage figures on some assistant replies, as an application would pass them; some figures left out."""
    for i, m in enumerate(messages):
        if m["role"] == "assistant" and (i + n) % 3 != 2:
            m["input_tokens"] = 40 * i + n % 97
            if (i + n) % 5 != 0:
                m["output_tokens"] = len(m["content"]) // 4
            if (i + n) % 7 != 0:
                m["latency_ms"] = 300 + (n * 37 + i) % 5000
    return messages


def load_conversations():
    """The conversations to store: (user_id, title, messages)."""
    conversations = []
    with open(OASST, encoding="utf-8") as f:
        for n, line in enumerate(f):
            tree = json.loads(line)
            for path in oasst_paths(tree["prompt"], []):
                conversations.append((f"oasst-{n % 7}", path[0]["content"][:80], usage(path, n)))
    with gzip.open(HH, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f):
            pair = json.loads(line)
            chosen, rejected = hh_turns(pair["chosen"]), hh_turns(pair["rejected"])
            # blank turns are stored only with metadata (append's rule): give them some
            for m in chosen:
                if not m["content"].strip():
                    m["metadata"] = {"blank_turn": True}
            if rejected and chosen and rejected[-1]["content"] != chosen[-1]["content"]:
                chosen[-1].setdefault("metadata", {})["rejected"] = rejected[-1]["content"]
            # a model and a token count on assistant replies, as an application would give them
            for i, m in enumerate(chosen):
                if m["role"] == "assistant" and i % 4 == 1:
                    m["model"] = "hh-assistant"
                    m["tokens"] = len(m["content"]) // 4
            conversations.append((f"hh-{n % 11}", None, usage(chosen, n)))
    return conversations


def canonical(doc):
    return json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def extras(k):
    """The 1.1 fields of the k-th conversation: (key, state, tags)."""
    key = f"session-{k}" if k % 3 == 0 else None
    state = {1: "paused", 2: "completed"}.get(k % 8, None)
    tags = [] if k % 2 else [f"topic-{k % 5}", "Reisen über Nacht" if k % 4 == 0 else "work", f" padded-{k % 3} "]
    return key, state, tags


def without_ids(doc):
    doc = json.loads(json.dumps(doc))
    del doc["conversation"]["id"]
    for m in doc["messages"]:
        del m["id"]
    return doc


def main():
    if not (os.path.exists(OASST) and os.path.exists(HH)):
        print(f"export-roundtrip: skipped: {DATA_DIR} (../shared/data) is not present")
        return 77
    conversations = load_conversations()
    bad = 0
    ids = []
    with psycopg.connect(dbname=os.environ["EXPORT_DB_A"], autocommit=True) as a, \
            psycopg.connect(dbname=os.environ["EXPORT_DB_B"], autocommit=True) as b:
        for db in (a, b):
            db.execute("CREATE EXTENSION chatstore")
        # database A: stored as an application stores them
        keyed = set()
        with a.transaction():
            for k, (user_id, title, messages) in enumerate(conversations):
                key, state, tags = extras(k)
                metadata = Jsonb({"source": user_id.split("-")[0]})
                if key is None:
                    cid = a.execute("SELECT chatstore.create_conversation(%s, %s, %s, %s)",
                                    (user_id, title, metadata, "model-a")).fetchone()[0]
                else:
                    cid = a.execute("SELECT chatstore.get_or_create_conversation(%s, %s, %s, %s, %s)",
                                    (user_id, key, title, metadata, "model-a")).fetchone()[0]
                    keyed.add(cid)
                if messages:
                    a.execute("SELECT count(*) FROM chatstore.append_many(%s, %s)", (cid, Jsonb(messages)))
                if state:
                    a.execute("SELECT 1 FROM chatstore.set_state(%s, %s)", (cid, state))
                if tags:
                    a.execute("SELECT chatstore.tag(%s, VARIADIC %s)", (cid, tags))
                ids.append(cid)
        shown = a.execute("SELECT count(*) FILTER (WHERE key IS NOT NULL), count(*) FILTER (WHERE state <> 'active'),"
                          " (SELECT count(*) FROM chatstore.conversation_tag),"
                          " (SELECT count(*) FROM chatstore.message WHERE input_tokens IS NOT NULL)"
                          " FROM chatstore.conversation").fetchone()
        # some of them archived: the archive exports the same document
        archived = ids[::5]
        with a.transaction():
            for cid in archived:
                a.execute("SELECT chatstore.archive_conversation(%s)", (cid,))

        n_messages = 0
        with b.transaction():
            for k, cid in enumerate(ids):
                exported = a.execute("SELECT chatstore.export_conversation(%s)", (cid,)).fetchone()[0]
                n_messages += len(exported["messages"])
                got = b.execute("SELECT chatstore.import_conversation(%s)", (Jsonb(exported),)).fetchone()[0]
                again = b.execute("SELECT chatstore.export_conversation(%s)", (cid,)).fetchone()[0]
                if got != cid:
                    bad += 1
                    print("import returned another id for", cid, got)
                elif canonical(again) != canonical(exported):
                    bad += 1
                    print("export after import differs for", cid)
                # idempotent: the same import again returns the id and stores nothing
                if k % 10 == 0:
                    twice = b.execute("SELECT chatstore.import_conversation(%s)", (Jsonb(exported),)).fetchone()[0]
                    if twice != cid:
                        bad += 1
                        print("second import returned another id for", cid)
                # as a new conversation: only the ids differ; a keyed one keeps its key and id, so here (where it
                # is stored) the import is a no-op
                if k % 25 == 0 or (cid in keyed and k % 10 == 3):
                    new = b.execute("SELECT chatstore.import_conversation(%s, true)",
                                    (Jsonb(exported),)).fetchone()[0]
                    copy = b.execute("SELECT chatstore.export_conversation(%s)", (new,)).fetchone()[0]
                    if cid in keyed:
                        if new != cid or canonical(copy) != canonical(exported):
                            bad += 1
                            print("keyed import as new is not the stored conversation for", cid, new)
                    elif new == cid or canonical(without_ids(copy)) != canonical(without_ids(exported)):
                        bad += 1
                        print("import as new differs beyond its ids for", cid)
        # the counters are computed, not copied: they match A's
        for cid in ids[::50]:
            ca = a.execute("SELECT message_count, token_count, last_seq, last_activity_at"
                           " FROM chatstore.get_conversation(%s)", (cid,)).fetchone()
            cb = b.execute("SELECT message_count, token_count, last_seq, last_activity_at"
                           " FROM chatstore.get_conversation(%s)", (cid,)).fetchone()
            if ca != cb:
                bad += 1
                print("counters differ for", cid, ca, cb)
        # what B holds, counted
        nb = b.execute("SELECT count(*), sum(message_count) FROM chatstore.conversation"
                       " WHERE id = ANY(%s)", (ids,)).fetchone()
        if nb != (len(ids), n_messages):
            bad += 1
            print("database B holds", nb, "expected", (len(ids), n_messages))
    print(f"export-roundtrip: {len(ids)} conversations ({len(archived)} archived in A; {shown[0]} keyed, "
          f"{shown[1]} paused or completed, {shown[2]} tags, {shown[3]} messages with usage), {n_messages} messages "
          f"exported from A, imported into B and exported again;"
          f" {bad} differ")
    if not all(shown):
        print("export-roundtrip: the data lacks keys, states, tags or usage")
        bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
