"""Compare every door mart of two lakes: the before/after check of a transform change.

    .venv/bin/python bench/mart_compare.py LAKE_A LAKE_B

Same files, schemas and `part_dates`, rows in the same file order, every value equal, doubles
equal within 1e-9 relative: door_anomalies' parallel double sums add in any order, so between two
runs of the same code its doubles differ in the last bits (the count of rows with a double not
bit-equal is printed). Exit code 1 when a table differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq


def scan(marts: Path, table: str) -> str:
    return f"read_parquet('{marts}/{table}/*/*.parquet', hive_partitioning=false, filename=true)"


def compare(con: duckdb.DuckDBPyConnection, a: Path, b: Path, table: str) -> bool:
    files_a = sorted(str(p.relative_to(a)) for p in Path(a, table).rglob("*.parquet"))
    files_b = sorted(str(p.relative_to(b)) for p in Path(b, table).rglob("*.parquet"))
    schema = con.execute(f"DESCRIBE SELECT * EXCLUDE (filename) FROM {scan(a, table)}").fetchall()
    same_schema = schema == con.execute(f"DESCRIBE SELECT * EXCLUDE (filename) FROM {scan(b, table)}").fetchall()
    rows = [con.execute(f"SELECT count(*) FROM {scan(m, table)}").fetchone()[0] for m in (a, b)]
    differs, ulps = [], []
    for name, kind, *_ in schema:
        c = f'"{name}"'
        if kind == "DOUBLE":
            differs.append(
                f"NOT (x.{c} IS NOT DISTINCT FROM y.{c} OR abs(x.{c} - y.{c}) <= 1e-9 * greatest(1, abs(x.{c})))"
            )
            ulps.append(f"x.{c} IS DISTINCT FROM y.{c}")
        else:
            differs.append(f"x.{c} IS DISTINCT FROM y.{c}")
    # rows paired by position: files read in name order, rows in file order
    pairs = (
        f"(SELECT *, row_number() OVER () AS n_ FROM {scan(a, table)}) x "
        f"JOIN (SELECT *, row_number() OVER () AS n_ FROM {scan(b, table)}) y USING (n_)"
    )
    bad = con.execute(f"SELECT count(*) FROM {pairs} WHERE {' OR '.join(differs)}").fetchone()[0]
    inexact = con.execute(f"SELECT count(*) FROM {pairs} WHERE {' OR '.join(ulps)}").fetchone()[0] if ulps else 0
    meta = sum(
        (pq.read_schema(Path(a, f)).metadata or {}).get(b"part_dates")
        != (pq.read_schema(Path(b, f)).metadata or {}).get(b"part_dates")
        for f in files_a
        if f in files_b
    )
    ok = same_schema and files_a == files_b and rows[0] == rows[1] and bad == 0 and meta == 0
    print(
        f"{table:20s} rows {rows[0]:>9,} / {rows[1]:>9,}  differing {bad}  doubles not bit-equal {inexact}  "
        f"schema {'same' if same_schema else 'DIFFERS'}  files {'same' if files_a == files_b else 'DIFFER'}  "
        f"part_dates differing {meta}  {'ok' if ok else 'MISMATCH'}"
    )
    return ok


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.split("\n\n")[1].strip(), file=sys.stderr)
        return 2
    a, b = (Path(arg, "marts") for arg in sys.argv[1:])
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    tables = sorted(p.name for p in a.iterdir() if p.name.startswith("door_"))
    return 0 if all([compare(con, a, b, t) for t in tables]) else 1


if __name__ == "__main__":
    sys.exit(main())
