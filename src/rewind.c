/*
 * rewind.c
 *	  chatstore.rewind: take a conversation back to an earlier message,
 *	  removing the messages after it.
 *
 * What chat applications do when a user edits a message and asks again, or
 * regenerates an answer, and what seed 002's update_chat (replace a chat's
 * content) becomes: rewind to 0, then append_many the new messages, in one
 * transaction.  The seq stays gapless: the next append gets to_seq + 1.
 * The conversation row is locked as an append locks it (FOR NO KEY UPDATE),
 * so rewinds and appends serialize, and the DELETE that follows the lock
 * sees every append committed before it (each SPI statement of a READ
 * COMMITTED transaction takes a new snapshot).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "chatstore.h"

PG_FUNCTION_INFO_V1(chatstore_rewind);

/*
 * chatstore.rewind(conversation_id uuid, to_seq int) RETURNS int
 *
 * Removes the messages with seq > to_seq of an active (not archived, not
 * completed) conversation, takes the counters back (last_seq = to_seq,
 * message_count and token_count without the removed messages) and counts
 * as activity (last_activity_at moves to now).  Returns how many messages
 * it removed.  to_seq = last_seq removes nothing; to_seq past the end or
 * negative is 22023.
 */
Datum
chatstore_rewind(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	static SPIPlanPtr lock = NULL;
	static SPIPlanPtr del = NULL;
	static const Oid lockargtypes[2] = {UUIDOID, TEXTOID};
	static const Oid argtypes[3] = {UUIDOID, INT4OID, TIMESTAMPTZOID};
	pg_uuid_t  *id;
	int32		to_seq;
	Datum		args[3];
	char		nulls[2] = {' ', ' '};
	Actor		actor;
	bool		isnull;
	int32		last_seq;
	int32		removed;
	char	   *state;

	ChatstoreRequireArg(fcinfo, 0, "conversation_id");
	ChatstoreRequireArg(fcinfo, 1, "to_seq");
	id = PG_GETARG_UUID_P(0);
	to_seq = PG_GETARG_INT32(1);
	if (to_seq < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("to_seq must not be negative"),
				 errdetail("Pass the seq of the last message to keep, or 0 to remove every message.")));
	ChatstoreGetActor(&actor);

	ChatstoreConnect(fcinfo, &call);
	args[0] = UUIDPGetDatum(id);
	ChatstoreActorArg(&actor, &args[1], &nulls[1]);
	if (SPI_execute_plan(ChatstorePlan(&lock,
									   "SELECT archived_at IS NOT NULL, state, last_seq FROM chatstore.conversation"
									   " WHERE id OPERATOR(pg_catalog.=) $1"
									   "   AND ($2 IS NULL OR user_id OPERATOR(pg_catalog.=) $2)"
									   " FOR NO KEY UPDATE",
									   2, lockargtypes),
						 args, nulls, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "chatstore: conversation lookup failed");
	if (SPI_processed == 0)
		ChatstoreConversationNotFound(id);
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("conversation %s is archived", ChatstoreUuidText(id)),
				 errdetail("Archived conversations can be read but not changed."),
				 errhint("Call chatstore.restore('%s') to make it active again.", ChatstoreUuidText(id))));
	state = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (strcmp(state, "completed") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("conversation %s is completed", ChatstoreUuidText(id)),
				 errdetail("Completed conversations can be read but not changed."),
				 errhint("Call chatstore.set_state('%s', 'active') to continue it.", ChatstoreUuidText(id))));
	last_seq = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	if (to_seq > last_seq)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("to_seq %d is past the end of conversation %s", to_seq, ChatstoreUuidText(id)),
				 errdetail("Its last message has seq %d.", last_seq)));
	if (to_seq == last_seq)
	{
		ChatstoreFinish(&call);
		PG_RETURN_INT32(0);
	}

	args[1] = Int32GetDatum(to_seq);
	args[2] = TimestampTzGetDatum(GetCurrentTimestamp());
	if (SPI_execute_plan(ChatstorePlan(&del,
									   "WITH d AS (DELETE FROM chatstore.message"
									   "           WHERE conversation_id OPERATOR(pg_catalog.=) $1"
									   "             AND seq OPERATOR(pg_catalog.>) $2"
									   "           RETURNING tokens),"
									   " t AS (SELECT pg_catalog.count(*) AS n, COALESCE(pg_catalog.sum(tokens), 0) AS tokens FROM d)"
									   " UPDATE chatstore.conversation c"
									   " SET last_seq = $2,"
									   "     message_count = c.message_count OPERATOR(pg_catalog.-) t.n,"
									   "     token_count = c.token_count OPERATOR(pg_catalog.-) t.tokens,"
									   "     last_activity_at = GREATEST(c.last_activity_at, $3)"
									   " FROM t WHERE c.id OPERATOR(pg_catalog.=) $1"
									   " RETURNING t.n::pg_catalog.int4",
									   3, argtypes),
						 args, NULL, false, 0) != SPI_OK_UPDATE_RETURNING || SPI_processed != 1)
		elog(ERROR, "chatstore: rewind failed");
	removed = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	ChatstoreFinish(&call);
	PG_RETURN_INT32(removed);
}
