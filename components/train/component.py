"""The train stage: ingest's TFRecords -> trained coarse and fine networks, history, figures, summary.

Reads ``<ingest>/train/`` (training, augmented) and ``<ingest>/val/`` (validation after every epoch, the
prediction grids and the constant baseline) and writes into the stage's output directory:

- ``coarse.keras``, ``fine.keras``: the trained models (with their optimizer state; the fine model
  embeds the frozen coarse one);
- ``history.json``: per-epoch records of both phases (``{"coarse": [...], "fine": [...]}``);
- ``summary.json``: steps per phase, final val metrics of both phases and of the mean-log-depth
  baseline, throughput, replicas, strategy, seconds;
- ``training_curves.png``, ``val_predictions_coarse.png``, ``val_predictions_fine.png``.

The artifact is published by the runner only when ``run`` returns, i.e. after both phases.

Under ``train.strategy: multi_worker`` every worker of ``TF_CONFIG``'s cluster runs the stage; the chief
(task 0) writes the artifact and the work directory, the other workers write into temporary directories
that they delete (their ``output_dir`` stays empty) and do not log to MLflow.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import keras
import tensorflow as tf

from components.base import StageContext
from components.train import tracking
from components.train.phases import COARSE, FINE, PhaseRunner, PhaseSpec, plan_phases
from components.train.report import TrainReport
from components.train.strategy import is_chief, make_strategy, precision_policy, worker_dir
from keras_depth.baseline import evaluate_constant_baseline, mean_log_depth
from keras_depth.data.layout import STATS_FILE, TRAIN, VAL, split_pattern
from keras_depth.data.reader import make_dataset

PREDICTION_EXAMPLES = 4

COARSE_MODEL_FILE = "coarse.keras"
FINE_MODEL_FILE = "fine.keras"


def read_split_counts(ingest_dir: Path) -> dict[str, int]:
    """Examples per split from the ingest artifact's ``stats.json``.

    Raises:
        FileNotFoundError: naming the file when it is missing.
        ValueError: naming the split when train or val is empty.
    """
    stats_path = Path(ingest_dir) / STATS_FILE
    if not stats_path.is_file():
        raise FileNotFoundError(f"ingest artifact has no {STATS_FILE}: {stats_path}")
    counts = {split: int(count) for split, count in json.loads(stats_path.read_text())["counts"].items()}
    for split in (TRAIN, VAL):
        if counts.get(split, 0) <= 0:
            raise ValueError(
                f"{stats_path}: the {split} split is empty; training needs train and val examples "
                "(ingest.train_fraction and ingest.val_fraction > 0)"
            )
    return counts


def build_datasets(cfg, ingest_dir: Path, counts: Mapping[str, int], global_batch: int) -> tuple:
    """The training and validation datasets of global batches.

    Args:
        cfg: Pipeline config (``model``, ``data``, ``augment``, ``train.validation_steps``).
        ingest_dir: The ingest artifact.
        counts: Examples per split (from ``stats.json``): the train count decides whether the reader
            caches the decoded split in memory (``data.cache_max_mb``), the val count sizes the val set.
        global_batch: Images per optimizer step over all replicas.

    Returns:
        ``(train, val)``: the infinite, augmented training dataset and the finite val dataset (the
        first ``validation_steps`` batches, or the whole split), both of ``(image, depth)`` batches.
    """
    train_data = make_dataset(
        split_pattern(ingest_dir, TRAIN),
        cfg,
        training=True,
        batch_size=global_batch,
        num_records=counts[TRAIN],
    )
    # The known length gives the progress bar its size and checks stats.json against the shards.
    val_data = make_dataset(
        split_pattern(ingest_dir, VAL), cfg, training=False, batch_size=global_batch
    ).apply(tf.data.experimental.assert_cardinality(math.ceil(counts[VAL] / global_batch)))
    if cfg.train.validation_steps > 0:
        # The same first batches every epoch (a persistent iterator would move on through the split).
        val_data = val_data.take(cfg.train.validation_steps)
    return train_data, val_data


def val_baseline(cfg, ingest_dir: Path, val_data: tf.data.Dataset) -> dict[str, float]:
    """The paper's "mean" baseline: the train split's mean log depth, scored on ``val_data``.

    Returns:
        ``log_depth`` (the constant), ``depth_m`` (its depth in metres) and the depth metrics.
    """
    min_depth, max_depth = cfg.loss.min_depth, cfg.loss.max_depth
    log_depth = mean_log_depth(split_pattern(ingest_dir, TRAIN), min_depth, max_depth)
    scores = evaluate_constant_baseline(val_data, log_depth, min_depth, max_depth)
    return {"log_depth": log_depth, "depth_m": math.exp(log_depth), **scores}


def run(ctx: StageContext) -> dict:
    """Trains both phases (see :func:`train`); the ``StageDefinition.run`` of the stage."""
    return train(ctx)


def train(
    ctx: StageContext, extra_callbacks: Mapping[str, Sequence[keras.callbacks.Callback]] | None = None
) -> dict:
    """Trains the coarse, then the fine network, and writes the artifact into ``ctx.output_dir``.

    Args:
        ctx: The stage context (``inputs["ingest"]`` is the TFRecord artifact).
        extra_callbacks: Phase name -> extra Keras callbacks of that phase (tests use it to inject a
            crash); called after the stage's own callbacks.

    Returns:
        Counts for ``metadata.json``: steps per phase, replicas, global batch.
    """
    started = time.monotonic()
    cfg, ingest = ctx.config, ctx.inputs["ingest"]
    counts = read_split_counts(ingest.path)
    strategy = make_strategy(cfg.train)
    tracked = ctx.tracking and is_chief(strategy)
    replicas = strategy.num_replicas_in_sync
    global_batch = cfg.data.batch_size * replicas
    coarse_spec, fine_spec = plan_phases(
        cfg.train.coarse_samples, cfg.train.fine_samples, cfg.train.steps_per_epoch, global_batch
    )
    train_data, val_data = build_datasets(cfg, ingest.path, counts, global_batch)
    ctx.log.info(
        "train: %s, %d replica(s), global batch %d; coarse %d steps, fine %d steps (%d per epoch)",
        type(strategy).__name__,
        replicas,
        global_batch,
        coarse_spec.total_steps,
        fine_spec.total_steps,
        cfg.train.steps_per_epoch,
    )
    baseline = val_baseline(cfg, ingest.path, val_data)
    ctx.log.info(
        "val mean-depth baseline (%.3f m everywhere): delta1 %.3f, abs_rel %.3f, rmse %.3f",
        baseline["depth_m"],
        baseline["delta1"],
        baseline["abs_rel"],
        baseline["rmse"],
    )
    grid_data = make_dataset(
        split_pattern(ingest.path, VAL), cfg, training=False, batch_size=PREDICTION_EXAMPLES
    )
    images, depth = next(grid_data.as_numpy_iterator())

    def callbacks_for(spec: PhaseSpec) -> list[keras.callbacks.Callback]:
        own = [tracking.MlflowEpochLogger(spec.name, spec.epoch_offset)] if tracked else []
        return own + list((extra_callbacks or {}).get(spec.name, ()))

    with (
        worker_dir(strategy, Path(ctx.output_dir)) as out,
        worker_dir(strategy, Path(ctx.work_dir)) as work_dir,
        precision_policy(cfg.train.mixed_precision, ctx.log) as policy,
    ):
        report = TrainReport(out, global_batch, cfg.loss, images, depth, ctx.log, tracked)
        runner = PhaseRunner(
            cfg, strategy, train_data, val_data, global_batch, Path(ctx.work_dir), ctx.log, work_dir
        )
        if tracked:
            tracking.log_params(
                {
                    "dataset_fingerprint": ingest.fingerprint,
                    **{f"examples_{split}": count for split, count in counts.items()},
                    "strategy_class": type(strategy).__name__,
                    "replicas": replicas,
                    "global_batch_size": global_batch,
                    "coarse_steps": coarse_spec.total_steps,
                    "fine_steps": fine_spec.total_steps,
                    "precision_policy": policy,
                    "tensorflow_version": tf.__version__,
                    "keras_version": keras.__version__,
                }
            )
            tracking.log_baseline(baseline)
        coarse = runner.coarse(coarse_spec, callbacks_for(coarse_spec))
        report.phase_done(coarse, {COARSE: coarse.model})
        fine = runner.fine(fine_spec, coarse.model, callbacks_for(fine_spec))
        report.phase_done(fine, {COARSE: coarse.model, FINE: fine.model})
        shutil.copyfile(runner.marker(COARSE), out / COARSE_MODEL_FILE)
        fine.model.save(out / FINE_MODEL_FILE)
        report.finish(
            {
                "strategy": type(strategy).__name__,
                "replicas": replicas,
                "per_replica_batch_size": cfg.data.batch_size,
                "global_batch_size": global_batch,
                "precision_policy": policy,
                "xla": cfg.train.xla,
                "dataset": {"fingerprint": ingest.fingerprint, "counts": counts},
                "val_baseline": baseline,
                "seconds": round(time.monotonic() - started, 3),
                "tensorflow_version": tf.__version__,
                "keras_version": keras.__version__,
            }
        )
        if tracked:
            tracking.log_files([out / COARSE_MODEL_FILE, out / FINE_MODEL_FILE], tracking.MODELS_ARTIFACT_DIR)
    return {
        "coarse_steps": coarse_spec.total_steps,
        "fine_steps": fine_spec.total_steps,
        "replicas": replicas,
        "global_batch_size": global_batch,
    }
