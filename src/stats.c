/*
 * stats.c
 *	  chatstore.stats(): counts of conversations and messages, and response
 *	  times.
 *
 * Message counts come from the conversations' counters, which append,
 * archive and restore keep true, so they cost one pass over the
 * conversations instead of a count of every message.  The response times
 * (latency_ms) are read from the messages themselves.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "chatstore.h"

PG_FUNCTION_INFO_V1(chatstore_stats);

/* The conversations stats() counts: the actor's ($1, none when $2), of a state ($3), containing metadata ($4). */
#define STATS_CONVERSATIONS \
	" NOT $2 AND ($1 IS NULL OR c.user_id OPERATOR(pg_catalog.=) $1)" \
	" AND ($3 IS NULL OR c.state OPERATOR(pg_catalog.=) $3)" \
	" AND ($4 IS NULL OR c.metadata OPERATOR(pg_catalog.@>) $4)"

/* Number of stats()'s OUT columns. */
#define STATS_NCOLUMNS	12

/*
 * chatstore.stats(state text, metadata jsonb) RETURNS record (conversations,
 *		active_conversations, archived_conversations, messages,
 *		archived_messages, avg_messages_per_conversation, state_active,
 *		state_paused, state_completed, avg_latency_ms, min_latency_ms,
 *		max_latency_ms)
 *
 * messages counts the live messages, archived_messages those in the
 * archive; the average is over all conversations and both kinds, 0 when
 * there are no conversations.  state_* count the conversations in each
 * application state (src/lifecycle.c), live and archived.  The response
 * times are over every message, live and archived, that has a latency_ms
 * (NULL when none has).  Acting for one user, the figures are that user's;
 * state and metadata (containment) restrict every figure to the
 * conversations that match.
 */
Datum
chatstore_stats(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	static SPIPlanPtr counts = NULL;
	static SPIPlanPtr latency = NULL;
	static const Oid argtypes[4] = {TEXTOID, BOOLOID, TEXTOID, JSONBOID};
	MemoryContext callerctx = CurrentMemoryContext;
	Datum		result;
	Actor		actor;
	Datum		values[STATS_NCOLUMNS];
	bool		outnulls[STATS_NCOLUMNS];
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

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
	if (SPI_execute_plan(ChatstorePlan(&counts,
									   "SELECT pg_catalog.count(*),"
									   "  pg_catalog.count(*) FILTER (WHERE status OPERATOR(pg_catalog.=) 'active'),"
									   "  pg_catalog.count(*) FILTER (WHERE status OPERATOR(pg_catalog.=) 'archived'),"
									   "  COALESCE(pg_catalog.sum(message_count) FILTER (WHERE status OPERATOR(pg_catalog.=) 'active'), 0)::pg_catalog.int8,"
									   "  COALESCE(pg_catalog.sum(message_count) FILTER (WHERE status OPERATOR(pg_catalog.=) 'archived'), 0)::pg_catalog.int8,"
									   "  COALESCE(pg_catalog.round(pg_catalog.sum(message_count)::pg_catalog.numeric"
									   "    OPERATOR(pg_catalog./) GREATEST(pg_catalog.count(*), 1), 2), 0.00),"
									   "  pg_catalog.count(*) FILTER (WHERE state OPERATOR(pg_catalog.=) 'active'),"
									   "  pg_catalog.count(*) FILTER (WHERE state OPERATOR(pg_catalog.=) 'paused'),"
									   "  pg_catalog.count(*) FILTER (WHERE state OPERATOR(pg_catalog.=) 'completed')"
									   " FROM chatstore.conversation c WHERE" STATS_CONVERSATIONS,
									   4, argtypes),
						 args, nulls, true, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "chatstore: stats query failed");
	heap_deform_tuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, values, outnulls);

	/* response times: the messages, live and archived, of the same conversations */
	if (SPI_execute_plan(ChatstorePlan(&latency,
									   "SELECT pg_catalog.round(pg_catalog.avg(l), 2), pg_catalog.min(l), pg_catalog.max(l)"
									   " FROM (SELECT m.latency_ms AS l FROM chatstore.message m"
									   "       JOIN chatstore.conversation c ON c.id OPERATOR(pg_catalog.=) m.conversation_id"
									   "       WHERE m.latency_ms IS NOT NULL AND" STATS_CONVERSATIONS
									   "       UNION ALL"
									   "       SELECT a.latency_ms FROM chatstore.archived_message a"
									   "       JOIN chatstore.conversation c ON c.id OPERATOR(pg_catalog.=) a.conversation_id"
									   "       WHERE a.latency_ms IS NOT NULL AND" STATS_CONVERSATIONS ") t",
									   4, argtypes),
						 args, nulls, true, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "chatstore: stats latency query failed");
	for (int i = 0; i < 3; i++)
		values[9 + i] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1, &outnulls[9 + i]);

	MemoryContextSwitchTo(callerctx);
	result = ChatstoreFormRow(fcinfo, values, outnulls, STATS_NCOLUMNS);
	ChatstoreFinish(&call);
	PG_RETURN_DATUM(result);
}
