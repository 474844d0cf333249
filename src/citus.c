/*
 * citus.c
 *	  chatstore on a Citus cluster: chatstore.distribute() and what the other
 *	  modules ask about a distributed install.
 *
 * Citus is never needed to build or load chatstore: it is detected at run
 * time (the extension citus in this database, then its catalog
 * pg_dist_partition), and its functions are called through SQL.
 *
 * A distributed install: conversation (by id), message, conversation_tag
 * and archived_message (by conversation_id) are distributed tables,
 * colocated, so that every row of one conversation lives on one worker and a
 * call about one conversation is routed to that worker alone.  admin_role and
 * archive_run stay plain tables: admin_role exists on every node (the
 * policies on the workers' shards ask is_admin(), which reads the local
 * copy; Citus refuses a reference table read from inside a shard query), and
 * chatstore keeps the copies the same (distribute() copies the rows,
 * grant_admin() and revoke() write every node); archive_run is the
 * coordinator's alone, like the archiver, which runs on the coordinator only.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "chatstore.h"

PG_FUNCTION_INFO_V1(chatstore_distribute);
PG_FUNCTION_INFO_V1(chatstore_undistribute_on_drop);

/* The chat tables in the order distribute() distributes them: conversation first, the others colocated with it. */
static const char *const distributed_tables[][2] = {
	{"chatstore.conversation", "id"},
	{"chatstore.message", "conversation_id"},
	{"chatstore.conversation_tag", "conversation_id"},
	{"chatstore.archived_message", "conversation_id"},
};

/* What ChatstoreDistributed() answered, and in which transaction. */
static LocalTransactionId distributed_lxid = InvalidLocalTransactionId;
static bool distributed_answer = false;

/* The local transaction id of the current transaction. */
static LocalTransactionId
CurrentLxid(void)
{
#if PG_VERSION_NUM >= 170000
	return MyProc->vxid.lxid;
#else
	return MyProc->lxid;
#endif
}

/*
 * Is Citus in shared_preload_libraries (under any of the names PostgreSQL
 * accepts for it)?  Citus works only when preloaded, so
 * without it nothing can be distributed.  Answered once per backend (the
 * setting changes only with a restart) from the setting's text, without a
 * catalog lookup: this is what the Citus support costs a server without it.
 */
static bool
CitusPreloaded(void)
{
	static int	preloaded = -1;

	if (preloaded < 0)
	{
		const char *libs = GetConfigOption("shared_preload_libraries", true, false);
		char	   *copy = pstrdup(libs ? libs : "");
		List	   *names = NIL;
		ListCell   *lc;

		preloaded = 0;
		/* parsed as PostgreSQL parses it: citus, "citus", $libdir/citus, citus.so, /path/citus.so */
		if (SplitDirectoriesString(copy, ',', &names))
			foreach(lc, names)
			{
				char	   *name = lfirst(lc);
				char	   *base = strrchr(name, '/');
				size_t		len;

				base = base ? base + 1 : name;
				len = strlen(base);
				if (len > strlen(DLSUFFIX) && strcmp(base + len - strlen(DLSUFFIX), DLSUFFIX) == 0)
					len -= strlen(DLSUFFIX);
				if (len == 5 && strncmp(base, "citus", 5) == 0)
					preloaded = 1;
			}
		list_free_deep(names);
		pfree(copy);
	}
	return preloaded == 1;
}

/*
 * Is the extension citus created in this database?  Nothing to look up when
 * Citus is not preloaded; otherwise one catalog lookup.
 */
bool
ChatstoreCitusPresent(void)
{
	return CitusPreloaded() && OidIsValid(get_extension_oid("citus", true));
}

/*
 * Are chatstore's tables distributed (chatstore.distribute() has run)?  True
 * on the coordinator and on the workers (which have Citus's metadata too).
 * Asked once per transaction; connects to SPI itself, so any caller may ask.
 */
bool
ChatstoreDistributed(void)
{
	LocalTransactionId lxid = CurrentLxid();

	if (distributed_lxid == lxid && lxid != InvalidLocalTransactionId)
		return distributed_answer;
	distributed_answer = false;
	if (ChatstoreCitusPresent())
	{
		bool		isnull;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "chatstore: SPI_connect failed");
		if (SPI_execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition"
						" WHERE logicalrelid OPERATOR(pg_catalog.=)"
						"       pg_catalog.to_regclass('chatstore.conversation'))",
						false, 1) != SPI_OK_SELECT)
			elog(ERROR, "chatstore: pg_dist_partition lookup failed");
		distributed_answer = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
														SPI_tuptable->tupdesc, 1, &isnull));
		SPI_finish();
	}
	distributed_lxid = lxid;
	return distributed_answer;
}

/*
 * Is this database a Citus worker's (Citus installed, and this node's group
 * is not the coordinator's, 0)?  Connects to SPI itself.
 */
bool
ChatstoreCitusWorker(void)
{
	bool		worker = false;

	if (ChatstoreCitusPresent())
	{
		bool		isnull;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "chatstore: SPI_connect failed");
		if (SPI_execute("SELECT groupid OPERATOR(pg_catalog.<>) 0 FROM pg_catalog.pg_dist_local_group",
						true, 1) != SPI_OK_SELECT)
			elog(ERROR, "chatstore: pg_dist_local_group lookup failed");
		worker = SPI_processed == 1 &&
			DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		SPI_finish();
	}
	return worker;
}

/*
 * Run one statement on every worker of a distributed install (nothing
 * otherwise), raising an error with the worker's message when one fails.
 * Citus runs it in a connection of its own on each worker, committed there
 * at once: only idempotent statements.  Requires SPI.
 */
void
ChatstoreRunOnWorkers(const char *sql)
{
	static const Oid argtypes[1] = {TEXTOID};
	Datum		args[1];

	if (!ChatstoreDistributed())
		return;
	args[0] = CStringGetTextDatum(sql);
	if (SPI_execute_with_args("SELECT nodename, nodeport, result FROM pg_catalog.run_command_on_workers($1)"
							  " WHERE NOT success",
							  1, (Oid *) argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "chatstore: run_command_on_workers failed");
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not run a statement on Citus worker %s:%s",
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2)),
				 errdetail("The worker answered: %s", SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3)),
				 errhint("Check that every worker is up (SELECT * FROM pg_catalog.citus_check_cluster_node_health()), then try again.")));
}

/*
 * Raise 55000 when a worker of a distributed install does not see
 * chatstore's table of admin roles from a connection of its own, as
 * ChatstoreRunOnWorkers uses: in the transaction that created chatstore,
 * Citus creates it on the workers over this transaction's connections, and
 * it is there for other connections only after the commit.  Admin roles
 * written then could not reach the workers (whose admin_role would lack
 * them after the commit).  Nothing on one node.  Requires SPI.
 */
void
ChatstoreCheckWorkersSeeChatstore(void)
{
	if (!ChatstoreDistributed())
		return;
	if (SPI_execute("SELECT nodename, nodeport FROM pg_catalog.run_command_on_workers("
					"'SELECT pg_catalog.to_regclass(''chatstore.admin_role'') IS NOT NULL')"
					" WHERE success AND result OPERATOR(pg_catalog.<>) 't'",
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "chatstore: run_command_on_workers failed");
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot write chatstore's admin roles on workers that do not see chatstore yet"),
				 errdetail("Citus worker %s:%s gets chatstore in this transaction, which created it; chatstore writes the workers' admin roles over connections of their own, which see it only after the commit.",
						   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
						   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2)),
				 errhint("Commit CREATE EXTENSION chatstore first, then call chatstore.distribute(), chatstore.grant_admin() and chatstore.revoke() in transactions of their own.")));
}

/*
 * Run a query through SPI that must succeed; returns the first column of
 * its first row as text (NULL when there is none).
 */
static char *
RunQuery(const char *sql, int nargs, Oid *argtypes, Datum *args)
{
	int			rc = SPI_execute_with_args(sql, nargs, argtypes, args, NULL, false, 0);

	if (rc < 0)
		elog(ERROR, "chatstore: \"%s\" failed: %s", sql, SPI_result_code_string(rc));
	if (SPI_tuptable == NULL || SPI_processed == 0)
		return NULL;
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/*
 * Copy the rows of chatstore.admin_role to the workers: is_admin() reads
 * them in the workers' policies.  (The policies also need EXECUTE on
 * is_admin() for the roles that read through the coordinator: the install
 * script grants it to PUBLIC on a Citus worker.)  Requires SPI.
 */
static void
CopyAdminRoles(void)
{
	char	   *sql;

	sql = RunQuery("SELECT 'INSERT INTO chatstore.admin_role (role_name) VALUES '"
				   " OPERATOR(pg_catalog.||) pg_catalog.string_agg(pg_catalog.format('(%L)', role_name), ', ')"
				   " OPERATOR(pg_catalog.||) ' ON CONFLICT (role_name) DO NOTHING'"
				   " FROM chatstore.admin_role HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 0",
				   0, NULL, NULL);
	if (sql != NULL)
	{
		ChatstoreCheckWorkersSeeChatstore();
		ChatstoreRunOnWorkers(sql);
	}
}

/*
 * On the workers, let every role execute what the shards' policies and an
 * application role's own queries over the chat tables call there as that
 * role: is_admin() and the pure functions.  The install script grants the
 * same when it runs on a node that is a worker already; a worker that had
 * not joined then (group 0, as without metadata sync) gets it here.  Not
 * where chatstore is not installed yet (CREATE EXTENSION chatstore and
 * distribute() in one transaction: Citus creates it on the workers after
 * the statement, and its install script grants them then).  Requires SPI.
 */
static void
GrantWorkerFunctions(void)
{
	ChatstoreRunOnWorkers("DO $$BEGIN"
						  " IF pg_catalog.to_regprocedure('chatstore.search_rank(text, text)') IS NOT NULL THEN"
						  "  GRANT EXECUTE ON FUNCTION chatstore.is_admin(), chatstore.search_vector(text, text),"
						  "   chatstore.search_query(text, text), chatstore.search_rank(text, text),"
						  "   chatstore.estimate_tokens(text), chatstore.uuidv7() TO PUBLIC;"
						  " END IF; END$$");
}

/*
 * chatstore.distribute(shard_count integer DEFAULT 32) RETURNS boolean
 *
 * On a Citus coordinator: distributes the chat tables by conversation id,
 * colocated (conversation first, then message, conversation_tag and the
 * archive with its month partitions), moving the rows they have to the
 * workers and emptying the coordinator's local copies, with this month's and
 * next month's archive partitions made ahead; copies the admin roles to
 * every worker and grants there what its shard queries call; and
 * makes SET LOCAL
 * chatstore.user_id reach the workers in new sessions of this database
 * (citus.propagate_set_commands = 'local'), for the row-level security of
 * roles that read the tables directly.  True when it distributed; false,
 * with a notice, when the tables were distributed already.  Superusers only.
 */
Datum
chatstore_distribute(PG_FUNCTION_ARGS)
{
	int32		shard_count;
	int			nestlevel;
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1];
	char	   *answer;

	ChatstoreRequireArg(fcinfo, 0, "shard_count");
	shard_count = PG_GETARG_INT32(0);
	if (shard_count < 1 || shard_count > 64000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("shard_count must be between 1 and 64000"),
				 errdetail("Pass the number of shards of each table, such as 32 (a few per worker core).")));
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to distribute chatstore"),
				 errdetail("Only a superuser may call chatstore.distribute().")));
	if (!ChatstoreCitusPresent())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("Citus is not installed in this database"),
				 errhint("Add citus to shared_preload_libraries, run CREATE EXTENSION citus here and on every worker, add the workers with citus_add_node(), then call chatstore.distribute() again.")));
	if (ChatstoreCitusWorker())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this server is a Citus worker"),
				 errhint("Call chatstore.distribute() on the coordinator.")));
	distributed_lxid = InvalidLocalTransactionId;
	if (ChatstoreDistributed())
	{
		ereport(NOTICE,
				(errmsg("chatstore is distributed already")));
		PG_RETURN_BOOL(false);
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "chatstore: SPI_connect failed");
	/* Citus's notices about copying and the local copies: this function empties those itself */
	nestlevel = NewGUCNestLevel();
	ChatstorePinSetting("client_min_messages", "warning");
	ChatstorePinSetting("search_path", "pg_catalog, pg_temp");
	/*
	 * one connection per worker: a transaction that has run a parallel
	 * operation on a distributed table cannot then run an extension command
	 * (CREATE EXTENSION chatstore followed by distribute() in one transaction)
	 */
	ChatstorePinSetting("citus.multi_shard_modify_mode", "sequential");
	/*
	 * this month's and next month's archive partitions, as an archive call
	 * makes them, distributed with the archive below: otherwise the store's
	 * first archive call would make them on every node, DDL that Citus
	 * refuses in a transaction that has read the chat tables over several
	 * connections
	 */
	EnsureArchivePartitions(GetCurrentTimestamp());

	for (int i = 0; i < (int) lengthof(distributed_tables); i++)
	{
		Oid			types[2] = {TEXTOID, TEXTOID};
		Datum		values[2] = {CStringGetTextDatum(distributed_tables[i][0]),
		CStringGetTextDatum(distributed_tables[i][1])};

		if (i == 0)
		{
			args[0] = Int32GetDatum(shard_count);
			(void) RunQuery("SELECT pg_catalog.create_distributed_table('chatstore.conversation', 'id',"
							" shard_count => $1, colocate_with => 'none')",
							1, argtypes, args);
		}
		else
			(void) RunQuery("SELECT pg_catalog.create_distributed_table($1::pg_catalog.regclass, $2,"
							" colocate_with => 'chatstore.conversation')",
							2, types, values);
	}
	/* the rows were copied to the shards; the local copies keep them on disk until truncated (children first) */
	for (int i = (int) lengthof(distributed_tables) - 1; i >= 0; i--)
	{
		Oid			types[1] = {TEXTOID};
		Datum		values[1] = {CStringGetTextDatum(distributed_tables[i][0])};

		(void) RunQuery("SELECT pg_catalog.truncate_local_data_after_distributing_table($1::pg_catalog.regclass)",
						1, types, values);
	}
	distributed_lxid = InvalidLocalTransactionId;
	CopyAdminRoles();
	GrantWorkerFunctions();

	answer = RunQuery("SELECT pg_catalog.format('ALTER DATABASE %I SET citus.propagate_set_commands = local',"
					  " pg_catalog.current_database())", 0, NULL, NULL);
	(void) RunQuery(answer, 0, NULL, NULL);

	AtEOXact_GUC(true, nestlevel);
	SPI_finish();
	PG_RETURN_BOOL(true);
}

/*
 * The event trigger chatstore_undistribute_on_drop (ddl_command_start of DROP
 * EXTENSION): when the statement drops chatstore and its tables are
 * distributed, removes their shards from the workers and their Citus
 * metadata first, as Citus does for a dropped table (its own drop trigger
 * does not see the tables an extension takes with it), so that DROP
 * EXTENSION chatstore leaves nothing behind on the workers.  Any other DROP
 * EXTENSION costs a look at the statement.
 */
Datum
chatstore_undistribute_on_drop(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	DropStmt   *stmt;
	bool		chatstore = false;
	ListCell   *lc;
	SPITupleTable *tuptable;
	uint64		n;
	int			nestlevel;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		elog(ERROR, "chatstore: not fired by an event trigger");
	trigdata = (EventTriggerData *) fcinfo->context;
	if (!IsA(trigdata->parsetree, DropStmt))
		PG_RETURN_VOID();
	stmt = (DropStmt *) trigdata->parsetree;
	if (stmt->removeType != OBJECT_EXTENSION)
		PG_RETURN_VOID();
	foreach(lc, stmt->objects)
	{
		if (IsA(lfirst(lc), String) && strcmp(strVal(lfirst(lc)), "chatstore") == 0)
			chatstore = true;
	}
	distributed_lxid = InvalidLocalTransactionId;
	if (!chatstore || !ChatstoreDistributed())
		PG_RETURN_VOID();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "chatstore: SPI_connect failed");
	/* one connection per worker, so that a CREATE EXTENSION later in the transaction sees the drop */
	nestlevel = NewGUCNestLevel();
	ChatstorePinSetting("citus.multi_shard_modify_mode", "sequential");
	/* the archive's partitions, the tables that reference conversation, then conversation */
	(void) RunQuery("SELECT p.logicalrelid, c.relname FROM pg_catalog.pg_dist_partition p"
					" JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.logicalrelid"
					" WHERE c.relnamespace OPERATOR(pg_catalog.=) 'chatstore'::pg_catalog.regnamespace"
					" ORDER BY c.relispartition DESC, c.relname OPERATOR(pg_catalog.=) 'conversation', c.relname",
					0, NULL, NULL);
	tuptable = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		Oid			types[3] = {REGCLASSOID, TEXTOID, TEXTOID};
		bool		isnull;
		Datum		values[3] = {SPI_getbinval(tuptable->vals[i], tuptable->tupdesc, 1, &isnull),
			CStringGetTextDatum("chatstore"),
		CStringGetTextDatum(SPI_getvalue(tuptable->vals[i], tuptable->tupdesc, 2))};

		(void) RunQuery("SELECT pg_catalog.citus_drop_all_shards($1, $2, $3)", 3, types, values);
		(void) RunQuery("SELECT pg_catalog.master_remove_distributed_table_metadata_from_workers($1, $2, $3)",
						3, types, values);
		(void) RunQuery("SELECT pg_catalog.master_remove_partition_metadata($1, $2, $3)", 3, types, values);
	}
	AtEOXact_GUC(true, nestlevel);
	SPI_finish();
	distributed_lxid = InvalidLocalTransactionId;
	PG_RETURN_VOID();
}
