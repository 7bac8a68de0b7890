"""The stage runner: plans fingerprints, skips completed stages, runs the rest and publishes atomically."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from components.base import Artifact, StageContext, StageDefinition
from pipeline.artifacts import ArtifactStore, fingerprint
from pipeline.config import PipelineConfig, save_config
from pipeline.extra_datasets import EXTRA_INGEST_STAGE, existing_artifacts, extra_ingests
from pipeline.stages import STAGE_ORDER, default_registry
from pipeline.sweep_tracking import SweepChild
from pipeline.tracking import close_orphaned_runs, pipeline_run
from pipeline.version import package_version

RESOLVED_CONFIG_FILE = "config.yaml"
# The stage whose artifact is the MLflow run's dataset input.
INGEST_STAGE = "ingest"
# The stage that also reads the ingest artifacts of ``evaluate.extra_datasets``.
EVALUATE_STAGE = "evaluate"

log = logging.getLogger("keras_depth.pipeline")


class PipelineError(RuntimeError):
    """The pipeline cannot run as asked (missing upstream artifact, unknown stage)."""


@dataclass
class PlannedStage:
    """A stage with its resolved inputs and fingerprint, and the completed artifact if one exists.

    Attributes:
        name: Its key in the results and among downstream inputs: the stage name, or
            ``dataset:<name>`` for the ingest of an extra dataset (``pipeline.extra_datasets``).
        config: The config it runs with (an extra dataset's: the run's with that dataset's ingest).
        tracked: Whether it logs into the pipeline's MLflow run (an extra dataset's ingest does not:
            its ``ingest/*`` keys would overwrite the main ingest's; evaluate logs its counts).
    """

    definition: StageDefinition
    fingerprint: str
    parameters: dict
    inputs: dict[str, Artifact | None]
    existing: Artifact | None
    name: str
    config: PipelineConfig
    tracked: bool = True


def _timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def expand_stages(stage: str) -> list[str]:
    """``all`` -> every stage in order; otherwise the one stage."""
    if stage == "all":
        return list(STAGE_ORDER)
    if stage not in STAGE_ORDER:
        raise PipelineError(f"unknown stage '{stage}'; expected one of: all, {', '.join(STAGE_ORDER)}")
    return [stage]


def _plan_stage(
    name: str,
    definition: StageDefinition,
    config: PipelineConfig,
    planned: Mapping[str, PlannedStage],
    store: ArtifactStore,
    rerun: bool,
    more_inputs: Mapping[str, Artifact | None] | None = None,
) -> PlannedStage:
    """Resolves one stage's inputs and fingerprint.

    Args:
        name: Its key (see :class:`PlannedStage`).
        definition: The stage.
        config: The config it runs with.
        planned: The stages planned before it in this execution, by key.
        store: Where the newest upstream artifacts of stages outside the execution are.
        rerun: Do not reuse a completed artifact (``--force``).
        more_inputs: Inputs beside its declared upstream stages, by key: an artifact, or None for one
            planned in this execution (the extra datasets of evaluate).

    Raises:
        PipelineError: an upstream artifact is missing.
    """
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
    for key, artifact in (more_inputs or {}).items():
        inputs[key] = artifact
        input_fingerprints[key] = (artifact or planned[key]).fingerprint
    parameters = definition.parameters(config)
    stage_fingerprint = fingerprint(definition.name, parameters, input_fingerprints, package_version())
    existing = None if rerun else store.load(definition.name, stage_fingerprint)
    return PlannedStage(definition, stage_fingerprint, parameters, inputs, existing, name, config)


def _plan(
    config: PipelineConfig,
    stages: Sequence[str],
    store: ArtifactStore,
    registry: Mapping[str, StageDefinition],
    force: bool,
) -> list[PlannedStage]:
    """Fingerprints of the requested stages; upstream stages outside the request use their newest artifact.

    With evaluate requested, the ingests of ``evaluate.extra_datasets`` are planned too, after the
    ingest stage (or first), reused like any stage (``force`` reruns them along with the ingest
    stage only); their artifacts, and those of ``artifact`` entries, are inputs of evaluate
    (``pipeline.extra_datasets``).
    """
    planned: dict[str, PlannedStage] = {}
    datasets: dict[str, Artifact | None] = {}
    if EVALUATE_STAGE in stages:
        extra_ingest = replace(registry[INGEST_STAGE], name=EXTRA_INGEST_STAGE)
        rerun = force and INGEST_STAGE in stages
        for dataset in extra_ingests(config):
            plan = _plan_stage(dataset.input_name, extra_ingest, dataset.config, planned, store, rerun)
            planned[plan.name] = replace(plan, tracked=False)
            datasets[plan.name] = None
        datasets.update(existing_artifacts(config))
    extra_plans = list(planned.values())
    for name in stages:
        more_inputs = datasets if name == EVALUATE_STAGE else None
        planned[name] = _plan_stage(name, registry[name], config, planned, store, force, more_inputs)
    ordered = [planned[name] for name in stages]
    first = 1 if stages[0] == INGEST_STAGE else 0
    return ordered[:first] + extra_plans + ordered[first:]


def _execute(
    plan: PlannedStage,
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
    log.info("%s: running (fingerprint %s) into %s", plan.name, plan.fingerprint, temp_dir)
    context = StageContext(
        config=plan.config,
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
        save_config(plan.config, temp_dir / RESOLVED_CONFIG_FILE)
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
    log.info("%s: completed in %.1f s -> %s", plan.name, metadata["seconds"], artifact.path)
    return artifact


def _ingest_read(plans: Sequence[PlannedStage], store: ArtifactStore) -> Artifact | None:
    """The ingest artifact the execution reads but does not produce: reused, an upstream input, or
    the one an upstream artifact was made from (``--stage export`` reads train, made from ingest)."""
    for plan in plans:
        if plan.definition.name == INGEST_STAGE:
            return plan.existing
        for artifact in (plan.inputs[name] for name in plan.definition.inputs):
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
    sweep: SweepChild | None = None,
) -> dict[str, Artifact]:
    """Runs ``stages`` in order, reusing completed artifacts with the same fingerprint.

    Args:
        config: The resolved pipeline config.
        stages: Stage names in pipeline order (see :func:`expand_stages`).
        output_dir: The run directory; artifacts go to ``<output_dir>/pipeline_root``.
        force: Rerun stages even when a completed artifact exists.
        beam_args: Extra Beam pipeline options for the ingest stage.
        registry: Stage definitions by name (default: every stage, ``pipeline.stages.default_registry``).
        sweep: Makes the MLflow run a child run of a sweep (``pipeline.sweep``); it is started even
            when every stage is reused, so that each variant of the sweep has its child run.

    Returns:
        The artifact of every stage that ran or was reused, by name (``dataset:<name>`` for the
        ingest of an extra dataset, see :func:`_plan`).

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
                plan.name,
                plan.fingerprint,
                plan.existing.path,
            )
    if not to_run and sweep is None:
        return {plan.name: plan.existing for plan in plans}
    output_dir.mkdir(parents=True, exist_ok=True)
    with pipeline_run(config, output_dir, [plan.name for plan in to_run], sweep) as run_id:
        tracking = run_id is not None
        if tracking:
            log.info("MLflow run %s", run_id)
            _log_dataset(_ingest_read(plans, store))
        for plan in plans:
            name = plan.name
            if plan.existing is not None:
                results[name] = plan.existing
                continue
            results[name] = _execute(plan, store, output_dir, results, beam_args, tracking and plan.tracked)
            if tracking and name == INGEST_STAGE:
                _log_dataset(results[name])
    for path in store.remove_stale(started):  # work directories older than what just completed
        log.info("removed %s, superseded by a completed run", path)
    return results
