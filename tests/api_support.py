"""Test helpers for the API: an app built in the test (a fault injected), served by a real uvicorn."""

from __future__ import annotations

import threading
import time

import requests
import uvicorn
from fastapi import FastAPI

from tests.support import free_port


class InProcessServer:
    """uvicorn serving `app` on 127.0.0.1 in a thread: for apps a test builds, such as one with a fault."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="critical", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="test-uvicorn")
        self.session = requests.Session()
        self.session.trust_env = False

    def __enter__(self) -> InProcessServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.session.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def get(self, path: str, **params) -> requests.Response:
        return self.session.get(self.base + path, params=params, timeout=60)
