"""ASGI middleware: one JSON access-log line per request on stderr, and request metrics.

Each line is a JSON object::

    {"time": "2025-01-01T12:00:00.000Z", "method": "POST", "path": "/v1/models/depth:predict",
     "status": 200, "latency_ms": 12.3, "model": "depth", "version": "2"}

Handlers record the model and the version that served the request in ``request.state``
(``model``/``version``; ``null`` when the request named none or failed before resolving one) and,
for failures, the canonical ``error_code`` that labels the request in the metrics.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime

from serving.errors import code_for_http_status
from serving.metrics import Metrics

ACCESS_LOGGER = "serving.access"
STATE_MODEL = "model"
STATE_VERSION = "version"
STATE_ERROR_CODE = "error_code"
MILLISECONDS_PER_SECOND = 1e3
INTERNAL_ERROR_STATUS = 500

logger = logging.getLogger(ACCESS_LOGGER)


def entrypoint_of(path: str) -> str:
    """The metrics entrypoint label of a request path."""
    if path.startswith("/v1/models"):
        if path.endswith(":predict"):
            return "REST_PREDICT"
        return "REST_METADATA" if path.endswith("/metadata") else "REST_STATUS"
    return "REST_OTHER"


class AccessLogMiddleware:
    """Wraps an ASGI app; logs and measures every HTTP request.

    Args:
        app: The wrapped ASGI application.
        metrics: Receives one ``observe_request`` per request.
    """

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state = scope.setdefault("state", {})
        status = INTERNAL_ERROR_STATUS

        async def send_with_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            latency_s = time.perf_counter() - start
            model = state.get(STATE_MODEL)
            self.metrics.observe_request(
                entrypoint_of(scope["path"]), model or "", code_for_http_status(status), latency_s
            )
            record = {
                "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "latency_ms": round(latency_s * MILLISECONDS_PER_SECOND, 3),
                "model": model,
                "version": state.get(STATE_VERSION),
            }
            logger.info(json.dumps(record))
