#!/usr/bin/env node
/*
 * tokens-table.js
 *	  Print the rare_cost table of src/tokens.c.
 *
 * For each block of 128 code points below U+30000, the average number of
 * o200k_base tokens (gpt-tokenizer) of one of its code points standing
 * alone, in tenths of a token.  Byte-pair encoding falls back to single
 * bytes for code points it has seen rarely, so the figure is close to the
 * UTF-8 length (3 or 4) for rare scripts and symbols.  Takes about a minute.
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
for (let i = 0; i < values.length; i += 16)
	console.log('\t' + values.slice(i, i + 16).map((v) => String(v).padStart(2)).join(', ') + ',' +
		`\t/* U+${(i * BLOCK).toString(16).toUpperCase().padStart(5, '0')} */`);
