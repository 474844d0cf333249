/*
 * archive.c
 *	  Archival: chatstore.archive, archive_conversation, restore.
 *
 * A conversation moves whole: its messages go from chatstore.message to
 * chatstore.archived_message in one statement (DELETE ... RETURNING feeding
 * an INSERT, as pgmq moves messages) and its status changes in the same
 * transaction.  The conversation row is locked first, so an append waits
 * for the move and then gets the archived-conversation error: no message
 * is lost.  archive() skips conversations locked by a concurrent append or
 * archiver instead of waiting for them.
 */
#include "postgres.h"


#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "chatstore.h"

PG_FUNCTION_INFO_V1(chatstore_archive);
PG_FUNCTION_INFO_V1(chatstore_archive_conversation);
PG_FUNCTION_INFO_V1(chatstore_restore);

/* Conversations chosen and moved per statement by archive(). */
#define ARCHIVE_BATCH	1000

/*
 * Move the messages of the given (locked, active) conversations into the
 * archive and mark them archived.
 */
static void
MoveToArchive(Datum ids, TimestampTz now)
{
	static SPIPlanPtr move = NULL;
	static SPIPlanPtr mark = NULL;
	static const Oid argtypes[2] = {UUIDARRAYOID, TIMESTAMPTZOID};
	Datum		args[2] = {ids, TimestampTzGetDatum(now)};

	if (SPI_execute_plan(ChatstorePlan(&move,
									   "WITH moved AS ("
									   "  DELETE FROM chatstore.message"
									   "  WHERE conversation_id OPERATOR(pg_catalog.=) ANY ($1)"
									   "  RETURNING " MESSAGE_COLUMNS ")"
									   " INSERT INTO chatstore.archived_message (" MESSAGE_COLUMNS ")"
									   " SELECT " MESSAGE_COLUMNS " FROM moved",
									   1, argtypes),
						 args, NULL, false, 0) != SPI_OK_INSERT ||
		SPI_execute_plan(ChatstorePlan(&mark,
									   "UPDATE chatstore.conversation"
									   " SET status = 'archived', archived_at = $2"
									   " WHERE id OPERATOR(pg_catalog.=) ANY ($1)",
									   2, argtypes),
						 args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "chatstore: archive move failed");
}

/* A one-element uuid[] datum. */
static Datum
OneIdArray(pg_uuid_t *id)
{
	Datum		elem = UUIDPGetDatum(id);

	return PointerGetDatum(construct_array(&elem, 1, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
}

/*
 * The idle time archive() uses: its argument, else chatstore.archive_after.
 * Raises 22023 for a negative interval.
 */
static Interval *
ArchiveAge(FunctionCallInfo fcinfo)
{
	Interval   *age;

	if (!PG_ARGISNULL(0))
		age = PG_GETARG_INTERVAL_P(0);
	else
		age = DatumGetIntervalP(DirectFunctionCall3(interval_in,
													CStringGetDatum(chatstore_archive_after),
													ObjectIdGetDatum(InvalidOid),
													Int32GetDatum(-1)));
	if (age->month < 0 || age->day < 0 || age->time < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("older_than must not be negative"),
				 errdetail("Pass an idle time such as '90 days', or NULL for chatstore.archive_after.")));
	return age;
}

/*
 * chatstore.archive(older_than interval, max_conversations int) RETURNS bigint
 *
 * Archives, in batches, the active conversations whose last activity is
 * older than now() - older_than, the longest idle first, and returns how
 * many.  Rows are chosen FOR UPDATE SKIP LOCKED, and the choice re-checks
 * status and activity on the newest row version, so two archivers never
 * move a conversation twice and neither waits for the other.
 */
Datum
chatstore_archive(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr choose = NULL;
	static const Oid argtypes[3] = {TIMESTAMPTZOID, INT4OID, TEXTOID};
	Interval   *age = ArchiveAge(fcinfo);
	int64		limit = PG_INT64_MAX;
	int64		archived = 0;
	TimestampTz now = GetCurrentTimestamp();
	Datum		cutoff;
	Actor		actor;
	Datum		user_arg;
	char		user_null;

	if (!PG_ARGISNULL(1))
	{
		limit = PG_GETARG_INT32(1);
		if (limit < 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("max_conversations must be at least 1"),
					 errdetail("max_conversations was %lld; pass NULL for no limit.", (long long) limit)));
	}
	cutoff = DirectFunctionCall2(timestamptz_mi_interval,
								 TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
								 IntervalPGetDatum(age));

	ChatstoreGetActor(&actor);
	if (actor.kind == ACTOR_NOBODY)
		PG_RETURN_INT64(0);
	ChatstoreActorArg(&actor, &user_arg, &user_null);

	SPI_connect();
	while (archived < limit)
	{
		int32		batch = (int32) Min(limit - archived, ARCHIVE_BATCH);
		Datum		args[3] = {cutoff, Int32GetDatum(batch), user_arg};
		char		nulls[3] = {' ', ' ', user_null};
		Datum	   *ids;
		int			n;

		if (SPI_execute_plan(ChatstorePlan(&choose,
										   "SELECT id FROM chatstore.conversation"
										   " WHERE status OPERATOR(pg_catalog.=) 'active'"
										   "   AND last_activity_at OPERATOR(pg_catalog.<) $1"
										   "   AND ($3 IS NULL OR user_id OPERATOR(pg_catalog.=) $3)"
										   " ORDER BY last_activity_at LIMIT $2"
										   " FOR UPDATE SKIP LOCKED",
										   3, argtypes),
							 args, nulls, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "chatstore: archive selection failed");
		n = (int) SPI_processed;
		if (n == 0)
			break;
		ids = palloc(sizeof(Datum) * n);
		for (int i = 0; i < n; i++)
		{
			bool		isnull;

			ids[i] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
		}
		MoveToArchive(PointerGetDatum(construct_array(ids, n, UUIDOID, UUID_LEN, false,
													  TYPALIGN_CHAR)),
					  now);
		archived += n;
		if (n < batch)
			break;
	}
	SPI_finish();
	PG_RETURN_INT64(archived);
}

/*
 * chatstore.archive_conversation(conversation_id uuid) RETURNS boolean
 *
 * Archives one conversation now, whatever its idle time, waiting for a
 * concurrent append to finish.  False when it was archived already.
 */
Datum
chatstore_archive_conversation(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *id;
	bool		moved = false;
	Actor		actor;

	ChatstoreRequireArg(fcinfo, 0, "conversation_id");
	id = PG_GETARG_UUID_P(0);

	ChatstoreGetActor(&actor);
	SPI_connect();
	switch (ChatstoreConversationStatus(id, true, &actor))
	{
		case CONV_MISSING:
			ChatstoreConversationNotFound(id);
			break;
		case CONV_ACTIVE:
			MoveToArchive(OneIdArray(id), GetCurrentTimestamp());
			moved = true;
			break;
	}
	SPI_finish();
	PG_RETURN_BOOL(moved);
}

/*
 * chatstore.restore(conversation_id uuid) RETURNS boolean
 *
 * Moves an archived conversation's messages back and makes it active.  Its
 * last activity becomes now, so the next archive() run does not archive it
 * again at once.  False when it was active already.
 */
Datum
chatstore_restore(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr move = NULL;
	static SPIPlanPtr mark = NULL;
	static const Oid argtypes[2] = {UUIDOID, TIMESTAMPTZOID};
	pg_uuid_t  *id;
	bool		moved = false;
	Actor		actor;

	ChatstoreRequireArg(fcinfo, 0, "conversation_id");
	id = PG_GETARG_UUID_P(0);

	ChatstoreGetActor(&actor);
	SPI_connect();
	switch (ChatstoreConversationStatus(id, true, &actor))
	{
		case CONV_MISSING:
			ChatstoreConversationNotFound(id);
			break;
		case CONV_ARCHIVED:
			{
				Datum		args[2] = {UUIDPGetDatum(id), TimestampTzGetDatum(GetCurrentTimestamp())};

				if (SPI_execute_plan(ChatstorePlan(&move,
												   "WITH moved AS ("
												   "  DELETE FROM chatstore.archived_message"
												   "  WHERE conversation_id OPERATOR(pg_catalog.=) $1"
												   "  RETURNING " MESSAGE_COLUMNS ")"
												   " INSERT INTO chatstore.message (" MESSAGE_COLUMNS ")"
												   " SELECT " MESSAGE_COLUMNS " FROM moved",
												   1, argtypes),
									 args, NULL, false, 0) != SPI_OK_INSERT ||
					SPI_execute_plan(ChatstorePlan(&mark,
												   "UPDATE chatstore.conversation"
												   " SET status = 'active', archived_at = NULL,"
												   "     last_activity_at = GREATEST(last_activity_at, $2)"
												   " WHERE id OPERATOR(pg_catalog.=) $1",
												   2, argtypes),
									 args, NULL, false, 0) != SPI_OK_UPDATE)
					elog(ERROR, "chatstore: restore move failed");
				moved = true;
			}
			break;
	}
	SPI_finish();
	PG_RETURN_BOOL(moved);
}
