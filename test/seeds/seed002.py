"""Seed 002 (ChatSynth, SQLAlchemy with JSONB): create_chat, get_user_chats, add_tag_to_chat, search_chats and the
practice exercise get_recent_tagged_chats re-implemented as thin calls to chatstore, then used as the seed describes,
with assertions.

A chat log (its JSONB content {"messages": [...]}, its source platform and metadata) is a conversation: the messages
are chatstore messages, the source is in the conversation's metadata. The tags and chat_tags tables are
chatstore.conversation_tag. The seed's integer user ids are passed as text.
"""
import psycopg

import seedlib
from seedlib import Jsonb, check

store = seedlib.app()


def create_chat(user_id, content, source):
    """A chat log: a conversation with its source, and its messages stored in order (one transaction)."""
    user_id = str(user_id)
    with store.as_user(user_id) as db:
        chat_id = db.execute("SELECT chatstore.create_conversation(%s, metadata => %s) AS id",
                             (user_id, Jsonb({"source": source}))).fetchone()["id"]
        db.execute("SELECT seq FROM chatstore.append_many(%s, %s)", (chat_id, Jsonb(content["messages"])))
    return chat_id


def get_user_chats(user_id):
    """A user's chats, most recent first."""
    with store.as_user(str(user_id)) as db:
        return db.execute("SELECT id, metadata ->> 'source' AS source, created_at "
                          "FROM chatstore.list_conversations(%s, status => NULL, max_results => 10000)",
                          (str(user_id),)).fetchall()


def get_chat_content(user_id, chat_id):
    """The chat's content in the seed's JSON shape."""
    with store.as_user(str(user_id)) as db:
        return {"messages": db.execute("SELECT chatstore.history_json(%s, 10000) AS m", (chat_id,)).fetchone()["m"]}


def add_tag_to_chat(chat_id, tag_name, user_id):
    """Tag a chat (the tag exists from its first use); ValueError when the chat is not the user's."""
    try:
        with store.as_user(str(user_id)) as db:
            return db.execute("SELECT chatstore.tag(%s, %s) AS tags", (chat_id, tag_name)).fetchone()["tags"]
    except psycopg.errors.NoDataFound:
        raise ValueError("Chat not found")


def search_chats(user_id, search_term):
    """The user's chats whose content matches, best match first."""
    with store.as_user(str(user_id)) as db:
        return [r["conversation_id"] for r in db.execute(
            "SELECT conversation_id FROM chatstore.search(%s, %s, max_results => 1000) "
            "GROUP BY conversation_id ORDER BY max(rank) DESC, conversation_id", (str(user_id), search_term))]


def update_chat(user_id, chat_id, new_content):
    """Replace a chat's content: its messages become new_content's (one transaction); ValueError when the chat is
    not the user's."""
    try:
        with store.as_user(str(user_id)) as db:
            db.execute("SELECT chatstore.rewind(%s, 0)", (chat_id,))
            db.execute("SELECT seq FROM chatstore.append_many(%s, %s)", (chat_id, Jsonb(new_content["messages"])))
            return db.execute("SELECT * FROM chatstore.get_conversation(%s)", (chat_id,)).fetchone()
    except psycopg.errors.NoDataFound:
        raise ValueError("Chat not found")


def get_recent_tagged_chats(user_id, tag_name):
    """The practice exercise: a user's chats with a given tag from the last 7 days."""
    with store.as_user(str(user_id)) as db:
        return [r["id"] for r in db.execute(
            "SELECT id FROM chatstore.conversations_by_tag(%s, %s, active_since => '7 days')",
            (str(user_id), tag_name))]


def main():
    hello = {"messages": [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi there!"}]}
    c1 = create_chat(5, hello, "ChatGPT")
    c2 = create_chat(5, {"messages": [
        {"role": "user", "content": "How do I index a JSONB column in PostgreSQL?"},
        {"role": "assistant", "content": "Create a GIN index: CREATE INDEX ON chat_logs USING gin (content);"}]},
        "Mistral")
    c3 = create_chat(5, {"messages": [
        {"role": "user", "content": "Write a haiku about databases"},
        {"role": "assistant", "content": "Rows in quiet rest / indexes point the way home / the query returns"}]},
        "ChatGPT")
    c4 = create_chat(6, {"messages": [{"role": "user", "content": "Indexing strategies for my database?"}]}, "Claude")

    check("the content comes back in the seed's JSON shape", get_chat_content(5, c1), hello)
    chats = get_user_chats(5)
    check("get_user_chats: user 5's three chats, newest first", [c["id"] for c in chats], [c3, c2, c1])
    check("get_user_chats: the source of each", [c["source"] for c in chats], ["ChatGPT", "Mistral", "ChatGPT"])
    check("get_user_chats: user 6 has its own", [c["id"] for c in get_user_chats(6)], [c4])

    # tags: per user, many-to-many, created on first use
    check("add_tag_to_chat: the chat's tags", add_tag_to_chat(c2, "postgres", 5), ["postgres"])
    check("a second tag", add_tag_to_chat(c2, "work", 5), ["postgres", "work"])
    check("adding a tag again changes nothing", add_tag_to_chat(c2, "work", 5), ["postgres", "work"])
    add_tag_to_chat(c3, "work", 5)
    add_tag_to_chat(c4, "work", 6)
    try:
        add_tag_to_chat(c4, "mine", 5)
        check("add_tag_to_chat: another user's chat raises ValueError", "no error", "ValueError")
    except ValueError as e:
        check("add_tag_to_chat: another user's chat raises ValueError", str(e), "Chat not found")
    with store.as_user("5") as db:
        check("user 5's tags with their counts (user 6's 'work' is another tag)",
              db.execute("SELECT tag, conversations FROM chatstore.tags('5')").fetchall(),
              [{"tag": "postgres", "conversations": 1}, {"tag": "work", "conversations": 2}])

    # search in content: stems, phrases, identifiers; only the user's own chats
    check("search 'index': by stem ('index', 'indexes'), user 5's chats only",
          sorted(search_chats(5, "index")), sorted([c2, c3]))
    check("search a phrase", search_chats(5, '"GIN index"'), [c2])
    check("search an identifier as written", search_chats(5, "chat_logs"), [c2])
    check("search finds nothing of another user", search_chats(5, "strategies"), [])
    check("user 6 finds its own", search_chats(6, "strategies"), [c4])

    # update_chat: the content replaced whole; the updated time moves; another user's chat is not found
    before = get_user_chats(5)[0]["id"]
    replaced = {"messages": [{"role": "user", "content": "Good morning"},
                             {"role": "assistant", "content": "Welcome back!"},
                             {"role": "user", "content": "Bye"}]}
    updated = update_chat(5, c1, replaced)
    check("update_chat: the new content", get_chat_content(5, c1), replaced)
    check("update_chat: three messages, counted", (updated["message_count"], updated["last_seq"]), (3, 3))
    check("update_chat: the chat is now the most recent", (before, get_user_chats(5)[0]["id"]), (c3, c1))
    check("update_chat: its tags and source stay", updated["metadata"], {"source": "ChatGPT"})
    check("update_chat: search finds the new content, not the old", (search_chats(5, "welcome"), search_chats(5, "hello")),
          ([c1], []))
    try:
        update_chat(6, c1, hello)
        check("update_chat: another user's chat raises ValueError", "no error", "ValueError")
    except ValueError as e:
        check("update_chat: another user's chat raises ValueError", str(e), "Chat not found")
    check("update_chat: ... and leaves it as it was", get_chat_content(5, c1), replaced)

    # the practice exercise: user 5's chats tagged 'work' from the last 7 days
    check("get_recent_tagged_chats: most recent first", get_recent_tagged_chats(5, "work"), [c3, c2])
    check("get_recent_tagged_chats: a tag nobody used", get_recent_tagged_chats(5, "holiday"), [])

    def migrate_old_chat():
        """A chat from 2020, imported with its times, then tagged 'work': not from the last 7 days."""
        with store.as_user("5") as db:
            old = db.execute("SELECT chatstore.import_conversation(%s, as_new => true) AS id", (Jsonb({
                "format": "chatstore.conversation/1",
                "conversation": {"user_id": "5", "created_at": "2020-03-01T09:00:00Z", "metadata": {"source": "Bard"}},
                "messages": [{"role": "user", "content": "An old question about indexes",
                              "created_at": "2020-03-01T09:00:00Z"}]}),)).fetchone()["id"]
        add_tag_to_chat(old, "work", 5)
        return old

    old = seedlib.importing("import a chat from 2020", migrate_old_chat)
    if old is not None:
        check("the old chat carries the tag", old in [r["id"] for r in get_user_chats(5)], True)
        check("get_recent_tagged_chats: not the chat from 2020", get_recent_tagged_chats(5, "work"), [c3, c2])
        check("search finds old chats too", old in search_chats(5, "index"), True)

    seedlib.finish("002")


main()
