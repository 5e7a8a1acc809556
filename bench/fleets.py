"""Wider fleets for the scale benchmarks: api/fleet.toml with every store's doors multiplied by N.

    python bench/fleets.py 100 /tmp/fleet-100x.toml    # then FLEET_FILE=/tmp/fleet-100x.toml

Everything else (seed, stores' traffic, robots) stays as it is, so the rows grow by N and
nothing else changes. The standard library reads TOML but does not write it: `dumps` below
writes the subset fleet files use (tables, arrays of tables, scalars, dates, lists of scalars).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FLEET = ROOT / "api" / "fleet.toml"


def widened(fleet: dict, factor: int) -> dict:
    """A copy of a parsed fleet with every store's doors multiplied by `factor`."""
    if factor < 1:
        raise ValueError(f"factor: {factor} must be a whole number >= 1")
    stores = [{**s, "doors": int(s["doors"]) * factor} for s in fleet.get("stores", [])]
    return {**fleet, "stores": stores}


def write_widened(factor: int, out: Path, source: Path = DEFAULT_FLEET) -> Path:
    """Write `source` widened by `factor` to `out` (a TOML file for FLEET_FILE); returns `out`."""
    fleet = tomllib.loads(Path(source).read_text())
    out = Path(out)
    out.write_text(
        f"# {source.name} with every store's doors x {factor} (bench/fleets.py)\n" + dumps(widened(fleet, factor))
    )
    return out


def dumps(doc: dict) -> str:
    """TOML text of a document of tables, arrays of tables and scalar values."""
    return "\n".join(_table(doc, []))


def _table(table: dict, path: list[str]) -> list[str]:
    nested = {k: v for k, v in table.items() if isinstance(v, dict) or _is_table_array(v)}
    lines = [f"{_key(k)} = {_value(v)}" for k, v in table.items() if k not in nested]
    for key, value in nested.items():
        here = [*path, key]
        if isinstance(value, dict):
            lines += ["", f"[{'.'.join(map(_key, here))}]", *_table(value, here)]
        else:
            for item in value:
                lines += ["", f"[[{'.'.join(map(_key, here))}]]", *_table(item, here)]
    return lines


def _is_table_array(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string for the text fleets hold
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[0].isdigit():
        print("usage: python bench/fleets.py FACTOR OUT.toml", file=sys.stderr)
        return 2
    print(write_widened(int(argv[0]), Path(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
