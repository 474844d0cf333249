#!/usr/bin/env node
/*
 * tokens-compare.js
 *	  Compare chatstore.estimate_tokens() with a real tokenizer.
 *
 * Reads every message of the chat data in ../shared/data (see its
 * README.md), counts its tokens with the o200k_base encoding of the
 * gpt-tokenizer package, asks the database for chatstore's estimate and
 * prints how far apart they are: totals, and the per-message error
 * |estimate - real| / real as mean (MAPE), median and 90th percentile.
 * A few hand-written cases (code, Chinese, Russian, emoji, a very long
 * message) are printed one by one as a sanity check.
 *
 * Connection parameters come from the PG* environment variables.  Exits 1
 * when the estimated total is more than 15% away from the real total, 77
 * (skipped) when the data is absent; CHATSTORE_DATA_DIR names another
 * directory holding the two files.
 */
'use strict';

const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

/* ../shared/data next to the project, or CHATSTORE_DATA_DIR */
const DATA_DIR = process.env.CHATSTORE_DATA_DIR ||
	path.resolve(__dirname, '../../../shared/data');
const OASST_FILE = 'oasst_en_100_trees.jsonl';
const HH_FILE = 'hh_rlhf_harmless_base_test.jsonl.gz';
const BATCH_SIZE = 1000;
const MAX_TOTAL_ERROR = 0.15;

/*
 * Real o200k token count; text such as <|endoftext|> counts as plain text.
 * The package is loaded on first use, so that a run without the data does
 * not need it.
 */
let o200k = null;
function realTokens(text) {
	if (o200k === null)
		o200k = require('gpt-tokenizer/encoding/o200k_base');
	return o200k.countTokens(text, { disallowedSpecial: new Set() });
}

/* Every message text of one OpenAssistant tree, depth first. */
function oasstMessages(node, out) {
	out.push(node.text);
	for (const reply of node.replies || [])
		oasstMessages(reply, out);
	return out;
}

/* The turns of an hh-rlhf transcript "\n\nHuman: ...\n\nAssistant: ...". */
function hhTurns(transcript) {
	const parts = transcript.split(/\n\n(?:Human|Assistant): /);
	if (parts.length > 1 && parts[0] === '')
		parts.shift();			/* nothing before the first marker */
	return parts;
}

/*
 * All messages of both files as [{file, text}].  hh-rlhf: every turn of
 * "chosen", plus the last turn of "rejected" when it differs from the last
 * turn of "chosen".
 */
function loadMessages(dataDir) {
	const messages = [];
	const oasst = fs.readFileSync(path.join(dataDir, OASST_FILE), 'utf8');

	for (const line of oasst.split('\n')) {
		if (line.trim() === '')
			continue;
		for (const text of oasstMessages(JSON.parse(line).prompt, []))
			messages.push({ file: OASST_FILE, text });
	}

	const hh = zlib.gunzipSync(fs.readFileSync(path.join(dataDir, HH_FILE))).toString('utf8');

	for (const line of hh.split('\n')) {
		if (line.trim() === '')
			continue;
		const row = JSON.parse(line);
		const chosen = hhTurns(row.chosen);
		const rejected = hhTurns(row.rejected);

		for (const text of chosen)
			messages.push({ file: HH_FILE, text });
		if (rejected[rejected.length - 1] !== chosen[chosen.length - 1])
			messages.push({ file: HH_FILE, text: rejected[rejected.length - 1] });
	}
	return messages;
}

/* Hand-written cases that the English chat data does not cover. */
function extraCases() {
	const code = [
		'```python',
		'def fib(n: int) -> int:',
		'    """Return the n-th Fibonacci number."""',
		'    a, b = 0, 1',
		'    for _ in range(n):',
		'        a, b = b, a + b',
		'    return a',
		'',
		'if __name__ == "__main__":',
		'    print([fib(i) for i in range(20)])',
		'```',
		'',
		'```c',
		'static int32',
		'sum_array(const int32 *values, int n)',
		'{',
		'\tint32\t\ttotal = 0;',
		'',
		'\tfor (int i = 0; i < n; i++)',
		'\t\ttotal += values[i];',
		'\treturn total;',
		'}',
		'```',
		'',
		'SELECT c.id, count(*) AS n FROM chatstore.message m',
		'  JOIN chatstore.conversation c ON c.id = m.conversation_id',
		' WHERE m.created_at > now() - interval \'1 day\' GROUP BY 1 ORDER BY 2 DESC;',
		'{"model": "gpt-4o", "temperature": 0.2, "messages": [{"role": "user", "content": "hi"}]}',
	].join('\n');
	const chinese = '人工智能是计算机科学的一个分支，它企图了解智能的实质，' +
		'并生产出一种新的能以人类智能相似的方式做出反应的智能机器。' +
		'该领域的研究包括机器人、语言识别、图像识别、自然语言处理和专家系统等。' +
		'你好！请问今天天气怎么样？我想去公园散步。';
	const japanese = '東京は日本の首都です。今日はとても良い天気ですね。' +
		'カタカナとひらがなと漢字を混ぜて書きます。';
	const russian = 'Искусственный интеллект — это область информатики, которая ' +
		'занимается созданием программ, способных выполнять задачи, обычно ' +
		'требующие человеческого интеллекта. Привет! Как дела? Сегодня ' +
		'хорошая погода, давай пойдём гулять в парк.';
	const emoji = 'Great job! 🎉🎉🎉 Thanks 🙏 I love it ❤️ 😂😂 👍🏽 ' +
		'👨‍👩‍👧‍👦 family 🇩🇪🇫🇷 flags ✅ done 🚀';
	const mixed = 'Café crème, naïve façade, Straße, smörgåsbord, déjà vu; ' +
		'Ελληνικά γράμματα, עברית, العربية, हिन्दी, 한국어 텍스트.';
	const numbers = 'Order 1234567 shipped on 2024-03-15 at 14:32:07; total $1,299.99 ' +
		'(tax 8.875%), tracking 1Z999AA10123456784, phone +1 (555) 010-9999.';
	const url = 'See https://www.postgresql.org/docs/current/xfunc-c.html#XFUNC-C-BASETYPE ' +
		'and https://github.com/pgvector/pgvector/blob/master/src/vector.c?plain=1#L120';
	const paragraph = 'The quick brown fox jumps over the lazy dog. It was the best of ' +
		'times, it was the worst of times; it was the age of wisdom, it was the age ' +
		'of foolishness. Internationalization and counterrevolutionary ' +
		'misunderstandings notwithstanding, everything worked out.\n\n';

	return [
		{ name: 'code (python, C, SQL, JSON)', text: code },
		{ name: 'Chinese', text: chinese },
		{ name: 'Japanese', text: japanese },
		{ name: 'Russian', text: russian },
		{ name: 'emoji', text: emoji },
		{ name: 'accents, Greek, Hebrew, Arabic, Hindi, Korean', text: mixed },
		{ name: 'numbers', text: numbers },
		{ name: 'URLs', text: url },
		{ name: 'long English (1,000 paragraphs)', text: paragraph.repeat(1000) },
		{ name: 'long code (200 copies)', text: (code + '\n').repeat(200) },
		{ name: 'long Chinese (500 copies)', text: chinese.repeat(500) },
	];
}

/* Estimates for texts, in order, from chatstore.estimate_tokens(). */
async function estimates(client, texts) {
	const result = [];

	for (let i = 0; i < texts.length; i += BATCH_SIZE) {
		const res = await client.query(
			'SELECT chatstore.estimate_tokens(x) AS n ' +
			'FROM unnest($1::text[]) WITH ORDINALITY AS u(x, i) ORDER BY i',
			[texts.slice(i, i + BATCH_SIZE)]);

		for (const row of res.rows)
			result.push(row.n);
	}
	if (result.length !== texts.length)
		throw new Error(`expected ${texts.length} estimates, got ${result.length}`);
	return result;
}

/* The q-quantile (0 < q <= 1) of a sorted array, by the nearest-rank method. */
function quantile(sorted, q) {
	if (sorted.length === 0)
		return NaN;
	return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)];
}

/* Totals and per-message error figures of [{real, est}]. */
function summarize(rows) {
	let real = 0;
	let est = 0;
	const errors = [];

	for (const r of rows) {
		real += r.real;
		est += r.est;
		if (r.real >= 1)
			errors.push(Math.abs(r.est - r.real) / r.real);
	}
	errors.sort((a, b) => a - b);
	return {
		messages: rows.length,
		real,
		est,
		totalError: real > 0 ? (est - real) / real : 0,
		mape: errors.reduce((a, b) => a + b, 0) / (errors.length || 1),
		median: quantile(errors, 0.5),
		p90: quantile(errors, 0.9),
	};
}

/* One line of the report: totals and per-message error of a set of messages. */
function formatSummary(name, s) {
	const pct = (x) => (100 * x).toFixed(1) + '%';
	const signed = (x) => (x >= 0 ? '+' : '') + pct(x);

	return `${name.padEnd(38)} messages ${String(s.messages).padStart(5)}  ` +
		`real ${String(s.real).padStart(8)}  estimated ${String(s.est).padStart(8)}  ` +
		`total ${signed(s.totalError).padStart(6)}  ` +
		`MAPE ${pct(s.mape).padStart(5)}  median ${pct(s.median).padStart(5)}  p90 ${pct(s.p90).padStart(5)}`;
}

/* Run the comparison; resolves to the exit code. */
async function main() {
	if (!fs.existsSync(DATA_DIR)) {
		console.log(`tokens-compare: skipped: ${DATA_DIR} (../shared/data) is not present`);
		return 77;
	}

	const { Client } = require('pg');
	const messages = loadMessages(DATA_DIR);
	const extras = extraCases();
	const client = new Client();

	await client.connect();
	let est;
	let extraEst;
	try {
		est = await estimates(client, messages.map((m) => m.text));
		extraEst = await estimates(client, extras.map((c) => c.text));
	} finally {
		await client.end();
	}

	const rows = messages.map((m, i) => ({ file: m.file, real: realTokens(m.text), est: est[i] }));
	const all = summarize(rows);

	console.log('tokens-compare: chatstore.estimate_tokens() against gpt-tokenizer o200k_base');
	console.log('(MAPE, median, p90: per-message |estimated - real| / real, messages of 1 token or more)');
	for (const file of [OASST_FILE, HH_FILE])
		console.log(formatSummary(file, summarize(rows.filter((r) => r.file === file))));
	console.log(formatSummary('all messages', all));

	console.log('sanity cases:');
	extras.forEach((c, i) => {
		const real = realTokens(c.text);
		const err = real > 0 ? ((extraEst[i] >= real ? '+' : '') + (100 * (extraEst[i] - real) / real).toFixed(1)) : 'n/a';

		console.log(`  ${c.name.padEnd(46)} chars ${String([...c.text].length).padStart(7)}  ` +
			`real ${String(real).padStart(7)}  estimated ${String(extraEst[i]).padStart(7)}  error ${err}%`);
	});

	if (Math.abs(all.totalError) > MAX_TOTAL_ERROR) {
		console.log(`tokens-compare: FAILED: estimated total is ${(100 * all.totalError).toFixed(1)}% ` +
			`away from the real total (limit ${100 * MAX_TOTAL_ERROR}%)`);
		return 1;
	}
	console.log('tokens-compare: ok');
	return 0;
}

if (require.main === module) {
	main().then(
		(code) => process.exit(code),
		(err) => {
			console.error('tokens-compare: error: ' + (err && err.message ? err.message : err));
			process.exit(1);
		});
}

module.exports = { loadMessages, extraCases, realTokens, summarize, formatSummary, DATA_DIR };
