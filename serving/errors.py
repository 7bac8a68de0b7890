"""Errors of the serving API, with TF Serving's canonical codes and their HTTP statuses.

TF Serving reports failures as a canonical status code (``INVALID_ARGUMENT``, ``NOT_FOUND``...)
and maps it to an HTTP status in ``model_servers/http_server.cc``; the body is
``{"error": "<message>"}``. ``ServingError`` carries the code so every layer (codec, registry,
model runner) can fail with the status a TF Serving client expects.
"""

from __future__ import annotations

# TF Serving's canonical-code -> HTTP status table (``ToHTTPStatusCode``).
HTTP_STATUS_BY_CODE = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}
# Not canonical codes: HTTP-level refusals of an oversized request (TF Serving has no limits) and
# of a body not received in time.
PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
HTTP_STATUS_BY_CODE[PAYLOAD_TOO_LARGE] = 413
REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
HTTP_STATUS_BY_CODE[REQUEST_TIMEOUT] = 408

# HTTP status -> the first canonical code mapped to it, to label responses not raised as ``ServingError``.
_CODE_BY_HTTP_STATUS: dict[int, str] = {}
for _code, _status in HTTP_STATUS_BY_CODE.items():
    _CODE_BY_HTTP_STATUS.setdefault(_status, _code)


class ServingError(Exception):
    """A request failure with a canonical code.

    Args:
        code: A key of ``HTTP_STATUS_BY_CODE``, e.g. ``"INVALID_ARGUMENT"``.
        message: Human-readable text returned as ``{"error": message}``.
    """

    def __init__(self, code: str, message: str):
        if code not in HTTP_STATUS_BY_CODE:
            raise ValueError(f"unknown status code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        """The HTTP status TF Serving sends for this code."""
        return HTTP_STATUS_BY_CODE[self.code]


def invalid_argument(message: str) -> ServingError:
    """A malformed request (HTTP 400)."""
    return ServingError("INVALID_ARGUMENT", message)


def not_found(message: str) -> ServingError:
    """An unknown model, version, label or signature target (HTTP 404)."""
    return ServingError("NOT_FOUND", message)


def code_for_http_status(status: int) -> str:
    """The canonical code reported in metrics for an HTTP status (``UNKNOWN`` when unmapped)."""
    return _CODE_BY_HTTP_STATUS.get(status, "UNKNOWN")
