"""Best-effort MLflow logging for the stages: a tracking failure warns, it never fails a stage.

Every function of a component that logs to the pipeline's MLflow run is wrapped in :func:`best_effort`.
When the tracking server goes away during a stage (it crashed, the network dropped), the call logs one
warning and returns None, and the stage goes on. After ``MAX_CONSECUTIVE_FAILURES`` failures in a row
tracking is switched off for the rest of the pipeline execution, so that a dead server costs a few
failed requests and not one per epoch; the runner calls :func:`reset` when it starts a new MLflow run.
How long one failed request takes is bounded by the HTTP retry and timeout settings the runner sets
for the run (``pipeline.tracking``). :func:`headline_metrics` names the test metrics that the evaluate
stage logs to the run and the export stage to the logged model.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

# Failed logging calls in a row after which the rest of the execution logs nothing more.
MAX_CONSECUTIVE_FAILURES = 3
# The evaluate artifact's ``metrics.json`` entry with the pixel-pooled test metrics of the network that
# is exported (coarse+fine), and those of its metrics that are a run's headline.
HEADLINE_NETWORK = "coarse_fine"
HEADLINE_METRICS = ("delta1", "abs_rel", "rmse", "si_log")
HEADLINE_PREFIX = "test_"

log = logging.getLogger("keras_depth.tracking")

F = TypeVar("F", bound=Callable[..., Any])


# Failed logging calls in a row in this process.
_failures = {"count": 0}


def reset() -> None:
    """Forgets earlier failures (called when the pipeline starts a new MLflow run)."""
    _failures["count"] = 0


def first_line(error: BaseException) -> str:
    """``"<ErrorType>: <first line of the message>"`` (MLflow errors carry whole HTTP responses)."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def headline_metrics(network_metrics: Mapping[str, float]) -> dict[str, float]:
    """The run's headline metrics: ``test_delta1``, ``test_abs_rel``, ``test_rmse``, ``test_si_log``.

    Short names without a ``/`` section, beside the namespaced ``evaluate/...`` set; the runs-table view
    of ``pipeline.mlflow_ui`` shows them as its metric columns.

    Args:
        network_metrics: Pixel-pooled test metrics of the exported network (``metrics.json`` entry
            :data:`HEADLINE_NETWORK`), by metric name.
    """
    return {f"{HEADLINE_PREFIX}{name}": float(network_metrics[name]) for name in HEADLINE_METRICS}


def best_effort(function: F) -> F:
    """Wraps a logging function so that an exception from it warns instead of failing the caller.

    The wrapped function returns the function's result, or None when it failed or when tracking
    was given up after ``MAX_CONSECUTIVE_FAILURES`` failures in a row.
    """

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _failures["count"] >= MAX_CONSECUTIVE_FAILURES:
            return None
        try:
            result = function(*args, **kwargs)
        except Exception as err:  # any tracking failure must leave the stage running
            _failures["count"] += 1
            log.warning("MLflow logging failed in %s (%s); going on", function.__qualname__, first_line(err))
            if _failures["count"] >= MAX_CONSECUTIVE_FAILURES:
                log.warning(
                    "MLflow logging failed %d times in a row; nothing more is logged in this run",
                    _failures["count"],
                )
            return None
        _failures["count"] = 0
        return result

    return wrapper  # type: ignore[return-value]
