#!/usr/bin/env node
// postgres_js.js: postgres.js (npm "postgres") through a pooler, with its
// defaults: prepare: true, so every tagged-template query becomes a named
// server-side statement that the driver Parses once per connection and
// afterwards only Binds. One postgres() instance with max: 1 per connection.
//
// All connections are opened (and have answered one query) before any
// workload starts. Per connection:
//   1. parametrised queries (int, text, numeric, NULL), one run twice with
//      different values so its prepared statement is reused,
//   2. sql.begin() with an INSERT that commits, then the row read back,
//   3. sql.begin() with an INSERT, seen inside, rolled back by a throw, then
//      absent (the same prepared count each time, across transactions),
//   4. sql.begin() with an INSERT, an error (22012), the next statement
//      refused (25P02), then the block ends in ROLLBACK; the INSERT is
//      absent and the connection goes on,
//   5. a 100k-row result (.values()): count, order, every value and sum(g)
//      (on every 2nd connection by default, to keep the test near 30 s on
//      two cores; --big-every=1 for all),
//   6. COPY FROM STDIN (.writable(); checked by count and sum) and COPY TO
//      STDOUT (.readable(), compared byte for byte).
// Exits 1 on any mismatch.
'use strict';

const path = require('path');
const { Readable } = require('stream');
const { pipeline } = require('stream/promises');
const postgres = require('postgres');
const c = require(path.join(__dirname, 'common.js'));

class Rollback extends Error {}

async function rolledBack(sql, fn) {
  try {
    await sql.begin(async (tx) => {
      await fn(tx);
      throw new Rollback('roll back');
    });
  } catch (e) {
    if (!(e instanceof Rollback)) throw e;
    return;
  }
  throw new c.Mismatch('sql.begin() did not pass the rollback exception through');
}

async function workload(a, i, sql, pr) {
  const t = sql(a.table);
  const ct = sql(a.copyTable);
  const count = async (db, kind) => (await db`
    SELECT count(*)::int AS n FROM ${t} WHERE conn = ${i} AND kind = ${kind}`)[0].n;
  const insert = (db, kind) => db`
    INSERT INTO ${t} (conn, kind, val) VALUES (${i}, ${kind}, ${kind[0] + i})`;
  const param = (x, s, num, nul) => sql`
    SELECT ${x}::int * 2 AS a, ${s}::text || '!' AS b, ${num}::numeric + 1 AS c,
           ${nul}::text IS NULL AS d`;

  pr.step = 'parametrised query';
  let rows = await param(i, `s${i}`, '1.5', null);
  c.check(pr.step, [...rows], [{ a: 2 * i, b: `s${i}!`, c: '2.5', d: true }]);
  rows = await param(i + 1, 'x', '-1', 'n');
  c.check(`${pr.step}, second execution`, [...rows], [{ a: 2 * i + 2, b: 'x!', c: '0', d: false }]);
  rows = await sql`SELECT ${"it's 100% "}::text || ${String(i)}::text AS s`;
  c.check(`${pr.step} (quote, percent)`, [...rows], [{ s: `it's 100% ${i}` }]);

  pr.step = 'committed transaction';
  await sql.begin(async (tx) => { await insert(tx, 'commit'); });
  rows = await sql`SELECT val FROM ${t} WHERE conn = ${i} AND kind = ${'commit'}`;
  c.check(`${pr.step}: row after commit`, [...rows], [{ val: `c${i}` }]);

  pr.step = 'rolled-back transaction';
  await rolledBack(sql, async (tx) => {
    await insert(tx, 'rollback');
    c.check(`${pr.step}: row inside the transaction`, await count(tx, 'rollback'), 1);
  });
  c.check(`${pr.step}: row after rollback`, await count(sql, 'rollback'), 0);

  pr.step = 'error mid-transaction';
  await rolledBack(sql, async (tx) => {
    await insert(tx, 'error');
    await c.expectError(`${pr.step}: 1/0`, '22012', () => tx`SELECT 1 / ${0}::int AS x`);
    await c.expectError(`${pr.step}: statement after the error`, '25P02',
      () => tx`SELECT ${i}::int AS x`);
  });
  c.check(`${pr.step}: row after rollback`, await count(sql, 'error'), 0);
  rows = await sql`SELECT ${i}::int + 1 AS x`;
  c.check(`${pr.step}: query after rollback`, [...rows], [{ x: i + 1 }]);

  if (c.runsBig(a, i)) {
    pr.step = '100k-row result';
    let big = await sql`
      SELECT g, 'row ' || g FROM generate_series(1, ${a.bigRows}::int) g`.values();
    c.checkBigRows(a, big);
    big = null;
  }

  pr.step = 'COPY FROM STDIN';
  const sink = await sql`COPY ${ct} (conn, n, label) FROM STDIN`.writable();
  await pipeline(Readable.from([c.copyPayload(a, i)]), sink);
  rows = await sql`SELECT count(*)::int AS n, sum(n)::int AS s FROM ${ct} WHERE conn = ${i}`;
  c.check(`${pr.step}: rows stored`, [...rows],
    [{ n: a.copyRows, s: (a.copyRows * (a.copyRows + 1)) / 2 }]);

  pr.step = 'COPY TO STDOUT';
  const chunks = [];
  const source = await sql.unsafe(c.copyOutQuery(a, i)).readable();
  for await (const chunk of source) chunks.push(chunk);
  c.check(pr.step, Buffer.concat(chunks).toString(), c.copyOutExpected(a, i));
}

function newSql(a) {
  return postgres({
    host: a.host, port: a.port, user: a.user, pass: a.password, database: a.dbname,
    max: 1, connect_timeout: 30, onnotice: () => {},
    connection: { application_name: 'pgmux-driver-postgres-js' },
  });
}

async function main() {
  const a = c.parseArgs('postgres_js', { bigEvery: 2 });
  const rep = new c.Report(a);

  const setup = newSql(a);
  for (const q of c.setupSql(a)) await setup.unsafe(q);

  const sqls = [];
  await Promise.all(Array.from({ length: a.conns }, async (_, k) => {
    const i = k + 1;
    sqls[i] = newSql(a);
    try {
      // postgres.js connects lazily: one query makes the connection real.
      const r = await sqls[i]`SELECT ${i}::int AS i`;
      c.check('first query', [...r], [{ i }]);
    } catch (e) {
      rep.fail(i, 'connect', e);
    }
  }));

  if (rep.failures.length === 0) {
    await Promise.all(Array.from({ length: a.conns }, async (_, k) => {
      const i = k + 1;
      const pr = { step: 'start' };
      try {
        await workload(a, i, sqls[i], pr);
        rep.done++;
      } catch (e) {
        rep.fail(i, pr.step, e);
      }
    }));
  }
  await Promise.all(sqls.filter(Boolean).map((s) => s.end({ timeout: 10 }).catch(() => {})));

  if (rep.failures.length === 0) {
    try {
      let r = await setup.unsafe(`SELECT kind, count(*)::int AS n, count(DISTINCT conn)::int AS d ` +
        `FROM ${a.table} GROUP BY kind`);
      c.check('final table check: rows by kind', [...r], [{ kind: 'commit', n: a.conns, d: a.conns }]);
      r = await setup.unsafe(`SELECT count(*)::int AS n FROM ${a.copyTable}`);
      c.check('final COPY table check', [...r], [{ n: a.conns * a.copyRows }]);
      for (const q of c.teardownSql(a)) await setup.unsafe(q);
    } catch (e) {
      rep.fail(0, 'final check', e);
    }
  }
  await setup.end({ timeout: 10 });
  return rep.finish();
}

main().then((code) => { process.exitCode = code; }, (e) => {
  console.error(`postgres_js: FAILED: ${e.stack || e}`);
  process.exitCode = 1;
});
