#!/usr/bin/python3
"""psycopg3_test.py: psycopg 3 (Debian's python3-psycopg) through a pooler.

asyncio: every connection is opened (AsyncConnection, autocommit) before any
workload starts, then all run at once. Per connection:
  1. parametrised queries: one with prepare=True run twice with different
     values (a named server-side statement, "_pg3_N", Parsed once and then
     only Bound), one unprepared (the unnamed statement),
  2. conn.transaction() with an INSERT that commits, then the row read back
     by a prepared SELECT,
  3. conn.transaction() with an INSERT, seen inside, ended by Rollback, then
     absent (the same prepared count statement, so it is reused across
     transactions, and so across server connections behind a pooler),
  4. explicit BEGIN, an error (22012), the next statement refused (25P02),
     ROLLBACK, the INSERT absent, and the connection goes on,
  5. a 100k-row result: count, order, every value and sum(g) (on every
     10th connection by default: psycopg's row decoding is pure Python in
     Debian's package, about 0.5 s per 100k rows; --big-every 1 for all),
  6. COPY FROM STDIN (checked by count and sum) and COPY TO STDOUT
     (compared byte for byte).
Exits 1 on any mismatch.
"""

import asyncio
import os
import sys
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import Mismatch, check, check_sqlstate  # noqa: E402

import psycopg  # noqa: E402

PARAM_SQL = ("SELECT %s::int * 2, %s::text || '!', %s::numeric + 1, "
             "%s::text IS NULL")


class Progress:
    step = "connect"


async def expect_error(conn, sql, params, sqlstate, what):
    try:
        await conn.execute(sql, params)
    except psycopg.Error as e:
        check_sqlstate(what, e, sqlstate)
        return
    raise Mismatch(f"{what}: no error, want SQLSTATE {sqlstate}")


async def fetchone(conn, sql, params=None, prepare=None):
    cur = await conn.execute(sql, params, prepare=prepare)
    return await cur.fetchone()


async def workload(a, i, conn, pr):
    t, ct = a.table, a.copy_table
    count_sql = f"SELECT count(*) FROM {t} WHERE conn = %s AND kind = %s"

    pr.step = "parametrised query (prepare=True)"
    row = await fetchone(conn, PARAM_SQL, (i, f"s{i}", Decimal("1.5"), None),
                         prepare=True)
    check(pr.step, row, (2 * i, f"s{i}!", Decimal("2.5"), True))
    row = await fetchone(conn, PARAM_SQL, (i + 1, "x", Decimal("-1"), "n"),
                         prepare=True)
    check(pr.step + ", second execution", row,
          (2 * i + 2, "x!", Decimal("0"), False))
    pr.step = "parametrised query (unprepared)"
    row = await fetchone(conn, "SELECT %s || %s", ("it's 100% ", str(i)))
    check(pr.step, row, (f"it's 100% {i}",))

    pr.step = "committed transaction"
    async with conn.transaction():
        await conn.execute(
            f"INSERT INTO {t} (conn, kind, val) VALUES (%s, 'commit', %s)",
            (i, f"c{i}"))
    cur = await conn.execute(f"SELECT val FROM {t} WHERE conn = %s AND kind = %s",
                             (i, "commit"), prepare=True)
    check(pr.step + ": row after commit", await cur.fetchall(), [(f"c{i}",)])

    pr.step = "rolled-back transaction"
    async with conn.transaction():
        await conn.execute(
            f"INSERT INTO {t} (conn, kind, val) VALUES (%s, 'rollback', %s)",
            (i, f"r{i}"))
        row = await fetchone(conn, count_sql, (i, "rollback"), prepare=True)
        check(pr.step + ": row inside the transaction", row, (1,))
        raise psycopg.Rollback()
    row = await fetchone(conn, count_sql, (i, "rollback"), prepare=True)
    check(pr.step + ": row after rollback", row, (0,))

    pr.step = "error mid-transaction"
    await conn.execute("BEGIN")
    await conn.execute(
        f"INSERT INTO {t} (conn, kind, val) VALUES (%s, 'error', %s)",
        (i, f"e{i}"))
    await expect_error(conn, "SELECT 1 / %s", (0,), "22012", pr.step + ": 1/0")
    await expect_error(conn, "SELECT %s::int", (i,), "25P02",
                       pr.step + ": statement after the error")
    await conn.execute("ROLLBACK")
    row = await fetchone(conn, count_sql, (i, "error"), prepare=True)
    check(pr.step + ": row after rollback", row, (0,))
    row = await fetchone(conn, "SELECT %s::int + 1", (i,))
    check(pr.step + ": query after rollback", row, (i + 1,))

    if common.runs_big(a, i):
        pr.step = "100k-row result"
        cur = conn.cursor()
        await cur.execute(common.big_query(a))
        rows = await cur.fetchall()
        common.check_big_rows(a, rows)
        del rows

    pr.step = "COPY FROM STDIN"
    cur = conn.cursor()
    async with cur.copy(f"COPY {ct} (conn, n, label) FROM STDIN") as copy:
        await copy.write(common.copy_payload(a, i))
    check(pr.step + ": rowcount", cur.rowcount, a.copy_rows)
    row = await fetchone(conn, f"SELECT count(*), sum(n) FROM {ct} WHERE conn = %s",
                         (i,))
    check(pr.step + ": rows stored", row,
          (a.copy_rows, a.copy_rows * (a.copy_rows + 1) // 2))

    pr.step = "COPY TO STDOUT"
    chunks = []
    async with cur.copy(common.copy_out_query(a, i)) as copy:
        async for data in copy:
            chunks.append(bytes(data))
    check(pr.step, b"".join(chunks).decode(), common.copy_out_expected(a, i))


async def connect(a):
    return await psycopg.AsyncConnection.connect(
        host=a.host, port=a.port, user=a.user, password=a.password,
        dbname=a.dbname, connect_timeout=30, autocommit=True,
        application_name="pgmux-driver-psycopg3")


async def amain():
    a = common.parse_args("psycopg3", big_every=10)
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
            await conns[i].close()

    await asyncio.gather(*(run_one(i) for i in range(1, a.conns + 1)))

    if not rep.failures:
        cur = await setup.execute(f"SELECT kind, count(*), count(DISTINCT conn) "
                                  f"FROM {a.table} GROUP BY kind")
        got = await cur.fetchall()
        if got != [("commit", a.conns, a.conns)]:
            rep.fail(0, "final table check",
                     Mismatch(f"rows by kind: got {got!r}, want "
                              f"[('commit', {a.conns}, {a.conns})]"))
        cur = await setup.execute(f"SELECT count(*) FROM {a.copy_table}")
        n = (await cur.fetchone())[0]
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
