"""Connection-level protection: a connection limit and a deadline for request headers.

uvicorn closes a keep-alive connection that stays idle after a response (``timeout_keep_alive``),
but a connection that never completes its request headers -- opened and left idle, or headers
trickled a byte at a time -- is held for as long as the client likes, and ``limit_concurrency``
answers in plain text. ``GuardedH11Protocol`` is uvicorn's h11 protocol plus:

- a header deadline: a request's line and headers must be complete within ``header_timeout_s``
  of the connection opening or of the previous response. Otherwise the connection is closed, with
  a 408 ``{"error": ...}`` when part of a request had arrived (silently when it was idle, so that a
  client about to reuse a pooled connection never reads a stale 408). The same deadline closes a
  connection whose client still sends the body of a request that was already answered (e.g. 413
  before the body was read), which uvicorn would otherwise keep reading and discarding;
- a connection limit: beyond ``max_connections`` open connections a new connection's requests get
  503 ``{"error": ...}`` and the connection is closed, so clients already connected are still served.

The request body has its own deadline in the app (``rest_api.ApiOptions.body_timeout_s``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_MAX_CONNECTIONS = 256
DEFAULT_HEADER_TIMEOUT_S = 10.0
SERVICE_UNAVAILABLE = 503

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionLimits:
    """Per-server connection bounds.

    Attributes:
        max_connections: Open connections served at once; further ones get 503 (``--max_connections``).
        header_timeout_s: Seconds a connection may take to send a request's headers
            (``--request_header_timeout_seconds``).
    """

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ValueError(f"ConnectionLimits.max_connections must be >= 1, got {self.max_connections}")
        if self.header_timeout_s <= 0:
            raise ValueError(f"ConnectionLimits.header_timeout_s must be > 0, got {self.header_timeout_s}")


def _json_error(message: str) -> bytes:
    return json.dumps({"error": message}).encode("utf-8")


def _over_capacity_app(max_connections: int):
    """An ASGI app answering 503 and closing the connection."""
    body = _json_error(
        f"Server is at its connection limit (--max_connections={max_connections}); retry later"
    )
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"connection", b"close"),
        (b"retry-after", b"1"),
    ]

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": SERVICE_UNAVAILABLE, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return app


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline and a connection limit (see the module docstring).

    Pass ``functools.partial(GuardedH11Protocol, limits=...)`` as ``uvicorn.Config(http=...)``.

    Args:
        *args: uvicorn's protocol arguments.
        limits: The connection bounds.
        **kwargs: uvicorn's protocol arguments.
    """

    def __init__(self, *args, limits: ConnectionLimits, **kwargs):
        super().__init__(*args, **kwargs)
        self._limits = limits
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self._limits.max_connections:
            logger.warning(
                "Refusing requests of %s: %d open connections (--max_connections=%d)",
                self.client,
                len(self.connections),
                self._limits.max_connections,
            )
            self.app = _over_capacity_app(self._limits.max_connections)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self._limits.header_timeout_s, self._header_deadline)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_deadline(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        awaiting_headers = self.conn.their_state is h11.IDLE
        answered_but_sending = self.conn.our_state in (h11.DONE, h11.MUST_CLOSE) and (
            self.conn.their_state is h11.SEND_BODY
        )
        if not (awaiting_headers or answered_but_sending):
            return  # a request is being handled; the app bounds its body and its work
        partial_request, _ = self.conn.trailing_data
        if awaiting_headers and partial_request:
            timeout = self._limits.header_timeout_s
            body = _json_error(
                f"Request headers not received within {timeout:g} s (--request_header_timeout_seconds)"
            )
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
                + body
            )
        logger.info(
            "Closed connection of %s: %s within %g s (--request_header_timeout_seconds)",
            self.client,
            "no complete request headers"
            if awaiting_headers
            else "request body still arriving after the answer",
            self._limits.header_timeout_s,
        )
        self.transport.close()
