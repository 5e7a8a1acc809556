"""Shared test helpers: a real API server on 127.0.0.1 in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
PINNED_NOW = "2025-01-01T00:00:00Z"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def airflow_env(home: Path, **variables: str) -> dict[str, str]:
    """The environment of `airflow dags test` on this repository's DAGs, with `variables` on top,
    its own SQLite database under `home` migrated."""
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "PYTHONPATH": str(ROOT),
        "SENSOR_DAG_START": "2024-12-01T00:00:00+00:00",
        **variables,
    }
    migrate = subprocess.run([AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    if migrate.returncode != 0:
        raise AssertionError(migrate.stderr[-3000:])
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    """Terminate a child process, and kill it if it does not end within 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class ApiServer:
    """`uvicorn api.app:app` on a free port; a context manager that always stops it."""

    def __init__(self, **env: str) -> None:
        self.env = {"SIM_NOW": PINNED_NOW, **env}
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.session = requests.Session()
        self.session.trust_env = False

    def __enter__(self) -> ApiServer:
        env = {**os.environ, **self.env}
        cmd = [sys.executable, "-m", "uvicorn", "api.app:app", "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(
            [*cmd, "--log-level", "warning"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"API server exited: {self.process.stdout.read().decode()}")
            try:
                if self.session.get(self.base + "/health", timeout=1).ok:
                    return self
            except requests.ConnectionError:
                time.sleep(0.1)
        self.__exit__(None, None, None)
        raise RuntimeError("API server did not become healthy within 30 s")

    def __exit__(self, *exc) -> None:
        self.session.close()
        if self.process:
            stop(self.process)
        if self.process and self.process.stdout:
            self.process.stdout.close()

    def get(self, path: str, **params) -> requests.Response:
        return self.session.get(self.base + path, params=params, timeout=60)


class FaultyProxy:
    """A fault-injecting HTTP proxy in front of a real API, on 127.0.0.1.

    A `fail_rate` share of requests is answered with a 500, stalls longer than the
    client waits, or has its body cut short (half the bytes, then the connection
    closes). Faults are spread evenly over the requests and their kinds take turns, so
    every run meets each kind, whatever order concurrent requests arrive in.
    """

    def __init__(self, upstream: str, fail_rate: float = 0.3, stall_seconds: float = 3.0) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        lock, kinds = threading.Lock(), ("500", "stall", "cut")
        served = [0]
        self.counts = {"ok": 0, "500": 0, "stall": 0, "cut": 0}
        counts, session = self.counts, requests.Session()
        session.trust_env = False

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with lock:
                    served[0] += 1
                    n = served[0]
                    faults_so_far = int(n * fail_rate)
                    faulty = faults_so_far > int((n - 1) * fail_rate)
                    fault = kinds[(faults_so_far - 1) % 3] if faulty else "ok"
                    counts[fault] += 1
                if fault == "500":
                    self._send(500, b'{"detail":"injected"}', {})
                    return
                if fault == "stall":
                    time.sleep(stall_seconds)
                upstream_response = session.get(upstream + self.path, timeout=60)
                body = upstream_response.content
                headers = {k: v for k, v in upstream_response.headers.items() if k.lower().startswith("x-")}
                headers["Content-Type"] = upstream_response.headers.get("content-type", "application/octet-stream")
                if fault == "cut":
                    self._send(upstream_response.status_code, body[: len(body) // 2], headers, claimed=len(body))
                    self.close_connection = True
                    return
                self._send(upstream_response.status_code, body, headers)

            def _send(self, status: int, body: bytes, headers: dict, claimed: int | None = None) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(claimed if claimed is not None else len(body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)  # the client may give up first

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultyProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class AlertReceivers:
    """A webhook (HTTP POST, JSON) and a minimal SMTP server on 127.0.0.1 that keep what they get.

    `webhook_status` lets a test make the webhook fail."""

    def __init__(self) -> None:
        import socketserver
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.posts: list[dict] = []
        self.mails: list[str] = []
        self.webhook_status = 200
        receivers = self

        class Webhook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receivers.webhook_status < 300:
                    receivers.posts.append(json.loads(body))
                self.send_response(receivers.webhook_status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        class Smtp(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                self.wfile.write(b"220 test SMTP\r\n")
                while line := self.rfile.readline():
                    verb = line[:4].upper()
                    if verb == b"DATA":
                        self.wfile.write(b"354 go on\r\n")
                        data = b"".join(iter(self.rfile.readline, b".\r\n"))
                        receivers.mails.append(data.decode())
                        self.wfile.write(b"250 queued\r\n")
                    elif verb == b"QUIT":
                        self.wfile.write(b"221 bye\r\n")
                        return
                    else:  # EHLO, MAIL, RCPT, RSET, NOOP
                        self.wfile.write(b"250 ok\r\n")

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
        self.smtp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Smtp)
        self.http.daemon_threads = self.smtp.daemon_threads = True
        self.webhook_url = f"http://127.0.0.1:{self.http.server_address[1]}/alerts"
        self.smtp_port = self.smtp.server_address[1]
        self.threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (self.http, self.smtp)]

    def __enter__(self) -> AlertReceivers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for server in (self.http, self.smtp):
            server.shutdown()
            server.server_close()
