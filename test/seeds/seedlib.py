"""What the seed programs share: connections as the app and admin roles, a transaction that declares its user,
and checks that print what they compare.

test/programs/seeds makes a database per seed with chatstore in it, an app role (chatstore.grant_app) and an admin
role (chatstore.grant_admin), and passes their names in SEEDS_APP_ROLE and SEEDS_ADMIN_ROLE; the other connection
parameters come from the PG* environment variables.
"""
import contextlib
import os
import sys

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb  # noqa: F401 (re-exported for the seed programs)

APP_ROLE = os.environ.get("SEEDS_APP_ROLE", "chatstore_seeds_app")
ADMIN_ROLE = os.environ.get("SEEDS_ADMIN_ROLE", "chatstore_seeds_admin")

failures = 0


class Store:
    """One connection as one role, in autocommit mode: each data-layer function is one transaction of its own."""

    def __init__(self, role):
        self.conn = psycopg.connect(user=role, autocommit=True, row_factory=dict_row)

    @contextlib.contextmanager
    def as_user(self, user_id):
        """A transaction acting for user_id (chatstore.set_user); None: no user declared (an admin: every user)."""
        with self.conn.transaction():
            if user_id is not None:
                self.conn.execute("SELECT chatstore.set_user(%s)", (user_id,))
            yield self.conn


def app():
    return Store(APP_ROLE)


def admin():
    return Store(ADMIN_ROLE)


def check(label, got, want):
    """Compare, print the outcome, and count a failure (the program goes on to show every difference)."""
    global failures
    if got == want:
        print(f"ok: {label}")
    else:
        failures += 1
        print(f"FAILED: {label}\n   got:  {got!r}\n   want: {want!r}")


def check_error(label, sqlstate, fn, *args, **kwargs):
    """fn(*args) must raise a database error with this SQLSTATE."""
    global failures
    try:
        fn(*args, **kwargs)
    except psycopg.Error as e:
        if e.sqlstate == sqlstate:
            print(f"ok: {label} ({sqlstate} {e.diag.message_primary})")
            return e
        failures += 1
        print(f"FAILED: {label}: {e.sqlstate} {e.diag.message_primary}, want {sqlstate}")
        return e
    failures += 1
    print(f"FAILED: {label}: no error, want {sqlstate}")
    return None


known_gaps = []


def importing(label, fn, *args, **kwargs):
    """fn(*args), a call that imports a conversation (kept as a named step: label says which, in a failure)."""
    return fn(*args, **kwargs)


def finish(seed):
    if known_gaps:
        print(f"seed {seed}: known gaps of this build: {', '.join(known_gaps)}")
    print(f"seed {seed}: {'passed' if failures == 0 else f'{failures} checks FAILED'}")
    sys.exit(0 if failures == 0 else 1)
