"""The stage runner: plans fingerprints, skips completed stages, runs the rest and publishes atomically."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from components.base import Artifact, StageContext, StageDefinition
from pipeline.artifacts import ArtifactStore, fingerprint
from pipeline.config import PipelineConfig, save_config
from pipeline.stages import STAGE_ORDER, default_registry
from pipeline.tracking import close_orphaned_runs, pipeline_run
from pipeline.version import package_version

RESOLVED_CONFIG_FILE = "config.yaml"
# The stage whose artifact is the MLflow run's dataset input.
INGEST_STAGE = "ingest"

log = logging.getLogger("keras_depth.pipeline")


class PipelineError(RuntimeError):
    """The pipeline cannot run as asked (missing upstream artifact, unknown stage)."""


@dataclass
class PlannedStage:
    """A stage with its resolved inputs and fingerprint, and the completed artifact if one exists."""

    definition: StageDefinition
    fingerprint: str
    parameters: dict
    inputs: dict[str, Artifact | None]
    existing: Artifact | None


def _timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def expand_stages(stage: str) -> list[str]:
    """``all`` -> every stage in order; otherwise the one stage."""
    if stage == "all":
        return list(STAGE_ORDER)
    if stage not in STAGE_ORDER:
        raise PipelineError(f"unknown stage '{stage}'; expected one of: all, {', '.join(STAGE_ORDER)}")
    return [stage]


def _plan(
    config: PipelineConfig,
    stages: Sequence[str],
    store: ArtifactStore,
    registry: Mapping[str, StageDefinition],
    force: bool,
) -> list[PlannedStage]:
    """Fingerprints of the requested stages; upstream stages outside the request use their newest artifact."""
    version = package_version()
    planned: dict[str, PlannedStage] = {}
    for name in stages:
        definition = registry[name]
        inputs: dict[str, Artifact | None] = {}
        input_fingerprints: dict[str, str] = {}
        for upstream in definition.inputs:
            if upstream in planned:
                inputs[upstream] = None  # produced (or reused) earlier in this execution
                input_fingerprints[upstream] = planned[upstream].fingerprint
                continue
            artifact = store.latest(upstream)
            if artifact is None:
                raise PipelineError(
                    f"stage '{name}' needs the output of stage '{upstream}', but no completed "
                    f"'{upstream}' artifact exists under {store.root / upstream}; run "
                    f"`python -m pipeline.run --stage {upstream}` (or `--stage all`) first"
                )
            inputs[upstream] = artifact
            input_fingerprints[upstream] = artifact.fingerprint
        parameters = definition.parameters(config)
        stage_fingerprint = fingerprint(name, parameters, input_fingerprints, version)
        existing = None if force else store.load(name, stage_fingerprint)
        planned[name] = PlannedStage(definition, stage_fingerprint, parameters, inputs, existing)
    return [planned[name] for name in stages]


def _execute(
    plan: PlannedStage,
    config: PipelineConfig,
    store: ArtifactStore,
    output_dir: Path,
    upstream: Mapping[str, Artifact],
    beam_args: Sequence[str],
    tracking: bool,
) -> Artifact:
    """Runs one stage into a temporary directory and publishes it."""
    definition = plan.definition
    inputs = {name: artifact or upstream[name] for name, artifact in plan.inputs.items()}
    temp_dir = store.new_temp_dir(definition.name, plan.fingerprint)
    work_dir = store.claim_work_dir(definition.name, plan.fingerprint)
    started, start_time = time.monotonic(), _timestamp()
    log.info("%s: running (fingerprint %s) into %s", definition.name, plan.fingerprint, temp_dir)
    context = StageContext(
        config=config,
        output_dir=temp_dir,
        work_dir=work_dir,
        inputs=inputs,
        run_root=output_dir,
        fingerprint=plan.fingerprint,
        beam_args=list(beam_args),
        tracking=tracking,
        log=logging.getLogger(f"keras_depth.{definition.name}"),
    )
    try:
        counts = definition.run(context) or {}
        save_config(config, temp_dir / RESOLVED_CONFIG_FILE)
    except BaseException:
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    metadata = {
        "stage": definition.name,
        "fingerprint": plan.fingerprint,
        "inputs": {
            name: {"fingerprint": artifact.fingerprint, "path": str(artifact.path)}
            for name, artifact in inputs.items()
        },
        "parameters": plan.parameters,
        "package_version": package_version(),
        "start_time": start_time,
        "end_time": _timestamp(),
        "seconds": round(time.monotonic() - started, 3),
        "counts": counts,
    }
    artifact = store.publish(temp_dir, definition.name, plan.fingerprint, metadata)
    shutil.rmtree(work_dir, ignore_errors=True)
    log.info("%s: completed in %.1f s -> %s", definition.name, metadata["seconds"], artifact.path)
    return artifact


def _ingest_read(plans: Sequence[PlannedStage], store: ArtifactStore) -> Artifact | None:
    """The ingest artifact the execution reads but does not produce: reused, an upstream input, or
    the one an upstream artifact was made from (``--stage export`` reads train, made from ingest)."""
    for plan in plans:
        if plan.definition.name == INGEST_STAGE:
            return plan.existing
        for artifact in plan.inputs.values():
            if artifact is None:
                continue
            if artifact.stage == INGEST_STAGE:
                return artifact
            made_from = artifact.metadata.get("inputs", {}).get(INGEST_STAGE)
            if made_from is not None:
                return store.load(INGEST_STAGE, made_from["fingerprint"])
    return None


def _log_dataset(artifact: Artifact | None) -> None:
    """Logs the ingest artifact as the MLflow run's dataset input (best-effort; nothing when None)."""
    if artifact is not None:
        from components.ingest.tracking import log_dataset  # loads MLflow only when tracking

        log_dataset(artifact)


def run_stages(
    config: PipelineConfig,
    stages: Sequence[str],
    output_dir: str | Path,
    force: bool = False,
    beam_args: Sequence[str] = (),
    registry: Mapping[str, StageDefinition] | None = None,
) -> dict[str, Artifact]:
    """Runs ``stages`` in order, reusing completed artifacts with the same fingerprint.

    Args:
        config: The resolved pipeline config.
        stages: Stage names in pipeline order (see :func:`expand_stages`).
        output_dir: The run directory; artifacts go to ``<output_dir>/pipeline_root``.
        force: Rerun stages even when a completed artifact exists.
        beam_args: Extra Beam pipeline options for the ingest stage.
        registry: Stage definitions by name (default: every stage, ``pipeline.stages.default_registry``).

    Returns:
        The artifact of every stage that ran or was reused, by name.

    Before anything runs, what killed runs left in ``output_dir`` is cleaned up: their temporary and
    stale work directories (:meth:`ArtifactStore.remove_stale`) and their MLflow runs left RUNNING
    (:func:`pipeline.tracking.close_orphaned_runs`). Once the stages completed, work directories that
    a completed stage superseded are removed too. With tracking, the ingest artifact that the
    execution produces or reads (directly or through an upstream artifact) is the MLflow run's
    dataset input (:mod:`components.ingest.tracking`), logged before the first stage that reads it.

    Raises:
        PipelineError: an upstream artifact is missing.
        TrackingUnavailable: ``mlflow.required`` is true and the tracking store cannot be used.
    """
    started = time.time()
    output_dir = Path(output_dir).resolve()
    registry = default_registry() if registry is None else registry
    store = ArtifactStore(output_dir)
    for path in store.remove_stale(started):
        log.info("removed %s, left by a run that was killed", path)
    close_orphaned_runs(output_dir)
    plans = _plan(config, stages, store, registry, force)
    results: dict[str, Artifact] = {}
    to_run = [plan for plan in plans if plan.existing is None]
    for plan in plans:
        if plan.existing is not None:
            log.info(
                "%s: skipped, fingerprint %s is already complete at %s (use --force to rerun)",
                plan.definition.name,
                plan.fingerprint,
                plan.existing.path,
            )
    if not to_run:
        return {plan.definition.name: plan.existing for plan in plans}
    output_dir.mkdir(parents=True, exist_ok=True)
    with pipeline_run(config, output_dir, [plan.definition.name for plan in to_run]) as run_id:
        tracking = run_id is not None
        if tracking:
            log.info("MLflow run %s", run_id)
            _log_dataset(_ingest_read(plans, store))
        for plan in plans:
            name = plan.definition.name
            if plan.existing is not None:
                results[name] = plan.existing
                continue
            results[name] = _execute(plan, config, store, output_dir, results, beam_args, tracking=tracking)
            if tracking and name == INGEST_STAGE:
                _log_dataset(results[name])
    for path in store.remove_stale(started):  # work directories older than what just completed
        log.info("removed %s, superseded by a completed run", path)
    return results
