#!/usr/bin/python3
"""psycopg2_test.py: psycopg2 (Debian's python3-psycopg2) through a pooler.

One thread per connection; all connections are open before any workload
starts. Per connection, in psycopg2's default mode (autocommit off, so every
step is its own transaction ended by commit() or rollback()):
  1. parametrised queries (int, text, numeric, NULL; a quote and a % in a
     value: psycopg2 interpolates client-side and sends simple queries),
  2. INSERT + commit, then the row is read back,
  3. INSERT, seen inside the transaction, rollback, then absent,
  4. an error mid-transaction (22012), the next statement refused (25P02),
     rollback, the earlier INSERT absent, and the connection goes on,
  5. a 100k-row result: count, order, every value and sum(g),
  6. COPY FROM STDIN (1,000 rows, checked by count and sum) and COPY TO
     STDOUT (compared byte for byte).
psycopg2 has no server-side prepared statements. Exits 1 on any mismatch.
"""

import io
import os
import sys
import threading
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import Mismatch, check, check_sqlstate  # noqa: E402

import psycopg2  # noqa: E402
import psycopg2.errors  # noqa: E402


class Progress:
    step = "connect"


def expect_error(cur, sql, params, sqlstate, what):
    try:
        cur.execute(sql, params)
    except psycopg2.Error as e:
        check_sqlstate(what, e, sqlstate)
        return
    raise Mismatch(f"{what}: no error, want SQLSTATE {sqlstate}")


def workload(a, i, conn, pr):
    t, ct = a.table, a.copy_table
    cur = conn.cursor()

    pr.step = "parametrised query"
    cur.execute("SELECT %s::int * 2, %s::text || '!', %s::numeric + 1, "
                "%s::text IS NULL", (i, f"s{i}", Decimal("1.5"), None))
    check(pr.step, cur.fetchone(), (2 * i, f"s{i}!", Decimal("2.5"), True))
    cur.execute("SELECT %s || %s", ("it's 100% ", str(i)))
    check(pr.step + " (quote, percent)", cur.fetchone(), (f"it's 100% {i}",))
    conn.commit()

    pr.step = "committed transaction"
    cur.execute(f"INSERT INTO {t} (conn, kind, val) VALUES (%s, 'commit', %s)",
                (i, f"c{i}"))
    conn.commit()
    cur.execute(f"SELECT val FROM {t} WHERE conn = %s AND kind = %s",
                (i, "commit"))
    check(pr.step + ": row after commit", cur.fetchall(), [(f"c{i}",)])
    conn.commit()

    pr.step = "rolled-back transaction"
    cur.execute(f"INSERT INTO {t} (conn, kind, val) VALUES (%s, 'rollback', %s)",
                (i, f"r{i}"))
    cur.execute(f"SELECT count(*) FROM {t} WHERE conn = %s AND kind = %s",
                (i, "rollback"))
    check(pr.step + ": row inside the transaction", cur.fetchone(), (1,))
    conn.rollback()
    cur.execute(f"SELECT count(*) FROM {t} WHERE conn = %s AND kind = %s",
                (i, "rollback"))
    check(pr.step + ": row after rollback", cur.fetchone(), (0,))
    conn.commit()

    pr.step = "error mid-transaction"
    cur.execute(f"INSERT INTO {t} (conn, kind, val) VALUES (%s, 'error', %s)",
                (i, f"e{i}"))
    expect_error(cur, "SELECT 1 / %s", (0,), "22012", pr.step + ": 1/0")
    expect_error(cur, "SELECT %s::int", (i,), "25P02",
                 pr.step + ": statement after the error")
    conn.rollback()
    cur.execute(f"SELECT count(*) FROM {t} WHERE conn = %s AND kind = %s",
                (i, "error"))
    check(pr.step + ": row after rollback", cur.fetchone(), (0,))
    cur.execute("SELECT %s::int + 1", (i,))
    check(pr.step + ": query after rollback", cur.fetchone(), (i + 1,))
    conn.commit()

    if common.runs_big(a, i):
        pr.step = "100k-row result"
        cur.execute(common.big_query(a))
        rows = cur.fetchall()
        conn.commit()
        common.check_big_rows(a, rows)
        del rows

    pr.step = "COPY FROM STDIN"
    cur.copy_expert(f"COPY {ct} (conn, n, label) FROM STDIN",
                    io.StringIO(common.copy_payload(a, i)))
    check(pr.step + ": rowcount", cur.rowcount, a.copy_rows)
    conn.commit()
    cur.execute(f"SELECT count(*), sum(n) FROM {ct} WHERE conn = %s", (i,))
    check(pr.step + ": rows stored", cur.fetchone(),
          (a.copy_rows, a.copy_rows * (a.copy_rows + 1) // 2))
    conn.commit()

    pr.step = "COPY TO STDOUT"
    out = io.StringIO()
    cur.copy_expert(common.copy_out_query(a, i), out)
    conn.commit()
    check(pr.step, out.getvalue(), common.copy_out_expected(a, i))
    cur.close()


def connect(a):
    return psycopg2.connect(host=a.host, port=a.port, user=a.user,
                            password=a.password, dbname=a.dbname,
                            connect_timeout=30,
                            application_name="pgmux-driver-psycopg2")


def main():
    a = common.parse_args("psycopg2")
    rep = common.Report(a)
    lock = threading.Lock()
    barrier = threading.Barrier(a.conns, timeout=120)

    setup = connect(a)
    setup.autocommit = True
    with setup.cursor() as cur:
        for sql in common.setup_sql(a):
            cur.execute(sql)

    def thread_main(i):
        pr = Progress()
        conn = None
        try:
            conn = connect(a)
            pr.step = "waiting for all connections"
            barrier.wait()
            workload(a, i, conn, pr)
            with lock:
                rep.done += 1
        except threading.BrokenBarrierError:
            with lock:
                rep.fail(i, pr.step, Mismatch("another connection failed first"))
        except Exception as e:  # noqa: BLE001: every failure is reported
            barrier.abort()
            with lock:
                rep.fail(i, pr.step, e)
        finally:
            if conn is not None:
                conn.close()

    threads = [threading.Thread(target=thread_main, args=(i,), daemon=True)
               for i in range(1, a.conns + 1)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()

    if not rep.failures:
        # Across all connections: only the committed rows survived.
        with setup.cursor() as cur:
            cur.execute(f"SELECT kind, count(*), count(DISTINCT conn) "
                        f"FROM {a.table} GROUP BY kind")
            got = cur.fetchall()
            if got != [("commit", a.conns, a.conns)]:
                rep.fail(0, "final table check",
                         Mismatch(f"rows by kind: got {got!r}, want "
                                  f"[('commit', {a.conns}, {a.conns})]"))
            cur.execute(f"SELECT count(*) FROM {a.copy_table}")
            check_rows = cur.fetchone()[0]
            if check_rows != a.conns * a.copy_rows:
                rep.fail(0, "final COPY table check",
                         Mismatch(f"got {check_rows} rows, want "
                                  f"{a.conns * a.copy_rows}"))
            if not rep.failures:
                for sql in common.teardown_sql(a):
                    cur.execute(sql)
    setup.close()
    return rep.finish()


if __name__ == "__main__":
    sys.exit(main())
