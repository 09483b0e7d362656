#!/usr/bin/env node
// pg_named.js: node-postgres (npm "pg") through a pooler, with named
// statements: a query given a `name:` is Parsed once per connection as a
// named server-side statement and afterwards only Bound and Executed, the
// pattern a transaction-mode pooler must support. COPY goes through
// pg-copy-streams, node-postgres's COPY companion.
//
// All connections are opened before any workload starts. Per connection:
//   1. parametrised queries: a named one run twice with different values,
//      an unnamed one with a quote and a % in a value,
//   2. BEGIN, named INSERT, COMMIT, then the row read back (named SELECT),
//   3. BEGIN, named INSERT, seen inside by a named count, ROLLBACK, then
//      absent (the same named count: reused across transactions),
//   4. BEGIN, named INSERT, an error (22012), the next statement refused
//      (25P02), ROLLBACK, the INSERT absent, and the connection goes on,
//   5. a 100k-row result (named, rowMode array): count, order, every value
//      and sum(g) (on every 2nd connection by default, to keep the test near
//      30 s on two cores; --big-every=1 for all),
//   6. COPY FROM STDIN (checked by rowCount, count and sum) and COPY TO
//      STDOUT (compared byte for byte).
// Exits 1 on any mismatch.
'use strict';

const path = require('path');
const { Readable } = require('stream');
const { pipeline } = require('stream/promises');
const { Client } = require('pg');
const { from: copyFrom, to: copyTo } = require('pg-copy-streams');
const c = require(path.join(__dirname, 'common.js'));

const PARAM_SQL =
  "SELECT $1::int * 2 AS a, $2::text || '!' AS b, $3::numeric + 1 AS c, $4::text IS NULL AS d";

async function workload(a, i, client, pr) {
  const t = a.table;
  const ct = a.copyTable;
  const q = (name, text, values) => client.query({ name, text, values });
  const insert = (kind) => q('ins', `INSERT INTO ${t} (conn, kind, val) VALUES ($1, $2, $3)`,
    [i, kind, `${kind[0]}${i}`]);
  const count = async (kind) => (await q('cnt',
    `SELECT count(*)::int AS n FROM ${t} WHERE conn = $1 AND kind = $2`, [i, kind])).rows[0].n;

  pr.step = 'parametrised query (named)';
  let r = await q('param', PARAM_SQL, [i, `s${i}`, '1.5', null]);
  c.check(pr.step, r.rows, [{ a: 2 * i, b: `s${i}!`, c: '2.5', d: true }]);
  r = await q('param', PARAM_SQL, [i + 1, 'x', '-1', 'n']);
  c.check(`${pr.step}, second execution`, r.rows, [{ a: 2 * i + 2, b: 'x!', c: '0', d: false }]);
  pr.step = 'parametrised query (unnamed)';
  r = await client.query('SELECT $1::text || $2::text AS s', ["it's 100% ", String(i)]);
  c.check(pr.step, r.rows, [{ s: `it's 100% ${i}` }]);

  pr.step = 'committed transaction';
  await client.query('BEGIN');
  await insert('commit');
  await client.query('COMMIT');
  r = await q('val', `SELECT val FROM ${t} WHERE conn = $1 AND kind = $2`, [i, 'commit']);
  c.check(`${pr.step}: row after commit`, r.rows, [{ val: `c${i}` }]);

  pr.step = 'rolled-back transaction';
  await client.query('BEGIN');
  await insert('rollback');
  c.check(`${pr.step}: row inside the transaction`, await count('rollback'), 1);
  await client.query('ROLLBACK');
  c.check(`${pr.step}: row after rollback`, await count('rollback'), 0);

  pr.step = 'error mid-transaction';
  await client.query('BEGIN');
  await insert('error');
  await c.expectError(`${pr.step}: 1/0`, '22012', () => q('div', 'SELECT 1 / $1::int AS x', [0]));
  await c.expectError(`${pr.step}: statement after the error`, '25P02',
    () => client.query('SELECT $1::int AS x', [i]));
  await client.query('ROLLBACK');
  c.check(`${pr.step}: row after rollback`, await count('error'), 0);
  r = await client.query('SELECT $1::int + 1 AS x', [i]);
  c.check(`${pr.step}: query after rollback`, r.rows, [{ x: i + 1 }]);

  if (c.runsBig(a, i)) {
    pr.step = '100k-row result';
    r = await client.query({ name: 'big', text: c.bigQuery(a), rowMode: 'array' });
    c.checkBigRows(a, r.rows);
    r = null;
  }

  pr.step = 'COPY FROM STDIN';
  const sink = client.query(copyFrom(`COPY ${ct} (conn, n, label) FROM STDIN`));
  await pipeline(Readable.from([c.copyPayload(a, i)]), sink);
  c.check(`${pr.step}: rowCount`, sink.rowCount, a.copyRows);
  r = await q('copycnt', `SELECT count(*)::int AS n, sum(n)::int AS s FROM ${ct} WHERE conn = $1`,
    [i]);
  c.check(`${pr.step}: rows stored`, r.rows,
    [{ n: a.copyRows, s: (a.copyRows * (a.copyRows + 1)) / 2 }]);

  pr.step = 'COPY TO STDOUT';
  const chunks = [];
  for await (const chunk of client.query(copyTo(c.copyOutQuery(a, i)))) chunks.push(chunk);
  c.check(pr.step, Buffer.concat(chunks).toString(), c.copyOutExpected(a, i));
}

function newClient(a) {
  return new Client({
    host: a.host, port: a.port, user: a.user, password: a.password, database: a.dbname,
    application_name: 'pgmux-driver-pg', connectionTimeoutMillis: 30000,
  });
}

async function main() {
  const a = c.parseArgs('pg_named', { bigEvery: 2 });
  const rep = new c.Report(a);

  const setup = newClient(a);
  await setup.connect();
  for (const sql of c.setupSql(a)) await setup.query(sql);

  const clients = [];
  const connectErrors = [];
  await Promise.all(Array.from({ length: a.conns }, async (_, k) => {
    const i = k + 1;
    const cl = newClient(a);
    // An 'error' event (the connection died) would otherwise end the process.
    cl.on('error', (e) => rep.fail(i, 'connection error event', e));
    try {
      await cl.connect();
      clients[i] = cl;
    } catch (e) {
      connectErrors.push(i);
      rep.fail(i, 'connect', e);
    }
  }));

  if (connectErrors.length === 0) {
    await Promise.all(Array.from({ length: a.conns }, async (_, k) => {
      const i = k + 1;
      const pr = { step: 'start' };
      try {
        await workload(a, i, clients[i], pr);
        rep.done++;
      } catch (e) {
        rep.fail(i, pr.step, e);
      }
    }));
  }
  await Promise.all(clients.filter(Boolean).map((cl) => cl.end().catch(() => {})));

  if (rep.failures.length === 0) {
    let r = await setup.query(`SELECT kind, count(*)::int AS n, count(DISTINCT conn)::int AS d ` +
      `FROM ${a.table} GROUP BY kind`);
    try {
      c.check('final table check: rows by kind', r.rows, [{ kind: 'commit', n: a.conns, d: a.conns }]);
      r = await setup.query(`SELECT count(*)::int AS n FROM ${a.copyTable}`);
      c.check('final COPY table check', r.rows, [{ n: a.conns * a.copyRows }]);
      for (const sql of c.teardownSql(a)) await setup.query(sql);
    } catch (e) {
      rep.fail(0, 'final check', e);
    }
  }
  await setup.end();
  return rep.finish();
}

main().then((code) => { process.exitCode = code; }, (e) => {
  console.error(`pg_named: FAILED: ${e.stack || e}`);
  process.exitCode = 1;
});
