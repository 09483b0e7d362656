#!/usr/bin/python3
"""asyncpg_test.py: asyncpg (Debian's python3-asyncpg) through a pooler.

asyncpg prepares every parametrised statement as a named server-side
statement ("__asyncpg_stmt_N__") and caches it per connection, with the
driver's defaults left as they are (statement_cache_size=100): this is the
pattern a transaction-mode pooler must support. Every connection is opened
before any workload starts. Per connection:
  1. parametrised queries (int, text, numeric, NULL), one of them run twice
     so the cached statement is Bound again,
  2. conn.transaction() with an INSERT that commits, then the row read back,
  3. conn.transaction() with an INSERT, seen inside, rolled back by an
     exception, then absent (the same cached count statement each time),
  4. explicit BEGIN, an error (22012), the next statement refused (25P02),
     ROLLBACK, the INSERT absent, and the connection goes on,
  5. a 100k-row result: count, order, every value and sum(g) (on every 2nd
     connection by default, to keep the test near 30 s on two cores;
     --big-every 1 for all),
  6. copy_to_table (COPY FROM STDIN, text format; checked by count and sum)
     and copy_from_query (COPY TO STDOUT, compared byte for byte).
Exits 1 on any mismatch.
"""

import asyncio
import io
import os
import sys
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import Mismatch, check, check_sqlstate  # noqa: E402

import asyncpg  # noqa: E402

PARAM_SQL = "SELECT $1::int * 2, $2::text || '!', $3::numeric + 1, $4::text IS NULL"


class Progress:
    step = "connect"


class _Rollback(Exception):
    """Raised inside conn.transaction() to roll it back."""


async def expect_error(conn, sql, args, sqlstate, what):
    try:
        await conn.fetch(sql, *args)
    except asyncpg.PostgresError as e:
        check_sqlstate(what, e, sqlstate)
        return
    raise Mismatch(f"{what}: no error, want SQLSTATE {sqlstate}")


async def workload(a, i, conn, pr):
    t, ct = a.table, a.copy_table
    count_sql = f"SELECT count(*) FROM {t} WHERE conn = $1 AND kind = $2"

    pr.step = "parametrised query"
    row = await conn.fetchrow(PARAM_SQL, i, f"s{i}", Decimal("1.5"), None)
    check(pr.step, tuple(row), (2 * i, f"s{i}!", Decimal("2.5"), True))
    row = await conn.fetchrow(PARAM_SQL, i + 1, "x", Decimal("-1"), "n")
    check(pr.step + ", second execution", tuple(row),
          (2 * i + 2, "x!", Decimal("0"), False))
    val = await conn.fetchval("SELECT $1::text || $2::text", "it's 100% ", str(i))
    check(pr.step + " (quote, percent)", val, f"it's 100% {i}")

    pr.step = "committed transaction"
    async with conn.transaction():
        await conn.execute(
            f"INSERT INTO {t} (conn, kind, val) VALUES ($1, 'commit', $2)",
            i, f"c{i}")
    rows = await conn.fetch(f"SELECT val FROM {t} WHERE conn = $1 AND kind = $2",
                            i, "commit")
    check(pr.step + ": row after commit", [tuple(r) for r in rows], [(f"c{i}",)])

    pr.step = "rolled-back transaction"
    try:
        async with conn.transaction():
            await conn.execute(
                f"INSERT INTO {t} (conn, kind, val) VALUES ($1, 'rollback', $2)",
                i, f"r{i}")
            n = await conn.fetchval(count_sql, i, "rollback")
            check(pr.step + ": row inside the transaction", n, 1)
            raise _Rollback()
    except _Rollback:
        pass
    n = await conn.fetchval(count_sql, i, "rollback")
    check(pr.step + ": row after rollback", n, 0)

    pr.step = "error mid-transaction"
    await conn.execute("BEGIN")
    await conn.execute(
        f"INSERT INTO {t} (conn, kind, val) VALUES ($1, 'error', $2)", i, f"e{i}")
    await expect_error(conn, "SELECT 1 / $1::int", (0,), "22012", pr.step + ": 1/0")
    await expect_error(conn, "SELECT $1::int", (i,), "25P02",
                       pr.step + ": statement after the error")
    await conn.execute("ROLLBACK")
    n = await conn.fetchval(count_sql, i, "error")
    check(pr.step + ": row after rollback", n, 0)
    n = await conn.fetchval("SELECT $1::int + 1", i)
    check(pr.step + ": query after rollback", n, i + 1)

    if common.runs_big(a, i):
        pr.step = "100k-row result"
        rows = await conn.fetch(common.big_query(a))
        common.check_big_rows(a, rows)
        del rows

    pr.step = "COPY FROM STDIN (copy_to_table)"
    status = await conn.copy_to_table(
        ct, source=io.BytesIO(common.copy_payload(a, i).encode()),
        columns=["conn", "n", "label"], format="text")
    check(pr.step + ": status", status, f"COPY {a.copy_rows}")
    row = await conn.fetchrow(f"SELECT count(*), sum(n) FROM {ct} WHERE conn = $1",
                              i)
    check(pr.step + ": rows stored", tuple(row),
          (a.copy_rows, a.copy_rows * (a.copy_rows + 1) // 2))

    pr.step = "COPY TO STDOUT (copy_from_query)"
    out = io.BytesIO()
    await conn.copy_from_query(
        f"SELECT n, label FROM {ct} WHERE conn = $1 ORDER BY n", i,
        output=out, format="text")
    check(pr.step, out.getvalue().decode(), common.copy_out_expected(a, i))


async def connect(a):
    return await asyncpg.connect(host=a.host, port=a.port, user=a.user,
                                 password=a.password, database=a.dbname,
                                 timeout=30, server_settings={
                                     "application_name": "pgmux-driver-asyncpg"})


async def amain():
    a = common.parse_args("asyncpg", big_every=2)
    rep = common.Report(a)

    setup = await connect(a)
    for sql in common.setup_sql(a):
        await setup.execute(sql)

    conns = [None] * (a.conns + 1)

    async def open_one(i):
        try:
            conns[i] = await connect(a)
        except Exception as e:  # noqa: BLE001
            rep.fail(i, "connect", e)

    await asyncio.gather(*(open_one(i) for i in range(1, a.conns + 1)))
    if rep.failures:
        return rep.finish()

    async def run_one(i):
        pr = Progress()
        try:
            await workload(a, i, conns[i], pr)
            rep.done += 1
        except Exception as e:  # noqa: BLE001: every failure is reported
            rep.fail(i, pr.step, e)
        finally:
            await conns[i].close(timeout=30)

    await asyncio.gather(*(run_one(i) for i in range(1, a.conns + 1)))

    if not rep.failures:
        got = [tuple(r) for r in await setup.fetch(
            f"SELECT kind, count(*), count(DISTINCT conn) FROM {a.table} "
            f"GROUP BY kind")]
        if got != [("commit", a.conns, a.conns)]:
            rep.fail(0, "final table check",
                     Mismatch(f"rows by kind: got {got!r}, want "
                              f"[('commit', {a.conns}, {a.conns})]"))
        n = await setup.fetchval(f"SELECT count(*) FROM {a.copy_table}")
        if n != a.conns * a.copy_rows:
            rep.fail(0, "final COPY table check",
                     Mismatch(f"got {n} rows, want {a.conns * a.copy_rows}"))
        if not rep.failures:
            for sql in common.teardown_sql(a):
                await setup.execute(sql)
    await setup.close()
    return rep.finish()


if __name__ == "__main__":
    sys.exit(asyncio.run(amain()))
