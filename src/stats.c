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
#include "utils/builtins.h"

#include "chatstore.h"

PG_FUNCTION_INFO_V1(chatstore_stats);

/*
 * chatstore.stats() RETURNS record (conversations, active_conversations,
 *		archived_conversations, messages, archived_messages,
 *		avg_messages_per_conversation, avg_latency_ms, min_latency_ms,
 *		max_latency_ms)
 *
 * messages counts the live messages, archived_messages those in the
 * archive; the average is over all conversations and both kinds, 0 when
 * there are no conversations.  The response times are over every message,
 * live and archived, that has a latency_ms (NULL when none has): they read
 * the messages (see usage.c), where the counts read only the conversations.
 * Acting for one user, the figures are that user's.
 */
Datum
chatstore_stats(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[2] = {TEXTOID, BOOLOID};
	MemoryContext callerctx = CurrentMemoryContext;
	Datum		result;
	Actor		actor;
	Datum		values[9];
	bool		outnulls[9];
	Datum		args[2];
	char		nulls[2] = {' ', ' '};

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
									   "    OPERATOR(pg_catalog./) GREATEST(pg_catalog.count(*), 1), 2), 0.00)"
									   " FROM chatstore.conversation"
									   " WHERE NOT $2 AND ($1 IS NULL OR user_id OPERATOR(pg_catalog.=) $1)",
									   2, argtypes),
						 args, nulls, true, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "chatstore: stats query failed");
	heap_deform_tuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, values, outnulls);

	/* response times (1.1): the three latency columns of the usage totals */
	for (int i = 6; i < 9; i++)
		outnulls[i] = true;
	if (actor.kind != ACTOR_NOBODY)
	{
		TimestampTz since;
		TimestampTz until;

		TIMESTAMP_NOBEGIN(since);
		TIMESTAMP_NOEND(until);
		UsageTotals(since, until, false, false, false,
					actor.kind == ACTOR_USER ? actor.user_id : NULL, cstring_to_text("UTC"));
		if (SPI_processed == 1)
		{
			/* usage columns 8..10: avg_latency_ms, min_latency_ms, max_latency_ms */
			for (int i = 6; i < 9; i++)
				values[i] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 2,
										  &outnulls[i]);
		}
	}
	MemoryContextSwitchTo(callerctx);
	result = ChatstoreFormRow(fcinfo, values, outnulls, 9);
	ChatstoreFinish(&call);
	PG_RETURN_DATUM(result);
}
