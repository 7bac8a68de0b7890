"""Configuration of the train stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from keras_depth.config_checks import check_at_least


@dataclass
class TrainConfig:
    """Train stage: coarse phase, then fine phase with the coarse net frozen.

    Attributes:
        strategy: ``auto`` (MirroredStrategy over visible GPUs, default strategy
            on CPU), ``mirrored`` (over ``devices``), ``default`` or ``multi_worker``
            (MultiWorkerMirroredStrategy over ``TF_CONFIG``'s cluster, one local worker
            without it; every worker runs the stage, the chief writes the artifact and the
            checkpoints). Keras 3.15's ``fit`` cannot train under multi_worker
            (keras-team/keras#20585), so there the phases run a custom loop with the same
            steps, loss, history and exact-step resume.
        devices: Devices for ``mirrored``, e.g. ``["/gpu:0", "/gpu:1"]``.
        coarse_samples: Training images shown to the coarse net (paper NYU: 2M).
        fine_samples: Training images shown to the fine net (paper NYU: 1.5M).
        steps_per_epoch: Steps between validations, checkpoints and logged metrics.
        validation_steps: Validation batches per epoch (0 = the whole val split).
        checkpoint_every_steps: Extra checkpoint every N steps (0 = per epoch only).
        mixed_precision: mixed_float16 on GPU (model outputs stay float32).
        xla: Compile the train step with XLA.
        seed: Seed for weight initialisation.
    """

    strategy: Literal["auto", "mirrored", "default", "multi_worker"] = "auto"
    devices: list[str] = field(default_factory=list)
    coarse_samples: int = 2_000_000
    fine_samples: int = 1_500_000
    steps_per_epoch: int = 1000
    validation_steps: int = 0
    checkpoint_every_steps: int = 0
    mixed_precision: bool = False
    xla: bool = False
    seed: int = 0

    def validate(self) -> None:
        """Raises ``ConfigValueError`` naming the first field outside its range."""
        check_at_least(self, 1, "coarse_samples", "fine_samples", "steps_per_epoch")
        check_at_least(self, 0, "validation_steps", "checkpoint_every_steps")
