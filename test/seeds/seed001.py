"""Seed 001 (the "Phase III" chatbot, async SQLModel repositories): ConversationRepository and MessageRepository
re-implemented as thin calls to chatstore, then the seed's repository usage examples, its complete conversation flow,
its "common queries", its rules (user messages at most 1,000 characters, a message needs an existing conversation,
users see only their own data) and its monthly archival of conversations idle for 90 days, with assertions.

The 1,000-character rule is the setting chatstore.max_user_message_chars, set for this database by
test/programs/seeds (ALTER DATABASE ... SET), counted in Unicode code points.
"""
import uuid

import psycopg

import seedlib
from seedlib import Jsonb, check, check_error

ACTIVE, ARCHIVED = "active", "archived"      # the seed's ConversationStatus
USER, ASSISTANT = "user", "assistant"        # the seed's MessageRole

store = seedlib.app()


class ConversationRepository:
    """Each method one chatstore call, in a transaction acting for the conversation's user."""

    @staticmethod
    def create(user_id):
        """The new conversation's row (create_conversation returns its id; get_conversation, STABLE, reads the row
        in a statement of its own: within one statement it would not see the row yet)."""
        with store.as_user(user_id) as db:
            new_id = db.execute("SELECT chatstore.create_conversation(%s) AS id", (user_id,)).fetchone()["id"]
            return db.execute("SELECT * FROM chatstore.get_conversation(%s)", (new_id,)).fetchone()

    @staticmethod
    def get_by_id(user_id, conversation_id):
        """None when it does not exist, or is another user's."""
        try:
            with store.as_user(user_id) as db:
                return db.execute("SELECT * FROM chatstore.get_conversation(%s)", (conversation_id,)).fetchone()
        except psycopg.errors.NoDataFound:
            return None

    @staticmethod
    def get_user_conversations(user_id, status=None, limit=50):
        """Most recently updated first; status None: active and archived."""
        with store.as_user(user_id) as db:
            return db.execute("SELECT * FROM chatstore.list_conversations(%s, status => %s, max_results => %s)",
                              (user_id, status, limit)).fetchall()

    @staticmethod
    def update_timestamp(user_id, conversation_id):
        """Nothing to do: every append moves the conversation's last_activity_at (the seed's updated_at)."""

    @staticmethod
    def archive(user_id, conversation_id):
        with store.as_user(user_id) as db:
            return db.execute("SELECT chatstore.archive_conversation(%s) AS a", (conversation_id,)).fetchone()["a"]


class MessageRepository:
    @staticmethod
    def create(conversation_id, user_id, role, content, metadata=None):
        with store.as_user(user_id) as db:
            return db.execute("SELECT * FROM chatstore.append(%s, %s, %s, %s)",
                              (conversation_id, role, content, Jsonb(metadata) if metadata else None)).fetchone()

    @staticmethod
    def get_conversation_messages(user_id, conversation_id, limit=20):
        """The newest `limit` messages, oldest first."""
        with store.as_user(user_id) as db:
            return db.execute("SELECT * FROM chatstore.history(%s, %s)", (conversation_id, limit)).fetchall()


def archive_old_conversations(admin_store):
    """The seed's monthly archival script (a placeholder there): archive conversations idle for 90 days."""
    with admin_store.as_user(None) as db:
        return db.execute("SELECT chatstore.archive(older_than => '90 days') AS n").fetchone()["n"]


def handle_chat_message(user_id, conversation_id, user_message):
    """The seed's complete conversation flow."""
    MessageRepository.create(conversation_id, user_id, USER, user_message)
    history = MessageRepository.get_conversation_messages(user_id, conversation_id, limit=20)
    ai_response = f"Done ({len(history)} messages of context)"   # the model, stood in for
    MessageRepository.create(conversation_id, user_id, ASSISTANT, ai_response)
    ConversationRepository.update_timestamp(user_id, conversation_id)
    return ai_response


def main():
    # Conversation operations
    conversation = ConversationRepository.create(user_id="user123")
    check("create: an active conversation of user123", (conversation["user_id"], conversation["status"]),
          ("user123", ACTIVE))
    check("create: its id is a UUID", isinstance(conversation["id"], uuid.UUID), True)
    conv = ConversationRepository.get_by_id("user123", conversation["id"])
    check("get_by_id", conv["id"], conversation["id"])

    # Message operations
    user_msg = MessageRepository.create(conversation["id"], "user123", USER, "Add a task to buy groceries")
    check("create user message: seq 1", user_msg["seq"], 1)
    check("the message carries its user", user_msg["user_id"], "user123")
    assistant_msg = MessageRepository.create(conversation["id"], "user123", ASSISTANT, "I've added the task",
                                             metadata={"tool": "add_task", "params": {"title": "Buy groceries"},
                                                       "result": "success"})
    check("create assistant message with metadata: stored as given", assistant_msg["metadata"],
          {"tool": "add_task", "params": {"title": "Buy groceries"}, "result": "success"})
    messages = MessageRepository.get_conversation_messages("user123", conversation["id"], limit=20)
    check("history: chronological order, oldest first",
          [(m["role"], m["content"]) for m in messages],
          [(USER, "Add a task to buy groceries"), (ASSISTANT, "I've added the task")])
    check("history: metadata (the tool call) comes back", messages[1]["metadata"]["tool"], "add_task")

    # update_timestamp: the append did it
    conv = ConversationRepository.get_by_id("user123", conversation["id"])
    check("the conversation's last activity is its newest message's time", conv["last_activity_at"],
          assistant_msg["created_at"])

    # Complete conversation flow: 12 turns, history always the last 20, oldest first
    for i in range(1, 13):
        reply = handle_chat_message("user123", conversation["id"], f"Request {i}")
    check("flow: the model got a window of 20", reply, "Done (20 messages of context)")
    messages = MessageRepository.get_conversation_messages("user123", conversation["id"], limit=20)
    check("last 20: the newest 20 (seq 7..26), oldest first", [m["seq"] for m in messages], list(range(7, 27)))
    check("last 20: ends with the newest reply", messages[-1]["content"], "Done (20 messages of context)")

    # Common queries: recent conversations (10 most recent), with messages, filtered by status, message count
    others = [ConversationRepository.create("user123") for _ in range(11)]
    MessageRepository.create(others[3]["id"], "user123", USER, "Touching an older one")
    recent = ConversationRepository.get_user_conversations("user123", limit=10)
    check("10 most recent: 10", len(recent), 10)
    check("10 most recent: the one just written to first", recent[0]["id"], others[3]["id"])
    check("10 most recent: then the newest created", recent[1]["id"], others[10]["id"])
    check("10 most recent: the first conversation (last written before them) is not among them",
          conversation["id"] in [c["id"] for c in recent], False)
    conv = ConversationRepository.get_by_id("user123", conversation["id"])
    messages = MessageRepository.get_conversation_messages("user123", conversation["id"])
    check("conversation with messages: the default window is 20", len(messages), 20)
    check("count messages: message_count counts all 26 (the seed's len() of a 20-message window would say 20)",
          conv["message_count"], 26)

    check("archive", ConversationRepository.archive("user123", others[0]["id"]), True)
    archived = ConversationRepository.get_user_conversations("user123", status=ARCHIVED)
    check("filter by status: only the archived one", [c["id"] for c in archived], [others[0]["id"]])
    check("filter by status: active ones", len(ConversationRepository.get_user_conversations("user123", status=ACTIVE)),
          11)
    check("archived conversations keep their history", len(MessageRepository.get_conversation_messages(
        "user123", others[3]["id"])), 1)
    check_error("an archived conversation takes no messages until restored", "55000",
                MessageRepository.create, others[0]["id"], "user123", USER, "hello?")

    # Rules the seed checks by hand
    check_error("a user message over 1,000 characters is refused", "22001",
                MessageRepository.create, conversation["id"], "user123", USER, "x" * 1001)
    check("a user message of 1,000 characters (code points: 'é' is 2 bytes) is stored",
          MessageRepository.create(conversation["id"], "user123", USER, "é" * 1000)["seq"], 27)
    check("an assistant message may be longer",
          MessageRepository.create(conversation["id"], "user123", ASSISTANT, "y" * 5000)["seq"], 28)
    check_error("a message for a conversation that does not exist (the seed's foreign key violation)", "P0002",
                MessageRepository.create, uuid.uuid4(), "user123", USER, "hello")
    check("get_by_id of a conversation that does not exist: None",
          ConversationRepository.get_by_id("user123", uuid.uuid4()), None)

    # Security: users see only their own data
    check("another user's conversation does not exist for user456",
          ConversationRepository.get_by_id("user456", conversation["id"]), None)
    check("user456 lists none of user123's conversations", ConversationRepository.get_user_conversations("user456"), [])
    check_error("user456 cannot append to user123's conversation", "P0002",
                MessageRepository.create, conversation["id"], "user456", USER, "hi")
    check_error("user456 cannot read its history", "P0002",
                MessageRepository.get_conversation_messages, "user456", conversation["id"])
    with store.as_user("user456") as db:
        check("direct SELECT on the tables as user456: no row of user123",
              db.execute("SELECT count(*) AS n FROM chatstore.message").fetchone()["n"], 0)
    check_error("without a declared user the app role gets nothing", "42501",
                lambda: store.conn.execute("SELECT * FROM chatstore.list_conversations('user123')"))

    # Monthly: archive conversations idle for 90 days (one imported with its old times; the others are recent)
    admin = seedlib.admin()

    def migrate_old_conversation():
        with store.as_user("user123") as db:
            return db.execute("SELECT chatstore.import_conversation(%s, as_new => true) AS id", (Jsonb({
                "format": "chatstore.conversation/1",
                "conversation": {"user_id": "user123", "created_at": "2020-01-01T10:00:00Z"},
                "messages": [{"role": "user", "content": "Add a task", "created_at": "2020-01-01T10:00:00Z"}]}),)
            ).fetchone()["id"]

    old = seedlib.importing("import a conversation idle since 2020", migrate_old_conversation)
    if old is not None:
        check("archival: the conversation idle for 90+ days", archive_old_conversations(admin), 1)
        check("archival: it is archived", ConversationRepository.get_by_id("user123", old)["status"], ARCHIVED)
    else:
        check("archival: no conversation is idle for 90 days", archive_old_conversations(admin), 0)
    check("archival: the recent ones stay active",
          len(ConversationRepository.get_user_conversations("user123", status=ACTIVE)), 11)

    # Weekly: table growth; daily: backups (pg_dump keeps every chat table; the archiver's last run is in storage())
    with admin.as_user(None) as db:
        s = db.execute("SELECT live_bytes, archive_bytes, archive_months, relations FROM chatstore.storage()").fetchone()
    check("storage(): live tables have a size", s["live_bytes"] > 0, True)
    check("storage(): the archive has its months (this one holds the archived conversation; the next is made "
          "ahead)", s["archive_months"] >= 1 and s["archive_bytes"] > 0, True)
    check("storage(): one row per relation, live tables first",
          [r["relation"] for r in s["relations"]][:3],
          ["chatstore.conversation", "chatstore.conversation_tag", "chatstore.message"])
    check_error("storage() is for operators, not the app role", "42501",
                lambda: store.conn.execute("SELECT * FROM chatstore.storage()"))

    seedlib.finish("001")


main()
