/*
 * chatstore.c
 *	  Module entry point, settings, and helpers shared by every capability.
 *
 * _PG_init defines the chatstore.* settings and reserves the prefix.  The
 * helpers below keep the other files short: a cache of prepared SPI plans,
 * argument checks with the documented SQLSTATEs, and the code that turns a
 * row read through SPI into a row of the function's declared result type.
 */
#include "postgres.h"

#include <limits.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/syscache.h"
#if PG_VERSION_NUM >= 160000
#include "nodes/miscnodes.h"
#endif

#include "chatstore.h"

#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

PG_MODULE_MAGIC;

char	   *chatstore_archive_after = NULL;
char	   *chatstore_user_id = NULL;
int			chatstore_user_id_scope = USER_ID_SCOPE_SESSION;

static const struct config_enum_entry user_id_scope_options[] = {
	{"session", USER_ID_SCOPE_SESSION, false},
	{"transaction", USER_ID_SCOPE_TRANSACTION, false},
	{NULL, 0, false}
};

/*
 * The local transaction in which the current value of chatstore.user_id was
 * set (InvalidLocalTransactionId: outside any, or before chatstore was
 * loaded).  It is the setting's "extra", which PostgreSQL keeps with each
 * value when it stacks and restores values at SET LOCAL, savepoints and
 * transaction end, so a value restored from an earlier transaction keeps the
 * stamp of that transaction; the assign hook copies it here.
 */
static LocalTransactionId user_id_set_in = InvalidLocalTransactionId;

/*
 * True once this backend has found no trigger that a non-superuser could
 * have run as the extension's owner (see CheckTriggers); any relcache
 * invalidation, such as CREATE TRIGGER sends for its table, clears it.
 */
static bool triggers_checked = false;
static void TriggersChanged(Datum arg, Oid relid);

/* True while _PG_init defines the settings (see CheckUserId). */
static bool defining_settings = false;

void		_PG_init(void);

/*
 * Parse an interval setting without throwing: true and *result when the text
 * is a valid interval.  GUC check hooks must not raise errors.
 */
bool
ChatstoreParseInterval(const char *text, Interval *result)
{
#if PG_VERSION_NUM >= 160000
	ErrorSaveContext escontext = {T_ErrorSaveContext};
	Datum		d;

	if (!DirectInputFunctionCallSafe(interval_in, (char *) text, InvalidOid, -1,
									 (Node *) &escontext, &d))
		return false;
	*result = *DatumGetIntervalP(d);
	return true;
#else
	MemoryContext oldcontext = CurrentMemoryContext;
	volatile bool ok = true;

	PG_TRY();
	{
		Datum		d = DirectFunctionCall3(interval_in, CStringGetDatum(text),
											ObjectIdGetDatum(InvalidOid),
											Int32GetDatum(-1));

		*result = *DatumGetIntervalP(d);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcontext);
		FlushErrorState();
		ok = false;
	}
	PG_END_TRY();
	return ok;
#endif
}

/*
 * Is an interval below zero, as interval comparison sees it ('1 day -1 hour'
 * is not)?
 */
bool
ChatstoreIntervalIsNegative(Interval *iv)
{
	Interval	zero = {0};

	return DatumGetBool(DirectFunctionCall2(interval_lt, IntervalPGetDatum(iv),
											IntervalPGetDatum(&zero)));
}

/*
 * The body of the check hooks of interval settings: a non-negative interval
 * (or, when empty_ok, the empty string), with a detail naming the setting.
 */
bool
ChatstoreCheckIntervalSetting(const char *value, const char *name, bool empty_ok)
{
	Interval	iv;

	if (empty_ok && (value == NULL || value[0] == '\0'))
		return true;
	if (value == NULL || !ChatstoreParseInterval(value, &iv))
	{
		GUC_check_errdetail("%s must be %san interval, such as '90 days'.",
							name, empty_ok ? "empty or " : "");
		return false;
	}
	if (ChatstoreIntervalIsNegative(&iv))
	{
		GUC_check_errdetail("%s must not be negative.", name);
		return false;
	}
	return true;
}

/* Check hook of chatstore.archive_after. */
static bool
CheckArchiveAfter(char **newval, void **extra, GucSource source)
{
	return ChatstoreCheckIntervalSetting(*newval, "chatstore.archive_after", false);
}

/* The local id of the current top-level transaction, or invalid outside one. */
static LocalTransactionId
CurrentLocalXid(void)
{
	if (MyProc == NULL || !IsTransactionState())
		return InvalidLocalTransactionId;
#if PG_VERSION_NUM >= 170000
	return MyProc->vxid.lxid;
#else
	return MyProc->lxid;
#endif
}

/*
 * Check hook of chatstore.user_id: accepts any value and stamps it (in the
 * extra) with the transaction that sets it.  A value that comes in while the
 * library is being loaded is a placeholder's, set before chatstore was
 * loaded, maybe in an earlier transaction: it gets no stamp, so under
 * transaction scope it does not count.
 */
static bool
CheckUserId(char **newval, void **extra, GucSource source)
{
#if PG_VERSION_NUM >= 160000
	LocalTransactionId *set_in = guc_malloc(LOG, sizeof(LocalTransactionId));
#else
	LocalTransactionId *set_in = malloc(sizeof(LocalTransactionId));	/* as guc.c frees it */
#endif

	if (set_in == NULL)
		return false;
	*set_in = defining_settings ? InvalidLocalTransactionId : CurrentLocalXid();
	*extra = set_in;
	return true;
}

/* Assign hook of chatstore.user_id: remember the new value's stamp. */
static void
AssignUserId(const char *newval, void *extra)
{
	user_id_set_in = extra != NULL ? *(LocalTransactionId *) extra : InvalidLocalTransactionId;
}

/*
 * The user the current transaction acts for, or NULL when none is declared:
 * chatstore.user_id when it is not empty and, under chatstore.user_id_scope
 * = 'transaction', was set in this transaction.  *stale (when not NULL) says
 * whether a value was there but did not count.
 */
const char *
ChatstoreDeclaredUser(bool *stale)
{
	LocalTransactionId now = CurrentLocalXid();

	if (stale != NULL)
		*stale = false;
	if (chatstore_user_id == NULL || chatstore_user_id[0] == '\0')
		return NULL;
	if (chatstore_user_id_scope == USER_ID_SCOPE_TRANSACTION &&
		(user_id_set_in == InvalidLocalTransactionId || user_id_set_in != now))
	{
		if (stale != NULL)
			*stale = true;
		return NULL;
	}
	return chatstore_user_id;
}

/*
 * Show hook of chatstore.user_id: the user in effect, so that SHOW and
 * current_setting() -- which the row-level security policies read -- give
 * the empty string for a value that no longer counts.
 */
static const char *
ShowUserId(void)
{
	const char *user_id = ChatstoreDeclaredUser(NULL);

	return user_id != NULL ? user_id : "";
}

/*
 * Module load: define the settings and reserve the "chatstore" prefix, so
 * that a misspelt chatstore.* setting is reported instead of ignored.
 */
void
_PG_init(void)
{
	LimitsInit();
	TagsInit();

	DefineCustomStringVariable("chatstore.archive_after",
							   "Idle time after which chatstore.archive() archives a conversation when called without older_than.",
							   NULL,
							   &chatstore_archive_after,
							   "90 days",
							   PGC_SUSET, 0,
							   CheckArchiveAfter, NULL, NULL);

	defining_settings = true;
	DefineCustomStringVariable("chatstore.user_id",
							   "The application user this transaction acts for: chatstore functions then see only that user's conversations.",
							   "Set it per transaction with chatstore.set_user() or SET LOCAL; empty means not set.",
							   &chatstore_user_id,
							   "",
							   PGC_USERSET, 0,
							   CheckUserId, AssignUserId, ShowUserId);
	defining_settings = false;

	DefineCustomEnumVariable("chatstore.user_id_scope",
							 "How long a value of chatstore.user_id counts: for the session (like any setting) or only in the transaction that set it.",
							 NULL,
							 &chatstore_user_id_scope,
							 USER_ID_SCOPE_SESSION,
							 user_id_scope_options,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	ArchiveWorkerInit();

	CacheRegisterRelcacheCallback(TriggersChanged, (Datum) 0);
	MarkGUCPrefixReserved("chatstore");
}

/*
 * Is a role an admin in 1.0's sense: may it execute chatstore.archive()?
 * Used only while the database still has 1.0's schema (no
 * chatstore.admin_role table) under this version's library.
 */
static bool
RoleMayArchive(Oid role)
{
	Oid			argtypes[2] = {INTERVALOID, INT4OID};
	Oid			archive;

	archive = LookupFuncName(list_make2(makeString("chatstore"), makeString("archive")),
							 2, argtypes, true);
	if (!OidIsValid(archive))
		return false;
#if PG_VERSION_NUM >= 160000
	return object_aclcheck(ProcedureRelationId, archive, role, ACL_EXECUTE) == ACLCHECK_OK;
#else
	return pg_proc_aclcheck(archive, role, ACL_EXECUTE) == ACLCHECK_OK;
#endif
}

/*
 * Is a role listed in chatstore.admin_role (whose oid is given), or has it
 * the privileges of a listed role (a member that inherits)?  Reads the table
 * through SPI as its owner: app roles cannot read it.
 */
static bool
RoleInAdminTable(Oid role, Oid relid)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[1] = {OIDOID};
	HeapTuple	reltup;
	Oid			owner;
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	Datum		args[1] = {ObjectIdGetDatum(role)};
	bool		isnull;
	bool		found;

	reltup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(reltup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(reltup))->relowner;
	ReleaseSysCache(reltup);

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "chatstore: SPI_connect failed");
	if (SPI_execute_plan(ChatstorePlan(&plan,
									   "SELECT EXISTS (SELECT FROM chatstore.admin_role a"
									   "  JOIN pg_catalog.pg_roles r ON r.rolname OPERATOR(pg_catalog.=) a.role_name"
									   "  WHERE pg_catalog.pg_has_role($1, r.oid, 'USAGE'))",
									   1, argtypes),
						 args, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "chatstore: admin lookup failed");
	found = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	AtEOXact_GUC(true, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return found && !isnull;
}

/*
 * Is the calling role an admin: a superuser, or a role that
 * chatstore.grant_admin() listed in chatstore.admin_role (or a member of
 * one, with INHERIT)?  Admin status is recorded only there, so no blanket
 * GRANT on the schema's functions or tables confers it.  The calling role
 * is the current user: chatstore's functions are not SECURITY DEFINER (see
 * ChatstoreConnect), so inside someone else's SECURITY DEFINER function it
 * is that function's owner, not the session's role.
 */
bool
ChatstoreCallerIsAdmin(void)
{
	Oid			role = GetUserId();
	Oid			nsp;
	Oid			relid = InvalidOid;

	if (superuser_arg(role))
		return true;
	nsp = get_namespace_oid("chatstore", true);
	if (OidIsValid(nsp))
		relid = get_relname_relid("admin_role", nsp);
	if (!OidIsValid(relid))
		return RoleMayArchive(role);	/* 1.0's schema, not yet updated */
	return RoleInAdminTable(role, relid);
}

/*
 * Work out whom this call acts for (see Actor in chatstore.h): the declared
 * user, or every user for an admin.  Any other caller gets the one error an
 * undeclared user gets from every function (42501), before it can learn
 * anything about any conversation.
 */
void
ChatstoreGetActor(Actor *actor)
{
	bool		stale;
	const char *user_id = ChatstoreDeclaredUser(&stale);

	if (user_id != NULL)
	{
		actor->kind = ACTOR_USER;
		actor->user_id = cstring_to_text(user_id);
		return;
	}
	if (!ChatstoreCallerIsAdmin())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("chatstore.user_id is not set"),
				 stale ?
				 errdetail("chatstore.user_id was set before this transaction (or before chatstore was loaded in it), and chatstore.user_id_scope is 'transaction'.") :
				 errdetail("Role \"%s\" is not a chatstore admin, so it acts only for the user its transaction declares.",
						   GetUserNameFromId(GetUserId(), false)),
				 errhint("Call chatstore.set_user('...') in the same transaction first.")));
	actor->kind = ACTOR_ADMIN;
	actor->user_id = NULL;
}

/*
 * May the actor act on user_id's conversations: an admin on anyone's, a
 * user on its own (compared byte for byte, as the queries' "=" on text does
 * under a deterministic collation), nobody on none.
 */
bool
ChatstoreActorIs(Actor *actor, text *user_id)
{
	if (actor->kind == ACTOR_ADMIN)
		return true;
	if (actor->kind == ACTOR_NOBODY)
		return false;
	return VARSIZE_ANY_EXHDR(actor->user_id) == VARSIZE_ANY_EXHDR(user_id) &&
		memcmp(VARDATA_ANY(actor->user_id), VARDATA_ANY(user_id),
			   VARSIZE_ANY_EXHDR(user_id)) == 0;
}

/*
 * The SPI parameter that filters rows by owner: the user id, or NULL for an
 * admin acting for everyone.  Queries test "$n IS NULL OR user_id = $n".
 */
void
ChatstoreActorArg(Actor *actor, Datum *value, char *isnull)
{
	*value = actor->kind == ACTOR_USER ? PointerGetDatum(actor->user_id) : (Datum) 0;
	*isnull = actor->kind == ACTOR_USER ? ' ' : 'n';
}

/*
 * Set a setting for the current GUC nest level only, as a function's SET
 * clause does: the caller opened the level with NewGUCNestLevel() and closes
 * it with AtEOXact_GUC(true, level), or transaction abort does.
 */
void
ChatstorePinSetting(const char *name, const char *value)
{
	(void) set_config_option(name, value, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

/*
 * Relcache invalidation callback: a relation changed (a trigger may have
 * been created), so check the triggers again before the next write.
 */
static void
TriggersChanged(Datum arg, Oid relid)
{
	triggers_checked = false;
}

/*
 * Refuse to write while a table in schema chatstore has a trigger whose
 * function a non-superuser owns, or which has a WHEN clause.  chatstore
 * writes as the extension's owner, a superuser, and a trigger runs as
 * whoever fires it, WHEN clause included: such a trigger would let its
 * author act as a superuser (a WHEN clause can call a function of anyone's
 * around a superuser's trigger function).  A role gets there only through a
 * grant of TRIGGER on a chatstore table, which chatstore never makes but a
 * blanket GRANT ALL does; the event trigger chatstore_refuse_trigger
 * (privileges.c) refuses such triggers when they are made, and this check
 * catches those made before it (chatstore 1.0.x) or with event triggers
 * off.  The table's schema comes from the syscache, because Citus hides
 * shards from queries of pg_class.  Checked once per backend, and again
 * after any relation changes.  Requires SPI, connected as the owner.
 */
void
ChatstoreCheckTriggers(void)
{
	int			rc;
	Oid			schema;

	if (triggers_checked)
		return;
	triggers_checked = true;	/* an invalidation during the query clears it */
	schema = get_namespace_oid("chatstore", false);
	PG_TRY();
	{
		rc = SPI_execute("SELECT t.tgrelid, t.tgname::pg_catalog.text"
						 " FROM pg_catalog.pg_trigger t"
						 " JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) t.tgfoid"
						 " JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) p.proowner"
						 " WHERE NOT t.tgisinternal AND (NOT r.rolsuper OR t.tgqual IS NOT NULL)",
						 true, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "chatstore: trigger check failed: %s", SPI_result_code_string(rc));
	}
	PG_CATCH();
	{
		triggers_checked = false;
		PG_RE_THROW();
	}
	PG_END_TRY();
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		char	   *rel;
		char	   *trigger;

		if (get_rel_namespace(relid) != schema)
			continue;
		rel = get_rel_name(relid);
		trigger = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		triggers_checked = false;
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("chatstore will not write while table chatstore.%s has trigger %s", rel, trigger),
				 errdetail("chatstore writes as the extension's owner, a superuser, so this trigger, whose function a non-superuser owns or whose WHEN clause can call any function, would run with a superuser's rights."),
				 errhint("Drop the trigger (DROP TRIGGER %s ON chatstore.%s), and grant application roles nothing but SELECT on chatstore's tables (chatstore.grant_app does).",
						 quote_identifier(trigger), quote_identifier(rel))));
	}
}

/*
 * Connect to SPI to work on the tables as the owner of the called function
 * (the extension's owner), with search_path pinned to pg_catalog.
 *
 * This is what SECURITY DEFINER would do, but done after the function has
 * looked at who called it: a SECURITY DEFINER function could not tell the
 * role that called it from the session's role, so code of an app role run
 * by an admin would be taken for the admin.  The user id and the setting
 * are put back by ChatstoreFinish, or by transaction abort on error.
 * A writing (VOLATILE) function is refused with 25006 on a standby or in a
 * read-only transaction, before it touches anything.
 */
void
ChatstoreConnect(FunctionCallInfo fcinfo, ChatstoreCall *call)
{
	HeapTuple	proctup;
	Oid			owner;
	bool		writes;

	proctup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fcinfo->flinfo->fn_oid));
	if (!HeapTupleIsValid(proctup))
		elog(ERROR, "cache lookup failed for function %u", fcinfo->flinfo->fn_oid);
	owner = ((Form_pg_proc) GETSTRUCT(proctup))->proowner;
	writes = ((Form_pg_proc) GETSTRUCT(proctup))->provolatile == PROVOLATILE_VOLATILE;
	ReleaseSysCache(proctup);

	/* the volatile functions write: say so plainly where they cannot */
	if (writes && RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot change conversations on a standby server"),
				 errhint("Send writes to the primary; the reading functions work here.")));
	if (writes && XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot change conversations in a read-only transaction"),
				 errhint("Run it in a read-write transaction.")));

	GetUserIdAndSecContext(&call->save_userid, &call->save_sec_context);
	SetUserIdAndSecContext(owner, call->save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	call->save_nestlevel = NewGUCNestLevel();
	ChatstorePinSetting("search_path", "pg_catalog, pg_temp");
	ChatstorePinPlanCacheMode();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "chatstore: SPI_connect failed");
	if (writes)
		ChatstoreCheckTriggers();
}

/*
 * On a distributed install, plan chatstore's own statements under the
 * default plan_cache_mode (auto), whatever the caller set, until the GUC
 * nest level in force is left.  Citus cannot make a generic plan of some
 * routed statements (the archive's INSERT ... SELECT moves, the list
 * queries: "could not create distributed plan"), and routes others to every
 * shard (update_conversation's UPDATE); under auto the plan cache sees the
 * prohibitive cost Citus gives such a plan and keeps to custom plans, while
 * chatstore's window plans stay generic as they ask (CURSOR_OPT_GENERIC_PLAN,
 * which force_custom_plan would override).  One node keeps the caller's
 * setting, and the default setting costs this one comparison.
 */
void
ChatstorePinPlanCacheMode(void)
{
	if (plan_cache_mode != PLAN_CACHE_MODE_AUTO && ChatstoreDistributed())
		ChatstorePinSetting("plan_cache_mode", "auto");
}

/*
 * Disconnect from SPI and become the caller again.
 */
void
ChatstoreFinish(ChatstoreCall *call)
{
	SPI_finish();
	AtEOXact_GUC(true, call->save_nestlevel);
	SetUserIdAndSecContext(call->save_userid, call->save_sec_context);
}

/*
 * Prepare a plan and keep it for the backend's life; cursor_options choose
 * custom or generic planning.
 */
static SPIPlanPtr
KeepPlan(SPIPlanPtr *cache, const char *query, int nargs, const Oid *argtypes,
		 int cursor_options)
{
	if (*cache == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(query, nargs, (Oid *) argtypes, cursor_options);

		if (plan == NULL)
			elog(ERROR, "chatstore: SPI_prepare failed for \"%s\": %s",
				 query, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "chatstore: SPI_keepplan failed");
		*cache = plan;
	}
	return *cache;
}

/*
 * Return the cached plan for a query, preparing and keeping it on first use
 * in this backend.  The caller must be connected to SPI.  Plans survive
 * DROP/CREATE EXTENSION: the plan cache re-analyzes the query text when the
 * tables it names change.  The plan cache chooses between custom and generic
 * plans as it does for any prepared statement: a conversation of 100,000
 * messages among small ones wants a different plan for "conversation_id =
 * $1" than the average.
 */
SPIPlanPtr
ChatstorePlan(SPIPlanPtr *cache, const char *query, int nargs, const Oid *argtypes)
{
	return KeepPlan(cache, query, nargs, argtypes, 0);
}

/*
 * The same for a query that walks the (conversation_id, seq) index under a
 * LIMIT, whose plan is always that walk: always generic.  Left to choose,
 * the plan cache would replan such a query at every call, because a generic
 * "LIMIT $n" looks dearer than a custom one; that replanning took a third
 * of the time of a short window.
 */
SPIPlanPtr
ChatstoreWindowPlan(SPIPlanPtr *cache, const char *query, int nargs, const Oid *argtypes)
{
	return KeepPlan(cache, query, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN);
}

/*
 * Raise 22004 when a required argument is NULL.  Functions that write are
 * not STRICT, so a NULL never turns into a silent NULL result.
 */
void
ChatstoreRequireArg(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", argname),
				 errdetail("Pass a value for %s.", argname)));
}

/*
 * Raise 22023 when a window size (max_messages, max_results) is outside
 * 1..CHATSTORE_MAX_WINDOW.
 */
void
ChatstoreCheckWindow(const char *argname, int32 value)
{
	if (value < 1 || value > CHATSTORE_MAX_WINDOW)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between 1 and %d", argname, CHATSTORE_MAX_WINDOW),
				 errdetail("%s was %d.", argname, value)));
}

/* Raise P0002: the conversation does not exist. */
void
ChatstoreConversationNotFound(pg_uuid_t *id)
{
	ereport(ERROR,
			(errcode(ERRCODE_NO_DATA_FOUND),
			 errmsg("conversation %s does not exist", ChatstoreUuidText(id)),
			 errhint("Create it with chatstore.create_conversation().")));
}

/* Raise 55000: the conversation is archived and must be restored first. */
void
ChatstoreConversationArchived(pg_uuid_t *id)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("conversation %s is archived", ChatstoreUuidText(id)),
			 errdetail("Archived conversations can be read but not appended to."),
			 errhint("Call chatstore.restore('%s') to make it active again.",
					 ChatstoreUuidText(id))));
}

/*
 * Look up a conversation's status as the actor sees it: CONV_MISSING (also
 * when it belongs to another user, or the actor sees nobody's),
 * CONV_ACTIVE or CONV_ARCHIVED; *archived_at (when not NULL) gets its
 * archive time, which names the archive partition holding its messages.
 * With lock CONV_LOCK_UPDATE the row is locked FOR UPDATE, so the answer
 * stays true until the transaction ends; CONV_LOCK_NO_KEY locks it FOR NO
 * KEY UPDATE, as an append's UPDATE of the row would, which leaves the
 * FOR KEY SHARE of get_or_create_conversation (and of foreign key checks)
 * alone: an append with an idempotency key in a transaction that got its
 * conversation by key must not deadlock with another doing the same.
 * Requires SPI.
 */
char
ChatstoreConversationStatus(pg_uuid_t *id, int lock, Actor *actor,
							TimestampTz *archived_at)
{
	static SPIPlanPtr plain = NULL;
	static SPIPlanPtr locking = NULL;
	static SPIPlanPtr locking_no_key = NULL;
	static const Oid argtypes[2] = {UUIDOID, TEXTOID};
	Datum		args[2];
	char		nulls[2] = {' ', ' '};
	SPIPlanPtr	plan;
	bool		isnull;
	Datum		at;
	int			rc;

	if (actor->kind == ACTOR_NOBODY)
		return CONV_MISSING;
	args[0] = UUIDPGetDatum(id);
	ChatstoreActorArg(actor, &args[1], &nulls[1]);
	if (lock == CONV_LOCK_NO_KEY)
		plan = ChatstorePlan(&locking_no_key,
							 "SELECT archived_at FROM chatstore.conversation"
							 " WHERE id OPERATOR(pg_catalog.=) $1"
							 "   AND ($2 IS NULL OR user_id OPERATOR(pg_catalog.=) $2)"
							 " FOR NO KEY UPDATE",
							 2, argtypes);
	else if (lock)
		plan = ChatstorePlan(&locking,
							 "SELECT archived_at FROM chatstore.conversation"
							 " WHERE id OPERATOR(pg_catalog.=) $1"
							 "   AND ($2 IS NULL OR user_id OPERATOR(pg_catalog.=) $2)"
							 " FOR UPDATE",
							 2, argtypes);
	else
		plan = ChatstorePlan(&plain,
							 "SELECT archived_at FROM chatstore.conversation"
							 " WHERE id OPERATOR(pg_catalog.=) $1"
							 "   AND ($2 IS NULL OR user_id OPERATOR(pg_catalog.=) $2)",
							 2, argtypes);

	rc = SPI_execute_plan(plan, args, nulls, !lock, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "chatstore: conversation lookup failed: %s",
			 SPI_result_code_string(rc));
	if (SPI_processed == 0)
		return CONV_MISSING;
	/* archived_at is set exactly when the status is archived (a CHECK says so) */
	at = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (archived_at != NULL)
		*archived_at = isnull ? 0 : DatumGetTimestampTz(at);
	return isnull ? CONV_ACTIVE : CONV_ARCHIVED;
}

/*
 * Lock, one at a time and in the given order, the conversations whose ids
 * are the first column of the n rows of "found" (a query's result, without
 * locks) and that still belong to user_id: FOR UPDATE, or FOR NO KEY UPDATE
 * when for_update is false.  For a distributed install, where a locking
 * query must target one conversation (Citus refuses FOR UPDATE across
 * shards); callers pass ids in id order, so that two of them never wait for
 * each other in a cycle.  Returns the ids locked as a uuid[] (*isnull when
 * none) and their number in *locked.  Requires SPI.
 */
Datum
ChatstoreLockEach(SPITupleTable *found, int n, Datum user_id, bool for_update,
				  int *locked, bool *isnull)
{
	static SPIPlanPtr lock_update = NULL;
	static SPIPlanPtr lock_no_key = NULL;
	static const Oid locktypes[2] = {UUIDOID, TEXTOID};
	Datum	   *ids = palloc(sizeof(Datum) * Max(n, 1));
	SPIPlanPtr	plan;

	plan = for_update ?
		ChatstorePlan(&lock_update,
					  "SELECT id FROM chatstore.conversation"
					  " WHERE id OPERATOR(pg_catalog.=) $1"
					  "   AND user_id OPERATOR(pg_catalog.=) $2 FOR UPDATE",
					  2, locktypes) :
		ChatstorePlan(&lock_no_key,
					  "SELECT id FROM chatstore.conversation"
					  " WHERE id OPERATOR(pg_catalog.=) $1"
					  "   AND user_id OPERATOR(pg_catalog.=) $2 FOR NO KEY UPDATE",
					  2, locktypes);
	*locked = 0;
	for (int i = 0; i < n; i++)
	{
		Datum		args[2] = {SPI_getbinval(found->vals[i], found->tupdesc, 1, isnull), user_id};

		if (SPI_execute_plan(plan, args, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "chatstore: conversation lock failed");
		if (SPI_processed == 1)
			ids[(*locked)++] = args[0];
		SPI_freetuptable(SPI_tuptable);
	}
	*isnull = *locked == 0;
	if (*isnull)
		return (Datum) 0;
	return PointerGetDatum(construct_array(ids, *locked, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
}

/*
 * Prepare a set-returning function to return its rows in a tuplestore,
 * using the function's declared result type.  InitMaterializedSRF exists
 * from PostgreSQL 15 on (named SetSingleFuncCall in early 15.x releases).
 */
void
ChatstoreInitSRF(FunctionCallInfo fcinfo)
{
#if PG_VERSION_NUM >= 160000
	InitMaterializedSRF(fcinfo, 0);
#elif PG_VERSION_NUM >= 150000
	SetSingleFuncCall(fcinfo, 0);
#else
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext oldcontext;
	TupleDesc	tupdesc;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	oldcontext = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "chatstore: return type must be a row type");
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->setDesc = CreateTupleDescCopy(tupdesc);
	MemoryContextSwitchTo(oldcontext);
#endif
}

/*
 * Copy values onto the non-dropped attributes of a result row type, in
 * order.  The tables' row types may gain dropped columns in later versions;
 * the values we read never include them.
 */
static void
MapOntoResult(TupleDesc resultdesc, Datum *values, bool *nulls, int nvalues,
			  Datum *outvalues, bool *outnulls)
{
	int			src = 0;

	for (int i = 0; i < resultdesc->natts; i++)
	{
		if (TupleDescAttr(resultdesc, i)->attisdropped || src >= nvalues)
		{
			outvalues[i] = (Datum) 0;
			outnulls[i] = true;
			continue;
		}
		outvalues[i] = values[src];
		outnulls[i] = nulls[src];
		src++;
	}
	if (src != nvalues)
		elog(ERROR, "chatstore: result row type does not match the values read");
}

/*
 * Append one row, given as values in column order, to the set returned by a
 * function prepared with ChatstoreInitSRF.  The tuplestore copies the row.
 */
void
ChatstorePutValues(FunctionCallInfo fcinfo, Datum *values, bool *nulls, int nvalues)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TupleDesc	resultdesc = rsinfo->setDesc;
	Datum	   *outvalues = palloc(sizeof(Datum) * resultdesc->natts);
	bool	   *outnulls = palloc(sizeof(bool) * resultdesc->natts);

	MapOntoResult(resultdesc, values, nulls, nvalues, outvalues, outnulls);
	tuplestore_putvalues(rsinfo->setResult, resultdesc, outvalues, outnulls);
	pfree(outvalues);
	pfree(outnulls);
}

/*
 * Append one row read through SPI (or straight from the table whose row type
 * the function returns) to the set returned by the function.
 */
void
ChatstorePutRow(FunctionCallInfo fcinfo, HeapTuple spituple, TupleDesc spidesc)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[MESSAGE_NCOLUMNS + 8];
	bool		nulls[MESSAGE_NCOLUMNS + 8];

	/* a row of the result's own table type goes in as it is */
	if (spidesc->tdtypeid == rsinfo->setDesc->tdtypeid && spidesc->tdtypeid != RECORDOID)
	{
		tuplestore_puttuple(rsinfo->setResult, spituple);
		return;
	}

	if (spidesc->natts > (int) lengthof(values))
		elog(ERROR, "chatstore: too many columns in row");
	heap_deform_tuple(spituple, spidesc, values, nulls);
	ChatstorePutValues(fcinfo, values, nulls, spidesc->natts);
}

/*
 * Form a composite Datum of the calling function's result type from values
 * in column order.  Allocates in CurrentMemoryContext, which must be the
 * caller's context (saved before SPI_connect), not SPI's.
 */
Datum
ChatstoreFormRow(FunctionCallInfo fcinfo, Datum *values, bool *nulls, int nvalues)
{
	TupleDesc	resultdesc;
	Datum	   *outvalues;
	bool	   *outnulls;
	HeapTuple	tuple;

	if (get_call_result_type(fcinfo, NULL, &resultdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "chatstore: return type must be a row type");
	resultdesc = BlessTupleDesc(resultdesc);
	outvalues = palloc(sizeof(Datum) * resultdesc->natts);
	outnulls = palloc(sizeof(bool) * resultdesc->natts);
	MapOntoResult(resultdesc, values, nulls, nvalues, outvalues, outnulls);
	tuple = heap_form_tuple(resultdesc, outvalues, outnulls);
	return HeapTupleGetDatum(tuple);
}

/*
 * Form the calling function's composite result from a row read through SPI.
 * Same memory rule as ChatstoreFormRow.
 */
Datum
ChatstoreRowFromSPI(FunctionCallInfo fcinfo, HeapTuple spituple, TupleDesc spidesc)
{
	Datum	   *values = palloc(sizeof(Datum) * spidesc->natts);
	bool	   *nulls = palloc(sizeof(bool) * spidesc->natts);

	heap_deform_tuple(spituple, spidesc, values, nulls);
	return ChatstoreFormRow(fcinfo, values, nulls, spidesc->natts);
}

/*
 * A value for an error message, cut to at most 64 bytes on a character
 * boundary, with "..." when cut: a 10 MB bad argument must not become a
 * 10 MB error message and log line.
 */
char *
ChatstoreClip(const char *value, int len)
{
	int			keep;

	if (len <= 64)
		return pnstrdup(value, len);
	keep = pg_mbcliplen(value, len, 64);
	return psprintf("%.*s...", keep, value);
}

/* Text of a uuid, for messages. */
char *
ChatstoreUuidText(pg_uuid_t *id)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(id)));
}
