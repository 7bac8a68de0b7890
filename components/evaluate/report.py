"""The evaluation report: our metrics in the layout of Eigen et al. (2014), Table 1, beside the paper's.

Rows are the eight metrics (``keras_depth.metrics.METRIC_NAMES``) and the edge measure
(``keras_depth.metrics.EDGE_METRIC``, not in the paper; ``EDGE_NOTE``); columns are the constant mean
baseline, the coarse network alone and coarse+fine, then (for ``paper_table`` ``nyu`` or ``kitti``)
the paper's numbers for the same columns. The paper's coarse network was ImageNet-pretrained; ours is
trained from scratch, which the report says beside the table.

The table beside the paper uses the paper's definitions (``PAPER_DEFINITIONS``): the scale-invariant
error per image, then averaged; the other metrics pixel-pooled. The report also gives every metric
pixel-pooled and image-averaged, and says in a paragraph how the numbers were computed. With
``evaluate.extra_datasets`` a cross-dataset section follows: one column set (mean, coarse,
coarse+fine) per dataset, the test split first (``CROSS_DATASET_NOTE``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from keras_depth.metrics import EDGE_METRIC, METRIC_NAMES
from keras_depth.metrics.edges import DEFAULT_EDGE_THRESHOLD

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
    EDGE_METRIC: "edge log-grad error",
}
# Table rows: the paper's metrics, then ours (a dash where a column has none).
REPORT_METRICS = (*METRIC_NAMES, EDGE_METRIC)
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
PAPER_DEFINITIONS = (
    "delta, abs rel, sq rel, RMSE and RMSE log are pixel-pooled over the test split (every valid pixel "
    "weighs the same, as most reimplementations compute them); SI log is the paper's scale-invariant "
    "error per image, sqrt(mean(d^2) - mean(d)^2) with d = log y - log y* and each image's own mean "
    "removed, then averaged over images."
)
EDGE_NOTE = (
    "Edge log-grad error (not in the paper): at every depth discontinuity of the ground truth (neighbouring "
    f"pixels, along a row or a column, whose depths differ by more than {math.exp(DEFAULT_EDGE_THRESHOLD):g}x), "
    "|(log y_b - log y_a) - (log y*_b - log y*_a)| with a and b one network output pixel to either side, "
    "pooled over all discontinuities; scale-invariant, so it measures local structure, the fine network's "
    "job (keras_depth.metrics.edges)."
)
CROSS_DATASET_NOTE = (
    "The same networks scored on further datasets (evaluate.extra_datasets), each on its test split "
    "with the protocol above (network input crop, native ground truth, crop, depth range). Each "
    "dataset's mean column predicts its own mean depth (exp of the mean log depth of its test frames): "
    "the scene's scale, given to the constant, which a network trained on other data has to infer from "
    "the image; SI log compares the structure alone. The blessing uses the test split only."
)
# The test split's column-set label in the cross-dataset tables.
TEST_SPLIT_LABEL = "test"
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
        columns: Metric dicts (``REPORT_METRICS`` keys; a missing one prints as a dash) for ``baseline``,
            ``coarse`` and ``coarse_fine``.
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
    return _table(headers, values)


def dataset_columns_table(datasets: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """The metrics as a Markdown table with one column set (mean, coarse, coarse+fine) per dataset.

    Args:
        datasets: Dataset label -> metric dicts for ``baseline``, ``coarse`` and ``coarse_fine``, in
            column order.

    Returns:
        Markdown lines joined by newlines (no trailing newline); headers ``<dataset> <column>``.
    """
    headers = [f"{dataset} {label}" for dataset in datasets for _, label in MODEL_COLUMNS]
    values = [columns[key] for columns in datasets.values() for key, _ in MODEL_COLUMNS]
    return _table(headers, values)


def _table(headers: list[str], values: list[Mapping[str, float]]) -> str:
    """One row per ``REPORT_METRICS`` entry, one column per header with its metric dict."""
    lines = [
        "| metric | " + " | ".join(headers) + " |",
        "|---|" + "---|" * len(headers),
    ]
    for name in REPORT_METRICS:
        arrow = "higher is better" if name in HIGHER_IS_BETTER else "lower is better"
        cells = [_format(column.get(name)) for column in values]
        lines.append(f"| {METRIC_LABELS[name]} ({arrow}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paper_protocol_columns(results: Mapping) -> dict[str, dict[str, float]]:
    """Our columns under the paper's definitions (``PAPER_DEFINITIONS``).

    Args:
        results: The contents of ``metrics.json``: pixel-pooled metrics per predictor and
            ``si_log_per_image`` (predictor -> per-image scale-invariant error averaged over images).

    Returns:
        Predictor -> its pixel-pooled metrics with ``si_log`` replaced by the per-image value.
    """
    per_image = results["si_log_per_image"]
    return {name: {**results[name], "si_log": value} for name, value in per_image.items()}


def protocol_text(results: Mapping) -> str:
    """One paragraph saying what was scored and how (resolution, window, crop, depth range, counts)."""
    protocol, geometry = results["protocol"], results["geometry"]
    num_images, without_native = results["num_images"], protocol["images_without_native_depth"]
    depth_range = f"[{protocol['min_depth']:g}, {protocol['max_depth']:g}] m"
    sizes = ", ".join(f"{size} for {count} images" for size, count in protocol["ground_truth_sizes"].items())
    text = (
        f"Test split: {num_images} images, {protocol['num_pixels']} ground-truth pixels scored. Ground "
        f"truth is scored at its native resolution ({sizes}) and never resampled: each prediction (log "
        f"depth) is bilinearly upsampled onto the native pixels of the window the networks see (the "
        f"centre {geometry['input_height']}x{geometry['input_width']} crop of the "
        f"{geometry['frame_height']}x{geometry['frame_width']} stored frame, mapped back through the "
        f"ingest resize), exponentiated and clipped to {depth_range}. Scored pixels: ground truth in "
        f"{depth_range} inside the evaluation crop `{protocol['crop']}`, applied in native coordinates. "
        f"The mean baseline predicts {results['baseline_depth']:.3f} m everywhere (exp of the train "
        f"split's mean log depth)."
    )
    if without_native:
        text += (
            f" **{without_native} of {num_images} images have no native ground truth** (ingested by an "
            f"older version): they are scored on their stored frame (the sizes above), with the crop at "
            f"that size; rerun ingest for the paper's protocol."
        )
    return text


def dataset_text(name: str, results: Mapping) -> str:
    """One Markdown list item saying what was scored of an extra dataset and where it came from.

    Args:
        name: The dataset's name.
        results: Its ``metrics.json`` entry (``extra_datasets.<name>``).
    """
    protocol, frame, ingest = results["protocol"], results["frame"], results["ingest"]
    sizes = ", ".join(f"{size} for {count}" for size, count in protocol["ground_truth_sizes"].items())
    text = (
        f"- **{name}**: {results['num_images']} images, {protocol['num_pixels']} ground-truth pixels "
        f"scored (native sizes: {sizes}), stored at {frame['height']}x{frame['width']}; the mean "
        f"baseline predicts {results['baseline_depth']:.3f} m; ingest artifact `{ingest['path']}` "
        f"(fingerprint {ingest['fingerprint']})."
    )
    if protocol["images_without_native_depth"]:
        text += f" {protocol['images_without_native_depth']} images scored on their stored frame (no native depth)."
    return text


def cross_dataset_section(results: Mapping) -> list[str]:
    """The report's lines about ``results["extra_datasets"]``: the test split's and each extra
    dataset's column sets under the paper's definitions, and what was scored of each."""
    splits = {TEST_SPLIT_LABEL: results, **results["extra_datasets"]}
    return [
        "## Cross-dataset: the same networks on further datasets",
        "",
        CROSS_DATASET_NOTE,
        "",
        "The paper's definitions (SI log per image, then averaged; the rest pixel-pooled; "
        "`metrics.json` has every metric pixel-pooled and image-averaged per dataset):",
        "",
        dataset_columns_table({name: paper_protocol_columns(split) for name, split in splits.items()}),
        "",
        *(dataset_text(name, split) for name, split in results["extra_datasets"].items()),
        "",
    ]


def render_report(results: Mapping, paper_table: str, blessing_summary: str) -> str:
    """The whole ``report.md``: the protocol, then three tables.

    1. our columns under the paper's definitions (``PAPER_DEFINITIONS``), beside the paper's;
    2. every metric pixel-pooled (``si_log`` over all pixels of the split at once);
    3. every metric image-averaged (mean of per-image metrics);

    then, with extra datasets, :func:`cross_dataset_section`.

    Args:
        results: The contents of ``metrics.json`` (``baseline``, ``coarse``, ``coarse_fine``,
            ``image_averaged``, ``si_log_per_image``, ``protocol``, ``geometry``, ``num_images``,
            ``baseline_depth``, optionally ``served`` and ``extra_datasets``).
        paper_table: ``""``, ``"nyu"`` or ``"kitti"``.
        blessing_summary: One line, the blessing decision and its reasons.

    Returns:
        Markdown text ending with a newline.
    """
    paper_columns = paper_protocol_columns(results)
    image_averaged = results["image_averaged"]
    parts = [
        "# Depth evaluation (Eigen et al., NIPS 2014 protocol)",
        "",
        protocol_text(results),
        "",
        "## The paper's definitions",
        "",
        PAPER_DEFINITIONS,
        "",
        metrics_table(paper_columns, paper_table, paper_columns.get("served")),
        "",
    ]
    if paper_table:
        parts += [f"Paper columns: {PAPER_NAMES[paper_table]}. {PRETRAINING_NOTE}", ""]
    parts += [
        "## Pixel-pooled (every valid test pixel weighs the same; SI log pooled over all pixels)",
        "",
        metrics_table(results, served=results.get("served")),
        "",
        "## Image-averaged (mean of per-image metrics)",
        "",
        metrics_table(image_averaged, served=image_averaged.get("served")),
        "",
        EDGE_NOTE,
        "",
    ]
    if results.get("extra_datasets"):
        parts += cross_dataset_section(results)
    parts += [f"**Blessing:** {blessing_summary}", ""]
    return "\n".join(parts)
