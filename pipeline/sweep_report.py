"""The comparison of a sweep's variants: ``comparison.json``, ``comparison.md`` and ``comparison.png``.

One row per variant: its swept values, whether it completed, its child MLflow run, and the test metrics
of its evaluate artifact (``metrics.json``, pixel-pooled over the test split) for the two claims of
Eigen et al. (2014): that the fine network adds local detail to the coarse prediction (coarse+fine
against coarse, the edge error ``edge_log_grad`` above all), and which loss lambda is best (the rows
against each other), with the constant mean-depth baseline as the floor.

Metrics are keyed by the names the evaluate stage logs them under in MLflow, so that a row matches its
child run: the headline ``test_delta1``, ``test_abs_rel``, ``test_rmse``, ``test_si_log`` of
coarse+fine (``components.tracking.headline_metrics``) and ``evaluate/<predictor>/<metric>`` for the
rest. Depth errors (``rmse``) are in metres; the others are unitless.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from components.serving_contract import METRICS_FILE
from components.tracking import HEADLINE_METRICS, HEADLINE_NETWORK, HEADLINE_PREFIX
from pipeline.tracking import STATUS_FINISHED

COMPARISON_JSON = "comparison.json"
COMPARISON_MARKDOWN = "comparison.md"
COMPARISON_PLOT = "comparison.png"

# ``keras_depth.metrics.EDGE_METRIC`` (that package loads TensorFlow; a sweep's planning must not).
EDGE_METRIC = "edge_log_grad"
# The predictors of ``metrics.json`` (``components.evaluate``) in table order: key, short label.
BASELINE = "baseline"
PREDICTORS = ((HEADLINE_NETWORK, "c+f"), ("coarse", "coarse"), (BASELINE, "mean"))
# Metrics compared per predictor; the constant baseline's edge error is just the size of each step.
COMPARED_METRICS = (*HEADLINE_METRICS, EDGE_METRIC)
HIGHER_IS_BETTER = frozenset({"delta1"})
# The evaluate stage's MLflow metrics: ``evaluate/<predictor>/<metric>``.
EVALUATE_PREFIX = "evaluate"
NO_VALUE = "-"


@dataclass(frozen=True)
class Column:
    """One compared metric.

    Attributes:
        metric: Its MLflow metric name (``test_delta1``, ``evaluate/coarse/delta1``).
        predictor: The ``metrics.json`` predictor (``coarse_fine``, ``coarse``, ``baseline``).
        name: The metric (``delta1``, ``abs_rel``, ``rmse`` in metres, ``si_log``, ``edge_log_grad``).
        header: The Markdown column header (``c+f delta1``).
    """

    metric: str
    predictor: str
    name: str
    header: str


def comparison_columns() -> list[Column]:
    """The compared metrics in table order: coarse+fine, coarse, mean baseline."""
    columns = []
    for predictor, label in PREDICTORS:
        for name in HEADLINE_METRICS if predictor == BASELINE else COMPARED_METRICS:
            if predictor == HEADLINE_NETWORK and name in HEADLINE_METRICS:
                metric = f"{HEADLINE_PREFIX}{name}"
            else:
                metric = f"{EVALUATE_PREFIX}/{predictor}/{name}"
            columns.append(Column(metric, predictor, name, f"{label} {name}"))
    return columns


@dataclass(frozen=True)
class VariantResult:
    """How one variant of a sweep ended.

    Attributes:
        name: Its name, ``loss.lam=0.5`` (``pipeline.sweep_tracking.variant_name``; its child run's name).
        values: Swept key -> value as given on the command line.
        status: ``FINISHED`` or ``FAILED``.
        error: The first line of the failure, or None.
        run_id: Its child MLflow run, or None without tracking.
        evaluate_dir: Its evaluate artifact, or None (failed, or ``--stage`` before evaluate).
    """

    name: str
    values: Mapping[str, str]
    status: str
    error: str | None = None
    run_id: str | None = None
    evaluate_dir: Path | None = None


def variant_metrics(evaluate_dir: Path | None) -> dict[str, float]:
    """The compared metrics of an evaluate artifact (none without one), by MLflow metric name.

    A metric the artifact lacks (``edge_log_grad`` when the test split has no depth discontinuity)
    is left out.
    """
    if evaluate_dir is None:
        return {}
    results = json.loads((evaluate_dir / METRICS_FILE).read_text())
    return {
        column.metric: float(results[column.predictor][column.name])
        for column in comparison_columns()
        if column.name in results.get(column.predictor, {})
    }


def comparison(
    name: str,
    keys: Sequence[str],
    stages: Sequence[str],
    results: Sequence[VariantResult],
    parent_run_id: str | None,
) -> dict:
    """The ``comparison.json`` document.

    Args:
        name: The sweep's name, ``sweep loss.lam=0,0.5,1``.
        keys: The swept keys in flag order.
        stages: The stages each variant ran through.
        results: The variants in sweep order.
        parent_run_id: The sweep's parent MLflow run, or None without tracking.

    Returns:
        ``sweep``, ``keys``, ``stages``, ``parent_run_id``, ``columns`` (metric, predictor, name,
        header) and ``rows``:
        per variant ``variant`` (its name), ``values``, ``status``, ``error``, ``run_id``,
        ``evaluate_artifact`` (path or None) and ``metrics`` (MLflow name -> value).
    """
    return {
        "sweep": name,
        "keys": list(keys),
        "stages": list(stages),
        "parent_run_id": parent_run_id,
        "columns": [vars(column) for column in comparison_columns()],
        "rows": [
            {
                "variant": result.name,
                "values": dict(result.values),
                "status": result.status,
                "error": result.error,
                "run_id": result.run_id,
                "evaluate_artifact": None if result.evaluate_dir is None else str(result.evaluate_dir),
                "metrics": variant_metrics(result.evaluate_dir),
            }
            for result in results
        ],
    }


def _cell(value: float | None) -> str:
    return NO_VALUE if value is None or not math.isfinite(value) else f"{value:.3f}"


def markdown_table(document: Mapping) -> str:
    """The comparison as a Markdown table (one row per variant), a legend and the failures."""
    keys, columns = document["keys"], document["columns"]
    header = [*keys, "status", *(column["header"] for column in columns)]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * (len(keys) + 1) + "---:|" * len(columns),
    ]
    for row in document["rows"]:
        cells = [*(row["values"][key] for key in keys), row["status"]]
        cells += [_cell(row["metrics"].get(column["metric"])) for column in columns]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Test split, pixel-pooled. c+f: coarse+fine network (the exported model); coarse: the coarse "
        "network alone; mean: the constant mean-depth baseline. delta1: higher is better; abs_rel, "
        "rmse (metres), si_log and edge_log_grad (log-depth step error at depth edges, the local "
        f"detail the fine network adds): lower is better. {NO_VALUE}: no value.",
    ]
    failures = [row for row in document["rows"] if row["status"] != STATUS_FINISHED]
    if failures:
        lines += ["", "Failed variants:"]
        lines += [f"- {row['variant']}: {row['error']}" for row in failures]
    return "\n".join(lines) + "\n"


def plot_comparison(document: Mapping, path: Path) -> None:
    """Bar charts of the compared metrics per variant (one panel per metric, one bar per predictor).

    Written as PNG with matplotlib's Agg renderer (no display needed).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = document["rows"]
    columns = {(column["predictor"], column["name"]): column for column in document["columns"]}
    variants = [row["variant"] for row in rows]
    width = 0.8 / len(PREDICTORS)
    figure = Figure(figsize=(4 * len(COMPARED_METRICS), 4), layout="constrained")
    FigureCanvasAgg(figure)
    for axes, name in zip(figure.subplots(1, len(COMPARED_METRICS)), COMPARED_METRICS, strict=True):
        for offset, (predictor, label) in enumerate(PREDICTORS):
            column = columns.get((predictor, name))
            if column is None:
                continue
            heights = [row["metrics"].get(column["metric"], math.nan) for row in rows]
            positions = [index + (offset - (len(PREDICTORS) - 1) / 2) * width for index in range(len(rows))]
            axes.bar(positions, heights, width, label=label)
        better = "higher" if name in HIGHER_IS_BETTER else "lower"
        axes.set_title(f"{name}{' (m)' if name == 'rmse' else ''}, {better} is better")
        axes.set_xticks(range(len(rows)), variants, rotation=30 if len(rows) > 4 else 0)
    handles, predictors = figure.axes[0].get_legend_handles_labels()
    figure.legend(handles, predictors, loc="outside right upper")
    figure.suptitle(f"{document['sweep']}: test metrics per variant (pixel-pooled)")
    figure.savefig(path, dpi=100)


def write_comparison(document: Mapping, directory: Path) -> list[Path]:
    """Writes ``comparison.json``, ``comparison.md`` and ``comparison.png`` into ``directory``.

    Returns:
        Their paths.
    """
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / name for name in (COMPARISON_JSON, COMPARISON_MARKDOWN, COMPARISON_PLOT)]
    paths[0].write_text(json.dumps(document, indent=2) + "\n")
    paths[1].write_text(f"# {document['sweep']}\n\n{markdown_table(document)}")
    plot_comparison(document, paths[2])
    return paths
