/*
 * tags.c
 *	  Per-user tags on conversations: chatstore.tag, untag, rename_tag,
 *	  delete_tag, tags, conversations_by_tag.
 *
 * A tag is a label a user puts on a conversation, stored as one row of
 * chatstore.conversation_tag (conversation_id, tag, user_id, tagged_at),
 * keyed by (conversation_id, tag) like every chat table.  The owner's user
 * id is copied onto the row, so a user's tags are found through the index
 * (user_id, tag, conversation_id) and row-level security needs no subquery.
 *
 * Tags are compared byte for byte (case matters: "Work" and "work" are two
 * tags) and listed in byte order (COLLATE "C"), whatever the database's
 * collation.  White space (the Unicode White_Space code points) at either end
 * of a tag is removed wherever a tag is passed; a tag that is empty after
 * that is refused.  A tag that is stored is limited to
 * chatstore.max_tag_chars code points, and a conversation to
 * chatstore.max_tags_per_conversation tags.  Tags are on the conversation,
 * not on its messages: archive and restore leave them alone, and they go
 * with the conversation when it is deleted, purged or erased (the foreign
 * key cascades, so no path that deletes conversations can leave one behind
 * or fail on one tagged concurrently).
 *
 * The functions that change a conversation's tags lock its row (FOR NO KEY
 * UPDATE: appends and other taggers of that conversation wait, readers do
 * not), so the limit on tags per conversation holds under concurrency and a
 * concurrent delete_conversation either waits for the tag or makes it fail
 * with P0002.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "chatstore.h"

PG_FUNCTION_INFO_V1(chatstore_tag);
PG_FUNCTION_INFO_V1(chatstore_untag);
PG_FUNCTION_INFO_V1(chatstore_rename_tag);
PG_FUNCTION_INFO_V1(chatstore_delete_tag);
PG_FUNCTION_INFO_V1(chatstore_tags);
PG_FUNCTION_INFO_V1(chatstore_conversations_by_tag);

/*
 * The most code points a tag setting may allow: a tag of 500 code points
 * (at most 2000 bytes) and a user id of 255 bytes still fit one entry of
 * the (user_id, tag, conversation_id) index.
 */
#define MAX_TAG_CHARS_LIMIT			500

int			chatstore_max_tag_chars = 100;
int			chatstore_max_tags_per_conversation = 100;

/*
 * Define the tag settings.  Like the other limits they are policy, so only
 * a superuser (or a role granted SET on them) may change them.
 */
void
TagsInit(void)
{
	DefineCustomIntVariable("chatstore.max_tag_chars",
							"Longest tag, in code points, that tag and rename_tag accept.",
							NULL,
							&chatstore_max_tag_chars,
							100, 1, MAX_TAG_CHARS_LIMIT,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("chatstore.max_tags_per_conversation",
							"Most tags one conversation may carry.",
							NULL,
							&chatstore_max_tags_per_conversation,
							100, 1, 10000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
}

/*
 * A tag as stored: the argument without the White_Space code points at
 * either end.  Raises 22023 when nothing is left, and (with stored) 22001
 * when it is longer than chatstore.max_tag_chars code points.  Tags only
 * looked up are not held to the length limit, so a tag stored before the
 * limit was lowered can still be removed.  "what" names the argument.
 * import_conversation (export.c) reads an export's tags with it.
 */
text *
ChatstoreNormalizeTag(text *value, const char *what, bool stored)
{
	const char *s = VARDATA_ANY(value);
	int			len = VARSIZE_ANY_EXHDR(value);
	int			start = -1;
	int			end = 0;
	int			i = 0;
	text	   *result;

	/* walk forward: a character's length is known only from its first byte */
	while (i < len)
	{
		int			l = pg_mblen(s + i);

		if (i + l > len)
			l = len - i;
		if (!ChatstoreIsBlank(s + i, l))
		{
			if (start < 0)
				start = i;
			end = i + l;
		}
		i += l;
	}
	if (start < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", what),
				 errdetail("A tag needs at least one character that is not white space.")));
	result = (start == 0 && end == len) ? value : cstring_to_text_with_len(s + start, end - start);
	if (stored)
		ChatstoreCheckCodePoints(result, what, chatstore_max_tag_chars, "chatstore.max_tag_chars");
	return result;
}

/*
 * The tags of a VARIADIC text[] argument, normalized, as a text[] Datum.
 * Raises 22004 for a NULL array or a NULL element.
 */
static Datum
TagArray(FunctionCallInfo fcinfo, int argno, bool stored)
{
	ArrayType  *array;
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	ChatstoreRequireArg(fcinfo, argno, "tags");
	array = PG_GETARG_ARRAYTYPE_P(argno);
	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("tags must not contain null"),
					 errdetail("Element %d of tags is null.", i + 1)));
		elems[i] = PointerGetDatum(ChatstoreNormalizeTag(DatumGetTextPP(elems[i]), "tag", stored));
	}
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * Lock the conversation FOR NO KEY UPDATE as the actor sees it and return
 * its owner; raise P0002 when it does not exist or is another user's.
 * Requires SPI.
 */
static Datum
LockConversation(pg_uuid_t *id, Actor *actor)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[2] = {UUIDOID, TEXTOID};
	Datum		args[2];
	char		nulls[2] = {' ', ' '};
	bool		isnull;
	int			rc;

	if (actor->kind == ACTOR_NOBODY)
		ChatstoreConversationNotFound(id);
	args[0] = UUIDPGetDatum(id);
	ChatstoreActorArg(actor, &args[1], &nulls[1]);
	rc = SPI_execute_plan(ChatstorePlan(&plan,
										"SELECT user_id FROM chatstore.conversation"
										" WHERE id OPERATOR(pg_catalog.=) $1"
										"   AND ($2 IS NULL OR user_id OPERATOR(pg_catalog.=) $2)"
										" FOR NO KEY UPDATE",
										2, argtypes),
						  args, nulls, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "chatstore: conversation lookup failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		ChatstoreConversationNotFound(id);
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
}

/*
 * The conversation's tags, in byte order, as a text[] Datum in the caller's
 * memory context, with *count set to how many.  Reads with a new snapshot,
 * so it sees what the calling function changed.  Requires SPI.
 */
static Datum
ConversationTags(pg_uuid_t *id, MemoryContext callerctx, int64 *count)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[1] = {UUIDOID};
	Datum		args[1] = {UUIDPGetDatum(id)};
	MemoryContext spictx;
	Datum		tags;
	bool		isnull;

	if (SPI_execute_plan(ChatstorePlan(&plan,
									   "SELECT COALESCE(pg_catalog.array_agg(tag ORDER BY tag COLLATE pg_catalog.\"C\"), '{}'),"
									   "       pg_catalog.count(*)"
									   " FROM chatstore.conversation_tag"
									   " WHERE conversation_id OPERATOR(pg_catalog.=) $1",
									   1, argtypes),
						 args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "chatstore: tag lookup failed");
	tags = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	*count = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	spictx = MemoryContextSwitchTo(callerctx);
	tags = PointerGetDatum(DatumGetArrayTypePCopy(tags));
	MemoryContextSwitchTo(spictx);
	return tags;
}

/*
 * tag()'s insert on a distributed install (args as chatstore_tag's: id,
 * tags, owner, tagged_at): one INSERT ... VALUES per tag, each routed to
 * the conversation's shard over one connection, so the transaction commits
 * on one worker without two-phase commit (Citus runs an INSERT ... SELECT
 * from unnest() through the coordinator, copying the rows over a second
 * connection, and counting the rows it pulled, those ON CONFLICT DO NOTHING
 * skipped included).  A VALUES insert's count is exact.  Returns how many
 * tags were added.
 */
static uint64
InsertTagsRouted(Datum *args)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[4] = {UUIDOID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
	Datum	   *tags;
	bool	   *nulls;
	int			n;
	uint64		added = 0;

	deconstruct_array(DatumGetArrayTypeP(args[1]), TEXTOID, -1, false, TYPALIGN_INT, &tags, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		Datum		values[4] = {args[0], tags[i], args[2], args[3]};

		if (SPI_execute_plan(ChatstorePlan(&plan,
										   "INSERT INTO chatstore.conversation_tag"
										   " (conversation_id, tag, user_id, tagged_at) VALUES ($1, $2, $3, $4)"
										   " ON CONFLICT (conversation_id, tag) DO NOTHING",
										   4, argtypes),
							 values, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "chatstore: tag insert failed");
		added += SPI_processed;
	}
	return added;
}

/*
 * chatstore.tag(conversation_id uuid, VARIADIC tags text[]) RETURNS text[]
 *
 * Adds tags to a conversation (live or archived) and returns all its tags,
 * sorted.  A tag it has already is left as it is (its tagged_at too); an
 * empty list changes nothing.  Raises 54000 when the conversation would
 * carry more than chatstore.max_tags_per_conversation tags; the check runs
 * after the insert, with the conversation locked, so it is exact.
 */
Datum
chatstore_tag(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[4] = {UUIDOID, TEXTARRAYOID, TEXTOID, TIMESTAMPTZOID};
	MemoryContext callerctx = CurrentMemoryContext;
	pg_uuid_t  *id;
	Datum		args[4];
	Datum		result;
	Actor		actor;
	int64		count;
	uint64		added;

	ChatstoreRequireArg(fcinfo, 0, "conversation_id");
	id = PG_GETARG_UUID_P(0);
	args[0] = UUIDPGetDatum(id);
	args[1] = TagArray(fcinfo, 1, true);
	ChatstoreGetActor(&actor);

	ChatstoreConnect(fcinfo, &call);
	args[2] = LockConversation(id, &actor);
	args[3] = TimestampTzGetDatum(GetCurrentTimestamp());
	if (ChatstoreDistributed())
		added = InsertTagsRouted(args);
	else
	{
		if (SPI_execute_plan(ChatstorePlan(&plan,
										   "INSERT INTO chatstore.conversation_tag"
										   " (conversation_id, tag, user_id, tagged_at)"
										   " SELECT DISTINCT $1, t, $3, $4 FROM pg_catalog.unnest($2) t"
										   " ON CONFLICT (conversation_id, tag) DO NOTHING",
										   4, argtypes),
							 args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "chatstore: tag insert failed");
		added = SPI_processed;
	}
	result = ConversationTags(id, callerctx, &count);
	if (added > 0 && count > chatstore_max_tags_per_conversation)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("conversation %s would have %lld tags", ChatstoreUuidText(id), (long long) count),
				 errdetail("A conversation may carry at most %d tags (chatstore.max_tags_per_conversation).",
						   chatstore_max_tags_per_conversation),
				 errhint("Remove tags with chatstore.untag() first, or raise chatstore.max_tags_per_conversation.")));
	ChatstoreFinish(&call);
	PG_RETURN_DATUM(result);
}

/*
 * chatstore.untag(conversation_id uuid, VARIADIC tags text[]) RETURNS text[]
 *
 * Removes tags from a conversation and returns the tags it still has,
 * sorted.  A tag it does not have is ignored.
 */
Datum
chatstore_untag(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[2] = {UUIDOID, TEXTARRAYOID};
	MemoryContext callerctx = CurrentMemoryContext;
	pg_uuid_t  *id;
	Datum		args[2];
	Datum		result;
	Actor		actor;
	int64		count;

	ChatstoreRequireArg(fcinfo, 0, "conversation_id");
	id = PG_GETARG_UUID_P(0);
	args[0] = UUIDPGetDatum(id);
	args[1] = TagArray(fcinfo, 1, false);
	ChatstoreGetActor(&actor);

	ChatstoreConnect(fcinfo, &call);
	(void) LockConversation(id, &actor);
	if (SPI_execute_plan(ChatstorePlan(&plan,
									   "DELETE FROM chatstore.conversation_tag"
									   " WHERE conversation_id OPERATOR(pg_catalog.=) $1"
									   "   AND tag OPERATOR(pg_catalog.=) ANY ($2)",
									   2, argtypes),
						 args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "chatstore: untag failed");
	result = ConversationTags(id, callerctx, &count);
	ChatstoreFinish(&call);
	PG_RETURN_DATUM(result);
}

/*
 * rename_tag's lock on a distributed install, where a locking query must
 * target one conversation (Citus refuses FOR UPDATE across shards): the
 * user's conversations tagged old_tag are found without locks, then each is
 * locked FOR NO KEY UPDATE alone, in id order, checking its owner again.
 * Returns the ids of those locked as a uuid[] (*isnull when none) and their
 * number in *count.  Requires SPI.
 */
static Datum
LockEachTagged(Datum user_id, text *tag, int64 *count, bool *isnull)
{
	static SPIPlanPtr find = NULL;
	static const Oid findtypes[2] = {TEXTOID, TEXTOID};
	Datum		findargs[2] = {user_id, PointerGetDatum(tag)};
	int			locked;
	Datum		ids;

	if (SPI_execute_plan(ChatstorePlan(&find,
									   "SELECT conversation_id FROM chatstore.conversation_tag"
									   " WHERE user_id OPERATOR(pg_catalog.=) $1"
									   "   AND tag OPERATOR(pg_catalog.=) $2"
									   " ORDER BY conversation_id",
									   2, findtypes),
						 findargs, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "chatstore: rename_tag lookup failed");
	ids = ChatstoreLockEach(SPI_tuptable, (int) SPI_processed, user_id, false, &locked, isnull);
	*count = locked;
	return ids;
}

/*
 * chatstore.rename_tag(user_id text, old_tag text, new_tag text) RETURNS bigint
 *
 * Renames one of a user's tags on every conversation that carries it and
 * returns how many conversations that was.  A conversation that carries
 * new_tag already keeps it (with its tagged_at) and loses old_tag: the two
 * tags merge.  The conversations are locked first, in id order, so a
 * concurrent tag() of new_tag on one of them waits rather than colliding;
 * a conversation tagged old_tag after they are chosen keeps it (on a
 * distributed install each is locked alone: LockEachTagged).  Another
 * user's tags are none to see: 0.
 */
Datum
chatstore_rename_tag(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	static SPIPlanPtr lock = NULL;
	static SPIPlanPtr copy = NULL;
	static SPIPlanPtr remove = NULL;
	static const Oid locktypes[2] = {TEXTOID, TEXTOID};
	static const Oid argtypes[3] = {UUIDARRAYOID, TEXTOID, TEXTOID};
	Datum		args[3];
	Datum		lockargs[2];
	text	   *old_tag;
	text	   *new_tag;
	bool		isnull;
	int64		renamed;
	Actor		actor;

	ChatstoreRequireArg(fcinfo, 0, "user_id");
	ChatstoreRequireArg(fcinfo, 1, "old_tag");
	ChatstoreRequireArg(fcinfo, 2, "new_tag");
	old_tag = ChatstoreNormalizeTag(PG_GETARG_TEXT_PP(1), "old_tag", false);
	new_tag = ChatstoreNormalizeTag(PG_GETARG_TEXT_PP(2), "new_tag", true);
	ChatstoreGetActor(&actor);
	if (!ChatstoreActorIs(&actor, PG_GETARG_TEXT_PP(0)))
		PG_RETURN_INT64(0);		/* another user's tags: none to see */

	ChatstoreConnect(fcinfo, &call);
	lockargs[0] = PG_GETARG_DATUM(0);
	lockargs[1] = PointerGetDatum(old_tag);
	if (ChatstoreDistributed())
		args[0] = LockEachTagged(lockargs[0], old_tag, &renamed, &isnull);
	else if (SPI_execute_plan(ChatstorePlan(&lock,
									   "SELECT pg_catalog.array_agg(id), pg_catalog.count(*) FROM ("
									   "  SELECT c.id FROM chatstore.conversation c"
									   "  WHERE c.user_id OPERATOR(pg_catalog.=) $1"
									   "    AND c.id IN (SELECT t.conversation_id FROM chatstore.conversation_tag t"
									   "                 WHERE t.user_id OPERATOR(pg_catalog.=) $1"
									   "                   AND t.tag OPERATOR(pg_catalog.=) $2)"
									   "  ORDER BY c.id FOR NO KEY UPDATE OF c) s",
									   2, locktypes),
						 lockargs, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "chatstore: rename_tag lookup failed");
	else
	{
		args[0] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		renamed = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	}
	args[1] = PointerGetDatum(old_tag);
	args[2] = PointerGetDatum(new_tag);

	/* nothing to do when no conversation carries it, or it keeps its name */
	if (renamed > 0 &&
		(VARSIZE_ANY_EXHDR(old_tag) != VARSIZE_ANY_EXHDR(new_tag) ||
		 memcmp(VARDATA_ANY(old_tag), VARDATA_ANY(new_tag), VARSIZE_ANY_EXHDR(old_tag)) != 0))
	{
		if (SPI_execute_plan(ChatstorePlan(&copy,
										   "INSERT INTO chatstore.conversation_tag"
										   " (conversation_id, tag, user_id, tagged_at)"
										   " SELECT conversation_id, $3, user_id, tagged_at"
										   " FROM chatstore.conversation_tag"
										   " WHERE conversation_id OPERATOR(pg_catalog.=) ANY ($1)"
										   "   AND tag OPERATOR(pg_catalog.=) $2"
										   " ON CONFLICT (conversation_id, tag) DO NOTHING",
										   3, argtypes),
							 args, NULL, false, 0) != SPI_OK_INSERT ||
			SPI_execute_plan(ChatstorePlan(&remove,
										   "DELETE FROM chatstore.conversation_tag"
										   " WHERE conversation_id OPERATOR(pg_catalog.=) ANY ($1)"
										   "   AND tag OPERATOR(pg_catalog.=) $2",
										   2, argtypes),
							 args, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "chatstore: rename_tag failed");
		renamed = (int64) SPI_processed;
	}
	ChatstoreFinish(&call);
	PG_RETURN_INT64(renamed);
}

/*
 * chatstore.delete_tag(user_id text, tag text) RETURNS bigint
 *
 * Removes one of a user's tags from every conversation that carries it and
 * returns how many conversations that was.  Another user's tags: 0.
 */
Datum
chatstore_delete_tag(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[2] = {TEXTOID, TEXTOID};
	Datum		args[2];
	int64		deleted;
	Actor		actor;

	ChatstoreRequireArg(fcinfo, 0, "user_id");
	ChatstoreRequireArg(fcinfo, 1, "tag");
	args[0] = PG_GETARG_DATUM(0);
	args[1] = PointerGetDatum(ChatstoreNormalizeTag(PG_GETARG_TEXT_PP(1), "tag", false));
	ChatstoreGetActor(&actor);
	if (!ChatstoreActorIs(&actor, PG_GETARG_TEXT_PP(0)))
		PG_RETURN_INT64(0);		/* another user's tags: none to see */

	ChatstoreConnect(fcinfo, &call);
	if (SPI_execute_plan(ChatstorePlan(&plan,
									   "DELETE FROM chatstore.conversation_tag"
									   " WHERE user_id OPERATOR(pg_catalog.=) $1"
									   "   AND tag OPERATOR(pg_catalog.=) $2",
									   2, argtypes),
						 args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "chatstore: delete_tag failed");
	deleted = (int64) SPI_processed;
	ChatstoreFinish(&call);
	PG_RETURN_INT64(deleted);
}

/*
 * chatstore.tags(user_id text) RETURNS TABLE (tag text, conversations bigint)
 *
 * A user's tags, sorted, each with the number of its conversations (live
 * and archived) that carry it.  Another user's tags: none.
 */
Datum
chatstore_tags(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[1] = {TEXTOID};
	Datum		args[1];
	Actor		actor;

	ChatstoreRequireArg(fcinfo, 0, "user_id");
	args[0] = PG_GETARG_DATUM(0);
	ChatstoreInitSRF(fcinfo);
	ChatstoreGetActor(&actor);
	if (!ChatstoreActorIs(&actor, PG_GETARG_TEXT_PP(0)))
		return (Datum) 0;		/* another user's tags: none to see */

	ChatstoreConnect(fcinfo, &call);
	if (SPI_execute_plan(ChatstorePlan(&plan,
									   "SELECT tag, pg_catalog.count(*) FROM chatstore.conversation_tag"
									   " WHERE user_id OPERATOR(pg_catalog.=) $1"
									   " GROUP BY tag ORDER BY tag COLLATE pg_catalog.\"C\"",
									   1, argtypes),
						 args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "chatstore: tags lookup failed");
	for (uint64 i = 0; i < SPI_processed; i++)
		ChatstorePutRow(fcinfo, SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
	ChatstoreFinish(&call);
	return (Datum) 0;
}

/*
 * chatstore.conversations_by_tag(user_id text, tag text, active_since interval,
 *		max_results int, before uuid, status text)
 *		RETURNS SETOF chatstore.conversation
 *
 * One page of a user's conversations that carry a tag, in the order and
 * with the keyset paging of list_conversations: most recent activity first,
 * (last_activity_at, id) descending, "before" naming the last row of the
 * previous page.  active_since keeps the conversations whose last activity
 * is at most that long before the transaction's start ('7 days': the
 * week's); status NULL (the default) lists both statuses.  The tag's index
 * yields the conversations that carry it, so the cost follows how many do,
 * not how many conversations the user has.
 */
Datum
chatstore_conversations_by_tag(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[7] = {TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, UUIDOID, INT4OID, TEXTOID};
	pg_uuid_t	max_uuid;
	Datum		args[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	int32		max_results;
	Actor		actor;
	int			rc;

	ChatstoreRequireArg(fcinfo, 0, "user_id");
	ChatstoreRequireArg(fcinfo, 1, "tag");
	ChatstoreRequireArg(fcinfo, 3, "max_results");
	max_results = PG_GETARG_INT32(3);
	ChatstoreCheckWindow("max_results", max_results);
	if (!PG_ARGISNULL(5))
	{
		char	   *status = text_to_cstring(PG_GETARG_TEXT_PP(5));

		if (strcmp(status, "active") != 0 && strcmp(status, "archived") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid status \"%s\"", ChatstoreClip(status, strlen(status))),
					 errdetail("status must be 'active', 'archived', or NULL for both.")));
	}
	args[0] = PG_GETARG_DATUM(0);
	args[1] = PointerGetDatum(ChatstoreNormalizeTag(PG_GETARG_TEXT_PP(1), "tag", false));
	args[2] = PG_ARGISNULL(2) ? TimestampTzGetDatum(DT_NOBEGIN) :
		TimestampTzGetDatum(ChatstoreIntervalAgo(NULL, NULL, PG_GETARG_INTERVAL_P(2), "active_since"));
	memset(max_uuid.data, 0xFF, UUID_LEN);
	args[3] = TimestampTzGetDatum(DT_NOEND);
	args[4] = UUIDPGetDatum(&max_uuid);
	args[5] = Int32GetDatum(max_results);
	args[6] = PG_ARGISNULL(5) ? (Datum) 0 : PG_GETARG_DATUM(5);
	nulls[6] = PG_ARGISNULL(5) ? 'n' : ' ';

	ChatstoreInitSRF(fcinfo);
	ChatstoreGetActor(&actor);
	if (!ChatstoreActorIs(&actor, PG_GETARG_TEXT_PP(0)))
		return (Datum) 0;		/* another user's conversations: none to see */
	ChatstoreConnect(fcinfo, &call);

	/* where the page starts: above everything, or just below "before" */
	if (!PG_ARGISNULL(4))
	{
		args[4] = PG_GETARG_DATUM(4);
		args[3] = ChatstorePagePosition(PG_GETARG_DATUM(4), PG_GETARG_DATUM(0));
	}

	rc = SPI_execute_plan(ChatstorePlan(&plan,
										"SELECT " CONVERSATION_COLUMNS " FROM chatstore.conversation"
										" WHERE id OPERATOR(pg_catalog.=) ANY ("
										"     SELECT t.conversation_id FROM chatstore.conversation_tag t"
										"     WHERE t.user_id OPERATOR(pg_catalog.=) $1"
										"       AND t.tag OPERATOR(pg_catalog.=) $2)"
										"   AND user_id OPERATOR(pg_catalog.=) $1"
										"   AND ($7 IS NULL OR status OPERATOR(pg_catalog.=) $7)"
										"   AND last_activity_at OPERATOR(pg_catalog.>=) $3"
										"   AND (last_activity_at, id) OPERATOR(pg_catalog.<) ($4, $5)"
										" ORDER BY last_activity_at DESC, id DESC LIMIT $6",
										7, argtypes),
						  args, nulls, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "chatstore: conversations_by_tag failed: %s", SPI_result_code_string(rc));
	for (uint64 i = 0; i < SPI_processed; i++)
		ChatstorePutRow(fcinfo, SPI_tuptable->vals[i], SPI_tuptable->tupdesc);

	ChatstoreFinish(&call);
	return (Datum) 0;
}
