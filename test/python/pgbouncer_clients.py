"""Python clients of chatstore behind PgBouncer in transaction mode (run by test/programs/pgbouncer).

Connection parameters come from the PG* environment variables (pointing at PgBouncer). Usage:
    pgbouncer_clients.py safe|defaults|unscoped CLIENTS TRANSACTIONS [misbehave]

Each of CLIENTS psycopg 3 clients (threads) and CLIENTS asyncpg clients (asyncio tasks) acts for a user of its
own ("<mode>-psycopg-1", ...) and runs TRANSACTIONS transactions: declare the user with chatstore.set_user(),
create a conversation (every fifth transaction), append, read the history, list the user's conversations and
read chatstore.conversation directly. It counts:
  - foreign rows: rows it reads that belong to another user (another conversation, another user's content);
  - identity leaks: a transaction that starts with chatstore.user_id already set (left by another client of the
    same server connection), or in which the user in effect is not the one it declared;
  - errors, by SQLSTATE.
"safe" uses the settings the README gives for PgBouncer (psycopg: prepare_threshold=None; asyncpg:
statement_cache_size=0) and checks; "defaults" measures the drivers' defaults (psycopg prepares a query on its fifth
execution, asyncpg prepares every query under a name); "unscoped" measures the README's settings under a role whose
chatstore.user_id_scope is 'session'.

With "misbehave", two more psycopg clients (autocommit, README settings) run alongside: "mallory" repeats a
session-level SET chatstore.user_id = 'mallory' (the mistake chatstore.user_id_scope = 'transaction' makes
harmless), and "nobody" declares no user and counts how often it acts as someone: a conversation function that
does not fail with "chatstore.user_id is not set", a direct read that returns rows, a user in effect.

It prints one line per kind of client; in "safe" mode a line starts with "ok:" or "FAILED:" (any foreign row,
identity leak, error or act as someone fails), in the other modes with "measured:". Exit status 1 on a failure.
"""
import asyncio
import collections
import sys
import threading

import asyncpg
import psycopg

mode, clients, transactions = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
misbehave = len(sys.argv) > 4 and sys.argv[4] == "misbehave"
safe = mode != "defaults"                 # the README's driver settings
checking = mode == "safe"                 # check, rather than measure

# The same query texts on every transaction, so that a driver that prepares repeated queries does so.
Q_LEFT = "SELECT current_setting('chatstore.user_id', true)"
Q_SET_USER = "SELECT chatstore.set_user(%s)"
Q_CREATE = "SELECT chatstore.create_conversation(%s, %s)"
Q_APPEND = "SELECT seq FROM chatstore.append(%s, 'user', %s)"
Q_HISTORY = "SELECT conversation_id, content FROM chatstore.history(%s, 20)"
Q_LIST = "SELECT id, user_id, title FROM chatstore.list_conversations(%s)"
Q_DIRECT = "SELECT user_id FROM chatstore.conversation"
Q_WHO = "SELECT current_setting('chatstore.user_id')"


class Tally:
    """What one kind of client saw."""

    def __init__(self):
        self.lock = threading.Lock()
        self.transactions = 0
        self.rows = 0
        self.foreign = 0
        self.leaks = 0
        self.errors = collections.Counter()

    def add(self, transactions=0, rows=0, foreign=0, leaks=0, error=None):
        with self.lock:
            self.transactions += transactions
            self.rows += rows
            self.foreign += foreign
            self.leaks += leaks
            if error is not None:
                self.errors[error] += 1

    def line(self, name):
        errors = ", ".join(f"{n} x {code}" for code, n in sorted(self.errors.items())) or "none"
        text = (f"{name}: {clients} client{'s' if clients > 1 else ''}, "
                f"{self.transactions} transactions committed, {self.rows} rows read, "
                f"{self.foreign} foreign rows, {self.leaks} identity leaks, errors: {errors}")
        if not checking:
            return "measured: " + text, True
        good = self.foreign == 0 and self.leaks == 0 and not self.errors and self.rows > 0
        return ("ok: " if good else "FAILED: ") + text, good


def check_rows(me, conv, history, listed, direct, who):
    """Count the rows of one transaction that are not this user's, and whether the user in effect was another."""
    foreign = sum(1 for c, content in history if str(c) != str(conv) or not content.startswith(me + ":"))
    foreign += sum(1 for _, user_id, title in listed if user_id != me or not title.startswith(me + " "))
    foreign += sum(1 for (user_id,) in direct if user_id != me)
    return len(history) + len(listed) + len(direct), foreign, int(who != me)


def error_code(e):
    """SQLSTATE of a server error, else the exception's class (a driver confused by a foreign answer)."""
    return getattr(e, "sqlstate", None) or type(e).__name__


def psycopg_client(n, tally):
    """One psycopg 3 client: TRANSACTIONS transactions as user <mode>-psycopg-<n>."""
    me = f"{mode}-psycopg-{n}"
    options = {"prepare_threshold": None} if safe else {}
    with psycopg.connect(**options) as conn:
        conv = None
        for i in range(transactions):
            try:
                with conn.transaction():
                    left = conn.execute(Q_LEFT).fetchone()[0]
                    leaks = int(bool(left)) + int(conn.execute(Q_SET_USER, (me,)).fetchone()[0] != me)
                    if conv is None or i % 5 == 0:
                        conv = conn.execute(Q_CREATE, (me, f"{me} {i}")).fetchone()[0]
                    conn.execute(Q_APPEND, (conv, f"{me}: message {i}")).fetchone()
                    if n % 2:
                        history = conn.execute(Q_HISTORY, (conv,)).fetchall()
                        listed = conn.execute(Q_LIST, (me,)).fetchall()
                    else:                           # as another request handler would: the same, in another order
                        listed = conn.execute(Q_LIST, (me,)).fetchall()
                        history = conn.execute(Q_HISTORY, (conv,)).fetchall()
                    direct = conn.execute(Q_DIRECT).fetchall()
                    who = conn.execute(Q_WHO).fetchone()[0]
                    rows, foreign, wrong = check_rows(me, conv, history, listed, direct, who)
                tally.add(transactions=1, rows=rows, foreign=foreign, leaks=leaks + wrong)
            except Exception as e:  # noqa: BLE001 - counted, by SQLSTATE
                tally.add(error=error_code(e))
                conv = None


async def asyncpg_client(n, tally):
    """One asyncpg client: TRANSACTIONS transactions as user <mode>-asyncpg-<n>."""
    me = f"{mode}-asyncpg-{n}"
    options = {"statement_cache_size": 0} if safe else {}
    conn = await asyncpg.connect(**options)
    q = {k: v.replace("%s", "$1", 1).replace("%s", "$2", 1) for k, v in globals().items() if k.startswith("Q_")}
    try:
        conv = None
        for i in range(transactions):
            try:
                async with conn.transaction():
                    left = await conn.fetchval(q["Q_LEFT"])
                    leaks = int(bool(left)) + int(await conn.fetchval(q["Q_SET_USER"], me) != me)
                    if conv is None or i % 5 == 0:
                        conv = await conn.fetchval(q["Q_CREATE"], me, f"{me} {i}")
                    await conn.fetchval(q["Q_APPEND"], conv, f"{me}: message {i}")
                    if n % 2:
                        history = [tuple(r) for r in await conn.fetch(q["Q_HISTORY"], conv)]
                        listed = [tuple(r) for r in await conn.fetch(q["Q_LIST"], me)]
                    else:
                        listed = [tuple(r) for r in await conn.fetch(q["Q_LIST"], me)]
                        history = [tuple(r) for r in await conn.fetch(q["Q_HISTORY"], conv)]
                    direct = [tuple(r) for r in await conn.fetch(q["Q_DIRECT"])]
                    who = await conn.fetchval(q["Q_WHO"])
                    rows, foreign, wrong = check_rows(me, conv, history, listed, direct, who)
                tally.add(transactions=1, rows=rows, foreign=foreign, leaks=leaks + wrong)
            except Exception as e:  # noqa: BLE001 - counted, by SQLSTATE
                tally.add(error=error_code(e))
                conv = None
    finally:
        await conn.close()


def mallory(stop, tally):
    """The misbehaving client: a session-level SET chatstore.user_id, again and again, on whatever server
    connection PgBouncer gives it."""
    with psycopg.connect(prepare_threshold=None, autocommit=True) as conn:
        while not stop.is_set():
            conn.execute("SET chatstore.user_id = 'mallory'")
            tally.add(transactions=1)


def nobody(done, tally):
    """A client that declares no user (autocommit: each statement its own transaction, on any server connection),
    at least 40 rounds and until the other clients are done: it must act for nobody. A round in which it acted as
    someone (a conversation function that did not refuse it, a direct read that returned rows, a user in effect)
    counts as a leak; the refusals it should get are counted too."""
    with psycopg.connect(prepare_threshold=None, autocommit=True) as conn:
        rounds = 0
        while not done.is_set() or rounds < 40:
            rounds += 1
            acted = False
            try:
                n = conn.execute("SELECT count(*) FROM chatstore.list_conversations('mallory')").fetchone()[0]
                tally.add(rows=n)
                acted = True                        # it should have been refused
            except psycopg.Error as e:
                if e.sqlstate == "42501" and e.diag.message_primary == "chatstore.user_id is not set":
                    tally.add(error="refused")
                else:
                    tally.add(error=error_code(e))
            n = conn.execute("SELECT count(*) FROM chatstore.conversation").fetchone()[0]
            who = conn.execute("SELECT current_setting('chatstore.user_id', true)").fetchone()[0]
            tally.add(transactions=1, rows=n, leaks=int(acted or n > 0 or bool(who)))


def main():
    tallies = {"psycopg": Tally(), "asyncpg": Tally(), "mallory": Tally(), "nobody": Tally()}
    done, stop = threading.Event(), threading.Event()
    threads = [threading.Thread(target=psycopg_client, args=(n, tallies["psycopg"])) for n in range(1, clients + 1)]
    extra = []
    if misbehave:
        extra = [threading.Thread(target=mallory, args=(stop, tallies["mallory"])),
                 threading.Thread(target=nobody, args=(done, tallies["nobody"]))]
    for t in threads + extra:
        t.start()

    async def run_asyncpg():
        await asyncio.gather(*(asyncpg_client(n, tallies["asyncpg"]) for n in range(1, clients + 1)))

    asyncio.run(run_asyncpg())
    for t in threads:
        t.join()
    done.set()
    if extra:
        extra[1].join()                             # nobody, then mallory
    stop.set()
    for t in extra:
        t.join()

    good = True
    labels = {"psycopg": "psycopg (prepare_threshold=None)" if safe else "psycopg (defaults)",
              "asyncpg": "asyncpg (statement_cache_size=0)" if safe else "asyncpg (defaults)"}
    for name, label in labels.items():
        text, ok = tallies[name].line(label)
        print(text)
        good = good and ok
    if misbehave:
        m, b = tallies["mallory"], tallies["nobody"]
        refused = b.errors.pop("refused", 0)
        text = (f"a client that declares no user, while another runs SET chatstore.user_id = 'mallory' "
                f"{m.transactions} times: acted as someone in {b.leaks} of {b.transactions} rounds, "
                f"{b.rows} rows read, refused with 'chatstore.user_id is not set' {refused} times, "
                f"other errors: {sum(b.errors.values())}")
        if checking:
            ok = b.leaks == 0 and b.rows == 0 and refused == b.transactions and not b.errors and m.transactions > 0
            print(("ok: " if ok else "FAILED: ") + text)
            good = good and ok
        else:
            print("measured: " + text)
    sys.exit(0 if good else 1)


main()
