/*
 * worker.c
 *	  The background archiver: archives idle conversations and purges old
 *	  archive on a schedule, in every database named in
 *	  chatstore.database_names, when chatstore is in shared_preload_libraries.
 *
 * A launcher, connected to no database, reads chatstore.database_names at
 * start and on every reload, checks which of those databases exist (one log
 * line for each that does not) and keeps one archiver running in each.  An
 * archiver wakes every chatstore.archive_interval, does nothing on a standby
 * or while the extension is not created in its database, and otherwise
 * archives in batches of chatstore.archive_batch_size conversations, one
 * transaction per batch, then purges what chatstore.purge_after allows.
 * Every run is recorded in chatstore.archive_run and logged in one line.
 *
 * Both behave as PostgreSQL's own workers: SIGHUP re-reads the settings,
 * SIGTERM ends them, they exit when the postmaster dies, and the postmaster
 * restarts the launcher after a crash (the launcher then restarts the
 * archivers).  The code follows src/test/modules/worker_spi.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "access/xlog.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "chatstore.h"

PGDLLEXPORT void chatstore_launcher_main(Datum main_arg);
PGDLLEXPORT void chatstore_archiver_main(Datum main_arg);

/* Settings */
int			chatstore_archive_interval = 3600;	/* seconds; 0 = off */
int			chatstore_archive_batch_size = 500;
char	   *chatstore_purge_after = NULL;	/* "" = never */
char	   *chatstore_database_names = NULL;

/* How often the launcher looks at its archivers, in milliseconds. */
#define LAUNCHER_NAP_MS			10000L

/* Rows of chatstore.archive_run kept. */
#define ARCHIVE_RUN_KEEP		1000

/* Advisory lock key that lets one archiver run per database ("chat", 2). */
#define ARCHIVER_LOCK_KEY		((INT64CONST(0x63686174) << 32) | 2)

/* The archiver's database, for its log lines (catalogs need a transaction). */
static char archiver_dbname[NAMEDATALEN];

/* One archiver the launcher started. */
typedef struct Archiver
{
	char		dbname[NAMEDATALEN];
	BackgroundWorkerHandle *handle;
} Archiver;

/* Check hook of chatstore.purge_after: empty (never purge) or an interval. */
static bool
CheckPurgeAfter(char **newval, void **extra, GucSource source)
{
	return ChatstoreCheckIntervalSetting(*newval, "chatstore.purge_after", true);
}

/*
 * Define the archiver's settings and, when the library is being preloaded,
 * register the launcher.  Called from _PG_init.
 */
void
ArchiveWorkerInit(void)
{
	BackgroundWorker worker;

	DefineCustomIntVariable("chatstore.archive_interval",
							"Time between runs of the background archiver; 0 turns it off.",
							NULL,
							&chatstore_archive_interval,
							3600, 0, INT_MAX / 1000,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("chatstore.archive_batch_size",
							"Conversations the archiver moves per transaction (and archive() per statement).",
							NULL,
							&chatstore_archive_batch_size,
							500, 1, 100000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("chatstore.purge_after",
							   "Age of archive that the background archiver purges; empty means never.",
							   NULL,
							   &chatstore_purge_after,
							   "",
							   PGC_SIGHUP, 0,
							   CheckPurgeAfter, NULL, NULL);

	DefineCustomStringVariable("chatstore.database_names",
							   "Comma-separated databases in which the background archiver runs.",
							   NULL,
							   &chatstore_database_names,
							   "postgres",
							   PGC_SIGHUP, 0,
							   NULL, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "chatstore");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "chatstore_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "chatstore launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "chatstore launcher");
	RegisterBackgroundWorker(&worker);
}

/*
 * The OID of a database, or InvalidOid when there is none of that name.
 * The launcher is connected to no database, so it reads pg_database with a
 * plain heap scan (as the autovacuum launcher does): index scans need the
 * relation cache of a database.
 */
static Oid
DatabaseOid(const char *dbname)
{
	Oid			dboid = InvalidOid;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tuple = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tuple);

		if (strcmp(NameStr(db->datname), dbname) == 0)
		{
			dboid = db->oid;
			break;
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return dboid;
}

/*
 * Start an archiver for one database; NULL when no worker slot is free
 * (the launcher tries again on its next round).
 */
static BackgroundWorkerHandle *
StartArchiver(const char *dbname, Oid dboid)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "chatstore");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "chatstore_archiver_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "chatstore archiver for database %s", dbname);
	snprintf(worker.bgw_type, BGW_MAXLEN, "chatstore archiver");
	worker.bgw_main_arg = ObjectIdGetDatum(dboid);
	worker.bgw_notify_pid = MyProcPid;
	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		return NULL;
	return handle;
}

/*
 * Bring the running archivers in line with chatstore.database_names: stop
 * those of databases no longer named, start missing ones (also after one
 * exited), and log once for each named database that does not exist.
 */
static void
ReconcileArchivers(List **archivers, List **warned)
{
	char	   *names = pstrdup(chatstore_database_names);
	List	   *wanted = NIL;
	ListCell   *lc;
	List	   *kept = NIL;

	if (!SplitGUCList(names, ',', &wanted))
	{
		ereport(LOG,
				(errmsg("chatstore: invalid list syntax in chatstore.database_names")));
		wanted = NIL;
	}

	/* stop the archivers of databases no longer named */
	foreach(lc, *archivers)
	{
		Archiver   *a = lfirst(lc);
		bool		still = false;
		ListCell   *lc2;

		foreach(lc2, wanted)
			if (strcmp(a->dbname, (char *) lfirst(lc2)) == 0)
				still = true;
		if (still)
			kept = lappend(kept, a);
		else
			TerminateBackgroundWorker(a->handle);
	}
	*archivers = kept;

	foreach(lc, wanted)
	{
		char	   *dbname = lfirst(lc);
		Archiver   *found = NULL;
		ListCell   *lc2;
		pid_t		pid;
		Oid			dboid;

		foreach(lc2, *archivers)
			if (strcmp(((Archiver *) lfirst(lc2))->dbname, dbname) == 0)
				found = lfirst(lc2);
		if (found != NULL && found->handle != NULL &&
			GetBackgroundWorkerPid(found->handle, &pid) != BGWH_STOPPED)
			continue;			/* running, or about to */

		dboid = DatabaseOid(dbname);
		if (!OidIsValid(dboid))
		{
			bool		said = false;

			foreach(lc2, *warned)
				if (strcmp((char *) lfirst(lc2), dbname) == 0)
					said = true;
			if (!said)
			{
				ereport(LOG,
						(errmsg("chatstore: database \"%s\" named in chatstore.database_names does not exist; skipping it",
								dbname)));
				*warned = lappend(*warned, MemoryContextStrdup(TopMemoryContext, dbname));
			}
			continue;
		}
		if (found == NULL)
		{
			found = MemoryContextAllocZero(TopMemoryContext, sizeof(Archiver));
			strlcpy(found->dbname, dbname, NAMEDATALEN);
			*archivers = lappend(*archivers, found);
		}
		found->handle = StartArchiver(dbname, dboid);
	}
	pfree(names);
}

/*
 * Main function of the launcher.
 */
void
chatstore_launcher_main(Datum main_arg)
{
	List	   *archivers = NIL;
	List	   *warned = NIL;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	ereport(LOG, (errmsg("chatstore launcher started")));
	for (;;)
	{
		MemoryContext oldcontext;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			list_free_deep(warned);	/* say again what is still wrong */
			warned = NIL;
		}
		oldcontext = MemoryContextSwitchTo(TopMemoryContext);
		ReconcileArchivers(&archivers, &warned);
		MemoryContextSwitchTo(oldcontext);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 LAUNCHER_NAP_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * Start a transaction with a snapshot and an SPI connection.  The statement
 * start time is set first, as a backend sets it for each query: now() and
 * the archiver's cutoffs come from it.
 */
static void
BeginWork(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
}

/* Commit what BeginWork started. */
static void
EndWork(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/*
 * Record a run in chatstore.archive_run, keeping the newest rows only, and
 * log it in one line.
 */
static void
RecordRun(TimestampTz started, int64 archived, int64 archived_messages,
		  int64 purged, int64 purged_messages, const char *error)
{
	static const Oid argtypes[7] = {TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, INT8OID,
	INT8OID, INT8OID, TEXTOID};
	TimestampTz finished = GetCurrentTimestamp();
	Datum		args[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

	args[0] = TimestampTzGetDatum(started);
	args[1] = TimestampTzGetDatum(finished);
	args[2] = Int64GetDatum(archived);
	args[3] = Int64GetDatum(archived_messages);
	args[4] = Int64GetDatum(purged);
	args[5] = Int64GetDatum(purged_messages);
	args[6] = error ? CStringGetTextDatum(error) : (Datum) 0;
	nulls[6] = error ? ' ' : 'n';

	BeginWork();
	if (SPI_execute_with_args("INSERT INTO chatstore.archive_run (database_name, started_at, finished_at,"
							  "  conversations_archived, messages_archived, conversations_purged, messages_purged, error)"
							  " VALUES (pg_catalog.current_database(), $1, $2, $3, $4, $5, $6, $7)",
							  7, (Oid *) argtypes, args, nulls, false, 0) != SPI_OK_INSERT ||
		SPI_execute("DELETE FROM chatstore.archive_run WHERE id OPERATOR(pg_catalog.<=)"
					" ((SELECT pg_catalog.max(id) FROM chatstore.archive_run) OPERATOR(pg_catalog.-) "
					CppAsString2(ARCHIVE_RUN_KEEP) ")", false, 0) != SPI_OK_DELETE)
		elog(ERROR, "chatstore: could not record the archiver run");
	EndWork();

	ereport(LOG,
			(errmsg("chatstore archiver in database \"%s\": archived %lld conversations (%lld messages), purged %lld conversations (%lld messages) in %ld ms%s%s",
					archiver_dbname,
					(long long) archived, (long long) archived_messages,
					(long long) purged, (long long) purged_messages,
					(long) ((finished - started) / 1000),
					error ? "; error: " : "", error ? error : "")));
}

/*
 * One run of the archiver: archive idle conversations batch by batch, one
 * transaction each, then purge.  An error ends the run; it is recorded and
 * the next run tries again.
 */
static void
ArchiverRun(void)
{
	Actor		everyone = {ACTOR_ADMIN, NULL};
	TimestampTz started = GetCurrentTimestamp();
	int64		archived = 0,
				archived_messages = 0,
				purged = 0,
				purged_messages = 0;
	MemoryContext runcontext = CurrentMemoryContext;
	char	   *error = NULL;

	PG_TRY();
	{
		for (;;)
		{
			int64		n;

			CHECK_FOR_INTERRUPTS();
			BeginWork();
			pgstat_report_activity(STATE_RUNNING, "chatstore: archiving a batch");
			n = ArchiveIdle(ChatstoreIntervalAgo("chatstore.archive_after", chatstore_archive_after, NULL,
												 "chatstore.archive_after"),
							chatstore_archive_batch_size, &everyone, &archived_messages);
			EndWork();
			archived += n;
			if (n < chatstore_archive_batch_size)
				break;
		}
		if (chatstore_purge_after != NULL && chatstore_purge_after[0] != '\0')
		{
			BeginWork();
			pgstat_report_activity(STATE_RUNNING, "chatstore: purging");
			purged = PurgeArchived(ChatstoreIntervalAgo("chatstore.purge_after", chatstore_purge_after, NULL,
												   "chatstore.purge_after"),
								   &everyone, &purged_messages);
			EndWork();
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(runcontext);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		error = edata->message;
	}
	PG_END_TRY();

	RecordRun(started, archived, archived_messages, purged, purged_messages, error);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * Is the chatstore extension created in this database?
 */
static bool
ExtensionExists(void)
{
	bool		exists;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	exists = OidIsValid(get_extension_oid("chatstore", true));
	CommitTransactionCommand();
	return exists;
}

/*
 * Main function of an archiver; the argument is its database's OID.
 */
void
chatstore_archiver_main(Datum main_arg)
{
	bool		locked;
	bool		said_missing = false;
	TimestampTz last_run = 0;
	MemoryContext runcontext;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(main_arg), InvalidOid, 0);
	pgstat_report_appname("chatstore archiver");

	/* one archiver per database, even if a restarted launcher starts another */
	StartTransactionCommand();
	locked = DatumGetBool(DirectFunctionCall1(pg_try_advisory_lock_int8,
											  Int64GetDatum(ARCHIVER_LOCK_KEY)));
	strlcpy(archiver_dbname, get_database_name(MyDatabaseId), NAMEDATALEN);
	CommitTransactionCommand();
	if (!locked)
		proc_exit(0);

	runcontext = AllocSetContextCreate(TopMemoryContext, "chatstore archiver run",
									   ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		long		wait_ms = -1;
		int			events = WL_LATCH_SET | WL_EXIT_ON_PM_DEATH;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		if (chatstore_archive_interval > 0)
		{
			TimestampTz next = TimestampTzPlusMilliseconds(last_run,
														   (int64) chatstore_archive_interval * 1000);
			TimestampTz now = GetCurrentTimestamp();

			if (now >= next)
			{
				last_run = now;
				if (RecoveryInProgress())
					;			/* a standby: the primary archives */
				else if (!ExtensionExists())
				{
					if (!said_missing)
						ereport(LOG,
								(errmsg("chatstore: extension chatstore is not created in database \"%s\"; the archiver waits",
										archiver_dbname)));
					said_missing = true;
				}
				else
				{
					MemoryContext oldcontext = MemoryContextSwitchTo(runcontext);

					said_missing = false;
					ArchiverRun();
					MemoryContextSwitchTo(oldcontext);
					MemoryContextReset(runcontext);
				}
				continue;		/* look at the settings and the clock again */
			}
			wait_ms = (long) ((next - now + 999) / 1000);
			events |= WL_TIMEOUT;
		}
		(void) WaitLatch(MyLatch, events, wait_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
