"""The ETL command line: `python -m etl pull | status | transform | snapshot | import-csv | sites | alarms
| stream | quality | models` (each with --help).

Exit codes: 0 done; 1 the run failed (API unreachable after retries, lake locked);
2 bad input (arguments, dates, a CSV that cannot be read). Failures print one line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from contract.times import parse_instant as parse_iso
from etl.datasets import DATASETS, dataset
from etl.lake import Lake, LakeBusy
from etl.settings import EtlSettings
from etl.status import format_status, lake_status


def build_parser(settings: EtlSettings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m etl", description="Sensor lake: extract, load and inspect.")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("pull", help="pull new readings from the API into the lake")
    p.add_argument("--api", default=settings.api_url, help=f"API base URL (ETL_API_URL; default {settings.api_url})")
    p.add_argument("--lake", default=settings.lake, help="lake folder or URI such as s3://bucket/lake (ETL_LAKE)")
    p.add_argument("--kind", choices=[*DATASETS, "all"], default="all")
    p.add_argument(
        "--start", help="ISO 8601 start; default: the lake's watermark (first run: ETL_FIRST_PULL_DAYS back)"
    )
    p.add_argument("--end", help="ISO 8601 end (exclusive); default: the newest data the API has")

    s = commands.add_parser("status", help="watermarks, rows, partitions, last run, quarantined rows")
    s.add_argument("--lake", default=settings.lake)
    s.add_argument("--json", action="store_true", help="machine-readable output")

    t = commands.add_parser("transform", help="compute the marts (etl/sql/*.sql) from the raw lake")
    t.add_argument("--lake", default=settings.lake)
    t.add_argument("--full", action="store_true", help="rebuild every date, not only the changed ones")
    t.add_argument(
        "--at-once",
        type=int,
        default=0,
        metavar="N",
        help="units computed side by side, sharing ETL_MEMORY_BUDGET_MB and the cores "
        "(default 0: one at a time with every core; an hourly increment's tiny units side by side)",
    )

    n = commands.add_parser("snapshot", help="write the dashboard's small snapshot of the lake's recent marts")
    n.add_argument("--lake", default=settings.lake)
    n.add_argument(
        "--out",
        type=Path,
        default=Path(settings.snapshot_dir),
        help=f"snapshot folder (ETL_SNAPSHOT_DIR; default {settings.snapshot_dir}); "
        "`--out streamlit_data` refreshes the committed one that Streamlit Community Cloud reads",
    )

    i = commands.add_parser("import-csv", help="load a recorded CSV with the same validation as a pull")
    i.add_argument("file", type=Path)
    i.add_argument("--kind", choices=list(DATASETS), required=True)
    i.add_argument("--map", required=True, help="SOURCE=TARGET pairs, e.g. 'Time=ts,Axis #1=axis1,...'")
    i.add_argument("--lake", default=settings.lake)
    i.add_argument("--robot-id", help="robot_id for every row, when the file has no such column")
    i.add_argument("--store", help="store for every row, when the file has no such column")
    i.add_argument("--sensor-id", help="door (sensor_id) for every row, e.g. to load a door's `in` and `out` "
                   "columns as two sensors, one import each")  # fmt: skip
    i.add_argument("--stage", action="store_true", help="also upsert the validated rows into the operational "
                   "database's staging_doors / staging_robots (ETL_OPS_DB; default LAKE/_ops/ops.sqlite)")  # fmt: skip

    r = commands.add_parser("sites", help="the site registry: stores and robots the lake's readings belong to")
    actions = r.add_subparsers(dest="action", required=True)
    load = actions.add_parser("load", help="check a TOML or JSON file of stores and robots, and register them")
    load.add_argument("file", type=Path)
    load.add_argument("--lake", default=settings.lake)
    show = actions.add_parser("list", help="the registered stores and robots")
    show.add_argument("--lake", default=settings.lake)
    show.add_argument("--json", action="store_true", help="machine-readable output")
    add_alarms_parser(commands, settings)

    from etl.stream.cli import add_parser as add_stream_parser

    add_stream_parser(commands, settings)
    q = commands.add_parser("quality", help="score the detectors against ground truth: marts detector_scores/_slices")
    q.add_argument("--lake", default=settings.lake)
    q.add_argument("--api", default=settings.api_url, help="API whose /v1/events is the lake detectors' ground truth")
    q.add_argument("--csv", type=Path, action="append", default=[],
                   help="a labelled SKAB-format CSV (repeatable): score the online detectors on it")  # fmt: skip
    q.add_argument("--model", action="append", default=[],
                   help="with --csv: also score a registered model, NAME or NAME@VERSION (repeatable)")  # fmt: skip

    mo = commands.add_parser(
        "models", help="the model registry (MLflow, SQLite in LAKE/_mlflow): train, list, show, load"
    )
    acts = mo.add_subparsers(dest="action", required=True)
    tr = acts.add_parser("train", help="fit the LightGBM baseline on labelled CSVs, score it time-ordered, register it")
    tr.add_argument("--csv", type=Path, action="append", required=True, help="a labelled SKAB-format CSV (repeatable)")
    tr.add_argument("--name", default="skab-lightgbm")
    tr.add_argument("--lake", default=settings.lake)
    ls = acts.add_parser("list", help="every version of every registered model")
    ls.add_argument("--lake", default=settings.lake)
    ls.add_argument("--json", action="store_true")
    for action in ("show", "load"):
        a = acts.add_parser(action, help="a version's parameters, metrics and data version" if action == "show"
                            else "load a version and check it predicts (with --csv: its alarms there)")  # fmt: skip
        a.add_argument("model", help="NAME or NAME@VERSION (default: the newest version)")
        a.add_argument("--lake", default=settings.lake)
        if action == "load":
            a.add_argument("--csv", type=Path, help="a CSV with the model's columns to predict on")
        else:
            a.add_argument("--json", action="store_true")
    return parser


def add_alarms_parser(commands, settings: EtlSettings) -> None:
    from etl.alarms.cli import add_arguments

    add_arguments(commands.add_parser("alarms", help="list, acknowledge and silence alarms (the operational database)"),
                  settings)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    try:
        settings = EtlSettings.from_env()
    except ValueError as exc:
        return fail(2, str(exc))
    args = build_parser(settings).parse_args(argv)
    try:
        if args.command == "pull":
            return run_pull(args, settings)
        if args.command in ("status", "transform", "snapshot"):
            existing_lake(args.lake)
        if args.command == "status":
            status = lake_status(Lake(args.lake))
            print(json.dumps(status, indent=2) if args.json else format_status(status))
            return 0
        if args.command == "transform":
            from etl.transform import TransformParams, transform  # duckdb: only this command needs it

            if args.at_once < 0:
                raise ValueError(f"--at-once {args.at_once}: give 0 (one unit per core) or more")

            print(
                transform(
                    Lake(args.lake),
                    TransformParams(),
                    full=args.full,
                    lock_timeout=settings.lock_timeout,
                    settings=settings,
                    at_once=args.at_once,
                ).line()
            )
            return 0
        if args.command == "snapshot":
            from etl.snapshot import write_snapshot

            print(write_snapshot(Lake(args.lake), args.out).line())
            return 0
        if args.command == "sites":
            return run_sites(args)
        if args.command == "quality":
            return run_quality(args, settings)
        if args.command == "models":
            return run_models(args)
        if args.command == "alarms":
            from etl.alarms.cli import run_alarms

            return run_alarms(args, settings)
        if args.command == "stream":
            from etl.stream.cli import run as run_stream  # bytewax and river: only this command needs them

            return run_stream(args, settings)
        return run_import(args, settings)
    except (*api_errors(), LakeBusy, ConnectionError) as exc:  # ConnectionError: the operational database, a stream
        return fail(1, str(exc))
    except ValueError as exc:  # CsvImportError too
        return fail(2, str(exc))
    except OSError as exc:
        return fail(1, f"lake {getattr(args, 'lake', '')}: {exc}")


def api_errors() -> tuple[type[Exception], ...]:
    """ApiError, once a command has loaded the API client: the client (requests) and the pull
    (pandas) are imported only by the commands that call the API, which took a fifth of a
    second off every other command's start-up (`transform` is timed as a whole process)."""
    client = sys.modules.get("etl.client")
    return (client.ApiError,) if client else ()


def run_import(args: argparse.Namespace, settings: EtlSettings) -> int:
    from etl.importcsv import import_csv  # pandas: only this command needs it

    given = (("robot_id", args.robot_id), ("store", args.store), ("sensor_id", args.sensor_id))
    constants = {k: v for k, v in given if v}
    engine = None
    if args.stage:
        from etl.alarms.db import open_db, ops_url

        engine = open_db(ops_url(settings.ops_db, args.lake))
    try:
        summary = import_csv(Lake(args.lake), dataset(args.kind), args.file, args.map, settings, constants, engine)
    finally:
        if engine is not None:
            engine.dispose()
    print(summary.line())
    return 0


def run_pull(args: argparse.Namespace, settings: EtlSettings) -> int:
    from etl.client import ApiClient
    from etl.progress import Progress
    from etl.pull import pull

    start = option_time("--start", args.start)
    end = option_time("--end", args.end)
    if start and end and start >= end:
        return fail(2, f"--start ({args.start}) must be before --end ({args.end})")
    settings = EtlSettings(**{**settings.__dict__, "api_url": args.api, "lake": args.lake})
    client = ApiClient(settings, log=lambda line: print(line, file=sys.stderr))
    lake = Lake(args.lake)
    kinds = list(DATASETS) if args.kind == "all" else [args.kind]
    try:
        for kind in kinds:
            print(pull(client, lake, dataset(kind), settings, start, end, Progress()).line())
    finally:
        client.close()
    return 0


def run_quality(args: argparse.Namespace, settings: EtlSettings) -> int:
    import datetime as dt

    from etl.client import ApiClient
    from etl.quality.registry import Registry, RegistryError, parse_ref, store_errors
    from etl.quality.run import quality
    from etl.transform import TransformParams

    missing = [str(p) for p in args.csv if not p.is_file()]
    if missing:
        return fail(2, f"--csv {', '.join(missing)}: no such file")
    if args.model and not args.csv:
        return fail(2, "--model needs --csv: a model is scored on a labelled data set")
    if not args.csv:
        existing_lake(args.lake)
    refs = [parse_ref(text) for text in args.model]
    try:
        with store_errors(Path(args.lake) / "_mlflow"):
            loaded = [Registry(args.lake).load(name, version) for name, version in refs]
    except RegistryError as exc:
        return fail(1, str(exc))
    models = {model.version: model for model in loaded}  # NAME@VERSION: the detector's name in the marts
    settings = EtlSettings(**{**settings.__dict__, "api_url": args.api, "lake": args.lake})
    client = None if args.csv else ApiClient(settings, log=lambda line: print(line, file=sys.stderr))
    try:
        now = dt.datetime.now(dt.UTC)
        outcome = quality(Lake(args.lake), client, args.csv, TransformParams(), now, models, settings.lock_timeout)
    finally:
        if client:
            client.close()
    print(outcome.line())
    return 0


def run_models(args: argparse.Namespace) -> int:
    from etl.quality.registry import RegistryError, store_errors

    registry_root = Path(args.lake) / "_mlflow"
    try:
        with store_errors(registry_root):
            return models_action(args)
    except RegistryError as exc:
        return fail(1, str(exc))


def models_action(args: argparse.Namespace) -> int:
    from etl.quality.registry import Registry, parse_ref

    registry = Registry(args.lake)
    if args.action == "train":
        from etl.quality.run import train

        missing = [str(p) for p in args.csv if not p.is_file()]
        if missing:
            return fail(2, f"--csv {', '.join(missing)}: no such file")
        print(f"registered {train(Lake(args.lake), args.csv, args.name).line()}")
    elif args.action == "list":
        versions = registry.versions()
        if args.json:
            print(json.dumps([v.__dict__ for v in versions], indent=2))
        else:
            print("\n".join(v.line() for v in versions) or f"no models registered in {registry.root}")
    elif args.action == "show":
        found = registry.show(*parse_ref(args.model))
        print(json.dumps(found.__dict__, indent=2) if args.json else found.line() + "\n" + json.dumps(
            {"params": found.params, "metrics": found.metrics}, indent=2))  # fmt: skip
    else:
        model = registry.load(*parse_ref(args.model))
        line = f"loaded {model.version}: {model.booster.num_trees()} trees over {list(model.columns)}"
        if args.csv:
            from etl.quality.run import read_labelled

            alarms = model.alarms(read_labelled(args.csv))
            line += f"; {int(alarms.sum())} alarms in {len(alarms)} rows of {args.csv}"
        print(line)
    return 0


def run_sites(args: argparse.Namespace) -> int:
    from etl import sites

    lake = Lake(args.lake)
    if args.action == "load":
        registry = sites.load(lake, args.file)
        print(f"sites: {args.file} registered in {lake.uri}\n{sites.listing(registry)}")
    elif args.json:
        print(json.dumps(lake.read_fleet(), indent=2, sort_keys=True))
    else:
        print(sites.listing(lake.read_fleet()))
    return 0


def existing_lake(uri: str) -> Lake:
    """The lake a reading command works on, which a pull or an import must have made."""
    lake = Lake(uri)
    if not lake.exists():
        raise ValueError(f"--lake {uri}: no lake there (no raw/ or _state/; a pull or import-csv makes one)")
    return lake


def option_time(option: str, text: str | None):
    if not text:
        return None
    try:
        return parse_iso(text)
    except (ValueError, OverflowError) as exc:  # 9999-12-31T23:00:00-14:00 is past the year 9999 in UTC
        raise ValueError(f"{option}: {text!r} is not an ISO 8601 time such as 2024-07-01T00:00:00Z ({exc})") from exc


def fail(code: int, message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
