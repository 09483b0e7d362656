// common.js: what both Node driver tests share: connection parameters
// (libpq's PG* environment variables, overridable by --key=value arguments),
// the workload's sizes, the expected values and the failure bookkeeping.
// Each driver script opens --conns connections at once and runs the same
// steps on each (listed at the top of the script); any mismatch throws a
// Mismatch, and the script exits 1 after printing the first failures, each
// with its connection number and step.
'use strict';

class Mismatch extends Error {}

function parseArgs(driver, defaults = {}) {
  const env = process.env;
  const a = {
    host: env.PGHOST || '127.0.0.1',
    port: Number(env.PGPORT || 5432),
    user: env.PGUSER || 'app',
    password: env.PGPASSWORD || '',
    dbname: env.PGDATABASE || 'appdb',
    conns: Number(env.DRIVER_CONNS || 200),
    bigRows: Number(env.DRIVER_BIG_ROWS || 100000),
    // The 100k-row result runs on every connection whose number is a
    // multiple of bigEvery (1: all of them).
    bigEvery: Number(env.DRIVER_BIG_EVERY || defaults.bigEvery || 1),
    copyRows: Number(env.DRIVER_COPY_ROWS || 1000),
  };
  const keys = { host: 'host', port: 'port', user: 'user', password: 'password',
    dbname: 'dbname', conns: 'conns', 'big-rows': 'bigRows',
    'big-every': 'bigEvery', 'copy-rows': 'copyRows' };
  for (const arg of process.argv.slice(2)) {
    const m = /^--([a-z-]+)=(.*)$/.exec(arg);
    if (!m || !(m[1] in keys)) {
      console.error(`${driver}: unknown argument ${arg} (--key=value, keys: ` +
        `${Object.keys(keys).join(', ')})`);
      process.exit(2);
    }
    const k = keys[m[1]];
    a[k] = typeof a[k] === 'number' ? Number(m[2]) : m[2];
  }
  a.driver = driver;
  a.table = `drv_${driver}`;
  a.copyTable = `drv_${driver}_copy`;
  return a;
}

function same(x, y) {
  return JSON.stringify(x) === JSON.stringify(y);
}

function check(what, got, want) {
  if (!same(got, want)) {
    throw new Mismatch(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  }
}

// err is the driver's error; its SQLSTATE (err.code in both drivers) must be want.
function checkSqlstate(what, err, want) {
  if (!err || err.code !== want) {
    throw new Mismatch(`${what}: got SQLSTATE ${err && err.code} ` +
      `(${err && err.message}), want ${want}`);
  }
}

// Runs fn, which must fail with SQLSTATE want.
async function expectError(what, want, fn) {
  let err = null;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  if (err === null) throw new Mismatch(`${what}: no error, want SQLSTATE ${want}`);
  if (err instanceof Mismatch) throw err;
  checkSqlstate(what, err, want);
}

function setupSql(a) {
  return [
    `DROP TABLE IF EXISTS ${a.table}`,
    `DROP TABLE IF EXISTS ${a.copyTable}`,
    `CREATE TABLE ${a.table} (conn int NOT NULL, kind text NOT NULL, val text NOT NULL)`,
    `CREATE TABLE ${a.copyTable} (conn int NOT NULL, n int NOT NULL, label text NOT NULL)`,
  ];
}

function teardownSql(a) {
  return [`DROP TABLE ${a.table}`, `DROP TABLE ${a.copyTable}`];
}

function runsBig(a, conn) {
  return conn % Math.max(a.bigEvery, 1) === 0;
}

function bigQuery(a) {
  return `SELECT g, 'row ' || g FROM generate_series(1, ${Math.trunc(a.bigRows)}) g`;
}

// rows: array of [g, label] (g a number). Checks count, order, content, sum.
function checkBigRows(a, rows) {
  check('big result row count', rows.length, a.bigRows);
  let total = 0;
  for (let k = 1; k <= rows.length; k++) {
    const [g, label] = rows[k - 1];
    if (g !== k || label !== `row ${k}`) {
      throw new Mismatch(`big result row ${k}: got ${JSON.stringify([g, label])}, ` +
        `want [${k},"row ${k}"]`);
    }
    total += g;
  }
  check('big result checksum sum(g)', total, (a.bigRows * (a.bigRows + 1)) / 2);
}

function copyPayload(a, conn) {
  const parts = [];
  for (let n = 1; n <= a.copyRows; n++) parts.push(`${conn}\t${n}\tlabel ${conn}/${n}\n`);
  return parts.join('');
}

function copyOutExpected(a, conn) {
  const parts = [];
  for (let n = 1; n <= a.copyRows; n++) parts.push(`${n}\tlabel ${conn}/${n}\n`);
  return parts.join('');
}

function copyOutQuery(a, conn) {
  return `COPY (SELECT n, label FROM ${a.copyTable} WHERE conn = ${Math.trunc(conn)} ` +
    'ORDER BY n) TO STDOUT';
}

class Report {
  constructor(a) {
    this.a = a;
    this.start = Date.now();
    this.failures = [];
    this.done = 0;
  }

  fail(conn, step, err) {
    let kind = '';
    if (!(err instanceof Mismatch)) {
      kind = `${err && err.constructor ? err.constructor.name : 'Error'}: `;
      if (err && err.code) kind += `[${err.code}] `;
    }
    const first = String((err && err.message) || err).trim().split('\n')[0];
    this.failures.push(`conn ${conn}, step ${step}: ${kind}${first}`);
  }

  finish() {
    const a = this.a;
    const secs = ((Date.now() - this.start) / 1000).toFixed(1);
    if (this.failures.length > 0) {
      console.error(`${a.driver}: FAILED on ${this.failures.length} of ${a.conns} ` +
        `connections (${secs} s); first failures:`);
      for (const f of this.failures.slice(0, 10)) console.error(`  ${f}`);
      return 1;
    }
    if (this.done !== a.conns) {
      console.error(`${a.driver}: FAILED: ${this.done} of ${a.conns} connections finished`);
      return 1;
    }
    const big = Math.floor(a.conns / Math.max(a.bigEvery, 1));
    console.log(`${a.driver}: ${a.conns} connections ok: parametrised queries, commit, ` +
      `rollback, error mid-transaction, ${a.bigRows}-row result (on ${big}), ` +
      `COPY in/out (${secs} s)`);
    return 0;
  }
}

module.exports = {
  Mismatch, parseArgs, check, checkSqlstate, expectError, setupSql, teardownSql,
  runsBig, bigQuery, checkBigRows, copyPayload, copyOutExpected, copyOutQuery, Report,
};
