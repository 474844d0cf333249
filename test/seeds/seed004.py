"""Seed 004 (AI MVP Coach, SQLAlchemy): the ChatService methods and each of the seed's statistics queries
re-implemented as thin calls to chatstore, then its API flow (a new conversation, continuing it, its history), its
session lifecycle (active, paused, completed), its statistics and its export, with assertions.

A chat session is a conversation: its status is the conversation's state (active/paused/completed), its
current_phase and session_title are metadata and title, last_activity and message_count are chatstore's own.
A chat_messages row holds one exchange (user_message + coach_response); in chatstore that is two messages, the
user's and the coach's, stored together by one append_many, the coach's carrying response_time_ms as latency_ms and
phase and suggestions in metadata. So chatstore's message counts are twice the seed's row counts. The seed's
sessions have no user yet ("future use"): they all belong to one application user id, here "coach"; statistics
over every user are admin calls (chatstore.grant_admin).
"""
import datetime
import decimal

import psycopg

import seedlib
from seedlib import Jsonb, check, check_error

APP_USER = "coach"
store = seedlib.app()
admin = seedlib.admin()


class ChatService:
    # Session operations
    @staticmethod
    def create_session(session_id=None, user_id=None):
        """A new session in phase risk_assessment; with a session_id of the caller's, that key's session (created
        once)."""
        user = user_id or APP_USER
        with store.as_user(user) as db:
            if session_id is None:
                new_id = db.execute("SELECT chatstore.create_conversation(%s, metadata => %s) AS id",
                                    (user, Jsonb({"phase": "risk_assessment"}))).fetchone()["id"]
            else:
                new_id = db.execute("SELECT chatstore.get_or_create_conversation(%s, %s, metadata => %s) AS id",
                                    (user, session_id, Jsonb({"phase": "risk_assessment"}))).fetchone()["id"]
            return db.execute("SELECT * FROM chatstore.get_conversation(%s)", (new_id,)).fetchone()

    @staticmethod
    def get_session(session_id):
        try:
            with store.as_user(APP_USER) as db:
                return db.execute("SELECT * FROM chatstore.get_conversation(%s)", (session_id,)).fetchone()
        except psycopg.errors.NoDataFound:
            return None

    @staticmethod
    def get_all_sessions(limit=50):
        """Every session, of every user (the admin dashboard), most recent activity first."""
        with admin.as_user(None) as db:
            return db.execute("SELECT * FROM chatstore.list_all_conversations(status => NULL, max_results => %s)",
                              (limit,)).fetchall()

    @staticmethod
    def update_session_phase(session_id, phase):
        with store.as_user(APP_USER) as db:
            return db.execute("SELECT * FROM chatstore.update_conversation(%s, metadata => %s)",
                              (session_id, Jsonb({"phase": phase}))).fetchone()

    @staticmethod
    def update_session_status(session_id, status):
        with store.as_user(APP_USER) as db:
            return db.execute("SELECT * FROM chatstore.set_state(%s, %s)", (session_id, status)).fetchone()

    @staticmethod
    def delete_session(session_id):
        try:
            with store.as_user(APP_USER) as db:
                return db.execute("SELECT chatstore.delete_conversation(%s) AS d", (session_id,)).fetchone()["d"]
        except psycopg.errors.NoDataFound:
            return False

    # Message operations
    @staticmethod
    def add_message(session_id, user_message, coach_response, phase, suggestions=None, response_time_ms=None):
        """One exchange: the user's message and the coach's response, stored together."""
        with store.as_user(APP_USER) as db:
            return db.execute("SELECT * FROM chatstore.append_many(%s, %s)", (session_id, Jsonb([
                {"role": "user", "content": user_message, "metadata": {"phase": phase}},
                {"role": "assistant", "content": coach_response, "latency_ms": response_time_ms,
                 "metadata": {"phase": phase, "suggestions": suggestions or []}}]))).fetchall()

    @staticmethod
    def get_session_messages(session_id):
        with store.as_user(APP_USER) as db:
            return db.execute("SELECT * FROM chatstore.history(%s, 10000)", (session_id,)).fetchall()

    @staticmethod
    def get_conversation_history(session_id):
        """The formatted history: [{"role": ..., "content": ...}, ...]."""
        with store.as_user(APP_USER) as db:
            return db.execute("SELECT chatstore.history_json(%s, 10000) AS h", (session_id,)).fetchone()["h"]

    # Analytics
    @staticmethod
    def get_session_stats():
        """GET /api/stats."""
        with admin.as_user(None) as db:
            return db.execute("SELECT conversations AS total_sessions, state_active AS active_sessions, "
                              "messages + archived_messages AS total_messages, "
                              "avg_messages_per_conversation AS avg_messages_per_session "
                              "FROM chatstore.stats()").fetchone()

    # The seed's statistics queries
    @staticmethod
    def sessions_by_status(status):
        """-- Session statistics: count and average messages, for one status."""
        with admin.as_user(None) as db:
            return db.execute("SELECT conversations AS count, avg_messages_per_conversation AS avg_messages "
                              "FROM chatstore.stats(state => %s)", (status,)).fetchone()

    @staticmethod
    def daily_message_volume(days=7):
        """-- Daily message volume, newest day first."""
        with store.as_user(APP_USER) as db:
            return db.execute("SELECT day AS date, messages FROM chatstore.daily_volume(%s)", (days,)).fetchall()

    @staticmethod
    def response_times():
        """-- Average response time (with min and max)."""
        with admin.as_user(None) as db:
            return db.execute("SELECT avg_latency_ms AS avg_response_ms, min_latency_ms AS min_response_ms, "
                              "max_latency_ms AS max_response_ms FROM chatstore.stats()").fetchone()

    # Export (the seed's planned "export conversations to PDF/text")
    @staticmethod
    def export_session(session_id):
        with store.as_user(APP_USER) as db:
            return db.execute("SELECT chatstore.export_conversation(%s) AS doc", (session_id,)).fetchone()["doc"]

    @staticmethod
    def export_session_text(session_id):
        with store.as_user(APP_USER) as db:
            return db.execute("SELECT chatstore.transcript(%s) AS t", (session_id,)).fetchone()["t"]


def post_chat(message, session_id=None, phase="risk_assessment", response_time_ms=1500):
    """POST /api/chat: get or create the session, answer (stood in for), save the exchange."""
    session = ChatService.get_session(session_id) if session_id else None
    if session is None:
        session = ChatService.create_session()
    reply = f"Tell me more about: {message}"
    suggestions = ["What's the biggest assumption in your business model?",
                   "Who would be most disappointed if your product didn't exist?"]
    ChatService.add_message(session["id"], message, reply, phase, suggestions, response_time_ms)
    return {"session_id": session["id"], "coach_response": reply, "phase": phase, "suggestions": suggestions}


def main():
    # Starting a new conversation, then continuing it
    first = post_chat("I want to build an AI-powered fitness app", response_time_ms=1500)
    sid = first["session_id"]
    session = ChatService.get_session(sid)
    check("a new session: active, in phase risk_assessment", (session["state"], session["metadata"]["phase"]),
          ("active", "risk_assessment"))
    post_chat("My biggest assumption is that people want AI-powered workouts", session_id=sid, response_time_ms=900)
    session = ChatService.get_session(sid)
    check("two exchanges: four messages", session["message_count"], 4)
    check("last activity is the last message's", session["last_activity_at"],
          ChatService.get_session_messages(sid)[-1]["created_at"])

    # Getting session history
    history = ChatService.get_conversation_history(sid)
    check("history: user and coach in turn", [m["role"] for m in history], ["user", "assistant", "user", "assistant"])
    check("history: the first message", history[0]["content"], "I want to build an AI-powered fitness app")
    messages = ChatService.get_session_messages(sid)
    check("each message's phase, the coach's suggestions and response time round-trip",
          (messages[1]["metadata"]["phase"], len(messages[1]["metadata"]["suggestions"]), messages[1]["latency_ms"]),
          ("risk_assessment", 2, 1500))
    check("the user's message has no response time", messages[0]["latency_ms"], None)

    # Session operations
    named = ChatService.create_session(session_id="my-first-mvp")
    again = ChatService.create_session(session_id="my-first-mvp")
    check("create_session with the caller's id: the same session twice", again["id"], named["id"])
    check("... carrying that id as its key", named["key"], "my-first-mvp")
    check("update_session_phase", ChatService.update_session_phase(sid, "customer_discovery")["metadata"]["phase"],
          "customer_discovery")
    post_chat("I talked to ten gym owners", session_id=sid, phase="customer_discovery", response_time_ms=2100)
    check("update_session_status: paused", ChatService.update_session_status(named["id"], "paused")["state"], "paused")
    third = post_chat("A meal planner for students", response_time_ms=600)["session_id"]
    check("update_session_status: completed", ChatService.update_session_status(third, "completed")["state"],
          "completed")
    check_error("a completed session takes no messages", "55000",
                ChatService.add_message, third, "one more", "reply", "risk_assessment")
    check("sessions, most recent activity first", [s["id"] for s in ChatService.get_all_sessions()],
          [third, sid, named["id"]])
    check("get_all_sessions(limit=2)", len(ChatService.get_all_sessions(limit=2)), 2)
    with store.as_user(APP_USER) as db:
        check("sessions in a phase (metadata filter)", [r["id"] for r in db.execute(
            "SELECT id FROM chatstore.list_conversations(%s, metadata => %s)",
            (APP_USER, Jsonb({"phase": "customer_discovery"})))], [sid])

    # Analytics: GET /api/stats
    stats = ChatService.get_session_stats()
    check("stats: total and active sessions, total messages, average per session",
          (stats["total_sessions"], stats["active_sessions"], stats["total_messages"],
           stats["avg_messages_per_session"]), (3, 1, 8, decimal.Decimal("2.67")))

    # The seed's statistics queries
    check("session statistics: active", ChatService.sessions_by_status("active"), {"count": 1, "avg_messages": 6})
    check("session statistics: paused", ChatService.sessions_by_status("paused"), {"count": 1, "avg_messages": 0})
    check("session statistics: completed", ChatService.sessions_by_status("completed"),
          {"count": 1, "avg_messages": 2})
    volume = ChatService.daily_message_volume(7)
    check("daily volume: 7 days, newest first, one day apart",
          [volume[0]["date"] - v["date"] for v in volume], [datetime.timedelta(days=i) for i in range(7)])
    check("daily volume: every message of the last 7 days", sum(v["messages"] for v in volume), 8)
    check("response times: average, min, max", ChatService.response_times(),
          {"avg_response_ms": 1275, "min_response_ms": 600, "max_response_ms": 2100})

    # paused: a message resumes the session
    ChatService.add_message(named["id"], "Back after a break", "Welcome back!", "risk_assessment", [], 700)
    check("a paused session resumes on a new message", ChatService.get_session(named["id"])["state"], "active")

    # Export: the whole session as JSON, and as text
    doc = ChatService.export_session(sid)
    check("export: every message with its phase and suggestions",
          [(m["role"], m["metadata"]["phase"]) for m in doc["messages"]],
          [("user", "risk_assessment"), ("assistant", "risk_assessment")] * 2
          + [("user", "customer_discovery"), ("assistant", "customer_discovery")])
    check("export: the session's phase", doc["conversation"]["metadata"], {"phase": "customer_discovery"})
    check("export: the response time", doc["messages"][1]["latency_ms"], 1500)
    check("export: the lifecycle state", doc["conversation"]["state"], "active")
    text = ChatService.export_session_text(sid)
    check("transcript: a header and each message", (text.startswith("Conversation: (untitled)"),
                                                    "I talked to ten gym owners" in text,
                                                    text.count("\nassistant (")), (True, True, 3))

    # Delete session: its messages go with it
    check("delete_session", ChatService.delete_session(third), True)
    check("deleted: gone", ChatService.get_session(third), None)
    check("deleting again: False", ChatService.delete_session(third), False)
    check("stats after the delete", ChatService.get_session_stats()["total_sessions"], 2)

    # the dashboard lists every user's sessions (create_session's "future use" user id)
    other = ChatService.create_session(user_id="founder-2")
    check("get_all_sessions: another user's session too, first", [s["id"] for s in ChatService.get_all_sessions()],
          [other["id"], named["id"], sid])

    seedlib.finish("004")


main()
