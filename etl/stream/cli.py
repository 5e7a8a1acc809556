"""`python -m etl stream`: resolve the sources, build the dataflow and run it on Bytewax (one or more processes)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import urllib.parse
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from etl.settings import EtlSettings
from etl.stream.detectors import DETECTORS
from etl.stream.records import DOORS, ROBOTS, Shape, replay_shape
from etl.stream.step import StepParams

if TYPE_CHECKING:
    import requests

KINDS = ("robots", "doors", "replay")


class StreamSetupError(ValueError):
    """A source or option that cannot work; the message names it."""


def add_parser(commands, settings: EtlSettings) -> None:
    s = commands.add_parser("stream", help="score live readings as they arrive: alerts, dead letters, counts")
    sources = "robots | doors | replay:NAME | file:PATH (NDJSON) | an API stream URL; repeatable"
    s.add_argument("--source", action="append", required=True, help=sources)
    s.add_argument("--api", default=settings.api_url, help="API base URL for robots, doors and replay:NAME")
    s.add_argument("--lake", default=settings.lake)
    s.add_argument("--kind", choices=KINDS, help="what a file: source holds (default robots; robots and doors are "
                   "checked against the --api fleet)")  # fmt: skip
    s.add_argument("--fields", help="comma-separated fields to score (replays and files; default: all columns)")
    s.add_argument("--one-key", action="store_true", help="score all readings of a source under one key")
    s.add_argument("--since", help="ISO 8601 start of a first run (exclusive); default: now (live), start (replay)")
    backfill = "a first live run starts this long before the API's clock (thresholds warm up on it)"
    s.add_argument("--backfill", type=float, default=0.0, metavar="MINUTES", help=backfill)
    s.add_argument("--until", help="ISO 8601 end (exclusive): the job ends when every source gets there")
    s.add_argument("--speed", type=float, default=1.0, help="replay speed (x recorded)")
    s.add_argument("--detector", choices=sorted(DETECTORS), default="hst")
    s.add_argument("--settle", type=int, default=StepParams.settle, help="readings per key that only train")
    s.add_argument("--warmup", type=int, default=StepParams.warmup, help="readings per key that calibrate")
    s.add_argument("--alert-q", type=float, default=StepParams.alert_q, help="ALERT threshold: warm-up quantile")
    s.add_argument("--error-q", type=float, default=StepParams.error_q, help="ERROR threshold: warm-up quantile")
    s.add_argument("-w", "--workers", type=int, default=1, help="workers in this process")
    s.add_argument("-i", "--process-id", type=int, help="this process's index in a cluster (with --addresses)")
    s.add_argument("-a", "--addresses", help="host:port of every process, ';'-separated, the same on each")
    s.add_argument("--recovery", type=Path, help="recovery folder: resume after a kill (created when empty)")
    s.add_argument("--recovery-partitions", type=int, default=2, help="partitions when creating --recovery")
    s.add_argument("--snapshot-seconds", type=float, default=2.0, help="how often state is snapshotted")
    s.add_argument("--sink-parts", type=int, default=4, help="files per date in the lake (fixed for a lake)")
    s.add_argument("--write-scores", action="store_true", help="also keep every score in LAKE/stream/scores")
    s.add_argument("--quiet", action="store_true", help="no alert lines on stdout")
    alarms = ("also feed alerts to the alarms (etl/alarms: the operational database ETL_OPS_DB, else "
              "LAKE/_ops/ops.sqlite), which notify once per state change")  # fmt: skip
    s.add_argument("--alarms", action="store_true", help=alarms)


def run(args: argparse.Namespace, settings: EtlSettings) -> int:
    from bytewax._bytewax import cli_main
    from bytewax.recovery import RecoveryConfig

    from etl.stream import settle_collector
    from etl.stream.flow import build
    from etl.stream.sinks import prepare

    config = job_config(args, settings)
    for params in config.params.values():  # import the detector's library now, not on the first reading
        params.detector.init(params.detector.params, params.n_features)
    prepare()  # and the sink's (pyarrow's lazy import of pandas), not in its first flush
    settle_collector()
    recovery = None
    if args.recovery:
        prepare_recovery(args.recovery, args.recovery_partitions, args.process_id)
        recovery = RecoveryConfig(args.recovery)
    addresses = args.addresses.split(";") if args.addresses else None
    if (args.process_id is None) != (addresses is None):
        raise StreamSetupError("--process-id and --addresses go together (a cluster), or neither")
    try:
        cli_main(build(config), workers_per_process=args.workers, process_id=args.process_id, addresses=addresses,
                 epoch_interval=dt.timedelta(seconds=args.snapshot_seconds), recovery_config=recovery)  # fmt: skip
    except Exception as exc:  # the engine wraps what failed inside the flow: its last line names it
        lines = [line for line in str(exc).splitlines() if line.strip()]
        print(f"error: stream: {lines[-1] if lines else type(exc).__name__}", file=sys.stderr)
        return 1
    return 0


def prepare_recovery(folder: Path, partitions: int, process_id: int | None) -> None:
    """Create the recovery partitions on a first run (process 0 does; the others wait for them)."""
    if any(folder.glob("*.sqlite3")):
        return
    if process_id in (None, 0):
        from bytewax.recovery import init_db_dir

        folder.mkdir(parents=True, exist_ok=True)
        init_db_dir(folder, partitions)
        return
    deadline = time.monotonic() + 60
    while not any(folder.glob("*.sqlite3")):
        if time.monotonic() > deadline:
            raise StreamSetupError(f"--recovery {folder}: no partitions after 60 s (process 0 creates them)")
        time.sleep(0.2)


def job_config(args: argparse.Namespace, settings: EtlSettings):
    from etl.stream.flow import JobConfig
    from etl.stream.sinks import SinkConfig

    for name, value in (("--since", args.since), ("--until", args.until)):
        if value:
            try:
                dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError as exc:
                raise StreamSetupError(f"{name}: {value!r} is not an ISO 8601 time ({exc})") from exc
    if args.speed <= 0 or args.workers < 1 or args.warmup < 1 or args.settle < 0 or args.backfill < 0:
        raise StreamSetupError("--speed, --workers and --warmup must be positive, --settle and --backfill not negative")
    import requests  # the stream's own: the parser is built for every command, whose start-up it was

    session = requests.Session()
    session.trust_env = False
    key = {"X-API-Key": settings.api_key} if settings.api_key else {}  # ETL_API_KEY, as the pulls send it
    session.headers.update(key)
    http, files, shapes, params = [], {}, {}, {}
    for text in args.source:
        name, spec, shape = resolve(text, args, session)
        spec = replace(spec, headers=key) if spec is not None else None
        if name in shapes:
            raise StreamSetupError(f"--source {text}: given twice")
        if spec is None:
            files[name] = text.removeprefix("file:")
        else:
            http.append(spec)
        shape = Shape(shape.kind, shape.key_fields, shape.fields, shape.known, name if args.one_key else None)
        shapes[name] = shape
        params[name] = StepParams(len(shape.fields), DETECTORS[args.detector], args.settle, args.warmup,
                                  args.alert_q, args.error_q, same_ts_ok=args.one_key)  # fmt: skip
    alarms = replace(settings, lake=args.lake) if args.alarms else None
    sink = SinkConfig(args.lake, args.sink_parts, settings.alert_webhook, not args.quiet, args.write_scores,
                      sources=tuple(shapes), alarms=alarms,
                      max_pending_rows=settings.memory_budget_mb * 100)  # fmt: skip
    return JobConfig(tuple(http), files, shapes, params, sink, settings.memory_budget_mb)


def resolve(text: str, args: argparse.Namespace, session: requests.Session) -> tuple:
    """A --source -> (its name, how to read it over HTTP (an HttpSpec) or None for a file, the shape of its lines)."""
    from etl.stream.source import HttpSpec

    if text.startswith("file:"):
        path = Path(text.removeprefix("file:"))
        if not path.is_file():
            raise StreamSetupError(f"--source {text}: no such file")
        kind = args.kind or "robots"
        if kind == "replay":
            if not args.fields:
                raise StreamSetupError("--source file: with --kind replay needs --fields")
            return text, None, replay_shape(args.fields.split(","))
        return text, None, fleet_shape(kind, get_json(session, args.api.rstrip("/") + "/v1/fleet"))
    if text in ("robots", "doors"):
        url = f"{args.api.rstrip('/')}/v1/stream/{text}"
    elif text.startswith("replay:"):
        url = f"{args.api.rstrip('/')}/v1/stream/replay/{text.removeprefix('replay:')}"
    elif text.startswith(("http://", "https://")):
        url = text
    else:
        raise StreamSetupError(f"--source {text!r}: expected robots, doors, replay:NAME, file:PATH or a URL")
    parsed = urllib.parse.urlsplit(url)
    base = f"{parsed.scheme}://{parsed.netloc}{parsed.path.split('/v1/')[0]}"
    params = dict(urllib.parse.parse_qsl(parsed.query))
    path = parsed.path[len(parsed.path.split("/v1/")[0]) :]
    endpoint = urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, parsed.path, "", ""))
    if args.until:
        params["end"] = args.until
    if path.startswith("/v1/stream/replay/"):
        name = path.removeprefix("/v1/stream/replay/")
        listing = {r["name"]: r for r in get_json(session, base + "/v1/replays")}
        if name not in listing:
            raise StreamSetupError(f"--source {text}: no replay {name!r}; known: {', '.join(listing) or 'none'}")
        fields = args.fields.split(",") if args.fields else listing[name]["columns"]
        params.setdefault("speed", str(args.speed))
        spec = HttpSpec(f"replay:{name}", endpoint, params, True, args.since)
        return spec.name, spec, replay_shape(fields)
    if path not in ("/v1/stream/robots", "/v1/stream/doors"):
        raise StreamSetupError(f"--source {text}: not an API stream (/v1/stream/robots, /doors or /replay/NAME)")
    fleet = get_json(session, base + "/v1/fleet")
    kind = path.rsplit("/", 1)[1]
    shape = fleet_shape(kind, fleet)
    since = args.since or iso_minus(fleet["now"], args.backfill)  # a first live start: the API's clock
    query = urllib.parse.urlencode(sorted((k, v) for k, v in params.items() if k != "end"))
    name = kind + (f"?{query}" if query else "")
    return name, HttpSpec(name, endpoint, params, bool(args.until), since), shape


def iso_minus(text: str, minutes: float) -> str:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00")) - dt.timedelta(minutes=minutes)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fleet_shape(kind: str, fleet: dict) -> Shape:
    """Robots or doors, with the sensors the API's fleet knows: any other is an unknown sensor."""
    if kind == "robots":
        return Shape("robots", ROBOTS.key_fields, ROBOTS.fields, frozenset(r["id"] for r in fleet["robots"]))
    known = frozenset(f"{s['name']}/{i}" for s in fleet["stores"] for i in s["sensor_ids"])
    return Shape("doors", DOORS.key_fields, DOORS.fields, known)


def get_json(session: requests.Session, url: str):
    import requests

    try:
        response = session.get(url, timeout=10)
    except requests.RequestException as exc:
        raise ConnectionError(f"{url}: {type(exc).__name__}: {exc}") from exc
    if response.status_code >= 400:
        raise StreamSetupError(f"{url} answered {response.status_code}: {response.text[:300]}")
    return response.json()
