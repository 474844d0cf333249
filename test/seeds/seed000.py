"""Seed 000 (a GPT coaching chatbot, SQLAlchemy): its Database class re-implemented as thin calls to chatstore.

The seed keeps users, sessions keyed by ids the application chooses ("default", a browser tab) and messages, and
writes save_message, get_session_messages, get_user_sessions, delete_session, a cleanup job for old sessions and
backups by hand. Here each is one chatstore call: a session is a conversation with a key (chatstore.append_by_key
creates it on its first message), the users and sessions tables are gone. Then the seed's own test_database.py,
its chat engine's flow and its API endpoints, with assertions. Last, the migration of the data the seed's own
tables already hold: one call (chatstore.import_sessions), and the application carries on in chatstore.
"""
import datetime

import psycopg

import seedlib
from seedlib import Jsonb, check, check_error


class Database:
    """The seed's database.py, as calls to chatstore (one transaction each, acting for the user)."""

    def __init__(self, store):
        self.store = store

    def save_message(self, user_id, session_id, role, content):
        """Save a single message; the session (and the user) exist from its first message on."""
        with self.store.as_user(user_id) as db:
            db.execute("SELECT seq FROM chatstore.append_by_key(%s, %s, %s, %s)", (user_id, session_id, role, content))

    def get_session_messages(self, user_id, session_id):
        """All messages of a session, in order ([] for a session that does not exist yet)."""
        try:
            with self.store.as_user(user_id) as db:
                return db.execute("SELECT role, content FROM chatstore.history(chatstore.conversation_id(%s, %s), 10000)",
                                  (user_id, session_id)).fetchall()
        except psycopg.errors.NoDataFound:
            return []

    def get_user_sessions(self, user_id):
        """All sessions of a user, last accessed first."""
        with self.store.as_user(user_id) as db:
            return db.execute("SELECT key AS session_id, created_at, last_activity_at AS last_accessed "
                              "FROM chatstore.list_conversations(%s, status => NULL, max_results => 10000)",
                              (user_id,)).fetchall()

    def delete_session(self, user_id, session_id):
        """Delete a session and all its messages (nothing to do when there is none)."""
        try:
            with self.store.as_user(user_id) as db:
                return db.execute("SELECT chatstore.delete_conversation(chatstore.conversation_id(%s, %s)) AS d",
                                  (user_id, session_id)).fetchone()["d"]
        except psycopg.errors.NoDataFound:
            return False

    def backup_session(self, user_id, session_id):
        """One session as a JSON document (the seed's "regularly backup your database", per session)."""
        with self.store.as_user(user_id) as db:
            return db.execute("SELECT chatstore.export_conversation(chatstore.conversation_id(%s, %s)) AS doc",
                              (user_id, session_id)).fetchone()["doc"]

    def restore_session(self, user_id, document):
        """Store a backup again, under its id (idempotent)."""
        with self.store.as_user(user_id) as db:
            return db.execute("SELECT chatstore.import_conversation(%s) AS id", (Jsonb(document),)).fetchone()["id"]


def migrate_existing_data(admin_store):
    """Move the hand-written layer's data (users, sessions, messages) into chatstore: one call, as an admin that
    may read the messages table. Every (user_id, session_id) becomes that user's conversation keyed by the session
    id, its messages in id order; one row per session says what became of it. Run it again and it stores nothing
    twice (only messages added since)."""
    with admin_store.as_user(None) as db:
        return db.execute("SELECT user_id, key, status, messages FROM chatstore.import_sessions('messages') "
                          "ORDER BY user_id, key").fetchall()


def cleanup_old_sessions(admin_store, days):
    """The seed's cleanup job: delete the sessions idle for more than `days` days (archive, then purge)."""
    with admin_store.as_user(None) as db:
        db.execute("SELECT chatstore.archive(older_than => make_interval(days => %s))", (days,))
    with admin_store.as_user(None) as db:
        return db.execute("SELECT chatstore.purge(archived_before => '0 seconds') AS n").fetchone()["n"]


class GPTCoachEngine:
    """The seed's chat_engine.py with a stand-in for the model: its database calls are what is tested."""

    greeting = "Hi! I am your coach. What would you like to work on?"

    def __init__(self, db):
        self.db = db

    def _init_session(self, user_id, session_id):
        for msg in [{"role": "system", "content": "You are a helpful coach."},
                    {"role": "assistant", "content": self.greeting}]:
            self.db.save_message(user_id, session_id, msg["role"], msg["content"])

    def _get_session_messages(self, user_id, session_id):
        messages = self.db.get_session_messages(user_id, session_id)
        if not messages:
            self._init_session(user_id, session_id)
            messages = self.db.get_session_messages(user_id, session_id)
        return messages

    def chat(self, user_text, user_id="default", session_id="default"):
        self.db.save_message(user_id, session_id, "user", user_text)
        messages = self.db.get_session_messages(user_id, session_id)
        response = f"(reply to message {len(messages)}: {user_text})"   # the model's generation, stood in for
        self.db.save_message(user_id, session_id, "assistant", response)
        return response


def main():
    store = seedlib.app()
    db = Database(store)

    # test_database.py, as the seed documents it
    db.save_message("user1", "session1", "user", "Hello!")
    db.save_message("user1", "session1", "assistant", "Hi there!")
    messages = db.get_session_messages("user1", "session1")
    check("test_database: messages of session1", messages,
          [{"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hi there!"}])
    sessions = db.get_user_sessions("user1")
    check("test_database: user1's sessions", [s["session_id"] for s in sessions], ["session1"])
    check("test_database: created_at <= last_accessed",
          sessions[0]["created_at"] <= sessions[0]["last_accessed"], True)

    # the chat engine: the first turn of a new session starts it with the system prompt and the greeting
    engine = GPTCoachEngine(db)
    check("engine: a new session has no messages", db.get_session_messages("default", "default"), [])
    start = engine._get_session_messages("default", "default")
    check("engine: a new session starts with prompt and greeting", [m["role"] for m in start], ["system", "assistant"])
    reply = engine.chat("How do I stay focused?")
    engine.chat("And in the afternoon?")
    history = db.get_session_messages("default", "default")
    check("engine: two turns, in order", [m["role"] for m in history],
          ["system", "assistant", "user", "assistant", "user", "assistant"])
    check("engine: the reply is stored after the user's message", history[3]["content"], reply)
    check("engine: the reply saw the whole history", reply, "(reply to message 3: How do I stay focused?)")

    # sessions are per user: the same session id of another user is another session
    db.save_message("user2", "session1", "user", "I am user2")
    check("user2's session1 is not user1's", db.get_session_messages("user2", "session1"),
          [{"role": "user", "content": "I am user2"}])
    check("user1's session1 unchanged", len(db.get_session_messages("user1", "session1")), 2)

    # get_user_sessions: last accessed first
    db.save_message("user1", "tab-7f3a", "user", "A second tab")
    check("sessions by last access", [s["session_id"] for s in db.get_user_sessions("user1")],
          ["tab-7f3a", "session1"])
    db.save_message("user1", "session1", "user", "Back in the first tab")
    check("a message moves its session to the top", [s["session_id"] for s in db.get_user_sessions("user1")],
          ["session1", "tab-7f3a"])

    # the API's GET /sessions/{user_id} and GET /history/{user_id}/{session_id}
    check("GET /history of a session never used", db.get_session_messages("user1", "nope"), [])
    check("GET /sessions of a user never seen", db.get_user_sessions("nobody"), [])

    # backup and restore of a session (export, delete, import under its id)
    backup = db.backup_session("user1", "session1")
    check("backup holds the messages", [m["content"] for m in backup["messages"]],
          ["Hello!", "Hi there!", "Back in the first tab"])
    check("DELETE /sessions: deleted", db.delete_session("user1", "session1"), True)
    check("deleted: no messages", db.get_session_messages("user1", "session1"), [])
    check("deleted: not listed", [s["session_id"] for s in db.get_user_sessions("user1")], ["tab-7f3a"])
    check("deleting again is nothing to do", db.delete_session("user1", "session1"), False)
    if seedlib.importing("restore a backup", db.restore_session, "user1", backup) is not None:
        check("restored: the session's messages, by its session id", [m["content"] for m in
                                                                      db.get_session_messages("user1", "session1")],
              ["Hello!", "Hi there!", "Back in the first tab"])
        check("restoring twice changes nothing", str(db.restore_session("user1", backup)),
              backup["conversation"]["id"])
        restored = {s["session_id"] for s in db.get_user_sessions("user1")}
        check("restored: listed under its session id", restored, {"session1", "tab-7f3a"})

    # the cleanup job: a session idle for years (migrated from the in-memory store with its old times) goes,
    # the recent ones stay
    recent = db.get_user_sessions("user1")

    def migrate_old_session():
        """Under the id of the session's key, so that the session id finds it; message ids made by chatstore."""
        with store.as_user("user1") as c:
            ids = c.execute("SELECT chatstore.conversation_id('user1', 'old') AS c, chatstore.uuidv7() AS m1, "
                            "chatstore.uuidv7() AS m2").fetchone()
            return c.execute("SELECT chatstore.import_conversation(%s) AS id", (Jsonb({
                "format": "chatstore.conversation/1",
                "conversation": {"id": str(ids["c"]), "user_id": "user1", "key": "old",
                                 "created_at": "2020-01-01T10:00:00Z"},
                "messages": [{"id": str(ids["m1"]), "role": "user", "content": "An old question",
                              "created_at": "2020-01-01T10:00:00Z"},
                             {"id": str(ids["m2"]), "role": "assistant", "content": "An old answer",
                              "created_at": "2020-01-01T10:00:05Z"}]}),)).fetchone()["id"]

    if seedlib.importing("migrate a session idle since 2020", migrate_old_session) is not None:
        check("the old session is there", len(db.get_session_messages("user1", "old")), 2)
        check("cleanup: one session older than 90 days deleted", cleanup_old_sessions(seedlib.admin(), 90), 1)
        check("cleanup: the old session is gone", db.get_session_messages("user1", "old"), [])
    else:
        check("cleanup: no recent session is older than 90 days", cleanup_old_sessions(seedlib.admin(), 90), 0)
    check("cleanup: the recent sessions stay", db.get_user_sessions("user1"), recent)

    # what the hand-written layer did not check: chatstore validates every message
    check_error("an unknown role is refused", "22023", db.save_message, "user1", "tab-7f3a", "bot", "hi")
    check_error("blank content is refused", "22023", db.save_message, "user1", "tab-7f3a", "user", "   ")
    check_error("a failed first message leaves no session behind", "22023", db.save_message,
                "user1", "new-tab", "user", "")
    check("... none", [s["session_id"] for s in db.get_user_sessions("user1") if s["session_id"] == "new-tab"], [])

    # migrating the data the seed's own tables already hold (its schema, as the guide creates it, with
    # datetime.utcnow() times): one call for every user and session
    with psycopg.connect(autocommit=True) as owner:
        owner.execute("""
            CREATE TABLE users (user_id TEXT PRIMARY KEY, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
                                updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
            CREATE TABLE sessions (session_id TEXT, user_id TEXT, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
                                   last_accessed TIMESTAMP DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (session_id, user_id),
                                   FOREIGN KEY (user_id) REFERENCES users(user_id) ON DELETE CASCADE);
            CREATE TABLE messages (id SERIAL PRIMARY KEY, session_id TEXT NOT NULL, user_id TEXT NOT NULL,
                                   role TEXT NOT NULL, content TEXT NOT NULL,
                                   created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
                                   FOREIGN KEY (session_id, user_id) REFERENCES sessions(session_id, user_id)
                                   ON DELETE CASCADE);
            INSERT INTO users (user_id) VALUES ('ann'), ('ben');
            INSERT INTO sessions (session_id, user_id) VALUES ('default', 'ann'), ('tab-1', 'ann'), ('default', 'ben');
            INSERT INTO messages (session_id, user_id, role, content, created_at) VALUES
              ('default', 'ann', 'system', 'You are a helpful coach.', '2024-03-01 10:00:00'),
              ('default', 'ann', 'assistant', 'Hi! I am your coach.', '2024-03-01 10:00:01'),
              ('tab-1', 'ann', 'user', 'Another tab', '2024-03-02 09:00:00'),
              ('default', 'ann', 'user', 'How do I stay focused?', '2024-03-01 10:00:05'),
              ('default', 'ben', 'user', 'Hello?', '2024-03-03 08:00:00');
            """)
        owner.execute(f"GRANT SELECT ON messages TO {seedlib.ADMIN_ROLE}")
    admin = seedlib.admin()
    check("migration: one row per session", migrate_existing_data(admin),
          [{"user_id": "ann", "key": "default", "status": "imported", "messages": 3},
           {"user_id": "ann", "key": "tab-1", "status": "imported", "messages": 1},
           {"user_id": "ben", "key": "default", "status": "imported", "messages": 1}])
    check("migrated: a session's messages in order", db.get_session_messages("ann", "default"),
          [{"role": "system", "content": "You are a helpful coach."},
           {"role": "assistant", "content": "Hi! I am your coach."},
           {"role": "user", "content": "How do I stay focused?"}])
    utc = datetime.timezone.utc
    check("migrated: a user's sessions, last accessed first (times read as UTC)",
          [(s["session_id"], s["created_at"], s["last_accessed"]) for s in db.get_user_sessions("ann")],
          [("tab-1", datetime.datetime(2024, 3, 2, 9, 0, tzinfo=utc), datetime.datetime(2024, 3, 2, 9, 0, tzinfo=utc)),
           ("default", datetime.datetime(2024, 3, 1, 10, 0, tzinfo=utc),
            datetime.datetime(2024, 3, 1, 10, 0, 5, tzinfo=utc))])
    check("migrating again stores nothing twice", {r["status"] for r in migrate_existing_data(admin)}, {"skipped"})
    # the application now calls chatstore: the session goes on where the old tables left it
    engine.chat("Back after the move", user_id="ann", session_id="default")
    check("after the move: the session continues", [m["content"] for m in db.get_session_messages("ann", "default")][2:],
          ["How do I stay focused?", "Back after the move", "(reply to message 4: Back after the move)"])
    check("a late run after the switch changes nothing", {r["status"] for r in migrate_existing_data(admin)},
          {"skipped"})

    seedlib.finish("000")


main()
