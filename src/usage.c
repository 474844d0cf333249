/*
 * usage.c
 *	  Usage and storage reports: chatstore.usage, daily_volume, storage.
 *
 * append() stores each message's usage (input_tokens, output_tokens,
 * latency_ms); these functions total it over a period, live and archived
 * messages alike.  The live table is read through a BRIN index on
 * created_at (messages arrive in time order, and a BRIN index costs an
 * append next to nothing); the archive is read by month, skipping the
 * months archived before the period began (a message is archived after it
 * was created).  For one user, the scan starts from that user's
 * conversations active since the period began and reads their messages by
 * primary key, so it costs what that user has, not what everyone has.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "chatstore.h"

PG_FUNCTION_INFO_V1(chatstore_usage);
PG_FUNCTION_INFO_V1(chatstore_daily_volume);
PG_FUNCTION_INFO_V1(chatstore_storage);

/*
 * The totals every usage query computes over the rows m (created_at, model,
 * input_tokens, output_tokens, latency_ms[, user_id]); $3..$5 say whether to
 * group by day, model, user, and $7 is the time zone of a day.
 */
#define USAGE_SELECT \
	"SELECT CASE WHEN $3 THEN pg_catalog.timezone($7, m.created_at)::pg_catalog.date END AS day," \
	"  CASE WHEN $4 THEN m.model END AS model," \
	"  %s AS user_id," \
	"  pg_catalog.count(*) AS messages," \
	"  COALESCE(pg_catalog.sum(m.input_tokens), 0)::pg_catalog.int8 AS input_tokens," \
	"  COALESCE(pg_catalog.sum(m.output_tokens), 0)::pg_catalog.int8 AS output_tokens," \
	"  (COALESCE(pg_catalog.sum(m.input_tokens), 0) OPERATOR(pg_catalog.+)" \
	"   COALESCE(pg_catalog.sum(m.output_tokens), 0))::pg_catalog.int8 AS total_tokens," \
	"  pg_catalog.round(pg_catalog.avg(m.latency_ms), 2) AS avg_latency_ms," \
	"  pg_catalog.min(m.latency_ms) AS min_latency_ms," \
	"  pg_catalog.max(m.latency_ms) AS max_latency_ms"
#define USAGE_GROUP " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
#define USAGE_COLUMNS "created_at, model, input_tokens, output_tokens, latency_ms"

/* Every user's messages, not grouped by user: no conversation needed. */
static const char *const usage_all_query =
"%s FROM ("
"  SELECT " USAGE_COLUMNS " FROM chatstore.message"
"  WHERE created_at OPERATOR(pg_catalog.>=) $1 AND created_at OPERATOR(pg_catalog.<) $2"
"  UNION ALL"
"  SELECT " USAGE_COLUMNS " FROM chatstore.archived_message"
"  WHERE archived_at OPERATOR(pg_catalog.>=) $1"
"    AND created_at OPERATOR(pg_catalog.>=) $1 AND created_at OPERATOR(pg_catalog.<) $2) m"
USAGE_GROUP;

/* Every user's messages grouped by user: the owner comes from the conversation. */
static const char *const usage_by_user_query =
"%s FROM ("
"  SELECT conversation_id, " USAGE_COLUMNS " FROM chatstore.message"
"  WHERE created_at OPERATOR(pg_catalog.>=) $1 AND created_at OPERATOR(pg_catalog.<) $2"
"  UNION ALL"
"  SELECT conversation_id, " USAGE_COLUMNS " FROM chatstore.archived_message"
"  WHERE archived_at OPERATOR(pg_catalog.>=) $1"
"    AND created_at OPERATOR(pg_catalog.>=) $1 AND created_at OPERATOR(pg_catalog.<) $2) m"
"  JOIN chatstore.conversation c ON c.id OPERATOR(pg_catalog.=) m.conversation_id"
USAGE_GROUP;

/*
 * One user's messages: that user's conversations with activity since the
 * period began (a conversation's last activity is at least its newest
 * message's creation), then each one's messages by its key.
 */
static const char *const usage_of_user_query =
"%s FROM chatstore.conversation c CROSS JOIN LATERAL ("
"  SELECT " USAGE_COLUMNS " FROM chatstore.message"
"  WHERE c.status OPERATOR(pg_catalog.=) 'active'"
"    AND conversation_id OPERATOR(pg_catalog.=) c.id"
"    AND created_at OPERATOR(pg_catalog.>=) $1 AND created_at OPERATOR(pg_catalog.<) $2"
"  UNION ALL"
"  SELECT " USAGE_COLUMNS " FROM chatstore.archived_message"
"  WHERE c.status OPERATOR(pg_catalog.=) 'archived'"
"    AND conversation_id OPERATOR(pg_catalog.=) c.id AND archived_at OPERATOR(pg_catalog.=) c.archived_at"
"    AND created_at OPERATOR(pg_catalog.>=) $1 AND created_at OPERATOR(pg_catalog.<) $2) m"
"  WHERE c.user_id OPERATOR(pg_catalog.=) $6"
"    AND c.last_activity_at OPERATOR(pg_catalog.>=) $1 AND c.created_at OPERATOR(pg_catalog.<) $2"
USAGE_GROUP;

/*
 * Run the usage query over [since, until) (until may be +infinity) with SPI
 * connected: one row per group, in SPI_tuptable, with the columns of
 * chatstore.usage()'s result.  user is the only user to count (NULL: every
 * user); time_zone must be valid (UsageCheckTimeZone).
 */
void
UsageTotals(TimestampTz since, TimestampTz until, bool by_day, bool by_model,
			bool by_user, text *user, text *time_zone)
{
	static SPIPlanPtr plans[3] = {NULL, NULL, NULL};
	static const Oid argtypes[7] = {
		TIMESTAMPTZOID, TIMESTAMPTZOID, BOOLOID, BOOLOID, BOOLOID, TEXTOID, TEXTOID
	};
	Datum		args[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	int			variant;
	const char *query;

	args[0] = TimestampTzGetDatum(since);
	args[1] = TimestampTzGetDatum(until);
	args[2] = BoolGetDatum(by_day);
	args[3] = BoolGetDatum(by_model);
	args[4] = BoolGetDatum(by_user);
	args[5] = PointerGetDatum(user);
	nulls[5] = user == NULL ? 'n' : ' ';
	args[6] = PointerGetDatum(time_zone);

	if (user != NULL)
	{
		variant = 2;
		query = psprintf(usage_of_user_query,
						 psprintf(USAGE_SELECT, "CASE WHEN $5 THEN c.user_id END"));
	}
	else if (by_user)
	{
		variant = 1;
		query = psprintf(usage_by_user_query, psprintf(USAGE_SELECT, "c.user_id"));
	}
	else
	{
		variant = 0;
		query = psprintf(usage_all_query, psprintf(USAGE_SELECT, "NULL::pg_catalog.text"));
	}
	if (SPI_execute_plan(ChatstorePlan(&plans[variant], query, 7, argtypes),
						 args, nulls, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "chatstore: usage query failed");
}

/*
 * Raise 22023 for a time zone that PostgreSQL does not know, even when there
 * is no message to convert; 22004 for NULL.
 */
static text *
UsageTimeZone(FunctionCallInfo fcinfo, int argno)
{
	text	   *zone;

	ChatstoreRequireArg(fcinfo, argno, "time_zone");
	zone = PG_GETARG_TEXT_PP(argno);
	(void) DirectFunctionCall2(timestamptz_zone, PointerGetDatum(zone),
							   TimestampTzGetDatum(GetCurrentTimestamp()));
	return zone;
}

/*
 * The user whose messages to count: the declared user (none when for_user
 * names another: *none is set), or for an admin for_user, NULL for all.
 */
static text *
UsageUser(Actor *actor, text *for_user, bool *none)
{
	*none = false;
	if (actor->kind == ACTOR_NOBODY)
	{
		*none = true;
		return NULL;
	}
	if (actor->kind == ACTOR_USER)
	{
		if (for_user != NULL && !ChatstoreActorIs(actor, for_user))
			*none = true;
		return actor->user_id;
	}
	return for_user;
}

/*
 * chatstore.usage(since timestamptz, until timestamptz, group_by text[],
 *		for_user text, time_zone text) RETURNS TABLE (day, model, user_id,
 *		messages, input_tokens, output_tokens, total_tokens, avg_latency_ms,
 *		min_latency_ms, max_latency_ms)
 *
 * Totals of the messages created in [since, until) (until NULL: no end),
 * live and archived, one row per group of group_by ('day', 'model',
 * 'user'; an empty array gives one row); a column not grouped by is NULL.
 * Days are calendar days in time_zone.  Acting for a declared user, only
 * that user's messages count (none when for_user names another).
 */
Datum
chatstore_usage(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	TimestampTz since;
	TimestampTz until;
	bool		by[3] = {false, false, false};
	static const char *const dimensions[3] = {"day", "model", "user"};
	text	   *zone;
	text	   *user;
	bool		none;
	Actor		actor;
	Datum	   *elems;
	bool	   *elemnulls;
	int			nelems;

	ChatstoreRequireArg(fcinfo, 0, "since");
	ChatstoreRequireArg(fcinfo, 2, "group_by");
	since = PG_GETARG_TIMESTAMPTZ(0);
	if (PG_ARGISNULL(1))
		TIMESTAMP_NOEND(until);
	else
		until = PG_GETARG_TIMESTAMPTZ(1);
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(2), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &elemnulls, &nelems);
	for (int i = 0; i < nelems; i++)
	{
		char	   *d = elemnulls[i] ? "NULL" : TextDatumGetCString(elems[i]);
		bool		known = false;

		for (int j = 0; j < 3; j++)
			if (!elemnulls[i] && strcmp(d, dimensions[j]) == 0)
				by[j] = known = true;
		if (!known)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid group_by element \"%s\"", ChatstoreClip(d, strlen(d))),
					 errdetail("group_by lists any of day, model, user; '{}' gives one total.")));
	}
	zone = UsageTimeZone(fcinfo, 4);
	ChatstoreGetActor(&actor);
	user = UsageUser(&actor, PG_ARGISNULL(3) ? NULL : PG_GETARG_TEXT_PP(3), &none);

	ChatstoreInitSRF(fcinfo);
	if (none || since >= until)
		return (Datum) 0;
	ChatstoreConnect(fcinfo, &call);
	UsageTotals(since, until, by[0], by[1], by[2], user, zone);
	for (uint64 i = 0; i < SPI_processed; i++)
		ChatstorePutRow(fcinfo, SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
	ChatstoreFinish(&call);
	return (Datum) 0;
}

/*
 * chatstore.daily_volume(days int, time_zone text)
 *		RETURNS TABLE (day date, messages bigint)
 *
 * The messages created on each of the last days calendar days in
 * time_zone, today included, newest first; a day without messages is 0.
 * Per-user isolation as usage().
 */
Datum
chatstore_daily_volume(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[3] = {TEXTOID, TIMESTAMPTZOID, INT4OID};
	int32		days;
	text	   *zone;
	text	   *user;
	bool		none;
	Actor		actor;
	Datum		args[3];
	bool		isnull;
	DateADT		today;
	TimestampTz since;
	int64	   *counts;
	uint64		nrows;

	ChatstoreRequireArg(fcinfo, 0, "days");
	days = PG_GETARG_INT32(0);
	ChatstoreCheckWindow("days", days);
	zone = UsageTimeZone(fcinfo, 1);
	ChatstoreGetActor(&actor);
	user = UsageUser(&actor, NULL, &none);
	ChatstoreInitSRF(fcinfo);

	ChatstoreConnect(fcinfo, &call);
	/* today in the zone, and the first instant of the first day counted */
	args[0] = PointerGetDatum(zone);
	args[1] = TimestampTzGetDatum(GetCurrentTimestamp());
	args[2] = Int32GetDatum(days - 1);
	if (SPI_execute_plan(ChatstorePlan(&plan,
									   "SELECT d, pg_catalog.timezone($1, (d OPERATOR(pg_catalog.-) $3)::pg_catalog.timestamp)"
									   " FROM (SELECT pg_catalog.timezone($1, $2)::pg_catalog.date) t(d)",
									   3, argtypes),
						 args, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "chatstore: daily_volume bounds failed");
	today = DatumGetDateADT(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	since = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));

	counts = palloc0(sizeof(int64) * days);
	if (!none)
	{
		TimestampTz until;

		TIMESTAMP_NOEND(until);
		UsageTotals(since, until, true, false, false, user, zone);
		nrows = SPI_processed;
		for (uint64 i = 0; i < nrows; i++)
		{
			HeapTuple	row = SPI_tuptable->vals[i];
			DateADT		day = DatumGetDateADT(SPI_getbinval(row, SPI_tuptable->tupdesc, 1, &isnull));
			int64		back = (int64) today - day;

			/* a message stamped after today (a clock stepped back) is not counted */
			if (!isnull && back >= 0 && back < days)
				counts[back] = DatumGetInt64(SPI_getbinval(row, SPI_tuptable->tupdesc, 4, &isnull));
		}
	}
	for (int i = 0; i < days; i++)
	{
		Datum		values[2] = {DateADTGetDatum(today - i), Int64GetDatum(counts[i])};
		bool		nulls[2] = {false, false};

		ChatstorePutValues(fcinfo, values, nulls, 2);
	}
	ChatstoreFinish(&call);
	return (Datum) 0;
}

/*
 * storage()'s query, in three parts: r, the relations (the live tables and
 * each archive month); s, their figures; then the report.  s differs on a
 * distributed install (below).
 */
#define STORAGE_RELATIONS \
	"WITH r AS (" \
	"  SELECT c.oid, c.reltuples, c.reltoastrelid, NULL::pg_catalog.date AS month" \
	"  FROM pg_catalog.pg_class c" \
	"  WHERE c.oid OPERATOR(pg_catalog.=) ANY (ARRAY['chatstore.conversation'::pg_catalog.regclass," \
	"                                       'chatstore.conversation_tag'::pg_catalog.regclass," \
	"                                       'chatstore.message'::pg_catalog.regclass]::pg_catalog.oid[])" \
	"  UNION ALL" \
	"  SELECT c.oid, c.reltuples, c.reltoastrelid," \
	"    pg_catalog.to_date(pg_catalog.right(c.relname::pg_catalog.text, 6), 'YYYYMM')" \
	"  FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid" \
	"  WHERE i.inhparent OPERATOR(pg_catalog.=) 'chatstore.archived_message'::pg_catalog.regclass),"
#define STORAGE_FIGURES \
	" s AS (" \
	"  SELECT r.oid::pg_catalog.regclass AS relation, r.month," \
	"    CASE WHEN r.reltuples OPERATOR(pg_catalog.>=) 0 THEN r.reltuples::pg_catalog.int8 END AS rows_estimate," \
	"    pg_catalog.pg_total_relation_size(r.oid) AS total_bytes," \
	"    pg_catalog.pg_indexes_size(r.oid) AS index_bytes," \
	"    CASE WHEN r.reltoastrelid OPERATOR(pg_catalog.<>) 0" \
	"      THEN pg_catalog.pg_total_relation_size(r.reltoastrelid) ELSE 0 END AS toast_bytes" \
	"  FROM r),"
#define STORAGE_REPORT \
	" o AS (" \
	"  SELECT id, last_activity_at FROM chatstore.conversation" \
	"  WHERE status OPERATOR(pg_catalog.=) 'active'" \
	"  ORDER BY activity_bucket, last_activity_at LIMIT 1)," \
	" a AS (" \
	"  SELECT started_at, finished_at, error FROM chatstore.archive_run" \
	"  ORDER BY id DESC LIMIT 1)" \
	" SELECT" \
	"  (SELECT COALESCE(pg_catalog.sum(total_bytes), 0)::pg_catalog.int8 FROM s WHERE month IS NULL)," \
	"  (SELECT COALESCE(pg_catalog.sum(total_bytes), 0)::pg_catalog.int8 FROM s WHERE month IS NOT NULL)," \
	"  (SELECT pg_catalog.count(*)::pg_catalog.int4 FROM s WHERE month IS NOT NULL)," \
	"  (SELECT id FROM o)," \
	"  (SELECT $1 OPERATOR(pg_catalog.-) last_activity_at FROM o)," \
	"  (SELECT started_at FROM a), (SELECT finished_at FROM a)," \
	"  (SELECT CASE WHEN error IS NOT NULL THEN 'failed'" \
	"               WHEN finished_at IS NULL THEN 'running' ELSE 'succeeded' END FROM a)," \
	"  (SELECT error FROM a)," \
	"  (SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(" \
	"      'relation', relation::pg_catalog.text," \
	"      'archive_month', pg_catalog.to_char(month, 'YYYY-MM')," \
	"      'rows_estimate', rows_estimate," \
	"      'heap_bytes', total_bytes OPERATOR(pg_catalog.-) index_bytes OPERATOR(pg_catalog.-) toast_bytes," \
	"      'index_bytes', index_bytes, 'toast_bytes', toast_bytes, 'total_bytes', total_bytes)" \
	"    ORDER BY month NULLS FIRST, relation::pg_catalog.text), '[]') FROM s)"

/*
 * s on a distributed install (chatstore.distribute()): the coordinator's
 * own copies of the tables are empty, and the rows are in the shards on the
 * workers, so each relation's figures are the sums over its shards, asked of
 * the workers with Citus's run_command_on_shards() (the same size functions
 * and pg_class.reltuples as on one node; NULL rows when no shard has been
 * analyzed).
 */
#define STORAGE_FIGURES_DISTRIBUTED \
	" s AS (" \
	"  SELECT r.oid::pg_catalog.regclass AS relation, r.month," \
	"    pg_catalog.sum(f[1]::pg_catalog.float8) FILTER (WHERE f[1]::pg_catalog.float8 OPERATOR(pg_catalog.>=) 0)::pg_catalog.int8 AS rows_estimate," \
	"    COALESCE(pg_catalog.sum(f[2]::pg_catalog.int8), 0)::pg_catalog.int8 AS total_bytes," \
	"    COALESCE(pg_catalog.sum(f[3]::pg_catalog.int8), 0)::pg_catalog.int8 AS index_bytes," \
	"    COALESCE(pg_catalog.sum(f[4]::pg_catalog.int8), 0)::pg_catalog.int8 AS toast_bytes" \
	"  FROM r LEFT JOIN LATERAL (" \
	"    SELECT pg_catalog.string_to_array(x.result, ',') AS f" \
	"    FROM pg_catalog.run_command_on_shards(r.oid::pg_catalog.regclass," \
	"      $q$SELECT pg_catalog.concat_ws(',', c.reltuples, pg_catalog.pg_total_relation_size(c.oid)," \
	"         pg_catalog.pg_indexes_size(c.oid), CASE WHEN c.reltoastrelid OPERATOR(pg_catalog.<>) 0" \
	"         THEN pg_catalog.pg_total_relation_size(c.reltoastrelid) ELSE 0 END)" \
	"       FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) '%s'::pg_catalog.regclass$q$) x" \
	"    WHERE x.success) shard ON true" \
	"  GROUP BY r.oid, r.month),"

/*
 * chatstore.storage() RETURNS record (live_bytes, archive_bytes,
 *		archive_months, oldest_active_conversation, oldest_active_idle,
 *		last_run_started_at, last_run_finished_at, last_run_outcome,
 *		last_run_error, relations)
 *
 * Seed 001's maintenance checklist in one call, for admins only: the size
 * of the live tables (conversation, conversation_tag, message: tags stay
 * with the conversation row when it is archived) and of each archive month (heap, indexes, TOAST, from
 * PostgreSQL's size functions; row counts are the planner's estimates,
 * pg_class.reltuples, NULL before the first VACUUM or ANALYZE), the active
 * conversation idle the longest and for how long, and the newest run of the
 * archiver in chatstore.archive_run with its outcome ('succeeded',
 * 'failed', or 'running' while it has not finished).  On a distributed
 * install the sizes and rows are those of the shards.
 */
Datum
chatstore_storage(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr plan_distributed = NULL;
	static const Oid argtypes[1] = {TIMESTAMPTZOID};
	MemoryContext callerctx = CurrentMemoryContext;
	Datum		args[1] = {TimestampTzGetDatum(GetCurrentTimestamp())};
	Datum		result;

	if (!ChatstoreCallerIsAdmin())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a chatstore admin may see the storage report"),
				 errdetail("Role \"%s\" is not a chatstore admin.", GetUserNameFromId(GetUserId(), false)),
				 errhint("Run it as a role made admin by chatstore.grant_admin().")));

	ChatstoreConnect(fcinfo, &call);
	if (SPI_execute_plan(ChatstoreDistributed() ?
						 ChatstorePlan(&plan_distributed,
									   STORAGE_RELATIONS STORAGE_FIGURES_DISTRIBUTED STORAGE_REPORT,
									   1, argtypes) :
						 ChatstorePlan(&plan, STORAGE_RELATIONS STORAGE_FIGURES STORAGE_REPORT,
									   1, argtypes),
						 args, NULL, true, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "chatstore: storage query failed");
	MemoryContextSwitchTo(callerctx);
	result = ChatstoreRowFromSPI(fcinfo, SPI_tuptable->vals[0], SPI_tuptable->tupdesc);
	ChatstoreFinish(&call);
	PG_RETURN_DATUM(result);
}
