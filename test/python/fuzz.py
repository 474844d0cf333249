"""Fuzz every chatstore function with generated calls and check each answer against a model of the store.

Each call goes to the server as one statement with bound parameters (psycopg), in its own transaction: NULLs in
every position, empty strings, strings up to 10 MB, every spelling of a message role, combining characters,
right-to-left text, emoji sequences, 4-byte characters, SQL-injection look-alikes in every text argument,
non-object and deeply nested JSON, huge and negative numbers, random, nil and malformed UUIDs, and conversations
that exist (active and archived), existed, or never did.  About one call in ten runs in a transaction that acts
for one user (SET LOCAL chatstore.user_id); now and then several calls share a transaction, each in a savepoint,
and the session's role and search_path must be intact after each; stretches of calls run under other limits
(chatstore.max_message_chars, max_user_message_chars, max_metadata_bytes, max_title_chars, archive_after, SET
as a superuser).

The program keeps a model of every conversation and message, so it knows what each call must do:
  - a call whose arguments PostgreSQL cannot even convert (malformed uuid/json/interval, a number outside int4,
    JSON nested deeper than the stack allows) must fail with the input function's SQLSTATE, before chatstore runs;
  - a call with an argument chatstore must refuse must fail with one of the SQLSTATEs documented for that defect
    (22004 NULL, 22023 out of range, 22001 too long, P0002 no such conversation, 55000 archived, 42501 another
    user's; see ALLOWED below);
  - any other call must succeed, and its result must be right: an append returns what was sent with the next seq,
    a history/context/history_json window equals the window computed from the model, counters and stats match.
Anything else is printed with the call and counts as unexpected.  A lost connection (the server crashed) ends
the run at once.  Afterwards SQL checks the invariants (counters equal counts, seq gapless from 1, tokens sum,
no conversation in both tables, status archived exactly when archived_at is set, no orphan archived message)
and that every conversation and message equals the model.

Run with Debian's Python (/usr/bin/python3, package python3-psycopg), connected by the PG* variables to a
database of its own with chatstore installed and nobody else writing (test/programs/fuzz makes one).
  CHATSTORE_FUZZ_SEED   the seed (printed at the start of every run); the calls follow from it, except where
                        they depend on time (archive() and purge() by idle time) or on server-made uuids
  CHATSTORE_FUZZ_CALLS  how many calls to send (default 20,000; 200,000 with CHATSTORE_STRESS=1)
  CHATSTORE_FUZZ_STRICT=1  report the known chatstore bugs listed in the TODO below as unexpected too
Prints calls, successes and errors by SQLSTATE per function, and ends with "fuzz: N calls, 0 unexpected".
"""
import json
import os
import random
import sys
import time
import uuid
from datetime import timedelta
from decimal import Decimal

import psycopg
from psycopg.types.json import set_json_loads

# Chatstore bugs this fuzzer found are fixed, each with a regression test; while one is open it is listed here,
# allow-listed so that the rest of a run proceeds, counted and printed at the end (CHATSTORE_FUZZ_STRICT=1 turns
# the allow-list off).  Fixed: update_conversation refused a NULL metadata argument when the stored metadata was
# over a lowered chatstore.max_metadata_bytes (sql/conversation.sql).
KNOWN_BUGS = {}

sys.set_int_max_str_digits(0)  # jsonb numbers such as 1e400 come back with all their digits

SEED = int(os.environ.get("CHATSTORE_FUZZ_SEED") or random.SystemRandom().randrange(1, 2**31))
STRESS = os.environ.get("CHATSTORE_STRESS") == "1"
CALLS = int(os.environ.get("CHATSTORE_FUZZ_CALLS") or (200_000 if STRESS else 20_000))
MAX_UNEXPECTED = 25  # stop after this many unexpected results
STRICT = os.environ.get("CHATSTORE_FUZZ_STRICT") == "1"  # no allow-listed known bugs
rng = random.Random(SEED)

INT4_MIN, INT4_MAX = -(2**31), 2**31 - 1
MAX_WINDOW = 10000
MAX_ID_BYTES = 255  # user_id, idempotency_key, model
ROLES = ("system", "user", "assistant", "tool")
CHAT_FIELDS = ("name", "tool_calls", "tool_call_id")
ELEMENT_KEYS = ("role", "content", "metadata", "tokens", "model") + CHAT_FIELDS

# SQLSTATEs that PostgreSQL's own input functions and casts raise before chatstore runs: invalid text
# representation (uuid, int, json), numeric value out of range (int4 casts, numeric in json), invalid datetime
# format / datetime field overflow / interval field overflow (interval), untranslatable character (\u0000 in
# json), statement too complex (json nested past max_stack_depth), undefined object / invalid name (regrole).
INPUT_STATES = {"22P02", "22003", "22007", "22008", "22015", "22P05", "54001", "42704", "42602"}
# What each function may answer itself, from the pg_regress suites, test/retention.sql and the README.
ALLOWED = {
    "uuidv7": set(),
    "estimate_tokens": set(),
    "is_admin": set(),
    "create_conversation": {"22004", "22023", "22001", "42501"},  # 22001: user_id over 255 bytes (not in README)
    "get_conversation": {"22004", "P0002"},
    "list_conversations": {"22004", "22023", "P0002"},
    "update_conversation": {"22004", "22023", "22001", "P0002"},
    "delete_conversation": {"22004", "P0002"},
    "append": {"22004", "22023", "22001", "P0002", "55000"},
    "append_many": {"22004", "22023", "22001", "P0002", "55000"},
    "history": {"22004", "22023", "P0002"},
    "context": {"22004", "22023", "P0002"},
    "history_json": {"22004", "22023", "P0002"},
    "archive": {"22023", "22008"},  # 22008: now() - older_than out of range (not in README)
    "archive_conversation": {"22004", "P0002"},
    "restore": {"22004", "P0002"},
    "purge": {"22004", "22023", "22008"},  # 22008 as for archive
    "erase_user": {"22004"},
    "stats": set(),
    "grant_app": {"22004"},
    "grant_admin": {"22004"},
    "revoke": {"22004"},
}

# Code points chatstore counts as blank in content (limits.c IsWhiteSpace): exactly those with the Unicode
# White_Space property (PropList.txt); U+200B ZERO WIDTH SPACE and the other invisible characters are content.
BLANK = set(" \t\n\x0b\x0c\r\x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | {chr(c) for c in range(0x2000, 0x200B)}
# What the generator draws blank-looking content from, written out apart from BLANK so that the oracle's set
# can be wrong without the generator following it: every Unicode White_Space code point, and zero-width and
# blank-looking ones that are not White_Space (content holding any of those is not blank for chatstore).
BLANK_LIST = list(" \t\n\x0b\x0c\r\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
                  "\u200a\u2028\u2029\u202f\u205f\u3000\u200b\u2060\ufeff\u180e\u115f\u1160\u3164\uffa0\u2800")
INVISIBLE = ["\u200c", "\u200d", "\u00ad", "\u2062", "\u034f", "\U000E0020", "\u180b", "\u200e", "\u2061", "\u17b4",
             "\x1c", "\x1d", "\x1e", "\x1f"]


def is_blank(s):
    return all(c in BLANK for c in s)



def blank_text():
    """Empty, one blank code point repeated, a mix of them, or one that only looks blank."""
    r = rng.random()
    if r < 0.1:
        return ""
    if r < 0.6:
        return rng.choice(BLANK_LIST) * rng.randint(1, 3)
    if r < 0.85:
        return "".join(rng.choice(BLANK_LIST) for _ in range(rng.randint(1, 8)))
    return "".join(rng.choice(BLANK_LIST + INVISIBLE) for _ in range(rng.randint(0, 3))) + rng.choice(INVISIBLE)


# ---------------------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------------------

INJECTION = [
    "'; DROP TABLE chatstore.message; --", "Robert'); DROP TABLE chatstore.conversation;--", "' OR '1'='1",
    "' OR 1=1 --", "1; SELECT pg_sleep(10); --", "$$; DROP SCHEMA chatstore CASCADE; $$", "\\'; TRUNCATE chatstore.message; --",
    "%s", "%(x)s", "$1", "$2::text", "E'\\x41'", "'||(SELECT current_user)||'", "\"; DROP EXTENSION chatstore; --",
    "*/ DROP TABLE chatstore.conversation; /*", "'); COPY chatstore.conversation TO PROGRAM 'touch /tmp/pwned'; --",
    "chatstore.conversation", "0; SET ROLE postgres", "admin'--", "' UNION SELECT * FROM pg_authid --",
    "'; SELECT chatstore.erase_user('alice'); --", "\\", "\\\\", "'", "''", "\"", "`rm -rf /`", "${7*7}", "{{7*7}}",
    "<script>alert(1)</script>", "'; RESET ROLE; SET chatstore.user_id = 'alice'; --", "\\x27", "%27 OR %271%27=%271",
    "'; UPDATE chatstore.conversation SET user_id = 'eve'; --", "::jsonb", "NULL", "null", "None", "DEFAULT",
]
EMOJI = ["😀", "👩‍👩‍👧‍👦", "🏳️‍🌈", "👍🏽", "🇵🇹", "🧑🏿‍🚀", "❤️", "🫠", "👨‍💻", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "🤦🏼‍♂️", "1️⃣"]
FOUR_BYTE = ["𝕳𝖊𝖑𝖑𝖔", "𠜎𠜱𠝹", "𐍈", "\U0010FFFF", "𝄞", "🀄", "\U0001F9D1", "𓀀", "\U000E0041"]
RTL = ["مرحبا بالعالم", "שָׁלוֹם עוֹלָם", "\u202eevil.exe\u202c", "abc \u200fעברית\u200e def", "\u061c", "ܫܠܡܐ",
       "اَلْعَرَبِيَّةُ", "\u202bمرحبا\u202c", "\u2067abc\u2069"]
COMBINING = ["e\u0301", "a\u0300\u0301\u0302\u0303\u0304", "\u0301", "n\u0303", "\u20dd", "A\u030a", "Å",
             "ก\u0e31\u0e49", "\u0915\u094d\u0937", "Z" + "".join(chr(0x300 + i % 0x6f) for i in range(60))]
SCRIPTS = ["東京", "日本語のテキスト", "한국어", "Ελληνικά", "Кириллица", "हिन्दी", "ไทย", "ﷺ", "ǅ", "ß", "İı",
           "café", "naïve", "Ünïcödé", "\ufffd", "\ufffe", "\uffff"]
CONTROL = ["\x01", "\x07", "\x1b[31mred\x1b[0m", "\x7f", "\x1f", "\r\n", "\b", "\u0080", "\u009f"]
WORDS = ["hello", "world", "Lisbon", "plan", "two", "days", "the", "a", "x", "42", "3.14", "-1", "SELECT", "FROM",
         "chatstore", "user", "assistant", "tool", "system", "{}", "[]", "null", "true"]
ATOM_POOLS = [WORDS, WORDS, INJECTION, EMOJI, FOUR_BYTE, RTL, COMBINING, SCRIPTS, CONTROL, BLANK_LIST]
ROLE_SPELLINGS = ["User", "USER", " user", "user ", "usér", "ｕｓｅｒ", "user\u200b", "u\u0301ser", "assistant\n",
                  "Assistant", "ASSISTANT", "bot", "function", "developer", "model", "human", "ai", "", "sys",
                  "tool_call", "ToOl", "System", "sуstem", "systeｍ", "\u200buser", "assistants", "users", "tools",
                  "İ", "user\t", "ʏser"]


def rand_char():
    while True:
        c = rng.randrange(1, 0x110000)
        if not 0xD800 <= c <= 0xDFFF:
            return chr(c)


def text_short():
    """A short string from the pools above, or random code points."""
    r = rng.random()
    if r < 0.2:
        return rng.choice(INJECTION)
    if r < 0.28:
        return "".join(rand_char() for _ in range(rng.randint(1, 12)))
    if r < 0.31:
        return ""
    parts = [rng.choice(rng.choice(ATOM_POOLS)) for _ in range(rng.randint(1, 6))]
    return (" " if rng.random() < 0.6 else "").join(parts)


def text_medium():
    n = rng.randint(100, 3000)
    out, size = [], 0
    while size < n:
        s = text_short()
        out.append(s)
        size += len(s) + 1
    return " ".join(out)


def text_exact(n):
    """Exactly n code points of one repeated unit (ASCII, 2-, 3- or 4-byte characters, or a combining pair)."""
    unit = rng.choice(["a", "é", "東", "😀", "e\u0301", "ab c"])
    return (unit * (n // len(unit) + 1))[:n]


def text_huge():
    """1 to 10 MB."""
    size = rng.choice([1, 2, 5, 10]) * 1_000_000
    unit = rng.choice(["x", "é", "東", "😀", "'; DROP TABLE chatstore.message; -- ", "e\u0301"])
    return unit * (size // len(unit.encode()))


def text_any(big=0.001):
    r = rng.random()
    if r < big:
        return text_huge()
    if r < 0.85:
        return text_short()
    if r < 0.97:
        return text_medium()
    return text_exact(rng.choice([255, 256, 1000, 5000]))


class Raw:
    """A JSON number written exactly as given (1e400, -0, 1.50)."""

    def __init__(self, text):
        self.text = text


class Dup:
    """A JSON object written with the given (key, value) pairs, duplicates included."""

    def __init__(self, pairs):
        self.pairs = pairs


def dumps(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, Raw):
        return v.text
    if isinstance(v, (int, Decimal)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=rng.random() < 0.1)
    if isinstance(v, list):
        return "[" + ", ".join(dumps(x) for x in v) + "]"
    if isinstance(v, Dup):
        return "{" + ", ".join(dumps(k) + ": " + dumps(x) for k, x in v.pairs) + "}"
    if isinstance(v, dict):
        return "{" + ", ".join(dumps(k) + ": " + dumps(x) for k, x in v.items()) + "}"
    raise TypeError(type(v))


def canonical(v):
    """JSON text of a model value (for asking the server its jsonb size)."""
    if isinstance(v, dict):
        return "{" + ", ".join(json.dumps(k) + ": " + canonical(x) for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(canonical(x) for x in v) + "]"
    if isinstance(v, str):
        return json.dumps(v)
    return dumps(v)


def jloads(s):
    return json.loads(s, parse_float=Decimal)


NUMBERS = [0, 1, -1, 42, INT4_MAX, INT4_MIN, 2**31, 2**63, -(2**63) - 1, 10**30, -(10**30), Raw("1e400"), Raw("-0"),
           Raw("1.50"), Raw("0.1"), Raw("-2.25"), Raw("1E-7"), Raw("123456789012345678901234567890.5")]


def json_value(depth=0):
    r = rng.random()
    if depth < 3 and r < 0.15:
        return {text_short(): json_value(depth + 1) for _ in range(rng.randint(0, 4))}
    if depth < 3 and r < 0.25:
        return [json_value(depth + 1) for _ in range(rng.randint(0, 4))]
    if r < 0.55:
        return text_short()
    if r < 0.8:
        return rng.choice(NUMBERS)
    return rng.choice([True, False, None])


def json_object():
    r = rng.random()
    if r < 0.15:
        return {}
    if r < 0.25:  # a tool call, as an assistant message carries it
        return {"tool_calls": [{"id": "call_" + str(rng.randint(1, 99)), "type": "function",
                                "function": {"name": text_short(), "arguments": dumps({"q": text_short()})}}]}
    if r < 0.3:
        return Dup([("k", 1), ("k", text_short()), (text_short(), None)])
    if r < 0.35:  # nested, within what Python's json can read back
        d = rng.randint(20, 300)
        return {"deep": json.loads("[" * d + "]" * d)}
    return {text_short(): json_value() for _ in range(rng.randint(1, 6))}


# ---------------------------------------------------------------------------------------------------------
# Arguments: what is sent, what chatstore sees, and whether PostgreSQL's input conversion refuses it
# ---------------------------------------------------------------------------------------------------------

class Arg:
    __slots__ = ("send", "v", "null", "omit", "codes")

    def __init__(self, send, v=None, null=False, omit=False, codes=()):
        self.send, self.v, self.null, self.omit, self.codes = send, v, null, omit, set(codes)


def NULL():
    return Arg(None, None, null=True)


def OMIT(default):
    """Argument left out: the function's default applies (default None means SQL NULL)."""
    return Arg(None, default, null=default is None, omit=True)


def BAD(send, *codes):
    return Arg(send, None, codes=codes)


# Half of the calls are "clean": their arguments are all of the right kind (no NULL where one is required, no
# malformed or out-of-range value), so that conversations grow long enough to make windows interesting.
CLEAN = [False]


def dirty(p):
    """True with probability p, never in a clean call."""
    return not CLEAN[0] and rng.random() < p


def maybe_null(arg, p=0.06):
    return NULL() if dirty(p) else arg


def g_text(gen=text_any, p_null=0.06):
    if dirty(p_null):
        return NULL()
    s = gen()
    return Arg(s, s)


def g_int(typical, p_null=0.06):
    """An int argument: typical values from the callable, boundaries, numbers outside int4 (22003 in the cast)
    and numbers spelled as text, well formed or not."""
    r = rng.random()
    if r < p_null and not CLEAN[0]:
        return NULL()
    if r < 0.75 or CLEAN[0]:
        v = typical()
        return Arg(v, v)
    if r < 0.88:
        v = rng.choice([0, 1, -1, 2, MAX_WINDOW, MAX_WINDOW + 1, INT4_MAX, INT4_MIN, INT4_MAX - 1])
        return Arg(v, v)
    if r < 0.94:
        return BAD(rng.choice([2**31, -(2**31) - 1, 2**63 - 1, -(2**63), 10**30, -(10**40)]), "22003")
    good = [(" 42 ", 42), ("+7", 7), ("-0", 0), ("00012", 12), ("2147483647", INT4_MAX), ("-2147483648", INT4_MIN),
            ("\t3\n", 3)]
    bad = [("1e3", "22P02"), ("0x10", "22P02"), ("1_000", "22P02"), ("", "22P02"), ("٣", "22P02"),
           ("NaN", "22P02"), ("1.5", "22P02"), ("12abc", "22P02"), ("2147483648", "22003"),
           ("-2147483649", "22003"), ("99999999999999999999", "22003"), (rng.choice(INJECTION), "22P02")]
    if rng.random() < 0.5:
        s, v = rng.choice(good)
        return Arg(s, v)
    s, code = rng.choice(bad)
    return BAD(s, code)


def uuid_spelling(u):
    """A uuid as psycopg sends it: the object, or one of the spellings uuid_in accepts."""
    r = rng.random()
    if r < 0.8:
        return u
    h = u.hex
    return rng.choice([str(u), str(u).upper(), "{" + str(u) + "}", h, "-".join(h[i:i + 4] for i in range(0, 32, 4)),
                       "{" + h + "}"])


MALFORMED_UUIDS = ["not-a-uuid", "", "12345", "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", " 00000000-0000-0000-0000-000000000000",
                   "00000000-0000-0000-0000-00000000000", "00000000-0000-0000-0000-0000000000000", "{00000000000000000000000000000000",
                   "00000000-0000-0000-0000-000000000000 "]


def g_uuid_any(ids, p_null=0.06):
    """One of the given ids (when any), a uuid that names nothing, NULL, or a malformed one."""
    r = rng.random()
    if r < p_null and not CLEAN[0]:
        return NULL()
    if ids and (r < 0.75 or CLEAN[0]):
        u = rng.choice(ids)
        return Arg(uuid_spelling(u), u)
    if r < 0.82 and GONE:
        u = rng.choice(GONE)
        return Arg(uuid_spelling(u), u)
    if r < 0.93:
        u = rng.choice([random_v4(), uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), random_v7()])
        return Arg(uuid_spelling(u), u)
    s = rng.choice(MALFORMED_UUIDS + INJECTION[:5] + [str(random_v4()) + "0"])
    return BAD(s, "22P02")


def random_v4():
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def random_v7():
    """A version 7 uuid of about now (the time of the last id the server made) that names nothing."""
    return uuid.UUID(int=(LAST_ID[0].int >> 80 << 80) | (0x7 << 76) | (2 << 62) | rng.getrandbits(62))


HOT = 6  # the oldest conversations: most calls may pick them, so they get long; deletes leave them alone


def g_conv(prefer=None, p_null=0.06, hot=True):
    convs = list(MODEL.values())
    if not hot:
        convs = convs[HOT:]
    elif rng.random() < 0.3:
        convs = convs[:HOT]
    if prefer and rng.random() < 0.75:
        wanted = [c for c in convs if c.status == prefer]
        convs = wanted or convs
    return g_uuid_any([c.id for c in convs], p_null)


def g_json(gen=json_object, p_null=0.0):
    """A jsonb argument, sent as JSON text: v is the parsed value; malformed or unconvertible text gets the
    input function's SQLSTATE."""
    r = rng.random()
    if CLEAN[0]:
        r = 0.06 + r * 0.94
    if r < p_null:
        return NULL()
    if r < 0.02:
        return BAD(rng.choice(["{a: 1}", "{", "", "[1,]", "{\"a\" 1}", "NaN", "'{}'", "{\"a\": 01}", "tru",
                               "{\"a\": \"\\ud800\"}", rng.choice(INJECTION)]), "22P02")
    if r < 0.025:
        return BAD("{\"a\": \"x\\u0000y\"}", "22P05")
    if r < 0.028:
        return BAD("{\"a\": 1e1000000}", "22003")
    if r < 0.03:
        d = 300_000
        return BAD("[" * d + "]" * d, "54001")  # past max_stack_depth: PostgreSQL's json parser stops
    if r < 0.06:  # not an object
        v = rng.choice([[], [1, 2], "text", 3, Raw("-1e400"), True, None, [{"role": "user"}]])
        text = dumps(v)
        return Arg(text, jloads(text))
    v = gen()
    text = dumps(v)
    return Arg(text, jloads(text))


def g_metadata(p_null=0.06):
    r = rng.random() if not CLEAN[0] else 1
    if r < 0.006:  # over chatstore.max_metadata_bytes
        v = {"blob": text_exact(rng.choice([70_000, 200_000, 1_000_000]))}
        text = dumps(v)
        return Arg(text, jloads(text))
    if r < 0.01:  # near it
        v = {"blob": "x" * max(0, LIMITS["meta"] + rng.randint(-120, 80))}
        text = dumps(v)
        return Arg(text, jloads(text))
    return g_json(p_null=p_null)


# Intervals: (text or timedelta, span in microseconds as interval comparison counts it, or "overflow" when
# now() - it is out of the timestamp range, or the input function's SQLSTATE(s)).
D = 86_400_000_000
INTERVALS = [("0", 0), ("1 second", 10**6), ("2 seconds", 2 * 10**6), ("00:00:05", 5 * 10**6), ("30 seconds", 30 * 10**6),
             ("1 minute", 60 * 10**6), ("1 hour", 3600 * 10**6), ("1 day", D), ("90 days", 90 * D), ("1 mon", 30 * D),
             ("P1D", D), ("PT1S", 10**6), ("1 year", 360 * D), ("1000 years", 360_000 * D), ("-0", 0), ("1.5 days", D * 3 // 2),
             ("0.000001 seconds", 1), ("1 week", 7 * D), ("P1Y2M3DT4H5M6S", None), ("1 mon -30 days", 0),
             ("-1 day", -D), ("1 day -25 hours", -3600 * 10**6), ("1 mon -31 days", -D), ("-1 second", -(10**6)),
             ("@ 1 minute ago", -60 * 10**6), ("-178000000 years", -1), (timedelta(0), 0), (timedelta(seconds=1), 10**6),
             (timedelta(days=1), D), (timedelta(microseconds=-1), -1), (timedelta(days=-3), -3 * D),
             ("100000 years", "overflow"), ("178000000 years", "overflow"), (timedelta(days=999_999_999), "overflow"),
             ("soon", {"22007"}), ("", {"22007"}), ("1 fortnight", {"22007"}), ("'; DROP TABLE x; --", {"22007"}),
             ("1; SELECT pg_sleep(10)", {"22007"}), ("%s", {"22007"}), ("1000000000 years", {"22008"}),
             ("99999999999 days", {"22015"})]


LARGE_INTERVALS = [(t, span) for t, span in INTERVALS if not isinstance(span, int) or span < 0 or span >= 3600 * 10**6]


def g_interval(p_null=0.05, kind="any"):
    """kind: "small" (0 to 1 day: archives or purges much), "large" (1 hour and up, or bad), "any"."""
    if dirty(p_null):
        return NULL()
    choices = {"small": INTERVALS[:8], "large": LARGE_INTERVALS, "any": INTERVALS}[kind]
    send, span = rng.choice(choices)
    while CLEAN[0] and not isinstance(span, int) or CLEAN[0] and span < 0:
        send, span = rng.choice(choices)
    if isinstance(span, set):
        return BAD(send, *span)
    if span is None:
        span = 1  # positive
    return Arg(send, span)


# ---------------------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------------------

class Msg:
    __slots__ = ("seq", "id", "role", "content", "metadata", "model", "tokens", "key")


class Conv:
    __slots__ = ("id", "user", "title", "model", "status", "metadata", "msgs", "keys", "tokens")

    def __init__(self, cid, user, title, model, metadata):
        self.id, self.user, self.title, self.model, self.metadata = cid, user, title, model, metadata
        self.status, self.msgs, self.keys, self.tokens = "active", [], {}, 0


MODEL = {}  # id -> Conv, in creation order
GONE = []  # ids of deleted conversations
USERS = ["alice", "bob", "carol", "dave", "user-ü", "مستخدم", "用户", "👩‍💻", "o'brien", "'; DROP TABLE chatstore.conversation; --",
         "x" * 255, "é" * 127 + "a", " ", "\u200b", "ALICE", "alice ", "a\u0301lvaro", "álvaro", "$1", "%s", "\\", "NULL"]
ESTIMATES = {}  # content -> estimate_tokens, from appends without tokens and from estimate_tokens calls
ESTIMATED = []  # its keys, to pick from


def remember_estimate(content, n):
    """Check an estimate against an earlier one of the same text (estimate_tokens is IMMUTABLE, and append
    stores what it says); remember short texts."""
    if content in ESTIMATES:
        eq("estimate (vs an earlier one of the same text)", n, ESTIMATES[content])
    elif len(content) <= 2000 and len(ESTIMATED) < 5000:
        ESTIMATES[content] = n
        ESTIMATED.append(content)


def visible(c, actor):
    return c is not None and (actor is None or c.user == actor)


def find(arg, actor):
    """The conversation an argument names, when it exists and the actor may see it."""
    c = MODEL.get(arg.v) if not arg.null else None
    return c if visible(c, actor) else None


# ---------------------------------------------------------------------------------------------------------
# Calling and judging
# ---------------------------------------------------------------------------------------------------------

class Unexpected(Exception):
    pass


class Outcome:
    """What a call must do: fail with one of `fail` (when not empty), or else succeed and pass `check`;
    `maybe` lists SQLSTATEs that are acceptable either way."""

    def __init__(self, fail=(), check=None, maybe=(), context=None, known=None):
        self.fail, self.check, self.maybe, self.context = set(fail), check, set(maybe), context
        self.known = known  # a key of KNOWN_BUGS: the maybe states are that bug


STATS = {}  # function -> {"calls", "ok", "client", states...}
UNEXPECTED = []
LAST_ID = [uuid.UUID(int=0)]


def stat(fn, key):
    s = STATS.setdefault(fn, {})
    s[key] = s.get(key, 0) + 1


def short(v, n=120):
    r = repr(v)
    if isinstance(v, str) and len(v) > 60:
        r = f"<{len(v)} chars, {len(v.encode())} bytes: {v[:40]!r}...>"
    return r if len(r) <= n else r[:n] + "..."


def has_nul(v):
    return isinstance(v, str) and "\x00" in v


def unexpected(fn, sql, params, actor, what):
    UNEXPECTED.append(fn)
    changed = q("SELECT string_agg(name || ' = ' || setting, ', ' ORDER BY name) FROM pg_catalog.pg_settings"
                " WHERE name LIKE 'chatstore.%%' AND source = 'session'")[0][0] if not conn.broken else None
    print(f"UNEXPECTED in {fn}: {what}\n  call: {sql}\n  params: [{', '.join(short(p) for p in params)}]"
          + (f"\n  acting for user {actor!r}" if actor is not None else "")
          + (f"\n  with SET {changed}" if changed else ""), flush=True)
    if len(UNEXPECTED) >= MAX_UNEXPECTED:
        raise SystemExit(finish(crashed=False))


def check_id(u, what):
    if u.version != 7 or u.variant != uuid.RFC_4122:
        raise Unexpected(f"{what} {u} is not a version 7 uuid")
    if u <= LAST_ID[0]:
        raise Unexpected(f"{what} {u} is not greater than the previous id made by this session ({LAST_ID[0]})")
    LAST_ID[0] = u


BATCH = [False]  # inside a transaction of several calls, each in a savepoint


def run_sql(sql, params, actor):
    """Run one fuzzed statement: alone (autocommit), or in a savepoint of the current batch; acting for
    `actor` (or with chatstore.user_id set to '') in a transaction of its own or the batch's."""
    act = actor is not None or EMPTY_ACTOR[0]
    if not act and not BATCH[0]:
        return conn.execute(sql, params).fetchall()
    with conn.transaction():
        if act:
            conn.execute("SELECT pg_catalog.set_config('chatstore.user_id', %s, true)", (actor or "",))
        rows = conn.execute(sql, params).fetchall()
    if act and BATCH[0]:  # SET LOCAL outlives the released savepoint: put it back for the next call
        conn.execute("SELECT pg_catalog.set_config('chatstore.user_id', '', true)")
    return rows


def call(fn, args, names, decide, actor=None, returns="value"):
    """Send one call of chatstore.<fn> with the given Args (names: "name::type" for each, in order) and judge
    the result by decide(): -> Outcome.  returns: "value" (SELECT f(...)), "rows" (SELECT * FROM f(...))."""
    sig = []
    params = []
    named = False
    for a, nt in zip(args, names):
        if a.omit:
            named = True
            continue
        name, typ = nt.split("::")
        named = named or (len(sig) > 0 and rng.random() < 0.1)
        sig.append(f"{name} => %s::{typ}" if named else f"%s::{typ}")
        params.append(a.send)
    texts = [i for i, p in enumerate(params) if isinstance(p, str) and len(p) < 100_000]
    if texts and dirty(0.003):  # PostgreSQL text cannot hold NUL: psycopg refuses to send it
        i = rng.choice(texts)
        k = rng.randint(0, len(params[i]))
        params[i] = params[i][:k] + "\x00" + params[i][k:]
    target = f"chatstore.{fn}({', '.join(sig)})"
    sql = f"SELECT {target}" if returns == "value" else f"SELECT * FROM {target}"

    if any(has_nul(p) for p in params):  # psycopg refuses to send text with NUL bytes
        try:
            run_sql(sql, params, actor)
        except psycopg.DataError as e:
            if e.sqlstate is None:
                stat(fn, "client")
                return
            raise
        unexpected(fn, sql, params, actor, "a parameter with a NUL byte was sent")
        return

    codes = set().union(*(a.codes for a in args))
    outcome = Outcome(fail=codes) if codes else decide()
    stat(fn, "calls")
    try:
        rows = run_sql(sql, params, actor)
    except psycopg.OperationalError as e:
        if conn.closed or conn.broken:
            print(f"CONNECTION LOST in {fn}: {e}\n  call: {sql}\n  params: [{', '.join(short(p) for p in params)}]")
            raise SystemExit(finish(crashed=True))
        rows, err = None, e
    except psycopg.Error as e:
        rows, err = None, e
    if rows is None:
        state = err.sqlstate
        stat(fn, state or "client-error")
        if outcome.known and state in outcome.maybe and state not in outcome.fail:
            KNOWN_HITS[outcome.known] = KNOWN_HITS.get(outcome.known, 0) + 1
        allowed = outcome.fail | outcome.maybe
        if state not in allowed or state not in ALLOWED[fn] | INPUT_STATES:
            expect = f"one of {sorted(allowed)}" if allowed else "success"
            if state in allowed:
                expect = f"{state} is not documented for {fn}"
            unexpected(fn, sql, params, actor, f"failed with {state}: {str(err).splitlines()[0][:300]} ({expect})")
            resync()
        elif outcome.context and outcome.context not in (err.diag.context or ""):
            unexpected(fn, sql, params, actor, f"{state} error without context '{outcome.context}': {err.diag.context!r}")
        return
    stat(fn, "ok")
    if outcome.fail:
        unexpected(fn, sql, params, actor, f"succeeded, expected one of {sorted(outcome.fail)}; result {short(rows, 300)}")
        resync()
        return
    try:
        if outcome.check:
            outcome.check(rows)
    except Unexpected as e:
        unexpected(fn, sql, params, actor, f"wrong result: {e}")
        resync()


def q(sql, params=()):
    """A query of the test's own (not a fuzzed call)."""
    return conn.execute(sql, params).fetchall()


def metadata_too_big(v):
    """Is a JSON object larger than chatstore.max_metadata_bytes in its jsonb form?  Small ones are decided
    here; others are measured by the server."""
    text = canonical(v)
    if len(text) * 8 < LIMITS["meta"]:  # jsonb takes at most about 4 bytes per character of JSON text
        return False
    if len(text) > 12 * LIMITS["meta"] + 1000:  # and at least one byte per 6 (an escape such as \u0001)
        return True
    return q("SELECT pg_catalog.pg_column_size(%s::jsonb)", (text,))[0][0] > LIMITS["meta"]


def meta_defect(a):
    """22023 when a metadata argument is not an object, 22001 when too large; None for NULL or a good object."""
    if a.null:
        return None
    if not isinstance(a.v, dict):
        return "22023"
    if metadata_too_big(a.v):
        return "22001"
    return None


def title_model_defects(title, model):
    """22001 when a title is over chatstore.max_title_chars code points or a model name over 255 bytes."""
    out = set()
    if not title.null and len(title.v) > LIMITS["title"]:
        out.add("22001")
    if not model.null and len(model.v.encode()) > MAX_ID_BYTES:
        out.add("22001")
    return out


def eq(what, got, want):
    if got != want:
        raise Unexpected(f"{what}: got {short(got, 200)}, expected {short(want, 200)}")


def check_conv_row(row, c):
    # 1.0's columns; columns added since (state, ...) are checked by their own suites
    cid, user, title, model, status, metadata, count, tokens, last_seq, created, last_activity, archived_at = row[:12]
    eq("id", cid, c.id)
    eq("user_id", user, c.user)
    eq("title", title, c.title)
    eq("model", model, c.model)
    eq("status", status, c.status)
    eq("metadata", metadata, c.metadata)
    eq("message_count", count, len(c.msgs))
    eq("last_seq", last_seq, len(c.msgs))
    eq("token_count", tokens, c.tokens)
    eq("archived_at set", archived_at is not None, c.status == "archived")
    if created is None or last_activity is None or last_activity < created:
        raise Unexpected(f"created_at {created} / last_activity_at {last_activity}")


def check_msg_row(row, c, m):
    cid, seq, mid, role, content, metadata, model, tokens, created, key = row[:10]   # then usage, user_id
    eq("usage (input_tokens, output_tokens, latency_ms)", tuple(row[10:13]), (None, None, None))
    eq("conversation_id", cid, c.id)
    eq("seq", seq, m.seq)
    eq("id", mid, m.id)
    eq("role", role, m.role)
    eq("content", content, m.content)
    eq("metadata", metadata, m.metadata)
    eq("model", model, m.model)
    eq("tokens", tokens, m.tokens)
    eq("idempotency_key", key, m.key)
    if created is None:
        raise Unexpected("created_at is NULL")


def store_msg(c, row, role, content, metadata, model, tokens, key):
    """Check a freshly appended message row and add it to the model."""
    cid, seq, mid, r_role, r_content, r_meta, r_model, r_tokens, created, r_key = row[:10]   # then usage, user_id
    eq("usage (input_tokens, output_tokens, latency_ms)", tuple(row[10:13]), (None, None, None))
    eq("conversation_id", cid, c.id)
    eq("seq", seq, len(c.msgs) + 1)
    check_id(mid, "message id")
    eq("role", r_role, role)
    eq("content", r_content, content)
    eq("metadata", r_meta, metadata)
    eq("model", r_model, model)
    if tokens is not None:
        eq("tokens", r_tokens, tokens)
    elif not isinstance(r_tokens, int) or r_tokens < 0:
        raise Unexpected(f"estimated tokens {r_tokens}")
    else:
        remember_estimate(content, r_tokens)
    eq("idempotency_key", r_key, key)
    if created is None:
        raise Unexpected("created_at is NULL")
    m = Msg()
    m.seq, m.id, m.role, m.content, m.metadata, m.model, m.tokens, m.key = seq, mid, role, content, metadata, model, r_tokens, key
    c.msgs.append(m)
    c.tokens += r_tokens
    if key is not None:
        c.keys[key] = m


def content_defects(role, content, has_metadata):
    out = set()
    limit = LIMITS["all"]
    if role == "user":
        limit = min(limit, LIMITS["user"])
    if len(content) > limit:
        out.add("22001")
    if not has_metadata and is_blank(content):
        out.add("22023")
    return out


# ---------------------------------------------------------------------------------------------------------
# One generator per function
# ---------------------------------------------------------------------------------------------------------

EMPTY_ACTOR = [False]


def pick_actor():
    """None (the superuser acts for everyone) or, one call in ten, a user this transaction acts for."""
    EMPTY_ACTOR[0] = rng.random() < 0.02  # chatstore.user_id set to '': the same as not set
    if rng.random() < 0.9:
        return None
    owners = [c.user for c in MODEL.values()]
    if owners and rng.random() < 0.85:
        return rng.choice(owners)
    return rng.choice(USERS + ["nobody-" + str(rng.randint(1, 9))])


def g_role():
    r = rng.random()
    if r < 0.8 or CLEAN[0]:
        s = rng.choice(ROLES)
    elif r < 0.95:
        s = rng.choice(ROLE_SPELLINGS)
    elif r < 0.995:
        s = text_short()
    else:
        s = text_huge()
    return Arg(s, s)


def g_content(role):
    if CLEAN[0]:
        s = ""
        while is_blank(s):
            s = text_short() if rng.random() < 0.8 else text_medium()
        return Arg(s, s)
    r = rng.random()
    if r < 0.45:
        s = text_short()
    elif r < 0.58:
        s = text_medium()
    elif r < 0.78:
        s = blank_text()
    elif r < 0.8:
        limit = LIMITS["user"] if role == "user" else LIMITS["all"]
        s = text_exact(limit + rng.choice([-1, 0, 1]))
    elif r < 0.801:
        s = text_huge()
    else:
        s = rng.choice(INJECTION) + " " + text_short()
    return Arg(s, s)


def g_key():
    r = rng.random()
    if CLEAN[0]:
        r *= 0.85
    if r < 0.65:
        return OMIT(None) if rng.random() < 0.5 else NULL()
    if r < 0.85:
        s = "k" + str(rng.randint(1, 6))  # retried keys
    elif r < 0.88:
        s = ""
    elif r < 0.93:
        s = rng.choice(["é" * 127 + "a", "é" * 128, "k" * 255, "k" * 256, "😀" * 63 + "abc", "😀" * 64])
    elif r < 0.931:
        s = text_huge()
    else:
        s = text_short() or "k"
    return Arg(s, s)


def g_model_name():
    """A model name at, just over or far over the 255-byte limit, in 1- to 4-byte characters."""
    ch = rng.choice(["m", "é", "模", "😀"])
    n = MAX_ID_BYTES // len(ch.encode()) + rng.choice([0, 1, 1000])
    return ch * n


def f_append():
    actor = pick_actor()
    conv = g_conv(prefer="active")
    role = maybe_null(g_role())
    content = maybe_null(g_content(role.v))
    meta = OMIT(None) if rng.random() < 0.4 else g_metadata(p_null=0.3)
    tokens = OMIT(None) if rng.random() < 0.5 else g_int(lambda: rng.randint(0, 500), p_null=0.4)
    model = OMIT(None) if rng.random() < 0.5 else g_text(lambda: rng.choice(["gpt-4o", "claude", text_short(), g_model_name()]), 0.5)
    key = g_key()

    def decide():
        fail = title_model_defects(NULL(), model)
        if conv.null or role.null or content.null:
            fail.add("22004")
        if not key.null:
            n = len(key.v.encode())
            if n == 0:
                fail.add("22023")
            elif n > MAX_ID_BYTES:
                fail.add("22001")
        if not role.null and role.v not in ROLES:
            fail.add("22023")
        md = meta_defect(meta)
        if md:
            fail.add(md)
        has_meta = not meta.null and isinstance(meta.v, dict) and len(meta.v) > 0
        if not content.null and not role.null:
            fail |= content_defects(role.v, content.v, has_meta)
        if not tokens.null and tokens.v < 0:
            fail.add("22023")
        if fail:
            return Outcome(fail)
        c = find(conv, actor)
        if c is None:
            return Outcome({"P0002"})
        if c.status == "archived":
            return Outcome({"55000"})
        metadata = {} if meta.null else meta.v
        mdl = None if model.null else model.v

        def check(rows):
            eq("rows", len(rows), 1)
            if not key.null and key.v in c.keys:
                check_msg_row(rows[0], c, c.keys[key.v])  # a retry: the first message, nothing stored
            else:
                store_msg(c, rows[0], role.v, content.v, metadata, mdl, None if tokens.null else tokens.v,
                          None if key.null else key.v)
        return Outcome(check=check)

    call("append", [conv, role, content, meta, tokens, model, key],
         ["conversation_id::uuid", "role::text", "content::text", "metadata::jsonb", "tokens::int", "model::text",
          "idempotency_key::text"], decide, actor, returns="rows")


def g_element():
    """One element of append_many's array: mostly good, sometimes with one defect."""
    if dirty(0.03):
        return rng.choice(["just text", 3, None, [], [{"role": "user", "content": "x"}], True])
    role = rng.choice(ROLES) if not dirty(0.07) else rng.choice(ROLE_SPELLINGS + [3, None, ["user"]])
    if dirty(0.03):
        content = rng.choice([None, 3, ["parts"], {"text": "x"}, True])
    else:
        content = g_content(role if isinstance(role, str) else "").v
    el = {"role": role, "content": content}
    if dirty(0.02):
        del el["role"]
    if dirty(0.02):
        del el["content"]
    if rng.random() < 0.3:
        el["metadata"] = rng.choice([json_object(), json_object(), None] + ([] if CLEAN[0] else [[1], "x"]))
    if rng.random() < 0.3:
        el["tokens"] = rng.choice([rng.randint(0, 300), rng.randint(0, 300), 0, None, Raw("1.0"), Raw("1e2"),
                                   Raw("-0"), INT4_MAX] +
                                  ([] if CLEAN[0] else [-2, Raw("1.5"), Raw("1e400"), 99999999999, INT4_MAX + 1,
                                                        "5", True, [1], Raw("1e-400")]))
    if rng.random() < 0.2:
        el["model"] = rng.choice(["gpt-4o", text_short(), None] + ([] if CLEAN[0] else [4, {"m": 1}, g_model_name()]))
    if rng.random() < 0.15:
        el["name"] = rng.choice([text_short(), None, 1])
    if rng.random() < 0.1:
        el["tool_call_id"] = rng.choice(["call_1", None, text_short()])
    if rng.random() < 0.1:
        el["tool_calls"] = rng.choice([[{"id": "call_1", "type": "function"}], None, [], "x"])
    if dirty(0.03):
        el[rng.choice(["contnet", "Role", "extra", "", "tool_call", text_short() or "x"])] = 1
    if dirty(0.02):
        return Dup(list(el.items()) + [("role", rng.choice(ROLES + ("bot",)))])
    return el


def element_defects(el):
    """(set of SQLSTATEs, None) for a bad element, or (empty set, (role, content, metadata, model, tokens))."""
    if not isinstance(el, dict):
        return {"22023"}, None
    if any(k not in ELEMENT_KEYS for k in el):
        return {"22023"}, None
    role, content = el.get("role"), el.get("content", 0)
    if not isinstance(role, str) or "content" not in el or not (content is None or isinstance(content, str)):
        return {"22023"}, None
    content = content or ""
    metadata = el.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        return {"22023"}, None
    tokens = el.get("tokens")
    if tokens is not None:
        if isinstance(tokens, bool) or not isinstance(tokens, (int, Decimal)):
            return {"22023"}, None
        if tokens != int(tokens) or not INT4_MIN <= int(tokens) <= INT4_MAX:
            return {"22023"}, None
        tokens = int(tokens)  # a negative one is refused later, with the content checks
    model = el.get("model")
    if model is not None and not isinstance(model, str):
        return {"22023"}, None
    fields = {k: el[k] for k in CHAT_FIELDS if el.get(k) is not None}
    if fields:
        metadata = {**(metadata or {}), **fields}
    out = set()
    if role not in ROLES:
        out.add("22023")
    if metadata is not None and metadata_too_big(metadata):
        out.add("22001")
    if model is not None and len(model.encode()) > MAX_ID_BYTES:
        out.add("22001")
    out |= content_defects(role, content, bool(metadata))
    if tokens is not None and tokens < 0:
        out.add("22023")
    if out:
        return out, None
    return set(), (role, content, metadata or {}, model, tokens)


def f_append_many():
    actor = pick_actor()
    conv = g_conv(prefer="active")
    r = rng.random() if not CLEAN[0] else 1
    if r < 0.06:
        msgs = NULL()
    elif r < 0.12:
        msgs = g_json(json_object)  # mostly an object, not an array
    elif r < 0.14:
        msgs = Arg("[]", [])
    else:
        n = rng.choice([1, 1, 2, 3, 5, 8, 20]) if rng.random() < 0.995 else rng.choice([500, 2000])
        v = [g_element() for _ in range(n)]
        text = dumps(v)
        msgs = Arg(text, jloads(text))

    def decide():
        fail = set()
        if conv.null or msgs.null:
            fail.add("22004")
        context = None
        if not msgs.null:
            if not isinstance(msgs.v, list) or not msgs.v:
                fail.add("22023")
            else:
                parsed = []
                for i, el in enumerate(msgs.v):
                    bad, p = element_defects(el)
                    if bad:
                        fail |= bad
                        context = None if conv.null else f"element {i + 1} of messages"
                        break
                    parsed.append(p)
        if fail:
            return Outcome(fail, context=context)
        c = find(conv, actor)
        if c is None:
            return Outcome({"P0002"})
        if c.status == "archived":
            return Outcome({"55000"})

        def check(rows):
            eq("rows", len(rows), len(parsed))
            for row, (role, content, metadata, model, tokens) in zip(rows, parsed):
                store_msg(c, row, role, content, metadata, model, tokens, None)
        return Outcome(check=check)

    call("append_many", [conv, msgs], ["conversation_id::uuid", "messages::jsonb"], decide, actor, returns="rows")


def window_history(c, max_messages, before):
    msgs = c.msgs if before is None else [m for m in c.msgs if m.seq < before]
    return msgs[-max_messages:] if max_messages else []


def window_context(c, max_tokens, max_messages):
    """(messages, None) or (None, "22023") when the leading system messages exceed max_tokens."""
    lead = []
    for m in c.msgs:
        if m.role != "system":
            break
        lead.append(m)
    used = sum(m.tokens for m in lead)
    if used > max_tokens:
        return None, "22023"
    run = []
    for m in reversed(c.msgs[len(lead):]):
        if used + m.tokens > max_tokens or len(run) >= max_messages:
            break
        used += m.tokens
        run.append(m)
    return lead + run[::-1], None


def check_window(rows, c, want):
    eq("window (seqs)", [r[1] for r in rows], [m.seq for m in want])
    for row, m in zip(rows, want):
        check_msg_row(row, c, m)


def typical_window():
    return rng.choice([1, 2, 3, 5, 10, 20, 50, 1000, MAX_WINDOW])


def f_history():
    actor = pick_actor()
    conv = g_conv()
    mx = OMIT(20) if rng.random() < 0.3 else g_int(typical_window)
    before = OMIT(None) if rng.random() < 0.4 else g_int(lambda: rng.randint(-2, 60), p_null=0.3)

    def decide():
        fail = set()
        if conv.null or mx.null:
            fail.add("22004")
        elif not 1 <= mx.v <= MAX_WINDOW:
            fail.add("22023")
        if fail:
            return Outcome(fail)
        c = find(conv, actor)
        if c is None:
            return Outcome({"P0002"})
        return Outcome(check=lambda rows: check_window(rows, c, window_history(c, mx.v, before.v)))

    call("history", [conv, mx, before], ["conversation_id::uuid", "max_messages::int", "before_seq::int"], decide,
         actor, returns="rows")


def typical_tokens():
    return rng.choice([1, 5, 10, 50, 100, 300, 1000, 5000, 100000, INT4_MAX])


def f_context():
    actor = pick_actor()
    conv = g_conv()
    mt = g_int(typical_tokens)
    mx = OMIT(None) if rng.random() < 0.5 else g_int(typical_window, p_null=0.3)

    def decide():
        fail = set()
        if conv.null or mt.null:
            fail.add("22004")
        if not mt.null and mt.v < 1:
            fail.add("22023")
        if not mx.null and not 1 <= mx.v <= MAX_WINDOW:
            fail.add("22023")
        if fail:
            return Outcome(fail)
        c = find(conv, actor)
        if c is None:
            return Outcome({"P0002"})
        want, err = window_context(c, mt.v, MAX_WINDOW if mx.null else mx.v)
        if err:
            return Outcome({err})
        return Outcome(check=lambda rows: check_window(rows, c, want))

    call("context", [conv, mt, mx], ["conversation_id::uuid", "max_tokens::int", "max_messages::int"], decide,
         actor, returns="rows")


def chat_json(m):
    d = {"role": m.role, "content": m.content}
    for f in CHAT_FIELDS:
        if f in m.metadata:
            d[f] = m.metadata[f]
    return d


def f_history_json():
    actor = pick_actor()
    conv = g_conv()
    mx = OMIT(20) if rng.random() < 0.3 else g_int(typical_window)
    mt = OMIT(None) if rng.random() < 0.4 else g_int(typical_tokens, p_null=0.3)

    def decide():
        fail = set()
        if conv.null or mx.null:
            fail.add("22004")
        elif not 1 <= mx.v <= MAX_WINDOW:
            fail.add("22023")
        if not mt.null and mt.v < 1:
            fail.add("22023")
        if fail:
            return Outcome(fail)
        c = find(conv, actor)
        if c is None:
            return Outcome({"P0002"})
        if mt.null:
            want = window_history(c, mx.v, None)
        else:
            want, err = window_context(c, mt.v, mx.v)
            if err:
                return Outcome({err})
        return Outcome(check=lambda rows: eq("messages", rows[0][0], [chat_json(m) for m in want]))

    call("history_json", [conv, mx, mt], ["conversation_id::uuid", "max_messages::int", "max_tokens::int"], decide,
         actor)


def g_user(p_null=0.06):
    r = rng.random() if not CLEAN[0] else 0.5
    if r < p_null:
        return NULL()
    if r < 0.85:
        s = rng.choice(USERS)
    elif r < 0.9:
        s = ""
    elif r < 0.93:
        s = rng.choice(["x" * 256, "é" * 128, "😀" * 64])
    elif r < 0.932:
        s = text_huge()
    else:
        s = text_short()
    return Arg(s, s)


def f_create_conversation():
    actor = pick_actor()
    user = g_user()
    if actor is not None and rng.random() < 0.7 and not user.null:
        user = Arg(actor, actor)
    title = OMIT(None) if rng.random() < 0.3 else g_text(lambda: text_any(big=0.002), p_null=0.2)
    meta = OMIT({}) if rng.random() < 0.4 else g_metadata(p_null=0.2)
    model = OMIT(None) if rng.random() < 0.5 else g_text(lambda: rng.choice(["gpt-4o", text_any(big=0.002)]), 0.3)

    def decide():
        fail = title_model_defects(title, model)
        if user.null:
            fail.add("22004")
        elif user.v == "":
            fail.add("22023")
        elif len(user.v.encode()) > MAX_ID_BYTES:
            fail.add("22001")
        if not meta.omit:
            md = meta_defect(meta)
            if md:
                fail.add(md)
        if fail:
            return Outcome(fail)
        if actor is not None and user.v != actor:
            return Outcome({"42501"})

        def check(rows):
            cid = rows[0][0]
            check_id(cid, "conversation id")
            MODEL[cid] = Conv(cid, user.v, title.v, model.v, {} if meta.null else meta.v)
            if len(title.v or "") + len(model.v or "") > 100_000:  # read once, then gone: keep the run fast
                NEXT.append(lambda: f_get_conversation(cid))
                NEXT.append(lambda: f_delete_conversation(cid))
        return Outcome(check=check)

    call("create_conversation", [user, title, meta, model], ["user_id::text", "title::text", "metadata::jsonb",
                                                             "model::text"], decide, actor)


def f_get_conversation(cid=None):
    actor = pick_actor() if cid is None else None
    conv = g_conv() if cid is None else Arg(cid, cid)

    def decide():
        if conv.null:
            return Outcome({"22004"})
        c = find(conv, actor)
        if c is None:
            return Outcome({"P0002"})

        def check(rows):
            eq("rows", len(rows), 1)
            check_conv_row(rows[0], c)
        return Outcome(check=check)

    call("get_conversation", [conv], ["conversation_id::uuid"], decide, actor, returns="rows")


def f_list_conversations():
    actor = pick_actor()
    user = g_user()
    if actor is not None and rng.random() < 0.7 and not user.null:
        user = Arg(actor, actor)
    r = rng.random() if not CLEAN[0] else rng.random() * 0.9
    if r < 0.3:
        status = OMIT("active")
    elif r < 0.9:
        status = maybe_null(Arg(*[rng.choice(["active", "archived"])] * 2), 0.3)
    else:
        s = rng.choice(["deleted", "Active", "ACTIVE", "active ", "", "both", "archived\n", text_short()])
        status = Arg(s, s)
    mx = OMIT(50) if rng.random() < 0.3 else g_int(lambda: rng.choice([1, 2, 3, 10, 50, MAX_WINDOW]))
    r = rng.random()
    if r < 0.6:
        before = OMIT(None)
    else:
        mine = [c.id for c in MODEL.values() if not user.null and c.user == user.v]
        before = g_uuid_any(mine if mine and rng.random() < 0.8 else [c.id for c in MODEL.values()], 0.2)

    def decide():
        fail = set()
        if user.null or mx.null:
            fail.add("22004")
        if not mx.null and not 1 <= mx.v <= MAX_WINDOW:
            fail.add("22023")
        if not status.null and status.v not in ("active", "archived"):
            fail.add("22023")
        if fail:
            return Outcome(fail)
        if actor is not None and user.v != actor:
            return Outcome(check=lambda rows: eq("rows for another user", rows, []))
        b = None if before.null else MODEL.get(before.v)
        if not before.null and (b is None or b.user != user.v):
            return Outcome({"P0002"})

        def check(rows):
            # the page as the model and the conversations' activity times say it must be
            activity = dict(q("SELECT id, last_activity_at FROM chatstore.conversation WHERE user_id = %s", (user.v,)))
            cands = [c for c in MODEL.values() if c.user == user.v and (status.null or c.status == status.v)]
            key = lambda c: (activity[c.id], c.id)  # noqa: E731
            if b is not None:
                cands = [c for c in cands if key(c) < key(b)]
            want = sorted(cands, key=key, reverse=True)[:mx.v]
            eq("page", [r[0] for r in rows], [c.id for c in want])
            for row, c in zip(rows, want):
                check_conv_row(row, c)
        return Outcome(check=check)

    call("list_conversations", [user, status, mx, before], ["user_id::text", "status::text", "max_results::int",
                                                            "before::uuid"], decide, actor, returns="rows")


def f_update_conversation(cid=None, title=None, model=None):
    if cid is not None:  # put back a short title and model
        return call("update_conversation", [Arg(cid, cid), Arg(title, title), OMIT(None), Arg(model, model)],
                    ["conversation_id::uuid", "title::text", "metadata::jsonb", "model::text"],
                    lambda: update_outcome(MODEL.get(cid), Arg(title, title), NULL(), Arg(model, model)), returns="rows")
    actor = pick_actor()
    conv = g_conv()
    title = OMIT(None) if rng.random() < 0.4 else g_text(lambda: text_any(big=0.002), p_null=0.3)
    r = rng.random()
    if r < 0.35:
        meta = OMIT(None)
    elif r < 0.5:  # keys set to null are removed
        c = MODEL.get(conv.v) if not conv.null else None
        keys = list(c.metadata) if c and c.metadata else [text_short()]
        v = {k: None for k in rng.sample(keys, min(len(keys), rng.randint(1, 3)))}
        v[text_short()] = json_value()
        text = dumps(v)
        meta = Arg(text, jloads(text))
    else:
        meta = g_metadata(p_null=0.2)
    model = OMIT(None) if rng.random() < 0.5 else g_text(lambda: rng.choice(["gpt-4.1", text_short(), g_model_name()]), 0.3)

    def decide():
        fail = title_model_defects(title, model)
        if conv.null:
            fail.add("22004")
        if not meta.null and not isinstance(meta.v, dict):
            fail.add("22023")
        if fail:
            return Outcome(fail)
        return update_outcome(find(conv, actor), title, meta, model)

    call("update_conversation", [conv, title, meta, model], ["conversation_id::uuid", "title::text",
                                                             "metadata::jsonb", "model::text"], decide, actor,
         returns="rows")


def update_outcome(c, title, meta, model):
    """What update_conversation must do to conversation c (None: not there for the caller)."""
    if c is None:
        return Outcome({"P0002"})
    merged = c.metadata
    if not meta.null:
        merged = {k: v for k, v in {**c.metadata, **meta.v}.items() if meta.v.get(k, 0) is not None}
        if metadata_too_big(merged):
            return Outcome({"22001"})
    known = None

    def check(rows):
        eq("rows", len(rows), 1)
        if not title.null:
            c.title = title.v
        if not model.null:
            c.model = model.v
        c.metadata = merged
        check_conv_row(rows[0], c)
        if len(c.title or "") + len(c.model or "") > 100_000:
            NEXT.append(lambda: f_update_conversation(c.id, "short again", "m"))
    if known:
        return Outcome(check=check, maybe={"22023"}, known=known)
    return Outcome(check=check)


def forget(c):
    del MODEL[c.id]
    GONE.append(c.id)


def f_delete_conversation(cid=None):
    actor = pick_actor() if cid is None else None
    conv = Arg(cid, cid) if cid is not None else g_conv(hot=False) if rng.random() < 0.5 else g_uuid_any([], 0.15)

    def decide():
        if conv.null:
            return Outcome({"22004"})
        c = find(conv, actor)
        if c is None:
            return Outcome({"P0002"})

        def check(rows):
            eq("result", rows[0][0], True)
            forget(c)
        return Outcome(check=check)

    call("delete_conversation", [conv], ["conversation_id::uuid"], decide, actor)


def f_archive_conversation():
    actor = pick_actor()
    conv = g_conv(prefer="active")

    def decide():
        if conv.null:
            return Outcome({"22004"})
        c = find(conv, actor)
        if c is None:
            return Outcome({"P0002"})

        def check(rows):
            eq("result", rows[0][0], c.status == "active")
            c.status = "archived"
        return Outcome(check=check)

    call("archive_conversation", [conv], ["conversation_id::uuid"], decide, actor)


def f_restore():
    actor = pick_actor()
    conv = g_conv(prefer="archived")

    def decide():
        if conv.null:
            return Outcome({"22004"})
        c = find(conv, actor)
        if c is None:
            return Outcome({"P0002"})

        def check(rows):
            eq("result", rows[0][0], c.status == "archived")
            c.status = "active"
        return Outcome(check=check)

    call("restore", [conv], ["conversation_id::uuid"], decide, actor)


def cutoff_now(iv, setting=None):
    """The time minus the interval (or the setting when the interval is NULL), as the server computes it: in a
    batch exactly the cutoff of archive() and purge() (the transaction's start), alone the clock's time, before
    or after the call, so that the cutoff lies between the two."""
    now = "pg_catalog.now()" if BATCH[0] else "pg_catalog.clock_timestamp()"
    if setting is not None:
        return q(f"SELECT {now} - pg_catalog.current_setting(%s)::interval", (setting,))[0][0]
    return q(f"SELECT {now} - %s::interval", (iv,))[0][0]


def f_archive():
    actor = pick_actor()
    mx = OMIT(None) if rng.random() < 0.15 else g_int(lambda: rng.choice([1, 1, 2, 3, 5]), p_null=0.05)
    if mx.null:  # without a limit, only long idle times: archiving every conversation would starve the appends
        older = g_interval(p_null=0, kind="large")
    elif rng.random() < 0.15:
        older = OMIT(None)  # chatstore.archive_after
    else:
        older = g_interval(kind=rng.choice(["small", "small", "any"]))

    def decide():
        fail = set()
        span = 90 * D if older.null else older.v
        if span == "overflow":
            fail.add("22008")
        elif span < 0:
            fail.add("22023")
        if not mx.null and mx.v < 1:
            fail.add("22023")
        if fail:
            return Outcome(fail)
        limit = None if mx.null else mx.v
        before = {cid: (la, user) for cid, la, user in
                  q("SELECT id, last_activity_at, user_id FROM chatstore.conversation WHERE status = 'active'")}
        lo = cutoff_now(older.send, "chatstore.archive_after" if older.null else None)

        def check(rows):
            hi = cutoff_now(older.send, "chatstore.archive_after" if older.null else None)
            n = rows[0][0]
            now_status = dict(q("SELECT id, status FROM chatstore.conversation"))
            moved = [cid for cid in before if now_status.get(cid) == "archived"]
            eq("archived count vs conversations archived", n, len(moved))
            if limit is not None and n > limit:
                raise Unexpected(f"archived {n} conversations, more than max_conversations {limit}")
            for cid in moved:
                la, user = before[cid]
                if actor is not None and user != actor:
                    raise Unexpected(f"archived {cid} of user {user!r} while acting for {actor!r}")
                if la >= hi:
                    raise Unexpected(f"archived {cid} whose last activity {la} is after the cutoff {hi}")
            idle = [cid for cid, (la, user) in before.items()
                    if la < lo and cid not in moved and (actor is None or user == actor)]
            if idle and (limit is None or n < limit):
                raise Unexpected(f"left {len(idle)} idle conversations active, e.g. {idle[0]}")
            if idle and moved and max(before[c][0] for c in moved) > min(before[c][0] for c in idle):
                raise Unexpected("did not archive the longest idle first")
            for cid in moved:
                MODEL[cid].status = "archived"
        return Outcome(check=check)

    call("archive", [older, mx], ["older_than::interval", "max_conversations::int"], decide, actor)


def f_purge():
    actor = pick_actor()
    older = g_interval(kind="small" if rng.random() < 0.1 else "large")

    def decide():
        if older.null:
            return Outcome({"22004"})
        if older.v != "overflow" and older.v < 0:
            return Outcome({"22023"})
        if older.v == "overflow":
            return Outcome({"22008"})
        before = {cid: (at, user) for cid, at, user in
                  q("SELECT id, archived_at, user_id FROM chatstore.conversation WHERE status = 'archived'")}
        lo = cutoff_now(older.send)

        def check(rows):
            hi = cutoff_now(older.send)
            n = rows[0][0]
            left = {cid for (cid,) in q("SELECT id FROM chatstore.conversation")}
            gone = [cid for cid in before if cid not in left]
            eq("purged count vs conversations gone", n, len(gone))
            for cid in gone:
                at, user = before[cid]
                if actor is not None and user != actor:
                    raise Unexpected(f"purged {cid} of user {user!r} while acting for {actor!r}")
                if at >= hi:
                    raise Unexpected(f"purged {cid} archived at {at}, after the cutoff {hi}")
            kept = [cid for cid, (at, user) in before.items()
                    if at < lo and cid in left and (actor is None or user == actor)]
            if kept:
                raise Unexpected(f"kept {len(kept)} conversations archived before the cutoff, e.g. {kept[0]}")
            for cid in gone:
                forget(MODEL[cid])
        return Outcome(check=check)

    call("purge", [older], ["archived_before::interval"], decide, actor)


def f_erase_user():
    actor = pick_actor()
    r = rng.random()
    hot_owners = {c.user for c in list(MODEL.values())[:HOT]}
    owners = [c.user for c in list(MODEL.values())[HOT:] if c.user not in hot_owners]
    if r < 0.05 and owners:
        u = rng.choice(owners)
        user = Arg(u, u)
    else:
        user = g_user()
        if not user.null and any(c.user == user.v for c in MODEL.values()):
            user = Arg("nobody " + user.v, "nobody " + user.v)  # keep most users' conversations for the others
    if actor is not None and rng.random() < 0.3 and not user.null and actor not in hot_owners:
        user = Arg(actor, actor)

    def decide():
        if user.null:
            return Outcome({"22004"})
        mine = [c for c in MODEL.values() if c.user == user.v and visible(c, actor)]

        def check(rows):
            eq("erased", rows[0][0], len(mine))
            for c in mine:
                forget(c)
        return Outcome(check=check)

    call("erase_user", [user], ["user_id::text"], decide, actor)


def f_stats():
    actor = pick_actor()

    def decide():
        cs = [c for c in MODEL.values() if visible(c, actor)]
        active = [c for c in cs if c.status == "active"]
        archived = [c for c in cs if c.status == "archived"]
        total = sum(len(c.msgs) for c in cs)
        want = (len(cs), len(active), len(archived), sum(len(c.msgs) for c in active),
                sum(len(c.msgs) for c in archived),
                (Decimal(total) / max(len(cs), 1)).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP"))
        # 1.0's figures, then (1.1) conversations per state (the fuzzer never sets a state, so all are active) and
        # response times (no latency_ms is ever given here)
        want = want + (len(cs), 0, 0, None, None, None)
        return Outcome(check=lambda rows: eq("stats", tuple(rows[0])[:12], want))

    call("stats", [], [], decide, actor, returns="rows")


def f_uuidv7():
    call("uuidv7", [], [], lambda: Outcome(check=lambda rows: check_id(rows[0][0], "uuidv7()")))


def f_estimate_tokens():
    r = rng.random()
    if r < 0.08:
        arg = NULL()
    elif r < 0.35 and ESTIMATED:
        s = rng.choice(ESTIMATED)
        arg = Arg(s, s)
    else:
        arg = g_text(lambda: text_any(big=0.002), 0)

    def decide():
        def check(rows):
            n = rows[0][0]
            if arg.null:
                eq("estimate_tokens(NULL)", n, None)
                return
            if not isinstance(n, int) or n < 0:
                raise Unexpected(f"estimate {n}")
            remember_estimate(arg.v, n)
        return Outcome(check=check)

    call("estimate_tokens", [arg], ["content::text"], decide)


def f_is_admin():
    actor = pick_actor()
    call("is_admin", [], [], lambda: Outcome(check=lambda rows: eq("is_admin", rows[0][0], True)), actor)


def f_grant():
    """grant_app / grant_admin / revoke, only with NULL or a role that does not exist."""
    fn = rng.choice(["grant_app", "grant_admin", "revoke"])
    r = rng.random()
    if r < 0.4:
        role = NULL()
    elif r < 0.8:
        role = BAD(f"chatstore_fuzz_no_such_role_{rng.randint(1, 10**9)}", "42704")
    else:
        role = BAD(rng.choice(['"; DROP ROLE postgres; --', "a.b.c.d", "x.y.z.w.v"]), "42602")
    call(fn, [role], ["role::regrole"], lambda: Outcome({"22004"}))


FUNCTIONS = [(f_append, 22), (f_append_many, 8), (f_history, 10), (f_context, 8), (f_history_json, 6),
             (f_create_conversation, 6), (f_get_conversation, 5), (f_list_conversations, 5),
             (f_update_conversation, 5), (f_delete_conversation, 1.5), (f_archive, 2), (f_archive_conversation, 3),
             (f_restore, 4), (f_purge, 1), (f_erase_user, 1.5), (f_stats, 2), (f_uuidv7, 2), (f_estimate_tokens, 4),
             (f_is_admin, 0.5), (f_grant, 0.5)]


# ---------------------------------------------------------------------------------------------------------
# Model and database
# ---------------------------------------------------------------------------------------------------------

def snapshot():
    """What a rolled-back transaction must put back (messages are never changed, only added)."""
    return (dict(MODEL), len(GONE),
            [(c, c.title, c.model, c.status, c.metadata, len(c.msgs), dict(c.keys), c.tokens) for c in MODEL.values()])


def rollback(snap):
    convs, gone, states = snap
    MODEL.clear()
    MODEL.update(convs)
    del GONE[gone:]
    for c, c.title, c.model, c.status, c.metadata, n, c.keys, c.tokens in states:
        del c.msgs[n:]


def resync():
    """Rebuild the model from the tables, after an unexpected result left it unsure."""
    MODEL.clear()
    for row in q("SELECT id, user_id, title, model, status, metadata, token_count FROM chatstore.conversation"
                 " ORDER BY id"):
        c = Conv(*row[:3], row[3], row[5])
        c.status, c.tokens = row[4], row[6]
        MODEL[c.id] = c
    for row in q("SELECT conversation_id, seq, id, role, content, metadata, model, tokens, idempotency_key"
                 " FROM chatstore.message UNION ALL"
                 " SELECT conversation_id, seq, id, role, content, metadata, model, tokens, idempotency_key"
                 " FROM chatstore.archived_message ORDER BY 1, 2"):
        c = MODEL.get(row[0])
        if c is None:
            continue
        m = Msg()
        _, m.seq, m.id, m.role, m.content, m.metadata, m.model, m.tokens, m.key = row
        c.msgs.append(m)
        if m.key is not None:
            c.keys[m.key] = m


INVARIANTS = [
    ("message_count, last_seq and token_count equal the messages, live and archived", """
     SELECT count(*) FROM chatstore.conversation c
     LEFT JOIN (SELECT conversation_id, count(*) AS n, max(seq) AS last, min(seq) AS first, sum(tokens) AS t
                FROM (SELECT conversation_id, seq, tokens FROM chatstore.message
                      UNION ALL SELECT conversation_id, seq, tokens FROM chatstore.archived_message) a
                GROUP BY conversation_id) m ON m.conversation_id = c.id
     WHERE c.message_count <> coalesce(m.n, 0) OR c.last_seq <> coalesce(m.last, 0)
        OR c.token_count <> coalesce(m.t, 0) OR coalesce(m.first, 1) <> 1 OR coalesce(m.n, 0) <> coalesce(m.last, 0)"""),
    ("seq is unique per conversation across both tables", """
     SELECT count(*) FROM (SELECT conversation_id, seq FROM chatstore.message
                           UNION ALL SELECT conversation_id, seq FROM chatstore.archived_message) a
     GROUP BY conversation_id, seq HAVING count(*) > 1"""),
    ("no conversation has messages in both tables", """
     SELECT count(*) FROM chatstore.conversation c
     WHERE EXISTS (SELECT 1 FROM chatstore.message m WHERE m.conversation_id = c.id)
       AND EXISTS (SELECT 1 FROM chatstore.archived_message a WHERE a.conversation_id = c.id)"""),
    ("active conversations have only live messages, archived ones only archived messages at their archived_at", """
     SELECT (SELECT count(*) FROM chatstore.message m JOIN chatstore.conversation c ON c.id = m.conversation_id
             WHERE c.status <> 'active')
          + (SELECT count(*) FROM chatstore.archived_message a LEFT JOIN chatstore.conversation c ON c.id = a.conversation_id
             WHERE c.id IS NULL OR c.status <> 'archived' OR c.archived_at <> a.archived_at)"""),
    ("status is 'archived' exactly when archived_at is set", """
     SELECT count(*) FROM chatstore.conversation
     WHERE status NOT IN ('active', 'archived') OR (status = 'archived') <> (archived_at IS NOT NULL)"""),
    ("idempotency keys are unique per conversation", """
     SELECT count(*) FROM (SELECT conversation_id, idempotency_key FROM chatstore.message WHERE idempotency_key IS NOT NULL
                           UNION ALL SELECT conversation_id, idempotency_key FROM chatstore.archived_message
                           WHERE idempotency_key IS NOT NULL) k
     GROUP BY conversation_id, idempotency_key HAVING count(*) > 1"""),
    ("last_activity_at is not before created_at", """
     SELECT count(*) FROM chatstore.conversation WHERE last_activity_at < created_at"""),
]


def check_invariants():
    bad = 0
    for what, sql in INVARIANTS:
        n = sum(r[0] for r in q(sql))
        print(f"{'ok' if n == 0 else 'FAILED'}: {what}" + (f" ({n} violations)" if n else ""))
        bad += n != 0
    # every conversation and message equals the model
    rows = q("SELECT id, user_id, title, model, status, metadata, message_count, token_count, last_seq, created_at,"
             " last_activity_at, archived_at FROM chatstore.conversation ORDER BY id")
    diffs = []
    if [r[0] for r in rows] != sorted(MODEL):
        diffs.append(f"conversations: {len(rows)} in the database, {len(MODEL)} in the model")
    for r in rows:
        c = MODEL.get(r[0])
        try:
            if c is not None:
                check_conv_row(r, c)
        except Unexpected as e:
            diffs.append(f"conversation {r[0]}: {e}")
    n_msgs = 0
    for r in q("SELECT conversation_id, seq, id, role, content, metadata, model, tokens, created_at, idempotency_key,"
               " input_tokens, output_tokens, latency_ms FROM chatstore.message UNION ALL"
               " SELECT conversation_id, seq, id, role, content, metadata, model, tokens, created_at, idempotency_key,"
               " input_tokens, output_tokens, latency_ms FROM chatstore.archived_message"):
        n_msgs += 1
        c = MODEL.get(r[0])
        try:
            if c is None or not 1 <= r[1] <= len(c.msgs):
                raise Unexpected("not in the model")
            check_msg_row(r, c, c.msgs[r[1] - 1])
        except Unexpected as e:
            diffs.append(f"message {r[0]} seq {r[1]}: {e}")
    if n_msgs != sum(len(c.msgs) for c in MODEL.values()):
        diffs.append(f"messages: {n_msgs} in the database, {sum(len(c.msgs) for c in MODEL.values())} in the model")
    for d in diffs[:10]:
        print("  " + d)
    print(f"{'ok' if not diffs else 'FAILED'}: the {len(rows)} conversations and {n_msgs} messages equal the model")
    return bad + (1 if diffs else 0)


def finish(crashed):
    """Print the summary; returns the exit status."""
    elapsed = time.time() - START
    total = sum(s.get("calls", 0) for s in STATS.values())
    print(f"\n{'function':<22}{'calls':>8}{'ok':>8}  errors by SQLSTATE")
    for fn in sorted(STATS):
        s = STATS[fn]
        errs = ", ".join(f"{k} {v}" for k, v in sorted(s.items()) if k not in ("calls", "ok", "client"))
        client = f"; {s['client']} refused by the client (NUL byte)" if s.get("client") else ""
        print(f"{fn:<22}{s.get('calls', 0):>8}{s.get('ok', 0):>8}  {errs}{client}")
    print(f"transactions of several calls (each call in a savepoint): {TXNS[0]} committed, {TXNS[1]} rolled back;"
          f" settings changed {EPOCHS[0]} times")
    for key, n in KNOWN_HITS.items():
        print(f"KNOWN BUG (allow-listed, see the TODO in fuzz.py) seen {n} times: {KNOWN_BUGS[key]}")
    convs = list(MODEL.values())
    print(f"model: {len(convs)} conversations ({sum(c.status == 'archived' for c in convs)} archived), "
          f"{sum(len(c.msgs) for c in convs)} messages, the longest {max([len(c.msgs) for c in convs] or [0])}")
    bad = len(UNEXPECTED)
    if not crashed:
        try:
            bad += check_invariants()
        except psycopg.Error as e:
            print(f"FAILED: invariant checks: {e}")
            bad += 1
    else:
        bad += 1
    print(f"fuzz: {total} calls, {bad} unexpected ({elapsed:.1f} s, seed {SEED})")
    return 1 if bad else 0


SETTINGS = {"chatstore.max_message_chars": ["1", "10", "100", "5000", "200000"],
            "chatstore.max_user_message_chars": ["1", "10", "100", "5000", "200000"],
            "chatstore.max_metadata_bytes": ["16", "64", "1000", "1MB"],
            "chatstore.max_title_chars": ["1", "10", "1000", "200000"],
            "chatstore.archive_after": ["0", "1 second", "1 hour", "1 mon"]}


def read_limits():
    def setting(name):
        return int(q("SELECT setting FROM pg_catalog.pg_settings WHERE name = %s", (name,))[0][0])
    LIMITS["all"] = setting("chatstore.max_message_chars")
    LIMITS["user"] = setting("chatstore.max_user_message_chars")
    LIMITS["meta"] = setting("chatstore.max_metadata_bytes")  # in bytes
    LIMITS["title"] = setting("chatstore.max_title_chars")  # in code points


def change_settings():
    """Start a stretch of calls under other limits (as a superuser may SET them), or the defaults again."""
    EPOCHS[0] += 1
    default = rng.random() < 0.5
    for name, values in SETTINGS.items():
        if default or rng.random() < 0.5:
            conn.execute(f"RESET {name}")
        else:
            conn.execute(f"SET {name} = '{rng.choice(values)}'")
    read_limits()


def main():
    global conn
    print(f"fuzz: seed {SEED} (CHATSTORE_FUZZ_SEED={SEED} repeats it), {CALLS} calls"
          + (" (stress)" if STRESS else ""), flush=True)
    conn = psycopg.connect(autocommit=True)
    set_json_loads(jloads, conn)
    conn.execute("SET statement_timeout = '120s'")
    enc = q("SHOW server_encoding")[0][0]
    if enc != "UTF8":
        print(f"fuzz: the database encoding must be UTF8, not {enc}")
        return 1
    q("SELECT chatstore.is_admin()")  # loads the library, so that its settings exist
    read_limits()
    resync()
    fns = [f for f, _ in FUNCTIONS]
    weights = [w for _, w in FUNCTIONS]
    session = q("SELECT current_user, current_setting('search_path')")[0]

    def one():
        if NEXT:
            return NEXT.pop(0)()
        active = sum(1 for c in MODEL.values() if c.status == "active")
        if active < 15 and rng.random() < 0.3:
            f = f_create_conversation
        elif active < len(MODEL) / 2 and rng.random() < 0.1:
            f = f_restore
        else:
            f = rng.choices(fns, weights)[0]
        CLEAN[0] = rng.random() < 0.5
        f()

    sent = 0
    while sent < CALLS:
        if rng.random() < 1 / 800:
            change_settings()
        if rng.random() < 0.03:
            # a transaction of several calls, each in a savepoint: a failed call leaves the others, and
            # chatstore must put back the role and search_path it switches to, also when it fails
            rolled_back = False
            snap = snapshot()
            with conn.transaction():
                BATCH[0] = True
                try:
                    for _ in range(rng.randint(2, 8)):
                        one()
                        now = q("SELECT current_user, current_setting('search_path'),"
                                " current_setting('chatstore.user_id')")[0]
                        if now != session + ("",):
                            unexpected("session", "(after a call in a transaction)", [], None,
                                       f"user, search_path, chatstore.user_id are {now}, not {session + ('',)}")
                    rolled_back = rng.random() < 0.1
                    if rolled_back:
                        raise psycopg.Rollback()
                finally:
                    BATCH[0] = False
            if rolled_back:
                rollback(snap)
            TXNS[rolled_back] += 1
        else:
            one()
        sent = sum(s.get("calls", 0) for s in STATS.values())
    return finish(crashed=False)


LIMITS = {}
NEXT = []  # calls that must come next (cleaning up after a 10 MB title)
TXNS = [0, 0]  # transactions of several calls: committed, rolled back
EPOCHS = [0]  # changes of the chatstore.* settings
KNOWN_HITS = {}  # known bug -> how often it showed
START = time.time()
conn = None

if __name__ == "__main__":
    sys.exit(main())
