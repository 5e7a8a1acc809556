"""The docs pages load nothing from other hosts: a Content-Security-Policy that lets them reach only the API.

Swagger UI and ReDoc come from the API itself (fastapi-offline), but ReDoc's sidebar still
asks a CDN for a logo; under this policy the browser never sends that request, so the
pages behave the same with and without internet access.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DOC_PAGES = ("/docs", "/redoc")
# Inline script and style: both pages bootstrap inline; blob: for ReDoc's search worker.
POLICY = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline' blob:; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data: blob:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)


class DocsPolicy:
    """ASGI middleware: the Content-Security-Policy header on the docs pages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in DOC_PAGES:
            await self.app(scope, receive, send)
            return

        async def with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"content-security-policy", POLICY)]}
            await send(message)

        await self.app(scope, receive, with_policy)
