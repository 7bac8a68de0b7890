"""The evaluate stage: the paper's table on the test split, example figure, and the blessing decision.

Inputs: the ingest artifact (``train/`` and ``test/`` shards), the train artifact (``coarse.keras``,
``fine.keras``) and the ingest artifact of each ``evaluate.extra_datasets`` entry (``dataset:<name>``).
Outputs in the artifact directory:

- ``metrics.json``: pixel-pooled metrics of ``baseline``, ``coarse``, ``coarse_fine`` (and ``served``
  when compared), ``image_averaged`` (the same per predictor), ``si_log_per_image`` (predictor -> the
  paper's scale-invariant error: per image, then averaged over images), ``protocol`` (how the numbers
  were computed: crop, depth range, ground-truth sizes scored, pixels scored, images scored on their
  stored frame for lack of native depth), ``num_images``, ``baseline_depth`` (metres), ``geometry``
  (stored frame and network input sizes, read by the export stage), ``served_model`` (version and
  path, when compared), ``examples``, the blessing decision and ``extra_datasets`` (name -> the same
  metrics, protocol and counts on that dataset's test split, see :mod:`.extra_datasets`);
- ``report.md``: the Markdown tables in the paper's layout (see :mod:`.report`), one column set per
  dataset for the extra datasets;
- ``predictions.png``: the best, median and worst test images by coarse+fine abs_rel;
- ``BLESSED`` or ``NOT_BLESSED`` (see :mod:`.blessing`).

The mean baseline is ``exp`` of the mean log depth of the TRAIN split's valid pixels (inside the
evaluation depth range), as in the paper (on an extra dataset: its own test frames'); scoring is
described in :mod:`.scoring`. The blessing looks at the test split only.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import keras
import tensorflow as tf

from components.base import StageContext
from components.evaluate.batches import IMAGE, evaluation_batches
from components.evaluate.blessing import decide_blessing
from components.evaluate.config import EvaluateConfig
from components.evaluate.extra_datasets import DatasetScores, score_extra_dataset
from components.evaluate.predictors import (
    BASELINE,
    COARSE,
    COARSE_FINE,
    SERVED,
    Predictor,
    constant_predictor,
    keras_predictor,
    served_predictor,
)
from components.evaluate.report import check_paper_table, metrics_table, render_report
from components.evaluate.scoring import (
    DEPTH,
    ScoringResult,
    gather_examples,
    pick_examples,
    score_predictors,
    split_results,
)
from components.failpoints import failpoint
from components.progress import ProgressReporter
from components.serving_contract import (
    GEOMETRY_KEY,
    METRICS_FILE,
    ServingGeometry,
    latest_version_dir,
    resolve_serving_root,
    write_blessing,
)
from components.tracking import HEADLINE_METRICS, best_effort, headline_metrics
from keras_depth.baseline import mean_log_depth
from keras_depth.data.layout import TEST, TRAIN, split_pattern
from keras_depth.data.reader import stored_size
from keras_depth.saving import load_depth_model
from keras_depth.visualize import save_depth_grid

REPORT_FILE = "report.md"
PREDICTIONS_FILE = "predictions.png"
COARSE_FILE = "coarse.keras"
FINE_FILE = "fine.keras"

# Figure columns: predictor name -> column title.
FIGURE_COLUMNS = {COARSE: "coarse", COARSE_FINE: "coarse+fine"}
MLFLOW_PREFIX = "evaluate"


def _load_model(train_dir: Path, file_name: str) -> keras.Model:
    path = train_dir / file_name
    if not path.is_file():
        raise FileNotFoundError(f"train artifact {train_dir} has no {file_name}")
    return load_depth_model(path)


def run(ctx: StageContext) -> dict:
    """Scores the baseline and both networks, writes the report and the blessing decision.

    Args:
        ctx: Stage context; reads ``config.evaluate`` and (for the served comparison) ``config.export``.

    Returns:
        Counts for ``metadata.json``: ``num_images``, ``blessed`` and, with extra datasets,
        ``extra_num_images`` (name -> images scored).
    """
    config, cfg = ctx.config, ctx.config.evaluate
    check_paper_table(cfg.paper_table)  # before the work, not after it
    ingest_dir, train_dir = ctx.inputs["ingest"].path, ctx.inputs["train"].path
    test_pattern = split_pattern(ingest_dir, TEST)

    baseline_log_depth = mean_log_depth(split_pattern(ingest_dir, TRAIN), cfg.min_depth, cfg.max_depth)
    coarse, fine = _load_model(train_dir, COARSE_FILE), _load_model(train_dir, FINE_FILE)
    _, input_height, input_width, _ = fine.input_shape
    frame_height, frame_width = stored_size(test_pattern)
    geometry = ServingGeometry(frame_height, frame_width, input_height, input_width)
    batches = evaluation_batches(test_pattern, cfg.batch_size, input_height, input_width)

    predictors = {
        BASELINE: constant_predictor(baseline_log_depth),
        COARSE: keras_predictor(coarse),
        COARSE_FINE: keras_predictor(fine),
    }
    served_dir = None
    if cfg.compare_with_served:
        model_dir = resolve_serving_root(config, ctx.run_root) / config.export.model_name
        served_dir = latest_version_dir(model_dir)
        ctx.log.info("served model to compare with: %s", served_dir or f"none under {model_dir}")
    if served_dir is not None:
        predictors[SERVED] = served_predictor(served_dir)

    num_test = ctx.inputs["ingest"].metadata.get("counts", {}).get(TEST)
    progress = (
        ProgressReporter(ctx.log, "evaluate", "scored", "images", num_test).update if num_test else None
    )
    scores = score_predictors(
        batches,
        predictors,
        cfg.crop,
        cfg.min_depth,
        cfg.max_depth,
        COARSE_FINE,
        on_batch=progress,
        prediction_size=tuple(fine.output_shape[1:3]),
    )
    if scores.images_without_native:
        ctx.log.warning(
            "%d of %d test records of %s have no native ground truth (ingested by an older version): "
            "they are scored on their stored frame, not at native resolution; rerun ingest (--force) "
            "for the paper's protocol",
            scores.images_without_native,
            scores.num_images,
            ingest_dir,
        )
    blessing = decide_blessing(
        scores.pixel[COARSE_FINE],
        scores.pixel[BASELINE] if cfg.require_beats_baseline else None,
        cfg.min_delta1,
        cfg.max_abs_rel,
        scores.pixel.get(SERVED),
    )
    examples = pick_examples(scores.ranked)
    extra = [
        score_extra_dataset(
            dataset,
            ctx.inputs[dataset.input_name],
            {name: predictors[name] for name in (COARSE, COARSE_FINE)},
            cfg,
            (input_height, input_width),
            tuple(fine.output_shape[1:3]),
            ctx.log,
        )
        for dataset in cfg.extra_datasets
    ]
    results = {
        **split_results(scores, cfg.crop, cfg.min_depth, cfg.max_depth, baseline_log_depth),
        GEOMETRY_KEY: asdict(geometry),
        "examples": {rank: {"key": key, "abs_rel": abs_rel} for rank, (abs_rel, _, key) in examples.items()},
        "blessed": blessing.blessed,
        "blessing_reasons": list(blessing.reasons),
    }
    if served_dir is not None:
        results["served_model"] = {"version": int(served_dir.name), "path": str(served_dir)}
    if extra:
        results["extra_datasets"] = {dataset.name: dataset.results for dataset in extra}

    out = ctx.output_dir
    (out / METRICS_FILE).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    failpoint("evaluate.scored")
    (out / REPORT_FILE).write_text(render_report(results, cfg.paper_table, blessing.summary()))
    _save_examples_figure(out / PREDICTIONS_FILE, batches, examples, predictors, cfg)
    write_blessing(out, blessing)

    ctx.log.info(
        "test split, %d images, pixel-pooled:\n%s",
        scores.num_images,
        metrics_table(results, served=results.get(SERVED)),
    )
    for dataset in extra:
        ctx.log.info(
            "%s (extra dataset, not part of the blessing), %d images, pixel-pooled:\n%s",
            dataset.name,
            dataset.scores.num_images,
            metrics_table(dataset.results),
        )
    ctx.log.info("%s", blessing.summary())
    if ctx.tracking:
        _log_to_mlflow(out, scores, extra, blessing.summary(), blessing.blessed)
    counts = {"num_images": scores.num_images, "blessed": blessing.blessed}
    if extra:
        counts["extra_num_images"] = {dataset.name: dataset.scores.num_images for dataset in extra}
    return counts


def _save_examples_figure(
    path: Path,
    batches: tf.data.Dataset,
    examples: dict[str, tuple[float, int, str]],
    predictors: dict[str, Predictor],
    cfg: EvaluateConfig,
) -> None:
    """RGB | ground truth | coarse | coarse+fine for the best, median and worst examples."""
    indices = [index for _, index, _ in examples.values()]
    shown = {name: predictors[name] for name in FIGURE_COLUMNS}
    rows = gather_examples(batches, indices, shown, cfg.crop, cfg.min_depth, cfg.max_depth)
    save_depth_grid(
        path,
        {"ground truth": rows[DEPTH], **{title: rows[name] for name, title in FIGURE_COLUMNS.items()}},
        images=rows[IMAGE],
        row_labels=[f"{rank}, abs rel {abs_rel:.3f}\n{key}" for rank, (abs_rel, _, key) in examples.items()],
        title="test examples by coarse+fine abs rel (network input; native ground truth of its window, metres)",
    )


def _split_metrics(prefix: str, scores: ScoringResult) -> dict[str, float]:
    """One split's MLflow metrics: ``<prefix>/<predictor>/<metric>`` (pixel-pooled),
    ``<prefix>/<predictor>/si_log_per_image`` (the paper's scale-invariant error),
    ``<prefix>/image_averaged/<predictor>/<metric>``, ``<prefix>/num_images`` and ``<prefix>/num_pixels``."""
    metrics = {
        f"{prefix}/{name}/{key}": value
        for name, values in scores.pixel.items()
        for key, value in values.items()
    }
    metrics.update(
        {f"{prefix}/{name}/si_log_per_image": values["si_log"] for name, values in scores.image.items()}
    )
    metrics.update(
        {
            f"{prefix}/image_averaged/{name}/{key}": value
            for name, values in scores.image.items()
            for key, value in values.items()
        }
    )
    metrics[f"{prefix}/num_images"] = scores.num_images
    metrics[f"{prefix}/num_pixels"] = scores.num_pixels
    return metrics


@best_effort
def _log_to_mlflow(
    out: Path, scores: ScoringResult, extra: list[DatasetScores], blessing_summary: str, blessed: bool
) -> None:
    """Logs metrics, files and the decision to the active MLflow run.

    Metrics: the headline ``test_delta1``, ``test_abs_rel``, ``test_rmse`` and ``test_si_log``
    (coarse+fine, pixel-pooled: ``components.tracking.headline_metrics``), logged first, and likewise
    ``<dataset>_delta1``, ... for each extra dataset; the test split's metrics under ``evaluate/`` and
    each extra dataset's under ``evaluate/<dataset>/`` (:func:`_split_metrics`); ``evaluate/blessed``.
    """
    import mlflow  # the runner has started the run; imported only when tracking is on

    metrics = headline_metrics(scores.pixel[COARSE_FINE])
    for dataset in extra:
        network = dataset.scores.pixel[COARSE_FINE]
        metrics.update({f"{dataset.name}_{name}": float(network[name]) for name in HEADLINE_METRICS})
    metrics.update(_split_metrics(MLFLOW_PREFIX, scores))
    for dataset in extra:
        metrics.update(_split_metrics(f"{MLFLOW_PREFIX}/{dataset.name}", dataset.scores))
    metrics[f"{MLFLOW_PREFIX}/blessed"] = int(blessed)
    mlflow.log_metrics(metrics)
    mlflow.set_tag(f"{MLFLOW_PREFIX}/blessing", blessing_summary)
    mlflow.log_artifacts(str(out), artifact_path=MLFLOW_PREFIX)
