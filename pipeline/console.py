"""What the CLI writes to stderr: our log lines and progress, as text or as JSON lines.

:func:`configure_logging` installs one handler on the root logger:

- ``text``: ``HH:MM:SS LEVEL [logger] message``;
- ``json``: one object per line with ``time`` (ISO 8601, local time with offset), ``level``,
  ``logger`` and ``message``, then ``stage`` (for the stage loggers ``keras_depth.<stage>``), the
  structured fields of the record (progress: ``done``, ``total``, ``unit``, ``rate``, ``eta_s``; see
  :mod:`components.progress`) and ``exception`` (the traceback) when there is one.

Libraries' chatter is held back: Apache Beam, MLflow (whose own handler is turned off with
``MLFLOW_CONFIGURE_LOGGING=false``, so its lines take our format, and whose artifact progress bars
are turned off), its database migrations and
TensorFlow's Python logger log warnings and errors only; Beam's import-time notice that the optional
BigQuery client is missing, and TensorFlow's warning about retracing while evaluation predicts
batches of a few sizes, are dropped. With ``json``, an uncaught exception is logged as one JSON line
too. Native libraries and Beam's worker processes write to the stderr file descriptor
directly; :mod:`pipeline.stderr_filter` handles those.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
import sys

from components.progress import FIELDS
from pipeline.stages import STAGE_ORDER

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"
TEXT_DATE_FORMAT = "%H:%M:%S"
STAGE_LOGGER_PREFIX = "keras_depth."
UNCAUGHT_LOGGER = "keras_depth.pipeline"
# Libraries whose INFO lines are start-up and bookkeeping chatter, not the pipeline's progress.
LIBRARY_LOG_LEVELS = {
    "apache_beam": logging.WARNING,  # the runner relays every worker line at INFO
    "mlflow": logging.WARNING,  # "Creating initial MLflow database tables...", run URLs
    "alembic": logging.WARNING,  # MLflow's database migrations
    "tensorflow": logging.WARNING,  # "Assets written to: ..." when a SavedModel is saved
}
# (logger, pattern searched in the message) of records that say nothing about this pipeline.
DROPPED_RECORDS = (
    # apache_beam.io.gcp on import, through the root logger: the optional BigQuery client is absent.
    ("root", re.compile(r"^apitools not found")),
    # Evaluation predicts batches of a few sizes (full batches, the last one, the example rows),
    # a trace each: expected, not a performance bug.
    ("tensorflow", re.compile(r"calls to <function .*> triggered tf\.function retracing")),
)
# Read by mlflow: no stderr handler and format of its own, no tqdm bars when it moves artifacts.
MLFLOW_LOGGING_ENV = {"MLFLOW_CONFIGURE_LOGGING": "false", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


class CurrentStderrHandler(logging.StreamHandler):
    """A stream handler that writes to whatever ``sys.stderr`` is when a record is emitted."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        """Ignored: the stream is always the current ``sys.stderr``."""


class DropRecords(logging.Filter):
    """Drops the records listed in :data:`DROPPED_RECORDS`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(
            record.name == name and pattern.search(str(record.msg)) for name, pattern in DROPPED_RECORDS
        )


def record_stage(record: logging.LogRecord) -> str | None:
    """The stage a record is about: its ``stage`` field, or the stage of a ``keras_depth.<stage>`` logger."""
    fields = getattr(record, FIELDS, None) or {}
    if "stage" in fields:
        return fields["stage"]
    name = record.name.removeprefix(STAGE_LOGGER_PREFIX)
    return name if name in STAGE_ORDER else None


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time``, ``level``, ``logger``, ``message`` and the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.datetime.fromtimestamp(record.created)
            .astimezone()
            .isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        stage = record_stage(record)
        if stage is not None:
            entry["stage"] = stage
        entry.update(getattr(record, FIELDS, None) or {})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def make_formatter(log_format: str) -> logging.Formatter:
    """The formatter of ``--log-format`` (:data:`LOG_FORMATS`)."""
    if log_format == "json":
        return JsonFormatter()
    return logging.Formatter(TEXT_FORMAT, datefmt=TEXT_DATE_FORMAT)


def route_library_logs() -> None:
    """Sets the environment that makes libraries log through the root logger; call before importing them."""
    for name, value in MLFLOW_LOGGING_ENV.items():
        os.environ.setdefault(name, value)


def configure_logging(quiet: bool, log_format: str) -> logging.Handler:
    """Installs the CLI's stderr handler on the root logger (replacing one installed before).

    Handlers of others (a test's log capture) are left alone. Python warnings are logged (logger
    ``py.warnings``), so they take the same format.

    Args:
        quiet: Warnings and errors only (no progress lines).
        log_format: ``text`` or ``json``.

    Returns:
        The handler.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, CurrentStderrHandler)]:
        root.removeHandler(handler)
    handler = CurrentStderrHandler()
    handler.setFormatter(make_formatter(log_format))
    handler.addFilter(DropRecords())
    root.addHandler(handler)
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    for name, level in LIBRARY_LOG_LEVELS.items():
        logging.getLogger(name).setLevel(level)
    logging.captureWarnings(True)
    if log_format == "json":
        sys.excepthook = log_uncaught_exception
    return handler


def log_uncaught_exception(kind: type[BaseException], error: BaseException, traceback) -> None:
    """``sys.excepthook`` for JSON logs: the uncaught exception as a CRITICAL record with its traceback."""
    logging.getLogger(UNCAUGHT_LOGGER).critical(
        "uncaught %s: %s", kind.__name__, error, exc_info=(kind, error, traceback)
    )
