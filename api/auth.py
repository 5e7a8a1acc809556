"""An optional API key: with API_KEY set, every request but /health and the docs needs X-API-Key."""

from __future__ import annotations

import hmac
import json

from starlette.types import ASGIApp, Receive, Scope, Send

HEADER = b"x-api-key"
# The liveness probe and the docs (the page, its assets, the document it renders) stay open.
OPEN_PATHS = ("/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")
OPEN_PREFIXES = ("/static-offline-docs/",)


class ApiKeyGate:
    """ASGI middleware: a 401 with a message unless the request carries the key.

    hmac.compare_digest, so the time a comparison takes says nothing about the key; and a
    message never repeats what was sent."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self.key = key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_open(scope["path"]):
            await self.app(scope, receive, send)
            return
        sent = [v for k, v in scope["headers"] if k == HEADER]
        if sent and hmac.compare_digest(sent[0], self.key):
            await self.app(scope, receive, send)
            return
        reason = "wrong key" if sent else "missing header"
        await _refuse(send, f"X-API-Key: {reason}; this API needs its key in the X-API-Key header")


def _is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


async def _refuse(send: Send, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})
