"""`make up` on a fresh clone: how long a new user waits, first start and second start.

    .venv/bin/python bench/stack_bench.py [--runs 3] [--own-venv]

Each run clones the repository's last commit into a temporary folder and times `make up` there
on free ports (the API, the 13-week backfill, Airflow healthy, the dashboard healthy), `make
down`, then a second `make up` (the lake catches up from its watermark) and `make down`. By
default the clone uses this venv (what a user has after a first install); `--own-venv` times
the install into the clone's own `.venv` too (minutes, mostly pip). Prints each run and the
medians.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.stack import Stack  # noqa: E402

STEP_SECONDS = re.compile(r"^(?:pull \w+|transform): .*?(\d+\.\d+) s[;\n]", re.M)  # the backfill's own lines


def backfill_seconds(output: str) -> float:
    return sum(float(s) for s in STEP_SECONDS.findall(output))


def one_run(own_venv: bool) -> dict[str, float]:
    with Stack(own_venv=own_venv) as stack:
        first = stack.up()
        backfill = backfill_seconds(stack.output)
        assert stack.make("down").returncode == 0
        stack.output = ""
        second = stack.up()
        catch_up = backfill_seconds(stack.output)
        assert stack.git_status() == "", stack.git_status()
    return {"first start (s)": first, "13-week backfill in it (s)": backfill, "second start (s)": second,
            "catch-up in it (s)": catch_up}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--own-venv", action="store_true", help="install the clone's own .venv too")
    args = parser.parse_args()
    runs = []
    for i in range(args.runs):
        figures = one_run(args.own_venv)
        runs.append(figures)
        print(f"run {i + 1}: " + ", ".join(f"{k} {v:.1f}" for k, v in figures.items()), flush=True)
    for name in runs[0]:
        values = [r[name] for r in runs]
        print(f"median {name}: {statistics.median(values):.1f} (spread {min(values):.1f} - {max(values):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
