"""The trailing 6-hour sums robot_fits.sql fits its trend lines from, computed in numpy.

A helper query (sql/helpers/robot_buckets.sql) aggregates the raw samples per robot, axis and
10-minute bucket; this module adds, for every bucket, the sums of its fit's terms over the 36
buckets before it, and registers them in DuckDB as `robot_bucket_sums`.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

HELPER_SQL = Path(__file__).with_name("sql") / "helpers" / "robot_buckets.sql"


FIT_BUCKETS = 36  # the trend of a robot bucket: the 36 buckets (6 hours) before it
AXES = tuple(f"axis{i}" for i in range(1, 9))


def add_robot_bucket_sums(con: duckdb.DuckDBPyConnection) -> None:
    """Register `robot_bucket_sums`, which robot_fits.sql reads: the bucket aggregates of
    sql/helpers/robot_buckets.sql, one row per robot, axis and bucket with moving samples, with
    the sums over the 36 buckets before it in time of its fit's terms (see robot_fits.sql).

    In numpy because a trailing sum over a dense grid is a few shifted additions of whole
    arrays, where DuckDB's window sums (one core, a sort by robot, axis and bucket, 7 frames)
    took 90 % of robot_fits' time. The sums are exact for x and x² (whole numbers under 2^53),
    rounded like any sum for the others."""
    wide = con.sql(HELPER_SQL.read_text()).to_arrow_table()
    # robot ids as codes 0..robots-1 (Arrow's dictionary encoding: np.unique over Python strings
    # took 7 ms a month)
    codes = wide.column("robot_id").combine_chunks().dictionary_encode()
    robots, robot_of = codes.dictionary, codes.indices.to_numpy()
    bucket = wide.column("bucket_no").to_numpy()
    first = np.full(len(robots), np.iinfo(np.int64).max)
    last = np.full(len(robots), np.iinfo(np.int64).min)
    np.minimum.at(first, robot_of, bucket)
    np.maximum.at(last, robot_of, bucket)
    # A dense grid: each robot's buckets from its first to its last, after FIT_BUCKETS empty
    # rows, so that a row's FIT_BUCKETS predecessors are its 6 hours even across gaps in the
    # data, and never another robot's buckets.
    span = last - first + 1 + FIT_BUCKETS
    start = np.cumsum(span) - span + FIT_BUCKETS
    row = start[robot_of] + bucket - first[robot_of]
    n = np.stack([wide.column(f"n_{a}").to_numpy() for a in AXES], axis=1).astype(np.float64)
    mean = np.stack([wide.column(f"y_{a}").to_numpy(zero_copy_only=False) for a in AXES], axis=1)
    var = np.stack([wide.column(f"v_{a}").to_numpy(zero_copy_only=False) for a in AXES], axis=1)
    moving = n > 0
    x = np.where(moving, 2.0 * (bucket - 2629728)[:, None] + 1, 0.0)
    y = np.where(moving, mean, 0.0)
    at, axis = np.nonzero(moving)  # the output rows: (row of `wide`, axis)
    # the terms, (rows, axis) each, zero without moving samples: one at a time, to keep memory low
    terms = {
        "k": lambda: moving.astype(np.float64),
        "sx": lambda: x,
        "sxx": lambda: x * x,
        "sy": lambda: y,
        "sxy": lambda: x * y,
        "sm2": lambda: np.where(moving, n * var, 0.0),
        "sn": lambda: n,
    }
    sums = {}
    grid = np.zeros((int(span.sum()), len(AXES)))
    for name, term in terms.items():
        grid[row] = term()
        sums[name] = trailing_sums(grid, FIT_BUCKETS)[row][at, axis]
    columns = {
        "robot_id": wide.column("robot_id").take(pa.array(at)),
        "axis": pa.array(AXES).take(pa.array(axis)),  # a numpy string array per row took 12 ms a month
        "bucket_no": bucket[at],
        "samples": wide.column("samples").to_numpy()[at],
        "n": n[at, axis],
        "mean": mean[at, axis],
        "var": var[at, axis],
        "x": x[at, axis],
        **sums,
    }
    con.register("robot_bucket_sums", pa.table(columns))


def trailing_sums(values: np.ndarray, width: int) -> np.ndarray:
    """out[i] = values[i - width:i].sum(axis=0) (rows before the first count as zeros).

    Blocks of 1, 2, 4, ... rows ending at each row, each the sum of two of the one before:
    log2(width) additions of whole arrays, no cumulative sum (which would lose digits)."""
    out = np.zeros_like(values)
    block, spare = values.copy(), np.empty_like(values)  # block[j]: the sum of the `size` rows ending at j
    size, covered = 1, 0  # out[i] holds the `covered` rows before i
    while size <= width:
        if width & size:  # add the block ending just before what out already covers
            out[covered + 1 :] += block[: len(values) - covered - 1]
            covered += size
        spare[:size] = block[:size]
        np.add(block[size:], block[:-size], out=spare[size:])
        block, spare = spare, block
        size *= 2
    return out
