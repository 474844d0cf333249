/*
 * lifecycle.c
 *	  The application's lifecycle of a conversation: chatstore.set_state, and
 *	  the checks of the state and metadata filters of list_conversations and
 *	  stats.
 *
 * A conversation's state ('active', 'paused' or 'completed') belongs to the
 * application; its status ('active' or 'archived') is where chatstore keeps
 * its messages.  The two are independent: archive and restore keep the
 * state, and set_state works on archived conversations too.  Appending to a
 * paused conversation resumes it (the state becomes 'active' in the same
 * UPDATE that takes the seq); appending to a completed one is refused with
 * 55000 until the application sets it active again (src/append.c).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "chatstore.h"

PG_FUNCTION_INFO_V1(chatstore_set_state);

/*
 * Raise 22023 unless state is one of the states an application may set;
 * 'archived' gets a hint to archive_conversation, since it is a status.
 */
void
ChatstoreCheckState(text *state, const char *argname)
{
	const char *s = VARDATA_ANY(state);
	int			len = VARSIZE_ANY_EXHDR(state);

	if ((len == 6 && memcmp(s, "active", 6) == 0) ||
		(len == 6 && memcmp(s, "paused", 6) == 0) ||
		(len == 9 && memcmp(s, "completed", 9) == 0))
		return;
	if (len == 8 && memcmp(s, "archived", 8) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid %s \"archived\"", argname),
				 errdetail("The state must be one of active, paused, completed; archived is a status, where chatstore keeps the messages."),
				 errhint("Call chatstore.archive_conversation() to archive a conversation, or filter by status.")));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid %s \"%s\"", argname, ChatstoreClip(s, len)),
			 errdetail("The state must be one of active, paused, completed.")));
}

/*
 * Raise 22023 unless a metadata filter is a JSON object: conversations'
 * metadata are objects, so any other value would match nothing.
 */
void
ChatstoreCheckMetadataFilter(Jsonb *metadata, const char *argname)
{
	if (!JB_ROOT_IS_OBJECT(metadata) || JB_ROOT_IS_SCALAR(metadata))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a JSON object", argname),
				 errdetail("The filter keeps the conversations whose metadata contain it (@>), such as '{\"phase\": \"customer_discovery\"}'.")));
}

/*
 * Raise 55000 for an append to a completed conversation.
 */
void
ChatstoreConversationCompleted(pg_uuid_t *id)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("conversation %s is completed", ChatstoreUuidText(id)),
			 errdetail("Completed conversations can be read but not appended to."),
			 errhint("Call chatstore.set_state('%s', 'active') to continue it.",
					 ChatstoreUuidText(id))));
}

/*
 * chatstore.set_state(conversation_id uuid, state text)
 *		RETURNS chatstore.conversation
 *
 * Sets the state, live or archived, and returns the conversation.  A state
 * change is not activity: last_activity_at (the time of the last message,
 * which orders lists and decides archiving) stays as it is.  The UPDATE
 * locks the row, so it serializes with appends: an append that waited for
 * a set_state(..., 'completed') finds the conversation completed.
 */
Datum
chatstore_set_state(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[3] = {UUIDOID, TEXTOID, TEXTOID};
	MemoryContext callerctx = CurrentMemoryContext;
	Datum		args[3];
	char		nulls[3] = {' ', ' ', ' '};
	Datum		result;
	Actor		actor;
	int			rc;

	ChatstoreRequireArg(fcinfo, 0, "conversation_id");
	ChatstoreRequireArg(fcinfo, 1, "state");
	ChatstoreCheckState(PG_GETARG_TEXT_PP(1), "state");
	args[0] = PG_GETARG_DATUM(0);
	args[1] = PG_GETARG_DATUM(1);
	ChatstoreGetActor(&actor);
	ChatstoreActorArg(&actor, &args[2], &nulls[2]);

	ChatstoreConnect(fcinfo, &call);
	rc = SPI_execute_plan(ChatstorePlan(&plan,
										"UPDATE chatstore.conversation SET state = $2"
										" WHERE id OPERATOR(pg_catalog.=) $1"
										"   AND ($3 IS NULL OR user_id OPERATOR(pg_catalog.=) $3)"
										" RETURNING " CONVERSATION_COLUMNS,
										3, argtypes),
						  args, nulls, false, 0);
	if (rc != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "chatstore: state update failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		ChatstoreConversationNotFound(PG_GETARG_UUID_P(0));

	MemoryContextSwitchTo(callerctx);
	result = ChatstoreRowFromSPI(fcinfo, SPI_tuptable->vals[0], SPI_tuptable->tupdesc);
	ChatstoreFinish(&call);
	PG_RETURN_DATUM(result);
}
