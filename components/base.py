"""The contract between the stage runner (``pipeline``) and the components.

Each component package ``components/<stage>/`` exposes ``STAGE``, a
:class:`StageDefinition`. The runner computes the stage's fingerprint from its
name, ``parameters(config)``, the fingerprints of its inputs and the package
version, then calls ``run(context)`` with a temporary output directory that it
renames into place only when ``run`` returns.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Artifact:
    """A completed stage output.

    Attributes:
        stage: Stage that produced it.
        fingerprint: Its fingerprint (the directory name).
        path: ``<output_dir>/pipeline_root/<stage>/<fingerprint>/``.
        metadata: The parsed ``metadata.json``.
    """

    stage: str
    fingerprint: str
    path: Path
    metadata: dict


@dataclass
class StageContext:
    """What a component's ``run`` gets.

    Attributes:
        config: The resolved ``pipeline.config.PipelineConfig``.
        output_dir: Temporary directory to write the artifact into; published
            atomically (renamed to ``<stage>/<fingerprint>/``) when ``run`` returns.
        work_dir: Directory that survives a crash and a rerun of the same
            fingerprint (for checkpoints); removed after a successful publish.
        inputs: Upstream artifacts by stage name.
        run_root: The pipeline's ``--output-dir``.
        fingerprint: This stage's fingerprint.
        beam_args: Extra Beam options from the command line (``--beam-arg``).
        tracking: True when an MLflow run for this stage is active
            (``mlflow.log_*`` go to it); False when tracking is disabled.
        log: Logger for progress lines.
    """

    config: Any
    output_dir: Path
    work_dir: Path
    inputs: dict[str, Artifact]
    run_root: Path
    fingerprint: str
    beam_args: list[str] = field(default_factory=list)
    tracking: bool = False
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("keras_depth.stage"))


@dataclass(frozen=True)
class StageDefinition:
    """A stage: its upstream stages, the config that defines its output, and its work.

    Attributes:
        name: Stage name (``ingest``, ``train``, ``evaluate``, ``export``).
        inputs: Names of the upstream stages whose artifacts it reads.
        parameters: Maps the pipeline config to the plain dict of settings that
            determine the output (part of the fingerprint).
        run: Does the work into ``context.output_dir``; returns counts (a plain
            dict) recorded in ``metadata.json``.
    """

    name: str
    inputs: tuple[str, ...]
    parameters: Callable[[Any], dict]
    run: Callable[[StageContext], dict]


def run_from(module: str) -> Callable[[StageContext], dict]:
    """A ``run`` that imports ``module`` and calls its ``run`` only when the stage executes.

    Stage packages define ``STAGE`` with configuration imports only, so loading a pipeline config (or
    ``--help``) loads neither TensorFlow nor Beam; the heavy module is imported when the stage runs.

    Args:
        module: Dotted name of the module with ``run(context) -> dict``.
    """

    def run(context: StageContext) -> dict:
        return importlib.import_module(module).run(context)

    run.__doc__ = f"Runs ``{module}.run`` (imported when the stage executes)."
    return run
