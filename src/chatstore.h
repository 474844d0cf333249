/*
 * chatstore.h
 *	  Declarations shared by the C files of the chatstore extension.
 *
 * Each capability lives in its own file (conversation.c, append.c,
 * history.c, archive.c, tokens.c, uuidv7.c); what they share -- settings,
 * error helpers, the prepared-plan cache and result-row helpers -- is
 * declared here and defined in chatstore.c.
 */
#ifndef CHATSTORE_H
#define CHATSTORE_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

/* Message roles accepted by append. */
#define CHATSTORE_ROLE_SYSTEM		"system"
#define CHATSTORE_ROLE_USER			"user"
#define CHATSTORE_ROLE_ASSISTANT	"assistant"
#define CHATSTORE_ROLE_TOOL			"tool"

/* Longest user id, idempotency key and model name, in bytes. */
#define CHATSTORE_MAX_ID_BYTES		255

/* Bounds of the max_messages / max_results arguments. */
#define CHATSTORE_MAX_WINDOW		10000

/*
 * The column list of chatstore.message and chatstore.archived_message, in
 * table order.  Every query that reads messages selects exactly these, so
 * rows from either table fit the chatstore.message result type.
 */
#define MESSAGE_COLUMNS \
	"conversation_id, seq, id, role, content, metadata, model, tokens, created_at, idempotency_key," \
	" input_tokens, output_tokens, latency_ms, user_id"
#define MESSAGE_NCOLUMNS			14
#define CONVERSATION_COLUMNS \
	"id, user_id, title, model, status, metadata, message_count, token_count," \
	" last_seq, created_at, last_activity_at, archived_at, state, key, activity_bucket"

/* 0-based positions in MESSAGE_COLUMNS */
#define MSGCOL_CONVERSATION_ID		0
#define MSGCOL_SEQ					1
#define MSGCOL_ID					2
#define MSGCOL_ROLE					3
#define MSGCOL_CONTENT				4
#define MSGCOL_METADATA				5
#define MSGCOL_MODEL				6
#define MSGCOL_TOKENS				7
#define MSGCOL_CREATED_AT			8
#define MSGCOL_IDEMPOTENCY_KEY		9
#define MSGCOL_INPUT_TOKENS			10
#define MSGCOL_OUTPUT_TOKENS		11
#define MSGCOL_LATENCY_MS			12
#define MSGCOL_USER_ID				13

/* Upper bounds of a message's usage figures (append, append_many). */
#define CHATSTORE_MAX_USAGE_TOKENS	100000000	/* input_tokens, output_tokens */
#define CHATSTORE_MAX_LATENCY_MS	86400000	/* latency_ms: one day */

/* Settings (chatstore.c) */
extern char *chatstore_archive_after;
extern char *chatstore_user_id;
extern int	chatstore_user_id_scope;

/* Values of chatstore.user_id_scope */
typedef enum UserIdScope
{
	USER_ID_SCOPE_SESSION,		/* a value lasts as long as any setting's */
	USER_ID_SCOPE_TRANSACTION	/* only the transaction that set it */
} UserIdScope;
extern int	chatstore_archive_batch_size;

/*
 * Whom a call acts for.  With chatstore.user_id set, every function acts only
 * on that user's conversations; without it, admin roles act for every user,
 * and ChatstoreGetActor raises 42501 for any other role.  ACTOR_NOBODY is no
 * longer produced by ChatstoreGetActor (1.0.1); code that tests for it is
 * defensive.
 */
typedef enum ActorKind
{
	ACTOR_ADMIN,				/* every user's conversations */
	ACTOR_USER,					/* only user_id's conversations */
	ACTOR_NOBODY				/* no conversation at all */
} ActorKind;

typedef struct Actor
{
	ActorKind	kind;
	text	   *user_id;		/* ACTOR_USER only */
} Actor;

/* What ChatstoreConnect changed, for ChatstoreFinish to put back. */
typedef struct ChatstoreCall
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
} ChatstoreCall;

/* chatstore.c: shared helpers */
extern bool ChatstoreParseInterval(const char *text, Interval *result);
extern bool ChatstoreIntervalIsNegative(Interval *iv);
extern bool ChatstoreCheckIntervalSetting(const char *value, const char *name, bool empty_ok);
extern void ChatstorePinSetting(const char *name, const char *value);
extern void ChatstorePinPlanCacheMode(void);
extern void ChatstoreConnect(FunctionCallInfo fcinfo, ChatstoreCall *call);
extern void ChatstoreCheckTriggers(void);
extern void ChatstoreFinish(ChatstoreCall *call);
extern SPIPlanPtr ChatstorePlan(SPIPlanPtr *cache, const char *query,
								int nargs, const Oid *argtypes);
extern SPIPlanPtr ChatstoreWindowPlan(SPIPlanPtr *cache, const char *query,
									  int nargs, const Oid *argtypes);
extern void ChatstoreRequireArg(FunctionCallInfo fcinfo, int argno,
								const char *argname);
extern void ChatstoreCheckWindow(const char *argname, int32 value);
extern void ChatstoreConversationNotFound(pg_uuid_t *id) pg_attribute_noreturn();
extern void ChatstoreConversationArchived(pg_uuid_t *id) pg_attribute_noreturn();

/* citus.c: a distributed install (chatstore.distribute() on a Citus coordinator) */
extern bool ChatstoreCitusPresent(void);
extern bool ChatstoreDistributed(void);
extern bool ChatstoreCitusWorker(void);
extern void ChatstoreCheckWorkersSeeChatstore(void);
extern void ChatstoreRunOnWorkers(const char *sql);

/* conversation.c: where the next page of a keyset-paged list of conversations starts */
extern Datum ChatstorePagePosition(Datum before, Datum user_id);
extern void ChatstoreGetActor(Actor *actor);
extern const char *ChatstoreDeclaredUser(bool *stale);
extern bool ChatstoreCallerIsAdmin(void);
extern bool ChatstoreActorIs(Actor *actor, text *user_id);
extern void ChatstoreActorArg(Actor *actor, Datum *value, char *isnull);
extern char ChatstoreConversationStatus(pg_uuid_t *id, int lock, Actor *actor,
										TimestampTz *archived_at);
extern Datum ChatstoreLockEach(SPITupleTable *found, int n, Datum user_id, bool for_update,
							   int *locked, bool *isnull);
extern void ChatstoreInitSRF(FunctionCallInfo fcinfo);
extern void ChatstorePutValues(FunctionCallInfo fcinfo, Datum *values,
							   bool *nulls, int nvalues);
extern void ChatstorePutRow(FunctionCallInfo fcinfo, HeapTuple spituple,
							TupleDesc spidesc);
extern Datum ChatstoreFormRow(FunctionCallInfo fcinfo, Datum *values,
							  bool *nulls, int nvalues);
extern Datum ChatstoreRowFromSPI(FunctionCallInfo fcinfo, HeapTuple spituple,
								 TupleDesc spidesc);
extern char *ChatstoreUuidText(pg_uuid_t *id);
extern char *ChatstoreClip(const char *value, int len);

/* Conversation status as returned by ChatstoreConversationStatus */
#define CONV_MISSING	'\0'
#define CONV_ACTIVE		'a'
#define CONV_ARCHIVED	'r'

/* How ChatstoreConversationStatus locks the row (true means CONV_LOCK_UPDATE) */
#define CONV_LOCK_NONE		0
#define CONV_LOCK_UPDATE	1
#define CONV_LOCK_NO_KEY	2

/* archive.c: the archiver's steps, also run by the background worker */
extern int64 ArchiveIdle(TimestampTz cutoff, int64 limit, Actor *actor, int64 *messages);
extern int64 PurgeArchived(TimestampTz cutoff, Actor *actor, int64 *messages);
extern void EnsureArchivePartitions(TimestampTz now);
extern TimestampTz ChatstoreIntervalAgo(const char *setting_name, const char *setting,
										Interval *iv, const char *argname);
extern void ChatstoreRunDDL(const char *sql);

/*
 * search.c: the search indexes (chatstore.sql makes the live one; a
 * partition's, named after it with CHATSTORE_PARTITION_SEARCH_SUFFIX, is made
 * with CHATSTORE_PARTITION_SEARCH_INDEX from the quoted names of the index
 * and the partition, while search is on)
 */
#define CHATSTORE_SEARCH_INDEX	"message_search_idx"
#define CHATSTORE_PARTITION_SEARCH_SUFFIX	"_search_idx"
#define CHATSTORE_PARTITION_SEARCH_INDEX \
	"CREATE INDEX %s ON chatstore.%s" \
	" USING gin (chatstore.search_vector(user_id, content)) WITH (fastupdate = on)"
extern bool ChatstoreSearchOn(void);

/* worker.c */
extern char *chatstore_purge_after;
extern void ArchiveWorkerInit(void);

/* limits.c: the limit settings and checks */
extern int	chatstore_max_message_chars;
extern int	chatstore_max_user_message_chars;
extern int	chatstore_max_metadata_bytes;
extern int	chatstore_max_title_chars;
extern void LimitsInit(void);
extern void ChatstoreCheckIdentifier(text *value, const char *what);
extern void ChatstoreCheckCodePoints(text *value, const char *what, int limit,
									 const char *setting);
extern void ChatstoreCheckMetadata(Jsonb *metadata, const char *what);
extern bool ChatstoreIsBlank(const char *s, int len);

/* tags.c: the tag settings */
extern int	chatstore_max_tag_chars;
extern int	chatstore_max_tags_per_conversation;
extern void TagsInit(void);
extern text *ChatstoreNormalizeTag(text *value, const char *what, bool stored);
/* lifecycle.c: the application's state of a conversation */
extern void ChatstoreCheckState(text *state, const char *argname);
extern void ChatstoreCheckMetadataFilter(Jsonb *metadata, const char *argname);
extern void ChatstoreConversationCompleted(pg_uuid_t *id) pg_attribute_noreturn();
/* keys.c: the id of a keyed conversation, also checked by import_conversation */
extern void ChatstoreKeyedConversationId(text *user_id, text *key, pg_uuid_t *id);
/* append.c: append_by_key (keys.c) stores its message through append */
extern Datum chatstore_append(PG_FUNCTION_ARGS);
/* usage.c: the usage totals, also read by stats() */
extern void UsageTotals(TimestampTz since, TimestampTz until, bool by_day, bool by_model,
						bool by_user, text *user, text *time_zone);
/* append.c: the message checks of append, shared with import_conversation */
extern void ChatstoreValidateMessage(text *role, text *content, Jsonb **metadata,
									 int32 *tokens, bool tokens_given, text *model,
									 const int32 *usage, const bool *usage_given);
extern void ChatstoreValidateIdempotencyKey(text *key);

/* tokens.c */
extern int32 EstimateTokens(const char *text, int len);

/* uuidv7.c */
extern void GenerateUuidV7(pg_uuid_t *uuid, TimestampTz now);

#endif							/* CHATSTORE_H */
