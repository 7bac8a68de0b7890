"""The contract between the evaluate and export stages and the model they put into service, in one place.

Evaluate writes what export reads, and both find the served model the same way; neither stage package
imports the other (``tests/test_layering.py``). This module holds what they share:

- the names of the SavedModel's signatures, inputs and outputs (written by
  :mod:`components.export.signatures`, called by :mod:`components.evaluate.predictors`). ``serving/``
  imports no project code and keeps its own copy in :mod:`serving.contract`;
  ``tests/components/test_serving_contract.py`` keeps the two equal;
- :class:`ServingGeometry`, the stored frame and network input sizes that evaluation scored with,
  recorded under ``geometry`` in the evaluate artifact's ``metrics.json`` (:func:`read_geometry`);
- the blessing decision's files, ``BLESSED`` or ``NOT_BLESSED`` in the evaluate artifact, one reason
  per line (:func:`write_blessing`, :func:`read_blessing`); the rules are in
  :mod:`components.evaluate.blessing`;
- where served models live: ``<serving_root>/<model_name>/<version>/`` with integer versions, the layout
  TF Serving's ``--model_base_path`` expects (:func:`resolve_serving_root`, :func:`latest_version_dir`).

Pure Python: importing it loads neither TensorFlow nor Keras.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# Signature keys (TF Serving's ``signature_name``).
SERVING_DEFAULT = "serving_default"
BYTES_SIGNATURE = "predict_image_bytes"
# Inputs: float32 [N, H, W, 3] RGB 0..255, and PNG/JPEG strings [N].
IMAGES_INPUT = "images"
BYTES_INPUT = "image_bytes"
# Outputs: depth and log depth [N, h, w] (metres, natural log of metres) on the network's output grid,
# and depth [N, H, W] at the request's size (0 outside the network's window).
DEPTH_OUTPUT = "depth"
LOG_DEPTH_OUTPUT = "log_depth"
DEPTH_FULL_OUTPUT = "depth_full"
# Every name above: the set ``serving/contract.py`` must repeat verbatim.
SIGNATURE_NAMES = {
    "SERVING_DEFAULT": SERVING_DEFAULT,
    "BYTES_SIGNATURE": BYTES_SIGNATURE,
    "IMAGES_INPUT": IMAGES_INPUT,
    "BYTES_INPUT": BYTES_INPUT,
    "DEPTH_OUTPUT": DEPTH_OUTPUT,
    "LOG_DEPTH_OUTPUT": LOG_DEPTH_OUTPUT,
    "DEPTH_FULL_OUTPUT": DEPTH_FULL_OUTPUT,
}

# The evaluate artifact's metrics file and its entry holding the serving geometry.
METRICS_FILE = "metrics.json"
GEOMETRY_KEY = "geometry"

BLESSED_FILE = "BLESSED"
NOT_BLESSED_FILE = "NOT_BLESSED"

# Under the pipeline's --output-dir when export.serving_root is empty.
DEFAULT_SERVING_DIR = "serving"


@dataclass(frozen=True)
class ServingGeometry:
    """Where the network's input window lies in an image (see :mod:`components.export.signatures`).

    Attributes:
        frame_height: Height of the stored test frames evaluation crops from (pixels).
        frame_width: Width of the stored test frames (pixels).
        input_height: Network input height (pixels).
        input_width: Network input width (pixels).
    """

    frame_height: int
    frame_width: int
    input_height: int
    input_width: int

    def __post_init__(self) -> None:
        if self.input_height > self.frame_height or self.input_width > self.frame_width:
            raise ValueError(
                f"network input {self.input_height}x{self.input_width} is larger than the stored frame "
                f"{self.frame_height}x{self.frame_width}; the evaluation centre crop needs input <= frame"
            )

    def frame_window(self) -> tuple[int, int]:
        """``(top, left)`` of the evaluation centre crop in a stored frame (pixels); an odd leftover
        row or column is dropped at the bottom or right, as ``keras_depth.augment.center_crop_pair``."""
        return (self.frame_height - self.input_height) // 2, (self.frame_width - self.input_width) // 2


def read_geometry(evaluate_dir: str | Path) -> ServingGeometry:
    """The stored frame and network input sizes an evaluate artifact scored with.

    Args:
        evaluate_dir: An evaluate artifact directory.

    Raises:
        FileNotFoundError: If the artifact has no ``metrics.json``.
        KeyError: naming the file if it has no ``geometry`` entry.
    """
    path = Path(evaluate_dir) / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"evaluate artifact {evaluate_dir} has no {METRICS_FILE}")
    metrics = json.loads(path.read_text())
    if GEOMETRY_KEY not in metrics:
        raise KeyError(f"{path}: no '{GEOMETRY_KEY}' entry (written by the evaluate stage)")
    return ServingGeometry(**metrics[GEOMETRY_KEY])


@dataclass(frozen=True)
class Blessing:
    """A blessing decision.

    Attributes:
        blessed: True when every rule holds.
        reasons: Why: the failed rules when not blessed, the rules that held when blessed.
    """

    blessed: bool
    reasons: tuple[str, ...]

    @property
    def file_name(self) -> str:
        """``BLESSED`` or ``NOT_BLESSED``."""
        return BLESSED_FILE if self.blessed else NOT_BLESSED_FILE

    def summary(self) -> str:
        """One line: ``BLESSED: ...`` or ``NOT_BLESSED: <reason>; <reason>``."""
        return f"{self.file_name}: {'; '.join(self.reasons)}"


def write_blessing(output_dir: str | Path, blessing: Blessing) -> Path:
    """Writes ``BLESSED`` or ``NOT_BLESSED`` (one reason per line) into ``output_dir``; returns its path."""
    path = Path(output_dir) / blessing.file_name
    path.write_text("".join(f"{reason}\n" for reason in blessing.reasons))
    return path


def read_blessing(artifact_dir: str | Path) -> Blessing:
    """Reads the decision written by :func:`write_blessing`.

    Args:
        artifact_dir: An evaluate artifact directory.

    Returns:
        The decision and its reasons.

    Raises:
        FileNotFoundError: If the directory has neither ``BLESSED`` nor ``NOT_BLESSED``.
        ValueError: If it has both.
    """
    artifact_dir = Path(artifact_dir)
    present = [name for name in (BLESSED_FILE, NOT_BLESSED_FILE) if (artifact_dir / name).is_file()]
    if not present:
        raise FileNotFoundError(f"{artifact_dir}: no {BLESSED_FILE} or {NOT_BLESSED_FILE} file")
    if len(present) > 1:
        raise ValueError(f"{artifact_dir}: has both {BLESSED_FILE} and {NOT_BLESSED_FILE}")
    (name,) = present
    reasons = tuple(line for line in (artifact_dir / name).read_text().splitlines() if line)
    return Blessing(blessed=name == BLESSED_FILE, reasons=reasons)


def resolve_serving_root(config, run_root: str | Path) -> Path:
    """The serving root of a pipeline run.

    Args:
        config: The resolved ``PipelineConfig`` (reads ``export.serving_root``).
        run_root: The pipeline's ``--output-dir``.

    Returns:
        ``config.export.serving_root`` when set, else ``<run_root>/serving``.
    """
    if config.export.serving_root:
        return Path(config.export.serving_root)
    return Path(run_root) / DEFAULT_SERVING_DIR


def served_versions(model_dir: str | Path) -> list[int]:
    """Integer versions present under ``<serving_root>/<model_name>/``, ascending.

    Args:
        model_dir: ``<serving_root>/<model_name>/`` (need not exist).

    Returns:
        The versions whose directory name is a positive integer; staging and other directories are
        ignored.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(
        int(child.name)
        for child in model_dir.iterdir()
        if child.is_dir() and child.name.isdigit() and int(child.name) > 0
    )


def latest_version_dir(model_dir: str | Path) -> Path | None:
    """The directory of the highest served version, or None when nothing is served."""
    versions = served_versions(model_dir)
    return Path(model_dir) / str(versions[-1]) if versions else None
