"""Bulk answers on the wire: a cap on how many stream at once, and a body that ends loudly or cleanly.

A bulk answer holds a generator, a producer thread and its chunks for as long as it
streams; the cap (API_MAX_STREAMS) bounds how many do at once, so memory stays bounded
however many clients ask. Whatever ends a stream (the last byte, a failure, a client
that disconnects), its body is closed, which stops the producer thread, and its slot
is given back.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
from collections.abc import Iterator

import anyio
import pyarrow as pa
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

log = logging.getLogger("api.stream")


class StreamGate:
    """At most `limit` bulk answers streaming at once; thread-safe (routes run in a thread pool).
    `send_timeout`: how long one chunk may wait for the client to take it (a request timeout for
    a client that stops reading, which would otherwise hold its slot for good)."""

    def __init__(self, limit: int, send_timeout: float = 60.0) -> None:
        self.limit = limit
        self.send_timeout = send_timeout
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
                await super().__call__(scope, receive, self._bounded(send))
        finally:
            # Shielded: even a cancelled request (a disconnect, a shutdown) closes its body,
            # which runs the generators' finally blocks and stops the producer thread.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._body.close)
            if self._gate.leave() == 0:
                give_memory_back()

    def _bounded(self, send: Send) -> Send:
        """`send`, failing when the client has not taken a chunk within the gate's send timeout: the
        stream ends (uvicorn closes the connection) and its slot comes back."""
        seconds = self._gate.send_timeout

        async def bounded(message) -> None:
            try:
                with anyio.fail_after(seconds):
                    await send(message)
            except TimeoutError:
                log.warning("aborting a bulk answer: the client took no chunk for %.0f s", seconds)
                raise

        return bounded


def give_memory_back() -> None:
    """The last stream is done: hand the idle pages of Arrow's pool and of the C heap (numpy's
    grids, freed in the producer threads' malloc arenas) back to the system, so the memory of a
    burst of large answers does not stay with an idle server."""
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # glibc only; elsewhere the pool's release is all
        ctypes.CDLL("libc.so.6").malloc_trim(0)


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
