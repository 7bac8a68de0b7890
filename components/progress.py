"""Throttled progress lines for the long steps of a stage: done / total, rate and ETA.

A stage calls :meth:`ProgressReporter.update` as often as it likes (every batch, every poll); the
reporter logs at most one line per interval, e.g.::

    evaluate: scored 64/140 images (45%), 21.3 images/s, ETA 4s

The numbers also travel with the log record as structured fields (the ``fields`` attribute:
``stage``, ``action``, ``done``, ``total``, ``unit``, ``rate``, ``eta_s``), which ``--log-format json``
writes out. The interval is ``KERAS_DEPTH_PROGRESS_SECONDS`` (set by the CLI's
``--progress-seconds``; default :data:`DEFAULT_PROGRESS_SECONDS`), so that it reaches every stage
(and a stage run in a fresh process) without being part of any stage's parameters.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable

# Attribute of a log record holding its structured fields (a dict), written by ``--log-format json``.
FIELDS = "fields"
PROGRESS_SECONDS_ENV = "KERAS_DEPTH_PROGRESS_SECONDS"
DEFAULT_PROGRESS_SECONDS = 5.0


def progress_seconds() -> float:
    """Seconds between two progress lines of a stage: ``KERAS_DEPTH_PROGRESS_SECONDS`` or the default.

    Raises:
        ValueError: naming the variable when it is not a number >= 0.
    """
    text = os.environ.get(PROGRESS_SECONDS_ENV)
    if text is None:
        return DEFAULT_PROGRESS_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds < math.inf:
        raise ValueError(f"{PROGRESS_SECONDS_ENV} must be a number of seconds >= 0, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """A short duration: ``"42s"``, ``"3m 05s"``, ``"2h 07m"``; ``"unknown"`` for inf or NaN."""
    if not math.isfinite(seconds):
        return "unknown"
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def format_rate(rate: float) -> str:
    """A rate with 3 significant digits or one decimal: ``"0.417"``, ``"8.2"``, ``"1234.5"``."""
    return f"{rate:.3g}" if rate < 1 else f"{rate:.1f}"


def format_progress(
    stage: str, action: str, done: int, total: int, unit: str, seconds: float
) -> tuple[str, dict]:
    """The progress line and its structured fields.

    Args:
        stage: Stage name, the line's prefix.
        action: What is done to the items, e.g. ``"loaded"``.
        done: Items done so far (shown at most ``total``).
        total: Items to do (>= 1).
        unit: Plural name of the items, e.g. ``"records"``.
        seconds: Time since the work started.

    Returns:
        ``("<stage>: <action> <done>/<total> <unit> (<percent>%), <rate> <unit>/s, ETA <duration>",
        fields)`` (``"..., none yet"`` while ``done`` is 0), fields: ``stage``, ``action``, ``done``,
        ``total``, ``unit``, ``rate`` (items per second) and ``eta_s`` (seconds; None while nothing
        is done).
    """
    done = min(done, total)
    rate = done / seconds if seconds > 0 else 0.0
    eta = (total - done) / rate if rate > 0 else math.inf
    speed = f"{format_rate(rate)} {unit}/s, ETA {format_duration(eta)}" if done else "none yet"
    line = f"{stage}: {action} {done}/{total} {unit} ({100 * done // total}%), {speed}"
    fields = {
        "stage": stage,
        "action": action,
        "done": done,
        "total": total,
        "unit": unit,
        "rate": rate,
        "eta_s": eta if math.isfinite(eta) else None,
    }
    return line, fields


class ProgressReporter:
    """Logs :func:`format_progress` lines, at most one per ``interval`` seconds.

    The first line comes ``interval`` seconds after the reporter is made (the stage has logged its
    start), so work that finishes sooner logs no progress line at all; after a line with everything
    done, none follows (the stage logs its own summary).

    Args:
        log: Logger of the lines (INFO).
        stage: Stage name, the lines' prefix.
        action: What is done to the items, e.g. ``"scored"``.
        unit: Plural name of the items, e.g. ``"images"``.
        total: Items to do (>= 1).
        interval: Seconds between two lines (default: :func:`progress_seconds`).
        clock: Monotonic clock in seconds (injected by tests).
    """

    def __init__(
        self,
        log: logging.Logger,
        stage: str,
        action: str,
        unit: str,
        total: int,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.stage = stage
        self.action = action
        self.unit = unit
        self.total = max(1, total)
        self.interval = progress_seconds() if interval is None else interval
        self._clock = clock
        self._start = self._last = clock()
        self._finished = False

    def update(self, done: int) -> bool:
        """Reports ``done`` items if ``interval`` seconds have passed since the last line.

        Returns:
            True when a line was logged.
        """
        now = self._clock()
        if self._finished or now - self._last < self.interval:
            return False
        self._last = now
        self._finished = done >= self.total
        line, fields = format_progress(
            self.stage, self.action, done, self.total, self.unit, now - self._start
        )
        self.log.info("%s", line, extra={FIELDS: fields})
        return True
