/*
 * append.c
 *	  Validation and append of messages: chatstore.append, append_many.
 *
 * Every message is validated before anything is written.  The append locks
 * the conversation row with one UPDATE that also takes the next seq numbers
 * and moves the counters, then inserts the messages.  Concurrent appends to
 * one conversation therefore serialize on that row alone, seq stays gapless,
 * and the counters change in the same transaction as the messages.
 */
#include "postgres.h"

#include <limits.h>

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "chatstore.h"

PG_FUNCTION_INFO_V1(chatstore_append);
PG_FUNCTION_INFO_V1(chatstore_append_many);

/* One message to append, as given by the caller. */
typedef struct MessageInput
{
	text	   *role;
	text	   *content;
	Jsonb	   *metadata;		/* never NULL after validation */
	bool		has_metadata;	/* a non-empty object was given */
	int32		tokens;
	bool		tokens_given;
	text	   *model;			/* NULL when not given */
	int32		usage[3];		/* input_tokens, output_tokens, latency_ms */
	bool		usage_given[3];
} MessageInput;

/* The usage figures of a message, in MessageInput.usage and table order. */
static const char *const usage_names[3] = {"input_tokens", "output_tokens", "latency_ms"};
static const int32 usage_limits[3] = {
	CHATSTORE_MAX_USAGE_TOKENS, CHATSTORE_MAX_USAGE_TOKENS, CHATSTORE_MAX_LATENCY_MS
};

/*
 * Raise 22023 unless the role is one of the four chatstore accepts.
 */
static void
ValidateRole(text *role)
{
	const char *r = VARDATA_ANY(role);
	int			len = VARSIZE_ANY_EXHDR(role);

	if ((len == 6 && memcmp(r, CHATSTORE_ROLE_SYSTEM, 6) == 0) ||
		(len == 4 && memcmp(r, CHATSTORE_ROLE_USER, 4) == 0) ||
		(len == 9 && memcmp(r, CHATSTORE_ROLE_ASSISTANT, 9) == 0) ||
		(len == 4 && memcmp(r, CHATSTORE_ROLE_TOOL, 4) == 0))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid role \"%s\"", ChatstoreClip(r, len)),
			 errdetail("The role must be one of system, user, assistant, tool.")));
}

/*
 * Raise 22001 when the content is longer than the limit for its role, and
 * 22023 when it is blank (empty, or only code points with the Unicode
 * White_Space property) without metadata.  Length is counted in code
 * points; the count is only made when the byte length could exceed the
 * limit, since a code point takes at least one byte.
 */
static void
ValidateContent(MessageInput *m)
{
	const char *s = VARDATA_ANY(m->content);
	int			len = VARSIZE_ANY_EXHDR(m->content);
	bool		is_user = VARSIZE_ANY_EXHDR(m->role) == 4 &&
		memcmp(VARDATA_ANY(m->role), CHATSTORE_ROLE_USER, 4) == 0;
	int			limit = chatstore_max_message_chars;
	const char *setting = "chatstore.max_message_chars";

	if (is_user && chatstore_max_user_message_chars < limit)
	{
		limit = chatstore_max_user_message_chars;
		setting = "chatstore.max_user_message_chars";
	}
	if (len > limit)
	{
		int			chars = pg_mbstrlen_with_len(s, len);

		if (chars > limit)
			ereport(ERROR,
					(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
					 errmsg("message content is too long"),
					 errdetail("The content has %d code points; the limit for role %s is %d (%s).",
							   chars, text_to_cstring(m->role), limit, setting),
					 errhint("Shorten the message, or raise %s.", setting)));
	}
	if (!m->has_metadata && ChatstoreIsBlank(s, len))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("message content is blank"),
				 errdetail("Content that is empty or made only of white space (code points with the Unicode White_Space property) is stored only with metadata, such as a tool call; any other character is content.")));
}

/*
 * Raise 22023 for a usage figure (input_tokens, output_tokens, latency_ms)
 * that is negative or above its bound: a count of microseconds passed as
 * milliseconds, or a wrapped counter, would otherwise skew every total.
 */
static void
ValidateUsage(MessageInput *m)
{
	for (int i = 0; i < 3; i++)
	{
		if (!m->usage_given[i])
			continue;
		if (m->usage[i] < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must not be negative", usage_names[i]),
					 errdetail("%s was %d; pass NULL when it is not known.", usage_names[i], m->usage[i])));
		if (m->usage[i] > usage_limits[i])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s is too large", usage_names[i]),
					 errdetail("%s was %d; the largest accepted is %d.", usage_names[i], m->usage[i],
							   usage_limits[i]),
					 errhint(i == 2 ? "latency_ms counts milliseconds." :
							 "Pass the token count of one model call.")));
	}
}

/*
 * Check one message and fill in what was left out: metadata becomes {} and
 * a missing token count is estimated from the content.
 */
static void
ValidateMessage(MessageInput *m)
{
	ValidateRole(m->role);
	if (m->metadata != NULL)
	{
		ChatstoreCheckMetadata(m->metadata, "metadata");
		m->has_metadata = JB_ROOT_COUNT(m->metadata) > 0;
	}
	else
	{
		m->metadata = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
		m->has_metadata = false;
	}
	ValidateContent(m);
	if (m->model != NULL)
		ChatstoreCheckIdentifier(m->model, "model");
	if (m->tokens_given && m->tokens < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tokens must not be negative"),
				 errdetail("tokens was %d; pass NULL to have chatstore estimate it.", m->tokens)));
	if (!m->tokens_given)
	{
		m->tokens = EstimateTokens(VARDATA_ANY(m->content), VARSIZE_ANY_EXHDR(m->content));
		m->tokens_given = true;
	}
	ValidateUsage(m);
}

/*
 * Raise 22023 for an empty idempotency key, 22001 for one longer than
 * CHATSTORE_MAX_ID_BYTES bytes.
 */
static void
ValidateIdempotencyKey(text *key)
{
	int			len = VARSIZE_ANY_EXHDR(key);

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("idempotency_key must not be empty"),
				 errdetail("Pass NULL for no key, or a string that identifies this message.")));
	ChatstoreCheckIdentifier(key, "idempotency_key");
}

/*
 * With the conversation locked, look for a message stored earlier with the
 * same idempotency key.  Returns true and fills values/nulls when found.
 */
static bool
FindByIdempotencyKey(pg_uuid_t *conversation_id, text *key,
					 Datum *values, bool *nulls)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[2] = {UUIDOID, TEXTOID};
	Datum		args[2] = {UUIDPGetDatum(conversation_id), PointerGetDatum(key)};
	int			rc;

	rc = SPI_execute_plan(ChatstorePlan(&plan,
										"SELECT " MESSAGE_COLUMNS " FROM chatstore.message"
										" WHERE conversation_id OPERATOR(pg_catalog.=) $1"
										"   AND idempotency_key OPERATOR(pg_catalog.=) $2",
										2, argtypes),
						  args, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "chatstore: idempotency lookup failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		return false;
	heap_deform_tuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, values, nulls);
	return true;
}

/*
 * Lock the conversation for a new attempt at taking seq numbers, after the
 * UPDATE of ReserveSeq found no row to change: raise P0002 when it is
 * missing (or not the actor's), 55000 when it is archived or completed
 * (src/lifecycle.c), 54000 when n more messages would pass the largest seq.
 * Otherwise it was restored (or set active) meanwhile, and it stays so now
 * that it is locked.  The lookup is not read-only,
 * so it sees what the UPDATE saw.
 */
static void
LockForAppend(pg_uuid_t *conversation_id, int n, Actor *actor)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[2] = {UUIDOID, TEXTOID};
	Datum		args[2] = {UUIDPGetDatum(conversation_id), (Datum) 0};
	char		nulls[2] = {' ', ' '};
	bool		isnull;
	char	   *status;
	int32		last_seq;

	ChatstoreActorArg(actor, &args[1], &nulls[1]);
	if (SPI_execute_plan(ChatstorePlan(&plan,
									   "SELECT status, last_seq, state FROM chatstore.conversation"
									   " WHERE id OPERATOR(pg_catalog.=) $1"
									   "   AND ($2 IS NULL OR user_id OPERATOR(pg_catalog.=) $2)"
									   " FOR NO KEY UPDATE",
									   2, argtypes),
						 args, nulls, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "chatstore: conversation lock failed");
	if (SPI_processed == 0)
		ChatstoreConversationNotFound(conversation_id);
	status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (strcmp(status, "archived") == 0)
		ChatstoreConversationArchived(conversation_id);
	if (strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3), "completed") == 0)
		ChatstoreConversationCompleted(conversation_id);
	last_seq = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (last_seq > PG_INT32_MAX - n)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("conversation %s is full", ChatstoreUuidText(conversation_id)),
				 errdetail("It holds %d messages; seq cannot pass %d.", last_seq, PG_INT32_MAX),
				 errhint("Start a new conversation.")));
}

/*
 * Take n seq numbers of an active conversation and move its counters; a
 * paused conversation becomes active, a completed one is refused.
 * Returns the first seq taken, and the conversation's owner in *user_id.
 * The UPDATE locks the conversation row until
 * the transaction ends.  When it changes nothing, LockForAppend says why
 * (P0002, 55000, 54000) or, if the conversation was restored in between,
 * locks it, and the second UPDATE cannot miss.
 */
static int32
ReserveSeq(pg_uuid_t *conversation_id, int n, int64 tokens, TimestampTz now,
		   Actor *actor, text **user_id)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[5] = {UUIDOID, INT4OID, INT8OID, TIMESTAMPTZOID, TEXTOID};
	Datum		args[5] = {UUIDPGetDatum(conversation_id), Int32GetDatum(n),
	Int64GetDatum(tokens), TimestampTzGetDatum(now), (Datum) 0};
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

	if (actor->kind == ACTOR_NOBODY)
		ChatstoreConversationNotFound(conversation_id);
	ChatstoreActorArg(actor, &args[4], &nulls[4]);
	for (int attempt = 0; attempt < 2; attempt++)
	{
		int			rc;
		bool		isnull;

		rc = SPI_execute_plan(ChatstorePlan(&plan,
											"UPDATE chatstore.conversation SET"
											"  last_seq = last_seq OPERATOR(pg_catalog.+) $2,"
											"  message_count = message_count OPERATOR(pg_catalog.+) $2,"
											"  token_count = token_count OPERATOR(pg_catalog.+) $3,"
											"  last_activity_at = GREATEST(last_activity_at, $4),"
											"  state = 'active'"
											" WHERE id OPERATOR(pg_catalog.=) $1"
											"   AND status OPERATOR(pg_catalog.=) 'active'"
											"   AND state OPERATOR(pg_catalog.<>) 'completed'"
											"   AND ($5 IS NULL OR user_id OPERATOR(pg_catalog.=) $5)"
											"   AND last_seq OPERATOR(pg_catalog.<=) (2147483647 OPERATOR(pg_catalog.-) $2)"
											" RETURNING last_seq, user_id",
											5, argtypes),
							  args, nulls, false, 0);
		if (rc != SPI_OK_UPDATE_RETURNING)
			elog(ERROR, "chatstore: conversation update failed: %s", SPI_result_code_string(rc));
		if (SPI_processed == 1)
		{
			*user_id = DatumGetTextPCopy(SPI_getbinval(SPI_tuptable->vals[0],
													   SPI_tuptable->tupdesc, 2, &isnull));
			return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1, &isnull)) - n + 1;
		}
		LockForAppend(conversation_id, n, actor);
	}
	elog(ERROR, "chatstore: conversation %s changed while locked", ChatstoreUuidText(conversation_id));
	return 0;					/* keep compiler quiet */
}

/*
 * Fill values/nulls (the stored row, for the result) and spinulls (for SPI)
 * with a validated message, a new id, the given seq and the conversation's
 * owner (NULL when the statement takes it from the conversation row).
 */
static void
FillMessage(pg_uuid_t *conversation_id, int32 seq, MessageInput *m, text *idempotency_key,
			text *user_id, TimestampTz now, Datum *values, bool *nulls, char *spinulls)
{
	pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));

	GenerateUuidV7(id, now);
	values[MSGCOL_CONVERSATION_ID] = UUIDPGetDatum(conversation_id);
	values[MSGCOL_SEQ] = Int32GetDatum(seq);
	values[MSGCOL_ID] = UUIDPGetDatum(id);
	values[MSGCOL_ROLE] = PointerGetDatum(m->role);
	values[MSGCOL_CONTENT] = PointerGetDatum(m->content);
	values[MSGCOL_METADATA] = JsonbPGetDatum(m->metadata);
	values[MSGCOL_MODEL] = PointerGetDatum(m->model);
	values[MSGCOL_TOKENS] = Int32GetDatum(m->tokens);
	values[MSGCOL_CREATED_AT] = TimestampTzGetDatum(now);
	values[MSGCOL_IDEMPOTENCY_KEY] = PointerGetDatum(idempotency_key);
	values[MSGCOL_USER_ID] = PointerGetDatum(user_id);
	for (int i = 0; i < MESSAGE_NCOLUMNS; i++)
	{
		nulls[i] = false;
		spinulls[i] = ' ';
	}
	nulls[MSGCOL_MODEL] = m->model == NULL;
	spinulls[MSGCOL_MODEL] = m->model == NULL ? 'n' : ' ';
	nulls[MSGCOL_IDEMPOTENCY_KEY] = idempotency_key == NULL;
	spinulls[MSGCOL_IDEMPOTENCY_KEY] = idempotency_key == NULL ? 'n' : ' ';
	for (int i = 0; i < 3; i++)
	{
		values[MSGCOL_INPUT_TOKENS + i] = Int32GetDatum(m->usage[i]);
		nulls[MSGCOL_INPUT_TOKENS + i] = !m->usage_given[i];
		spinulls[MSGCOL_INPUT_TOKENS + i] = m->usage_given[i] ? ' ' : 'n';
	}
	nulls[MSGCOL_USER_ID] = user_id == NULL;
	spinulls[MSGCOL_USER_ID] = user_id == NULL ? 'n' : ' ';
}

/*
 * Insert one validated message with the given seq (taken by ReserveSeq) and
 * fill values/nulls with the stored row.
 */
static void
InsertMessage(pg_uuid_t *conversation_id, int32 seq, MessageInput *m,
			  text *idempotency_key, text *user_id, TimestampTz now, Datum *values, bool *nulls)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[MESSAGE_NCOLUMNS] = {
		UUIDOID, INT4OID, UUIDOID, TEXTOID, TEXTOID, JSONBOID, TEXTOID, INT4OID,
		TIMESTAMPTZOID, TEXTOID, INT4OID, INT4OID, INT4OID, TEXTOID
	};
	char		spinulls[MESSAGE_NCOLUMNS];
	int			rc;

	FillMessage(conversation_id, seq, m, idempotency_key, user_id, now, values, nulls, spinulls);
	rc = SPI_execute_plan(ChatstorePlan(&plan,
										"INSERT INTO chatstore.message (" MESSAGE_COLUMNS ")"
										" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
										MESSAGE_NCOLUMNS, argtypes),
						  values, spinulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "chatstore: message insert failed: %s", SPI_result_code_string(rc));
}

/*
 * Append one validated message in one statement: the UPDATE that takes the
 * next seq and moves the counters feeds the INSERT.  One statement instead
 * of two is most of an append's own cost.  The UPDATE also resumes a paused
 * conversation and skips a completed one.  When the UPDATE finds no row,
 * LockForAppend says why (P0002, 55000, 54000) or locks the conversation
 * restored in between, and the second attempt cannot miss.  The UPDATE
 * also gives the INSERT the conversation's owner, stored on the message
 * ($14, the user_id slot of values, stays unused).  Fills values/nulls with
 * the stored row.
 */
static void
AppendOne(pg_uuid_t *conversation_id, MessageInput *m, text *idempotency_key,
		  TimestampTz now, Actor *actor, Datum *values, bool *nulls)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[MESSAGE_NCOLUMNS + 1] = {
		UUIDOID, INT4OID, UUIDOID, TEXTOID, TEXTOID, JSONBOID, TEXTOID, INT4OID,
		TIMESTAMPTZOID, TEXTOID, INT4OID, INT4OID, INT4OID, TEXTOID, TEXTOID
	};
	Datum		args[MESSAGE_NCOLUMNS + 1];
	char		spinulls[MESSAGE_NCOLUMNS + 1];

	if (actor->kind == ACTOR_NOBODY)
		ChatstoreConversationNotFound(conversation_id);
	FillMessage(conversation_id, 0, m, idempotency_key, NULL, now, values, nulls, spinulls);
	memcpy(args, values, sizeof(Datum) * MESSAGE_NCOLUMNS);
	ChatstoreActorArg(actor, &args[MESSAGE_NCOLUMNS], &spinulls[MESSAGE_NCOLUMNS]);

	for (int attempt = 0; attempt < 2; attempt++)
	{
		bool		isnull;
		int			rc;

		rc = SPI_execute_plan(ChatstorePlan(&plan,
											"WITH c AS ("
											"  UPDATE chatstore.conversation SET"
											"    last_seq = last_seq OPERATOR(pg_catalog.+) 1,"
											"    message_count = message_count OPERATOR(pg_catalog.+) 1,"
											"    token_count = token_count OPERATOR(pg_catalog.+) $8,"
											"    last_activity_at = GREATEST(last_activity_at, $9),"
											"    state = 'active'"
											"  WHERE id OPERATOR(pg_catalog.=) $1"
											"    AND status OPERATOR(pg_catalog.=) 'active'"
											"    AND state OPERATOR(pg_catalog.<>) 'completed'"
											"    AND ($15 IS NULL OR user_id OPERATOR(pg_catalog.=) $15)"
											"    AND last_seq OPERATOR(pg_catalog.<) 2147483647"
											"  RETURNING last_seq, user_id)"
											" INSERT INTO chatstore.message (" MESSAGE_COLUMNS ")"
											" SELECT $1, c.last_seq, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, c.user_id FROM c"
											" RETURNING seq, user_id",
											MESSAGE_NCOLUMNS + 1, argtypes),
							  args, spinulls, false, 0);
		if (rc != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "chatstore: append failed: %s", SPI_result_code_string(rc));
		if (SPI_processed == 1)
		{
			values[MSGCOL_SEQ] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			values[MSGCOL_USER_ID] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
			nulls[MSGCOL_USER_ID] = false;
			return;
		}
		LockForAppend(conversation_id, 1, actor);
	}
	elog(ERROR, "chatstore: conversation %s changed while locked", ChatstoreUuidText(conversation_id));
}

/*
 * AppendOne on a distributed install (chatstore.distribute()): the same
 * UPDATE and INSERT as two statements, as append_many does.  Citus cannot
 * route AppendOne's UPDATE-feeding-INSERT to one shard: it runs the UPDATE,
 * ships its row back to the worker as an intermediate result for the INSERT,
 * and commits with two-phase commit.  Each statement here is routed to the
 * conversation's shard over the same connection, and the transaction commits
 * on that one worker.  The guarantees are AppendOne's: the UPDATE locks the
 * conversation row until the transaction ends, so seq stays gapless, and it
 * refuses what AppendOne's refuses (LockForAppend says why).  Fills
 * values/nulls with the stored row.
 */
static void
AppendRouted(pg_uuid_t *conversation_id, MessageInput *m, text *idempotency_key,
			 TimestampTz now, Actor *actor, Datum *values, bool *nulls)
{
	text	   *owner;
	int32		seq;

	seq = ReserveSeq(conversation_id, 1, m->tokens, now, actor, &owner);
	InsertMessage(conversation_id, seq, m, idempotency_key, owner, now, values, nulls);
}

/*
 * chatstore.append(conversation_id uuid, role text, content text,
 *		metadata jsonb, tokens int, model text, idempotency_key text,
 *		input_tokens int, output_tokens int, latency_ms int)
 *		RETURNS chatstore.message
 *
 * With an idempotency key, the conversation is locked first so that two
 * calls with the same key serialize and the second finds the first's
 * message and returns it, storing nothing.
 */
Datum
chatstore_append(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	MemoryContext callerctx = CurrentMemoryContext;
	pg_uuid_t  *conversation_id;
	MessageInput m;
	text	   *idempotency_key = NULL;
	TimestampTz now = GetCurrentTimestamp();
	Datum		values[MESSAGE_NCOLUMNS];
	bool		nulls[MESSAGE_NCOLUMNS];
	bool		found = false;
	Datum		result;
	Actor		actor;

	ChatstoreRequireArg(fcinfo, 0, "conversation_id");
	ChatstoreRequireArg(fcinfo, 1, "role");
	ChatstoreRequireArg(fcinfo, 2, "content");
	conversation_id = PG_GETARG_UUID_P(0);
	m.role = PG_GETARG_TEXT_PP(1);
	m.content = PG_GETARG_TEXT_PP(2);
	m.metadata = PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3);
	m.tokens_given = !PG_ARGISNULL(4);
	m.tokens = m.tokens_given ? PG_GETARG_INT32(4) : 0;
	m.model = PG_ARGISNULL(5) ? NULL : PG_GETARG_TEXT_PP(5);
	for (int i = 0; i < 3; i++)
	{
		/* 1.0's seven-argument declaration has no usage arguments */
		m.usage_given[i] = PG_NARGS() > 7 + i && !PG_ARGISNULL(7 + i);
		m.usage[i] = m.usage_given[i] ? PG_GETARG_INT32(7 + i) : 0;
	}
	if (!PG_ARGISNULL(6))
	{
		idempotency_key = PG_GETARG_TEXT_PP(6);
		ValidateIdempotencyKey(idempotency_key);
	}
	ValidateMessage(&m);
	ChatstoreGetActor(&actor);

	ChatstoreConnect(fcinfo, &call);
	if (idempotency_key != NULL)
	{
		switch (ChatstoreConversationStatus(conversation_id, CONV_LOCK_NO_KEY, &actor, NULL))
		{
			case CONV_MISSING:
				ChatstoreConversationNotFound(conversation_id);
				break;
			case CONV_ARCHIVED:
				ChatstoreConversationArchived(conversation_id);
				break;
		}
		found = FindByIdempotencyKey(conversation_id, idempotency_key, values, nulls);
	}
	if (!found)
	{
		if (ChatstoreDistributed())
			AppendRouted(conversation_id, &m, idempotency_key, now, &actor, values, nulls);
		else
			AppendOne(conversation_id, &m, idempotency_key, now, &actor, values, nulls);
	}

	MemoryContextSwitchTo(callerctx);
	result = ChatstoreFormRow(fcinfo, values, nulls, MESSAGE_NCOLUMNS);
	ChatstoreFinish(&call);
	PG_RETURN_DATUM(result);
}

/* Error context of append_many: which element of the array is at fault. */
static void
AppendManyErrorContext(void *arg)
{
	errcontext("element %d of messages", *(int *) arg);
}

/*
 * Raise 22023 for a malformed element of append_many's array.
 */
static void
BadElement(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid message: %s", what),
			 errdetail("Each element must be an object {\"role\": ..., \"content\": ...} with optional metadata, tokens, model, input_tokens, output_tokens, latency_ms, name, tool_calls, tool_call_id.")));
}

/* Look up a key of a JSON object container; NULL when absent. */
static JsonbValue *
GetKey(JsonbContainer *obj, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(obj, JB_FOBJECT, &k);
}

/* A JSON string value as text; raises 22023 for any other type. */
static text *
StringValue(JsonbValue *v, const char *what)
{
	if (v->type != jbvString)
		BadElement(what);
	return cstring_to_text_with_len(v->val.string.val, v->val.string.len);
}

/*
 * Read an integer key of an element (tokens, input_tokens, ...): false when
 * absent or null, 22023 for anything but a whole number in int4's range.
 */
static bool
IntegerKey(JsonbContainer *obj, const char *key, int32 *value)
{
	JsonbValue *jv;
	bool		error = false;

	*value = 0;
	if ((jv = GetKey(obj, key)) == NULL || jv->type == jbvNull)
		return false;
	if (jv->type != jbvNumeric)
		BadElement(psprintf("%s must be a number", key));
	*value = numeric_int4_opt_error(jv->val.numeric, &error);
	if (error)
		BadElement(psprintf("%s is out of range", key));
	/* numeric_int4 rounds: a whole number is one that converts back to itself */
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(jv->val.numeric),
										  DirectFunctionCall1(int4_numeric,
															  Int32GetDatum(*value)))) != 0)
		BadElement(psprintf("%s must be a whole number", key));
	return true;
}

/*
 * Turn one element of append_many's array into a MessageInput.  The chat
 * API fields name, tool_calls and tool_call_id are kept in the message's
 * metadata, from where history_json gives them back.
 */
static void
ParseElement(JsonbValue *elem, MessageInput *m)
{
	static const char *const known[] = {
		"role", "content", "metadata", "tokens", "model", "name", "tool_calls", "tool_call_id",
		"input_tokens", "output_tokens", "latency_ms"
	};
	static const char *const chat_fields[] = {"name", "tool_calls", "tool_call_id"};
	JsonbContainer *obj;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	v;
	JsonbValue *jv;
	JsonbParseState *state = NULL;
	bool		any_chat_field = false;

	if (elem->type != jbvBinary || !JsonContainerIsObject(elem->val.binary.data))
		BadElement("it is not a JSON object");
	obj = elem->val.binary.data;

	/* reject keys we do not know: a misspelt "contnet" must not pass */
	it = JsonbIteratorInit(obj);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		bool		ok = false;

		if (tok != WJB_KEY)
			continue;
		for (int i = 0; i < (int) lengthof(known); i++)
			if (strlen(known[i]) == (size_t) v.val.string.len &&
				memcmp(known[i], v.val.string.val, v.val.string.len) == 0)
				ok = true;
		if (!ok)
			BadElement(psprintf("unknown key \"%s\"",
									ChatstoreClip(v.val.string.val, v.val.string.len)));
	}

	if ((jv = GetKey(obj, "role")) == NULL)
		BadElement("it has no role");
	m->role = StringValue(jv, "role must be a string");

	if ((jv = GetKey(obj, "content")) == NULL)
		BadElement("it has no content");
	if (jv->type == jbvNull)
		m->content = cstring_to_text("");
	else
		m->content = StringValue(jv, "content must be a string");

	m->metadata = NULL;
	if ((jv = GetKey(obj, "metadata")) != NULL && jv->type != jbvNull)
	{
		if (jv->type != jbvBinary || !JsonContainerIsObject(jv->val.binary.data))
			BadElement("metadata must be a JSON object");
		m->metadata = JsonbValueToJsonb(jv);
	}

	m->tokens_given = IntegerKey(obj, "tokens", &m->tokens);
	for (int i = 0; i < 3; i++)
		m->usage_given[i] = IntegerKey(obj, usage_names[i], &m->usage[i]);

	m->model = NULL;
	if ((jv = GetKey(obj, "model")) != NULL && jv->type != jbvNull)
		m->model = StringValue(jv, "model must be a string");

	/* fold name, tool_calls and tool_call_id into the metadata */
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < (int) lengthof(chat_fields); i++)
	{
		JsonbValue	k;

		if ((jv = GetKey(obj, chat_fields[i])) == NULL || jv->type == jbvNull)
			continue;
		k.type = jbvString;
		k.val.string.val = (char *) chat_fields[i];
		k.val.string.len = strlen(chat_fields[i]);
		pushJsonbValue(&state, WJB_KEY, &k);
		pushJsonbValue(&state, WJB_VALUE, jv);
		any_chat_field = true;
	}
	jv = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	if (any_chat_field)
	{
		Jsonb	   *fields = JsonbValueToJsonb(jv);

		if (m->metadata == NULL)
			m->metadata = fields;
		else
			m->metadata = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat,
															 JsonbPGetDatum(m->metadata),
															 JsonbPGetDatum(fields)));
	}
}

/*
 * chatstore.append_many(conversation_id uuid, messages jsonb)
 *		RETURNS SETOF chatstore.message
 *
 * Every element is parsed and validated before the conversation is locked;
 * then all are stored with consecutive seq numbers, or, on any error, none.
 */
Datum
chatstore_append_many(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	pg_uuid_t  *conversation_id;
	Jsonb	   *messages;
	MessageInput *inputs;
	int			n;
	int64		tokens = 0;
	int32		first_seq;
	int			position = 0;
	ErrorContextCallback errcallback;
	TimestampTz now = GetCurrentTimestamp();
	Datum		values[MESSAGE_NCOLUMNS];
	bool		nulls[MESSAGE_NCOLUMNS];
	Actor		actor;
	text	   *owner;

	ChatstoreRequireArg(fcinfo, 0, "conversation_id");
	ChatstoreRequireArg(fcinfo, 1, "messages");
	conversation_id = PG_GETARG_UUID_P(0);
	messages = PG_GETARG_JSONB_P(1);
	if (!JB_ROOT_IS_ARRAY(messages) || JB_ROOT_IS_SCALAR(messages))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("messages must be a JSON array"),
				 errdetail("Pass an array such as '[{\"role\": \"user\", \"content\": \"Hello\"}]'.")));
	n = JB_ROOT_COUNT(messages);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("messages must not be empty"),
				 errdetail("Pass at least one message.")));

	/* parse and validate everything first, naming the element at fault */
	inputs = palloc(sizeof(MessageInput) * n);
	errcallback.callback = AppendManyErrorContext;
	errcallback.arg = &position;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	for (int i = 0; i < n; i++)
	{
		position = i + 1;
		ParseElement(getIthJsonbValueFromContainer(&messages->root, i), &inputs[i]);
		ValidateMessage(&inputs[i]);
		tokens += inputs[i].tokens;
	}
	error_context_stack = errcallback.previous;

	ChatstoreInitSRF(fcinfo);
	ChatstoreGetActor(&actor);
	ChatstoreConnect(fcinfo, &call);
	first_seq = ReserveSeq(conversation_id, n, tokens, now, &actor, &owner);
	for (int i = 0; i < n; i++)
	{
		InsertMessage(conversation_id, first_seq + i, &inputs[i], NULL, owner, now, values, nulls);
		ChatstorePutValues(fcinfo, values, nulls, MESSAGE_NCOLUMNS);
	}
	ChatstoreFinish(&call);
	return (Datum) 0;
}

/*
 * Validate one message exactly as append does, for import_conversation
 * (export.c), which stores messages of its own.  *metadata becomes {} when
 * NULL; *tokens is estimated from the content when not given.  usage and
 * usage_given hold input_tokens, output_tokens, latency_ms, in that order.
 */
void
ChatstoreValidateMessage(text *role, text *content, Jsonb **metadata,
						 int32 *tokens, bool tokens_given, text *model,
						 const int32 *usage, const bool *usage_given)
{
	MessageInput m;

	for (int i = 0; i < 3; i++)
	{
		m.usage[i] = usage[i];
		m.usage_given[i] = usage_given[i];
	}

	m.role = role;
	m.content = content;
	m.metadata = *metadata;
	m.tokens = *tokens;
	m.tokens_given = tokens_given;
	m.model = model;
	ValidateMessage(&m);
	*metadata = m.metadata;
	*tokens = m.tokens;
}

/* Validate an idempotency key as append does, for import_conversation. */
void
ChatstoreValidateIdempotencyKey(text *key)
{
	ValidateIdempotencyKey(key);
}
