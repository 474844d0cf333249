#!/usr/bin/env node
/*
 * tokens-table.js
 *	  Print the rare_cost table of src/tokens.c.
 *
 * For each block of 128 code points below U+30000, the average number of
 * o200k_base tokens (gpt-tokenizer) of one of its code points standing
 * alone, in tenths of a token.  Byte-pair encoding falls back to single
 * bytes for code points it has seen rarely, so the figure is close to the
 * UTF-8 length (3 or 4) for rare scripts and symbols.
 *
 * Then the rare_bigrams table: for each letter a-z, a bit mask of the
 * letters that seldom follow it inside the vocabulary's words (tokens of
 * letters only, optionally after a space, counted case-insensitively): the
 * pairs seen in fewer than RARE_BIGRAM_COUNT of them.  English text has
 * about one such pair in 800 letters, random letters one in three.
 */
'use strict';

const o200k = require('gpt-tokenizer/encoding/o200k_base');
const BLOCK = 128;
const LIMIT = 0x30000;
const values = [];

for (let b = 0; b < LIMIT; b += BLOCK) {
	let sum = 0;
	let n = 0;

	for (let c = Math.max(b, 0x80); c < b + BLOCK; c++) {
		if (c >= 0xD800 && c <= 0xDFFF)
			continue;
		sum += o200k.countTokens(String.fromCodePoint(c), { disallowedSpecial: new Set() });
		n++;
	}
	values.push(n > 0 ? Math.round(10 * sum / n) : 0);
}
console.log('rare_cost:');
for (let i = 0; i < values.length; i += 16)
	console.log('\t' + values.slice(i, i + 16).map((v) => String(v).padStart(2)).join(', ') + ',' +
		`\t/* U+${(i * BLOCK).toString(16).toUpperCase().padStart(5, '0')} */`);

const RARE_BIGRAM_COUNT = 40;
const pairs = new Array(26 * 26).fill(0);

for (let id = 0; id < 199990; id++) {
	let token;

	try {
		token = o200k.decode([id]);
	} catch (e) {
		continue;				/* ids without a token */
	}
	const m = /^ ?([a-zA-Z][a-z]+)$/.exec(token);

	if (m === null)
		continue;
	const w = m[1].toLowerCase();

	for (let i = 0; i + 1 < w.length; i++)
		pairs[(w.charCodeAt(i) - 97) * 26 + w.charCodeAt(i + 1) - 97]++;
}
console.log('rare_bigrams:');
for (let a = 0; a < 26; a++) {
	let mask = 0;

	for (let b = 0; b < 26; b++)
		if (pairs[a * 26 + b] < RARE_BIGRAM_COUNT)
			mask |= 1 << b;
	console.log(`\t0x${(mask >>> 0).toString(16).toUpperCase().padStart(7, '0')},\t/* ${String.fromCharCode(97 + a)} */`);
}
