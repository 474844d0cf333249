/*
 * export.c
 *	  Export, import and transcript of one conversation:
 *	  chatstore.export_conversation, import_conversation, transcript.
 *
 * The export is one jsonb document of format "chatstore.conversation/1":
 *
 *	{"format": "chatstore.conversation/1",
 *	 "conversation": {"id", "user_id", "title", "model", "metadata",
 *					  "created_at", "last_activity_at", "key", "state"},
 *	 "messages": [{"seq", "id", "role", "content", "metadata", "model",
 *				   "tokens", "created_at", "idempotency_key",
 *				   "input_tokens", "output_tokens", "latency_ms"}, ...],
 *	 "tags": [{"tag", "tagged_at"}, ...]}
 *
 * Times are UTC strings with microseconds ("2024-05-01T12:00:00.000000Z"),
 * whatever the session's TimeZone and DateStyle, so that one conversation
 * exports to the same JSON everywhere.  The counters (message_count,
 * token_count, last_seq) are not exported: import computes them from the
 * messages.  Neither is the storage status (active or archived, with
 * archived_at): an import is always active, and the archiver archives it
 * again by its last_activity_at.  Nor is each message's user_id: it is the
 * conversation's, and import writes it so.  Tags are sorted by tag in byte
 * order, each with the time it was put on.
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
 * A keyed conversation's id is derived from (user_id, key) (src/keys.c), so
 * under its id the export's id must be that one (22023 otherwise), and as
 * a new conversation it gets that id rather than a new one: the key stays
 * usable with get_or_create_conversation and append_by_key.  For the same
 * user the copy therefore collides with the original: when the stored one
 * is the same but for its message ids, the import changes nothing and
 * returns the id; otherwise 23505 (remove the key to import a copy).
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

/* The conversation object, from a row "c". */
#define CONVERSATION_JSON \
	"pg_catalog.jsonb_build_object(" \
	"'id', c.id, 'user_id', c.user_id, 'title', c.title, 'model', c.model," \
	" 'metadata', c.metadata, 'created_at', " TS_JSON("c.created_at") "," \
	" 'last_activity_at', " TS_JSON("c.last_activity_at") "," \
	" 'key', c.key, 'state', c.state)"

/*
 * The columns of a message that an export holds, in this order: the stored
 * columns minus conversation_id and user_id (both the conversation's) and
 * archived_at.
 */
#define EXPORT_MESSAGE_COLUMNS \
	"seq, id, role, content, metadata, model, tokens, created_at, idempotency_key," \
	" input_tokens, output_tokens, latency_ms"
#define EXPORT_MESSAGE_NCOLUMNS		12

/* One message object, from a row "m" of EXPORT_MESSAGE_COLUMNS. */
#define MESSAGE_JSON \
	"pg_catalog.jsonb_build_object(" \
	"'seq', m.seq, 'id', m.id, 'role', m.role, 'content', m.content," \
	" 'metadata', m.metadata, 'model', m.model, 'tokens', m.tokens," \
	" 'created_at', " TS_JSON("m.created_at") ", 'idempotency_key', m.idempotency_key," \
	" 'input_tokens', m.input_tokens, 'output_tokens', m.output_tokens," \
	" 'latency_ms', m.latency_ms)"

/*
 * The tags read from tagsrc (an aliased "t" row source of tag, tagged_at),
 * sorted in byte order as chatstore.tags() lists them.
 */
#define TAGS_JSON(tagsrc) \
	"COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(" \
	"   'tag', t.tag, 'tagged_at', " TS_JSON("t.tagged_at") ")" \
	"   ORDER BY t.tag COLLATE pg_catalog.\"C\")" \
	" FROM " tagsrc "), '[]'::pg_catalog.jsonb)"

/*
 * A stored conversation's tags: of conversation $1, the query's conversation
 * row "c" (by $1 rather than c.id, so that Citus routes the whole query to
 * the conversation's shard).
 */
#define STORED_TAGS_FROM \
	"(SELECT tag, tagged_at FROM chatstore.conversation_tag" \
	"   WHERE conversation_id OPERATOR(pg_catalog.=) $1) t"

/*
 * The whole export of conversation row "c", its messages read from msgsrc
 * (an aliased "m" row source) and its tags from tags (an aliased "t" one).
 */
#define EXPORT_JSON(msgsrc, tags) \
	"pg_catalog.jsonb_build_object(" \
	"'format', '" EXPORT_FORMAT "'::pg_catalog.text," \
	" 'conversation', " CONVERSATION_JSON "," \
	" 'messages', COALESCE((SELECT pg_catalog.jsonb_agg(" MESSAGE_JSON " ORDER BY m.seq)" \
	"   FROM " msgsrc "), '[]'::pg_catalog.jsonb)," \
	" 'tags', " TAGS_JSON(tags) ")"

/*
 * A stored conversation's messages, live or archived: of conversation $1,
 * the query's conversation row "c" (by $1, as STORED_TAGS_FROM).
 */
#define STORED_MESSAGES_FROM \
	"(SELECT " EXPORT_MESSAGE_COLUMNS " FROM chatstore.message" \
	"   WHERE conversation_id OPERATOR(pg_catalog.=) $1" \
	" UNION ALL" \
	" SELECT " EXPORT_MESSAGE_COLUMNS " FROM chatstore.archived_message" \
	"   WHERE conversation_id OPERATOR(pg_catalog.=) $1" \
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
	int32		usage[3];		/* input_tokens, output_tokens, latency_ms */
	bool		usage_given[3];	/* false: NULL */
} ImportMessage;

/* The usage figures of a message, in ImportMessage.usage order. */
static const char *const usage_keys[3] = {"input_tokens", "output_tokens", "latency_ms"};

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
	text	   *key;			/* NULL: none */
	text	   *state;
	int			nmessages;
	ImportMessage *messages;
	int64		token_count;
	int			ntags;
	text	  **tags;			/* normalized */
	TimestampTz *tagged_at;
} ImportConversation;

/* Where in an import an error is: an element of messages or of tags. */
typedef struct ImportPosition
{
	const char *array;			/* "messages" or "tags" */
	int			position;		/* 1-based; 0: none */
} ImportPosition;

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

/* Error context of import: which element of messages or tags is at fault. */
static void
ImportErrorContext(void *arg)
{
	ImportPosition *pos = (ImportPosition *) arg;

	if (pos->position > 0)
		errcontext("element %d of %s", pos->position, pos->array);
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

/* Skip exactly n ASCII digits at *p; false when they are not there. */
static bool
SkipDigits(const char **p, int n)
{
	for (int i = 0; i < n; i++, (*p)++)
		if (**p < '0' || **p > '9')
			return false;
	return true;
}

/*
 * Whether s has the form of an ISO 8601 date and time with an explicit UTC
 * offset: YYYY-MM-DD, 'T' (or a space), HH:MM[:SS[.fraction]], then 'Z' or
 * +HH[[:]MM[[:]SS]] / -HH...  That is what export_conversation writes
 * ("2024-05-01T12:00:00.000000Z") and what to_jsonb() of a timestamptz
 * writes ("2024-05-01T14:00:00+02:00").  Only the form is checked here
 * (timestamptz_in checks the values): it refuses a time without an offset,
 * which timestamptz_in would read in the session's TimeZone, and the
 * special values ("now", "today", "epoch", "infinity"), whose meaning
 * depends on when or where the document is read.
 */
static bool
IsTimeWithOffset(const char *s)
{
	const char *p = s;

	if (!SkipDigits(&p, 4))
		return false;
	while (*p >= '0' && *p <= '9')	/* years after 9999 */
		p++;
	if (*p++ != '-' || !SkipDigits(&p, 2) || *p++ != '-' || !SkipDigits(&p, 2))
		return false;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return false;
	p++;
	if (!SkipDigits(&p, 2) || *p++ != ':' || !SkipDigits(&p, 2))
		return false;
	if (*p == ':')
	{
		p++;
		if (!SkipDigits(&p, 2))
			return false;
		if (*p == '.')
		{
			p++;
			if (!SkipDigits(&p, 1))
				return false;
			while (*p >= '0' && *p <= '9')
				p++;
		}
	}
	if (*p == 'Z' || *p == 'z')
		return p[1] == '\0';
	if (*p != '+' && *p != '-')
		return false;
	p++;
	if (!SkipDigits(&p, 2))
		return false;
	for (int part = 0; part < 2 && *p != '\0'; part++)
	{
		if (*p == ':')
			p++;
		if (!SkipDigits(&p, 2))
			return false;
	}
	return *p == '\0';
}

/*
 * A JSON string holding a finite timestamp with time zone, written with
 * an explicit UTC offset or 'Z' (see IsTimeWithOffset), such as an
 * export's "2024-05-01T12:00:00.000000Z", so that a document means the
 * same time whatever the importing session's TimeZone.  Raises 22023 (not
 * a string) or 22007 otherwise.
 */
static TimestampTz
TimestampValue(JsonbValue *v, const char *what)
{
	char	   *s = text_to_cstring(TextValue(v, what, true));
	TimestampTz ts;

	if (!IsTimeWithOffset(s))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
				 errmsg("invalid conversation export: %s must be an ISO 8601 time with a UTC offset or Z", what),
				 errdetail("%s is \"%s\". A time must give its UTC offset so that the document means the same instant in every session, whatever its TimeZone; special values such as \"now\" are refused for the same reason.",
						   what, ChatstoreClip(s, strlen(s))),
				 errhint("Write times as export_conversation does, e.g. \"2024-05-01T12:00:00Z\", or with an offset such as \"2024-05-01T14:00:00+02:00\"; to_jsonb() of a timestamptz writes one.")));
	ts = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
												 CStringGetDatum(s),
												 ObjectIdGetDatum(InvalidOid),
												 Int32GetDatum(-1)));
	if (TIMESTAMP_NOT_FINITE(ts))	/* can't happen: refused by its form */
		BadImport(psprintf("%s must be a finite time", what));
	return ts;
}

/* qsort comparator of message ids */
static int
CompareUuids(const void *a, const void *b)
{
	return memcmp((*(pg_uuid_t *const *) a)->data, (*(pg_uuid_t *const *) b)->data, UUID_LEN);
}

/* qsort comparator of idempotency keys and tags (texts in byte order, NULLs first) */
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
 * model, tokens, usage figures, idempotency key); seq, when given, must be
 * the position.
 */
static void
ParseMessage(JsonbValue *elem, int position, bool need_id, ImportMessage *m)
{
	static const char *const known[] = {
		"seq", "id", "role", "content", "metadata", "model", "tokens", "created_at",
		"idempotency_key", "input_tokens", "output_tokens", "latency_ms"
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
	for (int i = 0; i < 3; i++)
	{
		m->usage[i] = 0;
		m->usage_given[i] = false;
		if ((v = GetKey(obj, usage_keys[i])) != NULL)
		{
			m->usage[i] = Int32Value(v, usage_keys[i]);
			m->usage_given[i] = true;
		}
	}

	ChatstoreValidateMessage(m->role, m->content, &m->metadata, &m->tokens, tokens_given, m->model,
							 m->usage, m->usage_given);
	if (m->idempotency_key != NULL)
		ChatstoreValidateIdempotencyKey(m->idempotency_key);
}

/*
 * Read and validate the "tags" array into conv, whose last_activity_at is
 * known.  Each element is an export's {"tag": ..., "tagged_at": ...} or just
 * the tag as a string; a tag without tagged_at takes the conversation's
 * last activity (a fixed time, so that importing it twice is a no-op).
 * Tags are normalized and limited as tag() does it (white space trimmed,
 * chatstore.max_tag_chars, chatstore.max_tags_per_conversation); one tag
 * twice is refused.
 */
static void
ParseTags(JsonbValue *v, ImportConversation *conv)
{
	static const char *const known[] = {"tag", "tagged_at"};
	ImportPosition pos = {"tags", 0};
	ErrorContextCallback errcallback;
	int			n;

	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		BadImport("tags must be a JSON array");
	n = JsonContainerSize(v->val.binary.data);
	if (n > chatstore_max_tags_per_conversation)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the conversation would have %d tags", n),
				 errdetail("A conversation may carry at most %d tags (chatstore.max_tags_per_conversation).",
						   chatstore_max_tags_per_conversation),
				 errhint("Remove tags from the export, or raise chatstore.max_tags_per_conversation.")));
	conv->ntags = n;
	conv->tags = palloc(sizeof(text *) * Max(n, 1));
	conv->tagged_at = palloc(sizeof(TimestampTz) * Max(n, 1));

	errcallback.callback = ImportErrorContext;
	errcallback.arg = &pos;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	for (int i = 0; i < n; i++)
	{
		JsonbValue *elem = getIthJsonbValueFromContainer(v->val.binary.data, i);
		text	   *tag;

		pos.position = i + 1;
		conv->tagged_at[i] = conv->last_activity_at;
		if (elem->type == jbvString)
			tag = TextValue(elem, "a tag", true);
		else if (elem->type != jbvBinary || !JsonContainerIsObject(elem->val.binary.data))
			BadImport("a tag must be a string or a JSON object {\"tag\": ..., \"tagged_at\": ...}");
		else
		{
			JsonbContainer *obj = elem->val.binary.data;
			JsonbValue *t;

			RejectUnknownKeys(obj, known, lengthof(known), "a tag");
			tag = TextValue(GetKey(obj, "tag"), "tag", true);
			if ((t = GetKey(obj, "tagged_at")) != NULL)
				conv->tagged_at[i] = TimestampValue(t, "tagged_at");
		}
		conv->tags[i] = ChatstoreNormalizeTag(tag, "tag", true);
	}
	error_context_stack = errcallback.previous;

	/* a tag names one row of conversation_tag: once each */
	if (n > 1)
	{
		text	  **sorted = palloc(sizeof(text *) * n);

		memcpy(sorted, conv->tags, sizeof(text *) * n);
		qsort(sorted, n, sizeof(text *), CompareKeys);
		for (int i = 1; i < n; i++)
			if (CompareKeys(&sorted[i - 1], &sorted[i]) == 0)
				BadImport(psprintf("tag \"%s\" appears twice",
								   ChatstoreClip(VARDATA_ANY(sorted[i]), VARSIZE_ANY_EXHDR(sorted[i]))));
	}
}

/* A time as an export writes it: UTC, microseconds, "Z". */
static char *
ExportTimeText(TimestampTz ts)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
		elog(ERROR, "chatstore: timestamp out of range");
	return psprintf("%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
					tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int) fsec);
}

/*
 * Raise 22023 when the conversation's times do not enclose its messages'
 * (and each other): created_at after its oldest message or after its
 * last_activity_at, last_activity_at before its newest message.  chatstore
 * keeps created_at <= every message's created_at <= last_activity_at, and
 * usage(), list_conversations(), conversations_by_tag() and the archiver
 * rely on it (usage(for_user => ...) starts from the conversations active
 * since the period began and created before it ended).  The document is
 * refused rather than corrected, so that an import under its id stays
 * exactly the document (its export gives it back); leaving last_activity_at
 * out computes it from the messages.
 */
static void
CheckImportTimes(ImportConversation *conv)
{
	int			oldest = -1;
	int			newest = -1;

	for (int i = 0; i < conv->nmessages; i++)
	{
		if (oldest < 0 || conv->messages[i].created_at < conv->messages[oldest].created_at)
			oldest = i;
		if (newest < 0 || conv->messages[i].created_at > conv->messages[newest].created_at)
			newest = i;
	}
	if (oldest >= 0 && conv->created_at > conv->messages[oldest].created_at)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid conversation export: the conversation's created_at is later than its oldest message"),
				 errdetail("The conversation was created at %s, message %d at %s.",
						   ExportTimeText(conv->created_at), oldest + 1,
						   ExportTimeText(conv->messages[oldest].created_at)),
				 errhint("A conversation is created no later than its first message.")));
	if (newest >= 0 && conv->last_activity_at < conv->messages[newest].created_at)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid conversation export: the conversation's last_activity_at is earlier than its newest message"),
				 errdetail("Its last_activity_at is %s, message %d was created at %s.",
						   ExportTimeText(conv->last_activity_at), newest + 1,
						   ExportTimeText(conv->messages[newest].created_at)),
				 errhint("Leave last_activity_at out to have it computed from the messages.")));
	if (conv->last_activity_at < conv->created_at)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid conversation export: the conversation's last_activity_at is earlier than its created_at"),
				 errdetail("Its last_activity_at is %s, its created_at %s.",
						   ExportTimeText(conv->last_activity_at), ExportTimeText(conv->created_at)),
				 errhint("Leave last_activity_at out to have it computed from the messages.")));
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
		"id", "user_id", "title", "model", "metadata", "created_at", "last_activity_at",
		"key", "state"
	};
	JsonbContainer *top;
	JsonbContainer *obj;
	JsonbValue *v;
	text	   *format;
	ImportPosition pos = {"messages", 0};
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
	/* the key, checked as get_or_create_conversation checks it */
	conv->key = TextValue(GetKey(obj, "key"), "key", false);
	if (conv->key != NULL)
	{
		if (VARSIZE_ANY_EXHDR(conv->key) == 0)
			BadImport("key must not be empty (leave it out, or null, for a conversation without a key)");
		ChatstoreCheckIdentifier(conv->key, "key");
	}
	/* the application's state, as set_state checks it */
	conv->state = TextValue(GetKey(obj, "state"), "state", false);
	if (conv->state != NULL)
		ChatstoreCheckState(conv->state, "state");
	else
		conv->state = cstring_to_text("active");
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
		errcallback.arg = &pos;
		errcallback.previous = error_context_stack;
		error_context_stack = &errcallback;
		for (int i = 0; i < conv->nmessages; i++)
		{
			ImportMessage *m = &conv->messages[i];

			pos.position = i + 1;
			ParseMessage(getIthJsonbValueFromContainer(v->val.binary.data, i), pos.position, need_id, m);
			conv->token_count += m->tokens;
			if (m->created_at > conv->last_activity_at)
				conv->last_activity_at = m->created_at;
		}
		error_context_stack = errcallback.previous;
	}

	/* last activity: as exported, else the newest of the times above */
	if ((v = GetKey(obj, "last_activity_at")) != NULL)
		conv->last_activity_at = TimestampValue(v, "last_activity_at");
	CheckImportTimes(conv);

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

	/* the tags, checked as tag() checks them */
	conv->ntags = 0;
	conv->tags = NULL;
	conv->tagged_at = NULL;
	if ((v = GetKey(top, "tags")) != NULL)
		ParseTags(v, conv);
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
	Datum	   *usage[3];
	bool	   *usage_nulls[3];

	for (int u = 0; u < 3; u++)
	{
		usage[u] = palloc(sizeof(Datum) * Max(n, 1));
		usage_nulls[u] = palloc(sizeof(bool) * Max(n, 1));
	}

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
		for (int u = 0; u < 3; u++)
		{
			usage[u][i] = Int32GetDatum(m->usage[u]);
			usage_nulls[u][i] = !m->usage_given[u];
		}
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
	for (int u = 0; u < 3; u++)
		args[9 + u] = MakeArray(usage[u], usage_nulls[u], n, INT4OID);
}

/* The types of MessageArrays' arrays, in order. */
static const Oid message_array_types[EXPORT_MESSAGE_NCOLUMNS] = {
	INT4ARRAYOID, UUIDARRAYOID, TEXTARRAYOID, TEXTARRAYOID, JSONBARRAYOID, TEXTARRAYOID,
	INT4ARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID, INT4ARRAYOID, INT4ARRAYOID, INT4ARRAYOID
};

/* The arrays of MessageArrays, given as parameters $a .. $l, as a row source "m". */
#define UNNEST_MESSAGES(a, b, c, d, e, f, g, h, i, j, k, l) \
	"ROWS FROM (pg_catalog.unnest($" a "), pg_catalog.unnest($" b "), pg_catalog.unnest($" c ")," \
	" pg_catalog.unnest($" d "), pg_catalog.unnest($" e "), pg_catalog.unnest($" f ")," \
	" pg_catalog.unnest($" g "), pg_catalog.unnest($" h "), pg_catalog.unnest($" i ")," \
	" pg_catalog.unnest($" j "), pg_catalog.unnest($" k "), pg_catalog.unnest($" l "))" \
	" AS m (" EXPORT_MESSAGE_COLUMNS ")"

/* The tags of an import, given as parameters $a (text[]) and $b (timestamptz[]), as a row source "t". */
#define UNNEST_TAGS(a, b) \
	"ROWS FROM (pg_catalog.unnest($" a "), pg_catalog.unnest($" b ")) AS t (tag, tagged_at)"

/* Fill args[0] and args[1] with the tags of conv and their times, as arrays. */
static void
TagArrays(ImportConversation *conv, Datum *args)
{
	int			n = conv->ntags;
	Datum	   *tags = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *times = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
	{
		tags[i] = PointerGetDatum(conv->tags[i]);
		times[i] = TimestampTzGetDatum(conv->tagged_at[i]);
	}
	args[0] = MakeArray(tags, NULL, n, TEXTOID);
	args[1] = MakeArray(times, NULL, n, TIMESTAMPTZOID);
}

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
										"SELECT " EXPORT_JSON(STORED_MESSAGES_FROM, STORED_TAGS_FROM)
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
	Oid			argtypes[9 + EXPORT_MESSAGE_NCOLUMNS + 2] = {
		UUIDOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, TEXTOID
	};
	Datum		args[9 + EXPORT_MESSAGE_NCOLUMNS + 2];
	char		nulls[9 + EXPORT_MESSAGE_NCOLUMNS + 2];
	bool		isnull;
	int			rc;

	memcpy(argtypes + 9, message_array_types, sizeof(message_array_types));
	argtypes[9 + EXPORT_MESSAGE_NCOLUMNS] = TEXTARRAYOID;
	argtypes[9 + EXPORT_MESSAGE_NCOLUMNS + 1] = TIMESTAMPTZARRAYOID;
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
	args[7] = PointerGetDatum(conv->key);
	nulls[7] = conv->key == NULL ? 'n' : ' ';
	args[8] = PointerGetDatum(conv->state);
	MessageArrays(conv, args + 9);
	TagArrays(conv, args + 9 + EXPORT_MESSAGE_NCOLUMNS);
	rc = SPI_execute_plan(ChatstorePlan(&plan,
										"SELECT " EXPORT_JSON(UNNEST_MESSAGES("10", "11", "12", "13", "14", "15", "16", "17",
																			  "18", "19", "20", "21"),
															  UNNEST_TAGS("22", "23"))
										" FROM (SELECT $1 AS id, $2 AS user_id, $3 AS title, $4 AS model,"
										"   $5 AS metadata, $6 AS created_at, $7 AS last_activity_at,"
										"   $8 AS key, $9 AS state) c",
										9 + EXPORT_MESSAGE_NCOLUMNS + 2, argtypes),
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
	static const Oid argtypes[12] = {
		UUIDOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, INT8OID, INT8OID, INT4OID,
		TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, TEXTOID
	};
	Datum		args[12];
	char		nulls[12] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
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
	args[10] = PointerGetDatum(conv->key);
	nulls[10] = conv->key == NULL ? 'n' : ' ';
	args[11] = PointerGetDatum(conv->state);
	rc = SPI_execute_plan(ChatstorePlan(&plan,
										"INSERT INTO chatstore.conversation"
										" (id, user_id, title, model, metadata, message_count, token_count,"
										"  last_seq, created_at, last_activity_at, key, state)"
										" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
										" ON CONFLICT (id) DO NOTHING",
										12, argtypes),
						  args, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "chatstore: conversation insert failed: %s", SPI_result_code_string(rc));
	return SPI_processed == 1;
}

/*
 * Insert every message of conv into conversation id, in one statement, each
 * with the conversation's user_id as append writes it.  Requires SPI.
 */
static void
InsertMessages(ImportConversation *conv, pg_uuid_t *id)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[2 + EXPORT_MESSAGE_NCOLUMNS] = {UUIDOID, TEXTOID};
	Datum		args[2 + EXPORT_MESSAGE_NCOLUMNS];
	int			rc;

	if (conv->nmessages == 0)
		return;
	memcpy(argtypes + 2, message_array_types, sizeof(message_array_types));
	args[0] = UUIDPGetDatum(id);
	args[1] = PointerGetDatum(conv->user_id);
	MessageArrays(conv, args + 2);
	rc = SPI_execute_plan(ChatstorePlan(&plan,
										"INSERT INTO chatstore.message"
										" (conversation_id, user_id, " EXPORT_MESSAGE_COLUMNS ")"
										" SELECT $1, $2, " EXPORT_MESSAGE_COLUMNS
										" FROM " UNNEST_MESSAGES("3", "4", "5", "6", "7", "8", "9", "10", "11",
																 "12", "13", "14"),
										2 + EXPORT_MESSAGE_NCOLUMNS, argtypes),
						  args, NULL, false, 0);
	if (rc != SPI_OK_INSERT || SPI_processed != (uint64) conv->nmessages)
		elog(ERROR, "chatstore: message import failed: %s", SPI_result_code_string(rc));
}

/*
 * Insert the tags of conv on conversation id, just inserted, each with the
 * conversation's user_id, as tag() stores them.  Requires SPI.
 */
static void
InsertTags(ImportConversation *conv, pg_uuid_t *id)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[4] = {UUIDOID, TEXTOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID};
	Datum		args[4];
	int			rc;

	if (conv->ntags == 0)
		return;
	args[0] = UUIDPGetDatum(id);
	args[1] = PointerGetDatum(conv->user_id);
	TagArrays(conv, args + 2);
	rc = SPI_execute_plan(ChatstorePlan(&plan,
										"INSERT INTO chatstore.conversation_tag"
										" (conversation_id, tag, user_id, tagged_at)"
										" SELECT $1, t.tag, $2, t.tagged_at FROM " UNNEST_TAGS("3", "4")
										" ON CONFLICT (conversation_id, tag) DO NOTHING",
										4, argtypes),
						  args, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "chatstore: tag import failed: %s", SPI_result_code_string(rc));
}

/*
 * Raise 23505: conversation id exists and is not the one being imported.
 * keyed: the id is the one derived from the export's (user_id, key), which
 * as_new cannot change.
 */
static void
ImportConflict(pg_uuid_t *id, ImportConversation *conv, bool keyed)
{
	if (keyed)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("conversation %s exists already", ChatstoreUuidText(id)),
				 errdetail("The export has key \"%s\", and the conversation of that key of user %s is stored and differs from the export; an import never replaces a stored conversation.",
						   ChatstoreClip(VARDATA_ANY(conv->key), VARSIZE_ANY_EXHDR(conv->key)),
						   ChatstoreClip(VARDATA_ANY(conv->user_id), VARSIZE_ANY_EXHDR(conv->user_id))),
				 errhint("A keyed conversation's id is derived from its user_id and key: delete the stored conversation first, or remove the key (or change it) to import a copy.")));
	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 errmsg("conversation %s exists already", ChatstoreUuidText(id)),
			 errdetail("A conversation with this id is stored and differs from the export; an import never replaces a stored conversation."),
			 errhint("Delete the stored conversation first, or import with as_new => true.")));
}

/*
 * Give conv's messages the ids of the stored export's messages, in seq
 * order, so that an as_new import of a keyed conversation compares with the
 * stored one on everything but the message ids it generated.  Returns false
 * when the message counts differ (they are different conversations then).
 */
static bool
TakeStoredMessageIds(ImportConversation *conv, Jsonb *stored)
{
	JsonbValue *v = GetKey(&stored->root, "messages");
	JsonbContainer *messages;

	if (v == NULL || v->type != jbvBinary)
		elog(ERROR, "chatstore: an export without messages");
	messages = v->val.binary.data;
	if (JsonContainerSize(messages) != (uint32) conv->nmessages)
		return false;
	for (int i = 0; i < conv->nmessages; i++)
		conv->messages[i].id = UuidValue(GetKey(ObjectValue(getIthJsonbValueFromContainer(messages, i),
															"a message"), "id"), "id");
	return true;
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
 * append does, then the tags as tag() does), then stores the conversation,
 * its messages and its tags in one go.  Under its id: when a conversation
 * with that id exists already, the call changes nothing and returns the id
 * if the stored one is the same (compared as exports), and raises 23505
 * otherwise.  A keyed conversation's id is the one derived from (user_id,
 * key), under its id and as new (see the head of this file).  The declared
 * user (chatstore.user_id) must be the conversation's user_id (42501);
 * admins import for anyone.
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
	 * A keyed conversation's id is derived from (user_id, key), as
	 * get_or_create_conversation derives it: an export under its id must
	 * have that id, and as new it gets that id.
	 */
	if (conv.key != NULL)
	{
		pg_uuid_t  *keyed = palloc(sizeof(pg_uuid_t));

		ChatstoreKeyedConversationId(conv.user_id, conv.key, keyed);
		if (!as_new && memcmp(keyed->data, conv.id->data, UUID_LEN) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid conversation export: the id of a conversation with a key must be derived from its user_id and key"),
					 errdetail("The conversation has key \"%s\" and id %s, but the id of that key of user %s is %s.",
							   ChatstoreClip(VARDATA_ANY(conv.key), VARSIZE_ANY_EXHDR(conv.key)),
							   ChatstoreUuidText(conv.id),
							   ChatstoreClip(VARDATA_ANY(conv.user_id), VARSIZE_ANY_EXHDR(conv.user_id)),
							   ChatstoreUuidText(keyed)),
					 errhint("chatstore.conversation_id(user_id, key) gives the id; to change the user_id or key of an export, import it with as_new => true.")));
		id = keyed;
	}
	else if (as_new)
	{
		/* as a new conversation: a new id, made as create_conversation makes it */
		id = palloc(sizeof(pg_uuid_t));
		GenerateUuidV7(id, GetCurrentTimestamp());
	}
	else
	{
		/*
		 * Version 5 ids are the ids of keys (chatstore.conversation_id): a
		 * conversation without a key must not take one, or it would squat on
		 * that key of whoever it belongs to.
		 */
		if ((conv.id->data[6] >> 4) == 5)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid conversation export: a conversation without a key cannot have the id of a key"),
					 errdetail("Id %s is a version 5 UUID, the kind chatstore.conversation_id(user_id, key) derives.",
							   ChatstoreUuidText(conv.id)),
					 errhint("Give the export its key, or import it with as_new => true.")));
		id = conv.id;
	}

	/* as a new conversation: new message ids, made as append makes them */
	if (as_new)
	{
		TimestampTz now = GetCurrentTimestamp();

		for (int i = 0; i < conv.nmessages; i++)
		{
			conv.messages[i].id = palloc(sizeof(pg_uuid_t));
			GenerateUuidV7(conv.messages[i].id, now);
		}
	}

	ChatstoreConnect(fcinfo, &call);
	if (InsertConversation(&conv, id))
	{
		InsertMessages(&conv, id);
		InsertTags(&conv, id);
	}
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
				ImportConflict(id, &conv, conv.key != NULL);	/* another user's */
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("conversation %s was deleted while being imported", ChatstoreUuidText(id)),
					 errhint("Run the import again.")));
		}
		stored = ExportStored(id, &actor, false);
		if (stored == NULL ||
			(as_new && !TakeStoredMessageIds(&conv, stored)) ||
			!DatumGetBool(DirectFunctionCall2(jsonb_eq, JsonbPGetDatum(stored),
											  JsonbPGetDatum(ExportOfInput(&conv, id)))))
			ImportConflict(id, &conv, conv.key != NULL);
	}
	ChatstoreFinish(&call);
	PG_RETURN_UUID_P(id);
}

/*
 * chatstore.transcript(conversation_id uuid) RETURNS text
 *
 * A plain-text transcript for people: a header (title, id, user, key,
 * model, state, tags, times in UTC, message count), then each message as
 * "role (time, ...):" and its content, separated by blank lines; the
 * parentheses also hold the message's name, model, tool call id and usage
 * (tokens in and out, latency) when it has them.  Tool calls kept in metadata
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
										" " TS_TEXT("c.archived_at") ", c.message_count::pg_catalog.text,"
										" c.key, c.state,"
										" (SELECT pg_catalog.string_agg(t.tag, ', ' ORDER BY t.tag COLLATE pg_catalog.\"C\")"
										"    FROM chatstore.conversation_tag t"
										"   WHERE t.conversation_id OPERATOR(pg_catalog.=) $1)"
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
	if (SPI_getvalue(tuptable->vals[0], desc, 9) != NULL)
		appendStringInfo(&buf, "Key: %s\n", SPI_getvalue(tuptable->vals[0], desc, 9));
	if (SPI_getvalue(tuptable->vals[0], desc, 4) != NULL)
		appendStringInfo(&buf, "Model: %s\n", SPI_getvalue(tuptable->vals[0], desc, 4));
	appendStringInfo(&buf, "State: %s\n", SPI_getvalue(tuptable->vals[0], desc, 10));
	if (SPI_getvalue(tuptable->vals[0], desc, 11) != NULL)
		appendStringInfo(&buf, "Tags: %s\n", SPI_getvalue(tuptable->vals[0], desc, 11));
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
										"              WITH ORDINALITY AS e (call, n)) t),"
										" m.input_tokens, m.output_tokens, m.latency_ms"
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
		char	   *input_tokens = SPI_getvalue(row, desc, 8);
		char	   *output_tokens = SPI_getvalue(row, desc, 9);
		char	   *latency_ms = SPI_getvalue(row, desc, 10);

		appendStringInfo(&buf, "\n%s (%s", SPI_getvalue(row, desc, 1), SPI_getvalue(row, desc, 2));
		if (name != NULL)
			appendStringInfo(&buf, ", name %s", name);
		if (model != NULL)
			appendStringInfo(&buf, ", model %s", model);
		if (call_id != NULL)
			appendStringInfo(&buf, ", for %s", call_id);
		if (input_tokens != NULL)
			appendStringInfo(&buf, ", %s tokens in", input_tokens);
		if (output_tokens != NULL)
			appendStringInfo(&buf, ", %s tokens out", output_tokens);
		if (latency_ms != NULL)
			appendStringInfo(&buf, ", %s ms", latency_ms);
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
