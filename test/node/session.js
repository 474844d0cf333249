#!/usr/bin/env node
/*
 * A short chatstore session from Node.js (node-postgres): the same steps as test/python/session.py and the
 * README. Connection parameters come from the PG* environment variables; run as an app role (chatstore.grant_app):
 * one transaction that declares its user, errors caught in savepoints.
 */
'use strict';
const { Client, types } = require('pg');

types.setTypeParser(types.builtins.INT8, Number);	/* bigint counters as numbers, not strings */

async function main() {
	const db = new Client();
	await db.connect();
	const one = async (sql, params) => (await db.query(sql, params)).rows[0];
	/* run f in a savepoint, so that its error rolls back only f */
	const savepoint = async (f) => {
		await db.query('SAVEPOINT s');
		try {
			await f();
			await db.query('RELEASE SAVEPOINT s');
		} catch (e) {
			await db.query('ROLLBACK TO SAVEPOINT s');
			throw e;
		}
	};

	await db.query('BEGIN');
	await db.query("SELECT chatstore.set_user($1)", ['alice']);

	const { conv } = await one('SELECT chatstore.create_conversation($1, $2, $3) AS conv',
		['alice', 'Weekend in Lisbon', { channel: 'web' }]);
	console.log('created conversation, version', conv[14]);

	const append = async (role, content, key = null) => {
		const m = await one('SELECT seq, tokens FROM chatstore.append($1, $2, $3, idempotency_key => $4)',
			[conv, role, content, key]);
		console.log(`appended ${role}: seq ${m.seq}, ${m.tokens} tokens`);
	};
	await append('system', 'You are a concise travel assistant.');
	await append('user', 'Plan two days in Lisbon.');
	await append('assistant', 'Day 1: Alfama, tram 28 and Belém. Day 2: Sintra.');
	await append('user', 'And where should we eat?', 'msg-4');
	await append('user', 'And where should we eat?', 'msg-4');	/* a retry stores nothing */

	console.log('history, last 3:');
	for (const m of (await db.query('SELECT seq, role, content FROM chatstore.history($1, 3)', [conv])).rows)
		console.log(`  ${m.seq} ${m.role}: ${m.content}`);

	const ctx = (await db.query('SELECT seq FROM chatstore.context($1, 30)', [conv])).rows.map(r => r.seq);
	console.log('context within 30 tokens:', '[' + ctx.join(', ') + ']');
	const { j } = await one('SELECT chatstore.history_json($1, 2) AS j', [conv]);
	console.log('chat JSON, last 2:', pyRepr(j));

	try {
		await savepoint(() => db.query("SELECT seq FROM chatstore.append($1, 'user', $2)", [conv, 'x'.repeat(40000)]));
	} catch (e) {
		console.log('too long:', e.code, e.message, '|', e.detail);
	}
	console.log('archived:', pyBool((await one('SELECT chatstore.archive_conversation($1) AS r', [conv])).r));
	try {
		await savepoint(() => db.query("SELECT seq FROM chatstore.append($1, 'user', 'hello?')", [conv]));
	} catch (e) {
		console.log('append to archived:', e.code, e.hint.replace(conv, '<id>'));
	}
	console.log('restored:', pyBool((await one('SELECT chatstore.restore($1) AS r', [conv])).r));
	const list = (await db.query('SELECT title, message_count, status FROM chatstore.list_conversations($1)',
		['alice'])).rows;
	console.log('conversations:', '[' + list.map(c => `(${pyRepr(c.title)}, ${pyRepr(c.message_count)}, ` +
		`${pyRepr(c.status)})`).join(', ') + ']');
	await db.query('COMMIT');
	await db.end();
}

/* Print values the way the Python client does, so both sessions print the same lines. */
function pyBool(b) { return b ? 'True' : 'False'; }
function pyRepr(v) {
	if (Array.isArray(v)) return '[' + v.map(pyRepr).join(', ') + ']';
	if (v !== null && typeof v === 'object')
		return '{' + Object.entries(v).map(([k, x]) => `'${k}': ${pyRepr(x)}`).join(', ') + '}';
	return typeof v === 'string' ? `'${v}'` : String(v);
}

main().catch(e => { console.error(e); process.exit(1); });
