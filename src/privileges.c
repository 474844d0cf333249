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

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

#include "chatstore.h"

PG_FUNCTION_INFO_V1(chatstore_grant_app);
PG_FUNCTION_INFO_V1(chatstore_grant_admin);
PG_FUNCTION_INFO_V1(chatstore_revoke);
PG_FUNCTION_INFO_V1(chatstore_is_admin);
PG_FUNCTION_INFO_V1(chatstore_set_user);

/* The functions an app role may execute. */
static const char *const app_functions =
"chatstore.uuidv7(), chatstore.estimate_tokens(text), chatstore.is_admin(),"
" chatstore.create_conversation(text, text, jsonb, text),"
" chatstore.get_conversation(uuid),"
" chatstore.list_conversations(text, text, integer, uuid),"
" chatstore.update_conversation(uuid, text, jsonb, text),"
" chatstore.delete_conversation(uuid),"
" chatstore.append(uuid, text, text, jsonb, integer, text, text),"
" chatstore.append_many(uuid, jsonb),"
" chatstore.history(uuid, integer, integer),"
" chatstore.context(uuid, integer, integer),"
" chatstore.history_json(uuid, integer, integer),"
" chatstore.archive_conversation(uuid),"
" chatstore.restore(uuid)";

/* Functions of the app level that 1.0's schema lacks: granted when present. */
static const char *const app_functions_1_0_1 = "chatstore.set_user(text)";

/* Functions of the app level that 1.0.1's schema lacks: granted when present (1.1). */
static const char *const app_functions_1_1 =
"chatstore.export_conversation(uuid), chatstore.import_conversation(jsonb, boolean),"
" chatstore.transcript(uuid)";

/* The functions only an admin role may execute, in addition. */
static const char *const admin_functions =
"chatstore.archive(interval, integer), chatstore.purge(interval), chatstore.erase_user(text),"
" chatstore.stats()";

/* The tables both levels may read (row-level security filters them). */
static const char *const tables =
"chatstore.conversation, chatstore.message, chatstore.archived_message";

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
 * Add a role name to chatstore.admin_role (add is true) or remove it.
 * Requires SPI, connected as the extension's owner.
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
}

/*
 * The app level's functions: app_functions, and the newer ones when the
 * database has them (this library also serves databases still on 1.0).
 */
static const char *
AppFunctions(void)
{
	Oid			argtypes[1] = {TEXTOID};
	Oid			argtypes_1_1[1] = {UUIDOID};

	if (!OidIsValid(LookupFuncName(list_make2(makeString("chatstore"), makeString("set_user")),
								   1, argtypes, true)))
		return app_functions;
	/* 1.1's schema: told by one of its functions */
	if (!OidIsValid(LookupFuncName(list_make2(makeString("chatstore"), makeString("export_conversation")),
								   1, argtypes_1_1, true)))
		return psprintf("%s, %s", app_functions, app_functions_1_0_1);
	return psprintf("%s, %s, %s", app_functions, app_functions_1_0_1, app_functions_1_1);
}

/*
 * Run privilege statements, each a format with one %s for the role's quoted
 * name, then add the role to or remove it from the admin roles when
 * admin_row is 1 or -1.
 */
static void
RunGrants(FunctionCallInfo fcinfo, const char *role, const char *const *statements, int n,
		  int admin_row)
{
	ChatstoreCall call;
	const char *quoted = quote_identifier(role);

	ChatstoreConnect(fcinfo, &call);
	for (int i = 0; i < n; i++)
	{
		StringInfoData sql;

		initStringInfo(&sql);
		appendStringInfo(&sql, statements[i], quoted);
		if (SPI_execute(sql.data, false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "chatstore: \"%s\" failed", sql.data);
	}
	if (admin_row != 0)
		SetAdminRow(role, admin_row > 0);
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
	const char *role = RoleArg(fcinfo);
	const char *statements[3] = {
		"GRANT USAGE ON SCHEMA chatstore TO %s",
		psprintf("GRANT EXECUTE ON FUNCTION %s TO %%s", AppFunctions()),
		psprintf("GRANT SELECT ON TABLE %s TO %%s", tables)
	};

	RunGrants(fcinfo, role, statements, lengthof(statements), 0);
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
	const char *role = RoleArg(fcinfo);
	const char *statements[4] = {
		"GRANT USAGE ON SCHEMA chatstore TO %s",
		psprintf("GRANT EXECUTE ON FUNCTION %s, %s TO %%s", AppFunctions(), admin_functions),
		psprintf("GRANT SELECT ON TABLE %s TO %%s", tables),
		"GRANT SELECT ON TABLE chatstore.archive_run TO %s"
	};

	RunGrants(fcinfo, role, statements, lengthof(statements), 1);
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
	const char *role = RoleArg(fcinfo);
	const char *statements[3] = {
		psprintf("REVOKE ALL ON FUNCTION %s, %s FROM %%s", AppFunctions(), admin_functions),
		psprintf("REVOKE ALL ON TABLE %s, chatstore.archive_run FROM %%s", tables),
		"REVOKE ALL ON SCHEMA chatstore FROM %s"
	};

	RunGrants(fcinfo, role, statements, lengthof(statements), -1);
	PG_RETURN_VOID();
}

/*
 * chatstore.is_admin() RETURNS boolean
 *
 * Whether the calling role acts for every user when chatstore.user_id is
 * not set; the tables' row-level security policies use it.
 */
Datum
chatstore_is_admin(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ChatstoreCallerIsAdmin());
}

/*
 * chatstore.set_user(user_id text) RETURNS text
 *
 * Declares the user this transaction acts for: set_config('chatstore.user_id',
 * user_id, true), with the user id checked as create_conversation checks it.
 * The value ends with the transaction (or with the savepoint it was set in,
 * when that is rolled back), so it never passes to the next client of a
 * pooled connection.  Outside a transaction block it lasts for the statement
 * only, which a warning says.  Returns the user id.
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

	(void) set_config_option("chatstore.user_id", text_to_cstring(user_id),
							 superuser() ? PGC_SUSET : PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	PG_RETURN_TEXT_P(user_id);
}
