/*
 * conversation.c
 *	  Conversations: chatstore.create_conversation, get_conversation,
 *	  list_conversations, update_conversation, delete_conversation.
 *
 * A conversation row carries the counters (messages, tokens, last seq) that
 * append keeps true; these functions never touch the counters.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "chatstore.h"

PG_FUNCTION_INFO_V1(chatstore_create_conversation);
PG_FUNCTION_INFO_V1(chatstore_get_conversation);
PG_FUNCTION_INFO_V1(chatstore_list_conversations);
PG_FUNCTION_INFO_V1(chatstore_list_all_conversations);
PG_FUNCTION_INFO_V1(chatstore_update_conversation);
PG_FUNCTION_INFO_V1(chatstore_delete_conversation);

/*
 * Raise 22023 when a text argument that names something is empty, 22001
 * when it is longer than an identifier may be.
 */
static void
RequireNonEmpty(text *value, const char *argname)
{
	if (VARSIZE_ANY_EXHDR(value) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", argname),
				 errdetail("Pass the application's identifier for %s.", argname)));
	ChatstoreCheckIdentifier(value, argname);
}

/* Raise 22023 unless a status filter is 'active' or 'archived'. */
static void
CheckStatus(text *value)
{
	char	   *status = text_to_cstring(value);

	if (strcmp(status, "active") != 0 && strcmp(status, "archived") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid status \"%s\"", ChatstoreClip(status, strlen(status))),
				 errdetail("status must be 'active', 'archived', or NULL for both.")));
}

/*
 * Raise 22001 when a title (argument argno) is longer than
 * chatstore.max_title_chars code points or a model name (argument
 * modelno) longer than an identifier may be.  NULLs pass.
 */
static void
CheckTitleAndModel(FunctionCallInfo fcinfo, int argno, int modelno)
{
	if (!PG_ARGISNULL(argno))
		ChatstoreCheckCodePoints(PG_GETARG_TEXT_PP(argno), "title",
								 chatstore_max_title_chars, "chatstore.max_title_chars");
	if (!PG_ARGISNULL(modelno))
		ChatstoreCheckIdentifier(PG_GETARG_TEXT_PP(modelno), "model");
}

/*
 * chatstore.create_conversation(user_id text, title text, metadata jsonb,
 *								 model text) RETURNS uuid
 *
 * The id is a UUIDv7 made here, so conversations sort by creation time.
 */
Datum
chatstore_create_conversation(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[6] = {UUIDOID, TEXTOID, TEXTOID, JSONBOID, TEXTOID, TIMESTAMPTZOID};
	pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));
	TimestampTz now = GetCurrentTimestamp();
	Datum		args[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	int			rc;

	Actor		actor;

	ChatstoreRequireArg(fcinfo, 0, "user_id");
	RequireNonEmpty(PG_GETARG_TEXT_PP(0), "user_id");
	CheckTitleAndModel(fcinfo, 1, 3);
	if (!PG_ARGISNULL(2))
		ChatstoreCheckMetadata(PG_GETARG_JSONB_P(2), "metadata");
	ChatstoreGetActor(&actor);
	if (!ChatstoreActorIs(&actor, PG_GETARG_TEXT_PP(0)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot create a conversation for another user"),
				 errdetail("chatstore.user_id is \"%s\" but user_id is \"%s\".",
						   text_to_cstring(actor.user_id), text_to_cstring(PG_GETARG_TEXT_PP(0)))));

	GenerateUuidV7(id, now);
	args[0] = UUIDPGetDatum(id);
	args[1] = PG_GETARG_DATUM(0);
	args[2] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	nulls[2] = PG_ARGISNULL(1) ? 'n' : ' ';
	args[3] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	nulls[3] = PG_ARGISNULL(2) ? 'n' : ' ';
	args[4] = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);
	nulls[4] = PG_ARGISNULL(3) ? 'n' : ' ';
	args[5] = TimestampTzGetDatum(now);

	ChatstoreConnect(fcinfo, &call);
	rc = SPI_execute_plan(ChatstorePlan(&plan,
										"INSERT INTO chatstore.conversation"
										" (id, user_id, title, metadata, model, created_at, last_activity_at)"
										" VALUES ($1, $2, $3, COALESCE($4, '{}'::pg_catalog.jsonb), $5, $6, $6)",
										6, argtypes),
						  args, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "chatstore: conversation insert failed: %s", SPI_result_code_string(rc));
	ChatstoreFinish(&call);

	PG_RETURN_UUID_P(id);
}

/*
 * chatstore.get_conversation(conversation_id uuid) RETURNS chatstore.conversation
 *
 * Raises P0002 when the conversation does not exist (or is another user's),
 * like every function that takes a conversation id: a NULL result would
 * reach "SELECT * FROM get_conversation(...)" as one row of NULLs.
 */
Datum
chatstore_get_conversation(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[2] = {UUIDOID, TEXTOID};
	MemoryContext callerctx = CurrentMemoryContext;
	Datum		args[2];
	char		nulls[2] = {' ', ' '};
	Datum		result = (Datum) 0;
	bool		found;
	Actor		actor;
	int			rc;

	ChatstoreRequireArg(fcinfo, 0, "conversation_id");
	args[0] = PG_GETARG_DATUM(0);
	ChatstoreGetActor(&actor);
	ChatstoreActorArg(&actor, &args[1], &nulls[1]);

	ChatstoreConnect(fcinfo, &call);
	rc = SPI_execute_plan(ChatstorePlan(&plan,
										"SELECT " CONVERSATION_COLUMNS
										" FROM chatstore.conversation"
										" WHERE id OPERATOR(pg_catalog.=) $1"
										"   AND ($2 IS NULL OR user_id OPERATOR(pg_catalog.=) $2)",
										2, argtypes),
						  args, nulls, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "chatstore: conversation lookup failed: %s", SPI_result_code_string(rc));
	found = SPI_processed > 0;
	if (found)
	{
		MemoryContext spictx = MemoryContextSwitchTo(callerctx);

		result = ChatstoreRowFromSPI(fcinfo, SPI_tuptable->vals[0], SPI_tuptable->tupdesc);
		MemoryContextSwitchTo(spictx);
	}
	ChatstoreFinish(&call);

	if (!found)
		ChatstoreConversationNotFound(PG_GETARG_UUID_P(0));
	PG_RETURN_DATUM(result);
}

/*
 * The last activity of conversation "before" of user_id (of any user when
 * user_id is (Datum) 0): where the next page of a keyset-paged list starts
 * (list_conversations, conversations_by_tag, list_all_conversations).
 * Raises P0002 when it is not that user's conversation.  Requires SPI.
 */
Datum
ChatstorePagePosition(Datum before, Datum user_id)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[2] = {UUIDOID, TEXTOID};
	Datum		args[2] = {before, user_id};
	char		nulls[2] = {' ', user_id == (Datum) 0 ? 'n' : ' '};
	bool		isnull;
	int			rc;

	rc = SPI_execute_plan(ChatstorePlan(&plan,
										"SELECT last_activity_at FROM chatstore.conversation"
										" WHERE id OPERATOR(pg_catalog.=) $1"
										"   AND ($2 IS NULL OR user_id OPERATOR(pg_catalog.=) $2)",
										2, argtypes),
						  args, nulls, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "chatstore: conversation lookup failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("conversation %s given as before does not exist",
						ChatstoreUuidText(DatumGetUUIDP(before))),
				 user_id == (Datum) 0 ? 0 :
				 errdetail("before must be a conversation of user %s.",
						   text_to_cstring(DatumGetTextPP(user_id))),
				 errhint("Pass the id of the last conversation of the previous page, or NULL for the first page.")));
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
}

/*
 * chatstore.list_conversations(user_id text, status text, max_results int,
 *		before uuid, state text, metadata jsonb)
 *		RETURNS SETOF chatstore.conversation
 *
 * Keyset paging: rows come most recent activity first, ordered by
 * (last_activity_at, id) descending; "before" names the last row of the
 * previous page and the next page starts below its position (the position
 * only: "before" need not match the filters any more).  Status NULL lists
 * both statuses, state NULL every state; metadata keeps the conversations
 * whose metadata contain it (@>).
 *
 * The index (user_id, status, state, activity_bucket) holds one run in
 * activity order per (status, state): the query takes at most max_results
 * rows from each run the filters allow (at most six runs, each an index
 * scan stopping once it has a page) and merges them.  The metadata filter
 * is checked along the runs, so its cost follows the user's conversations
 * in the statuses and states listed, never other users'.
 *
 * On a distributed install (chatstore.distribute()) the same filters are one
 * plain query: Citus cannot push a LIMIT inside a lateral subquery over
 * VALUES down to the shards, but it runs this one on every shard, each
 * returning its first page from the same index, and merges the pages.
 */
Datum
chatstore_list_conversations(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	static SPIPlanPtr list = NULL;
	static SPIPlanPtr list_distributed = NULL;
	static const Oid argtypes[7] = {TEXTOID, TEXTOID, TIMESTAMPTZOID, UUIDOID, INT4OID, TEXTOID, JSONBOID};
	static pg_uuid_t max_uuid;
	Datum		args[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	int32		max_results;
	Actor		actor;
	int			rc;

	ChatstoreRequireArg(fcinfo, 0, "user_id");
	ChatstoreRequireArg(fcinfo, 2, "max_results");
	max_results = PG_GETARG_INT32(2);
	ChatstoreCheckWindow("max_results", max_results);
	if (!PG_ARGISNULL(1))
		CheckStatus(PG_GETARG_TEXT_PP(1));
	if (!PG_ARGISNULL(4))
		ChatstoreCheckState(PG_GETARG_TEXT_PP(4), "state");
	if (!PG_ARGISNULL(5))
		ChatstoreCheckMetadataFilter(PG_GETARG_JSONB_P(5), "metadata");

	ChatstoreInitSRF(fcinfo);
	ChatstoreGetActor(&actor);
	if (!ChatstoreActorIs(&actor, PG_GETARG_TEXT_PP(0)))
		return (Datum) 0;		/* another user's conversations: none to see */
	ChatstoreConnect(fcinfo, &call);

	/* Where the page starts: above everything, or just below "before". */
	memset(max_uuid.data, 0xFF, UUID_LEN);
	args[0] = PG_GETARG_DATUM(0);
	args[1] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	nulls[1] = PG_ARGISNULL(1) ? 'n' : ' ';
	args[2] = TimestampTzGetDatum(DT_NOEND);
	args[3] = UUIDPGetDatum(&max_uuid);
	args[4] = Int32GetDatum(max_results);
	args[5] = PG_ARGISNULL(4) ? (Datum) 0 : PG_GETARG_DATUM(4);
	nulls[5] = PG_ARGISNULL(4) ? 'n' : ' ';
	args[6] = PG_ARGISNULL(5) ? (Datum) 0 : PG_GETARG_DATUM(5);
	nulls[6] = PG_ARGISNULL(5) ? 'n' : ' ';
	if (!PG_ARGISNULL(3))
	{
		args[3] = PG_GETARG_DATUM(3);
		args[2] = ChatstorePagePosition(PG_GETARG_DATUM(3), PG_GETARG_DATUM(0));
	}

	rc = SPI_execute_plan(ChatstoreDistributed() ?
						  ChatstorePlan(&list_distributed,
										"SELECT " CONVERSATION_COLUMNS " FROM chatstore.conversation c"
										" WHERE c.user_id OPERATOR(pg_catalog.=) $1"
										"   AND ($2 IS NULL OR c.status OPERATOR(pg_catalog.=) $2)"
										"   AND ($6 IS NULL OR c.state OPERATOR(pg_catalog.=) $6)"
										"   AND c.activity_bucket OPERATOR(pg_catalog.<=) $3"
										"   AND (c.last_activity_at, c.id) OPERATOR(pg_catalog.<) ($3, $4)"
										"   AND ($7 IS NULL OR c.metadata OPERATOR(pg_catalog.@>) $7)"
										" ORDER BY c.last_activity_at DESC, c.id DESC LIMIT $5",
										7, argtypes) :
						  ChatstorePlan(&list,
										"SELECT " CONVERSATION_COLUMNS " FROM"
										" (VALUES ('active', 'active'), ('active', 'paused'), ('active', 'completed'),"
										"         ('archived', 'active'), ('archived', 'paused'), ('archived', 'completed'))"
										"   AS k (k_status, k_state)"
										" CROSS JOIN LATERAL"
										" (SELECT " CONVERSATION_COLUMNS " FROM chatstore.conversation c"
										"   WHERE c.user_id OPERATOR(pg_catalog.=) $1"
										"     AND c.status OPERATOR(pg_catalog.=) k.k_status"
										"     AND c.state OPERATOR(pg_catalog.=) k.k_state"
										"     AND c.activity_bucket OPERATOR(pg_catalog.<=) $3"
										"     AND (c.last_activity_at, c.id) OPERATOR(pg_catalog.<) ($3, $4)"
										"     AND ($7 IS NULL OR c.metadata OPERATOR(pg_catalog.@>) $7)"
										"   ORDER BY c.activity_bucket DESC, c.last_activity_at DESC, c.id DESC LIMIT $5) c"
										" WHERE ($2 IS NULL OR k.k_status OPERATOR(pg_catalog.=) $2)"
										"   AND ($6 IS NULL OR k.k_state OPERATOR(pg_catalog.=) $6)"
										" ORDER BY last_activity_at DESC, id DESC LIMIT $5",
										7, argtypes),
						  args, nulls, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "chatstore: conversation list failed: %s", SPI_result_code_string(rc));
	for (uint64 i = 0; i < SPI_processed; i++)
		ChatstorePutRow(fcinfo, SPI_tuptable->vals[i], SPI_tuptable->tupdesc);

	ChatstoreFinish(&call);
	return (Datum) 0;
}

/*
 * chatstore.list_all_conversations(status text, max_results int,
 *		before uuid, state text, metadata jsonb)
 *		RETURNS SETOF chatstore.conversation
 *
 * An admin's dashboard: every user's conversations, most recent activity
 * first, one page at a time (pass the last id of a page as before), with
 * list_conversations' filters.  Acting for one user (chatstore.user_id
 * set), that user's only.  Granted to admin roles only.  Each status is
 * read in activity order from its partial index on activity_bucket
 * (conversation_idle_idx, conversation_archived_activity_idx), sorted
 * within each 10-minute bucket, and the two runs merged.
 */
Datum
chatstore_list_all_conversations(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	static SPIPlanPtr list = NULL;
	static const Oid argtypes[7] = {TEXTOID, TEXTOID, TIMESTAMPTZOID, UUIDOID, INT4OID, TEXTOID, JSONBOID};
	static pg_uuid_t max_uuid;
	Datum		args[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	int32		max_results;
	Actor		actor;
	int			rc;

	ChatstoreRequireArg(fcinfo, 1, "max_results");
	max_results = PG_GETARG_INT32(1);
	ChatstoreCheckWindow("max_results", max_results);
	if (!PG_ARGISNULL(0))
		CheckStatus(PG_GETARG_TEXT_PP(0));
	if (!PG_ARGISNULL(3))
		ChatstoreCheckState(PG_GETARG_TEXT_PP(3), "state");
	if (!PG_ARGISNULL(4))
		ChatstoreCheckMetadataFilter(PG_GETARG_JSONB_P(4), "metadata");

	ChatstoreInitSRF(fcinfo);
	ChatstoreGetActor(&actor);
	ChatstoreConnect(fcinfo, &call);

	memset(max_uuid.data, 0xFF, UUID_LEN);
	ChatstoreActorArg(&actor, &args[0], &nulls[0]);
	args[1] = PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0);
	nulls[1] = PG_ARGISNULL(0) ? 'n' : ' ';
	args[2] = TimestampTzGetDatum(DT_NOEND);
	args[3] = UUIDPGetDatum(&max_uuid);
	args[4] = Int32GetDatum(max_results);
	args[5] = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);
	nulls[5] = PG_ARGISNULL(3) ? 'n' : ' ';
	args[6] = PG_ARGISNULL(4) ? (Datum) 0 : PG_GETARG_DATUM(4);
	nulls[6] = PG_ARGISNULL(4) ? 'n' : ' ';
	if (!PG_ARGISNULL(2))
	{
		args[3] = PG_GETARG_DATUM(2);
		args[2] = ChatstorePagePosition(PG_GETARG_DATUM(2), args[0]);
	}

#define ALL_BRANCH(status) \
	"(SELECT " CONVERSATION_COLUMNS " FROM chatstore.conversation c" \
	"  WHERE c.status OPERATOR(pg_catalog.=) '" status "'" \
	"    AND ($2 IS NULL OR $2 OPERATOR(pg_catalog.=) '" status "')" \
	"    AND ($1 IS NULL OR c.user_id OPERATOR(pg_catalog.=) $1)" \
	"    AND ($6 IS NULL OR c.state OPERATOR(pg_catalog.=) $6)" \
	"    AND c.activity_bucket OPERATOR(pg_catalog.<=) $3" \
	"    AND (c.last_activity_at, c.id) OPERATOR(pg_catalog.<) ($3, $4)" \
	"    AND ($7 IS NULL OR c.metadata OPERATOR(pg_catalog.@>) $7)" \
	"  ORDER BY c.activity_bucket DESC, c.last_activity_at DESC, c.id DESC LIMIT $5)"
	rc = SPI_execute_plan(ChatstorePlan(&list,
										"SELECT " CONVERSATION_COLUMNS " FROM ("
										ALL_BRANCH("active") " UNION ALL " ALL_BRANCH("archived")
										") c ORDER BY last_activity_at DESC, id DESC LIMIT $5",
										7, argtypes),
						  args, nulls, true, 0);
#undef ALL_BRANCH
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "chatstore: conversation list failed: %s", SPI_result_code_string(rc));
	for (uint64 i = 0; i < SPI_processed; i++)
		ChatstorePutRow(fcinfo, SPI_tuptable->vals[i], SPI_tuptable->tupdesc);

	ChatstoreFinish(&call);
	return (Datum) 0;
}

/*
 * chatstore.update_conversation(conversation_id uuid, title text,
 *		metadata jsonb, model text) RETURNS chatstore.conversation
 *
 * NULL arguments leave their field alone.  Metadata is merged key by key
 * into the stored object; a key whose new value is JSON null is removed.
 * The merge happens inside the UPDATE, so concurrent updates of different
 * keys do not lose each other's changes.
 */
Datum
chatstore_update_conversation(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[5] = {UUIDOID, TEXTOID, JSONBOID, TEXTOID, TEXTOID};
	MemoryContext callerctx = CurrentMemoryContext;
	Datum		args[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	Datum		result;
	Jsonb	   *merged;
	bool		isnull;
	Actor		actor;
	int			rc;

	ChatstoreRequireArg(fcinfo, 0, "conversation_id");
	CheckTitleAndModel(fcinfo, 1, 3);
	if (!PG_ARGISNULL(2))
	{
		Jsonb	   *metadata = PG_GETARG_JSONB_P(2);

		if (!JB_ROOT_IS_OBJECT(metadata) || JB_ROOT_IS_SCALAR(metadata))
			ChatstoreCheckMetadata(metadata, "metadata");	/* raises 22023 */
	}
	for (int i = 0; i < 4; i++)
	{
		args[i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
		nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
	}
	ChatstoreGetActor(&actor);
	ChatstoreActorArg(&actor, &args[4], &nulls[4]);

	ChatstoreConnect(fcinfo, &call);
	rc = SPI_execute_plan(ChatstorePlan(&plan,
										"UPDATE chatstore.conversation SET"
										"  title = COALESCE($2, title),"
										"  model = COALESCE($4, model),"
										"  metadata = CASE WHEN $3 IS NULL THEN metadata ELSE"
										"    (metadata OPERATOR(pg_catalog.||) $3) OPERATOR(pg_catalog.-)"
										"    ARRAY(SELECT e.key FROM pg_catalog.jsonb_each($3) e"
										"          WHERE e.value OPERATOR(pg_catalog.=) 'null'::pg_catalog.jsonb)"
										"  END"
										" WHERE id OPERATOR(pg_catalog.=) $1"
										"   AND ($5 IS NULL OR user_id OPERATOR(pg_catalog.=) $5)"
										" RETURNING " CONVERSATION_COLUMNS,
										5, argtypes),
						  args, nulls, false, 0);
	if (rc != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "chatstore: conversation update failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		ChatstoreConversationNotFound(PG_GETARG_UUID_P(0));

	/*
	 * The merged object must still respect the size limit.  Without a
	 * metadata argument the stored object is left alone, even if a lowered
	 * limit would now refuse it.
	 */
	if (!PG_ARGISNULL(2))
	{
		merged = DatumGetJsonbP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
											  6, &isnull));
		ChatstoreCheckMetadata(merged, "metadata");
	}

	MemoryContextSwitchTo(callerctx);
	result = ChatstoreRowFromSPI(fcinfo, SPI_tuptable->vals[0], SPI_tuptable->tupdesc);
	ChatstoreFinish(&call);
	PG_RETURN_DATUM(result);
}

/*
 * chatstore.delete_conversation(conversation_id uuid) RETURNS boolean
 *
 * Locks the conversation (so a concurrent append or tag waits and then
 * finds it gone), deletes its live and archived messages and its tags, then
 * the conversation.
 * Raises P0002 when it does not exist, like every function.
 */
Datum
chatstore_delete_conversation(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	static SPIPlanPtr del_messages = NULL;
	static SPIPlanPtr del_archived = NULL;
	static SPIPlanPtr del_tags = NULL;
	static SPIPlanPtr del_conversation = NULL;
	static const Oid argtypes[2] = {UUIDOID, TIMESTAMPTZOID};
	pg_uuid_t  *id;
	Datum		args[2];
	Actor		actor;
	TimestampTz archived_at;
	char		status;

	ChatstoreRequireArg(fcinfo, 0, "conversation_id");
	id = PG_GETARG_UUID_P(0);
	args[0] = UUIDPGetDatum(id);
	ChatstoreGetActor(&actor);

	ChatstoreConnect(fcinfo, &call);
	status = ChatstoreConversationStatus(id, true, &actor, &archived_at);
	if (status == CONV_MISSING)
		ChatstoreConversationNotFound(id);
	args[1] = TimestampTzGetDatum(archived_at);

	if ((status == CONV_ACTIVE &&
		 SPI_execute_plan(ChatstorePlan(&del_messages,
										"DELETE FROM chatstore.message"
										" WHERE conversation_id OPERATOR(pg_catalog.=) $1",
										1, argtypes),
						  args, NULL, false, 0) != SPI_OK_DELETE) ||
		(status == CONV_ARCHIVED &&
		 SPI_execute_plan(ChatstorePlan(&del_archived,
										"DELETE FROM chatstore.archived_message"
										" WHERE conversation_id OPERATOR(pg_catalog.=) $1"
										"   AND archived_at OPERATOR(pg_catalog.=) $2",
										2, argtypes),
						  args, NULL, false, 0) != SPI_OK_DELETE) ||
		SPI_execute_plan(ChatstorePlan(&del_tags,
									   "DELETE FROM chatstore.conversation_tag"
									   " WHERE conversation_id OPERATOR(pg_catalog.=) $1",
									   1, argtypes),
						 args, NULL, false, 0) != SPI_OK_DELETE ||
		SPI_execute_plan(ChatstorePlan(&del_conversation,
									   "DELETE FROM chatstore.conversation"
									   " WHERE id OPERATOR(pg_catalog.=) $1",
									   1, argtypes),
						 args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "chatstore: conversation delete failed");

	ChatstoreFinish(&call);
	PG_RETURN_BOOL(true);
}
