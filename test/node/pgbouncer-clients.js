// Node.js clients of chatstore behind PgBouncer in transaction mode (run by test/programs/pgbouncer).
//
// Connection parameters come from the PG* environment variables (pointing at PgBouncer). Usage:
//   node pgbouncer-clients.js safe|defaults CLIENTS TRANSACTIONS
// The same work as test/python/pgbouncer_clients.py: CLIENTS node-postgres clients and CLIENTS postgres.js clients,
// each acting for a user of its own ("<mode>-pg-1", ...), run TRANSACTIONS transactions each (declare the user with
// chatstore.set_user(), create a conversation every fifth transaction, append, read the history, list the user's
// conversations, read chatstore.conversation directly) and count foreign rows, identity leaks and errors.
// "safe": the README's settings for PgBouncer (node-postgres: no named statements, its default; postgres.js:
// prepare: false), checked ("ok:" / "FAILED:", exit status 1 on a failure); "defaults": node-postgres with named
// statements (`name:` in the query config) and postgres.js with its default (prepare: true), measured.
'use strict';
const pg = require('pg');
const postgres = require('postgres');

const [mode, clientsArg, transactionsArg] = process.argv.slice(2);
const clients = Number(clientsArg);
const transactions = Number(transactionsArg);
const safe = mode === 'safe';

const Q = {
  left: "SELECT current_setting('chatstore.user_id', true) AS v",
  setUser: 'SELECT chatstore.set_user($1) AS v',
  create: 'SELECT chatstore.create_conversation($1, $2) AS v',
  append: "SELECT seq FROM chatstore.append($1, 'user', $2)",
  history: 'SELECT conversation_id, content FROM chatstore.history($1, 20)',
  list: 'SELECT id, user_id, title FROM chatstore.list_conversations($1)',
  direct: 'SELECT user_id FROM chatstore.conversation',
  who: "SELECT current_setting('chatstore.user_id') AS v",
};

function newTally() {
  return { transactions: 0, rows: 0, foreign: 0, leaks: 0, errors: {} };
}

function countError(tally, e) {
  const code = e.code || (e.constructor && e.constructor.name) || 'Error';
  tally.errors[code] = (tally.errors[code] || 0) + 1;
}

// Rows of one transaction that are not this user's, and whether the user in effect was another.
function checkRows(tally, me, conv, history, listed, direct, who, leaks) {
  let foreign = 0;
  for (const r of history) if (r.conversation_id !== conv || !r.content.startsWith(`${me}:`)) foreign++;
  for (const r of listed) if (r.user_id !== me || !r.title.startsWith(`${me} `)) foreign++;
  for (const r of direct) if (r.user_id !== me) foreign++;
  tally.transactions++;
  tally.rows += history.length + listed.length + direct.length;
  tally.foreign += foreign;
  tally.leaks += leaks + (who !== me ? 1 : 0);
}

// One node-postgres client. In "defaults" mode every query is named (a server-side prepared statement).
async function pgClient(n, tally) {
  const me = `${mode}-pg-${n}`;
  const db = new pg.Client();
  await db.connect();
  const run = async (key, values) =>
    (await db.query(safe ? { text: Q[key], values } : { name: `chatstore_${key}`, text: Q[key], values })).rows;
  let conv = null;
  try {
    for (let i = 0; i < transactions; i++) {
      try {
        await db.query('BEGIN');
        const [{ v: left }] = await run('left', []);
        const [{ v: declared }] = await run('setUser', [me]);
        const leaks = (left ? 1 : 0) + (declared !== me ? 1 : 0);
        if (conv === null || i % 5 === 0) [{ v: conv }] = await run('create', [me, `${me} ${i}`]);
        await run('append', [conv, `${me}: message ${i}`]);
        const history = await run('history', [conv]);
        const listed = await run('list', [me]);
        const direct = await run('direct', []);
        const [{ v: who }] = await run('who', []);
        await db.query('COMMIT');
        checkRows(tally, me, conv, history, listed, direct, who, leaks);
      } catch (e) {
        countError(tally, e);
        conv = null;
        await db.query('ROLLBACK').catch(() => {});
      }
    }
  } finally {
    await db.end();
  }
}

// One postgres.js client (one connection), with tagged-template queries (the same texts as Q). In "safe" mode
// with prepare: false.
async function postgresClient(n, tally) {
  const me = `${mode}-postgres-${n}`;
  const sql = postgres({ max: 1, prepare: !safe, onnotice: () => {} });
  let conv = null;
  try {
    for (let i = 0; i < transactions; i++) {
      try {
        const seen = await sql.begin(async (sql) => {
          const [{ v: left }] = await sql`SELECT current_setting('chatstore.user_id', true) AS v`;
          const [{ v: declared }] = await sql`SELECT chatstore.set_user(${me}) AS v`;
          const leaks = (left ? 1 : 0) + (declared !== me ? 1 : 0);
          if (conv === null || i % 5 === 0) {
            const title = `${me} ${i}`;
            [{ v: conv }] = await sql`SELECT chatstore.create_conversation(${me}, ${title}) AS v`;
          }
          await sql`SELECT seq FROM chatstore.append(${conv}, 'user', ${`${me}: message ${i}`})`;
          const history = await sql`SELECT conversation_id, content FROM chatstore.history(${conv}, 20)`;
          const listed = await sql`SELECT id, user_id, title FROM chatstore.list_conversations(${me})`;
          const direct = await sql`SELECT user_id FROM chatstore.conversation`;
          const [{ v: who }] = await sql`SELECT current_setting('chatstore.user_id') AS v`;
          return { history, listed, direct, who, leaks };
        });
        checkRows(tally, me, conv, seen.history, seen.listed, seen.direct, seen.who, seen.leaks);
      } catch (e) {
        countError(tally, e);
        conv = null;
      }
    }
  } finally {
    await sql.end();
  }
}

function line(name, tally) {
  const errors = Object.entries(tally.errors).sort().map(([c, k]) => `${k} x ${c}`).join(', ') || 'none';
  const text = `${name}: ${clients} clients, ${tally.transactions} transactions committed, ${tally.rows} rows read, ` +
    `${tally.foreign} foreign rows, ${tally.leaks} identity leaks, errors: ${errors}`;
  if (!safe) return ['measured: ' + text, true];
  const good = tally.foreign === 0 && tally.leaks === 0 && Object.keys(tally.errors).length === 0 && tally.rows > 0;
  return [(good ? 'ok: ' : 'FAILED: ') + text, good];
}

async function main() {
  const tallies = { pg: newTally(), postgres: newTally() };
  const work = [];
  for (let n = 1; n <= clients; n++) {
    work.push(pgClient(n, tallies.pg), postgresClient(n, tallies.postgres));
  }
  await Promise.all(work);
  let good = true;
  for (const [name, label] of [['pg', safe ? 'node-postgres (unnamed statements)' : 'node-postgres (named statements)'],
    ['postgres', safe ? 'postgres.js (prepare: false)' : 'postgres.js (defaults)']]) {
    const [text, ok] = line(label, tallies[name]);
    console.log(text);
    good = good && ok;
  }
  process.exit(good ? 0 : 1);
}

main().catch((e) => { console.error(e); process.exit(1); });
