/*
 * privileges.c
 *	  Privilege levels: chatstore.grant_app, grant_admin, revoke, is_admin.
 *
 * Nothing in chatstore is granted to PUBLIC.  An *app* role may use the
 * schema, execute the conversation, message and history functions, and
 * read the tables (row-level security shows it only the rows of the user
 * named by chatstore.user_id); it cannot write the tables, which change only
 * through the functions.  An *admin* role may also archive in bulk, purge,
 * erase a user, see stats and chatstore.archive_run, and read every user's
 * rows.  Roles are cluster-wide and not the extension's, so these functions
 * grant to roles the caller names, in the current database; the grants are
 * ordinary ACLs that pg_dump keeps.
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "chatstore.h"

PG_FUNCTION_INFO_V1(chatstore_grant_app);
PG_FUNCTION_INFO_V1(chatstore_grant_admin);
PG_FUNCTION_INFO_V1(chatstore_revoke);
PG_FUNCTION_INFO_V1(chatstore_is_admin);

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

/* The functions only an admin role may execute, in addition. */
static const char *const admin_functions =
"chatstore.archive(interval, integer), chatstore.purge(interval), chatstore.erase_user(text),"
" chatstore.stats()";

/* The tables both levels may read (row-level security filters them). */
static const char *const tables =
"chatstore.conversation, chatstore.message, chatstore.archived_message";

/*
 * The quoted name of a role given as regrole; raises 22004 for NULL.
 */
static const char *
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
	return quote_identifier(name);
}

/*
 * Run privilege statements, each a format with one %s for the role.
 */
static void
RunGrants(FunctionCallInfo fcinfo, const char *role, const char *const *statements, int n)
{
	ChatstoreCall call;
	ChatstoreConnect(fcinfo, &call);
	for (int i = 0; i < n; i++)
	{
		StringInfoData sql;

		initStringInfo(&sql);
		appendStringInfo(&sql, statements[i], role);
		if (SPI_execute(sql.data, false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "chatstore: \"%s\" failed", sql.data);
	}
	ChatstoreFinish(&call);
}

/*
 * chatstore.grant_app(role regrole) RETURNS void
 */
Datum
chatstore_grant_app(PG_FUNCTION_ARGS)
{
	const char *role = RoleArg(fcinfo);
	const char *statements[3] = {
		"GRANT USAGE ON SCHEMA chatstore TO %s",
		psprintf("GRANT EXECUTE ON FUNCTION %s TO %%s", app_functions),
		psprintf("GRANT SELECT ON TABLE %s TO %%s", tables)
	};

	RunGrants(fcinfo, role, statements, lengthof(statements));
	PG_RETURN_VOID();
}

/*
 * chatstore.grant_admin(role regrole) RETURNS void
 *
 * What grant_app grants, plus the admin functions.
 */
Datum
chatstore_grant_admin(PG_FUNCTION_ARGS)
{
	const char *role = RoleArg(fcinfo);
	const char *statements[4] = {
		"GRANT USAGE ON SCHEMA chatstore TO %s",
		psprintf("GRANT EXECUTE ON FUNCTION %s, %s TO %%s", app_functions, admin_functions),
		psprintf("GRANT SELECT ON TABLE %s TO %%s", tables),
		"GRANT SELECT ON TABLE chatstore.archive_run TO %s"
	};

	RunGrants(fcinfo, role, statements, lengthof(statements));
	PG_RETURN_VOID();
}

/*
 * chatstore.revoke(role regrole) RETURNS void
 *
 * Takes back everything grant_app and grant_admin gave the role.
 */
Datum
chatstore_revoke(PG_FUNCTION_ARGS)
{
	const char *role = RoleArg(fcinfo);
	const char *statements[3] = {
		psprintf("REVOKE ALL ON FUNCTION %s, %s FROM %%s", app_functions, admin_functions),
		psprintf("REVOKE ALL ON TABLE %s, chatstore.archive_run FROM %%s", tables),
		"REVOKE ALL ON SCHEMA chatstore FROM %s"
	};

	RunGrants(fcinfo, role, statements, lengthof(statements));
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
