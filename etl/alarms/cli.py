"""`python -m etl alarms list | ack | silence | silences | history`: people act on alarms. Every change
is recorded with who and when (alarm_events, silences)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from etl.settings import EtlSettings

SEVERITY_CHOICES = ("WARNING", "MINOR", "MAJOR", "CRITICAL")  # rules.SEVERITIES, without importing sqlalchemy
STATUS_CHOICES = ("active", "cleared", "acknowledged", "unacknowledged")


def add_arguments(parser: argparse.ArgumentParser, settings: EtlSettings) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--lake", default=settings.lake, help="the lake whose _ops/ops.sqlite to use, unless ETL_OPS_DB"
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")

    ls = actions.add_parser("list", parents=[common], help="alarms, newest first")
    ls.add_argument("--status", nargs="+", choices=STATUS_CHOICES, default=[], help="all must hold")
    ls.add_argument("--severity", nargs="+", choices=SEVERITY_CHOICES, default=[])
    ls.add_argument("--type", nargs="+", default=[], help="robot_incident, door_anomaly, door_failure, ...")
    where = ls.add_mutually_exclusive_group()
    where.add_argument("--store", default="", help="the store's and its doors' alarms")
    where.add_argument("--robot", default="", help="the robot's axes' alarms")
    ls.add_argument("--limit", type=int, default=200)

    ack = actions.add_parser("ack", parents=[common], help="acknowledge an alarm")
    ack.add_argument("id", type=int)
    ack.add_argument("--by", required=True, help="who acknowledges")
    ack.add_argument("--note", default="")

    sil = actions.add_parser("silence", parents=[common], help="suppress an originator's and/or type's notifications")
    sil.add_argument("--originator", default="", help="e.g. Paris/2 or robot-1/axis3")
    sil.add_argument("--type", default="")
    sil.add_argument("--until", required=True, help="ISO 8601 end, e.g. 2024-07-01T18:00:00Z")
    sil.add_argument("--reason", required=True)
    sil.add_argument("--by", required=True)

    actions.add_parser("silences", parents=[common], help="silences not yet ended")

    hist = actions.add_parser("history", parents=[common], help="an alarm's changes: who, when, what")
    hist.add_argument("id", type=int)


def run_alarms(args: argparse.Namespace, settings: EtlSettings) -> int:
    import sqlalchemy as sa

    from etl.alarms import actions
    from etl.alarms.db import open_db, ops_url

    if not settings.ops_db and not Path(args.lake, "_ops", "ops.sqlite").exists():
        raise ValueError(f"no operational database in --lake {args.lake} (_ops/ops.sqlite; the notify step or "
                         "import-csv --stage makes one) and ETL_OPS_DB is not set")  # fmt: skip
    engine = open_db(ops_url(settings.ops_db, args.lake))
    try:
        if args.action == "list":
            f = actions.AlarmFilter(tuple(args.status), tuple(args.severity), tuple(args.type), args.store, args.robot,
                                    args.limit)  # fmt: skip
            show(actions.list_alarms(engine, f), args.json, alarm_line)
        elif args.action == "ack":
            show([actions.acknowledge(engine, args.id, args.by, args.note)], args.json, alarm_line)
        elif args.action == "silence":
            until = option_time("--until", args.until)
            number = actions.silence(engine, args.originator, args.type, until, args.reason, args.by)
            print(json.dumps({"silence": number}) if args.json else f"silence #{number} until {until.isoformat()}")
        elif args.action == "silences":
            show(actions.list_silences(engine), args.json, silence_line)
        else:
            show(actions.history(engine, args.id), args.json, event_line)
    except sa.exc.SQLAlchemyError as exc:  # exit 1, as a failed run
        raise ConnectionError(f"operational database: {exc.__class__.__name__}: {getattr(exc, 'orig', exc)}") from exc
    finally:
        engine.dispose()
    return 0


def option_time(option: str, text: str):
    from etl.client import parse_iso

    try:
        return parse_iso(text)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{option}: {text!r} is not an ISO 8601 time such as 2024-07-01T18:00:00Z") from exc


def show(rows: list[dict], as_json: bool, line) -> None:
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
    else:
        print("\n".join(line(r) for r in rows) if rows else "(none)")


def when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def alarm_line(a: dict) -> str:
    ack = f" by {a['acknowledged_by']}" if a["acknowledged_by"] else ""
    return (f"#{a['id']} {a['severity']:<8} {a['type']:<16} {a['originator']:<16} {a['status']}{ack}; "
            f"first {when(a['first_seen'])}, last {when(a['last_seen'])}, {a['count']} reports"
            + (f", cleared {when(a['cleared_at'])}" if a["cleared_at"] else ""))  # fmt: skip


def event_line(e: dict) -> str:
    sent = f"; notification {e['notification']}" if e["notification"] else ""
    note = f" ({e['note']})" if e["note"] else ""
    return f"{when(e['at'])} {e['what']} {e['severity']} by {e['who']}{note}{sent} [recorded {when(e['recorded_at'])}]"


def silence_line(s: dict) -> str:
    what = " ".join(x for x in (s["originator"], s["type"]) if x)
    return f"#{s['id']} {what} until {when(s['ends_at'])} by {s['created_by']}: {s['reason']}"
