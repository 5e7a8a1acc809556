"""The site registry: what the lake's readings belong to, independent of any simulator.

Stores (time zone, doors, opening hours or none: open around the clock) and robots (axes with
their reference levels, sampling interval) live in `LAKE/reference/fleet.json`, the file the
transform, the audit and the dashboard read. Two writers keep it:

- a pull merges in the sites of the API's `/v1/fleet` (`"source": "api"`);
- `python -m etl sites load FILE` merges in sites described by hand, in TOML or JSON
  (`"source": "file"`), for a client's real counters that no API serves. A pull never
  overwrites a site loaded by hand.

A file is checked whole before anything is written; every problem names its field
(`stores[1].timezone: ...`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import tomllib
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contract.schemas import AXES
from contract.times import parse_instant
from etl.lake import Lake

SOURCES = ("api", "file")


class SiteError(ValueError):
    """A site description that cannot be registered; the message names every bad field."""


def read_file(path: Path) -> dict:
    """A sites file, TOML (`.toml`) or JSON (anything else)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SiteError(f"{path}: {exc.strerror or exc}") from exc
    try:
        raw = tomllib.loads(text) if Path(path).suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise SiteError(f"{path}: not valid {'TOML' if str(path).endswith('.toml') else 'JSON'}: {exc}") from exc
    if not isinstance(raw, dict):
        raise SiteError(f"{path}: expected a table with `stores` and/or `robots`")
    return raw


def normalise(raw: dict, source: str) -> dict:
    """Checked, complete site entries {"stores": [...], "robots": [...]}, or SiteError listing every problem."""
    problems: list[str] = []
    unknown = sorted(set(raw) - {"stores", "robots", "seed"})
    if unknown and source == "file":  # an API's fleet may say more (its clock, say)
        problems.append(f"unknown key(s) {', '.join(unknown)}: a sites file has `stores` and `robots`")
    stores = [_store(s, f"stores[{i}]", source, problems) for i, s in enumerate(_list(raw, "stores", problems))]
    robots = [_robot(r, f"robots[{i}]", source, problems) for i, r in enumerate(_list(raw, "robots", problems))]
    for kind, entries, key in (("stores", stores, "name"), ("robots", robots, "id")):
        names = [e[key] for e in entries if e]
        for name in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"{kind}: {key} {name!r} appears more than once")
    if problems:
        raise SiteError("; ".join(problems))
    return {"stores": stores, "robots": robots}


def merge(current: dict, incoming: dict) -> dict:
    """The registry with `incoming`'s sites added or replaced by name. A site loaded by hand is kept
    against the API's: a pull never undoes `sites load`."""
    merged = {k: v for k, v in {**current, **incoming}.items() if k not in ("stores", "robots") and v is not None}
    for kind, key in (("stores", "name"), ("robots", "id")):
        by_name = {e[key]: e for e in current.get(kind, [])}
        for entry in incoming.get(kind, []):
            held = by_name.get(entry[key])
            if held is None or held.get("source") != "file" or entry.get("source") == "file":
                by_name[entry[key]] = entry
        merged[kind] = sorted(by_name.values(), key=lambda e: e[key])
    return merged


def register(lake: Lake, incoming: dict, owner: str = "", lock_timeout: float = 600.0) -> dict:
    """Merge checked sites into the lake's registry (one atomic write); returns the new registry.
    Under the lake's `sites` lock: the two pulls and `sites load` read, merge and write it, and
    none may lose another's sites. `owner`: the writer's lock scope, which owns its temporary
    file (see Lake.write_bytes)."""
    with lake.lock(lock_timeout, "sites"):
        registry = merge(lake.read_fleet(), incoming)
        lake.write_bytes(lake.fleet_file(), json.dumps(registry, indent=2, sort_keys=True).encode(), owner)
    return registry


def load(lake: Lake, path: Path) -> dict:
    """`sites load FILE`: check the whole file, then register it."""
    return register(lake, normalise(read_file(path), "file"))


def listing(registry: dict) -> str:
    """`sites list`: one line per store and robot."""
    lines = []
    for s in registry.get("stores", []):
        hours = (f"open {s['open_hour']:02d}-{s['close_hour']:02d}h, closed {_weekdays(s['closed_weekdays'])}"
                 if s.get("open_hour") is not None else "open around the clock")  # fmt: skip
        lines.append(f"store {s['name']} ({s['timezone']}): {len(s['sensor_ids'])} doors "
                     f"{_ids(s['sensor_ids'])}, {hours}; from {s.get('source', 'api')}")  # fmt: skip
    for r in registry.get("robots", []):
        axes = ", ".join(a["name"] for a in r.get("axes", [])) or "no reference axes"
        rate = f"every {r['sample_seconds']:g} s" if r.get("sample_seconds") else "any rate"
        lines.append(f"robot {r['id']}: {axes}; samples {rate}; from {r.get('source', 'api')}")
    return "\n".join(lines) or "no sites registered: python -m etl pull, or python -m etl sites load FILE"


def door_ids(registry: dict) -> dict[str, set[int]]:
    """store -> its door ids."""
    return {s["name"]: set(s.get("sensor_ids", range(int(s.get("doors", 0))))) for s in registry.get("stores", [])}


def robot_ids(registry: dict) -> set[str]:
    return {r["id"] for r in registry.get("robots", [])}


# -- checks --------------------------------------------------------------------------------------


def _list(raw: dict, key: str, problems: list[str]) -> list[dict]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        problems.append(f"{key}: expected a list of tables")
        return []
    return value


def _store(s: dict, where: str, source: str, problems: list[str]) -> dict:
    out: dict = {"source": source}
    name = s.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"{where}.name: a non-empty text is required")
    out["name"] = name.strip() if isinstance(name, str) else name
    zone = s.get("timezone")
    try:
        ZoneInfo(str(zone))
        out["timezone"] = str(zone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"{where}.timezone: {zone!r} is not a time zone such as Europe/Paris")
    out["sensor_ids"] = _doors(s, where, problems)
    out["doors"] = len(out["sensor_ids"])
    if "opened_at" in s or "opened" in s:
        out["opened_at"] = _instant(s.get("opened_at", s.get("opened")), f"{where}.opened_at", problems)
    hours = [k for k in ("open_hour", "close_hour", "closed_weekdays") if k in s]
    if hours:  # opening hours; none at all: open around the clock
        lo, hi = s.get("open_hour", 0), s.get("close_hour", 24)
        if not (_int(lo) and _int(hi) and 0 <= lo < hi <= 24):
            problems.append(f"{where}.open_hour/close_hour: need whole hours 0 <= open_hour < close_hour <= 24")
        closed = s.get("closed_weekdays", [])
        if not (isinstance(closed, list) and all(_int(d) and 0 <= d <= 6 for d in closed)):
            problems.append(f"{where}.closed_weekdays: a list of weekdays 0 (Monday) .. 6 (Sunday)")
            closed = []
        out.update(open_hour=lo, close_hour=hi, closed_weekdays=sorted(set(closed)))
    return out


def _doors(s: dict, where: str, problems: list[str]) -> list[int]:
    if "sensor_ids" in s:
        ids = s["sensor_ids"]
        if isinstance(ids, list) and ids and all(_int(i) and i >= 0 for i in ids) and len(set(ids)) == len(ids):
            return sorted(ids)
        problems.append(f"{where}.sensor_ids: a list of distinct door numbers >= 0")
        return []
    doors = s.get("doors")
    if _int(doors) and doors >= 1:
        return list(range(doors))
    problems.append(f"{where}.doors: a whole number of doors >= 1 (or sensor_ids: a list of door numbers)")
    return []


def _robot(r: dict, where: str, source: str, problems: list[str]) -> dict:
    out: dict = {"source": source}
    ident = r.get("id")
    if not isinstance(ident, str) or not ident.strip():
        problems.append(f"{where}.id: a non-empty text is required")
    out["id"] = ident.strip() if isinstance(ident, str) else ident
    if "sample_seconds" in r:
        seconds = r["sample_seconds"]
        if not (_number(seconds) and seconds > 0):
            problems.append(f"{where}.sample_seconds: a positive number of seconds")
        out["sample_seconds"] = seconds
    if "installed" in r:
        out["installed"] = _instant(r["installed"], f"{where}.installed", problems)[:10]
    axes = r.get("axes", [])
    if not isinstance(axes, list):
        problems.append(f"{where}.axes: a list of {{name, mean, std}}")
        axes = []
    out["axes"] = []
    for j, a in enumerate(axes):
        here = f"{where}.axes[{j}]"
        if not isinstance(a, dict) or a.get("name") not in AXES:
            problems.append(f"{here}.name: one of {', '.join(AXES)}")
            continue
        if not (_number(a.get("mean")) and _number(a.get("std")) and a["std"] > 0):
            problems.append(f"{here}: mean and std must be finite numbers, std > 0")
            continue
        out["axes"].append({"name": a["name"], "mean": float(a["mean"]), "std": float(a["std"])})
    return out


def _instant(value, where: str, problems: list[str]) -> str | None:
    try:
        if isinstance(value, dt.datetime):
            stamp = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        elif isinstance(value, dt.date):
            stamp = dt.datetime.combine(value, dt.time(), dt.UTC)
        else:
            stamp = parse_instant(str(value))
        return stamp.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError):
        problems.append(f"{where}: {value!r} is not a date or ISO 8601 time")
        return None


def _int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _weekdays(days: list[int]) -> str:
    names = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    return ", ".join(names[d] for d in days) or "never"


def _ids(ids: list[int]) -> str:
    if ids and ids == list(range(ids[0], ids[-1] + 1)):
        return f"{ids[0]}-{ids[-1]}" if len(ids) > 1 else str(ids[0])
    return ",".join(map(str, ids))
