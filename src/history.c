/*
 * history.c
 *	  History windows: chatstore.history (by count and cursor),
 *	  chatstore.context (by token budget) and chatstore.history_json.
 *
 * Windows are read newest first along the (conversation_id, seq) primary
 * key and stop as soon as they are full, so their cost follows the window,
 * not the conversation's length.  They are returned oldest first.  An
 * archived conversation is read the same way from the archive table.
 *
 * The functions are STABLE: every query they run sees the snapshot of the
 * calling statement, so a conversation archived or restored concurrently is
 * seen whole on one side of the move.
 */
#include "postgres.h"

#include <limits.h>

#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "chatstore.h"

PG_FUNCTION_INFO_V1(chatstore_history);
PG_FUNCTION_INFO_V1(chatstore_context);
PG_FUNCTION_INFO_V1(chatstore_history_json);

/* Rows of a window, in output order, as read through SPI. */
typedef struct Window
{
	HeapTuple  *rows;
	int			nrows;
	int			capacity;
	TupleDesc	desc;
} Window;

/* Which table holds a conversation's messages. */
typedef enum MessageTable
{
	LIVE_TABLE = 0,
	ARCHIVE_TABLE = 1
} MessageTable;

/* First and largest batch sizes of context(): small, then growing. */
#define CONTEXT_FIRST_FETCH		8
#define CONTEXT_MAX_FETCH		256

/* Add a row to a window. */
static void
WindowAdd(Window *w, HeapTuple row, TupleDesc desc)
{
	if (w->nrows == w->capacity)
	{
		w->capacity = w->capacity == 0 ? 32 : w->capacity * 2;
		w->rows = w->rows == NULL ? palloc(sizeof(HeapTuple) * w->capacity)
			: repalloc(w->rows, sizeof(HeapTuple) * w->capacity);
	}
	w->rows[w->nrows++] = row;
	w->desc = desc;
}

/*
 * Which table holds a conversation's messages, raising P0002 when the
 * conversation does not exist (for the actor); for an archived one,
 * *archived_at names its archive partition.
 */
static MessageTable
TableOf(pg_uuid_t *conversation_id, Actor *actor, TimestampTz *archived_at)
{
	switch (ChatstoreConversationStatus(conversation_id, false, actor, archived_at))
	{
		case CONV_MISSING:
			ChatstoreConversationNotFound(conversation_id);
			break;
		case CONV_ARCHIVED:
			return ARCHIVE_TABLE;
	}
	return LIVE_TABLE;
}

/*
 * Read the newest messages of an archived conversation from its archive
 * partition: at most max_messages rows with seq < before_seq, newest first,
 * into SPI_tuptable.
 */
static void
ReadNewest(MessageTable table, pg_uuid_t *conversation_id, TimestampTz archived_at,
		   int32 max_messages, int64 before_seq)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[4] = {UUIDOID, INT8OID, INT4OID, TIMESTAMPTZOID};
	Datum		args[4] = {UUIDPGetDatum(conversation_id), Int64GetDatum(before_seq),
	Int32GetDatum(max_messages), TimestampTzGetDatum(archived_at)};
	int			rc;

	Assert(table == ARCHIVE_TABLE);
	rc = SPI_execute_plan(ChatstoreWindowPlan(&plan,
										"SELECT " MESSAGE_COLUMNS " FROM chatstore.archived_message"
										" WHERE conversation_id OPERATOR(pg_catalog.=) $1"
										"   AND archived_at OPERATOR(pg_catalog.=) $4"
										"   AND seq OPERATOR(pg_catalog.<) $2"
										" ORDER BY seq DESC LIMIT $3",
										4, argtypes),
						  args, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "chatstore: history read failed: %s", SPI_result_code_string(rc));
}

/*
 * ScanNewestLive on a distributed install (chatstore.distribute()): the
 * coordinator's chatstore.message is an empty shell there, so the window is
 * read through SPI, which Citus routes to the conversation's shard.
 */
static uint64
ReadNewestLive(pg_uuid_t *conversation_id, int32 max_messages, int64 before_seq, Window *w)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[3] = {UUIDOID, INT8OID, INT4OID};
	Datum		args[3] = {UUIDPGetDatum(conversation_id), Int64GetDatum(before_seq),
	Int32GetDatum(max_messages)};
	int			rc;

	rc = SPI_execute_plan(ChatstoreWindowPlan(&plan,
										"SELECT " MESSAGE_COLUMNS " FROM chatstore.message"
										" WHERE conversation_id OPERATOR(pg_catalog.=) $1"
										"   AND seq OPERATOR(pg_catalog.<) $2"
										" ORDER BY seq DESC LIMIT $3",
										3, argtypes),
						  args, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "chatstore: history read failed: %s", SPI_result_code_string(rc));
	for (int64 i = (int64) SPI_processed - 1; i >= 0; i--)
		WindowAdd(w, SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
	return SPI_processed;
}

/*
 * The newest max_messages live messages with seq < before_seq, newest first,
 * read straight from the (conversation_id, seq) primary key with an index
 * scan: the hottest read of all, so it skips SPI's planner and executor.
 * Adds them to w in reverse, oldest first; returns how many.  Runs as the
 * owner (ChatstoreConnect), under the calling statement's snapshot.  On a
 * distributed install the table here is empty: ReadNewestLive instead.
 */
static uint64
ScanNewestLive(pg_uuid_t *conversation_id, int32 max_messages, int64 before_seq, Window *w)
{
	Oid			nsp = get_namespace_oid("chatstore", false);
	Oid			relid = get_relname_relid("message", nsp);
	Oid			indexid = get_relname_relid("message_pkey", nsp);
	Relation	rel;
	Relation	index;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	TupleDesc	desc;
	ScanKeyData keys[2];
	int			nkeys = 1;
	HeapTuple  *rows = palloc(sizeof(HeapTuple) * max_messages);
	uint64		n = 0;

	if (ChatstoreDistributed())
		return ReadNewestLive(conversation_id, max_messages, before_seq, w);
	if (!OidIsValid(relid) || !OidIsValid(indexid))
		elog(ERROR, "chatstore: table chatstore.message or its primary key is missing");
	rel = table_open(relid, AccessShareLock);
	index = index_open(indexid, AccessShareLock);
	desc = CreateTupleDescCopy(RelationGetDescr(rel));

	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_UUID_EQ, UUIDPGetDatum(conversation_id));
	if (before_seq <= PG_INT32_MAX)
		ScanKeyInit(&keys[nkeys++], 2, BTLessStrategyNumber, F_INT4LT,
					Int32GetDatum((int32) Max(before_seq, PG_INT32_MIN)));
	scan = index_beginscan(rel, index, GetActiveSnapshot(), nkeys, 0);
	index_rescan(scan, keys, nkeys, NULL, 0);
	slot = table_slot_create(rel, NULL);
	while (n < (uint64) max_messages && index_getnext_slot(scan, BackwardScanDirection, slot))
		rows[n++] = ExecCopySlotHeapTuple(slot);
	ExecDropSingleTupleTableSlot(slot);
	index_endscan(scan);
	index_close(index, NoLock);
	table_close(rel, NoLock);	/* the locks stay until the transaction ends */

	for (int64 i = (int64) n - 1; i >= 0; i--)
		WindowAdd(w, rows[i], desc);
	return n;
}

/*
 * The newest max_messages messages with seq < before_seq, oldest first.
 * An admin reads the live table first without looking at the conversation:
 * the common case costs one index scan, and only an empty result needs the
 * conversation, to tell missing (P0002), archived and empty apart.  A call
 * acting for one user checks the conversation is that user's first.
 */
static void
HistoryWindow(pg_uuid_t *conversation_id, int32 max_messages, int64 before_seq,
			  Actor *actor, Window *w)
{
	MessageTable table = LIVE_TABLE;
	TimestampTz archived_at = 0;

	if (actor->kind != ACTOR_ADMIN)
		table = TableOf(conversation_id, actor, &archived_at);
	if (table == LIVE_TABLE)
	{
		if (ScanNewestLive(conversation_id, max_messages, before_seq, w) > 0 ||
			actor->kind != ACTOR_ADMIN)
			return;
		if (TableOf(conversation_id, actor, &archived_at) == LIVE_TABLE)
			return;				/* an active conversation with no such messages */
	}
	ReadNewest(ARCHIVE_TABLE, conversation_id, archived_at, max_messages, before_seq);
	for (int64 i = (int64) SPI_processed - 1; i >= 0; i--)
		WindowAdd(w, SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
}

/* The role of a message row is "system". */
static bool
IsSystemRow(HeapTuple row, TupleDesc desc)
{
	bool		isnull;
	text	   *role = DatumGetTextPP(SPI_getbinval(row, desc, MSGCOL_ROLE + 1, &isnull));

	return VARSIZE_ANY_EXHDR(role) == 6 &&
		memcmp(VARDATA_ANY(role), CHATSTORE_ROLE_SYSTEM, 6) == 0;
}

/* The token count of a message row. */
static int64
RowTokens(HeapTuple row, TupleDesc desc)
{
	bool		isnull;

	return DatumGetInt32(SPI_getbinval(row, desc, MSGCOL_TOKENS + 1, &isnull));
}

/*
 * Read a batch of at most "limit" messages with after < seq < before, newest
 * first or oldest first, from the table that holds the conversation.  Every
 * batch is a LIMIT query, so it walks the (conversation_id, seq) index and
 * stops, whatever plan the planner would choose for an open-ended cursor.
 */
static void
ReadBatch(MessageTable table, bool newest_first, pg_uuid_t *conversation_id,
		  TimestampTz archived_at, int32 after, int64 before, int32 limit)
{
	static SPIPlanPtr plans[2][2] = {{NULL, NULL}, {NULL, NULL}};
	static const char *const queries[2][2] = {
		{
			"SELECT " MESSAGE_COLUMNS " FROM chatstore.message"
			" WHERE conversation_id OPERATOR(pg_catalog.=) $1"
			"   AND seq OPERATOR(pg_catalog.>) $2 AND seq OPERATOR(pg_catalog.<) $5"
			" ORDER BY seq LIMIT $4",
			"SELECT " MESSAGE_COLUMNS " FROM chatstore.message"
			" WHERE conversation_id OPERATOR(pg_catalog.=) $1"
			"   AND seq OPERATOR(pg_catalog.>) $2 AND seq OPERATOR(pg_catalog.<) $5"
			" ORDER BY seq DESC LIMIT $4"
		},
		{
			"SELECT " MESSAGE_COLUMNS " FROM chatstore.archived_message"
			" WHERE conversation_id OPERATOR(pg_catalog.=) $1 AND archived_at OPERATOR(pg_catalog.=) $3"
			"   AND seq OPERATOR(pg_catalog.>) $2 AND seq OPERATOR(pg_catalog.<) $5"
			" ORDER BY seq LIMIT $4",
			"SELECT " MESSAGE_COLUMNS " FROM chatstore.archived_message"
			" WHERE conversation_id OPERATOR(pg_catalog.=) $1 AND archived_at OPERATOR(pg_catalog.=) $3"
			"   AND seq OPERATOR(pg_catalog.>) $2 AND seq OPERATOR(pg_catalog.<) $5"
			" ORDER BY seq DESC LIMIT $4"
		}
	};
	static const Oid argtypes[5] = {UUIDOID, INT4OID, TIMESTAMPTZOID, INT4OID, INT8OID};
	Datum		args[5] = {UUIDPGetDatum(conversation_id), Int32GetDatum(after),
		TimestampTzGetDatum(archived_at), Int32GetDatum(limit), Int64GetDatum(before)};
	int			rc;

	rc = SPI_execute_plan(ChatstoreWindowPlan(&plans[table][newest_first], queries[table][newest_first],
										5, argtypes),
						  args, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "chatstore: context read failed: %s", SPI_result_code_string(rc));
}

/*
 * The leading system messages, then the longest run of newest messages
 * whose tokens, added to the system messages', fit max_tokens (and at most
 * max_messages of them: the run's memory is bounded however long the
 * conversation), oldest first.
 *
 * Both parts are read in small batches that grow (8, 16, ... 256 rows), so
 * reading stops soon after the budget is spent however long the
 * conversation is.
 */
static void
ContextWindow(pg_uuid_t *conversation_id, int32 max_tokens, int32 max_messages,
			  Actor *actor, Window *w)
{
	TimestampTz archived_at = 0;
	MessageTable table = TableOf(conversation_id, actor, &archived_at);
	int64		used = 0;
	int32		last_system_seq = 0;
	int64		before = (int64) PG_INT32_MAX + 1;
	int32		batch = CONTEXT_FIRST_FETCH;
	bool		done = false;
	Window		run = {0};

	/* leading system messages */
	while (!done)
	{
		uint64		got;

		ReadBatch(table, false, conversation_id, archived_at, last_system_seq, before, batch);
		got = SPI_processed;
		for (uint64 i = 0; i < got && !done; i++)
		{
			HeapTuple	row = SPI_tuptable->vals[i];
			bool		isnull;

			if (!IsSystemRow(row, SPI_tuptable->tupdesc))
			{
				done = true;
				break;
			}
			WindowAdd(w, row, SPI_tuptable->tupdesc);
			used += RowTokens(row, SPI_tuptable->tupdesc);
			last_system_seq = DatumGetInt32(SPI_getbinval(row, SPI_tuptable->tupdesc,
														  MSGCOL_SEQ + 1, &isnull));
		}
		if (got < (uint64) batch)
			done = true;
	}

	if (used > max_tokens)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_tokens is smaller than the conversation's system messages"),
				 errdetail("The leading system messages take %lld tokens; max_tokens is %d.",
						   (long long) used, max_tokens),
				 errhint("Raise max_tokens, or use chatstore.history() for a window by count.")));

	/* the newest run that fits what is left */
	done = false;
	while (!done)
	{
		uint64		got;

		ReadBatch(table, true, conversation_id, archived_at, last_system_seq, before, batch);
		got = SPI_processed;
		for (uint64 i = 0; i < got; i++)
		{
			HeapTuple	row = SPI_tuptable->vals[i];
			int64		tokens = RowTokens(row, SPI_tuptable->tupdesc);
			bool		isnull;

			if (used + tokens > max_tokens || run.nrows >= max_messages)
			{
				done = true;
				break;
			}
			used += tokens;
			WindowAdd(&run, row, SPI_tuptable->tupdesc);
			before = DatumGetInt32(SPI_getbinval(row, SPI_tuptable->tupdesc, MSGCOL_SEQ + 1, &isnull));
		}
		if (got < (uint64) batch)
			done = true;
		batch = Min(batch * 2, CONTEXT_MAX_FETCH);
	}

	for (int i = run.nrows - 1; i >= 0; i--)
		WindowAdd(w, run.rows[i], run.desc);
}

/*
 * Read the arguments shared by the three functions and check them:
 * conversation_id (required), a window size and a token budget.
 */
static pg_uuid_t *
WindowArgs(FunctionCallInfo fcinfo)
{
	ChatstoreRequireArg(fcinfo, 0, "conversation_id");
	return PG_GETARG_UUID_P(0);
}

/* Raise 22023 when a token budget is below 1. */
static void
CheckMaxTokens(int32 max_tokens)
{
	if (max_tokens < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_tokens must be at least 1"),
				 errdetail("max_tokens was %d.", max_tokens)));
}

/* Return a window's rows as the function's result set. */
static void
ReturnWindow(FunctionCallInfo fcinfo, Window *w)
{
	for (int i = 0; i < w->nrows; i++)
		ChatstorePutRow(fcinfo, w->rows[i], w->desc);
}

/*
 * chatstore.history(conversation_id uuid, max_messages int, before_seq int)
 *		RETURNS SETOF chatstore.message
 */
Datum
chatstore_history(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	pg_uuid_t  *conversation_id = WindowArgs(fcinfo);
	int32		max_messages;
	int64		before_seq = (int64) PG_INT32_MAX + 1;
	Window		w = {0};
	Actor		actor;

	ChatstoreRequireArg(fcinfo, 1, "max_messages");
	max_messages = PG_GETARG_INT32(1);
	ChatstoreCheckWindow("max_messages", max_messages);
	if (!PG_ARGISNULL(2))
		before_seq = PG_GETARG_INT32(2);

	ChatstoreInitSRF(fcinfo);
	ChatstoreGetActor(&actor);
	ChatstoreConnect(fcinfo, &call);
	HistoryWindow(conversation_id, max_messages, before_seq, &actor, &w);
	ReturnWindow(fcinfo, &w);
	ChatstoreFinish(&call);
	return (Datum) 0;
}

/*
 * chatstore.context(conversation_id uuid, max_tokens int, max_messages int)
 *		RETURNS SETOF chatstore.message
 */
Datum
chatstore_context(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	pg_uuid_t  *conversation_id = WindowArgs(fcinfo);
	int32		max_tokens;
	int32		max_messages = CHATSTORE_MAX_WINDOW;
	Window		w = {0};
	Actor		actor;

	ChatstoreRequireArg(fcinfo, 1, "max_tokens");
	max_tokens = PG_GETARG_INT32(1);
	CheckMaxTokens(max_tokens);
	if (!PG_ARGISNULL(2))
	{
		max_messages = PG_GETARG_INT32(2);
		ChatstoreCheckWindow("max_messages", max_messages);
	}

	ChatstoreInitSRF(fcinfo);
	ChatstoreGetActor(&actor);
	ChatstoreConnect(fcinfo, &call);
	ContextWindow(conversation_id, max_tokens, max_messages, &actor, &w);
	ReturnWindow(fcinfo, &w);
	ChatstoreFinish(&call);
	return (Datum) 0;
}

/* Push a string key into a JSON object being built. */
static void
PushKey(JsonbParseState **state, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(state, WJB_KEY, &k);
}

/* Push a text value into a JSON object being built. */
static void
PushText(JsonbParseState **state, text *t)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = VARDATA_ANY(t);
	v.val.string.len = VARSIZE_ANY_EXHDR(t);
	pushJsonbValue(state, WJB_VALUE, &v);
}

/*
 * Build the chat-completion messages array of a window:
 * [{"role": ..., "content": ...}, ...], with the chat API fields name,
 * tool_calls and tool_call_id copied from a message's metadata when there.
 */
static Jsonb *
WindowToJson(Window *w)
{
	static const char *const chat_fields[] = {"name", "tool_calls", "tool_call_id"};
	JsonbParseState *state = NULL;
	JsonbValue *result;

	pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < w->nrows; i++)
	{
		bool		isnull;
		Jsonb	   *metadata;

		pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		PushKey(&state, "role");
		PushText(&state, DatumGetTextPP(SPI_getbinval(w->rows[i], w->desc,
													  MSGCOL_ROLE + 1, &isnull)));
		PushKey(&state, "content");
		PushText(&state, DatumGetTextPP(SPI_getbinval(w->rows[i], w->desc,
													  MSGCOL_CONTENT + 1, &isnull)));
		metadata = DatumGetJsonbP(SPI_getbinval(w->rows[i], w->desc,
												MSGCOL_METADATA + 1, &isnull));
		if (JB_ROOT_COUNT(metadata) > 0)
		{
			for (int f = 0; f < (int) lengthof(chat_fields); f++)
			{
				JsonbValue	k;
				JsonbValue *v;

				k.type = jbvString;
				k.val.string.val = (char *) chat_fields[f];
				k.val.string.len = strlen(chat_fields[f]);
				v = findJsonbValueFromContainer(&metadata->root, JB_FOBJECT, &k);
				if (v == NULL)
					continue;
				pushJsonbValue(&state, WJB_KEY, &k);
				pushJsonbValue(&state, WJB_VALUE, v);
			}
		}
		pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	}
	result = pushJsonbValue(&state, WJB_END_ARRAY, NULL);
	return JsonbValueToJsonb(result);
}

/*
 * chatstore.history_json(conversation_id uuid, max_messages int,
 *		max_tokens int) RETURNS jsonb
 *
 * Without max_tokens, the history window of max_messages; with it, the
 * context window (max_messages then caps the newest run).
 */
Datum
chatstore_history_json(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	MemoryContext callerctx = CurrentMemoryContext;
	pg_uuid_t  *conversation_id = WindowArgs(fcinfo);
	int32		max_messages;
	Window		w = {0};
	Jsonb	   *result;
	Actor		actor;

	ChatstoreRequireArg(fcinfo, 1, "max_messages");
	max_messages = PG_GETARG_INT32(1);
	ChatstoreCheckWindow("max_messages", max_messages);
	if (!PG_ARGISNULL(2))
		CheckMaxTokens(PG_GETARG_INT32(2));

	ChatstoreGetActor(&actor);
	ChatstoreConnect(fcinfo, &call);
	if (PG_ARGISNULL(2))
		HistoryWindow(conversation_id, max_messages, (int64) PG_INT32_MAX + 1, &actor, &w);
	else
		ContextWindow(conversation_id, PG_GETARG_INT32(2), max_messages, &actor, &w);
	MemoryContextSwitchTo(callerctx);
	result = WindowToJson(&w);
	ChatstoreFinish(&call);
	PG_RETURN_JSONB_P(result);
}
