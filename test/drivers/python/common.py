"""common.py: what every Python driver test shares: connection parameters
(libpq's PG* environment variables, overridable by arguments), the workload's
sizes, the expected values and the failure bookkeeping.

Each driver script opens --conns connections at once and runs the same steps
on each of them (listed in the script's docstring); any mismatch raises
Mismatch, and the script exits 1 after printing the first failures, each
with its connection number and step.
"""

import argparse
import os
import sys
import time

DEFAULT_CONNS = 200
DEFAULT_BIG_ROWS = 100_000
DEFAULT_COPY_ROWS = 1_000


class Mismatch(Exception):
    """A result differs from what the workload expects."""


def parse_args(driver, big_every=1):
    """Connection parameters and sizes; table names derive from the driver.
    big_every: the 100k-row result runs on every connection whose number is
    a multiple of it (1: all); a driver whose row decoding is pure Python
    passes more so that the test stays within its time budget."""
    env = os.environ.get
    p = argparse.ArgumentParser(description=f"{driver} workload through a pooler")
    p.add_argument("--host", default=env("PGHOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(env("PGPORT", "5432")))
    p.add_argument("--user", default=env("PGUSER", "app"))
    p.add_argument("--password", default=env("PGPASSWORD", ""))
    p.add_argument("--dbname", default=env("PGDATABASE", "appdb"))
    p.add_argument("--conns", type=int,
                   default=int(env("DRIVER_CONNS", str(DEFAULT_CONNS))))
    p.add_argument("--big-rows", type=int,
                   default=int(env("DRIVER_BIG_ROWS", str(DEFAULT_BIG_ROWS))))
    p.add_argument("--big-every", type=int,
                   default=int(env("DRIVER_BIG_EVERY", str(big_every))))
    p.add_argument("--copy-rows", type=int,
                   default=int(env("DRIVER_COPY_ROWS", str(DEFAULT_COPY_ROWS))))
    a = p.parse_args()
    a.driver = driver
    a.table = f"drv_{driver}"
    a.copy_table = f"drv_{driver}_copy"
    return a


def check(what, got, want):
    if got != want:
        raise Mismatch(f"{what}: got {got!r}, want {want!r}")


def check_sqlstate(what, exc, want):
    """exc is the driver's exception; its SQLSTATE must be want."""
    got = (getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None))
    if got != want:
        raise Mismatch(f"{what}: got SQLSTATE {got!r} ({type(exc).__name__}: "
                       f"{str(exc).strip()}), want {want}")


def setup_sql(a):
    """Statements that (re)create the two tables, run once before the load."""
    return [
        f"DROP TABLE IF EXISTS {a.table}",
        f"DROP TABLE IF EXISTS {a.copy_table}",
        f"CREATE TABLE {a.table} (conn int NOT NULL, kind text NOT NULL, "
        f"val text NOT NULL)",
        f"CREATE TABLE {a.copy_table} (conn int NOT NULL, n int NOT NULL, "
        f"label text NOT NULL)",
    ]


def teardown_sql(a):
    return [f"DROP TABLE {a.table}", f"DROP TABLE {a.copy_table}"]


def runs_big(a, conn):
    """Does connection conn (1-based) run the big result?"""
    return conn % max(a.big_every, 1) == 0


def big_query(a):
    """100k rows: g and a text derived from it, so every row can be checked."""
    return f"SELECT g, 'row ' || g FROM generate_series(1, {int(a.big_rows)}) g"


def check_big_rows(a, rows):
    """rows: a sequence of (int, str). Checks count, order, content, checksum."""
    check("big result row count", len(rows), a.big_rows)
    total = 0
    for k, (g, label) in enumerate(rows, 1):
        if g != k or label != f"row {k}":
            raise Mismatch(f"big result row {k}: got ({g!r}, {label!r}), "
                           f"want ({k}, 'row {k}')")
        total += g
    check("big result checksum sum(g)", total, a.big_rows * (a.big_rows + 1) // 2)


def copy_payload(a, conn):
    """COPY text-format data for one connection (conn, n, label)."""
    return "".join(f"{conn}\t{n}\tlabel {conn}/{n}\n"
                   for n in range(1, a.copy_rows + 1))


def copy_out_expected(a, conn):
    """What COPY (SELECT n, label ... ORDER BY n) TO STDOUT must return."""
    return "".join(f"{n}\tlabel {conn}/{n}\n" for n in range(1, a.copy_rows + 1))


def copy_out_query(a, conn):
    return (f"COPY (SELECT n, label FROM {a.copy_table} WHERE conn = {int(conn)} "
            f"ORDER BY n) TO STDOUT")


class Report:
    """Collects per-connection failures; finish() prints and sets the exit code."""

    def __init__(self, a):
        self.a = a
        self.start = time.monotonic()
        self.failures = []
        self.done = 0

    def fail(self, conn, step, exc):
        kind = "" if isinstance(exc, Mismatch) else f"{type(exc).__name__}: "
        state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
        if state and not isinstance(exc, Mismatch):
            kind += f"[{state}] "
        # First line only: some drivers append long hints (asyncpg's about
        # pgbouncer); the SQLSTATE and primary message say what happened.
        lines = str(exc).strip().splitlines() or [""]
        self.failures.append(f"conn {conn}, step {step}: {kind}{lines[0]}")

    def finish(self):
        a = self.a
        secs = time.monotonic() - self.start
        if self.failures:
            print(f"{a.driver}: FAILED on {len(self.failures)} of {a.conns} "
                  f"connections ({secs:.1f} s); first failures:", file=sys.stderr)
            for f in self.failures[:10]:
                print(f"  {f}", file=sys.stderr)
            sys.stderr.flush()
            return 1
        if self.done != a.conns:
            print(f"{a.driver}: FAILED: {self.done} of {a.conns} connections "
                  f"finished", file=sys.stderr)
            return 1
        big = a.conns // max(a.big_every, 1)
        print(f"{a.driver}: {a.conns} connections ok: parametrised queries, "
              f"commit, rollback, error mid-transaction, {a.big_rows}-row "
              f"result (on {big}), COPY in/out ({secs:.1f} s)")
        return 0
