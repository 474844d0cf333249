/*
 * stats.c
 *	  chatstore.stats(): counts of conversations and messages.
 *
 * Message counts come from the conversations' counters, which append,
 * archive and restore keep true, so the answer costs one pass over the
 * conversations instead of a count of every message.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "funcapi.h"

#include "chatstore.h"

PG_FUNCTION_INFO_V1(chatstore_stats);

/*
 * chatstore.stats(state text, metadata jsonb) RETURNS record (conversations,
 *		active_conversations, archived_conversations, messages,
 *		archived_messages, avg_messages_per_conversation, state_active,
 *		state_paused, state_completed)
 *
 * messages counts the live messages, archived_messages those in the
 * archive; the average is over all conversations and both kinds, 0 when
 * there are no conversations.  state_* count the conversations in each
 * application state (src/lifecycle.c), live and archived.  Acting for one
 * user, the figures are that user's; state and metadata (containment)
 * restrict every figure to the conversations that match.
 */
Datum
chatstore_stats(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[4] = {TEXTOID, BOOLOID, TEXTOID, JSONBOID};
	MemoryContext callerctx = CurrentMemoryContext;
	Datum		result;
	Actor		actor;
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	/* the filters (lifecycle) */
	if (!PG_ARGISNULL(0))
		ChatstoreCheckState(PG_GETARG_TEXT_PP(0), "state");
	if (!PG_ARGISNULL(1))
		ChatstoreCheckMetadataFilter(PG_GETARG_JSONB_P(1), "metadata");
	args[2] = PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0);
	nulls[2] = PG_ARGISNULL(0) ? 'n' : ' ';
	args[3] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	nulls[3] = PG_ARGISNULL(1) ? 'n' : ' ';

	ChatstoreGetActor(&actor);
	ChatstoreActorArg(&actor, &args[0], &nulls[0]);
	args[1] = BoolGetDatum(actor.kind == ACTOR_NOBODY);

	ChatstoreConnect(fcinfo, &call);
	if (SPI_execute_plan(ChatstorePlan(&plan,
									   "SELECT pg_catalog.count(*),"
									   "  pg_catalog.count(*) FILTER (WHERE status OPERATOR(pg_catalog.=) 'active'),"
									   "  pg_catalog.count(*) FILTER (WHERE status OPERATOR(pg_catalog.=) 'archived'),"
									   "  COALESCE(pg_catalog.sum(message_count) FILTER (WHERE status OPERATOR(pg_catalog.=) 'active'), 0)::pg_catalog.int8,"
									   "  COALESCE(pg_catalog.sum(message_count) FILTER (WHERE status OPERATOR(pg_catalog.=) 'archived'), 0)::pg_catalog.int8,"
									   "  COALESCE(pg_catalog.round(pg_catalog.sum(message_count)::pg_catalog.numeric"
									   "    OPERATOR(pg_catalog./) GREATEST(pg_catalog.count(*), 1), 2), 0.00),"
									   /* conversations per state (lifecycle) */
									   "  pg_catalog.count(*) FILTER (WHERE state OPERATOR(pg_catalog.=) 'active'),"
									   "  pg_catalog.count(*) FILTER (WHERE state OPERATOR(pg_catalog.=) 'paused'),"
									   "  pg_catalog.count(*) FILTER (WHERE state OPERATOR(pg_catalog.=) 'completed')"
									   " FROM chatstore.conversation"
									   " WHERE NOT $2 AND ($1 IS NULL OR user_id OPERATOR(pg_catalog.=) $1)"
									   "   AND ($3 IS NULL OR state OPERATOR(pg_catalog.=) $3)"
									   "   AND ($4 IS NULL OR metadata OPERATOR(pg_catalog.@>) $4)",
									   4, argtypes),
						 args, nulls, true, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "chatstore: stats query failed");
	MemoryContextSwitchTo(callerctx);
	result = ChatstoreRowFromSPI(fcinfo, SPI_tuptable->vals[0], SPI_tuptable->tupdesc);
	ChatstoreFinish(&call);
	PG_RETURN_DATUM(result);
}
