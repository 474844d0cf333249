/*
 * tokens.c
 *	  Estimate the number of tokens of a message: chatstore.estimate_tokens().
 *
 * A real tokenizer needs its model's vocabulary of 200,000 byte strings.
 * Instead, this file imitates the first step of OpenAI's o200k_base encoding
 * (GPT-4o and later), the pre-tokenizer that cuts text into pieces before
 * byte-pair encoding, and charges each piece what such pieces cost on
 * average:
 *
 *	- a word, with the one space or punctuation character before it (" word",
 *	  "(word", " don't"; "camelCase" is two words): one token, plus a fraction
 *	  of a token for each letter beyond the first few, by how the word starts
 *	  and its case (word_costs).  Accented Latin letters cost a little more;
 *	  when at least one Latin letter in 50 is accented, the text is taken as
 *	  not English and its long words cost more.  Letters of other scripts
 *	  have a cost each (script_letter_cost), at least a token a word.
 *	- digits: a token for each group of up to three.
 *	- punctuation, with a space before it and line breaks after it: a token
 *	  for up to two different characters ("--", ");"), half a token for each
 *	  further change of character; a non-ASCII symbol costs about a token,
 *	  an emoji about two.
 *	- white space: a token per run, more for very long runs.
 *	- rare code points (everything outside the scripts and blocks that the
 *	  vocabulary covers well: combining marks, symbols, emoji, rare scripts,
 *	  private use, CJK extensions; see RareCost): what the code point costs
 *	  standing alone, from a table of 128-code-point blocks (rare_cost), near
 *	  its UTF-8 length, since byte-pair encoding falls back to bytes for them.
 *	- in Latin words, a pair of letters that seldom follow each other in the
 *	  vocabulary's words (random strings, keys, base64) costs 0.7 more.
 *
 * Costs are added up in thousandths of a token, in 64 bits, and rounded once
 * at the end.  The text is taken as UTF-8; any byte sequence is accepted.
 *
 * Measured with test/node/tokens-compare.js against the o200k_base encoding
 * of the gpt-tokenizer package, over the 14,999 messages of the English chat
 * data in ../shared/data: the estimated total is 0.1% over the real one
 * (558,567 against 557,815 tokens); per message, |estimate - real| / real is
 * 2.3% on average, 0% at the median and 7.1% at the 90th percentile.  Source
 * code and JSON come within 10%; short samples of Western European
 * languages, Russian, Chinese, Japanese and Korean mostly within 15%, and of
 * Polish, Ukrainian or traditional Chinese within 25%.  On generated text of
 * rare kinds (test/node/tokens-kinds.js) the estimate is 0.92 to 1.45 times
 * the real count; random strings of letters of the common scripts are its
 * known blind spot (about a third of the real count).
 */
#include "postgres.h"

#include "fmgr.h"

#include "chatstore.h"

PG_FUNCTION_INFO_V1(chatstore_estimate_tokens);

/* Costs are added up in thousandths of a token. */
#define MILLI	1000

/* What a character is, as far as the o200k pre-tokenizer cares. */
typedef enum CharClass
{
	CC_UPPER,					/* upper or title case letter */
	CC_LOWER,					/* lower case letter */
	CC_LETTER,					/* letter without case, or combining mark */
	CC_DIGIT,					/* decimal digit */
	CC_SPACE,					/* white space other than CR and LF */
	CC_NEWLINE,					/* CR or LF */
	CC_OTHER					/* punctuation, symbol, emoji, control, bad byte */
} CharClass;

/* Writing systems that cost differently per letter. */
typedef enum Script
{
	SC_ASCII,					/* A-Z, a-z */
	SC_LATIN,					/* accented Latin letters of Latin-1 */
	SC_LATIN_EXT,				/* other accented Latin letters */
	SC_CYRILLIC,				/* Cyrillic */
	SC_ALPHABET,				/* Greek, Armenian, Hebrew, Arabic, ... */
	SC_ABUGIDA,					/* Indic and South-East Asian scripts */
	SC_CJK,						/* Han, kana, Hangul */
	SC_MARK,					/* combining marks, variation selectors */
	SC_NONE						/* not a letter */
} Script;

/* One decoded character. */
typedef struct CharInfo
{
	int			len;			/* bytes */
	CharClass	cls;
	Script		script;
	bool		space;			/* the character is U+0020 */
	int			rare;			/* cost of a rare character, or 0 */
} CharInfo;

/*
 * Average o200k tokens of one code point standing alone, in tenths of a
 * token, for each block of 128 code points below U+30000 (printed by
 * test/node/tokens-table.js from the gpt-tokenizer package).  Byte-pair
 * encoding falls back to single bytes for text it has seen rarely, so rare
 * code points cost close to their UTF-8 length: 3 tokens for most of the
 * Basic Multilingual Plane outside the common scripts, 4 above it.
 */
#define RARE_BLOCK_SHIFT	7
#define RARE_LIMIT			0x30000
static const uint8 rare_cost[RARE_LIMIT >> RARE_BLOCK_SHIFT] = {
	 0, 12, 14, 19, 19, 20, 19, 15, 13, 17, 15, 16, 14, 16, 20, 20,	/* U+00000 */
	30, 30, 14, 15, 16, 15, 17, 17, 16, 15, 15, 16, 15, 20, 20, 25,	/* U+00800 */
	15, 17, 30, 30, 20, 20, 20, 30, 30, 30, 30, 30, 30, 30, 30, 15,	/* U+01000 */
	30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 25, 30, 19, 14, 19, 25,	/* U+01800 */
	17, 20, 19, 20, 19, 20, 25, 30, 25, 20, 19, 18, 19, 25, 20, 25,	/* U+02000 */
	30, 30, 30, 30, 30, 30, 25, 30, 30, 30, 30, 30, 30, 30, 30, 29,	/* U+02800 */
	14, 12, 20, 30, 25, 30, 30, 25, 30, 30, 30, 30, 30, 30, 30, 30,	/* U+03000 */
	30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 29,	/* U+03800 */
	30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30,	/* U+04000 */
	30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 16, 16, 17, 18,	/* U+04800 */
	18, 19, 17, 17, 17, 18, 17, 17, 17, 19, 19, 19, 19, 19, 18, 19,	/* U+05000 */
	19, 19, 17, 18, 19, 19, 19, 16, 17, 19, 25, 24, 18, 18, 18, 18,	/* U+05800 */
	19, 19, 19, 20, 17, 17, 19, 18, 19, 19, 18, 18, 18, 19, 17, 18,	/* U+06000 */
	18, 19, 19, 20, 19, 25, 18, 19, 19, 18, 18, 19, 19, 19, 19, 20,	/* U+06800 */
	19, 19, 19, 20, 19, 19, 19, 19, 20, 20, 18, 19, 19, 18, 19, 20,	/* U+07000 */
	19, 19, 19, 19, 19, 19, 19, 19, 20, 19, 18, 19, 20, 17, 19, 19,	/* U+07800 */
	19, 18, 19, 19, 19, 19, 19, 19, 19, 20, 20, 19, 19, 20, 20, 25,	/* U+08000 */
	24, 19, 20, 18, 19, 19, 19, 17, 19, 19, 17, 19, 20, 20, 19, 17,	/* U+08800 */
	17, 19, 20, 19, 20, 20, 20, 20, 20, 19, 19, 19, 18, 18, 19, 24,	/* U+09000 */
	18, 19, 20, 19, 19, 19, 20, 25, 30, 20, 30, 30, 19, 19, 20, 24,	/* U+09800 */
	30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30,	/* U+0A000 */
	30, 30, 30, 30, 30, 30, 30, 30, 19, 19, 19, 24, 19, 25, 25, 29,	/* U+0A800 */
	20, 19, 19, 25, 25, 19, 19, 25, 19, 24, 25, 25, 30, 25, 20, 19,	/* U+0B000 */
	18, 24, 20, 18, 19, 24, 25, 25, 24, 19, 25, 20, 19, 30, 30, 29,	/* U+0B800 */
	25, 19, 19, 19, 19, 19, 25, 30, 30, 29, 18, 19, 19, 19, 19, 24,	/* U+0C000 */
	19, 19, 25, 19, 25, 30, 30, 30, 19, 19, 25, 24, 19, 20, 19, 25,	/* U+0C800 */
	20, 19, 19, 24, 25, 19, 24, 19, 30, 24, 19, 19, 19, 24, 24, 25,	/* U+0D000 */
	 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,	/* U+0D800 */
	25, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 25, 30, 30, 30,	/* U+0E000 */
	30, 30, 25, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 29,	/* U+0E800 */
	20, 20, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30,	/* U+0F000 */
	30, 30, 30, 30, 30, 30, 25, 30, 30, 30, 25, 30, 20, 20, 15, 19,	/* U+0F800 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,	/* U+10000 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 39,	/* U+10800 */
	40, 40, 40, 40, 40, 40, 40, 40, 35, 40, 40, 40, 40, 40, 35, 40,	/* U+11000 */
	40, 40, 40, 40, 40, 35, 40, 40, 40, 40, 40, 40, 35, 40, 40, 39,	/* U+11800 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,	/* U+12000 */
	40, 40, 35, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 39,	/* U+12800 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 35, 40,	/* U+13000 */
	40, 40, 40, 40, 35, 40, 40, 40, 35, 40, 35, 40, 35, 40, 40, 39,	/* U+13800 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,	/* U+14000 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 39,	/* U+14800 */
	40, 40, 35, 40, 40, 40, 35, 40, 40, 40, 40, 40, 40, 40, 40, 40,	/* U+15000 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 39,	/* U+15800 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,	/* U+16000 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 39,	/* U+16800 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,	/* U+17000 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 39,	/* U+17800 */
	40, 40, 40, 40, 40, 40, 40, 40, 30, 40, 40, 40, 40, 40, 40, 40,	/* U+18000 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 39,	/* U+18800 */
	40, 35, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,	/* U+19000 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 39,	/* U+19800 */
	40, 40, 40, 40, 40, 40, 35, 40, 40, 40, 40, 40, 40, 40, 40, 40,	/* U+1A000 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 39,	/* U+1A800 */
	40, 40, 35, 40, 35, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,	/* U+1B000 */
	40, 40, 40, 40, 40, 40, 40, 40, 35, 40, 40, 40, 40, 40, 40, 39,	/* U+1B800 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 35, 40, 40, 40,	/* U+1C000 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 35, 40, 40, 40, 40, 39,	/* U+1C800 */
	30, 30, 30, 30, 30, 30, 30, 30, 25, 30, 30, 25, 30, 30, 30, 30,	/* U+1D000 */
	30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 29,	/* U+1D800 */
	40, 40, 40, 40, 40, 35, 35, 40, 40, 40, 40, 40, 40, 40, 40, 40,	/* U+1E000 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 39,	/* U+1E800 */
	30, 30, 30, 25, 30, 30, 20, 20, 20, 20, 25, 30, 19, 25, 30, 30,	/* U+1F000 */
	30, 30, 20, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 29,	/* U+1F800 */
	35, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,	/* U+20000 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 39,	/* U+20800 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,	/* U+21000 */
	40, 40, 40, 40, 40, 40, 40, 40, 35, 40, 40, 40, 40, 40, 40, 39,	/* U+21800 */
	40, 40, 35, 40, 40, 35, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,	/* U+22000 */
	40, 40, 40, 40, 40, 40, 40, 40, 35, 40, 40, 40, 40, 40, 40, 39,	/* U+22800 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,	/* U+23000 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 35, 35,	/* U+23800 */
	40, 40, 40, 40, 40, 40, 40, 40, 35, 40, 40, 40, 40, 40, 40, 40,	/* U+24000 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 39,	/* U+24800 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,	/* U+25000 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 35,	/* U+25800 */
	40, 35, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,	/* U+26000 */
	40, 40, 40, 40, 40, 40, 35, 40, 40, 40, 40, 40, 40, 40, 40, 39,	/* U+26800 */
	40, 40, 40, 40, 40, 40, 40, 40, 35, 40, 40, 40, 40, 40, 40, 40,	/* U+27000 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 39,	/* U+27800 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,	/* U+28000 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 39,	/* U+28800 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,	/* U+29000 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 39,	/* U+29800 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,	/* U+2A000 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 35, 39,	/* U+2A800 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 35, 40, 40, 40,	/* U+2B000 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 39,	/* U+2B800 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,	/* U+2C000 */
	40, 40, 40, 40, 40, 40, 35, 40, 40, 40, 40, 40, 40, 40, 40, 39,	/* U+2C800 */
	40, 40, 40, 40, 40, 40, 40, 40, 35, 40, 30, 40, 40, 40, 40, 40,	/* U+2D000 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 39,	/* U+2D800 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,	/* U+2E000 */
	40, 40, 35, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 39,	/* U+2E800 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,	/* U+2F000 */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 39,	/* U+2F800 */
};

/* Code points above the table: nearly all cost their 4 bytes. */
#define RARE_HIGH_COST		40

/*
 * For each letter a-z, a bit mask of the letters that seldom follow it in
 * the words of o200k's vocabulary (printed by test/node/tokens-table.js).
 * English text has about one such pair in 800 letters, random letters
 * (keys, hashes, base64) one in three: each costs RARE_BIGRAM_COST more.
 */
static const uint32 rare_bigrams[26] = {
	0x0000000,	/* a */
	0x2E1B46C,	/* b */
	0x0E1B26A,	/* c */
	0x0818420,	/* d */
	0x0000000,	/* e */
	0x2E1B6CE,	/* f */
	0x2A18224,	/* g */
	0x2A186E4,	/* h */
	0x0000000,	/* i */
	0x3EB9AE6,	/* j */
	0x2A1926E,	/* k */
	0x2C30000,	/* l */
	0x2A306CC,	/* m */
	0x0800000,	/* n */
	0x0000000,	/* o */
	0x2E13642,	/* p */
	0x3EFFFFE,	/* q */
	0x0800200,	/* r */
	0x0800200,	/* s */
	0x0810200,	/* t */
	0x0010000,	/* u */
	0x3EDB6EE,	/* v */
	0x2E9966E,	/* w */
	0x3F73EEA,	/* x */
	0x3E106A0,	/* y */
	0x0A79EEE,	/* z */
};

#define RARE_BIGRAM_COST	700

/* The space before a word of rare characters */
#define RARE_SPACE_COST		500


/*
 * Cost of one letter of a script other than Latin, in thousandths of a
 * token; indexed by Script.
 */
static const int script_letter_cost[] = {
	[SC_ASCII] = 0,				/* Latin letters: see word_costs */
	[SC_LATIN] = 0,
	[SC_LATIN_EXT] = 0,
	[SC_CYRILLIC] = 250,
	[SC_ALPHABET] = 350,
	[SC_ABUGIDA] = 350,
	[SC_CJK] = 700,
	[SC_MARK] = 150,
	[SC_NONE] = 0
};

/*
 * Extra cost of an accented Latin letter in a word: more for the letters of
 * Central European languages and Turkish, which have fewer tokens of their
 * own in the vocabulary.
 */
#define LATIN_ACCENT_COST	150
#define LATIN_EXT_ACCENT_COST	600

/*
 * A text with at least one accented letter in LATIN_FOREIGN_RATIO Latin
 * letters is taken to be in a language other than English: its long words
 * are split into more tokens.
 */
#define LATIN_FOREIGN_RATIO	50
#define LATIN_FOREIGN_FREE	5
#define LATIN_FOREIGN_PER	200

/* Symbols outside ASCII: 4-byte UTF-8 ones are mostly emoji */
#define SYMBOL_COST			800
#define SYMBOL4_COST		1800

/*
 * ASCII punctuation: one token covers PUNCT_FREE runs of one character
 * ("---" is one run, ");" two), each further run costs PUNCT_PER, and more
 * in long jumbles of punctuation, which the vocabulary has few tokens for.
 */
#define PUNCT_FREE			2
#define PUNCT_PER			500
#define PUNCT_PER_TOKEN		64	/* even a run of one character, like "----" */
#define PUNCT_LONG			6	/* runs after this many cost PUNCT_LONG_PER */
#define PUNCT_LONG_PER		750

/* Spaces, tabs or line breaks per token in a long run */
#define SPACE_PER_TOKEN		16

/*
 * Cost of a Latin word: one token for the first "free" letters and "per"
 * thousandths of a token for each letter after that.
 */
typedef struct WordCost
{
	int			free;
	int			per;
} WordCost;

/* How the word starts: after a space, bare, or after punctuation */
#define WP_SPACE	0
#define WP_NONE		1
#define WP_OTHER	2

/* Case of the letters of a word */
#define WC_LOWER	0			/* "word" */
#define WC_CAPITAL	1			/* "Word", "I" */
#define WC_UPPER	2			/* "WORD", "HTMLParser" */

static const WordCost word_costs[3][3] = {
	/* WC_LOWER, WC_CAPITAL, WC_UPPER */
	{{6, 40}, {4, 80}, {2, 250}},	/* WP_SPACE */
	{{3, 150}, {4, 120}, {2, 400}}, /* WP_NONE */
	{{4, 200}, {0, 200}, {0, 200}}	/* WP_OTHER */
};

/*
 * Cost in thousandths of a token of the code point c (not ASCII) if it is
 * rare in o200k's vocabulary, or 0 if it is of a script or block whose text
 * the vocabulary covers well (Latin, Greek, Cyrillic, Armenian, Hebrew,
 * Arabic, the Indic scripts, Thai, Lao, Myanmar, Georgian, Hangul, kana, CJK
 * ideographs of the basic block, general punctuation, fullwidth forms,
 * variation selectors): those are priced by the script model, since their
 * characters merge into longer tokens.  Everything else, combining marks,
 * symbols, emoji, rare scripts, private use, CJK extensions and unassigned
 * code points, costs about what the code point costs standing alone.
 */
static int
RareCost(uint32 c)
{
	if (c < 0x300 ||			/* Latin-1, Latin Extended, IPA */
		(c >= 0x370 && c < 0x800) ||	/* Greek to Thaana and NKo */
		(c >= 0x900 && c < 0xF00) ||	/* Indic, Sinhala, Thai, Lao */
		(c >= 0x1000 && c < 0x1200) ||	/* Myanmar, Georgian, Hangul jamo */
		(c >= 0x1E00 && c < 0x2070) ||	/* Latin and Greek extended, punctuation */
		(c >= 0x3000 && c < 0x3100) ||	/* CJK punctuation, kana */
		(c >= 0x3130 && c < 0x3190) ||	/* Hangul compatibility jamo */
		(c >= 0x4E00 && c < 0xA000) ||	/* CJK unified ideographs */
		(c >= 0xAC00 && c < 0xD7B0) ||	/* Hangul syllables */
		(c >= 0xFE00 && c < 0xFE10) ||	/* variation selectors */
		(c >= 0xFF00 && c < 0xFFF0))	/* halfwidth and fullwidth forms */
		return 0;
	if (c < RARE_LIMIT)
		return rare_cost[c >> RARE_BLOCK_SHIFT] * (MILLI / 10);
	return RARE_HIGH_COST * (MILLI / 10);
}

/*
 * Classify the code point c.  Ranges are coarse on purpose: what matters is
 * letters versus the rest, and roughly which writing system a letter is from.
 */
static void
ClassifyCodePoint(uint32 c, CharInfo *ci)
{
	ci->cls = CC_LETTER;
	ci->script = SC_ALPHABET;

	if (c < 0x80)
	{
		if (c >= 'a' && c <= 'z')
			ci->cls = CC_LOWER;
		else if (c >= 'A' && c <= 'Z')
			ci->cls = CC_UPPER;
		else if (c >= '0' && c <= '9')
			ci->cls = CC_DIGIT;
		else if (c == '\n' || c == '\r')
			ci->cls = CC_NEWLINE;
		else if (c == ' ' || c == '\t' || c == '\v' || c == '\f')
			ci->cls = CC_SPACE;
		else
			ci->cls = CC_OTHER;
		ci->script = (ci->cls == CC_LOWER || ci->cls == CC_UPPER) ? SC_ASCII : SC_NONE;
		return;
	}

	/* Latin-1 Supplement, Latin Extended-A and -B */
	if (c < 0x250)
	{
		ci->script = SC_LATIN;
		if (c == 0xA0)
			ci->cls = CC_SPACE;
		else if (c == 0xAA || c == 0xB5 || c == 0xBA)
			ci->cls = CC_LOWER;
		else if (c < 0xC0 || c == 0xD7 || c == 0xF7)
			ci->cls = CC_OTHER;
		else if (c < 0xDF)
			ci->cls = CC_UPPER;
		else if (c < 0x100)
			ci->cls = CC_LOWER;
		else if (c < 0x180)
		{
			/* mostly pairs: upper case at even code points, lower at odd */
			bool		odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);

			ci->script = SC_LATIN_EXT;
			ci->cls = ((c & 1) == (odd_upper ? 1 : 0) || c == 0x178) ? CC_UPPER : CC_LOWER;
		}
		else
		{
			ci->script = SC_LATIN_EXT;
			ci->cls = CC_LOWER;
		}
		if (ci->cls == CC_OTHER)
			ci->script = SC_NONE;
		return;
	}

	if (c < 0x300)				/* IPA extensions, modifier letters */
		ci->script = SC_LATIN;
	else if (c < 0x370)			/* combining diacritical marks */
		ci->script = SC_MARK;
	else if (c < 0x400)			/* Greek */
	{
		if (c == 0x37E || c == 0x387)
			ci->cls = CC_OTHER;
		else if ((c >= 0x391 && c <= 0x3AB) || c == 0x386 || (c >= 0x388 && c <= 0x38F))
			ci->cls = CC_UPPER;
		else
			ci->cls = CC_LOWER;
	}
	else if (c < 0x530)			/* Cyrillic */
	{
		ci->script = SC_CYRILLIC;
		if (c < 0x430)
			ci->cls = CC_UPPER;
		else if (c < 0x460)
			ci->cls = CC_LOWER;
		else
			ci->cls = (c & 1) ? CC_LOWER : CC_UPPER;
	}
	else if (c < 0x900)			/* Armenian, Hebrew, Arabic, Syriac, ... */
	{
		if (c == 0x5BE || c == 0x5C3 || c == 0x60C || c == 0x61B ||
			c == 0x61F || c == 0x66A || c == 0x6D4)
			ci->cls = CC_OTHER;
		else if ((c >= 0x660 && c <= 0x669) || (c >= 0x6F0 && c <= 0x6F9))
			ci->cls = CC_DIGIT;
	}
	else if (c < 0x1100)		/* Indic, Thai, Lao, Tibetan, Myanmar, Georgian */
	{
		ci->script = SC_ABUGIDA;
		if (c == 0x964 || c == 0x965)
			ci->cls = CC_OTHER;
		else if (c >= 0x10A0)
			ci->script = SC_ALPHABET;	/* Georgian */
	}
	else if (c < 0x1200)		/* Hangul jamo */
		ci->script = SC_CJK;
	else if (c < 0x1E00)		/* Ethiopic, Cherokee, Khmer, Mongolian, ... */
		ci->script = (c >= 0x1780 && c < 0x1800) ? SC_ABUGIDA : SC_ALPHABET;
	else if (c < 0x1F00)		/* Latin Extended Additional */
	{
		ci->script = SC_LATIN;
		ci->cls = (c & 1) ? CC_LOWER : CC_UPPER;
	}
	else if (c < 0x2000)		/* Greek Extended */
		ci->cls = CC_LOWER;
	else if (c < 0x2C00)		/* punctuation, symbols, arrows, dingbats */
	{
		ci->script = SC_NONE;
		if (c <= 0x200A || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F)
			ci->cls = CC_SPACE;
		else
			ci->cls = CC_OTHER;
	}
	else if (c < 0x2E00)		/* Glagolitic, Coptic, Tifinagh, ... */
		;
	else if (c < 0x3040)		/* CJK punctuation and symbols */
	{
		ci->script = SC_CJK;
		if (c == 0x3000)
			ci->cls = CC_SPACE;
		else if (c < 0x3005 || c > 0x3007)
			ci->cls = CC_OTHER;
		if (ci->cls != CC_LETTER)
			ci->script = SC_NONE;
	}
	else if (c < 0x3200)		/* kana, bopomofo, Hangul compatibility jamo */
	{
		ci->script = SC_CJK;
		if (c == 0x30FB)
		{
			ci->cls = CC_OTHER;
			ci->script = SC_NONE;
		}
	}
	else if (c < 0x3400)		/* enclosed CJK letters, CJK compatibility */
	{
		ci->cls = CC_OTHER;
		ci->script = SC_NONE;
	}
	else if (c < 0xA000)		/* CJK ideographs */
	{
		ci->script = SC_CJK;
		if (c >= 0x4DC0 && c < 0x4E00)
		{
			ci->cls = CC_OTHER;
			ci->script = SC_NONE;
		}
	}
	else if (c < 0xAC00)		/* Yi, Vai, and other scripts */
		;
	else if (c < 0xD800)		/* Hangul syllables */
		ci->script = SC_CJK;
	else if (c < 0xF900)		/* surrogates, private use */
	{
		ci->cls = CC_OTHER;
		ci->script = SC_NONE;
	}
	else if (c < 0xFB00)		/* CJK compatibility ideographs */
		ci->script = SC_CJK;
	else if (c < 0xFE00)		/* presentation forms */
		;
	else if (c < 0xFE10)		/* variation selectors */
		ci->script = SC_MARK;
	else if (c < 0xFE70)		/* vertical and small forms */
	{
		ci->cls = CC_OTHER;
		ci->script = SC_NONE;
	}
	else if (c < 0xFF00)		/* Arabic presentation forms, BOM */
	{
		if (c == 0xFEFF)
		{
			ci->cls = CC_SPACE;
			ci->script = SC_NONE;
		}
	}
	else if (c < 0xFFF0)		/* halfwidth and fullwidth forms */
	{
		ci->script = SC_NONE;
		if (c >= 0xFF10 && c <= 0xFF19)
			ci->cls = CC_DIGIT;
		else if (c >= 0xFF21 && c <= 0xFF3A)
			ci->cls = CC_UPPER;
		else if (c >= 0xFF41 && c <= 0xFF5A)
			ci->cls = CC_LOWER;
		else if (c >= 0xFF66 && c <= 0xFFDC)
			ci->script = SC_CJK;
		else
			ci->cls = CC_OTHER;
		if (ci->cls == CC_UPPER || ci->cls == CC_LOWER)
			ci->script = SC_ALPHABET;
	}
	else if (c < 0x10000)		/* specials */
	{
		ci->cls = CC_OTHER;
		ci->script = SC_NONE;
	}
	else if (c < 0x1F000)		/* historic scripts, math letters */
		;
	else if (c < 0x20000)		/* emoji and other symbols */
	{
		ci->cls = CC_OTHER;
		ci->script = SC_NONE;
	}
	else if (c < 0x40000)		/* CJK ideographs, extensions B and later */
		ci->script = SC_CJK;
	else if (c >= 0xE0100 && c < 0xE01F0)	/* variation selectors supplement */
		ci->script = SC_MARK;
	else
	{
		ci->cls = CC_OTHER;
		ci->script = SC_NONE;
	}
}

/*
 * Decode the character at s (at most len > 0 bytes) into *ci.  A byte that
 * does not start a complete UTF-8 sequence is taken alone as CC_OTHER, so any
 * input is consumed one or more bytes at a time.
 */
static void
ReadChar(const unsigned char *s, int len, CharInfo *ci)
{
	unsigned char b = s[0];
	int			n;
	uint32		c;

	ci->space = (b == ' ');
	ci->rare = 0;
	if (b < 0x80)
	{
		ci->len = 1;
		ClassifyCodePoint(b, ci);
		return;
	}

	if (b >= 0xC2 && b <= 0xDF)
	{
		n = 2;
		c = b & 0x1F;
	}
	else if (b >= 0xE0 && b <= 0xEF)
	{
		n = 3;
		c = b & 0x0F;
	}
	else if (b >= 0xF0 && b <= 0xF4)
	{
		n = 4;
		c = b & 0x07;
	}
	else
		n = 0;

	if (n == 0 || n > len)
	{
		ci->len = 1;
		ci->cls = CC_OTHER;
		ci->script = SC_NONE;
		return;
	}
	for (int i = 1; i < n; i++)
	{
		if ((s[i] & 0xC0) != 0x80)
		{
			ci->len = 1;
			ci->cls = CC_OTHER;
			ci->script = SC_NONE;
			return;
		}
		c = (c << 6) | (s[i] & 0x3F);
	}
	ci->len = n;
	ClassifyCodePoint(c, ci);
	ci->rare = RareCost(c);
}

/* Is the class that of a letter (or combining mark)? */
static inline bool
IsLetter(CharClass cls)
{
	return cls == CC_UPPER || cls == CC_LOWER || cls == CC_LETTER;
}

/*
 * Length of an English contraction ('s 't 'm 'd 're 've 'll, any case) at
 * s, or 0.  The pre-tokenizer keeps these with the word before them.
 */
static int
ContractionLength(const unsigned char *s, int len)
{
	unsigned char c1;
	unsigned char c2;

	if (len < 2 || s[0] != '\'')
		return 0;
	c1 = s[1] | 0x20;
	if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd')
		return 2;
	if (len < 3)
		return 0;
	c2 = s[2] | 0x20;
	if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
		return 3;
	return 0;
}

/*
 * Running totals of one estimate, in thousandths of a token.  The cost of
 * long Latin words is kept twice, as if the text were English and as if it
 * were another language, until the share of accented letters decides.
 */
typedef struct Tally
{
	int64		cost;			/* everything but the two below */
	int64		long_english;	/* long Latin words, extra cost if English */
	int64		long_foreign;	/* the same for other languages */
	int64		latin;			/* Latin letters */
	int64		accented;		/* accented Latin letters */
} Tally;

/*
 * Scan a word starting at pos and add its cost to the tally.  "prefix" says
 * what comes just before it in the same pre-token (WP_*); prefix_ascii is
 * false when that is a non-ASCII character such as a curly quote.  A word
 * ends where letters stop, or where an upper case letter follows a lower
 * case one ("camelCase" is two words).  Returns the position after the word.
 */
static int
ScanWord(const unsigned char *s, int len, int pos, int prefix, bool prefix_ascii,
		 Tally *tally)
{
	int			nletters = 0;
	int			nlatin = 0;
	int			naccents = 0;
	int			nupper = 0;
	bool		first_upper = false;
	bool		seen_lower = false;
	int64		other = 0;
	int64		accent_cost = 0;
	int			nrare_pairs = 0;
	int			nrare = 0;		/* rare characters */
	int			prev_ascii = -1;	/* the letter before, 0-25, or -1 */
	int			shape;
	const WordCost *wc;
	CharInfo	ci;

	while (pos < len)
	{
		ReadChar(s + pos, len - pos, &ci);
		if (!IsLetter(ci.cls))
			break;
		if (ci.cls == CC_UPPER)
		{
			if (seen_lower)
				break;
			nupper++;
			if (nletters == 0)
				first_upper = true;
		}
		else
			seen_lower = true;
		nletters++;
		if (ci.script == SC_ASCII)
		{
			int			cur = (s[pos] | 0x20) - 'a';

			if (prev_ascii >= 0 && (rare_bigrams[prev_ascii] & (UINT32_C(1) << cur)))
				nrare_pairs++;
			prev_ascii = cur;
			nlatin++;
			pos += ci.len;
			continue;
		}
		prev_ascii = -1;
		if (ci.script == SC_LATIN || ci.script == SC_LATIN_EXT)
		{
			nlatin++;
			naccents++;
			accent_cost += (ci.script == SC_LATIN) ? LATIN_ACCENT_COST : LATIN_EXT_ACCENT_COST;
		}
		else if (ci.rare > 0)
		{
			other += ci.rare;
			nrare++;
		}
		else
			other += script_letter_cost[ci.script];
		pos += ci.len;
	}
	pos += ContractionLength(s + pos, len - pos);

	/* A non-ASCII symbol before a longer word is mostly a token of its own. */
	if (prefix == WP_OTHER && !prefix_ascii && nletters > 2)
	{
		tally->cost += MILLI;
		prefix = WP_NONE;
	}

	/*
	 * Other scripts: a token for every few letters.  Before a word of rare
	 * letters, the vocabulary seldom has the space joined to its first byte.
	 */
	if (nlatin == 0)
	{
		tally->cost += Max(MILLI, other);
		if (nrare > 0 && prefix == WP_SPACE)
			tally->cost += RARE_SPACE_COST;
		return pos;
	}

	if (nupper == 0)
		shape = WC_LOWER;
	else if (first_upper && nupper == 1)
		shape = WC_CAPITAL;
	else
		shape = WC_UPPER;
	wc = &word_costs[prefix][shape];

	tally->cost += MILLI + accent_cost + other + (int64) nrare_pairs * RARE_BIGRAM_COST;
	tally->long_english += (int64) Max(0, nlatin - wc->free) * wc->per;
	tally->long_foreign += (int64) Max(0, nlatin - LATIN_FOREIGN_FREE) * LATIN_FOREIGN_PER;
	tally->latin += nlatin;
	tally->accented += naccents;
	return pos;
}

/*
 * Scan a run of punctuation and symbols starting at pos, with the line
 * breaks right after it, and add its cost to the tally.  Returns the position
 * after the run.
 */
static int
ScanPunct(const unsigned char *s, int len, int pos, Tally *tally)
{
	int			nascii = 0;
	int			nruns = 0;		/* runs of one repeated ASCII character */
	unsigned char prev = 0;
	int			nnewlines = 0;
	int64		cost = 0;
	CharInfo	ci;

	while (pos < len)
	{
		ReadChar(s + pos, len - pos, &ci);
		if (ci.cls != CC_OTHER)
			break;
		if (s[pos] >= 0x80)		/* a symbol, or a bad byte (as U+FFFD) */
			cost += Max(ci.rare, (ci.len == 4) ? SYMBOL4_COST : SYMBOL_COST);
		else
		{
			if (s[pos] != prev)
				nruns++;
			nascii++;
		}
		prev = s[pos];
		pos += ci.len;
	}
	while (pos < len && (s[pos] == '\n' || s[pos] == '\r'))
	{
		nnewlines++;
		pos++;
	}

	if (nruns > 0)
		cost += MILLI + (int64) Max(0, Min(nruns, PUNCT_LONG) - PUNCT_FREE) * PUNCT_PER +
			(int64) Max(0, nruns - PUNCT_LONG) * PUNCT_LONG_PER +
			(int64) (nascii / PUNCT_PER_TOKEN) * MILLI;
	tally->cost += Max(MILLI, cost) + (int64) (nnewlines / SPACE_PER_TOKEN) * MILLI;
	return pos;
}

/*
 * Cost of a pre-token of n white space characters: long runs of spaces or
 * line breaks are split into several tokens.
 */
static inline int64
SpaceCost(int n)
{
	return MILLI + (int64) ((n - 1) / SPACE_PER_TOKEN) * MILLI;
}

/*
 * Scan a run of white space starting at pos, split it the way the
 * pre-tokenizer does and add its cost to the tally.  Returns the position
 * where the next pre-token starts.  A run ending in a line break is one
 * pre-token; otherwise its last character goes with a word that follows, or
 * with the punctuation that follows if it is a plain space.
 */
static int
ScanSpace(const unsigned char *s, int len, int pos, Tally *tally)
{
	int			end = pos;
	int			n = 0;
	int			nl_end = -1;	/* position after the last CR or LF */
	int			n_at_nl = 0;	/* characters up to there */
	bool		last_space = false;
	CharInfo	ci;

	while (end < len)
	{
		ReadChar(s + end, len - end, &ci);
		if (ci.cls != CC_SPACE && ci.cls != CC_NEWLINE)
			break;
		last_space = ci.space;
		end += ci.len;
		n++;
		if (ci.cls == CC_NEWLINE)
		{
			nl_end = end;
			n_at_nl = n;
		}
	}

	if (nl_end >= 0)
	{
		tally->cost += SpaceCost(n_at_nl);
		return nl_end;
	}
	if (end >= len)
	{
		tally->cost += SpaceCost(n);
		return end;
	}

	/* The run is followed by something else; what is it? */
	ReadChar(s + end, len - end, &ci);
	if (n > 1)
		tally->cost += SpaceCost(n - 1);
	if (IsLetter(ci.cls))
		return ScanWord(s, len, end, last_space ? WP_SPACE : WP_OTHER, true, tally);
	if (ci.cls == CC_OTHER && last_space)
		return ScanPunct(s, len, end, tally);
	tally->cost += MILLI;		/* the last character stands alone */
	return end;
}

/*
 * Estimate the number of o200k tokens of len bytes of UTF-8 text.
 *
 * See the comment at the top of the file for how.  Any byte sequence is
 * accepted; the work is one pass over the text with a character of
 * lookahead, without allocating memory.
 */
int32
EstimateTokens(const char *text, int len)
{
	const unsigned char *s = (const unsigned char *) text;
	int			pos = 0;
	Tally		tally = {0};
	int64		total;
	CharInfo	ci;
	CharInfo	next;

	while (pos < len)
	{
		ReadChar(s + pos, len - pos, &ci);
		switch (ci.cls)
		{
			case CC_UPPER:
			case CC_LOWER:
			case CC_LETTER:
				pos = ScanWord(s, len, pos, WP_NONE, true, &tally);
				break;
			case CC_DIGIT:
				/* a token for each group of up to three digits */
				pos += ci.len;
				tally.cost += MILLI;
				for (int ndigits = 1; pos < len; ndigits++)
				{
					ReadChar(s + pos, len - pos, &ci);
					if (ci.cls != CC_DIGIT)
						break;
					pos += ci.len;
					if (ndigits % 3 == 0)
						tally.cost += MILLI;
				}
				break;
			case CC_SPACE:
			case CC_NEWLINE:
				pos = ScanSpace(s, len, pos, &tally);
				break;
			case CC_OTHER:

				/*
				 * One symbol right before letters goes with them, unless it is
				 * rare: then it costs its bytes on its own.
				 */
				if (pos + ci.len < len && ci.rare == 0)
				{
					ReadChar(s + pos + ci.len, len - pos - ci.len, &next);
					if (IsLetter(next.cls))
					{
						pos = ScanWord(s, len, pos + ci.len, WP_OTHER,
									   ci.len == 1, &tally);
						break;
					}
				}
				pos = ScanPunct(s, len, pos, &tally);
				break;
		}
	}

	total = tally.cost;
	if (tally.accented > 0 && tally.accented * LATIN_FOREIGN_RATIO >= tally.latin)
		total += tally.long_foreign;
	else
		total += tally.long_english;
	total = (total + MILLI / 2) / MILLI;
	return (int32) Min(total, (int64) PG_INT32_MAX);
}

/*
 * chatstore.estimate_tokens(content text) RETURNS integer
 *
 * An estimate of the number of tokens of a message, for callers that have no
 * count from the model.
 */
Datum
chatstore_estimate_tokens(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);

	PG_RETURN_INT32(EstimateTokens(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)));
}
