"""Progress lines: duration and rate formatting, throttling with an injected clock, the interval setting."""

from __future__ import annotations

import logging
import math

import pytest

from components.progress import (
    FIELDS,
    PROGRESS_SECONDS_ENV,
    ProgressReporter,
    format_duration,
    format_progress,
    format_rate,
    progress_seconds,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (41.6, "42s"),
        (185, "3m 05s"),
        (7620, "2h 07m"),
        (math.inf, "unknown"),
        (math.nan, "unknown"),
    ],
)
def test_durations_are_short(seconds, text):
    assert format_duration(seconds) == text


def test_rates_keep_three_digits_below_one_and_one_decimal_above():
    assert [format_rate(rate) for rate in (0.41666, 8.25, 1234.56)] == ["0.417", "8.2", "1234.6"]


def test_progress_line_has_counts_percent_rate_and_eta():
    line, fields = format_progress("ingest", "read", 640, 1500, "records", 32.0)
    assert line == "ingest: read 640/1500 records (42%), 20.0 records/s, ETA 43s"
    assert fields == {
        "stage": "ingest",
        "action": "read",
        "done": 640,
        "total": 1500,
        "unit": "records",
        "rate": 20.0,
        "eta_s": 43.0,
    }


def test_progress_line_before_anything_is_done_has_no_rate_or_eta():
    line, fields = format_progress("ingest", "read", 0, 40, "records", 5.0)
    assert line == "ingest: read 0/40 records (0%), none yet"
    assert fields["rate"] == 0.0 and fields["eta_s"] is None


def test_done_beyond_the_total_shows_the_total():
    line, fields = format_progress("evaluate", "scored", 7, 6, "images", 1.0)
    assert line.startswith("evaluate: scored 6/6 images (100%)") and fields["done"] == 6


def test_reporter_logs_at_most_one_line_per_interval(caplog):
    clock = FakeClock()
    reporter = ProgressReporter(
        logging.getLogger("test.progress"), "evaluate", "scored", "images", 100, 5.0, clock
    )
    logged = []
    with caplog.at_level(logging.INFO, logger="test.progress"):
        for step in range(1, 21):  # one update per second for 20 s
            clock.now += 1.0
            logged.append(reporter.update(step))
    assert [index + 1 for index, was_logged in enumerate(logged) if was_logged] == [5, 10, 15, 20]
    assert [record.getMessage() for record in caplog.records][:2] == [
        "evaluate: scored 5/100 images (5%), 1.0 images/s, ETA 1m 35s",
        "evaluate: scored 10/100 images (10%), 1.0 images/s, ETA 1m 30s",
    ]
    assert getattr(caplog.records[0], FIELDS)["done"] == 5


def test_reporter_stops_after_the_line_with_everything_done(caplog):
    clock = FakeClock()
    reporter = ProgressReporter(
        logging.getLogger("test.progress"), "ingest", "read", "records", 10, 1.0, clock
    )
    with caplog.at_level(logging.INFO, logger="test.progress"):
        for done in (5, 10, 10, 10):
            clock.now += 2.0
            reporter.update(done)
    assert [record.getMessage().split(",")[0] for record in caplog.records] == [
        "ingest: read 5/10 records (50%)",
        "ingest: read 10/10 records (100%)",
    ]


def test_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(PROGRESS_SECONDS_ENV, raising=False)
    assert progress_seconds() == 5.0
    monkeypatch.setenv(PROGRESS_SECONDS_ENV, "0.5")
    assert progress_seconds() == 0.5
    assert (
        ProgressReporter(logging.getLogger("test.progress"), "ingest", "read", "records", 1).interval == 0.5
    )
    for bad in ("soon", "-1", "nan", "inf"):
        monkeypatch.setenv(PROGRESS_SECONDS_ENV, bad)
        with pytest.raises(ValueError, match=PROGRESS_SECONDS_ENV):
            progress_seconds()
