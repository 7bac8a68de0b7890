"""`make quality`: the method against the model a Keras user would try instead, at equal budget.

Reads the artifacts of an existing pipeline run (``make run``) in ``--run-dir``: the newest completed
train artifact, its resolved config and trained coarse and fine networks, and the ingest artifact it
was trained on. Then:

1. **Budget.** The wall-clock seconds the run spent training both networks: the sum of every epoch's
   ``train_seconds`` in the train artifact's ``history.json`` (graph tracing included, per-epoch
   validation and checkpointing excluded), unless ``--seconds`` overrides it.
2. **Reference.** A small U-Net in the style of the keras.io "Monocular depth estimation" example
   (``keras_depth.models.reference_unet``) is trained from scratch on the same training TFRecords, read
   and augmented by the same reader (``keras_depth.data.reader.make_dataset`` with the run's ``model``,
   ``data`` and ``augment`` sections), in batches of ``data.batch_size``, with Adam (the example's
   optimizer; ``--learning-rate``) until the budget is spent (:class:`TimeBudget`), on this machine.
   Loss: the run's scale-invariant loss (``loss``: lambda and valid depth range), not the example's
   SSIM + L1 + smoothness on log depth. Our targets have invalid pixels (depth 0) that a masked
   per-pixel loss skips but SSIM's and the smoothness term's windows would straddle, and with the same
   objective the comparison is one of architecture and optimizer at equal time.
3. **Scoring.** The mean-depth baseline, coarse, coarse+fine and the U-Net are scored together by the
   evaluate stage's code (``components.evaluate.scoring.score_predictors``) on the run's test split,
   with the run's ``evaluate`` crop and depth range: the same pixels, the same metrics (pixel-pooled;
   SI log per image, the paper's; the edge log-gradient error one network output pixel out).

Writes ``<results-dir>/quality-<date>-<host>.json`` (every metric, budgets, steps, machine and versions)
and the Markdown table ``quality-<date>-<host>.md`` next to it, and prints the table. The budget is the
run's own measurement: run ``make run`` and ``make quality`` on the same machine, with nothing else
running, for the comparison to be at equal wall-clock time.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import keras

from benchmarks.environment import describe
from benchmarks.run import DEFAULT_RESULTS_DIR
from components.base import Artifact
from components.evaluate.batches import evaluation_batches
from components.evaluate.predictors import BASELINE, COARSE, COARSE_FINE, constant_predictor, keras_predictor
from components.evaluate.scoring import ScoringResult, score_predictors, split_results
from components.train.component import COARSE_MODEL_FILE, FINE_MODEL_FILE
from components.train.report import HISTORY_FILE
from components.train.strategy import precision_policy
from keras_depth.baseline import mean_log_depth
from keras_depth.data.layout import TEST, TRAIN, split_pattern
from keras_depth.data.reader import make_dataset
from keras_depth.losses import ScaleInvariantLoss
from keras_depth.models.reference_unet import build_reference_unet
from keras_depth.saving import load_depth_model
from pipeline.artifacts import ArtifactStore
from pipeline.config import PipelineConfig, load_config
from pipeline.runner import RESOLVED_CONFIG_FILE

UNET = "unet"
# Table rows: (predictor name, row label), in the order.
ROWS = ((BASELINE, "mean-depth"), (COARSE, "coarse"), (COARSE_FINE, "coarse+fine"), (UNET, "U-Net"))
# Table columns: (row key, header, format).
COLUMNS = (
    ("delta1", "delta < 1.25", "{:.3f}"),
    ("abs_rel", "abs rel", "{:.3f}"),
    ("rmse", "RMSE (m)", "{:.3f}"),
    ("si_log_per_image", "SI log (per image)", "{:.3f}"),
    ("edge_log_grad", "edge log-grad error", "{:.3f}"),
    ("train_seconds", "training (s)", "{:.0f}"),
    ("parameters", "parameters", "{:,}"),
)
MISSING = "–"
# Adam's learning rate: Keras's default. The example's 2e-4 suits its 30 epochs of 9 steps; a budget of a
# few minutes on CPU gives the U-Net a few hundred steps.
DEFAULT_LEARNING_RATE = 1e-3
RESULT_PREFIX = "quality"

log = logging.getLogger("keras_depth.quality")


class NoRunError(RuntimeError):
    """``--run-dir`` holds no completed pipeline run to compare against."""


class TimeBudget(keras.callbacks.Callback):
    """Stops ``fit`` once ``seconds`` of wall-clock time have passed since training began.

    Checked after every step, so training overruns the budget by at most one step. Attributes after
    ``fit``: ``steps`` (optimizer steps taken) and ``elapsed`` (seconds from the start of training to
    the end of the last step).

    Args:
        seconds: The budget in seconds (> 0).
    """

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.steps = 0
        self.elapsed = 0.0
        self._started = 0.0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._started = time.monotonic()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.steps += 1
        self.elapsed = time.monotonic() - self._started
        if self.elapsed >= self.seconds:
            self.model.stop_training = True


def find_run(run_dir: Path) -> tuple[Artifact, Artifact]:
    """The newest completed train artifact of a run directory and the ingest artifact it was trained on.

    Raises:
        NoRunError: naming the directory when either is missing (run ``make run`` first).
    """
    store = ArtifactStore(run_dir)
    train = store.latest("train")
    if train is None:
        raise NoRunError(
            f"no completed train artifact under {store.root / 'train'}: run `make run` (or "
            f"`python -m pipeline.run --output-dir {run_dir}`) first"
        )
    ingest_fingerprint = train.metadata.get("inputs", {}).get("ingest", {}).get("fingerprint", "")
    ingest = store.load("ingest", ingest_fingerprint)
    if ingest is None:
        raise NoRunError(
            f"train artifact {train.path} was trained on ingest artifact {ingest_fingerprint!r}, which is "
            f"no longer complete under {store.root / 'ingest'}: rerun `make run`"
        )
    return train, ingest


def phase_training_seconds(train_dir: Path) -> dict[str, float]:
    """Phase name -> seconds spent training it (sum of its epochs' ``train_seconds``).

    Raises:
        ValueError: naming ``history.json`` when it has no epoch with ``train_seconds``.
    """
    path = train_dir / HISTORY_FILE
    history = json.loads(path.read_text())
    seconds = {
        phase: sum(record.get("train_seconds", 0.0) for record in records)
        for phase, records in history.items()
    }
    if not any(seconds.values()):
        raise ValueError(f"{path}: no epoch records with 'train_seconds'; expected the train stage's history")
    return seconds


def train_reference(
    cfg: PipelineConfig, ingest_dir: Path, seconds: float, learning_rate: float
) -> tuple[keras.Model, dict]:
    """Trains the U-Net on the run's training split for ``seconds`` of wall-clock time.

    Args:
        cfg: The run's resolved config (``model``, ``data``, ``augment``, ``loss``, ``train.seed``,
            ``train.xla``, ``train.mixed_precision``).
        ingest_dir: The run's ingest artifact.
        seconds: Training budget in seconds.
        learning_rate: Adam's learning rate.

    Returns:
        The trained model and its training record: ``steps``, ``images``, ``seconds`` (wall-clock, to
        the end of the last step), ``images_per_sec``, ``final_loss`` (mean over the last epoch run),
        ``learning_rate``, ``batch_size``, ``precision_policy``.
    """
    keras.utils.set_random_seed(cfg.train.seed)
    batch_size = cfg.data.batch_size
    train_data = make_dataset(split_pattern(ingest_dir, TRAIN), cfg, training=True, batch_size=batch_size)
    budget = TimeBudget(seconds)
    with precision_policy(cfg.train.mixed_precision, log) as policy:
        model = build_reference_unet(cfg.model)
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss=ScaleInvariantLoss.from_config_section(cfg.loss),
            jit_compile=bool(cfg.train.xla),
        )
        # Epochs only bound a fit call; the budget ends training (an epoch per train.steps_per_epoch steps).
        epochs = sys.maxsize // cfg.train.steps_per_epoch
        history = model.fit(
            train_data,
            epochs=epochs,
            steps_per_epoch=cfg.train.steps_per_epoch,
            callbacks=[budget],
            verbose=0,
        )
    images = budget.steps * batch_size
    return model, {
        "steps": budget.steps,
        "images": images,
        "seconds": round(budget.elapsed, 3),
        "images_per_sec": images / budget.elapsed if budget.elapsed else 0.0,
        "final_loss": history.history["loss"][-1],
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "precision_policy": policy,
    }


def score_all(
    cfg: PipelineConfig, ingest_dir: Path, models: Mapping[str, keras.Model]
) -> tuple[ScoringResult, float]:
    """Scores the mean-depth baseline and ``models`` together on the test split, as the evaluate stage does.

    Args:
        cfg: The run's config (``evaluate``: crop, depth range, batch size).
        ingest_dir: The run's ingest artifact.
        models: Predictor name -> network mapping the centre crop to log depth at the run's output size.

    Returns:
        The scores (every predictor on the same pixels) and the baseline's constant (natural log of
        metres): ``(scores, baseline_log_depth)``.
    """
    evaluate = cfg.evaluate
    baseline_log_depth = mean_log_depth(
        split_pattern(ingest_dir, TRAIN), evaluate.min_depth, evaluate.max_depth
    )
    batches = evaluation_batches(
        split_pattern(ingest_dir, TEST), evaluate.batch_size, cfg.model.input_height, cfg.model.input_width
    )
    predictors = {BASELINE: constant_predictor(baseline_log_depth)}
    predictors.update({name: keras_predictor(model) for name, model in models.items()})
    scores = score_predictors(
        batches,
        predictors,
        evaluate.crop,
        evaluate.min_depth,
        evaluate.max_depth,
        COARSE_FINE,
        prediction_size=(cfg.model.output_height, cfg.model.output_width),
    )
    return scores, baseline_log_depth


def table_rows(
    scores: ScoringResult, train_seconds: Mapping[str, float], parameters: Mapping[str, int]
) -> list:
    """One dict per table row: ``name``, ``label`` and the ``COLUMNS`` keys (None where not applicable)."""
    rows = []
    for name, label in ROWS:
        pixel = scores.pixel[name]
        rows.append(
            {
                "name": name,
                "label": label,
                "delta1": pixel["delta1"],
                "abs_rel": pixel["abs_rel"],
                "rmse": pixel["rmse"],
                "si_log_per_image": scores.image[name]["si_log"],
                "edge_log_grad": pixel.get("edge_log_grad"),
                "train_seconds": train_seconds.get(name),
                "parameters": parameters.get(name),
            }
        )
    return rows


def render_markdown(result: Mapping) -> str:
    """The comparison table with the machine, versions and how it was measured, as Markdown."""
    header = "| | " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    lines = [header, "|---" * (len(COLUMNS) + 1) + "|"]
    for row in result["rows"]:
        cells = [MISSING if row[key] is None else fmt.format(row[key]) for key, _, fmt in COLUMNS]
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    environment, unet, run = result["environment"], result["unet"], result["run"]
    protocol, versions = result["test"]["protocol"], environment["versions"]
    return "\n".join(
        [
            f"# Quality at equal budget ({environment['date'][:10]}, preset `{run['preset']}`)",
            "",
            *lines,
            "",
            f"Test split: {result['test']['num_images']} images, {protocol['num_pixels']} pixels, crop "
            f"`{protocol['crop']}`, depth [{protocol['min_depth']:g}, {protocol['max_depth']:g}] m; delta, "
            "abs rel, RMSE and the edge error pixel-pooled, SI log per image then averaged (the evaluate "
            "stage's code).",
            f"Budget: {result['budget_seconds']:.0f} s ({result['budget_source']}). U-Net: {unet['steps']} "
            f"steps of {unet['batch_size']} images ({unet['images_per_sec']:.1f} images/s), Adam lr "
            f"{unet['learning_rate']:g}, scale-invariant loss; coarse: {run['coarse_steps']} steps of SGD, "
            f"fine: {run['fine_steps']} steps ({run['fine_optimizer']}).",
            f"Machine: {environment['device']} (host {environment['host']}); Python {versions['python']}, "
            f"TensorFlow {versions['tensorflow']}, Keras {versions['keras']}.",
            "",
        ]
    )


def run_quality(run_dir: Path, results_dir: Path, seconds: float | None, learning_rate: float) -> dict:
    """Trains the reference, scores all four, writes the JSON and Markdown results; returns the result."""
    train, ingest = find_run(run_dir)
    cfg = load_config(train.path / RESOLVED_CONFIG_FILE)
    phases = phase_training_seconds(train.path)
    budget = seconds if seconds is not None else sum(phases.values())
    source = "--seconds" if seconds is not None else f"the run's coarse + fine training, {HISTORY_FILE}"
    log.info("training the U-Net for %.0f s (%s)", budget, source)
    unet, unet_record = train_reference(cfg, ingest.path, budget, learning_rate)
    coarse = load_depth_model(train.path / COARSE_MODEL_FILE, compile=False)
    fine = load_depth_model(train.path / FINE_MODEL_FILE, compile=False)
    log.info("scoring mean-depth, coarse, coarse+fine and the U-Net on the test split")
    scores, baseline_log_depth = score_all(cfg, ingest.path, {COARSE: coarse, COARSE_FINE: fine, UNET: unet})
    train_seconds = {
        COARSE: phases.get(COARSE),
        COARSE_FINE: sum(phases.values()),
        UNET: unet_record["seconds"],
    }
    parameters = {
        BASELINE: 1,
        COARSE: coarse.count_params(),
        COARSE_FINE: fine.count_params(),
        UNET: unet.count_params(),
    }
    environment = describe()
    counts = train.metadata.get("counts", {})
    result = {
        "environment": environment,
        "run": {
            "run_dir": str(run_dir),
            "preset": cfg.preset,
            "train_artifact": str(train.path),
            "train_fingerprint": train.fingerprint,
            "ingest_fingerprint": ingest.fingerprint,
            "train_end_time": train.metadata.get("end_time"),
            "train_stage_seconds": train.metadata.get("seconds"),
            "phase_training_seconds": phases,
            "coarse_steps": counts.get("coarse_steps"),
            "fine_steps": counts.get("fine_steps"),
            "fine_optimizer": f"{cfg.optimizer.fine_algorithm}, {cfg.optimizer.fine_schedule} rate",
            "replicas": counts.get("replicas"),
        },
        "budget_seconds": budget,
        "budget_source": source,
        "unet": unet_record,
        "rows": table_rows(scores, train_seconds, parameters),
        "test": split_results(
            scores, cfg.evaluate.crop, cfg.evaluate.min_depth, cfg.evaluate.max_depth, baseline_log_depth
        ),
    }
    markdown = render_markdown(result)
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{RESULT_PREFIX}-{environment['date'][:10]}-{environment['host']}"
    json_path, markdown_path = results_dir / f"{stem}.json", results_dir / f"{stem}.md"
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    markdown_path.write_text(markdown)
    print(markdown)
    print(f"results: {json_path}, {markdown_path}")
    return result


def positive_number(text: str) -> float:
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.quality",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--run-dir", type=Path, default=Path("runs"), help="output directory of `make run`")
    parser.add_argument(
        "--seconds",
        type=positive_number,
        default=None,
        help="U-Net training budget in seconds (default: the run's coarse + fine training time)",
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=DEFAULT_RESULTS_DIR,
        help="where quality-<date>-<host>.json and .md go (default benchmarks/results)",
    )
    parser.add_argument(
        "--learning-rate", type=positive_number, default=DEFAULT_LEARNING_RATE, help="Adam's learning rate"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S"
    )
    try:
        run_quality(args.run_dir, args.results_dir, args.seconds, args.learning_rate)
    except NoRunError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
