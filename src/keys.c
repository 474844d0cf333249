/*
 * keys.c
 *	  Conversations keyed by the application: chatstore.conversation_id,
 *	  get_or_create_conversation, append_by_key.
 *
 * An application that names its conversations itself ("default", a browser
 * tab id) passes that name as the conversation's key.  A keyed
 * conversation's id is not random: it is the name-based UUID (RFC 9562
 * version 5, SHA-1) of (user_id, key) under a fixed chatstore namespace.
 * So "the conversation of (user, key)" is a primary-key lookup, two
 * sessions racing to create it insert the same id and the primary key lets
 * only one of them in, and no unique index without the conversation id is
 * needed (a sharded store could not enforce one).
 *
 * Version 5 rather than version 8 with SHA-256: it is the standard
 * name-based UUID, which every UUID library computes (Python's
 * uuid.uuid5), so an application can derive the id itself.  SHA-1's
 * weakness is collisions an attacker builds for two names of their own
 * choosing; both names here begin with the user id, so such a pair gives
 * one user two keys for one conversation, never another user's.  Even so,
 * every lookup checks that the row found has the user id and key asked for.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/sha1.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "chatstore.h"

PG_FUNCTION_INFO_V1(chatstore_conversation_id);
PG_FUNCTION_INFO_V1(chatstore_get_or_create_conversation);
PG_FUNCTION_INFO_V1(chatstore_append_by_key);

/* The namespace of keyed conversation ids: 60a52937-8627-4f07-a9f9-ccfb143757cc */
static const uint8 chatstore_key_namespace[UUID_LEN] = {
	0x60, 0xa5, 0x29, 0x37, 0x86, 0x27, 0x4f, 0x07,
	0xa9, 0xf9, 0xcc, 0xfb, 0x14, 0x37, 0x57, 0xcc
};

/*
 * Raise 22004 for a NULL, 22023 for an empty value and 22001 for one longer
 * than an identifier may be (user_id and key are both compared byte for
 * byte, as identifiers are).
 */
static text *
IdentifierArg(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	text	   *value;

	ChatstoreRequireArg(fcinfo, argno, argname);
	value = PG_GETARG_TEXT_PP(argno);
	if (VARSIZE_ANY_EXHDR(value) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", argname),
				 errdetail("Pass the application's identifier for %s.", argname)));
	ChatstoreCheckIdentifier(value, argname);
	return value;
}

/*
 * The id of the conversation with this user id and key: the version 5 UUID
 * of the name "<bytes of user_id, in decimal>:<user_id><key>" under
 * chatstore_key_namespace.  The length prefix makes the name tell the two
 * apart, so ('a', 'bc') and ('ab', 'c') get different ids.  In Python:
 * uuid.uuid5(namespace, f"{len(user_id.encode())}:{user_id}{key}").
 * import_conversation (export.c) checks a keyed export's id with it.
 */
void
ChatstoreKeyedConversationId(text *user_id, text *key, pg_uuid_t *id)
{
	pg_cryptohash_ctx *ctx;
	uint8		digest[SHA1_DIGEST_LENGTH];
	char		prefix[16];
	int			prefixlen;

	prefixlen = snprintf(prefix, sizeof(prefix), "%d:", (int) VARSIZE_ANY_EXHDR(user_id));
	ctx = pg_cryptohash_create(PG_SHA1);
	if (ctx == NULL ||
		pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, chatstore_key_namespace, UUID_LEN) < 0 ||
		pg_cryptohash_update(ctx, (uint8 *) prefix, prefixlen) < 0 ||
		pg_cryptohash_update(ctx, (uint8 *) VARDATA_ANY(user_id), VARSIZE_ANY_EXHDR(user_id)) < 0 ||
		pg_cryptohash_update(ctx, (uint8 *) VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key)) < 0 ||
#if PG_VERSION_NUM >= 150000
		pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0
#else
		pg_cryptohash_final(ctx, digest) < 0
#endif
		)
		elog(ERROR, "chatstore: could not compute SHA-1 for a conversation key");
	pg_cryptohash_free(ctx);

	memcpy(id->data, digest, UUID_LEN);
	id->data[6] = (id->data[6] & 0x0F) | 0x50;	/* version 5 */
	id->data[8] = (id->data[8] & 0x3F) | 0x80;	/* variant RFC 9562 */
}

/* Whether two texts hold the same bytes (identifiers compare so). */
static bool
SameBytes(text *a, text *b)
{
	return VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0;
}

/*
 * Make sure the conversation of (user_id, key) exists, creating it with
 * title, metadata and model when it does not, and lock it FOR KEY SHARE so
 * it cannot be deleted before the transaction ends (appends and archiving
 * do not wait for that lock; delete_conversation, erase_user and purge do).
 * Returns true when this call created it.
 *
 * The usual case, a conversation that exists, takes one statement.  When
 * there is none, INSERT ... ON CONFLICT DO NOTHING waits for a session
 * inserting the same id to end, so of two racing sessions one creates the
 * row and the other finds it on its next look.  When the row is deleted in
 * between, the loop creates it again.  Requires SPI, connected as the
 * extension's owner.
 */
static bool
EnsureKeyedConversation(pg_uuid_t *id, text *user_id, text *key, Datum title,
						bool title_null, Datum metadata, bool metadata_null,
						Datum model, bool model_null)
{
	static SPIPlanPtr insert = NULL;
	static SPIPlanPtr lock = NULL;
	static const Oid argtypes[7] = {UUIDOID, TEXTOID, TEXTOID, JSONBOID, TEXTOID, TIMESTAMPTZOID, TEXTOID};
	TimestampTz now = GetCurrentTimestamp();
	Datum		args[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

	args[0] = UUIDPGetDatum(id);
	args[1] = PointerGetDatum(user_id);
	args[2] = title;
	nulls[2] = title_null ? 'n' : ' ';
	args[3] = metadata;
	nulls[3] = metadata_null ? 'n' : ' ';
	args[4] = model;
	nulls[4] = model_null ? 'n' : ' ';
	args[5] = TimestampTzGetDatum(now);
	args[6] = PointerGetDatum(key);

	for (int attempt = 0; attempt < 100; attempt++)
	{
		int			rc;
		bool		isnull;
		text	   *found_user;
		Datum		found_key;

		/* the usual case first: it exists, one statement locks and reads it */
		rc = SPI_execute_plan(ChatstorePlan(&lock,
											"SELECT user_id, key FROM chatstore.conversation"
											" WHERE id OPERATOR(pg_catalog.=) $1 FOR KEY SHARE",
											1, argtypes),
							  args, NULL, false, 1);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "chatstore: conversation lock failed: %s", SPI_result_code_string(rc));
		if (SPI_processed == 0)
		{
			rc = SPI_execute_plan(ChatstorePlan(&insert,
												"INSERT INTO chatstore.conversation"
												" (id, user_id, title, metadata, model, created_at, last_activity_at, key)"
												" VALUES ($1, $2, $3, COALESCE($4, '{}'::pg_catalog.jsonb), $5, $6, $6, $7)"
												" ON CONFLICT (id) DO NOTHING",
												7, argtypes),
								  args, nulls, false, 0);
			if (rc != SPI_OK_INSERT)
				elog(ERROR, "chatstore: conversation insert failed: %s", SPI_result_code_string(rc));
			if (SPI_processed == 1)
				return true;
			continue;			/* another session made it meanwhile: lock it */
		}

		found_user = DatumGetTextPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		found_key = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		if (isnull || !SameBytes(found_user, user_id) || !SameBytes(DatumGetTextPP(found_key), key))
			ereport(ERROR,
					(errcode(ERRCODE_UNIQUE_VIOLATION),
					 errmsg("the id of key \"%s\" of user %s is taken by another conversation",
							ChatstoreClip(VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key)),
							ChatstoreClip(VARDATA_ANY(user_id), VARSIZE_ANY_EXHDR(user_id))),
					 errdetail("Conversation %s exists but is not that user's conversation with that key.",
							   ChatstoreUuidText(id)),
					 errhint("Use another key, or delete the conversation holding the id.")));
		return false;
	}
	elog(ERROR, "chatstore: conversation %s appeared and disappeared 100 times while being created",
		 ChatstoreUuidText(id));
	return false;				/* keep compiler quiet */
}

/*
 * Raise 42501 when the declared user is not user_id (an admin, with no user
 * declared, acts for every user).
 */
static void
RequireActorIs(text *user_id)
{
	Actor		actor;

	ChatstoreGetActor(&actor);
	if (!ChatstoreActorIs(&actor, user_id))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot create a conversation for another user"),
				 errdetail("chatstore.user_id is \"%s\" but user_id is \"%s\".",
						   text_to_cstring(actor.user_id), text_to_cstring(user_id))));
}

/*
 * chatstore.conversation_id(user_id text, key text) RETURNS uuid
 *
 * The id that the conversation of (user_id, key) has or will have; looks
 * nothing up.
 */
Datum
chatstore_conversation_id(PG_FUNCTION_ARGS)
{
	text	   *user_id = IdentifierArg(fcinfo, 0, "user_id");
	text	   *key = IdentifierArg(fcinfo, 1, "key");
	pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));

	ChatstoreKeyedConversationId(user_id, key, id);
	PG_RETURN_UUID_P(id);
}

/*
 * chatstore.get_or_create_conversation(user_id text, key text, title text,
 *		metadata jsonb, model text) RETURNS uuid
 *
 * Returns the id of user_id's conversation with this key, creating it (with
 * title, metadata and model) when there is none.  An existing conversation
 * is returned as it is, archived or not: title, metadata and model are used
 * only to create one.  The conversation stays locked against deletion
 * until the transaction ends.
 */
Datum
chatstore_get_or_create_conversation(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	text	   *user_id = IdentifierArg(fcinfo, 0, "user_id");
	text	   *key = IdentifierArg(fcinfo, 1, "key");
	pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));

	if (!PG_ARGISNULL(2))
		ChatstoreCheckCodePoints(PG_GETARG_TEXT_PP(2), "title",
								 chatstore_max_title_chars, "chatstore.max_title_chars");
	if (!PG_ARGISNULL(3))
		ChatstoreCheckMetadata(PG_GETARG_JSONB_P(3), "metadata");
	if (!PG_ARGISNULL(4))
		ChatstoreCheckIdentifier(PG_GETARG_TEXT_PP(4), "model");
	RequireActorIs(user_id);
	ChatstoreKeyedConversationId(user_id, key, id);

	ChatstoreConnect(fcinfo, &call);
	(void) EnsureKeyedConversation(id, user_id, key,
								   PG_ARGISNULL(2) ? (Datum) 0 : PointerGetDatum(PG_GETARG_TEXT_PP(2)),
								   PG_ARGISNULL(2),
								   PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3),
								   PG_ARGISNULL(3),
								   PG_ARGISNULL(4) ? (Datum) 0 : PointerGetDatum(PG_GETARG_TEXT_PP(4)),
								   PG_ARGISNULL(4));
	ChatstoreFinish(&call);

	PG_RETURN_UUID_P(id);
}

/*
 * chatstore.append_by_key(user_id text, key text, role text, content text,
 *		metadata jsonb, tokens int, model text, idempotency_key text,
 *		input_tokens int, output_tokens int, latency_ms int)
 *		RETURNS chatstore.message
 *
 * Appends to user_id's conversation with this key, creating it first (with
 * no title, metadata {} and no model) when there is none: one call, one
 * round trip.  The message is stored by chatstore.append itself, called
 * with the conversation's id in place of (user_id, key), so it is validated,
 * numbered and deduplicated by idempotency key exactly as append does it;
 * an archived conversation raises append's 55000.  Any error undoes the
 * creation with the rest of the statement.
 *
 * The arguments after key are append's arguments after conversation_id, in
 * the same order, and are passed on as they are: arguments added at the end
 * of both signatures need no change here.
 */
Datum
chatstore_append_by_key(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	text	   *user_id = IdentifierArg(fcinfo, 0, "user_id");
	text	   *key = IdentifierArg(fcinfo, 1, "key");
	pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));
	LOCAL_FCINFO(appendinfo, FUNC_MAX_ARGS);
	int			nargs = PG_NARGS() - 1;
	Datum		result;

	RequireActorIs(user_id);
	ChatstoreKeyedConversationId(user_id, key, id);

	ChatstoreConnect(fcinfo, &call);
	(void) EnsureKeyedConversation(id, user_id, key, (Datum) 0, true, (Datum) 0, true,
								   (Datum) 0, true);
	ChatstoreFinish(&call);

	/*
	 * append's call: same function info (the result type, the owner and the
	 * volatility it looks up are append_by_key's, and the same as append's),
	 * the id first, then our arguments after key.
	 */
	InitFunctionCallInfoData(*appendinfo, fcinfo->flinfo, nargs, fcinfo->fncollation,
							 fcinfo->context, fcinfo->resultinfo);
	appendinfo->args[0].value = UUIDPGetDatum(id);
	appendinfo->args[0].isnull = false;
	for (int i = 1; i < nargs; i++)
		appendinfo->args[i] = fcinfo->args[i + 1];
	result = chatstore_append(appendinfo);
	fcinfo->isnull = appendinfo->isnull;
	return result;
}
