/*
 * privileges.c
 *	  Privilege levels and identity: chatstore.grant_app, grant_admin,
 *	  revoke, is_admin, set_user.
 *
 * Nothing in chatstore is granted to PUBLIC.  An *app* role may use the
 * schema, execute the conversation, message and history functions, and
 * read the tables (row-level security shows it only the rows of the user
 * named by chatstore.user_id); it cannot write the tables, which change only
 * through the functions.  An *admin* role may also archive in bulk, purge,
 * erase a user, see stats and chatstore.archive_run, and act for every user.
 * Roles are cluster-wide and not the extension's, so these functions grant
 * to roles the caller names, in the current database; the grants are
 * ordinary ACLs that pg_dump keeps.
 *
 * Admin status itself is a row in chatstore.admin_role (a table pg_dump
 * keeps), never a privilege: a blanket GRANT ... ON ALL FUNCTIONS (or
 * TABLES) IN SCHEMA chatstore gives a role the right to call functions, not
 * to act for every user.  The table stores role names, as pg_dump writes
 * grants: a renamed role must be granted again.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "chatstore.h"

PG_FUNCTION_INFO_V1(chatstore_grant_app);
PG_FUNCTION_INFO_V1(chatstore_grant_admin);
PG_FUNCTION_INFO_V1(chatstore_revoke);
PG_FUNCTION_INFO_V1(chatstore_is_admin);
PG_FUNCTION_INFO_V1(chatstore_set_user);
PG_FUNCTION_INFO_V1(chatstore_refuse_trigger);

/*
 * The functions an app role may execute, of every version.  Each is granted
 * only when the database has it: this library also serves a database still
 * on an older version (1.0 has no set_user; 1.1 gave list_conversations new
 * arguments, so a database has one of its two signatures).
 */
static const char *const app_functions[] = {
	"chatstore.uuidv7()",
	"chatstore.estimate_tokens(text)",
	"chatstore.is_admin()",
	"chatstore.create_conversation(text, text, jsonb, text)",
	"chatstore.get_conversation(uuid)",
	"chatstore.list_conversations(text, text, integer, uuid)",
	"chatstore.update_conversation(uuid, text, jsonb, text)",
	"chatstore.delete_conversation(uuid)",
	"chatstore.append(uuid, text, text, jsonb, integer, text, text)",
	"chatstore.append_many(uuid, jsonb)",
	"chatstore.history(uuid, integer, integer)",
	"chatstore.context(uuid, integer, integer)",
	"chatstore.history_json(uuid, integer, integer)",
	"chatstore.archive_conversation(uuid)",
	"chatstore.restore(uuid)",
	/* 1.0.1 */
	"chatstore.set_user(text)",
	/* 1.1 */
	"chatstore.list_conversations(text, text, integer, uuid, text, jsonb)",
	"chatstore.set_state(uuid, text)",
	"chatstore.tag(uuid, text[])",
	"chatstore.untag(uuid, text[])",
	"chatstore.rename_tag(text, text, text)",
	"chatstore.delete_tag(text, text)",
	"chatstore.tags(text)",
	"chatstore.conversations_by_tag(text, text, interval, integer, uuid, text)",
	"chatstore.conversation_id(text, text)",
	"chatstore.get_or_create_conversation(text, text, text, jsonb, text)",
	"chatstore.append_by_key(text, text, text, text, jsonb, integer, text, text, integer, integer, integer)",
	"chatstore.append(uuid, text, text, jsonb, integer, text, text, integer, integer, integer)",
	"chatstore.usage(timestamptz, timestamptz, text[], text, text)",
	"chatstore.daily_volume(integer, text)",
	"chatstore.search(text, text, uuid, text, timestamptz, timestamptz, integer, real, uuid, integer, text, text)",
	"chatstore.search_query(text, text)",
	"chatstore.search_vector(text, text)",
	"chatstore.search_rank(text, text)",
	"chatstore.rewind(uuid, integer)",
	"chatstore.export_conversation(uuid)",
	"chatstore.import_conversation(jsonb, boolean)",
	"chatstore.transcript(uuid)",
};

/* The functions only an admin role may execute, in addition. */
static const char *const admin_functions[] = {
	"chatstore.archive(interval, integer)",
	"chatstore.purge(interval)",
	"chatstore.erase_user(text)",
	"chatstore.stats()",
	/* 1.1 */
	"chatstore.stats(text, jsonb)",
	"chatstore.storage()",
	"chatstore.list_all_conversations(text, integer, uuid, text, jsonb)",
	"chatstore.import_langchain(regclass, text, jsonb)",
	"chatstore.import_sessions(regclass, text)",
};

/* The tables both levels may read (row-level security filters them). */
static const char *const tables[] = {
	"chatstore.conversation",
	"chatstore.message",
	"chatstore.archived_message",
	/* 1.1 */
	"chatstore.conversation_tag",
};

/*
 * The name of a role given as regrole; raises 22004 for NULL.
 */
static char *
RoleArg(FunctionCallInfo fcinfo)
{
	Oid			role;
	char	   *name;

	ChatstoreRequireArg(fcinfo, 0, "role");
	role = PG_GETARG_OID(0);
	name = GetUserNameFromId(role, true);
	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role with OID %u does not exist", role)));
	return name;
}

/*
 * Does this database have the table of admin roles?  A database still on
 * 1.0's schema (before ALTER EXTENSION chatstore UPDATE) has not, and its
 * admins are the roles that may execute chatstore.archive().
 */
static bool
HaveAdminTable(void)
{
	Oid			nsp = get_namespace_oid("chatstore", true);

	return OidIsValid(nsp) && OidIsValid(get_relname_relid("admin_role", nsp));
}

/*
 * Add a role name to chatstore.admin_role (add is true) or remove it, on
 * the coordinator and every worker of a distributed install.  Requires SPI,
 * connected as the extension's owner.
 */
static void
SetAdminRow(const char *role, bool add)
{
	Oid			argtypes[1] = {NAMEOID};
	Datum		args[1];
	int			rc;

	if (!HaveAdminTable())
		return;
	args[0] = DirectFunctionCall1(namein, CStringGetDatum(role));
	rc = SPI_execute_with_args(add ?
							   "INSERT INTO chatstore.admin_role (role_name) VALUES ($1)"
							   " ON CONFLICT (role_name) DO NOTHING" :
							   "DELETE FROM chatstore.admin_role"
							   " WHERE role_name OPERATOR(pg_catalog.=) $1",
							   1, argtypes, args, NULL, false, 0);
	if (rc != (add ? SPI_OK_INSERT : SPI_OK_DELETE))
		elog(ERROR, "chatstore: admin_role update failed: %s", SPI_result_code_string(rc));
	/* on a distributed install, every worker's copy too (the policies there read it): see citus.c */
	ChatstoreCheckWorkersSeeChatstore();
	ChatstoreRunOnWorkers(add ?
						  psprintf("INSERT INTO chatstore.admin_role (role_name) VALUES (%s)"
								   " ON CONFLICT (role_name) DO NOTHING", quote_literal_cstr(role)) :
						  psprintf("DELETE FROM chatstore.admin_role WHERE role_name OPERATOR(pg_catalog.=) %s",
								   quote_literal_cstr(role)));
}

/*
 * Does the object named by a qualified name (a function with its argument
 * types, for to_regprocedure; a table, for to_regclass) exist?  Called as
 * SQL calls them, since they answer NULL for a missing object.  Run after
 * ChatstoreConnect, so the type names resolve with the pinned search_path.
 */
static bool
ObjectExists(PGFunction to_reg, const char *name)
{
	LOCAL_FCINFO(fcinfo, 1);
	Datum		result;

	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = CStringGetTextDatum(name);
	fcinfo->args[0].isnull = false;
	result = to_reg(fcinfo);
	return !fcinfo->isnull && OidIsValid(DatumGetObjectId(result));
}

/*
 * The names of a list that exist in this database, joined by commas, with
 * a second list's after them when second is not NULL.
 */
static char *
Existing(PGFunction to_reg, const char *const *names, int n,
		 const char *const *second, int n2)
{
	StringInfoData list;

	initStringInfo(&list);
	for (int i = 0; i < n + n2; i++)
	{
		const char *name = i < n ? names[i] : second[i - n];

		if (ObjectExists(to_reg, name))
			appendStringInfo(&list, "%s%s", list.len > 0 ? ", " : "", name);
	}
	return list.data;
}

/*
 * Raise 42501 unless the caller may hand out chatstore's privileges: a
 * superuser, or a role with the privileges of the extension's owner (who
 * owns these functions).  EXECUTE on grant_app, grant_admin and revoke is
 * not enough: a blanket GRANT EXECUTE ON ALL FUNCTIONS gives it, and the
 * functions run their statements as the owner.
 */
static void
RequireOwnerPrivileges(FunctionCallInfo fcinfo)
{
	HeapTuple	proctup;
	Oid			owner;

	proctup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fcinfo->flinfo->fn_oid));
	if (!HeapTupleIsValid(proctup))
		elog(ERROR, "cache lookup failed for function %u", fcinfo->flinfo->fn_oid);
	owner = ((Form_pg_proc) GETSTRUCT(proctup))->proowner;
	ReleaseSysCache(proctup);
	if (!has_privs_of_role(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to change chatstore privileges"),
				 errdetail("Only a superuser or a role with the privileges of the extension's owner, %s, may call grant_app, grant_admin and revoke.",
						   GetUserNameFromId(owner, false))));
}

/* What RunGrants does for a role. */
typedef enum GrantLevel
{
	GRANT_APP,					/* grant_app */
	GRANT_ADMIN,				/* grant_admin */
	GRANT_NONE					/* revoke */
} GrantLevel;

/*
 * Give a role the app or admin level, or take both back, in the current
 * database: the privileges on the objects of the lists above that the
 * database has, and the row in chatstore.admin_role.  Only a superuser or a
 * role with the owner's privileges may (RequireOwnerPrivileges).
 */
static void
RunGrants(FunctionCallInfo fcinfo, GrantLevel level)
{
	ChatstoreCall call;
	const char *role;
	const char *quoted;
	char	   *functions;
	char	   *tablelist;
	List	   *statements = NIL;
	ListCell   *lc;

	role = RoleArg(fcinfo);
	quoted = quote_identifier(role);
	RequireOwnerPrivileges(fcinfo);
	ChatstoreConnect(fcinfo, &call);

	functions = level == GRANT_APP ?
		Existing(to_regprocedure, app_functions, lengthof(app_functions), NULL, 0) :
		Existing(to_regprocedure, app_functions, lengthof(app_functions),
				 admin_functions, lengthof(admin_functions));
	tablelist = Existing(to_regclass, tables, lengthof(tables), NULL, 0);
	if (level == GRANT_NONE)
	{
		statements = list_make3(psprintf("REVOKE ALL ON FUNCTION %s FROM %s", functions, quoted),
								psprintf("REVOKE ALL ON TABLE %s, chatstore.archive_run FROM %s",
										 tablelist, quoted),
								psprintf("REVOKE ALL ON SCHEMA chatstore FROM %s", quoted));
	}
	else
	{
		statements = list_make3(psprintf("GRANT USAGE ON SCHEMA chatstore TO %s", quoted),
								psprintf("GRANT EXECUTE ON FUNCTION %s TO %s", functions, quoted),
								psprintf("GRANT SELECT ON TABLE %s TO %s", tablelist, quoted));
		if (level == GRANT_ADMIN)
			statements = lappend(statements,
								 psprintf("GRANT SELECT ON TABLE chatstore.archive_run TO %s", quoted));
	}
	foreach(lc, statements)
	{
		if (SPI_execute((char *) lfirst(lc), false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "chatstore: \"%s\" failed", (char *) lfirst(lc));
	}
	if (level != GRANT_APP)
		SetAdminRow(role, level == GRANT_ADMIN);
	ChatstoreFinish(&call);
}

/*
 * chatstore.grant_app(role regrole) RETURNS void
 *
 * Grants only: a role that is an admin stays one (revoke first to demote).
 */
Datum
chatstore_grant_app(PG_FUNCTION_ARGS)
{
	RunGrants(fcinfo, GRANT_APP);
	PG_RETURN_VOID();
}

/*
 * chatstore.grant_admin(role regrole) RETURNS void
 *
 * What grant_app grants, plus the admin functions, and the row in
 * chatstore.admin_role that makes the role act for every user.
 */
Datum
chatstore_grant_admin(PG_FUNCTION_ARGS)
{
	RunGrants(fcinfo, GRANT_ADMIN);
	PG_RETURN_VOID();
}

/*
 * chatstore.revoke(role regrole) RETURNS void
 *
 * Takes back everything grant_app and grant_admin gave the role, admin
 * status included.
 */
Datum
chatstore_revoke(PG_FUNCTION_ARGS)
{
	RunGrants(fcinfo, GRANT_NONE);
	PG_RETURN_VOID();
}

/*
 * What chatstore.is_admin() answered at one call site (fn_extra): for which
 * role, in which transaction and command.
 */
typedef struct IsAdminCache
{
	Oid			role;
	LocalTransactionId lxid;
	CommandId	cid;
	bool		is_admin;
} IsAdminCache;

/*
 * chatstore.is_admin() RETURNS boolean
 *
 * Whether the calling role acts for every user when chatstore.user_id is
 * not set; the tables' row-level security policies use it.  A policy calls
 * it for every row it filters (a policy holds no subquery, so no initplan
 * evaluates it once: Citus refuses subqueries in policies), and the answer
 * is an SPI lookup of chatstore.admin_role.  So each call site remembers
 * its answer in fn_extra for as long as the role, the transaction and the
 * command are the same: once per scan, like an initplan, and asked again
 * after anything the transaction changed (grant_admin, revoke, a write to
 * admin_role) or under another role.  That is what STABLE promises.
 */
Datum
chatstore_is_admin(PG_FUNCTION_ARGS)
{
	IsAdminCache *cache = (IsAdminCache *) fcinfo->flinfo->fn_extra;
	Oid			role = GetUserId();
#if PG_VERSION_NUM >= 170000
	LocalTransactionId lxid = MyProc->vxid.lxid;
#else
	LocalTransactionId lxid = MyProc->lxid;
#endif
	CommandId	cid = GetCurrentCommandId(false);

	if (cache != NULL && cache->role == role && cache->lxid == lxid && cache->cid == cid)
		PG_RETURN_BOOL(cache->is_admin);
	if (cache == NULL)
	{
		cache = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(IsAdminCache));
		fcinfo->flinfo->fn_extra = cache;
	}
	/* invalid until the lookup has returned (it may throw) */
	cache->role = InvalidOid;
	cache->is_admin = ChatstoreCallerIsAdmin();
	cache->lxid = lxid;
	cache->cid = cid;
	cache->role = role;
	PG_RETURN_BOOL(cache->is_admin);
}

/*
 * chatstore.set_user(user_id text) RETURNS text
 *
 * Declares the user this transaction acts for: set_config('chatstore.user_id',
 * user_id, true), with the user id checked as create_conversation checks it.
 * The value ends with the transaction (or with the savepoint it was set in,
 * when that is rolled back), so it never passes to the next client of a
 * pooled connection.  Outside a transaction block it lasts for the statement
 * only, which a warning says.  On a distributed install it runs SET LOCAL
 * instead, which Citus passes on to the workers.  Returns the user id.
 */
Datum
chatstore_set_user(PG_FUNCTION_ARGS)
{
	text	   *user_id;
	int			len;

	ChatstoreRequireArg(fcinfo, 0, "user_id");
	user_id = PG_GETARG_TEXT_PP(0);
	len = VARSIZE_ANY_EXHDR(user_id);
	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("user_id must not be empty"),
				 errdetail("Pass the application's identifier for user_id.")));
	if (len > CHATSTORE_MAX_ID_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("user_id is too long"),
				 errdetail("It has %d bytes; the limit is %d.", len, CHATSTORE_MAX_ID_BYTES)));
	if (!IsTransactionBlock())
		ereport(WARNING,
				(errcode(ERRCODE_NO_ACTIVE_SQL_TRANSACTION),
				 errmsg("chatstore.set_user() outside a transaction block declares the user for this statement only"),
				 errhint("Call it after BEGIN, in the transaction whose calls act for the user.")));

	if (ChatstoreDistributed())
	{
		/*
		 * Citus sends a SET LOCAL statement on to the workers' transactions
		 * (citus.propagate_set_commands = 'local', which distribute() sets for
		 * the database), where the row-level security of roles that read the
		 * tables directly needs the user, but not set_config()
		 */
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "chatstore: SPI_connect failed");
		if (SPI_execute(psprintf("SET LOCAL chatstore.user_id = %s",
								 quote_literal_cstr(text_to_cstring(user_id))),
						false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "chatstore: set_user failed");
		SPI_finish();
	}
	else
		(void) set_config_option("chatstore.user_id", text_to_cstring(user_id),
								 superuser() ? PGC_SUSET : PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
	PG_RETURN_TEXT_P(user_id);
}

/*
 * The event trigger chatstore_refuse_trigger (ddl_command_end of CREATE
 * TRIGGER): refuses a trigger on a table in schema chatstore (a chat table,
 * an archive partition, or a Citus shard of one) unless a superuser makes
 * it.  chatstore writes as the extension's owner, a superuser, and a
 * trigger runs as whoever fires it, WHEN clause included: a role with
 * TRIGGER on a chat table (which chatstore never grants, but a blanket GRANT
 * ALL does) could otherwise run code of its own with a superuser's rights,
 * as a trigger function of its own or as a function its WHEN clause calls.
 * It fires on every node, Citus workers and a coordinator holding shards
 * included, where chatstore's writes reach the shards without
 * ChatstoreCheckTriggers; the table's schema comes from the syscache,
 * because Citus hides shards from queries of pg_class.  Nothing is checked
 * in an extension's script (CREATE EXTENSION citus makes triggers before
 * its catalogs are complete) or for a superuser.
 */
Datum
chatstore_refuse_trigger(PG_FUNCTION_ARGS)
{
	Oid			schema;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		elog(ERROR, "chatstore: not fired by an event trigger");
	if (creating_extension || superuser())
		PG_RETURN_VOID();
	schema = get_namespace_oid("chatstore", true);
	if (!OidIsValid(schema))
		PG_RETURN_VOID();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "chatstore: SPI_connect failed");
	/* not read-only: a snapshot of its own, which sees the new trigger's row */
	if (SPI_execute("SELECT t.tgrelid, t.tgname::pg_catalog.text"
					" FROM pg_catalog.pg_event_trigger_ddl_commands() d"
					" JOIN pg_catalog.pg_trigger t ON t.oid OPERATOR(pg_catalog.=) d.objid"
					" WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_trigger'::pg_catalog.regclass"
					"   AND NOT t.tgisinternal", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "chatstore: trigger lookup failed");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			rel = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		char	   *trigger = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);

		if (get_rel_namespace(rel) != schema)
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to create trigger %s on chatstore.%s", trigger, get_rel_name(rel)),
				 errdetail("chatstore writes to its tables as the extension's owner, a superuser, so a trigger there would run with a superuser's rights: only a superuser may create one."),
				 errhint("Grant application roles nothing but SELECT on chatstore's tables (chatstore.grant_app does).")));
	}
	SPI_finish();
	PG_RETURN_VOID();
}
