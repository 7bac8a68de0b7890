"""Configuration of the train stage."""

from __future__ import annotations

from dataclasses import dataclass, field


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

    strategy: str = "auto"
    devices: list[str] = field(default_factory=list)
    coarse_samples: int = 2_000_000
    fine_samples: int = 1_500_000
    steps_per_epoch: int = 1000
    validation_steps: int = 0
    checkpoint_every_steps: int = 0
    mixed_precision: bool = False
    xla: bool = False
    seed: int = 0
