/*
 * limits.c
 *	  Limits on what chatstore stores: the limit settings, the length checks
 *	  that append and the conversation functions share, and the rule for
 *	  blank content.
 *
 * Every text argument that is stored has a limit.  Identifiers (user id,
 * idempotency key, model name) are keys compared byte for byte and are
 * limited in bytes, to CHATSTORE_MAX_ID_BYTES.  Prose (message content,
 * conversation title) is limited in code points, as char_length() counts
 * them, by settings, since what is reasonable differs between applications.
 * Metadata is limited by its stored size.  Every "too long" raises
 * SQLSTATE 22001 with the length, the limit and, where there is one, the
 * setting that changes it.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "chatstore.h"

int			chatstore_max_message_chars = 100000;
int			chatstore_max_user_message_chars = 32000;
int			chatstore_max_metadata_bytes = 65536;
int			chatstore_max_title_chars = 1000;

/*
 * Define the limit settings.  They are policy, so only a superuser (or a
 * role granted SET on them) may change them.
 */
void
LimitsInit(void)
{
	DefineCustomIntVariable("chatstore.max_message_chars",
							"Longest message content, in code points, that append accepts for any role.",
							NULL,
							&chatstore_max_message_chars,
							100000, 1, MaxAllocSize / 4,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("chatstore.max_user_message_chars",
							"Longest content, in code points, that append accepts for a message with role user.",
							NULL,
							&chatstore_max_user_message_chars,
							32000, 1, MaxAllocSize / 4,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("chatstore.max_metadata_bytes",
							"Largest metadata object, in bytes of its stored jsonb form, that chatstore accepts.",
							NULL,
							&chatstore_max_metadata_bytes,
							65536, 16, MaxAllocSize / 4,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("chatstore.max_title_chars",
							"Longest conversation title, in code points, that create_conversation and update_conversation accept.",
							NULL,
							&chatstore_max_title_chars,
							1000, 1, MaxAllocSize / 4,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
}

/*
 * Raise 22001 when an identifier (user_id, idempotency_key, model) is longer
 * than CHATSTORE_MAX_ID_BYTES bytes.  "what" names the argument.
 */
void
ChatstoreCheckIdentifier(text *value, const char *what)
{
	int			len = VARSIZE_ANY_EXHDR(value);

	if (len > CHATSTORE_MAX_ID_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("%s is too long", what),
				 errdetail("It has %d bytes; the limit is %d bytes.", len, CHATSTORE_MAX_ID_BYTES)));
}

/*
 * Raise 22001 when a prose argument (a title) has more than limit code
 * points; "setting" names the setting that holds the limit.  The code
 * points are only counted when the byte length could exceed the limit,
 * since a code point takes at least one byte.
 */
void
ChatstoreCheckCodePoints(text *value, const char *what, int limit, const char *setting)
{
	const char *s = VARDATA_ANY(value);
	int			len = VARSIZE_ANY_EXHDR(value);
	int			count;

	if (len <= limit)
		return;
	count = pg_mbstrlen_with_len(s, len);
	if (count > limit)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("%s is too long", what),
				 errdetail("It has %d code points; the limit is %d (%s).", count, limit, setting),
				 errhint("Shorten it, or raise %s.", setting)));
}

/*
 * Raise 22023 unless a metadata value is a JSON object, and 22001 when it is
 * larger than chatstore.max_metadata_bytes.  "what" names the argument.
 */
void
ChatstoreCheckMetadata(Jsonb *metadata, const char *what)
{
	Size		size = VARSIZE(metadata);

	if (!JB_ROOT_IS_OBJECT(metadata) || JB_ROOT_IS_SCALAR(metadata))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a JSON object", what),
				 errdetail("Pass an object such as '{\"source\": \"web\"}', or NULL.")));
	if (size > (Size) chatstore_max_metadata_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("%s is too large", what),
				 errdetail("It takes %zu bytes; chatstore.max_metadata_bytes is %d.",
						   size, chatstore_max_metadata_bytes),
				 errhint("Store less in it, or raise chatstore.max_metadata_bytes.")));
}

/*
 * Does the code point have the Unicode White_Space property (PropList.txt,
 * unchanged since Unicode 6.3)?  Nothing else is white space: not U+200B
 * ZERO WIDTH SPACE, the joiners, the soft hyphen or the variation selectors.
 */
static bool
IsWhiteSpace(pg_wchar c)
{
	return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 ||
		c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
		c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* The White_Space code points outside ASCII. */
static const pg_wchar NonAsciiWhiteSpace[] = {
	0x85, 0xA0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006,
	0x2007, 0x2008, 0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000
};

/*
 * In a database whose encoding is not UTF-8: the encoded form of each of
 * NonAsciiWhiteSpace that the encoding can represent (a LATIN1 database has
 * U+0085 and U+00A0, an EUC_JP one U+3000, SQL_ASCII none).  A backend
 * stays in one database, so the table is built once.
 */
static struct
{
	int			len;
	unsigned char bytes[16];
}			ServerWhiteSpace[lengthof(NonAsciiWhiteSpace)];
static int	NumServerWhiteSpace = -1;

/* Fill ServerWhiteSpace by converting each code point from UTF-8. */
static void
BuildServerWhiteSpace(void)
{
	int			encoding = GetDatabaseEncoding();
	Oid			proc = FindDefaultConversionProc(PG_UTF8, encoding);
	int			n = 0;

	for (int i = 0; OidIsValid(proc) && i < (int) lengthof(NonAsciiWhiteSpace); i++)
	{
		unsigned char utf8[8] = {0};
		int			len;

		unicode_to_utf8(NonAsciiWhiteSpace[i], utf8);
		len = pg_utf_mblen(utf8);
		/* noError: a code point the encoding lacks converts nothing */
		if (pg_do_encoding_conversion_buf(proc, PG_UTF8, encoding, utf8, len,
										  ServerWhiteSpace[n].bytes,
										  sizeof(ServerWhiteSpace[n].bytes), true) == len)
		{
			ServerWhiteSpace[n].len = strlen((char *) ServerWhiteSpace[n].bytes);
			n++;
		}
	}
	NumServerWhiteSpace = n;
}

/* Is the character at s, of len bytes in the database encoding, white space? */
static bool
IsServerWhiteSpace(const char *s, int len)
{
	if (NumServerWhiteSpace < 0)
		BuildServerWhiteSpace();
	for (int i = 0; i < NumServerWhiteSpace; i++)
		if (ServerWhiteSpace[i].len == len && memcmp(ServerWhiteSpace[i].bytes, s, len) == 0)
			return true;
	return false;
}

/*
 * Is the content blank: empty, or made only of code points with the Unicode
 * White_Space property?  Anything else, visible or not, makes it content.
 * Returns at the first code point that is not white space, which is nearly
 * always the first one.  The text is valid in the database encoding
 * (PostgreSQL checked it on input).
 */
bool
ChatstoreIsBlank(const char *s, int len)
{
	bool		utf8 = GetDatabaseEncoding() == PG_UTF8;
	int			i = 0;

	while (i < len)
	{
		unsigned char b = (unsigned char) s[i];
		int			l;

		if (b < 0x80)
		{
			if (!IsWhiteSpace(b))
				return false;
			i++;
			continue;
		}
		l = utf8 ? pg_utf_mblen((const unsigned char *) s + i) : pg_mblen(s + i);
		if (i + l > len)
			return false;
		if (utf8 ? !IsWhiteSpace(utf8_to_unicode((const unsigned char *) s + i))
			: !IsServerWhiteSpace(s + i, l))
			return false;
		i += l;
	}
	return true;
}
