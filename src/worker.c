/*
 * worker.c
 *	  The background archiver: archives idle conversations and purges old
 *	  archive on a schedule, in every database named in
 *	  chatstore.database_names, when chatstore is in shared_preload_libraries.
 *
 * It is built as autovacuum is.  A launcher, connected to no database, wakes
 * when a database is due (every chatstore.archive_interval) and starts for it
 * a short-lived archiver: a dynamic background worker that connects to that
 * database, does one run -- archives in batches of
 * chatstore.archive_batch_size conversations, one transaction per batch,
 * then purges what chatstore.purge_after allows -- records the run in
 * chatstore.archive_run, logs it in one line and exits.  No connection is
 * held between runs, so DROP DATABASE, ALTER DATABASE ... RENAME and
 * CREATE DATABASE ... TEMPLATE of a listed database work (they wait up to
 * five seconds for a run in progress to end).
 *
 * Failures never storm.  The launcher keeps, per database, the time of the
 * last start and a count of consecutive failures: a failed run is retried
 * after 5, 10 and 20 seconds, then once per archive_interval (never more
 * often than that), each attempt logging one line.  A database that does not
 * exist, does not allow connections, or lacks the extension is skipped with
 * one log line (repeated only after a reload or a change) and looked at
 * again every archive_interval.  An error while recording a run is logged in
 * the run's line; it never kills the archiver.
 *
 * No orphans: the launcher ends its archivers when it exits, and a new
 * launcher finds, in a registry in shared memory, any archiver an earlier one
 * left, ends it and waits for it before starting that database again.  An
 * archiver also stops between batches when a reload removes its database
 * from chatstore.database_names or sets archive_interval to 0.
 *
 * One archiver per database at a time: besides the registry, an archiver
 * holds for its run a session lock on the chatstore extension object of its
 * database (ExclusiveLock; not waited for).  Unlike an advisory lock, no
 * role without ownership of the extension can hold that lock: a role that
 * may only CONNECT cannot block or stop the archiver.
 *
 * Both workers behave as PostgreSQL's own: SIGHUP re-reads the settings,
 * SIGTERM ends them, they exit when the postmaster dies, and the postmaster
 * restarts the launcher 10 seconds after it ended abnormally.  The code
 * follows src/test/modules/worker_spi and src/backend/postmaster/autovacuum.c.
 */
#include "postgres.h"

#include <signal.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_database.h"
#include "catalog/pg_extension.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
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

/* Longest nap of the launcher, in milliseconds. */
#define LAUNCHER_NAP_MS			10000L

/* Nap while waiting for an archiver left by an earlier launcher. */
#define LEFTOVER_NAP_MS			500L

/* Retries of a failed run after 5, 10, 20 s (each at most archive_interval). */
#define ARCHIVER_RETRIES		3
#define ARCHIVER_RETRY_MS		5000L

/* Attempts, 100 ms apart, to take the archiver lock before skipping a run. */
#define ARCHIVER_LOCK_TRIES		10

/* Rows of chatstore.archive_run kept. */
#define ARCHIVE_RUN_KEEP		1000

/*
 * How a run ended, as the archiver reports it to the launcher in its slot.
 * A slot still at RUN_PENDING or RUN_STARTED when its worker has stopped
 * means the archiver died before it could report (a FATAL at connection, a
 * SIGTERM): a failure.
 */
typedef enum RunOutcome
{
	RUN_PENDING,				/* registered, not started yet */
	RUN_STARTED,				/* running */
	RUN_DONE,					/* the run finished */
	RUN_FAILED,					/* the run ended in an error (logged) */
	RUN_BUSY,					/* another process holds the archiver lock */
	RUN_NO_EXTENSION,			/* chatstore is not created in the database */
	RUN_STOPPED					/* stopped early: no longer wanted */
} RunOutcome;

/* One archiver in the shared registry. */
typedef struct ArchiverSlot
{
	Oid			dboid;			/* its database; InvalidOid: slot free */
	uint32		generation;		/* of the launcher that started it */
	pid_t		pid;			/* while the archiver process lives, else 0 */
	RunOutcome	outcome;
} ArchiverSlot;

/* The registry: one slot per possible background worker. */
typedef struct ArchiverShared
{
	slock_t		mutex;
	uint32		generation;		/* bumped by every launcher at start */
	int			nslots;
	ArchiverSlot slots[FLEXIBLE_ARRAY_MEMBER];
} ArchiverShared;

/* What the launcher passes an archiver in bgw_extra (bgw_main_arg: slot). */
typedef struct ArchiverArgs
{
	Oid			dboid;
	uint32		generation;
} ArchiverArgs;

/* What the launcher last logged about a database, so it logs it once. */
typedef enum DbNote
{
	NOTE_NONE,
	NOTE_MISSING,
	NOTE_NO_CONNECTIONS,
	NOTE_NO_EXTENSION
} DbNote;

/* The launcher's state of one database (launcher-local, TopMemoryContext). */
typedef struct DbState
{
	char		dbname[NAMEDATALEN];
	bool		listed;			/* still in chatstore.database_names */
	BackgroundWorkerHandle *handle; /* its archiver, or NULL */
	int			slot;			/* the archiver's registry slot */
	bool		terminated;		/* asked to stop (no longer listed) */
	TimestampTz last_start;		/* last run started or skipped; 0: never */
	TimestampTz retry_at;		/* next attempt after a failure */
	int			failures;		/* consecutive failed runs */
	DbNote		noted;
} DbState;

static ArchiverShared *archiver_shared = NULL;
static uint32 launcher_generation = 0;
static List *launcher_dbs = NIL;

/* The archiver's database, for its log lines (catalogs need a transaction). */
static char archiver_dbname[NAMEDATALEN];

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Check hook of chatstore.purge_after: empty (never purge) or an interval. */
static bool
CheckPurgeAfter(char **newval, void **extra, GucSource source)
{
	return ChatstoreCheckIntervalSetting(*newval, "chatstore.purge_after", true);
}

/* Size of the archiver registry in shared memory. */
static Size
ArchiverShmemSize(void)
{
	return add_size(offsetof(ArchiverShared, slots),
					mul_size(max_worker_processes, sizeof(ArchiverSlot)));
}

/* Reserve the registry's shared memory (shmem_request_hook on PG 15+). */
static void
ArchiverShmemRequest(void)
{
#if PG_VERSION_NUM >= 150000
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(ArchiverShmemSize());
}

/* Create (or attach to) the registry, empty, at server start. */
static void
ArchiverShmemStartup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	archiver_shared = ShmemInitStruct("chatstore archivers", ArchiverShmemSize(), &found);
	if (!found)
	{
		memset(archiver_shared, 0, ArchiverShmemSize());
		SpinLockInit(&archiver_shared->mutex);
		archiver_shared->nslots = max_worker_processes;
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Define the archiver's settings and, when the library is being preloaded,
 * reserve the registry and register the launcher.  Called from _PG_init.
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

#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ArchiverShmemRequest;
#else
	ArchiverShmemRequest();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ArchiverShmemStartup;

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
 * Is dbname one of the databases in chatstore.database_names?  An invalid
 * list names none.
 */
static bool
DatabaseListed(const char *dbname)
{
	char	   *names = pstrdup(chatstore_database_names);
	List	   *list = NIL;
	ListCell   *lc;
	bool		listed = false;

	if (SplitGUCList(names, ',', &list))
		foreach(lc, list)
			if (strcmp((char *) lfirst(lc), dbname) == 0)
				listed = true;
	list_free(list);
	pfree(names);
	return listed;
}

/*
 * Look a database up by name: its OID (InvalidOid when there is none) and
 * whether it accepts connections (datallowconn, and not left invalid by an
 * interrupted DROP DATABASE).  The launcher is connected to no database, so
 * it reads pg_database with a plain heap scan, as the autovacuum launcher
 * does: index scans need the relation cache of a database.
 */
static Oid
LookupDatabase(const char *dbname, bool *allowconn)
{
	Oid			dboid = InvalidOid;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;

	*allowconn = false;
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
			*allowconn = db->datallowconn;
#ifdef DATCONNLIMIT_INVALID_DB
			if (db->datconnlimit == DATCONNLIMIT_INVALID_DB)
				*allowconn = false;
#endif
			break;
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return dboid;
}

/*
 * Start a new launcher generation: slots of earlier launchers whose archiver
 * no longer runs are freed (a registered worker that had not started yet
 * will find its slot gone and exit), and archivers still running are sent
 * SIGTERM; the launcher starts no archiver in their databases until they are
 * gone (LeftoverRunning).  An earlier launcher normally ends its archivers
 * itself (LauncherExit), so this is the safety net.
 */
static void
AdoptLeftovers(void)
{
	int			ended = 0;

	SpinLockAcquire(&archiver_shared->mutex);
	launcher_generation = ++archiver_shared->generation;
	for (int i = 0; i < archiver_shared->nslots; i++)
	{
		ArchiverSlot *slot = &archiver_shared->slots[i];

		if (!OidIsValid(slot->dboid))
			continue;
		if (slot->pid == 0)
			slot->dboid = InvalidOid;
		else
		{
			/* alive: it clears pid in its exit callback, before it is gone */
			(void) kill(slot->pid, SIGTERM);
			ended++;
		}
	}
	SpinLockRelease(&archiver_shared->mutex);

	if (ended > 0)
		ereport(LOG,
				(errmsg("chatstore launcher: ended %d archivers left by the previous launcher", ended)));
}

/*
 * Free the slots of earlier launchers' archivers that have exited; true if
 * one is still running in database dboid (InvalidOid: in any database).
 */
static bool
LeftoverRunning(Oid dboid)
{
	bool		running = false;

	SpinLockAcquire(&archiver_shared->mutex);
	for (int i = 0; i < archiver_shared->nslots; i++)
	{
		ArchiverSlot *slot = &archiver_shared->slots[i];

		if (!OidIsValid(slot->dboid) || slot->generation == launcher_generation)
			continue;
		if (slot->pid == 0)
			slot->dboid = InvalidOid;
		else if (!OidIsValid(dboid) || slot->dboid == dboid)
			running = true;
	}
	SpinLockRelease(&archiver_shared->mutex);
	return running;
}

/* Take a free registry slot for an archiver of dboid; -1 when none is free. */
static int
AllocateSlot(Oid dboid)
{
	int			found = -1;

	SpinLockAcquire(&archiver_shared->mutex);
	for (int i = 0; i < archiver_shared->nslots && found < 0; i++)
	{
		ArchiverSlot *slot = &archiver_shared->slots[i];

		if (!OidIsValid(slot->dboid))
		{
			slot->dboid = dboid;
			slot->generation = launcher_generation;
			slot->pid = 0;
			slot->outcome = RUN_PENDING;
			found = i;
		}
	}
	SpinLockRelease(&archiver_shared->mutex);
	return found;
}

/* Free a slot of this launcher and return what its archiver reported. */
static RunOutcome
ReleaseSlot(int slotno)
{
	ArchiverSlot *slot = &archiver_shared->slots[slotno];
	RunOutcome	outcome;

	SpinLockAcquire(&archiver_shared->mutex);
	outcome = slot->outcome;
	if (slot->generation == launcher_generation)
		slot->dboid = InvalidOid;
	SpinLockRelease(&archiver_shared->mutex);
	return outcome;
}

/*
 * Register an archiver for one database; NULL when no background worker
 * slot is free.
 */
static BackgroundWorkerHandle *
StartArchiver(const char *dbname, Oid dboid, int slotno)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	ArchiverArgs args = {dboid, launcher_generation};

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "chatstore");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "chatstore_archiver_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "chatstore archiver for database %s", dbname);
	snprintf(worker.bgw_type, BGW_MAXLEN, "chatstore archiver");
	worker.bgw_main_arg = Int32GetDatum(slotno);
	memcpy(worker.bgw_extra, &args, sizeof(args));
	worker.bgw_notify_pid = MyProcPid;
	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		return NULL;
	return handle;
}

/*
 * Delay before the next attempt after the given number of consecutive
 * failures, in milliseconds: 5, 10 and 20 seconds, then archive_interval;
 * never longer than archive_interval (a failing database is not tried less
 * often than a healthy one runs).
 */
static long
RetryDelay(int failures)
{
	long		interval_ms = (long) chatstore_archive_interval * 1000;
	long		delay = interval_ms;

	if (failures <= ARCHIVER_RETRIES)
		delay = ARCHIVER_RETRY_MS << (failures - 1);
	return Min(delay, interval_ms);
}

/* Count a failed attempt and schedule the next one. */
static void
NoteFailure(DbState *db, TimestampTz now)
{
	db->failures++;
	db->retry_at = TimestampTzPlusMilliseconds(now, RetryDelay(db->failures));
}

/*
 * Take in how the database's archiver ended (its worker has stopped): reset
 * or count failures, and log what the archiver could not log itself.
 */
static void
NoteOutcome(DbState *db, RunOutcome outcome, TimestampTz now)
{
	switch (outcome)
	{
		case RUN_DONE:
		case RUN_STOPPED:
			db->failures = 0;
			db->noted = NOTE_NONE;
			break;
		case RUN_NO_EXTENSION:
			db->failures = 0;
			if (db->noted != NOTE_NO_EXTENSION)
				ereport(LOG,
						(errmsg("chatstore: extension chatstore is not created in database \"%s\"; the archiver waits",
								db->dbname)));
			db->noted = NOTE_NO_EXTENSION;
			break;
		case RUN_FAILED:
		case RUN_BUSY:
			/* the archiver logged it */
			NoteFailure(db, now);
			break;
		case RUN_PENDING:
		case RUN_STARTED:
			NoteFailure(db, now);
			ereport(LOG,
					(errmsg("chatstore: the archiver of database \"%s\" ended before finishing its run; next attempt in %ld s",
							db->dbname, RetryDelay(db->failures) / 1000)));
			break;
	}
}

/*
 * Start a run for a database that is due, or skip it (one log line per
 * state): missing, not accepting connections, an earlier launcher's archiver
 * still there, no worker slot free.
 */
static void
LaunchRun(DbState *db, TimestampTz now)
{
	bool		allowconn;
	Oid			dboid = LookupDatabase(db->dbname, &allowconn);
	int			slotno;

	if (!OidIsValid(dboid) || !allowconn)
	{
		DbNote		note = OidIsValid(dboid) ? NOTE_NO_CONNECTIONS : NOTE_MISSING;

		if (db->noted != note)
			ereport(LOG,
					(OidIsValid(dboid)
					 ? errmsg("chatstore: database \"%s\" named in chatstore.database_names does not allow connections; skipping it",
							  db->dbname)
					 : errmsg("chatstore: database \"%s\" named in chatstore.database_names does not exist; skipping it",
							  db->dbname)));
		db->noted = note;
		db->failures = 0;
		db->last_start = now;	/* look again in archive_interval */
		return;
	}
	if (db->noted == NOTE_MISSING || db->noted == NOTE_NO_CONNECTIONS)
		db->noted = NOTE_NONE;
	if (LeftoverRunning(dboid))
		return;					/* the nap is short while one remains */

	slotno = AllocateSlot(dboid);
	if (slotno >= 0)
		db->handle = StartArchiver(db->dbname, dboid, slotno);
	if (db->handle == NULL)
	{
		if (slotno >= 0)
			(void) ReleaseSlot(slotno);
		NoteFailure(db, now);
		ereport(LOG,
				(errmsg("chatstore: no background worker slot is free for the archiver of database \"%s\"; next attempt in %ld s",
						db->dbname, RetryDelay(db->failures) / 1000),
				 errhint("Raise max_worker_processes.")));
		return;
	}
	db->slot = slotno;
	db->terminated = false;
	db->last_start = now;
}

/*
 * One round of the launcher: follow chatstore.database_names, take in the
 * archivers that ended, stop those of databases no longer named, start the
 * runs that are due.  Returns how long to nap, in milliseconds.
 */
static long
LauncherRound(void)
{
	TimestampTz now = GetCurrentTimestamp();
	char	   *names = pstrdup(chatstore_database_names);
	List	   *wanted = NIL;
	List	   *kept = NIL;
	ListCell   *lc;
	long		nap = LAUNCHER_NAP_MS;

	if (!SplitGUCList(names, ',', &wanted))
	{
		ereport(LOG,
				(errmsg("chatstore: invalid list syntax in chatstore.database_names")));
		wanted = NIL;
	}

	foreach(lc, launcher_dbs)
		((DbState *) lfirst(lc))->listed = false;
	foreach(lc, wanted)
	{
		char	   *dbname = lfirst(lc);
		DbState    *found = NULL;
		ListCell   *lc2;

		foreach(lc2, launcher_dbs)
			if (strcmp(((DbState *) lfirst(lc2))->dbname, dbname) == 0)
				found = lfirst(lc2);
		if (found == NULL)
		{
			found = MemoryContextAllocZero(TopMemoryContext, sizeof(DbState));
			strlcpy(found->dbname, dbname, NAMEDATALEN);
			launcher_dbs = lappend(launcher_dbs, found);
		}
		found->listed = true;
	}

	foreach(lc, launcher_dbs)
	{
		DbState    *db = lfirst(lc);
		pid_t		pid;

		if (db->handle != NULL)
		{
			if (GetBackgroundWorkerPid(db->handle, &pid) == BGWH_STOPPED)
			{
				RunOutcome	outcome = ReleaseSlot(db->slot);

				pfree(db->handle);
				db->handle = NULL;
				if (db->listed && !db->terminated)
					NoteOutcome(db, outcome, now);
			}
			else if (!db->listed && !db->terminated)
			{
				TerminateBackgroundWorker(db->handle);
				db->terminated = true;
			}
		}
		if (db->listed || db->handle != NULL)
			kept = lappend(kept, db);
		else
			pfree(db);
	}
	list_free(launcher_dbs);
	launcher_dbs = kept;

	if (LeftoverRunning(InvalidOid))
		nap = LEFTOVER_NAP_MS;
	if (chatstore_archive_interval > 0)
	{
		foreach(lc, launcher_dbs)
		{
			DbState    *db = lfirst(lc);
			TimestampTz due;
			long		secs;
			int			usecs;

			if (!db->listed || db->handle != NULL)
				continue;
			due = db->failures > 0 ? db->retry_at :
				TimestampTzPlusMilliseconds(db->last_start, (int64) chatstore_archive_interval * 1000);
			if (db->last_start == 0 || due <= now)
			{
				LaunchRun(db, now);
				if (db->handle != NULL)
					continue;
				due = db->failures > 0 ? db->retry_at :
					TimestampTzPlusMilliseconds(db->last_start, (int64) chatstore_archive_interval * 1000);
				if (due <= now)
				{
					nap = Min(nap, LEFTOVER_NAP_MS);
					continue;
				}
			}
			TimestampDifference(now, due, &secs, &usecs);
			nap = Min(nap, secs * 1000 + (usecs + 999) / 1000);
		}
	}
	list_free(wanted);
	pfree(names);
	return Max(nap, 1);
}

/*
 * Exit callback of the launcher: end the archivers it started, so that none
 * is left behind without a launcher.
 */
static void
LauncherExit(int code, Datum arg)
{
	ListCell   *lc;

	foreach(lc, launcher_dbs)
	{
		DbState    *db = lfirst(lc);

		if (db->handle != NULL)
			TerminateBackgroundWorker(db->handle);
	}
}

/*
 * Main function of the launcher.
 */
void
chatstore_launcher_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	before_shmem_exit(LauncherExit, (Datum) 0);

	AdoptLeftovers();
	ereport(LOG, (errmsg("chatstore launcher started")));
	for (;;)
	{
		MemoryContext oldcontext;
		long		nap;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ListCell   *lc;

			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			foreach(lc, launcher_dbs)	/* say again what is still wrong */
				((DbState *) lfirst(lc))->noted = NOTE_NONE;
		}
		oldcontext = MemoryContextSwitchTo(TopMemoryContext);
		nap = LauncherRound();
		MemoryContextSwitchTo(oldcontext);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 nap, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * Take the registry slot the launcher gave this archiver; false when it is
 * no longer ours (a new launcher freed it before this worker started).
 */
static bool
ClaimSlot(int slotno, const ArchiverArgs *args)
{
	ArchiverSlot *slot;
	bool		ours;

	if (archiver_shared == NULL || slotno < 0 || slotno >= archiver_shared->nslots)
		return false;
	slot = &archiver_shared->slots[slotno];
	SpinLockAcquire(&archiver_shared->mutex);
	ours = slot->dboid == args->dboid && slot->generation == args->generation &&
		slot->outcome == RUN_PENDING;
	if (ours)
	{
		slot->pid = MyProcPid;
		slot->outcome = RUN_STARTED;
	}
	SpinLockRelease(&archiver_shared->mutex);
	return ours;
}

/* Report how the run ended, for the launcher. */
static void
SetOutcome(int slotno, RunOutcome outcome)
{
	ArchiverSlot *slot = &archiver_shared->slots[slotno];

	SpinLockAcquire(&archiver_shared->mutex);
	if (slot->pid == MyProcPid)
		slot->outcome = outcome;
	SpinLockRelease(&archiver_shared->mutex);
}

/*
 * Exit callback of an archiver: release the archiver lock and mark its slot
 * as no longer running.  It runs after the transaction, if any, has been
 * aborted (it is registered before the connection's own callbacks).  A
 * session lock is released by the abort of a transaction but not by the end
 * of the process, so it is released here, as ProcReleaseLocks would at an
 * abort.
 */
static void
ArchiverExit(int code, Datum arg)
{
	ArchiverSlot *slot = &archiver_shared->slots[DatumGetInt32(arg)];

	if (MyProc != NULL && !IsTransactionOrTransactionBlock())
		LockReleaseAll(DEFAULT_LOCKMETHOD, true);

	SpinLockAcquire(&archiver_shared->mutex);
	if (slot->pid == MyProcPid)
		slot->pid = 0;
	SpinLockRelease(&archiver_shared->mutex);
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
	ChatstoreCheckTriggers();	/* the archiver writes as a superuser too */
}

/*
 * Commit what BeginWork started and report the table statistics (rows
 * inserted and deleted), so that autovacuum sees the archiver's work.  Not
 * forced: during a long run they are sent at most once a second (as a
 * backend sends them), and whatever is left when the archiver exits.
 */
static void
EndWork(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
}

/*
 * Has a reload asked this archiver to stop: its database no longer named in
 * chatstore.database_names, or archive_interval set to 0?
 */
static bool
StopRequested(void)
{
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
	return chatstore_archive_interval == 0 || !DatabaseListed(archiver_dbname);
}

/*
 * Record a run in chatstore.archive_run, keeping the newest rows only, and
 * log it in one line.  A failure to record it (a read-only database, a full
 * disk, a dropped table) is told in that same line and is not an error: the
 * archiver goes on and the launcher schedules the next run.
 */
static void
RecordRun(TimestampTz started, int64 archived, int64 archived_messages,
		  int64 purged, int64 purged_messages, const char *error, const char *note)
{
	static const Oid argtypes[7] = {TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, INT8OID,
	INT8OID, INT8OID, TEXTOID};
	TimestampTz finished = GetCurrentTimestamp();
	Datum		args[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	MemoryContext oldcontext = CurrentMemoryContext;
	char	   *unrecorded = NULL;

	args[0] = TimestampTzGetDatum(started);
	args[1] = TimestampTzGetDatum(finished);
	args[2] = Int64GetDatum(archived);
	args[3] = Int64GetDatum(archived_messages);
	args[4] = Int64GetDatum(purged);
	args[5] = Int64GetDatum(purged_messages);
	args[6] = error ? CStringGetTextDatum(error) : (Datum) 0;
	nulls[6] = error ? ' ' : 'n';

	PG_TRY();
	{
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
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(oldcontext);
		unrecorded = edata->message;
	}
	PG_END_TRY();

	ereport(LOG,
			(errmsg("chatstore archiver in database \"%s\": archived %lld conversations (%lld messages), purged %lld conversations (%lld messages) in %ld ms%s%s%s%s%s",
					archiver_dbname,
					(long long) archived, (long long) archived_messages,
					(long long) purged, (long long) purged_messages,
					(long) ((finished - started) / 1000),
					error ? "; error: " : "", error ? error : "",
					unrecorded ? "; not recorded in chatstore.archive_run: " : "",
					unrecorded ? unrecorded : "",
					note ? note : "")));
}

/*
 * One run of the archiver: archive idle conversations batch by batch, one
 * transaction each, then purge; record and log the run.  An error ends the
 * run and is recorded; the launcher schedules the retry.  A reload that asks
 * the archiver to stop ends the run between batches.
 */
static RunOutcome
ArchiverRun(void)
{
	Actor		everyone = {ACTOR_ADMIN, NULL};
	TimestampTz started = GetCurrentTimestamp();
	volatile int64 archived = 0,
				archived_messages = 0,
				purged = 0,
				purged_messages = 0;
	volatile bool stopped = false;
	MemoryContext runcontext = CurrentMemoryContext;
	char	   *error = NULL;

	PG_TRY();
	{
		for (;;)
		{
			int64		n;
			int64		messages = 0;

			CHECK_FOR_INTERRUPTS();
			if (StopRequested())
			{
				stopped = true;
				break;
			}
			BeginWork();
			pgstat_report_activity(STATE_RUNNING, "chatstore: archiving a batch");
			n = ArchiveIdle(ChatstoreIntervalAgo("chatstore.archive_after", chatstore_archive_after, NULL,
												 "chatstore.archive_after"),
							chatstore_archive_batch_size, &everyone, &messages);
			EndWork();
			archived += n;
			archived_messages += messages;
			if (n < chatstore_archive_batch_size)
				break;
		}
		if (!stopped && chatstore_purge_after != NULL && chatstore_purge_after[0] != '\0')
		{
			int64		n;
			int64		messages = 0;

			BeginWork();
			pgstat_report_activity(STATE_RUNNING, "chatstore: purging");
			n = PurgeArchived(ChatstoreIntervalAgo("chatstore.purge_after", chatstore_purge_after, NULL,
												   "chatstore.purge_after"),
							  &everyone, &messages);
			EndWork();
			purged = n;
			purged_messages = messages;
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(runcontext);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(runcontext);
		error = edata->message;
	}
	PG_END_TRY();

	pgstat_report_activity(STATE_RUNNING, "chatstore: recording the run");
	RecordRun(started, archived, archived_messages, purged, purged_messages, error,
			  stopped ? "; stopped: the database is no longer in chatstore.database_names or archiving is off" : NULL);
	pgstat_report_activity(STATE_IDLE, NULL);
	if (error != NULL)
		return RUN_FAILED;
	return stopped ? RUN_STOPPED : RUN_DONE;
}

/*
 * Take the archiver lock of this database for the rest of the run:
 * ExclusiveLock on the chatstore extension object, a session lock (released
 * by ArchiverExit, or by the abort of a transaction), never waited for.  Only the extension's owner can lock that object (by
 * ALTER, COMMENT ON or DROP EXTENSION), so no application role can hold it;
 * the few tries, 100 ms apart, pass over such a statement in progress.
 */
static bool
LockArchiver(Oid extoid)
{
	LOCKTAG		tag;

	SET_LOCKTAG_OBJECT(tag, MyDatabaseId, ExtensionRelationId, extoid, 0);
	for (int i = 0; i < ARCHIVER_LOCK_TRIES; i++)
	{
		if (i > 0)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 100L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		if (LockAcquireExtended(&tag, ExclusiveLock, true, true, true, NULL) != LOCKACQUIRE_NOT_AVAIL)
			return true;
	}
	return false;
}

/*
 * Main function of an archiver: one run in one database, then exit.  The
 * argument is its registry slot; bgw_extra holds its database and launcher
 * generation.
 */
void
chatstore_archiver_main(Datum main_arg)
{
	int			slotno = DatumGetInt32(main_arg);
	ArchiverArgs args;
	Oid			extoid;
	bool		citus_worker = false;
	RunOutcome	outcome;

	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	if (!ClaimSlot(slotno, &args))
		proc_exit(0);
	before_shmem_exit(ArchiverExit, Int32GetDatum(slotno));

	BackgroundWorkerInitializeConnectionByOid(args.dboid, InvalidOid, 0);
	pgstat_report_appname("chatstore archiver");
	/* the default plan_cache_mode whatever the database's settings: see ChatstorePinPlanCacheMode */
	SetConfigOption("plan_cache_mode", "auto", PGC_SUSET, PGC_S_OVERRIDE);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	strlcpy(archiver_dbname, get_database_name(MyDatabaseId), NAMEDATALEN);
	extoid = get_extension_oid("chatstore", true);
	/* a Citus worker holds shards of the coordinator's tables: the coordinator's archiver archives them */
	if (OidIsValid(extoid) && !RecoveryInProgress())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		citus_worker = ChatstoreCitusWorker();
		PopActiveSnapshot();
	}
	CommitTransactionCommand();

	if (RecoveryInProgress() || StopRequested() || citus_worker)
		outcome = RUN_STOPPED;	/* a standby (the primary archives), a Citus worker, or unwanted */
	else if (!OidIsValid(extoid))
		outcome = RUN_NO_EXTENSION;
	else if (!LockArchiver(extoid))
	{
		ereport(LOG,
				(errmsg("chatstore archiver in database \"%s\": another process holds the archiver lock (extension chatstore); skipping this run",
						archiver_dbname)));
		outcome = RUN_BUSY;
	}
	else
		outcome = ArchiverRun();

	SetOutcome(slotno, outcome);
	proc_exit(0);
}
