"""Best-effort stage logging: a failing tracking call warns and returns; after a few in a row, none is made."""

from __future__ import annotations

import logging

import pytest

from components import tracking
from components.tracking import MAX_CONSECUTIVE_FAILURES, best_effort


@pytest.fixture(autouse=True)
def fresh_counter():
    tracking.reset()
    yield
    tracking.reset()


def test_a_failing_call_warns_and_returns_none(caplog):
    calls = []

    @best_effort
    def log_metrics(value):
        calls.append(value)
        raise ConnectionError("server gone\nwith a long HTTP body")

    with caplog.at_level(logging.WARNING, logger="keras_depth.tracking"):
        assert log_metrics(1) is None
    assert calls == [1]
    assert (
        "MLflow logging failed in test_a_failing_call_warns_and_returns_none.<locals>.log_metrics"
        in caplog.text
    )
    assert "(ConnectionError: server gone); going on" in caplog.text
    assert "long HTTP body" not in caplog.text


def test_gives_up_after_consecutive_failures_until_reset(caplog):
    calls = []

    @best_effort
    def log_metrics():
        calls.append(1)
        raise OSError("refused")

    with caplog.at_level(logging.WARNING, logger="keras_depth.tracking"):
        for _ in range(MAX_CONSECUTIVE_FAILURES + 3):
            log_metrics()
    assert len(calls) == MAX_CONSECUTIVE_FAILURES
    assert "nothing more is logged in this run" in caplog.text
    tracking.reset()
    log_metrics()
    assert len(calls) == MAX_CONSECUTIVE_FAILURES + 1


def test_a_success_resets_the_count_and_returns_the_result():
    outcomes = iter(
        [OSError("blip")] * (MAX_CONSECUTIVE_FAILURES - 1) + ["ok"] + [OSError("blip")] * 2 + ["ok"]
    )

    @best_effort
    def log_metrics():
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    results = [log_metrics() for _ in range(MAX_CONSECUTIVE_FAILURES + 3)]
    assert results[MAX_CONSECUTIVE_FAILURES - 1] == "ok" and results[-1] == "ok"


def test_headline_metrics_are_the_exported_networks_short_test_metrics():
    scored = {"delta1": 0.61, "delta2": 0.89, "abs_rel": 0.21, "rmse": 0.9, "si_log": 0.22, "sq_rel": 0.2}
    assert tracking.headline_metrics(scored) == {
        "test_delta1": 0.61,
        "test_abs_rel": 0.21,
        "test_rmse": 0.9,
        "test_si_log": 0.22,
    }
    assert all("/" not in name for name in tracking.headline_metrics(scored))


def test_the_headline_network_is_the_one_evaluate_scores_as_coarse_plus_fine():
    from components.evaluate.component import COARSE_FINE  # loads TensorFlow: only in this test

    assert tracking.HEADLINE_NETWORK == COARSE_FINE
