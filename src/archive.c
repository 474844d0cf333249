/*
 * archive.c
 *	  Archival and retention: chatstore.archive, archive_conversation,
 *	  restore, purge, erase_user, and the archive's month partitions.
 *
 * A conversation moves whole: its messages go from chatstore.message to
 * chatstore.archived_message in one statement (DELETE ... RETURNING feeding
 * an INSERT, as pgmq moves messages) and its status changes in the same
 * transaction.  The conversation row is locked first, so an append waits
 * for the move and then gets the archived-conversation error: no message
 * is lost.  archive() skips conversations locked by a concurrent append or
 * archiver instead of waiting for them.
 *
 * The archive is partitioned by archive month (UTC).  A month's partition is
 * created when chatstore first archives in the month before it (so the
 * partition is there before the month starts), and purge() drops the months
 * that lie wholly before its cutoff: purging old archive neither scans nor
 * rewrites the rest, and leaves no dead rows behind.
 *
 * Locks: partition creation takes SHARE UPDATE EXCLUSIVE on the archive
 * (readers and writers go on); dropping a month takes ACCESS EXCLUSIVE on
 * the archive, so purge() waits for it only briefly and otherwise deletes
 * the month's rows instead.  No lock chatstore waits for can be taken by a
 * role without rights on chatstore's tables.
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "chatstore.h"

PG_FUNCTION_INFO_V1(chatstore_archive);
PG_FUNCTION_INFO_V1(chatstore_archive_conversation);
PG_FUNCTION_INFO_V1(chatstore_restore);
PG_FUNCTION_INFO_V1(chatstore_purge);
PG_FUNCTION_INFO_V1(chatstore_erase_user);

/* Name prefix of the archive's month partitions: archived_message_YYYYMM. */
#define PARTITION_PREFIX		"archived_message_"

/*
 * The row-level security policy of every partition: the parent's policy
 * archived_message_of_user in chatstore.sql, word for word (a policy is not
 * inherited by a partition read directly).  sql/partitions.sql checks that
 * every partition's policies equal the parent's.
 */
#define PARTITION_POLICY \
	"CREATE POLICY archived_message_of_user ON chatstore.%s FOR SELECT" \
	" USING (user_id OPERATOR(pg_catalog.=) pg_catalog.current_setting('chatstore.user_id', true)" \
	" OR (COALESCE(pg_catalog.current_setting('chatstore.user_id', true), '') OPERATOR(pg_catalog.=) ''" \
	" AND chatstore.is_admin()))"

/*
 * The search index of every partition (CHATSTORE_PARTITION_SEARCH_INDEX in
 * chatstore.h, made while search is on): message_search_idx in chatstore.sql
 * (an index of each partition's own, not attached to one on the parent, for
 * the reason the partitions' keys are their own: pg_dump could not restore
 * a partition whose index is attached to an index of the extension's).
 * Unlike the live table's, it keeps a pending list (fastupdate on): archive
 * writes whole batches, whose entries go to the list and are merged into the
 * index in sorted bulk at the end of each archive call (CleanSearchPending),
 * instead of one tree insertion per entry, which made archiving 15 times
 * slower.
 */

/*
 * The settings that change what DDL does, and the values chatstore's DDL
 * runs with, whatever the caller (or the database, for the background
 * worker) set: a partition goes to the database's default tablespace as a
 * heap table, and every name in the DDL resolves as written.
 */
static const char *const ddl_settings[][2] = {
	{"search_path", "pg_catalog, pg_temp"},
	{"default_tablespace", ""},
	{"default_table_access_method", "heap"},
	{"datestyle", "ISO, YMD"},
};

/*
 * Longest wait, in milliseconds, for each attempt of purge() to lock the
 * archive for dropping a month, and how many attempts it makes, a wait
 * apart.  Readers that arrive while purge waits queue behind it, so this is
 * also the longest they wait for it.
 */
#define PURGE_LOCK_WAIT_MS		100
#define PURGE_LOCK_ATTEMPTS		3

/*
 * Run one DDL statement with the settings in ddl_settings pinned (also for
 * set_search, src/search.c).
 */
void
ChatstoreRunDDL(const char *sql)
{
	int			nestlevel = NewGUCNestLevel();

	for (int i = 0; i < (int) lengthof(ddl_settings); i++)
		ChatstorePinSetting(ddl_settings[i][0], ddl_settings[i][1]);
	if (SPI_execute(sql, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "chatstore: \"%s\" failed", sql);
	AtEOXact_GUC(true, nestlevel);
}

/*
 * Create the archive partition of the month (UTC) that holds "at", unless it
 * exists.  Creators serialize on a SHARE UPDATE EXCLUSIVE lock on the
 * archive, the lock ATTACH PARTITION takes anyway: it conflicts with itself
 * but not with reads and writes, and only roles that may change the archive
 * can take it (an advisory lock, as in 1.0, could be taken by any role that
 * can connect).  The partition is made as a plain table with the archive's
 * row-level security and, while search is on, its search index, then
 * attached.  set_search takes the same lock, so a partition gets its index
 * exactly when the live table has one.
 */
static void
EnsurePartition(TimestampTz at)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			next_year,
				next_month;
	char		name[NAMEDATALEN];
	Oid			nsp = get_namespace_oid("chatstore", false);
	Oid			archive;

	if (timestamp2tm(at, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	snprintf(name, sizeof(name), PARTITION_PREFIX "%04d%02d", tm.tm_year, tm.tm_mon);
	if (OidIsValid(get_relname_relid(name, nsp)))
		return;

	archive = get_relname_relid("archived_message", nsp);
	if (!OidIsValid(archive))
		elog(ERROR, "chatstore: table chatstore.archived_message is missing");
	LockRelationOid(archive, ShareUpdateExclusiveLock);
	AcceptInvalidationMessages();	/* see a partition another session just made */
	if (OidIsValid(get_relname_relid(name, nsp)))
		return;

	next_year = tm.tm_mon == 12 ? tm.tm_year + 1 : tm.tm_year;
	next_month = tm.tm_mon == 12 ? 1 : tm.tm_mon + 1;
	ChatstoreRunDDL(psprintf("CREATE TABLE chatstore.%s"
					" (LIKE chatstore.archived_message INCLUDING DEFAULTS INCLUDING CONSTRAINTS,"
					"  PRIMARY KEY (conversation_id, archived_at, seq))",
					name));
	if (ChatstoreSearchOn())
		ChatstoreRunDDL(psprintf(CHATSTORE_PARTITION_SEARCH_INDEX,
								 quote_identifier(psprintf("%s" CHATSTORE_PARTITION_SEARCH_SUFFIX, name)),
								 quote_identifier(name)));
	ChatstoreRunDDL(psprintf("ALTER TABLE chatstore.%s ENABLE ROW LEVEL SECURITY", name));
	ChatstoreRunDDL(psprintf(PARTITION_POLICY, name));
	ChatstoreRunDDL(psprintf("COMMENT ON TABLE chatstore.%s IS 'chatstore archived messages of %04d-%02d (UTC)'",
					name, tm.tm_year, tm.tm_mon));
	ChatstoreRunDDL(psprintf("ALTER TABLE chatstore.archived_message ATTACH PARTITION chatstore.%s"
					" FOR VALUES FROM ('%04d-%02d-01 00:00:00+00') TO ('%04d-%02d-01 00:00:00+00')",
					name, tm.tm_year, tm.tm_mon, next_year, next_month));
}

/*
 * The first instant (UTC) of the calendar month after the one that holds
 * "at".  Calendar arithmetic, never a fixed number of days: on 30 November
 * the next month is December, not January.
 */
static TimestampTz
NextMonthStart(TimestampTz at)
{
	struct pg_tm tm;
	fsec_t		fsec;
	TimestampTz result;

	if (timestamp2tm(at, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	tm.tm_year += tm.tm_mon / 12;
	tm.tm_mon = tm.tm_mon % 12 + 1;
	tm.tm_mday = 1;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	if (tm2timestamp(&tm, 0, NULL, &result) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return result;
}

/*
 * Merge the pending list of the search index of the archive partition that
 * holds "at" (the month archive just wrote to) into the index, so that
 * searches of archived messages read no pending entries.  Nothing when the
 * partition or its index is missing, or when it is not the current user's
 * to clean (gin_clean_pending_list wants its owner).
 */
static void
CleanSearchPending(TimestampTz at)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[1] = {TEXTOID};
	struct pg_tm tm;
	fsec_t		fsec;
	char		name[NAMEDATALEN];
	Datum		args[1];

	if (timestamp2tm(at, NULL, &tm, &fsec, NULL, NULL) != 0)
		return;
	snprintf(name, sizeof(name), "chatstore." PARTITION_PREFIX "%04d%02d" CHATSTORE_PARTITION_SEARCH_SUFFIX,
			 tm.tm_year, tm.tm_mon);
	args[0] = CStringGetTextDatum(name);
	/* only an index chatstore may clean (its owner's): one restored under another owner is left to VACUUM */
	if (SPI_execute_plan(ChatstorePlan(&plan,
									   "SELECT pg_catalog.gin_clean_pending_list(c.oid) FROM pg_catalog.pg_class c"
									   " WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)"
									   "   AND pg_catalog.pg_has_role(c.relowner, 'USAGE')",
									   1, argtypes),
						 args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "chatstore: cleaning the archive's search index failed");
}

/*
 * Make sure the partitions of this month and the next (UTC) exist, before
 * any conversation row is locked.  Also called by distribute(), so that a
 * distributed store's first archive call in the month needs no DDL.
 */
void
EnsureArchivePartitions(TimestampTz now)
{
	EnsurePartition(now);
	EnsurePartition(NextMonthStart(now));
}

/*
 * Move the messages of the given (locked, active) conversations into the
 * archive and mark them archived at "now".  Returns the messages moved.
 */
static int64
MoveToArchive(Datum ids, TimestampTz now)
{
	static SPIPlanPtr move = NULL;
	static SPIPlanPtr mark = NULL;
	static const Oid argtypes[2] = {UUIDARRAYOID, TIMESTAMPTZOID};
	Datum		args[2] = {ids, TimestampTzGetDatum(now)};
	int64		moved;

	if (SPI_execute_plan(ChatstorePlan(&move,
									   "WITH moved AS ("
									   "  DELETE FROM chatstore.message"
									   "  WHERE conversation_id OPERATOR(pg_catalog.=) ANY ($1)"
									   "  RETURNING " MESSAGE_COLUMNS ")"
									   " INSERT INTO chatstore.archived_message (" MESSAGE_COLUMNS ", archived_at)"
									   " SELECT " MESSAGE_COLUMNS ", $2 FROM moved",
									   2, argtypes),
						 args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "chatstore: archive move failed");
	moved = (int64) SPI_processed;
	if (SPI_execute_plan(ChatstorePlan(&mark,
									   "UPDATE chatstore.conversation"
									   " SET status = 'archived', archived_at = $2"
									   " WHERE id OPERATOR(pg_catalog.=) ANY ($1)",
									   2, argtypes),
						 args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "chatstore: archive status update failed");
	return moved;
}

/*
 * MoveToArchive for one (locked, active) conversation on a distributed
 * install: the copy, the delete and the mark as three statements, each
 * routed to the conversation's shards over one connection, so that the
 * transaction commits on that one worker without two-phase commit.  (Citus
 * runs MoveToArchive's DELETE-feeding-INSERT through the coordinator: it
 * pulls the deleted rows back and copies them into the archive's shard over
 * a second connection, and commits both with two-phase commit.)  The
 * conversation's row lock keeps appends out between the copy and the
 * delete.  Returns the messages moved.
 */
static int64
MoveOneRouted(Datum id, TimestampTz now)
{
	static SPIPlanPtr copy = NULL;
	static SPIPlanPtr delete = NULL;
	static SPIPlanPtr mark = NULL;
	static const Oid argtypes[2] = {UUIDOID, TIMESTAMPTZOID};
	Datum		args[2] = {id, TimestampTzGetDatum(now)};
	int64		moved;

	if (SPI_execute_plan(ChatstorePlan(&copy,
									   "INSERT INTO chatstore.archived_message (" MESSAGE_COLUMNS ", archived_at)"
									   " SELECT " MESSAGE_COLUMNS ", $2 FROM chatstore.message"
									   " WHERE conversation_id OPERATOR(pg_catalog.=) $1",
									   2, argtypes),
						 args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "chatstore: archive copy failed");
	moved = (int64) SPI_processed;
	if (SPI_execute_plan(ChatstorePlan(&delete,
									   "DELETE FROM chatstore.message WHERE conversation_id OPERATOR(pg_catalog.=) $1",
									   1, argtypes),
						 args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "chatstore: archive delete failed");
	/* the conversation's lock keeps every writer out: the same rows, or nothing is moved */
	if ((int64) SPI_processed != moved)
		elog(ERROR, "chatstore: archive copied %lld messages but deleted %lld",
			 (long long) moved, (long long) SPI_processed);
	if (SPI_execute_plan(ChatstorePlan(&mark,
									   "UPDATE chatstore.conversation"
									   " SET status = 'archived', archived_at = $2"
									   " WHERE id OPERATOR(pg_catalog.=) $1",
									   2, argtypes),
						 args, NULL, false, 0) != SPI_OK_UPDATE || SPI_processed != 1)
		elog(ERROR, "chatstore: archive status update failed");
	return moved;
}

/* A one-element uuid[] datum. */
static Datum
OneIdArray(pg_uuid_t *id)
{
	Datum		elem = UUIDPGetDatum(id);

	return PointerGetDatum(construct_array(&elem, 1, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
}

/*
 * The time "iv" ago, from the start of the transaction; iv NULL means the
 * interval in the setting (named setting_name, with text setting).  Raises
 * 22023 for a negative interval.
 */
TimestampTz
ChatstoreIntervalAgo(const char *setting_name, const char *setting, Interval *iv,
					 const char *argname)
{
	if (iv == NULL)
		iv = DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(setting),
												   ObjectIdGetDatum(InvalidOid),
												   Int32GetDatum(-1)));
	if (ChatstoreIntervalIsNegative(iv))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be negative", argname),
				 setting_name ?
				 errdetail("Pass an age such as '90 days', or NULL for %s.", setting_name) :
				 errdetail("Pass an age such as '1 year'.")));
	return DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
												   TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
												   IntervalPGetDatum(iv)));
}

/*
 * ArchiveIdle's batch on a distributed install, where a locking query must
 * target one conversation (Citus refuses FOR UPDATE across shards): the
 * conversations chosen without locks (in SPI_tuptable) are each locked
 * alone, FOR UPDATE SKIP LOCKED with status and activity checked again on
 * the newest row version, and each one locked is archived in a statement of
 * its own, routed to its shard.  Returns how many; adds their messages to
 * *messages.
 */
static int64
ArchiveEachLocked(TimestampTz cutoff, TimestampTz now, int64 *messages)
{
	static SPIPlanPtr lock = NULL;
	static const Oid argtypes[2] = {UUIDOID, TIMESTAMPTZOID};
	SPITupleTable *chosen = SPI_tuptable;
	uint64		n = SPI_processed;
	int64		archived = 0;

	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		Datum		args[2] = {SPI_getbinval(chosen->vals[i], chosen->tupdesc, 1, &isnull),
		TimestampTzGetDatum(cutoff)};

		if (SPI_execute_plan(ChatstorePlan(&lock,
										   "SELECT id FROM chatstore.conversation"
										   " WHERE id OPERATOR(pg_catalog.=) $1"
										   "   AND status OPERATOR(pg_catalog.=) 'active'"
										   "   AND last_activity_at OPERATOR(pg_catalog.<) $2"
										   " FOR UPDATE SKIP LOCKED",
										   2, argtypes),
							 args, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "chatstore: archive lock failed");
		if (SPI_processed == 0)
			continue;
		SPI_freetuptable(SPI_tuptable);
		*messages += MoveOneRouted(args[0], now);
		SPI_freetuptable(SPI_tuptable);
		archived++;
	}
	SPI_freetuptable(chosen);
	return archived;
}

/*
 * Archive up to "limit" active conversations of the actor whose last
 * activity is before cutoff, the longest idle first, in statements of
 * chatstore.archive_batch_size conversations.  Returns how many; adds the
 * messages moved to *messages.  Requires SPI.
 *
 * Rows are chosen FOR UPDATE SKIP LOCKED, and the choice re-checks status
 * and activity on the newest row version, so two archivers never move a
 * conversation twice and neither waits for the other or for an append.  On
 * a distributed install each is locked alone (ArchiveEachLocked).
 */
int64
ArchiveIdle(TimestampTz cutoff, int64 limit, Actor *actor, int64 *messages)
{
	static SPIPlanPtr choose = NULL;
	static SPIPlanPtr choose_distributed = NULL;
	static const Oid argtypes[3] = {TIMESTAMPTZOID, INT4OID, TEXTOID};
	TimestampTz now = GetCurrentTimestamp();
	bool		distributed = ChatstoreDistributed();
	Datum		user_arg;
	char		user_null;
	int64		archived = 0;

	if (actor->kind == ACTOR_NOBODY)
		return 0;
	ChatstoreActorArg(actor, &user_arg, &user_null);
	EnsureArchivePartitions(now);

	while (archived < limit)
	{
		int32		batch = (int32) Min(limit - archived, chatstore_archive_batch_size);
		Datum		args[3] = {TimestampTzGetDatum(cutoff), Int32GetDatum(batch), user_arg};
		char		nulls[3] = {' ', ' ', user_null};
		Datum	   *ids;
		ArrayType  *idarray;
		int			n;

		if (SPI_execute_plan(distributed ?
							 ChatstorePlan(&choose_distributed,
										   "SELECT id FROM chatstore.conversation"
										   " WHERE status OPERATOR(pg_catalog.=) 'active'"
										   "   AND activity_bucket OPERATOR(pg_catalog.<) $1"
										   "   AND last_activity_at OPERATOR(pg_catalog.<) $1"
										   "   AND ($3 IS NULL OR user_id OPERATOR(pg_catalog.=) $3)"
										   " ORDER BY activity_bucket, last_activity_at LIMIT $2",
										   3, argtypes) :
							 ChatstorePlan(&choose,
										   "SELECT id FROM chatstore.conversation"
										   " WHERE status OPERATOR(pg_catalog.=) 'active'"
										   "   AND activity_bucket OPERATOR(pg_catalog.<) $1"
										   "   AND last_activity_at OPERATOR(pg_catalog.<) $1"
										   "   AND ($3 IS NULL OR user_id OPERATOR(pg_catalog.=) $3)"
										   " ORDER BY activity_bucket, last_activity_at LIMIT $2"
										   " FOR UPDATE SKIP LOCKED",
										   3, argtypes),
							 args, nulls, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "chatstore: archive selection failed");
		n = (int) SPI_processed;
		if (n == 0)
			break;
		if (distributed)
		{
			int64		moved = ArchiveEachLocked(cutoff, now, messages);

			archived += moved;
			if (moved < n || n < batch)
				break;			/* another transaction holds some: leave them to a later run */
			continue;
		}
		ids = palloc(sizeof(Datum) * n);
		for (int i = 0; i < n; i++)
		{
			bool		isnull;

			ids[i] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
		}
		idarray = construct_array(ids, n, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR);
		SPI_freetuptable(SPI_tuptable);
		pfree(ids);
		*messages += MoveToArchive(PointerGetDatum(idarray), now);
		SPI_freetuptable(SPI_tuptable);
		pfree(idarray);
		archived += n;
		if (n < batch)
			break;
	}
	if (archived > 0 && !distributed)
		CleanSearchPending(now);	/* on a distributed install, the shards' lists: autovacuum */
	return archived;
}

/*
 * Drop one month partition of the archive, unless its locks cannot be had
 * soon: true when dropped; false, with the transaction as it was, when
 * PURGE_LOCK_ATTEMPTS waits of PURGE_LOCK_WAIT_MS each (or the caller's
 * shorter lock_timeout) did not get them.
 *
 * Dropping a partition takes an ACCESS EXCLUSIVE lock on the partition and
 * on the archive itself.  Every reader of the archive holds ACCESS SHARE on
 * it until its transaction ends, and a lock request that waits makes every
 * reader that comes after it wait too: waiting without a bound for one
 * application idle in a transaction would stall every read of archived
 * conversations.  So each attempt runs in a subtransaction with
 * lock_timeout set, and one that times out (or is chosen as a deadlock
 * victim) is rolled back; any other error is raised.
 */
static bool
DropPartition(const char *relname)
{
	char	   *sql = psprintf("DROP TABLE chatstore.%s", quote_identifier(relname));
	char		wait[32];

	snprintf(wait, sizeof(wait), "%dms",
			 LockTimeout > 0 && LockTimeout < PURGE_LOCK_WAIT_MS ? LockTimeout : PURGE_LOCK_WAIT_MS);
	for (int attempt = 1; attempt <= PURGE_LOCK_ATTEMPTS; attempt++)
	{
		MemoryContext oldcontext = CurrentMemoryContext;
		ResourceOwner oldowner = CurrentResourceOwner;
		volatile bool dropped = false;

		if (attempt > 1)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 PURGE_LOCK_WAIT_MS, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(oldcontext);
		PG_TRY();
		{
			int			nestlevel = NewGUCNestLevel();

			ChatstorePinSetting("lock_timeout", wait);
			ChatstoreRunDDL(sql);
			AtEOXact_GUC(true, nestlevel);
			ReleaseCurrentSubTransaction();
			dropped = true;
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(oldcontext);
			edata = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(oldcontext);
			CurrentResourceOwner = oldowner;
			if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE &&
				edata->sqlerrcode != ERRCODE_T_R_DEADLOCK_DETECTED)
				ReThrowError(edata);
			FreeErrorData(edata);
		}
		PG_END_TRY();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
		if (dropped)
			return true;
	}
	return false;
}

/*
 * Delete the actor's archived conversations archived before cutoff, with
 * their messages.  Returns how many; adds their messages to *messages.
 * Requires SPI.
 *
 * Acting for every user, it drops the month partitions that end by the
 * cutoff whole and deletes row by row only in the month the cutoff falls
 * in, and in months it could not drop without waiting long (see
 * DropPartition: a later purge drops them, empty).  Acting for one user,
 * it deletes that user's rows only.
 */
int64
PurgeArchived(TimestampTz cutoff, Actor *actor, int64 *messages)
{
	static SPIPlanPtr purge_all = NULL;
	static SPIPlanPtr purge_user = NULL;
	static SPIPlanPtr partitions = NULL;
	static SPIPlanPtr rest = NULL;
	static SPIPlanPtr user_rows = NULL;
	static const Oid argtypes[2] = {TIMESTAMPTZOID, TEXTOID};
	static const Oid idtypes[1] = {UUIDARRAYOID};
	Datum		args[2] = {TimestampTzGetDatum(cutoff), (Datum) 0};
	char		nulls[2] = {' ', ' '};
	int64		purged;
	List	   *drop = NIL;
	ListCell   *lc;

	if (actor->kind == ACTOR_NOBODY)
		return 0;
	ChatstoreActorArg(actor, &args[1], &nulls[1]);

	/* the conversations first: this waits for a restore that holds one */
	if (actor->kind == ACTOR_USER)
	{
		Datum		ids;
		bool		isnull;

		if (SPI_execute_plan(ChatstorePlan(&purge_user,
										   "WITH gone AS ("
										   "  DELETE FROM chatstore.conversation"
										   "  WHERE status OPERATOR(pg_catalog.=) 'archived'"
										   "    AND archived_at OPERATOR(pg_catalog.<) $1"
										   "    AND user_id OPERATOR(pg_catalog.=) $2"
										   "  RETURNING id, message_count)"
										   " SELECT pg_catalog.count(*), COALESCE(pg_catalog.sum(message_count), 0)::pg_catalog.int8,"
										   "        pg_catalog.array_agg(id) FROM gone",
										   2, argtypes),
							 args, nulls, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "chatstore: purge failed");
		purged = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		*messages += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		ids = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
		if (!isnull &&
			SPI_execute_plan(ChatstorePlan(&user_rows,
										   "DELETE FROM chatstore.archived_message"
										   " WHERE conversation_id OPERATOR(pg_catalog.=) ANY ($1)",
										   1, idtypes),
							 &ids, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "chatstore: purge of archived messages failed");
		return purged;
	}

	if (SPI_execute_plan(ChatstorePlan(&purge_all,
									   "WITH gone AS ("
									   "  DELETE FROM chatstore.conversation"
									   "  WHERE status OPERATOR(pg_catalog.=) 'archived'"
									   "    AND archived_at OPERATOR(pg_catalog.<) $1"
									   "  RETURNING message_count)"
									   " SELECT pg_catalog.count(*), COALESCE(pg_catalog.sum(message_count), 0)::pg_catalog.int8"
									   " FROM gone",
									   1, argtypes),
						 args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "chatstore: purge failed");
	{
		bool		isnull;

		purged = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		*messages += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	}

	/* whole months before the cutoff: drop them */
	if (SPI_execute_plan(ChatstorePlan(&partitions,
									   "SELECT c.relname::pg_catalog.text"
									   " FROM pg_catalog.pg_inherits i"
									   " JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid"
									   " WHERE i.inhparent OPERATOR(pg_catalog.=) 'chatstore.archived_message'::pg_catalog.regclass",
									   0, NULL),
						 NULL, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "chatstore: could not list archive partitions");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *relname = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		int			year,
					month;
		struct pg_tm tm = {0};
		Timestamp	month_end;

		if (sscanf(relname, PARTITION_PREFIX "%4d%2d", &year, &month) != 2 ||
			strlen(relname) != strlen(PARTITION_PREFIX) + 6 || month < 1 || month > 12)
			continue;			/* not one of ours: leave it alone */
		tm.tm_year = month == 12 ? year + 1 : year;
		tm.tm_mon = month == 12 ? 1 : month + 1;
		tm.tm_mday = 1;
		if (tm2timestamp(&tm, 0, NULL, &month_end) != 0)
			continue;
		if (month_end <= cutoff)
			drop = lappend(drop, relname);
	}
	foreach(lc, drop)
	{
		if (!DropPartition((char *) lfirst(lc)))
			break;				/* busy: the rows go below, the table later */
	}

	/* the month the cutoff falls in, and months that could not be dropped: row by row */
	if (SPI_execute_plan(ChatstorePlan(&rest,
									   "DELETE FROM chatstore.archived_message"
									   " WHERE archived_at OPERATOR(pg_catalog.<) $1",
									   1, argtypes),
						 args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "chatstore: purge of archived messages failed");
	return purged;
}

/*
 * chatstore.archive(older_than interval, max_conversations int) RETURNS bigint
 *
 * Archives the active conversations whose last activity is older than
 * now() - older_than (default chatstore.archive_after), the longest idle
 * first, and returns how many.
 */
Datum
chatstore_archive(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	int64		limit = PG_INT64_MAX;
	int64		archived;
	int64		messages = 0;
	TimestampTz cutoff;
	Actor		actor;

	cutoff = ChatstoreIntervalAgo("chatstore.archive_after", chatstore_archive_after,
								  PG_ARGISNULL(0) ? NULL : PG_GETARG_INTERVAL_P(0),
								  "older_than");
	if (!PG_ARGISNULL(1))
	{
		limit = PG_GETARG_INT32(1);
		if (limit < 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("max_conversations must be at least 1"),
					 errdetail("max_conversations was %lld; pass NULL for no limit.", (long long) limit)));
	}

	ChatstoreGetActor(&actor);
	ChatstoreConnect(fcinfo, &call);
	archived = ArchiveIdle(cutoff, limit, &actor, &messages);
	ChatstoreFinish(&call);
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
	ChatstoreCall call;
	pg_uuid_t  *id;
	bool		moved = false;
	Actor		actor;
	TimestampTz now = GetCurrentTimestamp();

	ChatstoreRequireArg(fcinfo, 0, "conversation_id");
	id = PG_GETARG_UUID_P(0);

	ChatstoreGetActor(&actor);
	ChatstoreConnect(fcinfo, &call);
	if (actor.kind != ACTOR_NOBODY)
		EnsureArchivePartitions(now);
	switch (ChatstoreConversationStatus(id, true, &actor, NULL))
	{
		case CONV_MISSING:
			ChatstoreConversationNotFound(id);
			break;
		case CONV_ACTIVE:
			if (ChatstoreDistributed())
				(void) MoveOneRouted(UUIDPGetDatum(id), now);	/* the shards' pending lists: autovacuum */
			else
			{
				MoveToArchive(OneIdArray(id), now);
				CleanSearchPending(now);
			}
			moved = true;
			break;
	}
	ChatstoreFinish(&call);
	PG_RETURN_BOOL(moved);
}

/*
 * restore's move on a distributed install (args: the conversation id, now,
 * its archived_at): the copy back and the delete as two statements routed
 * to the conversation's shards over one connection, without two-phase
 * commit, as MoveOneRouted does for archiving.
 */
static void
RestoreRouted(Datum *args)
{
	static SPIPlanPtr copy = NULL;
	static SPIPlanPtr delete = NULL;
	static const Oid argtypes[3] = {UUIDOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	uint64		copied;

	if (SPI_execute_plan(ChatstorePlan(&copy,
									   "INSERT INTO chatstore.message (" MESSAGE_COLUMNS ")"
									   " SELECT " MESSAGE_COLUMNS " FROM chatstore.archived_message"
									   " WHERE conversation_id OPERATOR(pg_catalog.=) $1"
									   "   AND archived_at OPERATOR(pg_catalog.=) $3",
									   3, argtypes),
						 args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "chatstore: restore copy failed");
	copied = SPI_processed;
	if (SPI_execute_plan(ChatstorePlan(&delete,
									   "DELETE FROM chatstore.archived_message"
									   " WHERE conversation_id OPERATOR(pg_catalog.=) $1"
									   "   AND archived_at OPERATOR(pg_catalog.=) $3",
									   3, argtypes),
						 args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "chatstore: restore delete failed");
	/* the conversation's lock keeps every writer out: the same rows, or nothing is moved */
	if (SPI_processed != copied)
		elog(ERROR, "chatstore: restore copied %llu messages but deleted %llu",
			 (unsigned long long) copied, (unsigned long long) SPI_processed);
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
	ChatstoreCall call;
	static SPIPlanPtr move = NULL;
	static SPIPlanPtr mark = NULL;
	static const Oid argtypes[3] = {UUIDOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	pg_uuid_t  *id;
	bool		moved = false;
	Actor		actor;
	TimestampTz archived_at;

	ChatstoreRequireArg(fcinfo, 0, "conversation_id");
	id = PG_GETARG_UUID_P(0);

	ChatstoreGetActor(&actor);
	ChatstoreConnect(fcinfo, &call);
	switch (ChatstoreConversationStatus(id, true, &actor, &archived_at))
	{
		case CONV_MISSING:
			ChatstoreConversationNotFound(id);
			break;
		case CONV_ARCHIVED:
			{
				Datum		args[3] = {UUIDPGetDatum(id), TimestampTzGetDatum(GetCurrentTimestamp()),
				TimestampTzGetDatum(archived_at)};

				if (ChatstoreDistributed())
					RestoreRouted(args);
				else if (SPI_execute_plan(ChatstorePlan(&move,
														"WITH moved AS ("
														"  DELETE FROM chatstore.archived_message"
														"  WHERE conversation_id OPERATOR(pg_catalog.=) $1"
														"    AND archived_at OPERATOR(pg_catalog.=) $3"
														"  RETURNING " MESSAGE_COLUMNS ")"
														" INSERT INTO chatstore.message (" MESSAGE_COLUMNS ")"
														" SELECT " MESSAGE_COLUMNS " FROM moved",
														3, argtypes),
										  args, NULL, false, 0) != SPI_OK_INSERT)
					elog(ERROR, "chatstore: restore move failed");
				if (SPI_execute_plan(ChatstorePlan(&mark,
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
	ChatstoreFinish(&call);
	PG_RETURN_BOOL(moved);
}

/*
 * chatstore.purge(archived_before interval) RETURNS bigint
 *
 * Deletes the archived conversations archived longer ago than
 * archived_before, with all their messages; returns how many.
 */
Datum
chatstore_purge(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	TimestampTz cutoff;
	int64		purged;
	int64		messages = 0;
	Actor		actor;

	ChatstoreRequireArg(fcinfo, 0, "archived_before");
	cutoff = ChatstoreIntervalAgo(NULL, NULL, PG_GETARG_INTERVAL_P(0), "archived_before");
	ChatstoreGetActor(&actor);
	ChatstoreConnect(fcinfo, &call);
	purged = PurgeArchived(cutoff, &actor, &messages);
	ChatstoreFinish(&call);
	PG_RETURN_INT64(purged);
}

/*
 * erase_user's lock on a distributed install, where a locking query must
 * target one conversation (Citus refuses FOR UPDATE across shards): the
 * user's conversations are found without locks, then each is locked FOR
 * UPDATE alone, in id order.  Returns the ids of those still there as a
 * uuid[] (*isnull when none).  Requires SPI.
 */
static Datum
LockEachOfUser(Datum user_id, bool *isnull)
{
	static SPIPlanPtr find = NULL;
	static const Oid findtypes[1] = {TEXTOID};
	int			locked;

	if (SPI_execute_plan(ChatstorePlan(&find,
									   "SELECT id FROM chatstore.conversation"
									   " WHERE user_id OPERATOR(pg_catalog.=) $1 ORDER BY id",
									   1, findtypes),
						 &user_id, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "chatstore: erase_user lookup failed");
	return ChatstoreLockEach(SPI_tuptable, (int) SPI_processed, user_id, true, &locked, isnull);
}

/*
 * chatstore.erase_user(user_id text) RETURNS bigint
 *
 * The right to erasure: deletes every conversation of one user, live and
 * archived, with all their messages and tags; returns how many.  The
 * conversations are locked first, so appends to them wait and then find
 * them gone.
 */
Datum
chatstore_erase_user(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	static SPIPlanPtr lock = NULL;
	static SPIPlanPtr del_live = NULL;
	static SPIPlanPtr del_archived = NULL;
	static SPIPlanPtr del_tags = NULL;
	static SPIPlanPtr del_conversations = NULL;
	static const Oid argtypes[1] = {TEXTOID};
	static const Oid idtypes[1] = {UUIDARRAYOID};
	Datum		args[1];
	Datum		ids;
	int64		erased;
	bool		isnull;
	Actor		actor;

	ChatstoreRequireArg(fcinfo, 0, "user_id");
	args[0] = PG_GETARG_DATUM(0);
	ChatstoreGetActor(&actor);
	if (!ChatstoreActorIs(&actor, PG_GETARG_TEXT_PP(0)))
		PG_RETURN_INT64(0);		/* another user's conversations: none to see */

	ChatstoreConnect(fcinfo, &call);
	if (ChatstoreDistributed())
		ids = LockEachOfUser(args[0], &isnull);
	else
	{
		if (SPI_execute_plan(ChatstorePlan(&lock,
										   "SELECT pg_catalog.array_agg(id) FROM ("
										   "  SELECT id FROM chatstore.conversation"
										   "  WHERE user_id OPERATOR(pg_catalog.=) $1 FOR UPDATE) c",
										   1, argtypes),
							 args, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "chatstore: erase_user lookup failed");
		ids = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	}
	if (isnull)
	{
		ChatstoreFinish(&call);
		PG_RETURN_INT64(0);
	}
	if (SPI_execute_plan(ChatstorePlan(&del_live,
									   "DELETE FROM chatstore.message"
									   " WHERE conversation_id OPERATOR(pg_catalog.=) ANY ($1)",
									   1, idtypes),
						 &ids, NULL, false, 0) != SPI_OK_DELETE ||
		SPI_execute_plan(ChatstorePlan(&del_archived,
									   "DELETE FROM chatstore.archived_message"
									   " WHERE conversation_id OPERATOR(pg_catalog.=) ANY ($1)",
									   1, idtypes),
						 &ids, NULL, false, 0) != SPI_OK_DELETE ||
		SPI_execute_plan(ChatstorePlan(&del_tags,
									   "DELETE FROM chatstore.conversation_tag"
									   " WHERE conversation_id OPERATOR(pg_catalog.=) ANY ($1)",
									   1, idtypes),
						 &ids, NULL, false, 0) != SPI_OK_DELETE ||
		SPI_execute_plan(ChatstorePlan(&del_conversations,
									   "DELETE FROM chatstore.conversation"
									   " WHERE id OPERATOR(pg_catalog.=) ANY ($1)",
									   1, idtypes),
						 &ids, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "chatstore: erase_user failed");
	erased = (int64) SPI_processed;
	ChatstoreFinish(&call);
	PG_RETURN_INT64(erased);
}
