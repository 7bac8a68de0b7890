"""Configuration of the evaluate stage."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from keras_depth.config_checks import ConfigValueError, check_at_least, check_fraction, check_order

# An extra dataset's artifact is the evaluate stage's input ``dataset:<name>`` (``ExtraDatasetConfig``).
EXTRA_INPUT_PREFIX = "dataset:"
# Extra dataset names: they become MLflow metric names (``evaluate/<name>/...``, ``<name>_abs_rel``).
DATASET_NAME = re.compile(r"[a-z][a-z0-9_]*")
# Names already taken in the evaluate metrics: the test split (``test_*`` headline metrics, the
# report's ``test`` column set) and the ``evaluate/<predictor>/...`` and ``evaluate/image_averaged/...``
# namespaces.
RESERVED_DATASET_NAMES = ("test", "image_averaged", "baseline", "coarse", "coarse_fine", "served")


@dataclass
class ExtraDatasetConfig:
    """A further dataset on which evaluate scores the same networks (``evaluate.extra_datasets``).

    Exactly one of ``config`` and ``artifact`` says where it comes from; its ``test`` split is scored.
    Its stored frames must be at least the network input size (the networks see their centre crop,
    as on the test split); stored at the primary ingest's size, the crop covers the same fraction of
    the field of view.

    Attributes:
        name: The dataset's name in ``metrics.json``, the report and the MLflow metric names: lowercase
            letters, digits and ``_``, starting with a letter, none of ``RESERVED_DATASET_NAMES``.
        config: A YAML preset whose ``ingest`` section (on top of the ingest defaults; its other
            sections are not read) ingests the dataset; the pipeline ingests it as its own artifact,
            fingerprinted and reused like the main ingest. Relative paths, this one and those inside
            it (``ingest.folder.root``), are relative to the working directory, as ``--config`` is.
            ``configs/extra/*.yaml`` put every frame of the real samples in ``test``.
        artifact: An existing ingest output directory (``keras_depth.data.layout``) instead.
    """

    name: str = ""
    config: str = ""
    artifact: str = ""

    @property
    def input_name(self) -> str:
        """The key of its ingest artifact among the evaluate stage's inputs."""
        return f"{EXTRA_INPUT_PREFIX}{self.name}"

    def validate(self) -> None:
        """Raises ``ConfigValueError`` for a name that cannot be used or not exactly one origin."""
        if not DATASET_NAME.fullmatch(self.name) or self.name in RESERVED_DATASET_NAMES:
            raise ConfigValueError(
                "name",
                f"lowercase letters, digits and _ starting with a letter, not one of {list(RESERVED_DATASET_NAMES)}",
                self.name,
            )
        if bool(self.config) == bool(self.artifact):
            raise ConfigValueError(
                "config",
                "exactly one of config (a YAML preset with an ingest section) and artifact (an ingest "
                "output directory)",
                self.config,
                ("artifact",),
            )


@dataclass
class EvaluateConfig:
    """Evaluate stage: the paper's metrics on the test split and the blessing decision.

    Attributes:
        crop: Evaluation crop: ``none``, ``nyu_eigen``, ``kitti_garg`` or ``kitti_eigen``.
        min_depth: Ground truth below this (metres) is not scored.
        max_depth: Ground truth above this is not scored; predictions are capped to it.
        batch_size: Images per inference batch.
        min_delta1: Blessing threshold: coarse+fine delta1 must reach this.
        max_abs_rel: Blessing threshold: coarse+fine abs rel must not exceed this.
        require_beats_baseline: Require lower abs rel and RMSE than the constant mean-depth
            baseline (off only for presets whose tiny models are not meant to learn, e.g. smoke).
        compare_with_served: Also require not being worse (abs rel) than the model
            currently served under the serving root.
        paper_table: Paper column to print beside ours: ``nyu``, ``kitti`` or empty.
        extra_datasets: Further datasets on which the same networks are scored with the same
            protocol, each a column set in the report and in MLflow (cross-dataset evaluation, e.g.
            trained on synthetic rooms, scored on real frames); the blessing uses the test split only.
    """

    crop: Literal["none", "nyu_eigen", "kitti_garg", "kitti_eigen"] = "none"
    min_depth: float = 1e-3
    max_depth: float = 10.0
    batch_size: int = 16
    min_delta1: float = 0.0
    max_abs_rel: float = 10.0
    require_beats_baseline: bool = True
    compare_with_served: bool = True
    paper_table: Literal["", "nyu", "kitti"] = ""
    extra_datasets: list[ExtraDatasetConfig] = field(default_factory=list)

    def validate(self) -> None:
        """Raises ``ConfigValueError`` naming the first field outside its range or the
        ``extra_datasets[i]`` entry that cannot work (a bad entry, a name used twice)."""
        check_at_least(self, 0, "min_depth", "max_abs_rel")
        check_order(self, "min_depth", "max_depth")
        check_at_least(self, 1, "batch_size")
        check_fraction(self, "min_delta1")
        names = [dataset.name for dataset in self.extra_datasets]
        for index, dataset in enumerate(self.extra_datasets):
            prefix = f"extra_datasets[{index}]"
            try:
                dataset.validate()
            except ConfigValueError as err:
                related = tuple(f"{prefix}.{name}" for name in err.related)
                raise ConfigValueError(f"{prefix}.{err.field}", err.expected, err.value, related) from None
            if dataset.name in names[:index]:
                raise ConfigValueError(
                    f"{prefix}.name", "a name not used by an entry before it", dataset.name
                )
