/*
 * search.c
 *	  Full-text search of a user's messages: chatstore.search, and the
 *	  search_vector / search_query functions it is built on.
 *
 * One GIN index over chatstore.search_vector(user_id, content) on
 * chatstore.message and on every archive partition.  The vector holds:
 *	- the English lexemes of the content (to_tsvector('pg_catalog.english')),
 *	  so words match by their stems and quoted phrases by position;
 *	- every whitespace-delimited token that carries ASCII punctuation
 *	  (snake_case_name, Class.method, --flag, a.b/c), lower-cased, whole, so
 *	  code identifiers match as written;
 *	- every pair of adjacent CJK characters (Han, Hiragana, Katakana,
 *	  Hangul) at consecutive positions, so any CJK substring of two or more
 *	  characters matches as a phrase of its bigrams;
 *	- one lexeme naming the owner ("user " || user_id: no lexeme taken from
 *	  content contains a space), which every query ANDs in: GIN intersects
 *	  the query's rare entries with it, skipping through the owner's posting
 *	  tree, so a search reads the user's matches, not everyone's.
 * The function is immutable: the configuration is pg_catalog.english by
 * name, whatever the search_path, and everything else is fixed code.
 *
 * Search can be turned off (chatstore.set_search): the indexes are dropped,
 * and appends no longer write their entries.
 */
#include "postgres.h"

#include <ctype.h>
#include <math.h>

#include "catalog/namespace.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "mb/pg_wchar.h"
#include "nodes/pg_list.h"
#include "nodes/value.h"
#include "storage/lmgr.h"
#include "tsearch/ts_cache.h"
#include "tsearch/ts_public.h"
#include "tsearch/ts_type.h"
#include "tsearch/ts_utils.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "chatstore.h"

PG_FUNCTION_INFO_V1(chatstore_search_vector);
PG_FUNCTION_INFO_V1(chatstore_search_query);
PG_FUNCTION_INFO_V1(chatstore_search);
PG_FUNCTION_INFO_V1(chatstore_search_rank);
PG_FUNCTION_INFO_V1(chatstore_set_search);

/* The live table's search index, as chatstore.sql makes it */
#define LIVE_SEARCH_INDEX \
	"CREATE INDEX " CHATSTORE_SEARCH_INDEX " ON chatstore.message" \
	" USING gin (chatstore.search_vector(user_id, content))" \
	" WITH (fastupdate = on, gin_pending_list_limit = 256)"

/* Longest search query, in bytes. */
#define SEARCH_MAX_QUERY_BYTES	1000

/* Longest token kept whole as an identifier, in bytes. */
#define SEARCH_MAX_RAW_BYTES	255

/* Snippet: code points shown before the first match, and in all. */
#define SNIPPET_BEFORE			40
#define SNIPPET_CHARS			200

/* Prefix of the owner's lexeme. */
#define USER_LEXEME_PREFIX		"user "

/* What a snippet marks: a word stem (marked to the end of its word) or a string. */
typedef struct Needle
{
	char	   *str;
	int			len;
	bool		stem;
} Needle;

/* What a snippet marks in a content: each byte of a match, and the first. */
typedef struct SnippetMarks
{
	bool	   *marked;
	int			first;
} SnippetMarks;

/* A parsed search query. */
typedef struct SearchQuery
{
	StringInfoData content;		/* tsquery text without the owner */
	List	   *needles;		/* Needle *, for the snippet */
	int			positive;		/* terms that are not excluded */
} SearchQuery;

/*
 * The OID of pg_catalog.english, looked up by qualified name once per
 * backend, so that no search_path can change what the vector holds.
 */
static Oid
EnglishConfig(void)
{
	static Oid	cfg = InvalidOid;

	if (!OidIsValid(cfg))
		cfg = get_ts_config_oid(list_make2(makeString("pg_catalog"), makeString("english")), false);
	return cfg;
}

/* Whether a code point is a CJK character that search splits into bigrams. */
static bool
IsCJK(pg_wchar c)
{
	return (c >= 0x3040 && c <= 0x30FF) ||	/* Hiragana, Katakana */
		(c >= 0x31F0 && c <= 0x31FF) || /* Katakana extensions */
		(c >= 0x3400 && c <= 0x4DBF) || /* Han extension A */
		(c >= 0x4E00 && c <= 0x9FFF) || /* Han */
		(c >= 0xF900 && c <= 0xFAFF) || /* Han compatibility */
		(c >= 0x20000 && c <= 0x3FFFF) ||	/* Han extensions B.. */
		(c >= 0x1100 && c <= 0x11FF) || /* Hangul Jamo */
		(c >= 0x3130 && c <= 0x318F) || /* Hangul compatibility Jamo */
		(c >= 0xAC00 && c <= 0xD7AF) || /* Hangul syllables */
		(c >= 0xFF66 && c <= 0xFF9F);	/* halfwidth Katakana */
}

/*
 * The code point at s (len bytes left) and its length in bytes; CJK is
 * recognised in UTF-8 databases only.
 */
static pg_wchar
CodePoint(const char *s, int len, int *clen)
{
	int			n = pg_mblen(s);

	if (n > len)
		n = len;
	*clen = n;
	if (GetDatabaseEncoding() != PG_UTF8 || n == 1)
		return (unsigned char) *s;
	return utf8_to_unicode((const unsigned char *) s);
}

/* Whether the byte at s[i] continues a word (a letter, digit or non-ASCII). */
static bool
IsWordByte(const char *s, int i)
{
	unsigned char c = s[i];

	return c >= 0x80 || isalnum(c);
}

/*
 * Whether s[i] (of len bytes) ends a token kept whole: white space or one of
 * ()[]{}<>,;"'`, except an apostrophe between two letters or digits (don't,
 * year's), which belongs to its word.
 */
static bool
IsRawDelimiter(const char *s, int len, int i)
{
	unsigned char c = s[i];

	if (c == '\'' && i > 0 && i + 1 < len && IsWordByte(s, i - 1) && IsWordByte(s, i + 1))
		return false;
	return isspace(c) || (c != '\0' && strchr("()[]{}<>,;\"'`", c) != NULL);
}

/*
 * The next token of s[0..len) from *pos on, between raw delimiters: its
 * start in *start, its end in *pos; false at the end of s.  search_vector
 * splits content with it, and the query splits each word with it, so that a
 * query word finds the content it was copied from.
 */
static bool
NextRawToken(const char *s, int len, int *pos, int *start)
{
	int			i = *pos;

	while (i < len && IsRawDelimiter(s, len, i))
		i++;
	*start = i;
	while (i < len && !IsRawDelimiter(s, len, i))
		i++;
	*pos = i;
	return i > *start;
}

/*
 * The token s[0..len) kept whole as an identifier, or NULL: trailing . : !
 * ? are dropped (the end of a sentence), and what remains must hold both
 * ASCII punctuation and a letter or digit, and be at most
 * SEARCH_MAX_RAW_BYTES.  Lower-cased (ASCII), as stored and searched.
 */
static char *
RawToken(const char *s, int len, int *outlen)
{
	bool		punct = false;
	bool		alnum = false;
	char	   *out;

	while (len > 0 && strchr(".:!?", s[len - 1]) != NULL)
		len--;
	if (len == 0 || len > SEARCH_MAX_RAW_BYTES)
		return NULL;
	for (int i = 0; i < len; i++)
	{
		unsigned char c = s[i];

		if (c >= 0x80 || isalnum(c))
			alnum = true;
		else if (ispunct(c))
			punct = true;
	}
	if (!punct || !alnum)
		return NULL;
	out = palloc(len + 1);
	for (int i = 0; i < len; i++)
		out[i] = pg_ascii_tolower((unsigned char) s[i]);
	out[len] = '\0';
	*outlen = len;
	return out;
}

/*
 * Whether the English parser may take an identifier as one word, without
 * its parts (Class.method and foo-bar.py are a host and a file to it): it
 * holds punctuation other than ' - _, which the parser splits at (don't,
 * snake_case_name, --flag give their words).  search_vector parses the
 * parts of those only, which saves a parse per contraction at every append
 * and every ranked row.
 */
static bool
KeptWhole(const char *s, int len)
{
	for (int i = 0; i < len; i++)
		if (ispunct((unsigned char) s[i]) && strchr("'-_", s[i]) == NULL)
			return true;
	return false;
}

/* Add a lexeme at a position to a ParsedText, as parsetext does. */
static void
AddWord(ParsedText *prs, const char *word, int len, int pos)
{
	ParsedWord *w;

	if (len <= 0 || len > MAXSTRLEN)
		return;
	if (prs->curwords >= prs->lenwords)
	{
		prs->lenwords *= 2;
		prs->words = repalloc(prs->words, sizeof(ParsedWord) * prs->lenwords);
	}
	w = &prs->words[prs->curwords++];
	w->len = len;
	w->nvariant = 0;
	w->flags = 0;
	w->alen = 0;
	w->word = palloc(len);
	memcpy(w->word, word, len);
	w->pos.pos = LIMITPOS(pos);
}

/*
 * The content as the English parser should see it: a copy with " a " (a
 * stop word, which also ends a run of symbols the parser takes as one
 * token) every MAXSTRLEN - 8 bytes of any longer run without white space,
 * so that parsetext never meets a token it cannot index (it would raise a
 * NOTICE at every append, and drop the word anyway); the content itself
 * otherwise.
 */
static char *
ParseableText(char *s, int len, int *outlen)
{
	StringInfoData buf;
	int			run = 0;
	bool		long_run = false;

	for (int i = 0; i < len && !long_run; i++)
	{
		run = isspace((unsigned char) s[i]) ? 0 : run + 1;
		long_run = run >= MAXSTRLEN - 8;
	}
	*outlen = len;
	if (!long_run)
		return s;
	initStringInfo(&buf);
	run = 0;
	for (int i = 0; i < len;)
	{
		int			clen = pg_mblen(s + i);

		if (clen > len - i)
			clen = len - i;
		if (isspace((unsigned char) s[i]))
			run = 0;
		else if (run + clen >= MAXSTRLEN - 8)
		{
			appendStringInfoString(&buf, " a ");
			run = 0;
		}
		else
			run += clen;
		appendBinaryStringInfo(&buf, s + i, clen);
		i += clen;
	}
	*outlen = buf.len;
	return buf.data;
}

/*
 * chatstore.search_vector(user_id text, content text) RETURNS tsvector
 *
 * What the search index holds for one message (see the file comment).
 */
Datum
chatstore_search_vector(PG_FUNCTION_ARGS)
{
	text	   *user_id = PG_GETARG_TEXT_PP(0);
	text	   *content = PG_GETARG_TEXT_PP(1);
	char	   *s = VARDATA_ANY(content);
	int			len = VARSIZE_ANY_EXHDR(content);
	ParsedText	prs;
	StringInfoData owner;
	int			pos;
	int			i;

	prs.lenwords = len / 6 + 16;
	prs.curwords = 0;
	prs.pos = 0;
	prs.words = palloc(sizeof(ParsedWord) * prs.lenwords);
	{
		int			plen;
		char	   *p = ParseableText(s, len, &plen);

		parsetext(EnglishConfig(), &prs, p, plen);
	}
	pos = prs.pos + 1;

	/* the owner */
	initStringInfo(&owner);
	appendStringInfoString(&owner, USER_LEXEME_PREFIX);
	appendBinaryStringInfo(&owner, VARDATA_ANY(user_id), VARSIZE_ANY_EXHDR(user_id));
	AddWord(&prs, owner.data, owner.len, pos++);

	/*
	 * tokens kept whole, each followed by the English lexemes of its parts
	 * (the parser takes Class.method or foo-bar.py as one word, so that
	 * method or bar would not find them otherwise)
	 */
	i = 0;
	{
		int			start,
					rawlen;
		char	   *raw;

		while (NextRawToken(s, len, &i, &start))
		{
			if ((raw = RawToken(s + start, i - start, &rawlen)) == NULL)
				continue;
			AddWord(&prs, raw, rawlen, pos++);
			if (KeptWhole(raw, rawlen))
			{
				for (int k = 0; k < rawlen; k++)
					if (ispunct((unsigned char) raw[k]))
						raw[k] = ' ';
				prs.pos = pos;
				parsetext(EnglishConfig(), &prs, raw, rawlen);
				pos = prs.pos + 1;
			}
			pfree(raw);
		}
	}

	/* CJK bigrams, at consecutive positions within a run, a gap between runs */
	if (GetDatabaseEncoding() == PG_UTF8)
	{
		int			prev = -1;	/* byte offset of the previous CJK character */

		pos++;
		for (i = 0; i < len;)
		{
			int			clen;
			pg_wchar	c = CodePoint(s + i, len - i, &clen);

			if (IsCJK(c))
			{
				if (prev >= 0)
					AddWord(&prs, s + prev, i + clen - prev, pos++);
				prev = i;
			}
			else if (prev >= 0)
			{
				prev = -1;
				pos++;
			}
			i += clen;
		}
	}

	PG_FREE_IF_COPY(content, 1);
	PG_RETURN_TSVECTOR(make_tsvector(&prs));
}

/* Append a lexeme to tsquery text, quoted. */
static void
AppendLexeme(StringInfo buf, const char *s, int len)
{
	appendStringInfoChar(buf, '\'');
	for (int i = 0; i < len; i++)
	{
		if (s[i] == '\'' || s[i] == '\\')
			appendStringInfoChar(buf, s[i]);
		appendStringInfoChar(buf, s[i]);
	}
	appendStringInfoChar(buf, '\'');
}

/* Remember what a snippet should mark and search_rank count (once each). */
static void
AddNeedle(SearchQuery *sq, const char *s, int len, bool stem)
{
	Needle	   *n;
	ListCell   *lc;

	foreach(lc, sq->needles)
	{
		Needle	   *old = lfirst(lc);

		if (old->stem == stem && old->len == len && memcmp(old->str, s, len) == 0)
			return;
	}
	n = palloc(sizeof(Needle));

	n->str = pnstrdup(s, len);
	n->len = len;
	n->stem = stem;
	sq->needles = lappend(sq->needles, n);
}

/*
 * English words as a phrase of their lexemes ('a' <-> 'b' <2> 'c': stop
 * words keep their place), appended to buf; false when there is no lexeme.
 */
static bool
EnglishPhrase(SearchQuery *sq, StringInfo buf, const char *s, int len, bool mark)
{
	ParsedText	prs;
	int			last = 0;

	prs.lenwords = len / 4 + 4;
	prs.curwords = 0;
	prs.pos = 0;
	prs.words = palloc(sizeof(ParsedWord) * prs.lenwords);
	parsetext(EnglishConfig(), &prs, (char *) s, len);
	if (prs.curwords == 0)
		return false;
	appendStringInfoChar(buf, '(');
	for (int i = 0; i < prs.curwords; i++)
	{
		ParsedWord *w = &prs.words[i];

		if (i > 0)
			appendStringInfo(buf, " <%d> ", Max(0, w->pos.pos - last));
		AppendLexeme(buf, w->word, w->len);
		if (mark)
			AddNeedle(sq, w->word, w->len, true);
		last = w->pos.pos;
	}
	appendStringInfoChar(buf, ')');
	return true;
}

/*
 * CJK characters s[0..len) (a run of two or more) as the phrase of their
 * bigrams, appended to buf.
 */
static void
CJKPhrase(StringInfo buf, const char *s, int len)
{
	int			prev = -1;
	bool		first = true;

	appendStringInfoChar(buf, '(');
	for (int i = 0; i < len;)
	{
		int			clen;

		CodePoint(s + i, len - i, &clen);
		if (prev >= 0)
		{
			if (!first)
				appendStringInfoString(buf, " <-> ");
			AppendLexeme(buf, s + prev, i + clen - prev);
			first = false;
		}
		prev = i;
		i += clen;
	}
	appendStringInfoChar(buf, ')');
}

/*
 * One token of a query word (between raw delimiters) as tsquery text
 * appended to buf: kept whole when it is an identifier, CJK runs as bigram
 * phrases and the rest as English words, ANDed.  False when nothing in it
 * is searchable.
 */
static bool
TokenQuery(SearchQuery *sq, StringInfo buf, const char *s, int len, bool mark)
{
	int			rawlen;
	char	   *raw = RawToken(s, len, &rawlen);
	int			parts = 0;
	int			i = 0;

	if (raw != NULL)
	{
		AppendLexeme(buf, raw, rawlen);
		if (mark)
			AddNeedle(sq, raw, rawlen, false);
		return true;
	}
	while (i < len)
	{
		int			start = i,
					chars = 0,
					clen;
		bool		cjk = IsCJK(CodePoint(s + i, len - i, &clen));
		StringInfoData part;

		/* a run of CJK characters, or of anything else */
		while (i < len && IsCJK(CodePoint(s + i, len - i, &clen)) == cjk)
		{
			i += clen;
			chars++;
		}
		initStringInfo(&part);
		if (cjk && chars >= 2)
		{
			CJKPhrase(&part, s + start, i - start);
			if (mark)
				AddNeedle(sq, s + start, i - start, false);
		}
		else if (cjk || !EnglishPhrase(sq, &part, s + start, i - start, mark))
			continue;			/* a lone CJK character, or a stop word */
		if (parts++ > 0)
			appendStringInfoString(buf, " & ");
		appendBinaryStringInfo(buf, part.data, part.len);
	}
	return parts > 0;
}

/*
 * One word of the query (no white space) as tsquery text appended to buf:
 * split into tokens exactly as search_vector splits content (hello, ->
 * hello; Class.method() -> Class.method; don't stays whole), each token as
 * TokenQuery has it, ANDed.  False when nothing in it is searchable.
 */
static bool
WordQuery(SearchQuery *sq, StringInfo buf, const char *s, int len, bool mark)
{
	int			parts = 0;
	int			i = 0,
				start;

	while (NextRawToken(s, len, &i, &start))
	{
		StringInfoData part;

		initStringInfo(&part);
		if (!TokenQuery(sq, &part, s + start, i - start, mark))
			continue;
		if (parts++ > 0)
			appendStringInfoString(buf, " & ");
		appendBinaryStringInfo(buf, part.data, part.len);
	}
	return parts > 0;
}

/*
 * A quoted phrase: English words as a phrase; anything holding identifiers
 * or CJK as its words ANDed.
 */
static bool
PhraseQuery(SearchQuery *sq, StringInfo buf, const char *s, int len, bool mark)
{
	bool		plain = true;
	int			parts = 0;
	int			i = 0;

	while (i < len && plain)
	{
		int			start,
					rawlen,
					clen;

		if (!NextRawToken(s, len, &i, &start))
			break;
		for (int k = start; k < i; k += clen)
			if (IsCJK(CodePoint(s + k, i - k, &clen)))
				plain = false;
		if (RawToken(s + start, i - start, &rawlen) != NULL)
			plain = false;
	}
	if (plain)
		return EnglishPhrase(sq, buf, s, len, mark);
	i = 0;
	while (i < len)
	{
		int			start;
		StringInfoData part;

		while (i < len && isspace((unsigned char) s[i]))
			i++;
		start = i;
		while (i < len && !isspace((unsigned char) s[i]))
			i++;
		initStringInfo(&part);
		if (i > start && WordQuery(sq, &part, s + start, i - start, mark))
		{
			if (parts++ > 0)
				appendStringInfoString(buf, " & ");
			appendBinaryStringInfo(buf, part.data, part.len);
		}
	}
	return parts > 0;
}

/*
 * Parse a search query: words ANDed; "a quoted phrase"; -word excludes
 * (but --flag is an identifier); OR between two terms matches either.
 * Raises 22023 when nothing in it can be searched.
 */
static void
ParseSearchQuery(text *query, SearchQuery *sq)
{
	const char *s = VARDATA_ANY(query);
	int			len = VARSIZE_ANY_EXHDR(query);
	List	   *groups = NIL;	/* StringInfo per AND-ed group */
	bool		pending_or = false;
	int			i = 0;

	if (len > SEARCH_MAX_QUERY_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("search query is too long"),
				 errdetail("The query has %d bytes; the limit is %d.", len, SEARCH_MAX_QUERY_BYTES)));
	if (ChatstoreIsBlank(s, len))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("search query is empty"),
				 errdetail("Pass the words, phrases, identifiers or CJK text to look for.")));
	initStringInfo(&sq->content);
	sq->needles = NIL;
	sq->positive = 0;

	while (i < len)
	{
		int			start;
		bool		quoted = false,
					negate = false,
					ok;
		StringInfoData term;

		while (i < len && isspace((unsigned char) s[i]))
			i++;
		if (i >= len)
			break;
		if (s[i] == '-' && i + 1 < len && s[i + 1] != '-' && !isspace((unsigned char) s[i + 1]))
		{
			negate = true;
			i++;
		}
		if (s[i] == '"')
		{
			quoted = true;
			start = ++i;
			while (i < len && s[i] != '"')
				i++;
		}
		else
		{
			start = i;
			while (i < len && !isspace((unsigned char) s[i]))
				i++;
		}
		if (!quoted && !negate && i - start == 2 && pg_strncasecmp(s + start, "or", 2) == 0 && groups != NIL)
		{
			pending_or = true;
			continue;
		}
		initStringInfo(&term);
		if (negate)
			appendStringInfoString(&term, "!");
		ok = quoted ? PhraseQuery(sq, &term, s + start, i - start, !negate)
			: WordQuery(sq, &term, s + start, i - start, !negate);
		if (quoted && i < len)
			i++;				/* the closing quote */
		if (!ok)
		{
			pending_or = false;
			continue;
		}
		if (!negate)
			sq->positive++;
		if (pending_or)
		{
			StringInfo	last = llast(groups);

			appendStringInfoString(last, " | ");
			appendBinaryStringInfo(last, term.data, term.len);
		}
		else
		{
			StringInfo	g = makeStringInfo();

			appendBinaryStringInfo(g, term.data, term.len);
			groups = lappend(groups, g);
		}
		pending_or = false;
	}
	if (sq->positive == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("search query has nothing to search for"),
				 errdetail("Every word of \"%s\" is a stop word, a single CJK character or excluded.",
						   ChatstoreClip(s, len)),
				 errhint("Search for a word that is not a stop word, or two or more CJK characters.")));
	{
		ListCell   *lc;

		foreach(lc, groups)
		{
			StringInfo	g = lfirst(lc);

			if (foreach_current_index(lc) > 0)
				appendStringInfoString(&sq->content, " & ");
			appendStringInfo(&sq->content, "( %s )", g->data);
		}
	}
}

/* Parse tsquery text. */
static Datum
ToTsquery(const char *text)
{
	return DirectFunctionCall1(tsqueryin, CStringGetDatum(text));
}

/* The tsquery text of the owner's lexeme ANDed with the content's query. */
static char *
OwnerQuery(text *user_id, SearchQuery *sq)
{
	StringInfoData buf;
	StringInfoData owner;

	initStringInfo(&owner);
	appendStringInfoString(&owner, USER_LEXEME_PREFIX);
	appendBinaryStringInfo(&owner, VARDATA_ANY(user_id), VARSIZE_ANY_EXHDR(user_id));
	initStringInfo(&buf);
	AppendLexeme(&buf, owner.data, owner.len);
	appendStringInfo(&buf, " & ( %s )", sq->content.data);
	return buf.data;
}

/*
 * chatstore.search_query(user_id text, query text) RETURNS tsquery
 *
 * The tsquery that search() runs for a user's query, for EXPLAIN and for
 * queries of one's own over search_vector.
 */
Datum
chatstore_search_query(PG_FUNCTION_ARGS)
{
	SearchQuery sq;

	ChatstoreRequireArg(fcinfo, 0, "user_id");
	ChatstoreRequireArg(fcinfo, 1, "query");
	ParseSearchQuery(PG_GETARG_TEXT_PP(1), &sq);
	PG_RETURN_DATUM(ToTsquery(OwnerQuery(PG_GETARG_TEXT_PP(0), &sq)));
}

/*
 * The OID of pg_catalog.english_stem, the dictionary the english
 * configuration gives words, looked up by qualified name once per backend.
 */
static Oid
EnglishStemDictionary(void)
{
	static Oid	dict = InvalidOid;

	if (!OidIsValid(dict))
		dict = get_ts_dict_oid(list_make2(makeString("pg_catalog"), makeString("english_stem")), false);
	return dict;
}

/*
 * The English stem of the word s[0..len) (lower-cased by the dictionary), or
 * NULL for a stop word: what the index holds for an English word.
 */
static char *
Stem(const char *s, int len)
{
	TSDictionaryCacheEntry *dict = lookup_ts_dictionary_cache(EnglishStemDictionary());
	DictSubState dstate = {false, false, NULL};
	TSLexeme   *res;

	res = (TSLexeme *) DatumGetPointer(FunctionCall4(&dict->lexize,
													 PointerGetDatum(dict->dictData),
													 PointerGetDatum(s),
													 Int32GetDatum(len),
													 PointerGetDatum(&dstate)));
	return res == NULL || res[0].lexeme == NULL ? NULL : res[0].lexeme;
}

/*
 * Find the needles' matches in s[0..len): call found(i, end, needle
 * number, arg) for each.  An English needle (a stem) matches a whole word
 * (a run of letters, digits and non-ASCII bytes) whose stem it is, so
 * "using" matches the stem "use" and "City" the stem "citi", but
 * "citizen" does not; a word is stemmed only when its first letter is a
 * stem's first letter (the stemmer keeps the first letter) or is not ASCII.
 * An identifier or a CJK needle matches where it occurs, ASCII case
 * ignored.
 */
static void
FindMatches(const char *s, int len, List *needles,
			void (*found) (int start, int end, int needle, void *arg), void *arg)
{
	bool		any_stem = false;
	ListCell   *lc;

	foreach(lc, needles)
	{
		Needle	   *n = lfirst(lc);

		if (n->stem)
		{
			any_stem = true;
			continue;
		}
		for (int i = 0; i + n->len <= len; i++)
			if (pg_strncasecmp(s + i, n->str, n->len) == 0)
				found(i, i + n->len, foreach_current_index(lc), arg);
	}
	if (!any_stem)
		return;
	for (int i = 0; i < len;)
	{
		int			e = i;
		unsigned char first;
		char	   *stem = NULL;
		bool		stemmed = false;

		if (!IsWordByte(s, i))
		{
			i++;
			continue;
		}
		while (e < len && IsWordByte(s, e))
			e++;
		first = pg_ascii_tolower((unsigned char) s[i]);
		foreach(lc, needles)
		{
			Needle	   *n = lfirst(lc);

			if (!n->stem || (first < 0x80 && (unsigned char) n->str[0] != first))
				continue;
			if (!stemmed)
			{
				stem = Stem(s + i, e - i);
				stemmed = true;
			}
			if (stem != NULL && strlen(stem) == (size_t) n->len && memcmp(stem, n->str, n->len) == 0)
				found(i, e, foreach_current_index(lc), arg);
		}
		i = e;
	}
}

/* FindMatches callback of Snippet: mark the match, remember the first. */
static void
MarkMatch(int start, int end, int needle, void *arg)
{
	SnippetMarks *m = arg;

	for (int k = start; k < end; k++)
		m->marked[k] = true;
	if (m->first < 0 || start < m->first)
		m->first = start;
}

/*
 * A snippet of the content around its first match, at most SNIPPET_CHARS
 * code points (all of a shorter one), the matches between « and »: identifiers and CJK text where
 * they occur (ASCII case ignored), English words where a word starts with
 * the query word's stem, to the end of that word.  White space is shown as
 * single spaces, and … marks a cut.
 */
static text *
Snippet(text *content, List *needles)
{
	const char *s = VARDATA_ANY(content);
	int			len = VARSIZE_ANY_EXHDR(content);
	SnippetMarks m;
	bool	   *marked;
	bool		utf8 = GetDatabaseEncoding() == PG_UTF8;
	const char *open = utf8 ? "\xC2\xAB" : "[[";
	const char *close = utf8 ? "\xC2\xBB" : "]]";
	int			first,
				start,
				end,
				chars;
	StringInfoData out;

	m.marked = marked = palloc0(len + 1);
	m.first = -1;
	FindMatches(s, len, needles, MarkMatch, &m);
	first = m.first;

	/* the window: from up to SNIPPET_BEFORE code points before the first match */
	start = 0;
	if (first > 0 && pg_mbstrlen_with_len(s, len) > SNIPPET_CHARS)
	{
		int			back = 0;
		int			p = 0;
		int		   *starts = palloc(sizeof(int) * (SNIPPET_BEFORE + 1));

		/* the last SNIPPET_BEFORE character starts before "first", in a ring */
		while (p < first)
		{
			starts[back % (SNIPPET_BEFORE + 1)] = p;
			back++;
			p += pg_mblen(s + p);
		}
		start = back > SNIPPET_BEFORE ? starts[(back - SNIPPET_BEFORE) % (SNIPPET_BEFORE + 1)] : 0;
		/* begin at a word when one starts nearby */
		if (start > 0)
			for (int q = start; q < first; q++)
				if (isspace((unsigned char) s[q]))
				{
					start = q + 1;
					break;
				}
	}
	end = start;
	chars = 0;
	while (end < len && chars < SNIPPET_CHARS)
	{
		end += pg_mblen(s + end);
		chars++;
	}
	if (end > len)
		end = len;

	initStringInfo(&out);
	if (start > 0)
		appendStringInfoString(&out, "\xE2\x80\xA6");
	for (int i = start; i < end; i++)
	{
		if (marked[i] && (i == start || !marked[i - 1]))
			appendStringInfoString(&out, open);
		if (isspace((unsigned char) s[i]))
		{
			if (out.len == 0 || out.data[out.len - 1] != ' ')
				appendStringInfoChar(&out, ' ');
		}
		else
			appendStringInfoChar(&out, s[i]);
		if (marked[i] && (i + 1 == end || !marked[i + 1]))
			appendStringInfoString(&out, close);
	}
	if (end < len)
		appendStringInfoString(&out, "\xE2\x80\xA6");
	return cstring_to_text_with_len(out.data, out.len);
}

/* A parsed query kept for the rows of one search_rank call site. */
typedef struct RankCache
{
	MemoryContext cxt;			/* holds the query and its needles */
	text	   *query;
	List	   *needles;
} RankCache;

/* FindMatches callback of search_rank: count the needle's matches. */
static void
CountMatch(int start, int end, int needle, void *arg)
{
	((int *) arg)[needle]++;
}

/*
 * chatstore.search_rank(content text, query text) RETURNS real
 *
 * How well a message matches a query, the order of search()'s results:
 * the sum, over the query's terms (the needles its snippets mark), of
 * 1 + ln(occurrences) for each term that occurs, divided by
 * 1 + ln(1 + code points / 1000), so that more of the query's terms, and
 * more occurrences, rank higher, and a long message a little lower.
 * Computed from the content by a scan like the snippet's, without parsing
 * it again into a vector (that cost search about 25 microseconds per
 * match, ten times a scan).  The parsed query is kept for the next rows.
 */
Datum
chatstore_search_rank(PG_FUNCTION_ARGS)
{
	text	   *content = PG_GETARG_TEXT_PP(0);
	text	   *query = PG_GETARG_TEXT_PP(1);
	RankCache  *cache = fcinfo->flinfo->fn_extra;
	const char *s = VARDATA_ANY(content);
	int			len = VARSIZE_ANY_EXHDR(content);
	double		score = 0;
	int		   *counts;

	if (cache == NULL)
	{
		cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(RankCache));
		cache->cxt = AllocSetContextCreate(fcinfo->flinfo->fn_mcxt, "chatstore search_rank",
										   ALLOCSET_SMALL_SIZES);
		fcinfo->flinfo->fn_extra = cache;
	}
	if (cache->query == NULL ||
		VARSIZE_ANY_EXHDR(cache->query) != VARSIZE_ANY_EXHDR(query) ||
		memcmp(VARDATA_ANY(cache->query), VARDATA_ANY(query), VARSIZE_ANY_EXHDR(query)) != 0)
	{
		MemoryContext old;
		SearchQuery sq;

		cache->query = NULL;	/* until the new one is parsed, should that fail */
		MemoryContextReset(cache->cxt);
		old = MemoryContextSwitchTo(cache->cxt);
		ParseSearchQuery(query, &sq);
		cache->needles = sq.needles;
		cache->query = (text *) PG_DETOAST_DATUM_COPY(PG_GETARG_DATUM(1));
		MemoryContextSwitchTo(old);
	}

	counts = palloc0(sizeof(int) * Max(list_length(cache->needles), 1));
	FindMatches(s, len, cache->needles, CountMatch, counts);
	for (int i = 0; i < list_length(cache->needles); i++)
		if (counts[i] > 0)
			score += 1.0 + log((double) counts[i]);
	score /= 1.0 + log(1.0 + pg_mbstrlen_with_len(s, len) / 1000.0);
	PG_RETURN_FLOAT4((float4) score);
}

/* Raise 22023 unless the role is one of the four. */
static void
CheckRole(text *role)
{
	char	   *r = text_to_cstring(role);

	if (strcmp(r, CHATSTORE_ROLE_SYSTEM) != 0 && strcmp(r, CHATSTORE_ROLE_USER) != 0 &&
		strcmp(r, CHATSTORE_ROLE_ASSISTANT) != 0 && strcmp(r, CHATSTORE_ROLE_TOOL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid role \"%s\"", ChatstoreClip(r, strlen(r))),
				 errdetail("The role must be one of system, user, assistant, tool, or NULL for all.")));
}

/* One branch of the search: live or archived messages. */
#define SEARCH_BRANCH(table, archived) \
	"  SELECT m.conversation_id, m.seq, m.role, m.created_at, " archived " AS archived," \
	"         chatstore.search_rank(m.content, $3) AS rank, m.content" \
	"  FROM " table " m" \
	"  WHERE chatstore.search_vector(m.user_id, m.content) OPERATOR(pg_catalog.@@) $2" \
	"    AND m.user_id OPERATOR(pg_catalog.=) $1" \
	"    AND ($4::pg_catalog.uuid IS NULL OR m.conversation_id OPERATOR(pg_catalog.=) $4)" \
	"    AND ($5::pg_catalog.text IS NULL OR m.role OPERATOR(pg_catalog.=) $5)" \
	"    AND ($6::pg_catalog.timestamptz IS NULL OR m.created_at OPERATOR(pg_catalog.>=) $6)" \
	"    AND ($7::pg_catalog.timestamptz IS NULL OR m.created_at OPERATOR(pg_catalog.<) $7)" \
	"    AND ($12::pg_catalog.text IS NULL OR EXISTS (SELECT 1 FROM chatstore.conversation_tag t" \
	"         WHERE t.conversation_id OPERATOR(pg_catalog.=) m.conversation_id AND t.tag OPERATOR(pg_catalog.=) $12))" \
	"    AND ($13::pg_catalog.text IS NULL OR EXISTS (SELECT 1 FROM chatstore.conversation c" \
	"         WHERE c.id OPERATOR(pg_catalog.=) m.conversation_id AND c.state OPERATOR(pg_catalog.=) $13))"

/*
 * chatstore.search(user_id text, query text, conversation_id uuid, role
 *		text, since timestamptz, until timestamptz, max_results int,
 *		after_rank real, after_conversation_id uuid, after_seq int, tag text,
 *		state text)
 *		RETURNS TABLE (conversation_id uuid, seq int, role text,
 *		created_at timestamptz, archived boolean, rank real, snippet text)
 *
 * The user's live and archived messages that match, best first (rank
 * descending, then conversation_id and seq): the next page starts after
 * the last row's (rank, conversation_id, seq).  tag and state keep the
 * messages of the conversations that carry the tag or are in the state.
 */
Datum
chatstore_search(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[13] = {
		TEXTOID, TSQUERYOID, TEXTOID, UUIDOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
		FLOAT4OID, UUIDOID, INT4OID, INT4OID, TEXTOID, TEXTOID
	};
	ChatstoreCall call;
	SearchQuery sq;
	text	   *user_id;
	Datum		args[13];
	char		nulls[13];
	int32		max_results;
	int			after_given;
	Actor		actor;
	int			rc;

	ChatstoreRequireArg(fcinfo, 0, "user_id");
	ChatstoreRequireArg(fcinfo, 1, "query");
	ChatstoreRequireArg(fcinfo, 6, "max_results");
	user_id = PG_GETARG_TEXT_PP(0);
	max_results = PG_GETARG_INT32(6);
	ChatstoreCheckWindow("max_results", max_results);
	if (!PG_ARGISNULL(3))
		CheckRole(PG_GETARG_TEXT_PP(3));
	if (!PG_ARGISNULL(11))
		ChatstoreCheckState(PG_GETARG_TEXT_PP(11), "state");
	after_given = !PG_ARGISNULL(7) + !PG_ARGISNULL(8) + !PG_ARGISNULL(9);
	if (after_given != 0 && after_given != 3)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("after_rank, after_conversation_id and after_seq go together"),
				 errdetail("Pass all three, from the last row of the previous page, or none for the first page.")));
	ParseSearchQuery(PG_GETARG_TEXT_PP(1), &sq);
	/* the table's lock first (its query would take it anyway): a set_search() under way ends before the check */
	LockRelationOid(get_relname_relid("message", get_namespace_oid("chatstore", false)), AccessShareLock);
	if (!ChatstoreSearchOn())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("chatstore search is turned off"),
				 errdetail("chatstore.message has no valid search index (" CHATSTORE_SEARCH_INDEX "), so a search would read every message."),
				 errhint("A superuser turns search on with SELECT chatstore.set_search(true).")));

	ChatstoreInitSRF(fcinfo);
	ChatstoreGetActor(&actor);
	if (!ChatstoreActorIs(&actor, user_id))
		return (Datum) 0;		/* another user's messages: none to see */

	args[0] = PointerGetDatum(user_id);
	args[1] = ToTsquery(OwnerQuery(user_id, &sq));
	args[2] = PG_GETARG_DATUM(1);	/* for search_rank */
	for (int i = 3; i < 10; i++)
	{
		int			argno = i < 7 ? i - 1 : i;	/* arguments 2..5, then 7..9 */

		nulls[i] = PG_ARGISNULL(argno) ? 'n' : ' ';
		args[i] = PG_ARGISNULL(argno) ? (Datum) 0 : PG_GETARG_DATUM(argno);
	}
	nulls[0] = nulls[1] = nulls[2] = nulls[10] = ' ';
	args[10] = Int32GetDatum(max_results);
	nulls[11] = PG_ARGISNULL(10) ? 'n' : ' ';
	args[11] = PG_ARGISNULL(10) ? (Datum) 0 : PointerGetDatum(ChatstoreNormalizeTag(PG_GETARG_TEXT_PP(10), "tag", false));
	nulls[12] = PG_ARGISNULL(11) ? 'n' : ' ';
	args[12] = PG_ARGISNULL(11) ? (Datum) 0 : PG_GETARG_DATUM(11);

	ChatstoreConnect(fcinfo, &call);
	rc = SPI_execute_plan(ChatstorePlan(&plan,
										"SELECT s.conversation_id, s.seq, s.role, s.created_at, s.archived, s.rank, s.content"
										" FROM (" SEARCH_BRANCH("chatstore.message", "false")
										"  UNION ALL " SEARCH_BRANCH("chatstore.archived_message", "true") ") s"
										" WHERE $8::pg_catalog.float4 IS NULL"
										"    OR s.rank OPERATOR(pg_catalog.<) $8"
										"    OR (s.rank OPERATOR(pg_catalog.=) $8"
										"        AND (s.conversation_id OPERATOR(pg_catalog.>) $9"
										"             OR (s.conversation_id OPERATOR(pg_catalog.=) $9"
										"                 AND s.seq OPERATOR(pg_catalog.>) $10)))"
										" ORDER BY s.rank DESC, s.conversation_id, s.seq"
										" LIMIT $11",
										13, argtypes),
						  args, nulls, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "chatstore: search failed: %s", SPI_result_code_string(rc));

	for (uint64 r = 0; r < SPI_processed; r++)
	{
		Datum		values[7];
		bool		isnull[7];
		HeapTuple	tup = SPI_tuptable->vals[r];

		heap_deform_tuple(tup, SPI_tuptable->tupdesc, values, isnull);
		values[6] = PointerGetDatum(Snippet(DatumGetTextPP(values[6]), sq.needles));
		ChatstorePutValues(fcinfo, values, isnull, 7);
	}
	ChatstoreFinish(&call);
	return (Datum) 0;
}

/*
 * The live search index: its oid, or InvalidOid when schema chatstore has
 * no relation of that name; *valid says whether it is a usable index of
 * chatstore.message (an interrupted CREATE INDEX CONCURRENTLY leaves an
 * invalid one, which no query reads but every append still writes).
 */
static Oid
LiveSearchIndex(bool *valid)
{
	Oid			nsp = get_namespace_oid("chatstore", false);
	Oid			index = get_relname_relid(CHATSTORE_SEARCH_INDEX, nsp);
	HeapTuple	tup;

	*valid = false;
	if (!OidIsValid(index))
		return InvalidOid;
	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(index));
	if (HeapTupleIsValid(tup))
	{
		Form_pg_index form = (Form_pg_index) GETSTRUCT(tup);

		*valid = form->indisvalid && form->indrelid == get_relname_relid("message", nsp);
		ReleaseSysCache(tup);
	}
	return index;
}

/*
 * Whether search is on: whether chatstore.message has its search index, and
 * it is valid.  Nothing else records it, so it cannot disagree with the
 * tables (an index dropped by hand turns search off as set_search(false)
 * does).
 */
bool
ChatstoreSearchOn(void)
{
	bool		valid;

	return OidIsValid(LiveSearchIndex(&valid)) && valid;
}

/*
 * chatstore.set_search(enabled boolean) RETURNS boolean
 *
 * Turn search on or off.  Off drops the search index of chatstore.message
 * and of every archive partition chatstore made (archived_message_YYYYMM):
 * appends then write no search entries (the one index of the append path
 * that only search uses: about half of an append's WAL), and search()
 * refuses with 55000.  On builds them again (appends wait while the live
 * table's is built; an invalid one, left by an interrupted CREATE INDEX
 * CONCURRENTLY, is built again), and partitions made later get theirs.
 * Returns false when nothing had to change.
 *
 * It holds the archive's SHARE UPDATE EXCLUSIVE lock, as a partition's maker
 * does (src/archive.c), and lists the partitions after it has it, with a
 * snapshot of its own: no partition is made meanwhile with the other
 * setting, and one made while it waited is seen.  The partitions come first
 * and the live table last, so appends wait (on its lock, held until the
 * transaction ends) only from the last step.  Superusers only: it is DDL on
 * the extension's tables.  On Citus, the coordinator's DDL reaches every
 * shard; a worker refuses it (its tables are the coordinator's).
 */
Datum
chatstore_set_search(PG_FUNCTION_ARGS)
{
	ChatstoreCall call;
	bool		enabled;
	bool		changed = false;
	bool		valid;
	Oid			nsp;
	Oid			archive;
	Oid			live;
	List	   *partitions = NIL;
	ListCell   *lc;
	Oid			argtypes[2] = {OIDOID, OIDOID};
	Datum		args[2];

	ChatstoreRequireArg(fcinfo, 0, "enabled");
	enabled = PG_GETARG_BOOL(0);
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to turn chatstore search on or off"),
				 errdetail("Only a superuser may call chatstore.set_search().")));
	if (ChatstoreCitusWorker())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this server is a Citus worker"),
				 errhint("Call chatstore.set_search() on the coordinator.")));

	ChatstoreConnect(fcinfo, &call);
	nsp = get_namespace_oid("chatstore", false);
	archive = get_relname_relid("archived_message", nsp);
	if (!OidIsValid(archive))
		elog(ERROR, "chatstore: table chatstore.archived_message is missing");
	LockRelationOid(archive, ShareUpdateExclusiveLock);

	/* the partitions chatstore makes, seen now that no other can be made; names first: DDL replaces SPI's result */
	args[0] = ObjectIdGetDatum(archive);
	args[1] = ObjectIdGetDatum(nsp);
	if (SPI_execute_with_args("SELECT c.relname::pg_catalog.text FROM pg_catalog.pg_inherits i"
							  " JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid"
							  " WHERE i.inhparent OPERATOR(pg_catalog.=) $1"
							  "   AND c.relnamespace OPERATOR(pg_catalog.=) $2"
							  "   AND c.relname OPERATOR(pg_catalog.~) '^archived_message_[0-9]{6}$'"
							  " ORDER BY 1",
							  2, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "chatstore: listing the archive partitions failed");
	for (uint64 r = 0; r < SPI_processed; r++)
		partitions = lappend(partitions, SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1));

	foreach(lc, partitions)
	{
		char	   *partition = (char *) lfirst(lc);
		char	   *index = psprintf("%s" CHATSTORE_PARTITION_SEARCH_SUFFIX, partition);

		if (enabled == OidIsValid(get_relname_relid(index, nsp)))
			continue;
		if (enabled)
			ChatstoreRunDDL(psprintf(CHATSTORE_PARTITION_SEARCH_INDEX,
									 quote_identifier(index), quote_identifier(partition)));
		else
			ChatstoreRunDDL(psprintf("DROP INDEX chatstore.%s", quote_identifier(index)));
		changed = true;
	}

	/* the live table last */
	live = LiveSearchIndex(&valid);
	if (OidIsValid(live) && (!enabled || !valid))
	{
		ChatstoreRunDDL("DROP INDEX chatstore." CHATSTORE_SEARCH_INDEX);
		changed = true;
	}
	if (enabled && !valid)
	{
		ChatstoreRunDDL(LIVE_SEARCH_INDEX);
		changed = true;
	}
	ChatstoreFinish(&call);
	PG_RETURN_BOOL(changed);
}
