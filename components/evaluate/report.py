"""The evaluation report: our metrics in the layout of Eigen et al. (2014), Table 1, beside the paper's.

Rows are the eight metrics (``keras_depth.metrics.METRIC_NAMES``); columns are the constant mean
baseline, the coarse network alone and coarse+fine, then (for ``paper_table`` ``nyu`` or ``kitti``)
the paper's numbers for the same columns. The paper's coarse network was ImageNet-pretrained; ours is
trained from scratch, which the report says beside the table.
"""

from __future__ import annotations

from collections.abc import Mapping

from keras_depth.metrics import METRIC_NAMES

# Our columns: (key in metrics.json, column header).
MODEL_COLUMNS = (("baseline", "mean"), ("coarse", "coarse"), ("coarse_fine", "coarse+fine"))
SERVED_COLUMN = ("served", "served")

METRIC_LABELS = {
    "delta1": "delta < 1.25",
    "delta2": "delta < 1.25^2",
    "delta3": "delta < 1.25^3",
    "abs_rel": "abs rel",
    "sq_rel": "sq rel",
    "rmse": "RMSE (m)",
    "rmse_log": "RMSE log",
    "si_log": "SI log",
}
HIGHER_IS_BETTER = frozenset({"delta1", "delta2", "delta3"})

# Eigen, Puhrsch & Fergus (NIPS 2014), Table 1 (NYU Depth v2) and Table 2 (KITTI), by our column key.
# Metrics the paper does not give for a column are left out (printed as a dash).
PAPER_TABLES: dict[str, dict[str, dict[str, float]]] = {
    "nyu": {
        "baseline": {
            "delta1": 0.418,
            "delta2": 0.711,
            "delta3": 0.874,
            "abs_rel": 0.408,
            "sq_rel": 0.581,
            "rmse": 1.244,
            "rmse_log": 0.430,
            "si_log": 0.304,
        },
        "coarse": {
            "delta1": 0.618,
            "delta2": 0.891,
            "delta3": 0.969,
            "abs_rel": 0.228,
            "sq_rel": 0.223,
            "rmse": 0.871,
            "rmse_log": 0.283,
            "si_log": 0.221,
        },
        "coarse_fine": {
            "delta1": 0.611,
            "delta2": 0.887,
            "delta3": 0.971,
            "abs_rel": 0.215,
            "sq_rel": 0.212,
            "rmse": 0.907,
            "rmse_log": 0.285,
            "si_log": 0.219,
        },
    },
    "kitti": {
        "baseline": {"delta1": 0.556, "abs_rel": 0.412, "rmse": 9.635},
        "coarse": {},
        "coarse_fine": {
            "delta1": 0.692,
            "delta2": 0.899,
            "delta3": 0.967,
            "abs_rel": 0.190,
            "sq_rel": 1.515,
            "rmse": 7.156,
            "rmse_log": 0.270,
            "si_log": 0.246,
        },
    },
}
PAPER_NAMES = {"nyu": "NYU Depth v2", "kitti": "KITTI"}
MISSING = "–"
PRETRAINING_NOTE = (
    "The paper's coarse network starts from ImageNet-pretrained weights (coarse1-5); ours is trained "
    "from scratch (no weights can be downloaded), so its columns are not expected to match the paper's."
)


def _format(value: float | None) -> str:
    return MISSING if value is None else f"{value:.3f}"


def check_paper_table(paper_table: str) -> None:
    """Raises ValueError naming ``evaluate.paper_table`` unless it is ``""``, ``"nyu"`` or ``"kitti"``."""
    if paper_table and paper_table not in PAPER_TABLES:
        raise ValueError(
            f"evaluate.paper_table must be '' or one of {sorted(PAPER_TABLES)}; got {paper_table!r}"
        )


def metrics_table(
    columns: Mapping[str, Mapping[str, float]],
    paper_table: str = "",
    served: Mapping[str, float] | None = None,
) -> str:
    """The metrics as a Markdown table, one row per metric.

    Args:
        columns: Metric dicts (``METRIC_NAMES`` keys) for ``baseline``, ``coarse`` and ``coarse_fine``.
        paper_table: ``""``, ``"nyu"`` or ``"kitti"``: append the paper's numbers for the same columns.
        served: Metrics of the currently served model on the same images, appended as a column.

    Returns:
        Markdown lines joined by newlines (no trailing newline).

    Raises:
        ValueError: for an unknown ``paper_table``.
    """
    headers = [label for _, label in MODEL_COLUMNS]
    values = [columns[key] for key, _ in MODEL_COLUMNS]
    if served is not None:
        headers.append(SERVED_COLUMN[1])
        values.append(served)
    check_paper_table(paper_table)
    if paper_table:
        paper = PAPER_TABLES[paper_table]
        headers += [f"paper {label}" for _, label in MODEL_COLUMNS]
        values += [paper[key] for key, _ in MODEL_COLUMNS]
    lines = [
        "| metric | " + " | ".join(headers) + " |",
        "|---|" + "---|" * len(headers),
    ]
    for name in METRIC_NAMES:
        arrow = "higher is better" if name in HIGHER_IS_BETTER else "lower is better"
        cells = [_format(column.get(name)) for column in values]
        lines.append(f"| {METRIC_LABELS[name]} ({arrow}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_report(
    results: Mapping, crop: str, depth_range: tuple[float, float], paper_table: str, blessing_summary: str
) -> str:
    """The whole ``report.md``.

    Args:
        results: The contents of ``metrics.json`` (``baseline``, ``coarse``, ``coarse_fine``,
            ``image_averaged``, ``num_images``, ``baseline_depth``, optionally ``served``).
        crop: Evaluation crop name (``evaluate.crop``).
        depth_range: (min_depth, max_depth) in metres scored and clipped to.
        paper_table: ``""``, ``"nyu"`` or ``"kitti"``.
        blessing_summary: One line, the blessing decision and its reasons.

    Returns:
        Markdown text ending with a newline.
    """
    min_depth, max_depth = depth_range
    parts = [
        "# Depth evaluation (Eigen et al., NIPS 2014 protocol)",
        "",
        f"Test split: {results['num_images']} images, scored at ground-truth resolution on the centre crop "
        f"the networks see, evaluation crop `{crop}`, ground truth in [{min_depth:g}, {max_depth:g}] m, "
        f"predictions clipped to that range. The mean baseline predicts "
        f"{results['baseline_depth']:.3f} m everywhere (exp of the train split's mean log depth).",
        "",
        "## Pixel-averaged (every valid test pixel weighs the same)",
        "",
        metrics_table(results, paper_table, results.get("served")),
        "",
    ]
    if paper_table:
        parts += [f"Paper columns: {PAPER_NAMES[paper_table]}. {PRETRAINING_NOTE}", ""]
    parts += [
        "## Image-averaged (mean of per-image metrics)",
        "",
        metrics_table(results["image_averaged"], served=results["image_averaged"].get("served")),
        "",
        f"**Blessing:** {blessing_summary}",
        "",
    ]
    return "\n".join(parts)
