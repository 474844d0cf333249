/*
 * migrate.c
 *	  Migration in one call: chatstore.import_langchain, import_sessions.
 *
 * Both read an application's own chat table and store each of its sessions
 * as a keyed conversation (src/keys.c): the session id is the key, so the
 * application finds the conversation again with conversation_id(user_id,
 * session_id), get_or_create_conversation and append_by_key.
 *
 *	- import_langchain reads LangChain's PostgresChatMessageHistory table
 *	  (langchain-postgres: id serial, session_id uuid, message jsonb,
 *	  created_at timestamptz; langchain_community: message_store(id serial,
 *	  session_id text, message jsonb)), whose message column holds
 *	  LangChain's message_to_dict(): {"type": ..., "data": {...}}.  A
 *	  LangChain session has no user: the caller names it (for_user, or a
 *	  JSON object mapping session ids to user ids).
 *	- import_sessions reads a hand-written layer's messages table (seed 000:
 *	  id, session_id, user_id, role, content, created_at).
 *
 * The source is read through SPI with one cursor ordered by session and id,
 * as the calling role (so its privileges and row-level security apply:
 * the functions themselves run as the extension's owner, who may read
 * anything).  Each session is then, in order:
 *	1. mapped and validated as append validates, in a subtransaction that
 *	   writes nothing (so it takes no transaction id): an error there makes
 *	   the session "failed" with its SQLSTATE and the others go on;
 *	2. written, without a subtransaction: the conversation is created with
 *	   every message, or, when it exists and its messages are the first of
 *	   the session's (or the session's are its first), the messages added
 *	   since are appended with the next seq numbers.  Every refusal here
 *	   (the conversation is archived, completed, or holds other messages) is
 *	   found before anything of the session is written and is reported, not
 *	   raised.
 * So a session is stored whole or not at all, running it again stores
 * nothing twice, and no subtransaction ever gets a transaction id (a
 * hundred thousand sessions would otherwise overflow the subtransaction
 * cache of every snapshot taken meanwhile).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "chatstore.h"

PG_FUNCTION_INFO_V1(chatstore_import_langchain);
PG_FUNCTION_INFO_V1(chatstore_import_sessions);

/* Rows fetched from the source at a time. */
#define IMPORT_BATCH		1000

/* The columns of a result row of both functions. */
#define IMPORT_NCOLUMNS		8

/* Which table layout is read. */
typedef enum SourceLayout
{
	LAYOUT_LANGCHAIN,			/* session_id, message jsonb */
	LAYOUT_SESSIONS				/* user_id, session_id, role, content */
} SourceLayout;

/* One row of the source, as read (strings are NULL for SQL NULLs). */
typedef struct SourceRow
{
	char	   *row_id;			/* the table's id, as text, for errors */
	Jsonb	   *message;		/* LangChain: the serialized message */
	text	   *role;			/* sessions layout */
	text	   *content;
	TimestampTz created_at;
	bool		created_at_null;
} SourceRow;

/* One message to store, mapped from a source row and validated. */
typedef struct MappedMessage
{
	text	   *role;
	text	   *content;
	Jsonb	   *metadata;
	text	   *model;			/* NULL: none */
	int32		tokens;
	int32		usage[3];		/* input_tokens, output_tokens, latency_ms */
	bool		usage_given[3];
	TimestampTz created_at;
} MappedMessage;

/* One session of the source: its rows, then its messages. */
typedef struct Session
{
	text	   *user_id;		/* NULL: no user known */
	text	   *key;			/* NULL: the session id is NULL */
	bool		user_not_string;	/* the users map gave a non-string */
	int			nrows;
	int			cap;
	SourceRow  *rows;
	MappedMessage *messages;
	int64		tokens;			/* of every message */
	TimestampTz min_created;
	TimestampTz max_created;
} Session;

/* What became of a session: one row of the result. */
typedef struct Outcome
{
	const char *status;			/* imported, continued, skipped, failed */
	int			messages;		/* stored by this call */
	bool		have_id;
	pg_uuid_t	id;
	const char *sqlstate;		/* failed only */
	char	   *error;
	char	   *detail;
} Outcome;

/* The state of one call. */
typedef struct ImportState
{
	FunctionCallInfo fcinfo;
	SourceLayout layout;
	text	   *for_user;		/* LangChain: every session's user, or NULL */
	Jsonb	   *users;			/* LangChain: session id -> user id, or NULL */
	Actor		actor;
	TimestampTz now;
	MemoryContext session_cxt;	/* the current session, reset after each */
	ChatstoreCall call;
	const char *position;		/* row id of the message being mapped */
} ImportState;

static void BadMessage(const char *what) pg_attribute_noreturn();
static void NullColumn(const char *column) pg_attribute_noreturn();

/*
 * Raise 22023 for a message that is not LangChain's serialization.
 */
static void
BadMessage(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid LangChain message: %s", what),
			 errdetail("A message is {\"type\": \"human\", \"data\": {\"content\": ...}} as LangChain's message_to_dict() writes it; type is human, ai, system, tool, function or chat.")));
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
	return v == NULL || v->type == jbvNull ? NULL : v;
}

/* Whether a JSON value is the string s. */
static bool
IsString(JsonbValue *v, const char *s)
{
	return v != NULL && v->type == jbvString && v->val.string.len == (int) strlen(s) &&
		memcmp(v->val.string.val, s, v->val.string.len) == 0;
}

/* Whether a JSON value is an object (or, object false, an array). */
static bool
IsContainer(JsonbValue *v, bool object)
{
	return v != NULL && v->type == jbvBinary &&
		(object ? JsonContainerIsObject(v->val.binary.data) : JsonContainerIsArray(v->val.binary.data));
}

/* A JSON string as text. */
static text *
StringText(JsonbValue *v)
{
	return cstring_to_text_with_len(v->val.string.val, v->val.string.len);
}

/* Push an object key. */
static void
PushKey(JsonbParseState **state, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(state, WJB_KEY, &k);
}

/* Push a string value. */
static void
PushStringValue(JsonbParseState **state, const char *s, int len)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) s;
	v.val.string.len = len;
	pushJsonbValue(state, WJB_VALUE, &v);
}

/*
 * A JSON whole number in int4's range (a usage figure of usage_metadata);
 * raises 22023 otherwise.
 */
static int32
WholeNumber(JsonbValue *v, const char *what)
{
	bool		error = false;
	int32		result;

	if (v->type != jbvNumeric)
		BadMessage(psprintf("%s must be a number", what));
	result = numeric_int4_opt_error(v->val.numeric, &error);
	if (error ||
		DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(v->val.numeric),
										  DirectFunctionCall1(int4_numeric, Int32GetDatum(result)))) != 0)
		BadMessage(psprintf("%s must be a whole number", what));
	return result;
}

/*
 * The chatstore role of a LangChain message type: human -> user, ai ->
 * assistant, system -> system, tool and function -> tool (the chunk types,
 * such as AIMessageChunk, as their message), chat -> its data.role
 * (user/human, assistant/ai, system, tool/function).  Raises 22023 for any
 * other type.
 */
static text *
MapRole(JsonbValue *type, JsonbContainer *data)
{
	static const char *const map[][2] = {
		{"human", "user"}, {"HumanMessageChunk", "user"},
		{"ai", "assistant"}, {"AIMessageChunk", "assistant"},
		{"system", "system"}, {"SystemMessageChunk", "system"},
		{"tool", "tool"}, {"ToolMessageChunk", "tool"},
		{"function", "tool"}, {"FunctionMessageChunk", "tool"},
	};
	static const char *const chat_roles[][2] = {
		{"user", "user"}, {"human", "user"}, {"assistant", "assistant"}, {"ai", "assistant"},
		{"system", "system"}, {"tool", "tool"}, {"function", "tool"},
	};

	for (int i = 0; i < (int) lengthof(map); i++)
		if (IsString(type, map[i][0]))
			return cstring_to_text(map[i][1]);
	if (IsString(type, "chat") || IsString(type, "ChatMessageChunk"))
	{
		JsonbValue *role = GetKey(data, "role");

		for (int i = 0; i < (int) lengthof(chat_roles); i++)
			if (IsString(role, chat_roles[i][0]))
				return cstring_to_text(chat_roles[i][1]);
		if (role == NULL || role->type != jbvString)
			BadMessage("a chat message needs data.role");
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid role \"%s\"", ChatstoreClip(role->val.string.val, role->val.string.len)),
				 errdetail("A chat message's role must be user, human, assistant, ai, system, tool or function.")));
	}
	BadMessage(psprintf("unknown type \"%s\"", ChatstoreClip(type->val.string.val, type->val.string.len)));
}

/*
 * The text of a list of content blocks, as LangChain's message.text gives
 * it: the string blocks and the "text" of the {"type": "text"} blocks,
 * joined with nothing between them.  Other blocks (images, tool use) add
 * no text; the whole list is kept in the metadata.
 */
static text *
ContentBlocksText(JsonbContainer *blocks)
{
	StringInfoData buf;
	JsonbIterator *it = JsonbIteratorInit(blocks);
	JsonbIteratorToken tok;
	JsonbValue	v;

	initStringInfo(&buf);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (v.type == jbvString)
			appendBinaryStringInfo(&buf, v.val.string.val, v.val.string.len);
		else if (IsContainer(&v, true) && IsString(GetKey(v.val.binary.data, "type"), "text"))
		{
			JsonbValue *t = GetKey(v.val.binary.data, "text");

			if (t != NULL && t->type == jbvString)
				appendBinaryStringInfo(&buf, t->val.string.val, t->val.string.len);
		}
	}
	return cstring_to_text_with_len(buf.data, buf.len);
}

/*
 * Push LangChain's tool calls ([{"name", "args", "id", "type":
 * "tool_call"}]) as the chat API writes them ([{"id", "type": "function",
 * "function": {"name", "arguments": "<args as JSON text>"}}]), so that
 * history_json() gives back messages a chat API takes and transcript()
 * shows them.
 */
static void
PushToolCalls(JsonbParseState **state, JsonbContainer *calls)
{
	JsonbIterator *it = JsonbIteratorInit(calls);
	JsonbIteratorToken tok;
	JsonbValue	v;

	pushJsonbValue(state, WJB_BEGIN_ARRAY, NULL);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		JsonbValue *name;
		JsonbValue *id;
		JsonbValue *args;
		char	   *arguments = "{}";

		if (tok != WJB_ELEM)
			continue;
		if (!IsContainer(&v, true))
			BadMessage("each of data.tool_calls must be an object");
		name = GetKey(v.val.binary.data, "name");
		if (name == NULL || name->type != jbvString)
			BadMessage("a tool call needs a name");
		id = GetKey(v.val.binary.data, "id");
		if ((args = GetKey(v.val.binary.data, "args")) != NULL)
		{
			Jsonb	   *a = JsonbValueToJsonb(args);

			arguments = JsonbToCString(NULL, &a->root, VARSIZE(a));
		}
		pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
		if (id != NULL && id->type == jbvString)
		{
			PushKey(state, "id");
			pushJsonbValue(state, WJB_VALUE, id);
		}
		PushKey(state, "type");
		PushStringValue(state, "function", 8);
		PushKey(state, "function");
		pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
		PushKey(state, "name");
		pushJsonbValue(state, WJB_VALUE, name);
		PushKey(state, "arguments");
		PushStringValue(state, arguments, strlen(arguments));
		pushJsonbValue(state, WJB_END_OBJECT, NULL);
		pushJsonbValue(state, WJB_END_OBJECT, NULL);
	}
	pushJsonbValue(state, WJB_END_ARRAY, NULL);
}

/*
 * Whether a field of a message's data is left out of metadata.langchain:
 * the type (the message's own type is kept instead), a string content
 * (it is the message's content), and the values model_dump() writes for
 * fields never set: null, {}, [] and "example": false.
 */
static bool
SkipDataField(JsonbValue *key, JsonbValue *value, bool content_is_string)
{
	if (IsString(key, "type") || (content_is_string && IsString(key, "content")))
		return true;
	if (value->type == jbvNull)
		return true;
	if (value->type == jbvBinary && JsonContainerSize(value->val.binary.data) == 0)
		return true;
	return IsString(key, "example") && value->type == jbvBool && !value->val.boolean;
}

/*
 * Map one serialized LangChain message to a message of chatstore:
 *	role		from type (MapRole)
 *	content		data.content; a list of content blocks gives the text of its
 *				text blocks (ContentBlocksText) and is kept whole in
 *				metadata.langchain.content
 *	metadata	name, tool_calls (as the chat API writes them) and
 *				tool_call_id, as append_many keeps them, and "langchain":
 *				the type and every other field of data that is set
 *				(additional_kwargs, response_metadata, id, tool_calls as
 *				LangChain wrote them, usage_metadata, artifact, status, ...),
 *				so that the LangChain message can be rebuilt
 *	model		response_metadata.model_name, or .model
 *	input_tokens, output_tokens	usage_metadata's
 * Raises 22023 for anything that is not such a message.
 */
static void
MapLangChainMessage(Jsonb *message, MappedMessage *m)
{
	JsonbValue *type;
	JsonbValue *datav;
	JsonbValue *content;
	JsonbValue *v;
	JsonbContainer *data;
	JsonbParseState *state = NULL;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	key;
	JsonbValue	value;
	bool		content_is_string;

	if (!JB_ROOT_IS_OBJECT(message))
		BadMessage("it is not a JSON object");
	type = GetKey(&message->root, "type");
	datav = GetKey(&message->root, "data");
	if (type == NULL || type->type != jbvString)
		BadMessage("it has no type");
	if (!IsContainer(datav, true))
		BadMessage("it has no data object");
	data = datav->val.binary.data;

	m->role = MapRole(type, data);
	content = GetKey(data, "content");
	if (content != NULL && content->type == jbvString)
		m->content = StringText(content);
	else if (IsContainer(content, false))
		m->content = ContentBlocksText(content->val.binary.data);
	else
		BadMessage("data.content must be a string or a list of content blocks");
	content_is_string = content->type == jbvString;

	m->model = NULL;
	if ((v = GetKey(data, "response_metadata")) != NULL && IsContainer(v, true))
	{
		JsonbValue *model = GetKey(v->val.binary.data, "model_name");

		if (model == NULL || model->type != jbvString)
			model = GetKey(v->val.binary.data, "model");
		if (model != NULL && model->type == jbvString)
			m->model = StringText(model);
	}
	for (int i = 0; i < 3; i++)
		m->usage_given[i] = false;
	if ((v = GetKey(data, "usage_metadata")) != NULL && IsContainer(v, true))
	{
		static const char *const names[2] = {"input_tokens", "output_tokens"};

		for (int i = 0; i < 2; i++)
		{
			JsonbValue *n = GetKey(v->val.binary.data, names[i]);

			if (n == NULL)
				continue;
			m->usage[i] = WholeNumber(n, psprintf("usage_metadata.%s", names[i]));
			m->usage_given[i] = true;
		}
	}

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	if ((v = GetKey(data, "name")) != NULL)
	{
		PushKey(&state, "name");
		pushJsonbValue(&state, WJB_VALUE, v);
	}
	if ((v = GetKey(data, "tool_call_id")) != NULL)
	{
		PushKey(&state, "tool_call_id");
		pushJsonbValue(&state, WJB_VALUE, v);
	}
	if ((v = GetKey(data, "tool_calls")) != NULL)
	{
		if (!IsContainer(v, false))
			BadMessage("data.tool_calls must be a list");
		if (JsonContainerSize(v->val.binary.data) > 0)
		{
			PushKey(&state, "tool_calls");
			PushToolCalls(&state, v->val.binary.data);
		}
	}
	PushKey(&state, "langchain");
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	PushKey(&state, "type");
	pushJsonbValue(&state, WJB_VALUE, type);
	it = JsonbIteratorInit(data);
	while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(&it, &value, true);
		Assert(tok == WJB_VALUE);
		if (SkipDataField(&key, &value, content_is_string))
			continue;
		pushJsonbValue(&state, WJB_KEY, &key);
		pushJsonbValue(&state, WJB_VALUE, &value);
	}
	pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	m->metadata = JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
}

/* Raise 22004 for a NULL column of a source row. */
static void
NullColumn(const char *column)
{
	ereport(ERROR,
			(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
			 errmsg("%s must not be null", column),
			 errdetail("Every row of the table needs a %s.", column)));
}

/*
 * Check a session's user id and key as get_or_create_conversation checks
 * them: 22004 missing, 22023 empty, 22001 longer than 255 bytes; and 42501
 * when a user is declared and this is another.
 */
static void
ValidateSessionIds(ImportState *st, Session *s)
{
	if (s->key == NULL)
		NullColumn("session_id");
	if (VARSIZE_ANY_EXHDR(s->key) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("session_id must not be empty"),
				 errdetail("A session becomes the conversation with the session id as its key, which must not be empty.")));
	ChatstoreCheckIdentifier(s->key, "session_id");
	if (s->user_not_string)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the user of session \"%s\" in users is not a string",
						ChatstoreClip(VARDATA_ANY(s->key), VARSIZE_ANY_EXHDR(s->key))),
				 errdetail("users maps each session id to a user id, a JSON string.")));
	if (s->user_id == NULL)
	{
		if (st->layout == LAYOUT_SESSIONS)
			NullColumn("user_id");
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("session \"%s\" has no user",
						ChatstoreClip(VARDATA_ANY(s->key), VARSIZE_ANY_EXHDR(s->key))),
				 errdetail("It is not in users, and for_user is null."),
				 errhint("Pass for_user, or map the session to its user in users.")));
	}
	if (VARSIZE_ANY_EXHDR(s->user_id) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("user_id must not be empty"),
				 errdetail("Pass the application's identifier for user_id.")));
	ChatstoreCheckIdentifier(s->user_id, "user_id");
	if (!ChatstoreActorIs(&st->actor, s->user_id))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot create a conversation for another user"),
				 errdetail("chatstore.user_id is \"%s\" but the session's user is \"%s\".",
						   text_to_cstring(st->actor.user_id), text_to_cstring(s->user_id))));
}

/*
 * Map and validate every message of a session, as append validates them
 * (role, content limits and blank rule, metadata, model, usage), and sum
 * what the conversation row needs.  Raises the first error.
 */
static void
ValidateSession(ImportState *st, Session *s)
{
	ValidateSessionIds(st, s);
	s->messages = palloc(sizeof(MappedMessage) * s->nrows);
	s->tokens = 0;
	for (int i = 0; i < s->nrows; i++)
	{
		SourceRow  *r = &s->rows[i];
		MappedMessage *m = &s->messages[i];

		CHECK_FOR_INTERRUPTS();
		st->position = r->row_id;
		if (st->layout == LAYOUT_LANGCHAIN)
		{
			if (r->message == NULL)
				NullColumn("message");
			MapLangChainMessage(r->message, m);
		}
		else
		{
			if (r->role == NULL)
				NullColumn("role");
			if (r->content == NULL)
				NullColumn("content");
			m->role = r->role;
			m->content = r->content;
			m->metadata = NULL;
			m->model = NULL;
			for (int u = 0; u < 3; u++)
				m->usage_given[u] = false;
		}
		m->tokens = 0;
		ChatstoreValidateMessage(m->role, m->content, &m->metadata, &m->tokens, false,
								 m->model, m->usage, m->usage_given);
		m->created_at = r->created_at_null ? st->now : r->created_at;
		s->tokens += m->tokens;
		if (i == 0 || m->created_at < s->min_created)
			s->min_created = m->created_at;
		if (i == 0 || m->created_at > s->max_created)
			s->max_created = m->created_at;
	}
	st->position = NULL;
}

/* Set a failed outcome. */
static void
Fail(Outcome *o, int sqlerrcode, char *error, char *detail)
{
	o->status = "failed";
	o->messages = 0;
	o->sqlstate = unpack_sql_state(sqlerrcode);
	o->error = error;
	o->detail = detail;
}

/*
 * Run ValidateSession in a subtransaction: true when the session is valid;
 * otherwise false with the error in *o.  The subtransaction writes nothing,
 * so it never gets a transaction id.  Errors that are not about the data
 * (a cancel, a serialization failure, running out of memory) are raised.
 */
static bool
ValidateInSubtransaction(ImportState *st, Session *s, Outcome *o)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool ok = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcontext);
	PG_TRY();
	{
		ValidateSession(st, s);
		ReleaseCurrentSubTransaction();
		ok = true;
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		int			category;

		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
		category = ERRCODE_TO_CATEGORY(edata->sqlerrcode);
		if (category == ERRCODE_TRANSACTION_ROLLBACK ||
			category == ERRCODE_INSUFFICIENT_RESOURCES ||
			category == ERRCODE_OPERATOR_INTERVENTION ||
			category == ERRCODE_SYSTEM_ERROR ||
			category == ERRCODE_INTERNAL_ERROR ||
			category == ERRCODE_PROGRAM_LIMIT_EXCEEDED)
			ReThrowError(edata);
		Fail(o, edata->sqlerrcode,
			 st->position != NULL ? psprintf("row id %s: %s", st->position, edata->message) :
			 pstrdup(edata->message),
			 edata->detail != NULL ? pstrdup(edata->detail) : NULL);
		st->position = NULL;
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcontext);
	CurrentResourceOwner = oldowner;
	return ok;
}

/* A one-dimensional array of n Datums of type elemtype (nulls may be NULL). */
static Datum
MakeArray(Datum *elems, bool *nulls, int n, Oid elemtype)
{
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int16		typlen;
	bool		typbyval;
	char		typalign;

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, elemtype,
											  typlen, typbyval, typalign));
}

/*
 * Insert messages from (0-based) first of session s into conversation id
 * with seq numbers first + 1, ..., in one statement, each with a new
 * UUIDv7 id and the conversation's user id.  Requires SPI.
 */
static void
InsertMessages(ImportState *st, Session *s, pg_uuid_t *id, int first)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[12] = {
		UUIDOID, TEXTOID, INT4ARRAYOID, UUIDARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		JSONBARRAYOID, TEXTARRAYOID, INT4ARRAYOID, TIMESTAMPTZARRAYOID, INT4ARRAYOID, INT4ARRAYOID
	};
	int			n = s->nrows - first;
	Datum		args[12];
	Datum	   *cols[10];
	bool	   *nulls[10];
	int			rc;

	for (int c = 0; c < 10; c++)
	{
		cols[c] = palloc(sizeof(Datum) * n);
		nulls[c] = palloc0(sizeof(bool) * n);
	}
	for (int i = 0; i < n; i++)
	{
		MappedMessage *m = &s->messages[first + i];
		pg_uuid_t  *mid = palloc(sizeof(pg_uuid_t));

		GenerateUuidV7(mid, st->now);
		cols[0][i] = Int32GetDatum(first + i + 1);
		cols[1][i] = UUIDPGetDatum(mid);
		cols[2][i] = PointerGetDatum(m->role);
		cols[3][i] = PointerGetDatum(m->content);
		cols[4][i] = JsonbPGetDatum(m->metadata);
		cols[5][i] = PointerGetDatum(m->model);
		nulls[5][i] = m->model == NULL;
		cols[6][i] = Int32GetDatum(m->tokens);
		cols[7][i] = TimestampTzGetDatum(m->created_at);
		for (int u = 0; u < 2; u++)
		{
			cols[8 + u][i] = Int32GetDatum(m->usage[u]);
			nulls[8 + u][i] = !m->usage_given[u];
		}
	}
	args[0] = UUIDPGetDatum(id);
	args[1] = PointerGetDatum(s->user_id);
	for (int c = 0; c < 10; c++)
		args[2 + c] = MakeArray(cols[c], nulls[c], n, get_element_type(argtypes[2 + c]));
	rc = SPI_execute_plan(ChatstorePlan(&plan,
										"INSERT INTO chatstore.message"
										" (conversation_id, user_id, seq, id, role, content, metadata, model, tokens,"
										"  created_at, input_tokens, output_tokens)"
										" SELECT $1, $2, m.seq, m.id, m.role, m.content, m.metadata, m.model, m.tokens,"
										"  m.created_at, m.input_tokens, m.output_tokens"
										" FROM ROWS FROM (pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5),"
										"  pg_catalog.unnest($6), pg_catalog.unnest($7), pg_catalog.unnest($8),"
										"  pg_catalog.unnest($9), pg_catalog.unnest($10), pg_catalog.unnest($11),"
										"  pg_catalog.unnest($12))"
										"  AS m(seq, id, role, content, metadata, model, tokens, created_at,"
										"       input_tokens, output_tokens)",
										12, argtypes),
						  args, NULL, false, 0);
	if (rc != SPI_OK_INSERT || SPI_processed != (uint64) n)
		elog(ERROR, "chatstore: message import failed: %s", SPI_result_code_string(rc));
}

/*
 * Create the conversation of a session with its counters, unless one with
 * its id exists.  Returns whether it did.  Requires SPI.
 */
static bool
InsertConversation(Session *s, pg_uuid_t *id)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[8] = {
		UUIDOID, TEXTOID, INT8OID, INT8OID, INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID
	};
	Datum		args[8];
	int			rc;

	args[0] = UUIDPGetDatum(id);
	args[1] = PointerGetDatum(s->user_id);
	args[2] = Int64GetDatum((int64) s->nrows);
	args[3] = Int64GetDatum(s->tokens);
	args[4] = Int32GetDatum(s->nrows);
	args[5] = TimestampTzGetDatum(s->min_created);
	args[6] = TimestampTzGetDatum(s->max_created);
	args[7] = PointerGetDatum(s->key);
	rc = SPI_execute_plan(ChatstorePlan(&plan,
										"INSERT INTO chatstore.conversation"
										" (id, user_id, message_count, token_count, last_seq, created_at,"
										"  last_activity_at, key)"
										" VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
										" ON CONFLICT (id) DO NOTHING",
										8, argtypes),
						  args, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "chatstore: conversation insert failed: %s", SPI_result_code_string(rc));
	return SPI_processed == 1;
}

/*
 * The seq of the first of the stored conversation's messages 1 .. n that is
 * not the session's message in that place (role, content and metadata
 * compared), or 0 when all n are.  Live and archived messages both count.
 * Requires SPI.
 */
static int32
FirstDifference(Session *s, pg_uuid_t *id, int n)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[4] = {UUIDOID, TEXTARRAYOID, TEXTARRAYOID, JSONBARRAYOID};
	Datum		args[4];
	Datum	   *roles = palloc(sizeof(Datum) * n);
	Datum	   *contents = palloc(sizeof(Datum) * n);
	Datum	   *metadata = palloc(sizeof(Datum) * n);
	bool		isnull;
	int32		result;
	int			rc;

	for (int i = 0; i < n; i++)
	{
		roles[i] = PointerGetDatum(s->messages[i].role);
		contents[i] = PointerGetDatum(s->messages[i].content);
		metadata[i] = JsonbPGetDatum(s->messages[i].metadata);
	}
	args[0] = UUIDPGetDatum(id);
	args[1] = MakeArray(roles, NULL, n, TEXTOID);
	args[2] = MakeArray(contents, NULL, n, TEXTOID);
	args[3] = MakeArray(metadata, NULL, n, JSONBOID);
	rc = SPI_execute_plan(ChatstorePlan(&plan,
										"SELECT i.seq::pg_catalog.int4"
										" FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($4))"
										"  WITH ORDINALITY AS i(role, content, metadata, seq)"
										" LEFT JOIN (SELECT seq, role, content, metadata FROM chatstore.message"
										"            WHERE conversation_id OPERATOR(pg_catalog.=) $1"
										"            UNION ALL"
										"            SELECT seq, role, content, metadata FROM chatstore.archived_message"
										"            WHERE conversation_id OPERATOR(pg_catalog.=) $1) s"
										"   ON s.seq OPERATOR(pg_catalog.=) i.seq"
										" WHERE s.seq IS NULL OR s.role OPERATOR(pg_catalog.<>) i.role"
										"    OR s.content OPERATOR(pg_catalog.<>) i.content"
										"    OR s.metadata OPERATOR(pg_catalog.<>) i.metadata"
										" ORDER BY i.seq LIMIT 1",
										4, argtypes),
						  args, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "chatstore: message comparison failed: %s", SPI_result_code_string(rc));
	result = SPI_processed == 0 ? 0 :
		DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return result;
}

/*
 * Append messages first .. of the session to its existing conversation id
 * (locked), whose last_seq is first: the counters move, created_at and
 * last_activity_at widen to enclose the new messages' times, and a paused
 * conversation becomes active, as append makes it.  Requires SPI.
 */
static void
ContinueConversation(ImportState *st, Session *s, pg_uuid_t *id, int first)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[6] = {UUIDOID, INT4OID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID};
	Datum		args[6];
	TimestampTz min_created = s->messages[first].created_at;
	TimestampTz max_created = min_created;
	int64		tokens = 0;
	int			rc;

	for (int i = first; i < s->nrows; i++)
	{
		tokens += s->messages[i].tokens;
		if (s->messages[i].created_at < min_created)
			min_created = s->messages[i].created_at;
		if (s->messages[i].created_at > max_created)
			max_created = s->messages[i].created_at;
	}
	args[0] = UUIDPGetDatum(id);
	args[1] = Int32GetDatum(s->nrows);
	args[2] = Int64GetDatum((int64) (s->nrows - first));
	args[3] = TimestampTzGetDatum(min_created);
	args[4] = TimestampTzGetDatum(max_created);
	args[5] = Int64GetDatum(tokens);
	rc = SPI_execute_plan(ChatstorePlan(&plan,
										"UPDATE chatstore.conversation SET"
										"  last_seq = $2,"
										"  message_count = message_count OPERATOR(pg_catalog.+) $3,"
										"  token_count = token_count OPERATOR(pg_catalog.+) $6,"
										"  created_at = LEAST(created_at, $4),"
										"  last_activity_at = GREATEST(last_activity_at, $5),"
										"  state = 'active'"
										" WHERE id OPERATOR(pg_catalog.=) $1",
										6, argtypes),
						  args, NULL, false, 0);
	if (rc != SPI_OK_UPDATE || SPI_processed != 1)
		elog(ERROR, "chatstore: conversation update failed: %s", SPI_result_code_string(rc));
	InsertMessages(st, s, id, first);
}

/* Whether two texts hold the same bytes. */
static bool
SameBytes(text *a, text *b)
{
	return VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0;
}

/*
 * Store a validated session and say what became of it.  A new
 * conversation gets every message.  An existing one is locked as an append
 * locks it; then, when its messages are the session's first ones, the
 * session's further messages are appended ("continued"), or none are left
 * ("skipped", also when the conversation has gone on past the session: the
 * application moved to chatstore).  Anything else is a failure reported in
 * *o, found before anything of the session is written: the id is another
 * conversation's, the messages differ (23505), the conversation is
 * archived or completed (55000).  Requires SPI.
 */
static void
WriteSession(ImportState *st, Session *s, Outcome *o)
{
	static SPIPlanPtr lock = NULL;
	static const Oid argtypes[1] = {UUIDOID};
	char	   *idtext;

	ChatstoreKeyedConversationId(s->user_id, s->key, &o->id);
	o->have_id = true;
	idtext = ChatstoreUuidText(&o->id);

	for (int attempt = 0; attempt < 100; attempt++)
	{
		Datum		args[1] = {UUIDPGetDatum(&o->id)};
		HeapTuple	row;
		TupleDesc	desc;
		bool		isnull;
		Datum		found_key;
		int32		last_seq;
		int32		n;
		int32		differs;
		char	   *status;
		char	   *state;
		bool		same;

		if (InsertConversation(s, &o->id))
		{
			InsertMessages(st, s, &o->id, 0);
			o->status = "imported";
			o->messages = s->nrows;
			return;
		}
		if (SPI_execute_plan(ChatstorePlan(&lock,
										   "SELECT user_id, key, status, state, last_seq FROM chatstore.conversation"
										   " WHERE id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE",
										   1, argtypes),
							 args, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "chatstore: conversation lock failed");
		if (SPI_processed == 0)
			continue;			/* deleted meanwhile: create it */
		row = SPI_tuptable->vals[0];
		desc = SPI_tuptable->tupdesc;
		found_key = SPI_getbinval(row, desc, 2, &isnull);
		same = !isnull && SameBytes(DatumGetTextPP(SPI_getbinval(row, desc, 1, &isnull)), s->user_id) &&
			SameBytes(DatumGetTextPP(found_key), s->key);
		status = SPI_getvalue(row, desc, 3);
		state = SPI_getvalue(row, desc, 4);
		last_seq = DatumGetInt32(SPI_getbinval(row, desc, 5, &isnull));
		SPI_freetuptable(SPI_tuptable);
		if (!same)
		{
			Fail(o, ERRCODE_UNIQUE_VIOLATION,
				 psprintf("the id of key \"%s\" of user %s is taken by another conversation",
						  ChatstoreClip(VARDATA_ANY(s->key), VARSIZE_ANY_EXHDR(s->key)),
						  ChatstoreClip(VARDATA_ANY(s->user_id), VARSIZE_ANY_EXHDR(s->user_id))),
				 psprintf("Conversation %s exists but is not that user's conversation with that key.", idtext));
			return;
		}

		n = Min(last_seq, s->nrows);
		differs = n > 0 ? FirstDifference(s, &o->id, n) : 0;
		if (differs > 0)
		{
			Fail(o, ERRCODE_UNIQUE_VIOLATION,
				 psprintf("conversation %s holds other messages than the session", idtext),
				 psprintf("Its message %d is not the session's message %d (row id %s); the import continues a conversation only when one's messages are the first of the other's.",
						  differs, differs, s->rows[differs - 1].row_id));
			return;
		}
		if (last_seq >= s->nrows)
		{
			o->status = "skipped";
			o->messages = 0;
			return;
		}
		if (strcmp(status, "archived") == 0)
		{
			Fail(o, ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
				 psprintf("conversation %s is archived", idtext),
				 psprintf("The session has %d messages it does not have; call chatstore.restore('%s'), then import again.",
						  s->nrows - last_seq, idtext));
			return;
		}
		if (strcmp(state, "completed") == 0)
		{
			Fail(o, ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
				 psprintf("conversation %s is completed", idtext),
				 psprintf("The session has %d messages it does not have; call chatstore.set_state('%s', 'active'), then import again.",
						  s->nrows - last_seq, idtext));
			return;
		}
		ContinueConversation(st, s, &o->id, last_seq);
		o->status = "continued";
		o->messages = s->nrows - last_seq;
		return;
	}
	elog(ERROR, "chatstore: conversation %s appeared and disappeared 100 times while being imported", idtext);
}

/*
 * Validate and store one session, and add its row to the result.  Runs in
 * the session's memory context, which is reset after it.
 */
static void
FinishSession(ImportState *st, Session *s)
{
	Outcome		o;
	Datum		values[IMPORT_NCOLUMNS];
	bool		nulls[IMPORT_NCOLUMNS];

	memset(&o, 0, sizeof(o));
	if (ValidateInSubtransaction(st, s, &o))
		WriteSession(st, s, &o);

	values[0] = PointerGetDatum(s->user_id);
	nulls[0] = s->user_id == NULL;
	values[1] = PointerGetDatum(s->key);
	nulls[1] = s->key == NULL;
	values[2] = UUIDPGetDatum(&o.id);
	nulls[2] = !o.have_id;
	values[3] = CStringGetTextDatum(o.status);
	nulls[3] = false;
	values[4] = Int32GetDatum(o.messages);
	nulls[4] = false;
	values[5] = o.sqlstate != NULL ? CStringGetTextDatum(o.sqlstate) : (Datum) 0;
	nulls[5] = o.sqlstate == NULL;
	values[6] = o.error != NULL ? CStringGetTextDatum(o.error) : (Datum) 0;
	nulls[6] = o.error == NULL;
	values[7] = o.detail != NULL ? CStringGetTextDatum(o.detail) : (Datum) 0;
	nulls[7] = o.detail == NULL;
	ChatstorePutValues(st->fcinfo, values, nulls, IMPORT_NCOLUMNS);
}

/* Whether two texts, either of which may be NULL, are equal (NULLs are). */
static bool
SameOrBothNull(text *a, text *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return SameBytes(a, b);
}

/* A text column of a fetched row, or NULL; copied into the current context. */
static text *
TextColumn(HeapTuple row, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(row, desc, col, &isnull);

	return isnull ? NULL : DatumGetTextPCopy(d);
}

/*
 * The user of a LangChain session: its entry in users, else for_user.
 */
static void
SessionUser(ImportState *st, Session *s)
{
	s->user_id = st->for_user;
	s->user_not_string = false;
	if (st->users != NULL && s->key != NULL)
	{
		JsonbValue	k;
		JsonbValue *v;

		k.type = jbvString;
		k.val.string.val = VARDATA_ANY(s->key);
		k.val.string.len = VARSIZE_ANY_EXHDR(s->key);
		v = findJsonbValueFromContainer(&st->users->root, JB_FOBJECT, &k);
		if (v != NULL && v->type == jbvString)
			s->user_id = StringText(v);
		else if (v != NULL)
			s->user_not_string = true;
	}
}

/*
 * Read the source through a cursor (as the caller: see AsCaller) ordered by
 * session and id, gather each session's rows and store each session when
 * its last row has been read.  The query's columns: user_id, session_id,
 * message, role, content, created_at, row id.
 */
static void
ImportRows(ImportState *st, const char *query, int nargs, Oid *argtypes, Datum *args)
{
	Portal		portal;
	Session		s;
	bool		open = false;
	Oid			owner;
	int			owner_context;

	memset(&s, 0, sizeof(s));

	/* open (plan and check permissions) and fetch as the caller */
	GetUserIdAndSecContext(&owner, &owner_context);
	SetUserIdAndSecContext(st->call.save_userid, owner_context);
	portal = SPI_cursor_open_with_args(NULL, query, nargs, argtypes, args, NULL, true, 0);
	SetUserIdAndSecContext(owner, owner_context);
	if (portal == NULL)
		elog(ERROR, "chatstore: could not open a cursor on the source: %s",
			 SPI_result_code_string(SPI_result));

	for (;;)
	{
		SPITupleTable *batch;
		uint64		nfetched;

		SetUserIdAndSecContext(st->call.save_userid, owner_context);
		SPI_cursor_fetch(portal, true, IMPORT_BATCH);
		SetUserIdAndSecContext(owner, owner_context);
		batch = SPI_tuptable;
		nfetched = SPI_processed;
		if (nfetched == 0)
			break;

		for (uint64 r = 0; r < nfetched; r++)
		{
			HeapTuple	row = batch->vals[r];
			TupleDesc	desc = batch->tupdesc;
			MemoryContext oldcontext;
			text	   *user_id;
			text	   *key;
			SourceRow  *sr;
			bool		isnull;
			Datum		d;

			CHECK_FOR_INTERRUPTS();
			oldcontext = MemoryContextSwitchTo(st->session_cxt);
			user_id = TextColumn(row, desc, 1);
			key = TextColumn(row, desc, 2);
			if (open && (!SameOrBothNull(key, s.key) ||
						 (st->layout == LAYOUT_SESSIONS && !SameOrBothNull(user_id, s.user_id))))
			{
				/* the next session begins: store this one, then start over */
				FinishSession(st, &s);
				MemoryContextReset(st->session_cxt);
				open = false;
				user_id = TextColumn(row, desc, 1);
				key = TextColumn(row, desc, 2);
			}
			if (!open)
			{
				memset(&s, 0, sizeof(s));
				s.key = key;
				if (st->layout == LAYOUT_SESSIONS)
					s.user_id = user_id;
				else
					SessionUser(st, &s);
				s.cap = 16;
				s.rows = palloc(sizeof(SourceRow) * s.cap);
				open = true;
			}
			if (s.nrows == s.cap)
			{
				s.cap *= 2;
				s.rows = repalloc_huge(s.rows, sizeof(SourceRow) * s.cap);
			}
			sr = &s.rows[s.nrows++];
			d = SPI_getbinval(row, desc, 3, &isnull);
			sr->message = isnull ? NULL : DatumGetJsonbPCopy(d);
			sr->role = TextColumn(row, desc, 4);
			sr->content = TextColumn(row, desc, 5);
			d = SPI_getbinval(row, desc, 6, &isnull);
			sr->created_at_null = isnull;
			sr->created_at = isnull ? 0 : DatumGetTimestampTz(d);
			sr->row_id = SPI_getvalue(row, desc, 7);
			if (sr->row_id == NULL)
				sr->row_id = "NULL";
			MemoryContextSwitchTo(oldcontext);
		}
		SPI_freetuptable(batch);
	}
	if (open)
	{
		MemoryContext oldcontext = MemoryContextSwitchTo(st->session_cxt);

		FinishSession(st, &s);
		MemoryContextSwitchTo(oldcontext);
	}
	MemoryContextReset(st->session_cxt);
	SPI_cursor_close(portal);
}

/*
 * Check that the source is a relation one can select from and give the
 * quoted name to use in SQL.  Raises 42P01 for a dropped relation, 42809
 * for an index, sequence or composite type.
 */
static char *
SourceName(Oid relid)
{
	char		relkind = get_rel_relkind(relid);
	char	   *relname = get_rel_name(relid);

	if (relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE &&
		relkind != RELKIND_VIEW && relkind != RELKIND_MATVIEW && relkind != RELKIND_FOREIGN_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table or view", relname),
				 errdetail("The source must be a table, view, materialized view or foreign table.")));
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), relname);
}

/*
 * The type of a column of the source, or InvalidOid when it has none by
 * that name; raises 42703 for a missing column that is required.
 */
static Oid
ColumnType(Oid relid, const char *column, bool required, const char *layout)
{
	AttrNumber	attnum = get_attnum(relid, column);

	if (attnum == InvalidAttrNumber || attnum < 0)
	{
		if (required)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of %s does not exist", column, get_rel_name(relid)),
					 errdetail("%s", layout)));
		return InvalidOid;
	}
	return get_atttype(relid, attnum);
}

/*
 * Raise 42501 unless the calling role may read the columns the import
 * reads: SELECT on the table, or on each of those columns.  The import runs
 * as the extension's owner, who may read any table; without this check (and
 * the read as the caller that follows it), an admin could read through it a
 * table it may not read itself.
 */
static void
CheckCallerMayRead(Oid relid, Oid caller, const char *const *columns, int ncolumns)
{
	if (pg_class_aclcheck(relid, caller, ACL_SELECT) == ACLCHECK_OK)
		return;
	for (int i = 0; i < ncolumns; i++)
	{
		AttrNumber	attnum = get_attnum(relid, columns[i]);

		if (attnum == InvalidAttrNumber)
			continue;
		if (pg_attribute_aclcheck(relid, attnum, caller, ACL_SELECT) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for table %s", get_rel_name(relid)),
					 errdetail("The import reads the table as the calling role, and role \"%s\" may not read its column \"%s\".",
							   GetUserNameFromId(caller, false), columns[i]),
					 errhint("GRANT SELECT ON %s TO %s.",
							 quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
														get_rel_name(relid)),
							 quote_identifier(GetUserNameFromId(caller, false)))));
	}
}

/*
 * The SQL for created_at: the column itself when it is a timestamptz, the
 * column read in time zone $1 when it is a timestamp without time zone
 * (when allowed), NULL (the time of the import) when there is none; 42804
 * for any other type.
 */
static const char *
CreatedAtExpression(Oid type, bool timestamp_ok, const char *layout)
{
	if (type == InvalidOid)
		return "NULL::pg_catalog.timestamptz";
	if (type == TIMESTAMPTZOID)
		return "t.created_at";
	if (type == TIMESTAMPOID && timestamp_ok)
		return "pg_catalog.timezone($1, t.created_at)";
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("column \"created_at\" has type %s", format_type_be(type)),
			 errdetail("%s", layout)));
	return NULL;				/* keep compiler quiet */
}

/*
 * What both functions do around reading: the result set, whom the call
 * acts for, becoming the owner, a context for one session at a time.
 */
static void
StartImport(ImportState *st, FunctionCallInfo fcinfo, SourceLayout layout)
{
	st->fcinfo = fcinfo;
	st->layout = layout;
	st->now = GetCurrentTimestamp();
	st->position = NULL;
	ChatstoreInitSRF(fcinfo);
	ChatstoreGetActor(&st->actor);
	ChatstoreConnect(fcinfo, &st->call);
	st->session_cxt = AllocSetContextCreate(CurrentMemoryContext, "chatstore import session",
											ALLOCSET_DEFAULT_SIZES);
}

/*
 * chatstore.import_langchain(source regclass, for_user text, users jsonb)
 *		RETURNS TABLE (user_id text, key text, conversation_id uuid,
 *					   status text, messages int, sqlstate text,
 *					   error text, detail text)
 *
 * Stores each session of a LangChain PostgresChatMessageHistory table as
 * the conversation of (its user, session id), one result row per session.
 */
Datum
chatstore_import_langchain(PG_FUNCTION_ARGS)
{
	static const char *const columns[] = {"id", "session_id", "message", "created_at"};
	static const char *layout = "LangChain's PostgresChatMessageHistory table has the columns id, session_id, message (jsonb) and, in langchain-postgres, created_at (timestamptz).";
	ImportState st;
	Oid			relid;
	char	   *source;
	Oid			created_type;
	char	   *query;

	memset(&st, 0, sizeof(st));
	ChatstoreRequireArg(fcinfo, 0, "source");
	relid = PG_GETARG_OID(0);
	if (PG_ARGISNULL(1) && PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("for_user and users must not both be null"),
				 errdetail("A LangChain session has no user: name it."),
				 errhint("Pass for_user => 'user id' for every session, or users => '{\"session id\": \"user id\", ...}'.")));
	if (!PG_ARGISNULL(1))
	{
		st.for_user = PG_GETARG_TEXT_PP(1);
		if (VARSIZE_ANY_EXHDR(st.for_user) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("for_user must not be empty"),
					 errdetail("Pass the application's identifier for the sessions' user.")));
		ChatstoreCheckIdentifier(st.for_user, "for_user");
	}
	if (!PG_ARGISNULL(2))
	{
		st.users = PG_GETARG_JSONB_P(2);
		if (!JB_ROOT_IS_OBJECT(st.users))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("users must be a JSON object"),
					 errdetail("Pass {\"session id\": \"user id\", ...}, e.g. (SELECT jsonb_object_agg(session_id, user_id) FROM my_sessions).")));
	}

	source = SourceName(relid);
	CheckCallerMayRead(relid, GetUserId(), columns, lengthof(columns));
	(void) ColumnType(relid, "id", true, layout);
	(void) ColumnType(relid, "session_id", true, layout);
	(void) ColumnType(relid, "message", true, layout);
	created_type = ColumnType(relid, "created_at", false, layout);
	query = psprintf("SELECT NULL::pg_catalog.text, t.session_id::pg_catalog.text,"
					 " t.message::pg_catalog.jsonb, NULL::pg_catalog.text, NULL::pg_catalog.text,"
					 " %s, t.id::pg_catalog.text"
					 " FROM %s t ORDER BY t.session_id, t.id",
					 CreatedAtExpression(created_type, false, layout), source);

	StartImport(&st, fcinfo, LAYOUT_LANGCHAIN);
	ImportRows(&st, query, 0, NULL, NULL);
	ChatstoreFinish(&st.call);
	return (Datum) 0;
}

/*
 * chatstore.import_sessions(source regclass, time_zone text)
 *		RETURNS TABLE (user_id text, key text, conversation_id uuid,
 *					   status text, messages int, sqlstate text,
 *					   error text, detail text)
 *
 * Stores each (user_id, session_id) of a hand-written messages table (seed
 * 000's layout: id, session_id, user_id, role, content, created_at) as the
 * conversation of that user with the session id as its key.  A created_at
 * without time zone is read in time_zone.
 */
Datum
chatstore_import_sessions(PG_FUNCTION_ARGS)
{
	static const char *const columns[] = {"id", "session_id", "user_id", "role", "content", "created_at"};
	static const char *layout = "The messages table has the columns id, session_id, user_id, role, content and, optionally, created_at (timestamp or timestamptz).";
	ImportState st;
	Oid			relid;
	char	   *source;
	Oid			created_type;
	char	   *query;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];

	memset(&st, 0, sizeof(st));
	ChatstoreRequireArg(fcinfo, 0, "source");
	ChatstoreRequireArg(fcinfo, 1, "time_zone");
	relid = PG_GETARG_OID(0);
	args[0] = PointerGetDatum(PG_GETARG_TEXT_PP(1));
	/* an unknown zone raises 22023 here, whatever the column's type */
	(void) DirectFunctionCall2(timestamp_zone, args[0], TimestampGetDatum(0));

	source = SourceName(relid);
	CheckCallerMayRead(relid, GetUserId(), columns, lengthof(columns));
	(void) ColumnType(relid, "id", true, layout);
	(void) ColumnType(relid, "session_id", true, layout);
	(void) ColumnType(relid, "user_id", true, layout);
	(void) ColumnType(relid, "role", true, layout);
	(void) ColumnType(relid, "content", true, layout);
	created_type = ColumnType(relid, "created_at", false, layout);
	query = psprintf("SELECT t.user_id::pg_catalog.text, t.session_id::pg_catalog.text,"
					 " NULL::pg_catalog.jsonb, t.role::pg_catalog.text, t.content::pg_catalog.text,"
					 " %s, t.id::pg_catalog.text"
					 " FROM %s t ORDER BY t.user_id, t.session_id, t.id",
					 CreatedAtExpression(created_type, true, layout), source);

	StartImport(&st, fcinfo, LAYOUT_SESSIONS);
	ImportRows(&st, query, 1, argtypes, args);
	ChatstoreFinish(&st.call);
	return (Datum) 0;
}
