/*
 * export.c
 *	  Export, import and transcript of one conversation:
 *	  chatstore.export_conversation, import_conversation, transcript.
 *
 * The export is one jsonb document of format "chatstore.conversation/1":
 *
 *	{"format": "chatstore.conversation/1",
 *	 "conversation": {"id", "user_id", "title", "model", "metadata",
 *					  "created_at", "last_activity_at"},
 *	 "messages": [{"seq", "id", "role", "content", "metadata", "model",
 *				   "tokens", "created_at", "idempotency_key"}, ...],
 *	 "tags": []}
 *
 * Times are UTC strings with microseconds ("2024-05-01T12:00:00.000000Z"),
 * whatever the session's TimeZone and DateStyle, so that one conversation
 * exports to the same JSON everywhere.  The counters (message_count,
 * token_count, last_seq) are not exported: import computes them from the
 * messages.  Neither is the storage status (active or archived, with
 * archived_at): an import is always active, and the archiver archives it
 * again by its last_activity_at.
 *
 * Import validates everything as append does before it writes anything,
 * then inserts the conversation and all its messages (two statements), so
 * it stores all or nothing.  Under its id (the default) it restores the
 * export exactly, ids included; importing an export whose conversation is
 * stored already, identical, changes nothing and returns the id; a
 * different conversation with that id raises 23505.  As a new conversation
 * (as_new) it gets a new conversation id and new message ids and keeps
 * everything else.
 *
 * The export and the identity check of import share one SQL text
 * (EXPORT_JSON), fed by the tables or by the validated input, so both
 * describe a conversation with the same expressions.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "chatstore.h"

PG_FUNCTION_INFO_V1(chatstore_export_conversation);
PG_FUNCTION_INFO_V1(chatstore_import_conversation);
PG_FUNCTION_INFO_V1(chatstore_transcript);

/* The value of "format" in every export, and the only one import reads. */
#define EXPORT_FORMAT		"chatstore.conversation/1"

/* A timestamptz column as a JSON string: UTC, microseconds, independent of settings. */
#define TS_JSON(col) \
	"pg_catalog.to_char(pg_catalog.timezone('UTC', " col "), 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* A timestamptz column as the transcript shows it: UTC, to the second. */
#define TS_TEXT(col) \
	"pg_catalog.to_char(pg_catalog.timezone('UTC', " col "), 'YYYY-MM-DD HH24:MI:SS \"UTC\"')"

/*
 * The conversation object, from a row "c".
 * 1.1: add 'key', c.key and 'state', c.state here (and in IMPORT_CONVERSATION,
 * ImportConversation, ParseConversation and InsertConversation).
 */
#define CONVERSATION_JSON \
	"pg_catalog.jsonb_build_object(" \
	"'id', c.id, 'user_id', c.user_id, 'title', c.title, 'model', c.model," \
	" 'metadata', c.metadata, 'created_at', " TS_JSON("c.created_at") "," \
	" 'last_activity_at', " TS_JSON("c.last_activity_at") ")"

/*
 * The columns of a message that an export holds, in this order: the stored
 * columns minus conversation_id (the conversation's) and archived_at.
 * 1.1: add input_tokens, output_tokens, latency_ms here, to MESSAGE_JSON,
 * to IMPORT_MESSAGES_FROM's types, to ImportMessage and ParseMessage.
 * (Each message's user_id is the conversation's: not exported, and written
 * by import from the conversation's user_id.)
 */
#define EXPORT_MESSAGE_COLUMNS \
	"seq, id, role, content, metadata, model, tokens, created_at, idempotency_key"
#define EXPORT_MESSAGE_NCOLUMNS		9

/* One message object, from a row "m" of EXPORT_MESSAGE_COLUMNS. */
#define MESSAGE_JSON \
	"pg_catalog.jsonb_build_object(" \
	"'seq', m.seq, 'id', m.id, 'role', m.role, 'content', m.content," \
	" 'metadata', m.metadata, 'model', m.model, 'tokens', m.tokens," \
	" 'created_at', " TS_JSON("m.created_at") ", 'idempotency_key', m.idempotency_key)"

/*
 * The tags of conversation c, sorted.  1.1 (chatstore.conversation_tag):
 * COALESCE((SELECT pg_catalog.jsonb_agg(t.tag ORDER BY t.tag)
 *   FROM chatstore.conversation_tag t
 *   WHERE t.conversation_id OPERATOR(pg_catalog.=) c.id), '[]')
 */
#define TAGS_JSON			"'[]'::pg_catalog.jsonb"

/* The whole export of conversation row "c", its messages read from msgsrc (an aliased "m" row source). */
#define EXPORT_JSON(msgsrc, tags) \
	"pg_catalog.jsonb_build_object(" \
	"'format', '" EXPORT_FORMAT "'::pg_catalog.text," \
	" 'conversation', " CONVERSATION_JSON "," \
	" 'messages', COALESCE((SELECT pg_catalog.jsonb_agg(" MESSAGE_JSON " ORDER BY m.seq)" \
	"   FROM " msgsrc "), '[]'::pg_catalog.jsonb)," \
	" 'tags', " tags ")"

/* A stored conversation's messages, live or archived. */
#define STORED_MESSAGES_FROM \
	"(SELECT " EXPORT_MESSAGE_COLUMNS " FROM chatstore.message" \
	"   WHERE conversation_id OPERATOR(pg_catalog.=) c.id" \
	" UNION ALL" \
	" SELECT " EXPORT_MESSAGE_COLUMNS " FROM chatstore.archived_message" \
	"   WHERE conversation_id OPERATOR(pg_catalog.=) c.id" \
	"     AND archived_at OPERATOR(pg_catalog.=) c.archived_at) m"

/* One message of an import, validated. */
typedef struct ImportMessage
{
	int32		seq;
	pg_uuid_t  *id;				/* NULL when not given */
	text	   *role;
	text	   *content;
	Jsonb	   *metadata;
	text	   *model;			/* NULL: none */
	int32		tokens;
	TimestampTz created_at;
	text	   *idempotency_key;	/* NULL: none */
	/* 1.1: input_tokens, output_tokens, latency_ms (NULL: not given) */
} ImportMessage;

/* A whole import, validated. */
typedef struct ImportConversation
{
	pg_uuid_t  *id;				/* NULL when not given */
	text	   *user_id;
	text	   *title;			/* NULL: none */
	text	   *model;			/* NULL: none */
	Jsonb	   *metadata;
	TimestampTz created_at;
	TimestampTz last_activity_at;
	/* 1.1: key (NULL: none), state */
	int			nmessages;
	ImportMessage *messages;
	int64		token_count;
} ImportConversation;

/*
 * Raise 22023 for an import document that does not follow the format.
 */
static void
BadImport(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid conversation export: %s", what),
			 errdetail("import_conversation reads the format \"" EXPORT_FORMAT "\" that export_conversation writes.")));
}

/* Error context of import: which element of messages is at fault. */
static void
ImportErrorContext(void *arg)
{
	int			position = *(int *) arg;

	if (position > 0)
		errcontext("element %d of messages", position);
}

/* Look up a key of a JSON object container; NULL when absent or JSON null. */
static JsonbValue *
GetKey(JsonbContainer *obj, const char *key)
{
	JsonbValue	k;
	JsonbValue *v;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	v = findJsonbValueFromContainer(obj, JB_FOBJECT, &k);
	return (v == NULL || v->type == jbvNull) ? NULL : v;
}

/* The object container of a JSON value; raises 22023 when it is no object. */
static JsonbContainer *
ObjectValue(JsonbValue *v, const char *what)
{
	if (v == NULL || v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		BadImport(psprintf("%s must be a JSON object", what));
	return v->val.binary.data;
}

/*
 * Raise 22023 when an object has a key not in known: a misspelt key must not
 * be dropped silently.
 */
static void
RejectUnknownKeys(JsonbContainer *obj, const char *const *known, int nknown, const char *what)
{
	JsonbIterator *it = JsonbIteratorInit(obj);
	JsonbIteratorToken tok;
	JsonbValue	v;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		bool		ok = false;

		if (tok != WJB_KEY)
			continue;
		for (int i = 0; i < nknown; i++)
			if (strlen(known[i]) == (size_t) v.val.string.len &&
				memcmp(known[i], v.val.string.val, v.val.string.len) == 0)
				ok = true;
		if (!ok)
			BadImport(psprintf("unknown key \"%s\" in %s",
							   ChatstoreClip(v.val.string.val, v.val.string.len), what));
	}
}

/* A JSON string as text; NULL when absent or null and not required. */
static text *
TextValue(JsonbValue *v, const char *what, bool required)
{
	if (v == NULL)
	{
		if (required)
			BadImport(psprintf("%s is missing", what));
		return NULL;
	}
	if (v->type != jbvString)
		BadImport(psprintf("%s must be a string", what));
	return cstring_to_text_with_len(v->val.string.val, v->val.string.len);
}

/* A JSON whole number that fits an integer; raises 22023 otherwise. */
static int32
Int32Value(JsonbValue *v, const char *what)
{
	bool		error = false;
	int32		result;

	if (v->type != jbvNumeric)
		BadImport(psprintf("%s must be a number", what));
	result = numeric_int4_opt_error(v->val.numeric, &error);
	if (error ||
		DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(v->val.numeric),
										  DirectFunctionCall1(int4_numeric,
															  Int32GetDatum(result)))) != 0)
		BadImport(psprintf("%s must be a whole number within the range of integer", what));
	return result;
}

/* A JSON string holding a UUID; raises 22023 or 22P02 otherwise. */
static pg_uuid_t *
UuidValue(JsonbValue *v, const char *what)
{
	text	   *s = TextValue(v, what, true);

	return DatumGetUUIDP(DirectFunctionCall1(uuid_in, CStringGetDatum(text_to_cstring(s))));
}

/*
 * A JSON string holding a finite timestamp with time zone, such as an
 * export's "2024-05-01T12:00:00.000000Z"; a time without zone is read in
 * the session's TimeZone.  Raises 22023 or 22007 otherwise.
 */
static TimestampTz
TimestampValue(JsonbValue *v, const char *what)
{
	text	   *s = TextValue(v, what, true);
	TimestampTz ts;

	ts = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
												 CStringGetDatum(text_to_cstring(s)),
												 ObjectIdGetDatum(InvalidOid),
												 Int32GetDatum(-1)));
	if (TIMESTAMP_NOT_FINITE(ts))
		BadImport(psprintf("%s must be a finite time", what));
	return ts;
}

/* qsort comparator of message ids */
static int
CompareUuids(const void *a, const void *b)
{
	return memcmp((*(pg_uuid_t *const *) a)->data, (*(pg_uuid_t *const *) b)->data, UUID_LEN);
}

/* qsort comparator of idempotency keys (texts, NULLs first) */
static int
CompareKeys(const void *a, const void *b)
{
	text	   *ka = *(text *const *) a;
	text	   *kb = *(text *const *) b;
	int			la,
				lb,
				cmp;

	if (ka == NULL || kb == NULL)
		return (ka != NULL) - (kb != NULL);
	la = VARSIZE_ANY_EXHDR(ka);
	lb = VARSIZE_ANY_EXHDR(kb);
	cmp = memcmp(VARDATA_ANY(ka), VARDATA_ANY(kb), Min(la, lb));
	return cmp != 0 ? cmp : (la > lb) - (la < lb);
}

/*
 * Read and validate one element of "messages", at 1-based position.  The
 * checks are append's (role, content length and blank rule, metadata,
 * model, tokens, idempotency key); seq, when given, must be the position.
 */
static void
ParseMessage(JsonbValue *elem, int position, bool need_id, ImportMessage *m)
{
	static const char *const known[] = {
		"seq", "id", "role", "content", "metadata", "model", "tokens", "created_at",
		"idempotency_key"
	};
	JsonbContainer *obj = ObjectValue(elem, "a message");
	JsonbValue *v;
	bool		tokens_given = false;

	RejectUnknownKeys(obj, known, lengthof(known), "a message");

	m->seq = position;
	if ((v = GetKey(obj, "seq")) != NULL && Int32Value(v, "seq") != position)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid conversation export: seq must run 1, 2, 3, ... in order"),
				 errdetail("Element %d of messages has seq %d; import keeps seq numbers and does not renumber them.",
						   position, Int32Value(v, "seq")),
				 errhint("Leave seq out to number the messages by their order.")));

	m->id = NULL;
	if ((v = GetKey(obj, "id")) != NULL)
		m->id = UuidValue(v, "id");
	else if (need_id)
		BadImport("a message has no id (an import under its id keeps every id; pass as_new => true for new ones)");

	m->role = TextValue(GetKey(obj, "role"), "role", true);
	m->content = TextValue(GetKey(obj, "content"), "content", true);
	m->metadata = NULL;
	if ((v = GetKey(obj, "metadata")) != NULL)
	{
		ObjectValue(v, "metadata");
		m->metadata = JsonbValueToJsonb(v);
	}
	m->model = TextValue(GetKey(obj, "model"), "model", false);
	m->tokens = 0;
	if ((v = GetKey(obj, "tokens")) != NULL)
	{
		m->tokens = Int32Value(v, "tokens");
		tokens_given = true;
	}
	m->created_at = TimestampValue(GetKey(obj, "created_at"), "created_at");
	m->idempotency_key = TextValue(GetKey(obj, "idempotency_key"), "idempotency_key", false);

	ChatstoreValidateMessage(m->role, m->content, &m->metadata, &m->tokens, tokens_given, m->model);
	if (m->idempotency_key != NULL)
		ChatstoreValidateIdempotencyKey(m->idempotency_key);
}

/*
 * Read and validate a whole import document into *conv.  need_id: every id
 * must be there (an import under its id).  Nothing is written.
 */
static void
ParseImport(Jsonb *data, bool need_id, ImportConversation *conv)
{
	static const char *const known_top[] = {"format", "conversation", "messages", "tags"};
	static const char *const known_conv[] = {
		"id", "user_id", "title", "model", "metadata", "created_at", "last_activity_at"
	};
	JsonbContainer *top;
	JsonbContainer *obj;
	JsonbValue *v;
	text	   *format;
	int			position = 0;
	ErrorContextCallback errcallback;

	if (!JB_ROOT_IS_OBJECT(data) || JB_ROOT_IS_SCALAR(data))
		BadImport("it is not a JSON object");
	top = &data->root;
	RejectUnknownKeys(top, known_top, lengthof(known_top), "the export");

	format = TextValue(GetKey(top, "format"), "format", true);
	if (strcmp(text_to_cstring(format), EXPORT_FORMAT) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unsupported export format \"%s\"",
						ChatstoreClip(VARDATA_ANY(format), VARSIZE_ANY_EXHDR(format))),
				 errdetail("This version of chatstore imports format \"" EXPORT_FORMAT "\".")));

	/* the conversation */
	obj = ObjectValue(GetKey(top, "conversation"), "conversation");
	RejectUnknownKeys(obj, known_conv, lengthof(known_conv), "conversation");
	conv->id = NULL;
	if ((v = GetKey(obj, "id")) != NULL)
		conv->id = UuidValue(v, "conversation id");
	else if (need_id)
		BadImport("the conversation has no id (pass as_new => true to import it as a new conversation)");
	conv->user_id = TextValue(GetKey(obj, "user_id"), "user_id", true);
	if (VARSIZE_ANY_EXHDR(conv->user_id) == 0)
		BadImport("user_id must not be empty");
	ChatstoreCheckIdentifier(conv->user_id, "user_id");
	conv->title = TextValue(GetKey(obj, "title"), "title", false);
	if (conv->title != NULL)
		ChatstoreCheckCodePoints(conv->title, "title", chatstore_max_title_chars,
								 "chatstore.max_title_chars");
	conv->model = TextValue(GetKey(obj, "model"), "model", false);
	if (conv->model != NULL)
		ChatstoreCheckIdentifier(conv->model, "model");
	if ((v = GetKey(obj, "metadata")) != NULL)
	{
		ObjectValue(v, "metadata");
		conv->metadata = JsonbValueToJsonb(v);
		ChatstoreCheckMetadata(conv->metadata, "metadata");
	}
	else
		conv->metadata = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	conv->created_at = TimestampValue(GetKey(obj, "created_at"), "created_at");
	conv->last_activity_at = conv->created_at;

	/* the messages, each checked as append checks it */
	conv->nmessages = 0;
	conv->messages = NULL;
	conv->token_count = 0;
	if ((v = GetKey(top, "messages")) != NULL)
	{
		if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
			BadImport("messages must be a JSON array");
		conv->nmessages = JsonContainerSize(v->val.binary.data);
		conv->messages = palloc0(sizeof(ImportMessage) * Max(conv->nmessages, 1));
		errcallback.callback = ImportErrorContext;
		errcallback.arg = &position;
		errcallback.previous = error_context_stack;
		error_context_stack = &errcallback;
		for (int i = 0; i < conv->nmessages; i++)
		{
			ImportMessage *m = &conv->messages[i];

			position = i + 1;
			ParseMessage(getIthJsonbValueFromContainer(v->val.binary.data, i), position, need_id, m);
			conv->token_count += m->tokens;
			if (m->created_at > conv->last_activity_at)
				conv->last_activity_at = m->created_at;
		}
		error_context_stack = errcallback.previous;
	}

	/* last activity: as exported, else the newest of the times above */
	if ((v = GetKey(obj, "last_activity_at")) != NULL)
		conv->last_activity_at = TimestampValue(v, "last_activity_at");

	/* a message id names one message */
	if (need_id && conv->nmessages > 1)
	{
		pg_uuid_t **ids = palloc(sizeof(pg_uuid_t *) * conv->nmessages);

		for (int i = 0; i < conv->nmessages; i++)
			ids[i] = conv->messages[i].id;
		qsort(ids, conv->nmessages, sizeof(pg_uuid_t *), CompareUuids);
		for (int i = 1; i < conv->nmessages; i++)
			if (memcmp(ids[i - 1]->data, ids[i]->data, UUID_LEN) == 0)
				BadImport(psprintf("message id %s appears twice", ChatstoreUuidText(ids[i])));
	}

	/* an idempotency key names one message of a conversation (append's unique index) */
	if (conv->nmessages > 1)
	{
		text	  **keys = palloc(sizeof(text *) * conv->nmessages);

		for (int i = 0; i < conv->nmessages; i++)
			keys[i] = conv->messages[i].idempotency_key;
		qsort(keys, conv->nmessages, sizeof(text *), CompareKeys);
		for (int i = 1; i < conv->nmessages; i++)
			if (keys[i - 1] != NULL && CompareKeys(&keys[i - 1], &keys[i]) == 0)
				BadImport(psprintf("idempotency_key \"%s\" appears twice",
								   ChatstoreClip(VARDATA_ANY(keys[i]), VARSIZE_ANY_EXHDR(keys[i]))));
	}

	/*
	 * Tags.  1.1 (chatstore.conversation_tag): read them as an array of tag
	 * strings, validated as tag() validates them, and store them after the
	 * conversation.  Until then only an empty list is accepted.
	 */
	if ((v = GetKey(top, "tags")) != NULL)
	{
		if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
			BadImport("tags must be a JSON array");
		if (JsonContainerSize(v->val.binary.data) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("importing tags is not supported yet")));
	}
}

/* A one-dimensional array of n Datums of type elemtype (nulls may be NULL). */
static Datum
MakeArray(Datum *elems, bool *nulls, int n, Oid elemtype)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, elemtype,
											  typlen, typbyval, typalign));
}

/*
 * Fill args[0 .. EXPORT_MESSAGE_NCOLUMNS-1] with one array per message
 * column of conv's messages, in EXPORT_MESSAGE_COLUMNS order.
 */
static void
MessageArrays(ImportConversation *conv, Datum *args)
{
	int			n = conv->nmessages;
	Datum	   *seqs = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *ids = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *roles = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *contents = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *metadatas = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *models = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *model_nulls = palloc(sizeof(bool) * Max(n, 1));
	Datum	   *tokens = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *times = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *keys = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *key_nulls = palloc(sizeof(bool) * Max(n, 1));

	for (int i = 0; i < n; i++)
	{
		ImportMessage *m = &conv->messages[i];

		seqs[i] = Int32GetDatum(m->seq);
		ids[i] = UUIDPGetDatum(m->id);
		roles[i] = PointerGetDatum(m->role);
		contents[i] = PointerGetDatum(m->content);
		metadatas[i] = JsonbPGetDatum(m->metadata);
		models[i] = PointerGetDatum(m->model);
		model_nulls[i] = m->model == NULL;
		tokens[i] = Int32GetDatum(m->tokens);
		times[i] = TimestampTzGetDatum(m->created_at);
		keys[i] = PointerGetDatum(m->idempotency_key);
		key_nulls[i] = m->idempotency_key == NULL;
	}
	args[0] = MakeArray(seqs, NULL, n, INT4OID);
	args[1] = MakeArray(ids, NULL, n, UUIDOID);
	args[2] = MakeArray(roles, NULL, n, TEXTOID);
	args[3] = MakeArray(contents, NULL, n, TEXTOID);
	args[4] = MakeArray(metadatas, NULL, n, JSONBOID);
	args[5] = MakeArray(models, model_nulls, n, TEXTOID);
	args[6] = MakeArray(tokens, NULL, n, INT4OID);
	args[7] = MakeArray(times, NULL, n, TIMESTAMPTZOID);
	args[8] = MakeArray(keys, key_nulls, n, TEXTOID);
}

/* The types of MessageArrays' arrays, in order. */
static const Oid message_array_types[EXPORT_MESSAGE_NCOLUMNS] = {
	INT4ARRAYOID, UUIDARRAYOID, TEXTARRAYOID, TEXTARRAYOID, JSONBARRAYOID, TEXTARRAYOID,
	INT4ARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID
};

/* The arrays of MessageArrays, given as parameters $a .. $i, as a row source "m". */
#define UNNEST_MESSAGES(a, b, c, d, e, f, g, h, i) \
	"ROWS FROM (pg_catalog.unnest($" a "), pg_catalog.unnest($" b "), pg_catalog.unnest($" c ")," \
	" pg_catalog.unnest($" d "), pg_catalog.unnest($" e "), pg_catalog.unnest($" f ")," \
	" pg_catalog.unnest($" g "), pg_catalog.unnest($" h "), pg_catalog.unnest($" i "))" \
	" AS m (" EXPORT_MESSAGE_COLUMNS ")"

/*
 * The export of stored conversation id, or NULL when it does not exist (or
 * is not the actor's).  Requires SPI.
 */
static Jsonb *
ExportStored(pg_uuid_t *id, Actor *actor, bool read_only)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[2] = {UUIDOID, TEXTOID};
	Datum		args[2];
	char		nulls[2] = {' ', ' '};
	bool		isnull;
	int			rc;

	args[0] = UUIDPGetDatum(id);
	ChatstoreActorArg(actor, &args[1], &nulls[1]);
	rc = SPI_execute_plan(ChatstorePlan(&plan,
										"SELECT " EXPORT_JSON(STORED_MESSAGES_FROM, TAGS_JSON)
										" FROM chatstore.conversation c"
										" WHERE c.id OPERATOR(pg_catalog.=) $1"
										"   AND ($2 IS NULL OR c.user_id OPERATOR(pg_catalog.=) $2)",
										2, argtypes),
						  args, nulls, read_only, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "chatstore: export failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		return NULL;
	return DatumGetJsonbP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * The export that conversation conv, stored under id, would have: the
 * export's SQL fed with the validated input instead of the tables.
 * Requires SPI.
 */
static Jsonb *
ExportOfInput(ImportConversation *conv, pg_uuid_t *id)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[7 + EXPORT_MESSAGE_NCOLUMNS] = {
		UUIDOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, TIMESTAMPTZOID, TIMESTAMPTZOID
	};
	Datum		args[7 + EXPORT_MESSAGE_NCOLUMNS];
	char		nulls[7 + EXPORT_MESSAGE_NCOLUMNS];
	bool		isnull;
	int			rc;

	memcpy(argtypes + 7, message_array_types, sizeof(message_array_types));
	memset(nulls, ' ', sizeof(nulls));
	args[0] = UUIDPGetDatum(id);
	args[1] = PointerGetDatum(conv->user_id);
	args[2] = PointerGetDatum(conv->title);
	nulls[2] = conv->title == NULL ? 'n' : ' ';
	args[3] = PointerGetDatum(conv->model);
	nulls[3] = conv->model == NULL ? 'n' : ' ';
	args[4] = JsonbPGetDatum(conv->metadata);
	args[5] = TimestampTzGetDatum(conv->created_at);
	args[6] = TimestampTzGetDatum(conv->last_activity_at);
	MessageArrays(conv, args + 7);
	rc = SPI_execute_plan(ChatstorePlan(&plan,
										"SELECT " EXPORT_JSON(UNNEST_MESSAGES("8", "9", "10", "11", "12", "13", "14", "15", "16"),
															  TAGS_JSON)
										" FROM (SELECT $1 AS id, $2 AS user_id, $3 AS title, $4 AS model,"
										"   $5 AS metadata, $6 AS created_at, $7 AS last_activity_at) c",
										7 + EXPORT_MESSAGE_NCOLUMNS, argtypes),
						  args, nulls, true, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "chatstore: import comparison failed: %s", SPI_result_code_string(rc));
	return DatumGetJsonbP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Insert the conversation row under id, with counters computed from its
 * messages, unless a conversation with that id exists.  Returns whether it
 * inserted.  Requires SPI.
 */
static bool
InsertConversation(ImportConversation *conv, pg_uuid_t *id)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[10] = {
		UUIDOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, INT8OID, INT8OID, INT4OID,
		TIMESTAMPTZOID, TIMESTAMPTZOID
	};
	Datum		args[10];
	char		nulls[10] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	int			rc;

	args[0] = UUIDPGetDatum(id);
	args[1] = PointerGetDatum(conv->user_id);
	args[2] = PointerGetDatum(conv->title);
	nulls[2] = conv->title == NULL ? 'n' : ' ';
	args[3] = PointerGetDatum(conv->model);
	nulls[3] = conv->model == NULL ? 'n' : ' ';
	args[4] = JsonbPGetDatum(conv->metadata);
	args[5] = Int64GetDatum((int64) conv->nmessages);
	args[6] = Int64GetDatum(conv->token_count);
	args[7] = Int32GetDatum(conv->nmessages);
	args[8] = TimestampTzGetDatum(conv->created_at);
	args[9] = TimestampTzGetDatum(conv->last_activity_at);
	rc = SPI_execute_plan(ChatstorePlan(&plan,
										"INSERT INTO chatstore.conversation"
										" (id, user_id, title, model, metadata, message_count, token_count,"
										"  last_seq, created_at, last_activity_at)"
										" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
										" ON CONFLICT (id) DO NOTHING",
										10, argtypes),
						  args, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "chatstore: conversation insert failed: %s", SPI_result_code_string(rc));
	return SPI_processed == 1;
}

/*
 * Insert every message of conv into conversation id, in one statement.
 * Requires SPI.
 */
static void
InsertMessages(ImportConversation *conv, pg_uuid_t *id)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1 + EXPORT_MESSAGE_NCOLUMNS] = {UUIDOID};
	Datum		args[1 + EXPORT_MESSAGE_NCOLUMNS];
	int			rc;

	if (conv->nmessages == 0)
		return;
	memcpy(argtypes + 1, message_array_types, sizeof(message_array_types));
	args[0] = UUIDPGetDatum(id);
	MessageArrays(conv, args + 1);
	rc = SPI_execute_plan(ChatstorePlan(&plan,
										"INSERT INTO chatstore.message"
										" (conversation_id, " EXPORT_MESSAGE_COLUMNS ")"
										" SELECT $1, " EXPORT_MESSAGE_COLUMNS
										" FROM " UNNEST_MESSAGES("2", "3", "4", "5", "6", "7", "8", "9", "10"),
										1 + EXPORT_MESSAGE_NCOLUMNS, argtypes),
						  args, NULL, false, 0);
	if (rc != SPI_OK_INSERT || SPI_processed != (uint64) conv->nmessages)
		elog(ERROR, "chatstore: message import failed: %s", SPI_result_code_string(rc));
}

/*
 * Raise 23505: conversation id exists and is not the one being imported.
 */
static void
ImportConflict(pg_uuid_t *id)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 errmsg("conversation %s exists already", ChatstoreUuidText(id)),
			 errdetail("A conversation with this id is stored and differs from the export; an import never replaces a stored conversation."),
			 errhint("Delete the stored conversation first, or import with as_new => true.")));
}

/*
 * chatstore.export_conversation(conversation_id uuid) RETURNS jsonb
 *
 * The conversation, live or archived, with every message, as one document
 * that import_conversation reads back.  P0002 when it does not exist (or
 * is another user's).
 */
Datum
chatstore_export_conversation(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	MemoryContext callerctx = CurrentMemoryContext;
	pg_uuid_t  *id;
	Jsonb	   *result;
	Actor		actor;

	ChatstoreRequireArg(fcinfo, 0, "conversation_id");
	id = PG_GETARG_UUID_P(0);
	ChatstoreGetActor(&actor);

	ChatstoreConnect(fcinfo, &call);
	result = ExportStored(id, &actor, true);
	if (result == NULL)
		ChatstoreConversationNotFound(id);
	MemoryContextSwitchTo(callerctx);
	result = DatumGetJsonbPCopy(JsonbPGetDatum(result));
	ChatstoreFinish(&call);
	PG_RETURN_JSONB_P(result);
}

/*
 * chatstore.import_conversation(data jsonb, as_new boolean) RETURNS uuid
 *
 * Validates the whole document first (the format, then every message as
 * append does), then stores the conversation and its messages in one go.
 * Under its id: when a conversation with that id exists already, the call
 * changes nothing and returns the id if the stored one is the same
 * (compared as exports), and raises 23505 otherwise.  The declared user
 * (chatstore.user_id) must be the conversation's user_id (42501); admins
 * import for anyone.
 */
Datum
chatstore_import_conversation(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	Jsonb	   *data;
	bool		as_new;
	ImportConversation conv;
	pg_uuid_t  *id;
	Actor		actor;

	ChatstoreRequireArg(fcinfo, 0, "data");
	ChatstoreRequireArg(fcinfo, 1, "as_new");
	data = PG_GETARG_JSONB_P(0);
	as_new = PG_GETARG_BOOL(1);

	ParseImport(data, !as_new, &conv);
	ChatstoreGetActor(&actor);
	if (!ChatstoreActorIs(&actor, conv.user_id))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot import a conversation for another user"),
				 errdetail("chatstore.user_id is \"%s\" but the conversation's user_id is \"%s\".",
						   text_to_cstring(actor.user_id), text_to_cstring(conv.user_id))));

	/*
	 * As a new conversation: new ids, made as create_conversation and append
	 * make them.  1.1: a conversation with a key has the id derived from
	 * (user_id, key) instead, and so conflicts with the original for the
	 * same user.
	 */
	if (as_new)
	{
		TimestampTz now = GetCurrentTimestamp();

		id = palloc(sizeof(pg_uuid_t));
		GenerateUuidV7(id, now);
		for (int i = 0; i < conv.nmessages; i++)
		{
			conv.messages[i].id = palloc(sizeof(pg_uuid_t));
			GenerateUuidV7(conv.messages[i].id, now);
		}
	}
	else
		id = conv.id;

	ChatstoreConnect(fcinfo, &call);
	if (InsertConversation(&conv, id))
		InsertMessages(&conv, id);
	else
	{
		/*
		 * The id is taken.  ON CONFLICT waited for any transaction inserting
		 * it, so the row is there to lock and compare, unless deleted since.
		 */
		char		status = ChatstoreConversationStatus(id, true, &actor, NULL);
		Jsonb	   *stored;

		if (status == CONV_MISSING)
		{
			Actor		admin = {ACTOR_ADMIN, NULL};

			if (ChatstoreConversationStatus(id, false, &admin, NULL) != CONV_MISSING)
				ImportConflict(id);		/* another user's */
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("conversation %s was deleted while being imported", ChatstoreUuidText(id)),
					 errhint("Run the import again.")));
		}
		stored = ExportStored(id, &actor, false);
		if (stored == NULL ||
			!DatumGetBool(DirectFunctionCall2(jsonb_eq, JsonbPGetDatum(stored),
											  JsonbPGetDatum(ExportOfInput(&conv, id)))))
			ImportConflict(id);
	}
	ChatstoreFinish(&call);
	PG_RETURN_UUID_P(id);
}

/*
 * chatstore.transcript(conversation_id uuid) RETURNS text
 *
 * A plain-text transcript for people: a header (title, id, user, model,
 * times in UTC, message count), then each message as "role (time):" and
 * its content, separated by blank lines.  Tool calls kept in metadata
 * (tool_calls, as the chat API writes them) show as one line each, their
 * arguments cut at 200 characters.
 */
Datum
chatstore_transcript(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	static SPIPlanPtr header = NULL;
	static SPIPlanPtr messages = NULL;
	static const Oid argtypes[2] = {UUIDOID, TEXTOID};
	MemoryContext callerctx = CurrentMemoryContext;
	pg_uuid_t  *id;
	Datum		args[2];
	char		nulls[2] = {' ', ' '};
	StringInfoData buf;
	SPITupleTable *tuptable;
	TupleDesc	desc;
	text	   *result;
	Actor		actor;
	int			rc;

	ChatstoreRequireArg(fcinfo, 0, "conversation_id");
	id = PG_GETARG_UUID_P(0);
	args[0] = UUIDPGetDatum(id);
	ChatstoreGetActor(&actor);
	ChatstoreActorArg(&actor, &args[1], &nulls[1]);

	ChatstoreConnect(fcinfo, &call);
	rc = SPI_execute_plan(ChatstorePlan(&header,
										"SELECT COALESCE(c.title, '(untitled)'), c.id::pg_catalog.text, c.user_id, c.model,"
										" " TS_TEXT("c.created_at") ", " TS_TEXT("c.last_activity_at") ","
										" " TS_TEXT("c.archived_at") ", c.message_count::pg_catalog.text"
										" FROM chatstore.conversation c"
										" WHERE c.id OPERATOR(pg_catalog.=) $1"
										"   AND ($2 IS NULL OR c.user_id OPERATOR(pg_catalog.=) $2)",
										2, argtypes),
						  args, nulls, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "chatstore: transcript failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		ChatstoreConversationNotFound(id);

	initStringInfo(&buf);
	tuptable = SPI_tuptable;
	desc = tuptable->tupdesc;
	appendStringInfo(&buf, "Conversation: %s\n", SPI_getvalue(tuptable->vals[0], desc, 1));
	appendStringInfo(&buf, "Id: %s\n", SPI_getvalue(tuptable->vals[0], desc, 2));
	appendStringInfo(&buf, "User: %s\n", SPI_getvalue(tuptable->vals[0], desc, 3));
	if (SPI_getvalue(tuptable->vals[0], desc, 4) != NULL)
		appendStringInfo(&buf, "Model: %s\n", SPI_getvalue(tuptable->vals[0], desc, 4));
	appendStringInfo(&buf, "Created: %s\n", SPI_getvalue(tuptable->vals[0], desc, 5));
	appendStringInfo(&buf, "Last activity: %s\n", SPI_getvalue(tuptable->vals[0], desc, 6));
	if (SPI_getvalue(tuptable->vals[0], desc, 7) != NULL)
		appendStringInfo(&buf, "Archived: %s\n", SPI_getvalue(tuptable->vals[0], desc, 7));
	appendStringInfo(&buf, "Messages: %s\n", SPI_getvalue(tuptable->vals[0], desc, 8));

	rc = SPI_execute_plan(ChatstorePlan(&messages,
										"SELECT m.role, " TS_TEXT("m.created_at") ","
										" m.model,"
										" m.metadata OPERATOR(pg_catalog.->>) 'name',"
										" m.metadata OPERATOR(pg_catalog.->>) 'tool_call_id',"
										" m.content,"
										" (SELECT pg_catalog.string_agg('[tool call '"
										"     OPERATOR(pg_catalog.||) COALESCE(t.f OPERATOR(pg_catalog.->>) 'name',"
										"        t.call OPERATOR(pg_catalog.->>) 'name', '?')"
										"     OPERATOR(pg_catalog.||) COALESCE(' ' OPERATOR(pg_catalog.||)"
										"        CASE WHEN pg_catalog.char_length(t.a) OPERATOR(pg_catalog.>) 200"
										"        THEN pg_catalog.left(t.a, 200) OPERATOR(pg_catalog.||) '...' ELSE t.a END, '')"
										"     OPERATOR(pg_catalog.||) ']', E'\\n' ORDER BY t.n)"
										"   FROM (SELECT e.n, e.call, e.call OPERATOR(pg_catalog.->) 'function' AS f,"
										"           COALESCE(e.call OPERATOR(pg_catalog.->) 'function' OPERATOR(pg_catalog.->>) 'arguments',"
										"                    (e.call OPERATOR(pg_catalog.->) 'arguments')::pg_catalog.text) AS a"
										"         FROM pg_catalog.jsonb_array_elements(CASE WHEN pg_catalog.jsonb_typeof("
										"                m.metadata OPERATOR(pg_catalog.->) 'tool_calls') OPERATOR(pg_catalog.=) 'array'"
										"              THEN m.metadata OPERATOR(pg_catalog.->) 'tool_calls' END)"
										"              WITH ORDINALITY AS e (call, n)) t)"
										" FROM (SELECT c.id, c.archived_at FROM chatstore.conversation c"
										"       WHERE c.id OPERATOR(pg_catalog.=) $1) c"
										" CROSS JOIN LATERAL " STORED_MESSAGES_FROM
										" ORDER BY m.seq",
										1, argtypes),
						  args, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "chatstore: transcript failed: %s", SPI_result_code_string(rc));
	tuptable = SPI_tuptable;
	desc = tuptable->tupdesc;
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	row = tuptable->vals[i];
		char	   *model = SPI_getvalue(row, desc, 3);
		char	   *name = SPI_getvalue(row, desc, 4);
		char	   *call_id = SPI_getvalue(row, desc, 5);
		char	   *content = SPI_getvalue(row, desc, 6);
		char	   *calls = SPI_getvalue(row, desc, 7);

		appendStringInfo(&buf, "\n%s (%s", SPI_getvalue(row, desc, 1), SPI_getvalue(row, desc, 2));
		if (name != NULL)
			appendStringInfo(&buf, ", name %s", name);
		if (model != NULL)
			appendStringInfo(&buf, ", model %s", model);
		if (call_id != NULL)
			appendStringInfo(&buf, ", for %s", call_id);
		appendStringInfoString(&buf, "):\n");
		if (content[0] != '\0')
			appendStringInfo(&buf, "%s\n", content);
		if (calls != NULL)
			appendStringInfo(&buf, "%s\n", calls);
		if (content[0] == '\0' && calls == NULL)
			appendStringInfoString(&buf, "(empty)\n");
	}

	MemoryContextSwitchTo(callerctx);
	result = cstring_to_text_with_len(buf.data, buf.len);
	ChatstoreFinish(&call);
	PG_RETURN_TEXT_P(result);
}
