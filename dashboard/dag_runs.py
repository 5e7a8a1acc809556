"""The hourly DAG's last runs from Airflow's REST API (Airflow 3, API v2, simple auth manager).

Two calls, stdlib only (Streamlit Community Cloud has no `requests`): POST /auth/token with the
user and password gives a JWT; GET /api/v2/dags/{dag}/dagRuns?order_by=-run_after&limit=N with
it lists the newest runs. Short timeouts: the page must not hang on an Airflow that is down.
Every failure becomes a `DagRuns` with a plain sentence, never an exception.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

DAG_ID = "sensor_pipeline"
TIMEOUT_SECONDS = 3.0
RUNS = 10


@dataclass(frozen=True)
class DagRuns:
    state: str  # "ok", "not configured", "unreachable", "auth refused", "error"
    message: str  # one sentence for the page
    runs: list[dict] = field(default_factory=list)  # newest first: dag_run_id, state, run_after, ...


def last_runs(url: str, user: str, password: str, dag_id: str = DAG_ID, limit: int = RUNS) -> DagRuns:
    """The DAG's newest runs, or why there are none."""
    if not url:
        return DagRuns("not configured", "Airflow is not configured (set DASHBOARD_AIRFLOW_URL, "
                                         "DASHBOARD_AIRFLOW_USER and DASHBOARD_AIRFLOW_PASSWORD).")  # fmt: skip
    try:
        token = post_json(f"{url}/auth/token", {"username": user, "password": password})["access_token"]
        query = urllib.parse.urlencode({"order_by": "-run_after", "limit": limit})
        path = f"{url}/api/v2/dags/{urllib.parse.quote(dag_id)}/dagRuns?{query}"
        body = get_json(path, token)
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return DagRuns("auth refused", f"Airflow at {url} refused the dashboard's user ({exc.code}): check "
                                           "DASHBOARD_AIRFLOW_USER and DASHBOARD_AIRFLOW_PASSWORD.")  # fmt: skip
        if exc.code == 404:
            return DagRuns("error", f"Airflow at {url} has no DAG {dag_id!r} (404).")
        return DagRuns("error", f"Airflow at {url} answered {exc.code} {exc.reason}.")
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        return DagRuns("unreachable", f"Airflow at {url} is unreachable ({reason}).")
    except (KeyError, ValueError, TypeError):
        return DagRuns("error", f"Airflow at {url} answered something that is not its REST API.")
    runs = list(body.get("dag_runs", []))
    if not runs:
        return DagRuns("ok", f"The DAG {dag_id} has not run yet.", [])
    return DagRuns("ok", summary(runs), runs)


STATE_WORDS = {"success": "succeeded", "failed": "failed", "running": "is running", "queued": "is queued"}


def summary(runs: list[dict]) -> str:
    """One sentence on the newest run and the recent failures."""
    last = runs[0]
    failed = sum(r.get("state") == "failed" for r in runs)
    verb = STATE_WORDS.get(last.get("state"), f"is {last.get('state')}")
    when = last.get("end_date") if last.get("state") in ("success", "failed") else last.get("start_date")
    text = f"The last run ({last.get('dag_run_id')}) {verb}"
    text += f" at {when[:16].replace('T', ' ')} UTC." if when else "."
    if failed:
        text += f" {failed} of the last {len(runs)} runs failed."
    else:
        text += f" None of the last {len(runs)} runs failed."
    return text


def post_json(url: str, payload: dict) -> dict:
    data = json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    return read(request)


def get_json(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
    return read(request)


def read(request: urllib.request.Request) -> dict:
    # No proxy: the dashboard talks to its own Airflow (a proxy from the environment would catch 127.0.0.1).
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=TIMEOUT_SECONDS) as response:
        return json.loads(response.read())
