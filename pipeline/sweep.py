"""Sweeps: ``--sweep key=v1,v2,...`` runs the pipeline once per value, as one comparable set in MLflow.

Each ``--sweep`` flag names one config key and its values, separated by commas (each value is YAML,
as ``--set`` takes it; a comma inside brackets or quotes does not separate). Several flags give the
product of their values, the first flag varying slowest. A variant's config is that of ``--config``
and ``--set`` with its swept values applied last; every variant is loaded and checked before anything
runs, and a bad key or value fails naming its ``--sweep`` flag. The ``mlflow`` section cannot be swept.

The variants run one after the other in this process, each as one pipeline execution through
``--stage`` (with ``--sweep``, ``--stage evaluate`` runs ingest, train and evaluate; ``all`` exports
too, so each blessed variant is pushed in turn and the last one is served) in the same output
directory: a stage whose fingerprint the swept keys do not change (ingest, for ``loss.lam``) runs once
and the other variants reuse it. ``--force`` reruns every stage of every variant.

In MLflow the sweep is one parent run (named ``sweep loss.lam=0,0.5,1``, tagged with the swept keys)
and one child run per variant (:mod:`pipeline.sweep_tracking`), opened even when the variant reuses
every stage. When the variants have ended, the comparison (:mod:`pipeline.sweep_report`) is written
to ``<output-dir>/sweeps/<time>/`` and logged to the parent (its artifacts, and the Markdown table
as the run's description); a child whose evaluate artifact was reused gets its compared metrics then.
A variant that fails is a FAILED child run and a failed row: the other variants still run, and the
sweep then raises :class:`SweepFailed` (the parent run ends FAILED).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from components.base import StageDefinition
from components.tracking import first_line
from pipeline.config import ConfigError, PipelineConfig, load_config
from pipeline.preflight import check_before_run
from pipeline.runner import PipelineError, expand_stages, run_stages
from pipeline.stages import STAGE_ORDER
from pipeline.sweep_report import VariantResult, comparison, markdown_table, write_comparison
from pipeline.sweep_tracking import (
    SWEEP_VARIANTS_TAG,
    SweepChild,
    SweepRun,
    child_run_ids,
    complete_child_metrics,
    log_comparison,
    sweep_parent_run,
    variant_name,
)
from pipeline.tracking import STATUS_FAILED, STATUS_FINISHED, local_store_uri

SWEEPS_DIR = "sweeps"
# Sections that cannot be swept: every variant is a child run of one parent run in one tracking store.
FIXED_SECTIONS = ("mlflow",)
OPENING, CLOSING, QUOTES = "[{", "]}", "'\""

log = logging.getLogger("keras_depth.pipeline")


class SweepFailed(PipelineError):
    """Some variants of a sweep failed; the others completed and :attr:`report` compares them all."""

    def __init__(self, report: SweepReport):
        failed = [row["variant"] for row in report.failed]
        super().__init__(
            f"{len(failed)} of {len(report.document['rows'])} sweep variants failed ({'; '.join(failed)}); "
            f"the comparison is in {report.directory}"
        )
        self.report = report


@dataclass(frozen=True)
class SweepAxis:
    """One ``--sweep`` flag.

    Attributes:
        flag: Its text, ``loss.lam=0,0.5,1`` (errors name it).
        key: The config key, ``loss.lam``.
        values: The values as given, in order: ``("0", "0.5", "1")``.
    """

    flag: str
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Variant:
    """One pipeline execution of a sweep.

    Attributes:
        assignments: ``(axis, value)`` per ``--sweep`` flag, in flag order.
        overrides: The ``--set`` strings it is loaded with: the command line's, then ``key=value``.
        config: Its resolved, checked config.
    """

    assignments: tuple[tuple[SweepAxis, str], ...]
    overrides: tuple[str, ...]
    config: PipelineConfig

    @property
    def values(self) -> dict[str, str]:
        """Swept key -> value as given: ``{"loss.lam": "0.5"}``."""
        return {axis.key: value for axis, value in self.assignments}

    @property
    def name(self) -> str:
        """``loss.lam=0.5`` (its child run's name)."""
        return variant_name(self.values)


@dataclass(frozen=True)
class Sweep:
    """A planned sweep.

    Attributes:
        axes: Its ``--sweep`` flags, in order.
        config: The config of ``--config`` and ``--set`` without swept values (the parent run's).
        config_path: ``--config`` (None: the default preset), to name where a key was set.
        variants: The product of the flags' values, the first flag varying slowest.
    """

    axes: tuple[SweepAxis, ...]
    config: PipelineConfig
    config_path: Path | None
    variants: tuple[Variant, ...]

    @property
    def name(self) -> str:
        """``sweep loss.lam=0,0.5,1`` (the parent run's name)."""
        return " ".join(["sweep", *(axis.flag for axis in self.axes)])

    @property
    def keys(self) -> list[str]:
        """The swept keys in flag order."""
        return [axis.key for axis in self.axes]


@dataclass(frozen=True)
class SweepReport:
    """What a sweep produced.

    Attributes:
        document: The ``comparison.json`` document (:func:`pipeline.sweep_report.comparison`).
        markdown: Its Markdown table.
        directory: Where the comparison files are, ``<output-dir>/sweeps/<time>/``.
        parent: The parent MLflow run, or None without tracking.
    """

    document: dict
    markdown: str
    directory: Path
    parent: SweepRun | None

    @property
    def failed(self) -> list[dict]:
        """The rows of the variants that failed."""
        return [row for row in self.document["rows"] if row["status"] != STATUS_FINISHED]


def split_values(text: str) -> list[str]:
    """``0,0.5,1`` -> ``["0", "0.5", "1"]``; commas inside ``[]``, ``{}`` or quotes do not split."""
    values, depth, quote, start = [], 0, "", 0
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in QUOTES:
            quote = char
        elif char in OPENING:
            depth += 1
        elif char in CLOSING:
            depth -= 1
        elif char == "," and depth == 0:
            values.append(text[start:index].strip())
            start = index + 1
    return [*values, text[start:].strip()]


def parse_sweep_flag(text: str) -> SweepAxis:
    """Parses one ``--sweep section.key=value1,value2,...``.

    Raises:
        ConfigError: naming the flag: not ``key=values``, a fixed section, an empty, non-YAML or
            repeated value.
    """
    key, separator, raw = text.partition("=")
    key = key.strip()
    if not separator or not all(key.split(".")):
        raise ConfigError(f"--sweep: '{text}' is not of the form section.key=value1,value2,...")
    section = key.split(".")[0]
    if section in FIXED_SECTIONS:
        raise ConfigError(
            f"--sweep {text}: the '{section}' section cannot be swept (the variants are child runs "
            "of one MLflow parent run, in one store)"
        )
    values = split_values(raw)
    parsed = []
    for value in values:
        if not value:
            raise ConfigError(f"--sweep {text}: empty value; expected values separated by commas")
        try:
            loaded = yaml.safe_load(value)
        except yaml.YAMLError as err:
            problem = str(err).splitlines()[0]
            raise ConfigError(f"--sweep {text}: value {value!r} is not valid YAML ({problem})") from None
        if loaded in parsed:
            raise ConfigError(f"--sweep {text}: value {value!r} repeats an earlier value")
        parsed.append(loaded)
    return SweepAxis(text, key, tuple(values))


@contextlib.contextmanager
def _naming_sweep_flags(assignments: Sequence[tuple[SweepAxis, str]]) -> Iterator[None]:
    """Re-raises a :class:`ConfigError` about a swept value naming its ``--sweep`` flag.

    A variant applies its values as ``--set key=value`` overrides after the command line's, so that
    they are parsed and checked exactly as ``--set`` is; the error names that override as its source.
    """
    try:
        yield
    except ConfigError as err:
        message = str(err)
        for axis, value in assignments:
            applied = f"--set {axis.key}={value}:"
            if message.startswith(applied):
                message = f"--sweep {axis.flag}:{message[len(applied) :]}"
        raise ConfigError(message) from None


def plan_sweep(
    config: PipelineConfig, config_path: Path | None, overrides: Sequence[str], flags: Sequence[str]
) -> Sweep:
    """Loads and checks the config of every variant of the ``--sweep`` flags.

    Args:
        config: The config of ``config_path`` and ``overrides`` (loaded and checked).
        config_path: ``--config`` (None: the default preset).
        overrides: The ``--set`` strings.
        flags: The ``--sweep`` strings, in order.

    Raises:
        ConfigError: naming the ``--sweep`` flag: a malformed flag, a key swept twice, an unknown key,
            a value of the wrong type or out of range.
    """
    axes = [parse_sweep_flag(flag) for flag in flags]
    first_flag: dict[str, str] = {}
    for axis in axes:
        if axis.key in first_flag:
            raise ConfigError(
                f"--sweep {axis.flag}: key '{axis.key}' is swept by --sweep {first_flag[axis.key]} too"
            )
        first_flag[axis.key] = axis.flag
    variants = []
    for values in itertools.product(*(axis.values for axis in axes)):
        assignments = tuple(zip(axes, values, strict=True))
        variant_overrides = (*overrides, *(f"{axis.key}={value}" for axis, value in assignments))
        with _naming_sweep_flags(assignments):
            variant_config = load_config(config_path, list(variant_overrides))
        variants.append(Variant(assignments, variant_overrides, variant_config))
    return Sweep(tuple(axes), config, config_path, tuple(variants))


def stages_through(stage: str) -> list[str]:
    """The stages each variant runs for ``--stage``: those up to and including it (``all``: every one).

    Raises:
        PipelineError: an unknown stage.
    """
    last = expand_stages(stage)[-1]
    return list(STAGE_ORDER[: STAGE_ORDER.index(last) + 1])


def check_sweep(sweep: Sweep, stages: Sequence[str], output_dir: Path) -> None:
    """:func:`pipeline.preflight.check_before_run` for every variant.

    Raises:
        ConfigError: naming the ``--sweep`` flag where a swept value points at something unusable.
        TrackingUnavailable: ``mlflow.required`` and the HTTP tracking server does not answer.
    """
    for variant in sweep.variants:
        with _naming_sweep_flags(variant.assignments):
            check_before_run(variant.config, stages, output_dir, sweep.config_path, list(variant.overrides))


def run_sweep(
    sweep: Sweep,
    stages: Sequence[str],
    output_dir: str | Path,
    force: bool = False,
    beam_args: Sequence[str] = (),
    registry: Mapping[str, StageDefinition] | None = None,
) -> SweepReport:
    """Runs every variant through ``stages`` under the sweep's parent run, then compares them.

    Args:
        sweep: The planned sweep (:func:`plan_sweep`).
        stages: The stages each variant runs (:func:`stages_through`).
        output_dir: The run directory shared by the variants.
        force: Rerun every stage of every variant.
        beam_args: Extra Beam pipeline options for ingest.
        registry: Stage definitions by name (default: every stage).

    Returns:
        The comparison, written under ``<output_dir>/sweeps/`` and logged to the parent run.

    Raises:
        SweepFailed: a variant failed (once the others ran and the comparison was written).
        TrackingUnavailable: ``mlflow.required`` is true and the tracking store cannot be used.
    """
    output_dir = Path(output_dir).resolve()
    tags = {
        SWEEP_VARIANTS_TAG: str(len(sweep.variants)),
        "stages": ",".join(stages),
        "preset": sweep.config.preset,
    }
    with sweep_parent_run(sweep.config, output_dir, sweep.name, sweep.keys, tags) as parent:
        results = []
        for number, variant in enumerate(sweep.variants, 1):
            log.info("sweep variant %d of %d: %s", number, len(sweep.variants), variant.name)
            child = None if parent is None else SweepChild(parent, variant.values)
            try:
                artifacts = run_stages(variant.config, stages, output_dir, force, beam_args, registry, child)
            except Exception as err:  # one failed variant must not lose the others
                log.error("sweep variant %s failed: %s", variant.name, first_line(err), exc_info=True)
                results.append(VariantResult(variant.name, variant.values, STATUS_FAILED, first_line(err)))
                continue
            evaluate = artifacts.get("evaluate")
            evaluate_dir = None if evaluate is None else evaluate.path
            results.append(
                VariantResult(variant.name, variant.values, STATUS_FINISHED, evaluate_dir=evaluate_dir)
            )
        report = _compare(sweep, stages, results, parent, output_dir)
        if report.failed:
            raise SweepFailed(report)  # the parent run ends FAILED
    return report


def _compare(
    sweep: Sweep,
    stages: Sequence[str],
    results: list[VariantResult],
    parent: SweepRun | None,
    output_dir: Path,
) -> SweepReport:
    """Writes the comparison, completes the child runs' metrics and logs the comparison to the parent."""
    run_ids = (child_run_ids(parent) or {}) if parent is not None else {}
    results = [dataclasses.replace(result, run_id=run_ids.get(result.name)) for result in results]
    document = comparison(sweep.name, sweep.keys, stages, results, None if parent is None else parent.run_id)
    directory = _new_sweep_dir(output_dir)
    paths = write_comparison(document, directory)
    markdown = markdown_table(document)
    if parent is not None:
        complete_child_metrics(parent, document["rows"])
        log_comparison(parent, paths, markdown)
    log.info("sweep comparison: %s", directory)
    return SweepReport(document, markdown, directory, parent)


def _new_sweep_dir(output_dir: Path) -> Path:
    """A new ``<output_dir>/sweeps/<YYYYmmdd-HHMMSS>[-N]/``."""
    base = output_dir / SWEEPS_DIR / time.strftime("%Y%m%d-%H%M%S")
    directory, attempt = base, 1
    while True:
        try:
            directory.mkdir(parents=True)
            return directory
        except FileExistsError:
            attempt += 1
            directory = base.with_name(f"{base.name}-{attempt}")


def format_sweep_summary(report: SweepReport, output_dir: Path) -> str:
    """The end-of-sweep summary: the comparison table, where its files are, how to compare in MLflow."""
    lines = ["", "=" * 72, f"keras-depth {report.document['sweep']}", "=" * 72, "", report.markdown]
    lines.append(f"Comparison (Markdown, JSON, plot): {report.directory}")
    if report.parent is not None:
        lines += [
            "",
            f"MLflow: parent run {report.parent.run_id} in {report.parent.tracking_uri},",
            "one child run per variant: in the runs table, expand the parent run, select its child runs",
            "and press Compare; the parent's artifacts and description hold the comparison.",
        ]
        if report.parent.tracking_uri == local_store_uri(output_dir):
            lines.append(f"  make mlflow-ui OUTPUT_DIR={output_dir}")
    lines.append("=" * 72)
    return "\n".join(lines)
