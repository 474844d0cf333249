"""Seed 003 (Open Chat, SQLAlchemy): its conversation, message and response operations re-implemented as thin calls
to chatstore, then the seed's "Usage in Code" examples (create, query, update the model, delete with cascade), its
per-message model override, token usage and completion time, reads on a read-only connection (its read replicas),
with assertions.

A conversation's default_model is chatstore's conversation model; a message's model override is the message's
model; a Response row (model_used, tokens_prompt, tokens_completion, completion_time_ms) is the usage stored on the
assistant message itself (model, input_tokens, output_tokens, latency_ms); tokens_total is their sum, which usage()
reports. The public uuid is the conversation id. Anonymous conversations (the seed's nullable user_id) belong to an
application-chosen user id, here "anonymous": chatstore requires an owner.
"""
import uuid

import psycopg

import seedlib
from seedlib import check, check_error

store = seedlib.app()
ANONYMOUS = "anonymous"


def create_conversation(user_id=None, title=None, default_model="openai/gpt-3.5-turbo"):
    with store.as_user(user_id or ANONYMOUS) as db:
        conv_id = db.execute("SELECT chatstore.create_conversation(%s, %s, model => %s) AS id",
                             (user_id or ANONYMOUS, title, default_model)).fetchone()["id"]
        return db.execute("SELECT * FROM chatstore.get_conversation(%s)", (conv_id,)).fetchone()


def get_conversation(user_id, conv_uuid):
    try:
        with store.as_user(user_id or ANONYMOUS) as db:
            return db.execute("SELECT * FROM chatstore.get_conversation(%s)", (conv_uuid,)).fetchone()
    except psycopg.errors.NoDataFound:
        return None


def create_message(user_id, conv_uuid, role, content, model=None):
    """A user message, optionally naming the model to answer it (the override)."""
    with store.as_user(user_id or ANONYMOUS) as db:
        return db.execute("SELECT * FROM chatstore.append(%s, %s, %s, model => %s)",
                          (conv_uuid, role, content, model)).fetchone()


def create_response(user_id, conv_uuid, content, model_used, tokens_prompt=None, tokens_completion=None,
                    completion_time_ms=None):
    """The assistant's message and its Response row in one: the model that answered, tokens and time."""
    with store.as_user(user_id or ANONYMOUS) as db:
        return db.execute("SELECT * FROM chatstore.append(%s, 'assistant', %s, model => %s, input_tokens => %s, "
                          "output_tokens => %s, latency_ms => %s)",
                          (conv_uuid, content, model_used, tokens_prompt, tokens_completion,
                           completion_time_ms)).fetchone()


def get_messages(user_id, conv_uuid):
    """All messages of the conversation, in order."""
    with store.as_user(user_id or ANONYMOUS) as db:
        return db.execute("SELECT * FROM chatstore.history(%s, 10000)", (conv_uuid,)).fetchall()


def update_conversation_model(user_id, conv_uuid, model):
    with store.as_user(user_id or ANONYMOUS) as db:
        return db.execute("SELECT * FROM chatstore.update_conversation(%s, model => %s)", (conv_uuid, model)).fetchone()


def delete_conversation(user_id, conv_uuid):
    """Deletes the conversation with its messages and their responses."""
    with store.as_user(user_id or ANONYMOUS) as db:
        return db.execute("SELECT chatstore.delete_conversation(%s) AS d", (conv_uuid,)).fetchone()["d"]


def token_usage_by_model(user_id, since):
    """Tokens for billing and analytics, per model."""
    with store.as_user(user_id or ANONYMOUS) as db:
        return db.execute("SELECT model, messages, input_tokens, output_tokens, total_tokens, avg_latency_ms "
                          "FROM chatstore.usage(%s, group_by => '{model}')", (since,)).fetchall()


def main():
    # Creating records
    conversation = create_conversation("u1", title="My Chat")
    check("create: title and default model", (conversation["title"], conversation["model"]),
          ("My Chat", "openai/gpt-3.5-turbo"))
    check("the public uuid is the conversation id", isinstance(conversation["id"], uuid.UUID), True)
    message = create_message("u1", conversation["id"], "user", "Hello!", model="openai/gpt-4")
    check("a user message with a model override", (message["seq"], message["model"]), (1, "openai/gpt-4"))
    response = create_response("u1", conversation["id"], "Hi! How can I help?", "openai/gpt-4-0613",
                               tokens_prompt=12, tokens_completion=7, completion_time_ms=850)
    check("the response: model used, tokens, completion time",
          (response["model"], response["input_tokens"], response["output_tokens"], response["latency_ms"]),
          ("openai/gpt-4-0613", 12, 7, 850))
    create_message("u1", conversation["id"], "user", "Tell me a joke")          # no override: the default model
    create_response("u1", conversation["id"], "Why did the database go to therapy?", "openai/gpt-3.5-turbo",
                    tokens_prompt=30, tokens_completion=9, completion_time_ms=400)

    # Querying records
    check("get by uuid", get_conversation("u1", conversation["id"])["title"], "My Chat")
    messages = get_messages("u1", conversation["id"])
    check("all messages in order", [(m["seq"], m["role"]) for m in messages],
          [(1, "user"), (2, "assistant"), (3, "user"), (4, "assistant")])
    check("message models: override, used, none (the default applies), used",
          [m["model"] for m in messages], ["openai/gpt-4", "openai/gpt-4-0613", None, "openai/gpt-3.5-turbo"])
    check("a user message has no response", (messages[0]["input_tokens"], messages[0]["latency_ms"]), (None, None))

    # Updating records: the conversation's default model
    check("update the default model", update_conversation_model("u1", conversation["id"], "openai/gpt-4")["model"],
          "openai/gpt-4")
    check("... and the title is kept", get_conversation("u1", conversation["id"])["title"], "My Chat")

    # Token usage for billing/analytics; tokens_total = prompt + completion
    usage = {r["model"]: r for r in token_usage_by_model("u1", "2000-01-01T00:00:00Z")}
    check("usage per model: gpt-4-0613", (usage["openai/gpt-4-0613"]["input_tokens"],
                                          usage["openai/gpt-4-0613"]["output_tokens"],
                                          usage["openai/gpt-4-0613"]["total_tokens"]), (12, 7, 19))
    check("usage per model: gpt-3.5-turbo total", usage["openai/gpt-3.5-turbo"]["total_tokens"], 39)
    check("usage per model: completion time", usage["openai/gpt-3.5-turbo"]["avg_latency_ms"], 400)
    check("usage per model: user messages under the model they asked for and under none",
          (usage["openai/gpt-4"]["messages"], usage[None]["messages"]), (1, 1))

    # Anonymous conversations (nullable user_id in the seed): an application-chosen owner
    anon = create_conversation(None, default_model="openai/gpt-3.5-turbo")
    create_message(None, anon["id"], "user", "Hi, no account here")
    check("an anonymous conversation", (anon["user_id"], len(get_messages(None, anon["id"]))), (ANONYMOUS, 1))
    check("u1 does not see it", get_conversation("u1", anon["id"]), None)

    # Read replicas: reads work in a read-only transaction (as on a standby), writes are refused there
    with store.conn.transaction():
        store.conn.execute("SET TRANSACTION READ ONLY")
        store.conn.execute("SELECT chatstore.set_user('u1')")
        check("read-only: history", len(store.conn.execute("SELECT * FROM chatstore.history(%s)",
                                                           (conversation["id"],)).fetchall()), 4)
    with store.conn.transaction():
        store.conn.execute("SET TRANSACTION READ ONLY")
        store.conn.execute("SELECT chatstore.set_user('u1')")
        check_error("read-only: an append is refused", "25006",
                    lambda: store.conn.execute("SELECT seq FROM chatstore.append(%s, 'user', 'x')",
                                               (conversation["id"],)))

    # Deleting records: the conversation with its messages and responses
    check("delete", delete_conversation("u1", conversation["id"]), True)
    check("deleted: not found", get_conversation("u1", conversation["id"]), None)
    with seedlib.admin().as_user(None) as db:
        check("deleted: no message left (cascade)", db.execute(
            "SELECT count(*) AS n FROM chatstore.message WHERE conversation_id = %s",
            (conversation["id"],)).fetchone()["n"], 0)
    check_error("deleting again: gone", "P0002", delete_conversation, "u1", conversation["id"])

    # validation the seed leaves to the database's types
    check_error("a role outside user/assistant/system/tool", "22023", create_message, "u1", anon["id"], "bot", "x")
    check_error("negative token counts", "22023", create_response, None, anon["id"], "x", "m", tokens_prompt=-1)

    seedlib.finish("003")


main()
