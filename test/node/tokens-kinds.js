#!/usr/bin/env node
/*
 * tokens-kinds.js
 *	  chatstore.estimate_tokens() never undercounts badly, on any kind of text.
 *
 * Generates, from a fixed seed, about 2,000 code points of each of many kinds
 * of text that a byte-pair encoding handles badly: combining marks and
 * "Zalgo" text, rare scripts (Linear B, Cherokee, Ethiopic, Tibetan,
 * Mongolian, Egyptian hieroglyphs, ...), mathematical letters, CJK
 * Extension B, private use characters, emoji sequences, box drawing, random
 * mixes of rare code points, and machine text (digits, punctuation, base64,
 * hex, URLs, JSON).  For each it counts the tokens with the o200k_base
 * encoding of the gpt-tokenizer package, asks the database for chatstore's
 * estimate, prints a table and fails (exit 1) when an estimate is below
 * MIN_RATIO times the real count, or above MAX_RATIO times it (except for
 * the UNCHECKED kinds, printed to show the estimator's known limit).
 *
 * Needs no data files.  Connection parameters come from the PG* environment
 * variables.  "node tokens-kinds.js --print" prints the table of real counts
 * without a database.
 */
'use strict';

/* The estimate may not be lower than this share of the real count. */
const MIN_RATIO = 0.85;

/* Nor higher than this multiple (rare text is overestimated, on purpose). */
const MAX_RATIO = 2.5;

/*
 * Kinds only reported, not checked: without the vocabulary the estimator
 * cannot tell random strings of letters of the scripts that o200k covers
 * well from words, and prices them as words.
 */
const UNCHECKED = ['random letters of common scripts', 'random CJK ideographs and Hangul syllables'];

/*
 * The ranges that src/tokens.c (RareCost) takes as common in the
 * vocabulary, [first, end): "rare code points" are drawn outside them.
 */
const COMMON = [[0x80, 0x300], [0x370, 0x800], [0x900, 0xF00], [0x1000, 0x1200], [0x1E00, 0x2070],
	[0x3000, 0x3100], [0x3130, 0x3190], [0x4E00, 0xA000], [0xAC00, 0xD7B0], [0xFE00, 0xFE10], [0xFF00, 0xFFF0]];

/* Code points per generated text. */
const TEXT_LENGTH = 2000;

/* A small deterministic PRNG (mulberry32): the same texts on every run. */
function prng(seed) {
	let a = seed >>> 0;

	return function () {
		a = (a + 0x6D2B79F5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

/* A text of n code points drawn by next(), which returns a string. */
function fill(n, next) {
	const out = [];
	let count = 0;

	while (count < n) {
		const piece = next();
		count += [...piece].length;
		out.push(piece);
	}
	return [...out.join('')].slice(0, n).join('');
}

/*
 * Every generated kind as [{name, text}].  Each kind's seed comes from its
 * name, so that adding a kind does not change the others.
 */
function kinds() {
	const result = [];

	function kind(name, make) {
		let seed = 9;

		for (const ch of name)
			seed = (Math.imul(seed, 31) + ch.codePointAt(0)) >>> 0;
		const rand = prng(seed);
		const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
		const pick = (arr) => arr[Math.floor(rand() * arr.length)];
		const cp = (lo, hi) => String.fromCodePoint(int(lo, hi));

		result.push({ name, text: make({ rand, int, pick, cp }) });
	}

	/* Words of 2 to 8 code points from [lo, hi], separated by spaces. */
	const wordsOf = (ranges) => ({ int, pick, cp }) => fill(TEXT_LENGTH, () => {
		let w = '';
		const n = int(2, 8);

		for (let i = 0; i < n; i++) {
			const r = pick(ranges);
			w += cp(r[0], r[1]);
		}
		return w + ' ';
	});

	const MARKS = [[0x300, 0x36F], [0x1AB0, 0x1ACE], [0x1DC0, 0x1DFF], [0x20D0, 0x20F0], [0xFE20, 0xFE2F]];

	kind('combining marks', ({ pick, cp }) => fill(TEXT_LENGTH, () => {
		const r = pick(MARKS);
		return cp(r[0], r[1]);
	}));
	kind('Zalgo (letters with stacked marks)', ({ int, cp }) => fill(TEXT_LENGTH, () => {
		let s = String.fromCharCode(int(0, 1) ? int(97, 122) : int(65, 90));
		const n = int(3, 15);

		for (let i = 0; i < n; i++)
			s += cp(0x300, 0x36F);
		return int(0, 5) === 0 ? s + ' ' : s;
	}));
	kind('Linear B', wordsOf([[0x10000, 0x1005D], [0x10080, 0x100FA]]));
	kind('Cherokee', wordsOf([[0x13A0, 0x13F5], [0xAB70, 0xABBF]]));
	kind('mathematical alphanumerics', wordsOf([[0x1D400, 0x1D7FF]]));
	kind('CJK Extension B', ({ cp }) => fill(TEXT_LENGTH, () => cp(0x20000, 0x2A6DF)));
	kind('Ethiopic', wordsOf([[0x1200, 0x135A]]));
	kind('private use (BMP, planes 15 and 16)', ({ pick, cp }) => fill(TEXT_LENGTH, () => {
		const r = pick([[0xE000, 0xF8FF], [0xF0000, 0xFFFFD], [0x100000, 0x10FFFD]]);
		return cp(r[0], r[1]);
	}));
	kind('Amharic words', ({ int, pick }) => {
		const words = ['ሰላም', 'አማርኛ', 'ኢትዮጵያ', 'አዲስ', 'አበባ', 'ቤት', 'ውሃ', 'ዳቦ', 'ቡና', 'ትምህርት',
			'መጽሐፍ', 'ልጅ', 'እናት', 'አባት', 'ሰው', 'ቀን', 'ሌሊት', 'ጥሩ', 'ነው', 'እኔ', 'አንተ', 'እሷ', 'እሱ',
			'እኛ', 'ገበያ', 'መንገድ', 'ሀገር', 'ፍቅር', 'ሥራ', 'ጊዜ', 'ዓመት', 'ወር', 'ሳምንት', 'ዛሬ', 'ነገ',
			'ትናንት', 'እንዴት', 'ምን', 'የት', 'መቼ', 'ለምን', 'አመሰግናለሁ', 'እባክህ', 'ቋንቋ', 'ታሪክ', 'ከተማ',
			'ተማሪ', 'መምህር', 'ምግብ', 'እንጀራ', 'ወጥ', 'ውስጥ', 'ጋር', 'ላይ', 'ብዙ', 'ትንሽ', 'ትልቅ', 'አለ',
			'የለም', 'መሄድ', 'መምጣት', 'መብላት', 'መጠጣት', 'ማንበብ', 'መጻፍ', 'ይችላል', 'ነበር', 'ናቸው'];

		return fill(TEXT_LENGTH, () => {
			let s = pick(words);
			const r = int(0, 9);

			if (r === 0)
				s += '።';
			else if (r === 1)
				s += '፣';
			return s + ' ';
		});
	});
	kind('emoji (ZWJ sequences, skin tones, flags)', ({ int, pick, cp }) => {
		const people = ['👨', '👩', '👧', '👦', '🧑', '👶'];
		const tones = ['🏻', '🏼', '🏽', '🏾', '🏿'];

		return fill(TEXT_LENGTH, () => {
			switch (int(0, 4)) {
				case 0:
					return [pick(people), pick(people), pick(people), pick(people)].join('\u200D');
				case 1:
					return cp(0x1F44A, 0x1F450) + pick(tones);
				case 2:
					return cp(0x1F1E6, 0x1F1FF) + cp(0x1F1E6, 0x1F1FF);
				case 3:
					return pick(people) + pick(tones) + '\u200D' + pick(['💻', '🔬', '🚀', '🎨', '⚕️']);
				default:
					return cp(0x1F300, 0x1F5FF) + (int(0, 3) === 0 ? ' ' : '');
			}
		});
	});
	kind('rare symbols glued to letters', ({ int, pick, cp }) => fill(TEXT_LENGTH, () => {
		const r = pick([[0xE000, 0xF8FF], [0x2500, 0x257F], [0x2800, 0x28FF], [0x1F300, 0x1F5FF]]);

		return cp(r[0], r[1]) + String.fromCharCode(int(97, 122)).repeat(int(1, 2));
	}));
	kind('Tibetan', ({ int, cp }) => fill(TEXT_LENGTH, () => {
		let s = cp(0xF40, 0xF6C);

		if (int(0, 1))
			s += cp(0xF90, 0xFBC);
		if (int(0, 1))
			s += cp(0xF71, 0xF7D);
		return s + (int(0, 6) === 0 ? '།' : '་');
	}));
	kind('Mongolian', wordsOf([[0x1820, 0x1878]]));
	kind('Egyptian hieroglyphs', ({ int, cp }) => fill(TEXT_LENGTH, () =>
		cp(0x13000, 0x1342E) + (int(0, 4) === 0 ? ' ' : '')));
	kind('Braille', wordsOf([[0x2800, 0x28FF]]));
	kind('box drawing', ({ int, cp }) => fill(TEXT_LENGTH, () =>
		cp(0x2500, 0x259F) + (int(0, 39) === 0 ? '\n' : '')));
	kind('random rare code points (outside common scripts)', ({ int, rand }) => fill(TEXT_LENGTH, () => {
		let c;

		do
			c = rand() < 0.5 ? int(0x80, 0xFFFF) : int(0x10000, 0x10FFFF);
		while ((c >= 0xD800 && c <= 0xDFFF) || (c & 0xFFFE) === 0xFFFE || COMMON.some((r) => c >= r[0] && c < r[1]));
		return String.fromCodePoint(c);
	}));
	/* Not checked: random strings of letters of the common scripts, see below. */
	kind('random letters of common scripts', wordsOf([[0x400, 0x44F], [0x3B1, 0x3C9], [0x5D0, 0x5EA],
		[0x627, 0x64A], [0x905, 0x939], [0xE01, 0xE2E], [0x10D0, 0x10F0], [0x531, 0x556], [0xAC00, 0xD7A3]]));
	kind('random CJK ideographs and Hangul syllables', ({ int, cp }) => fill(TEXT_LENGTH, () =>
		(int(0, 1) ? cp(0x4E00, 0x9FFF) : cp(0xAC00, 0xD7A3)) + (int(0, 9) === 0 ? ' ' : '')));
	kind('Canadian syllabics, Runic, Ogham, Yi', wordsOf([[0x1401, 0x166C], [0x16A0, 0x16EA], [0x1681, 0x169A],
		[0xA000, 0xA48C]]));
	kind('digits', ({ int }) => fill(TEXT_LENGTH, () => String(int(0, 9))));
	kind('digits and punctuation', ({ int, pick }) => fill(TEXT_LENGTH, () =>
		int(0, 2) ? String(int(0, 9)) : pick([...'.,:;-+/()[]{}#%$&*=<>!?|~^_@"\''])));
	kind('ASCII punctuation', ({ pick }) => fill(TEXT_LENGTH, () => pick([...'!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~'])));
	kind('base64', ({ int }) => {
		const bytes = Buffer.alloc(TEXT_LENGTH);

		for (let i = 0; i < bytes.length; i++)
			bytes[i] = int(0, 255);
		return bytes.toString('base64').slice(0, TEXT_LENGTH);
	});
	kind('hex', ({ int }) => fill(TEXT_LENGTH, () => int(0, 15).toString(16)));
	kind('random ASCII letters', ({ int }) => fill(TEXT_LENGTH, () =>
		String.fromCharCode(int(0, 1) ? int(97, 122) : int(65, 90))));
	kind('URLs', ({ int, pick }) => {
		const alnum = (n) => {
			let s = '';
			for (let i = 0; i < n; i++)
				s += pick([...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789']);
			return s;
		};
		const words = ['docs', 'api', 'v2', 'users', 'search', 'static', 'images', 'blob', 'main', 'src', 'index'];

		return fill(TEXT_LENGTH, () => 'https://' + pick(['www.', 'cdn.', '']) + alnum(int(4, 10)).toLowerCase() +
			pick(['.com', '.org', '.io', '.de']) + '/' + pick(words) + '/' + alnum(int(6, 20)) +
			'?id=' + alnum(int(8, 24)) + '&ref=' + pick(words) + '#' + alnum(int(2, 6)) + '\n');
	});
	kind('JSON (ids, hashes, numbers)', ({ int, pick, rand }) => {
		const hex = (n) => {
			let s = '';
			for (let i = 0; i < n; i++)
				s += int(0, 15).toString(16);
			return s;
		};
		const keys = ['id', 'user_id', 'name', 'score', 'created_at', 'tags', 'checksum', 'lat', 'lon'];

		return fill(TEXT_LENGTH, () => JSON.stringify({
			[pick(keys)]: `${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}`,
			[pick(keys)]: Math.round(rand() * 1e9) / 1e4,
			[pick(keys)]: hex(40),
			[pick(keys)]: [int(0, 99999), int(0, 999), rand() < 0.5],
		}) + ',\n');
	});
	return result;
}

/* Real o200k token count; special-token text counts as plain text. */
let o200k = null;
function realTokens(text) {
	if (o200k === null)
		o200k = require('gpt-tokenizer/encoding/o200k_base');
	return o200k.countTokens(text, { disallowedSpecial: new Set() });
}

/* Run the check; resolves to the exit code. */
async function main() {
	const list = kinds();
	let est = list.map(() => null);

	if (!process.argv.includes('--print')) {
		const { Client } = require('pg');
		const client = new Client();

		await client.connect();
		try {
			const res = await client.query(
				'SELECT chatstore.estimate_tokens(x) AS n ' +
				'FROM unnest($1::text[]) WITH ORDINALITY AS u(x, i) ORDER BY i',
				[list.map((k) => k.text)]);
			est = res.rows.map((r) => r.n);
		} finally {
			await client.end();
		}
	}

	let failed = 0;
	let realTotal = 0;
	let estTotal = 0;

	console.log('tokens-kinds: chatstore.estimate_tokens() against gpt-tokenizer o200k_base, generated texts');
	console.log(`${'kind'.padEnd(50)} ${'code points'.padStart(11)} ${'real'.padStart(7)} ` +
		`${'estimate'.padStart(8)} ${'ratio'.padStart(6)}`);
	for (let i = 0; i < list.length; i++) {
		const k = list[i];
		const real = realTokens(k.text);
		const ratio = est[i] === null ? NaN : est[i] / real;
		let verdict = '';

		realTotal += real;
		estTotal += est[i] || 0;
		if (UNCHECKED.includes(k.name))
			verdict = '  (not checked)';
		else if (ratio < MIN_RATIO) {
			verdict = `  UNDER (limit ${MIN_RATIO})`;
			failed++;
		} else if (ratio > MAX_RATIO) {
			verdict = `  OVER (limit ${MAX_RATIO})`;
			failed++;
		}
		console.log(`${k.name.padEnd(50)} ${String([...k.text].length).padStart(11)} ${String(real).padStart(7)} ` +
			`${String(est[i]).padStart(8)} ${ratio.toFixed(2).padStart(6)}${verdict}`);
	}
	console.log(`${'all kinds'.padEnd(50)} ${''.padStart(11)} ${String(realTotal).padStart(7)} ` +
		`${String(estTotal).padStart(8)} ${(estTotal / realTotal).toFixed(2).padStart(6)}`);

	if (process.argv.includes('--print'))
		return 0;
	if (failed > 0) {
		console.log(`tokens-kinds: FAILED: ${failed} kind(s) outside ${MIN_RATIO}..${MAX_RATIO} times the real count`);
		return 1;
	}
	console.log('tokens-kinds: ok');
	return 0;
}

if (require.main === module) {
	main().then(
		(code) => process.exit(code),
		(err) => {
			console.error('tokens-kinds: error: ' + (err && err.message ? err.message : err));
			process.exit(1);
		});
}

module.exports = { kinds, realTokens };
