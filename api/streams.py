"""Bulk answers on the wire: a cap on how many stream at once, and a body that ends loudly or cleanly.

A bulk answer holds a generator, a producer thread and its chunks for as long as it
streams; the cap (API_MAX_STREAMS) bounds how many do at once, so memory stays bounded
however many clients ask. Whatever ends a stream (the last byte, a failure, a client
that disconnects), its body is closed, which stops the producer thread, and its slot
is given back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import anyio
import pyarrow as pa
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

log = logging.getLogger("api.stream")


class StreamGate:
    """At most `limit` bulk answers streaming at once; thread-safe (routes run in a thread pool)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self._lock = threading.Lock()

    def try_enter(self) -> bool:
        with self._lock:
            if self.active >= self.limit:
                return False
            self.active += 1
            return True

    def leave(self) -> int:
        """Give a slot back; how many are still taken."""
        with self._lock:
            self.active -= 1
            return self.active


class BulkStream(StreamingResponse):
    """A StreamingResponse holding one slot of `gate`, which it gives back however the stream ends.

    The slot must already be taken (gate.try_enter()) before this is built."""

    def __init__(
        self, body: Iterator[bytes], gate: StreamGate, media_type: str, headers: dict[str, str], what: str
    ) -> None:
        self._body = aborting(body, what)
        self._gate = gate
        super().__init__(self._body, media_type=media_type, headers=headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if scope.get("method") == "HEAD":  # the headers only: no chunk is generated
                await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            else:
                await super().__call__(scope, receive, send)
        finally:
            # Shielded: even a cancelled request (a disconnect, a shutdown) closes its body,
            # which runs the generators' finally blocks and stops the producer thread.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._body.close)
            if self._gate.leave() == 0:
                # The last stream is done: hand the Arrow pool's idle pages back to the system,
                # so the memory of a burst of large answers does not stay with an idle server.
                pa.default_memory_pool().release_unused()


def aborting(body: Iterator[bytes], what: str) -> Iterator[bytes]:
    """The body, which on a failure after the 200 is logged and re-raised, never ended quietly.

    Re-raised, the exception makes uvicorn close the socket without the terminating
    chunk of the chunked body, so every HTTP client sees a broken answer (requests
    raises ChunkedEncodingError) instead of a short one that looks complete.
    """
    sent = 0
    try:
        for piece in body:
            sent += len(piece)
            yield piece
    except Exception:
        log.exception("aborting the %s after %s bytes: the body failed mid-stream", what, f"{sent:,}")
        raise
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
