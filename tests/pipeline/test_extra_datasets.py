"""``evaluate.extra_datasets``: config checks, the dataset presets, preflight, and how the runner plans,
fingerprints and reuses their ingests (stages that record their calls, no TensorFlow)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from components.base import StageDefinition
from components.evaluate.config import ExtraDatasetConfig
from components.ingest.config import IngestConfig
from pipeline.artifacts import ArtifactStore
from pipeline.config import CONFIGS_DIR, ConfigError, PipelineConfig, load_config, with_preset_section
from pipeline.extra_datasets import EXTRA_INGEST_STAGE, existing_artifact
from pipeline.preflight import check_before_run
from pipeline.runner import run_stages

SMOKE = str(CONFIGS_DIR / "smoke.yaml")
EXTRA_CONFIGS = sorted((CONFIGS_DIR / "extra").glob("*.yaml"))
STAGES = ["ingest", "train", "evaluate"]
TEST_SHARD = "test/data-00000-of-00001.tfrecord.gz"


def _write_preset(path: Path, **ingest) -> str:
    """A dataset preset whose ingest section feeds only test, plus ``ingest``; returns its path."""
    section = {"sources": [{"source": "synthetic_rooms", "splits": ["test"]}], **ingest}
    path.write_text(yaml.safe_dump({"ingest": section, "train": {"coarse_samples": 1}}))
    return str(path)


def _with_datasets(config: PipelineConfig, *datasets: ExtraDatasetConfig) -> PipelineConfig:
    return dataclasses.replace(
        config, evaluate=dataclasses.replace(config.evaluate, extra_datasets=list(datasets))
    )


@pytest.mark.parametrize(
    "value, key, expected",
    [
        ("[{name: Real, config: a.yaml}]", "[0].name", "lowercase letters"),
        ("[{name: coarse_fine, config: a.yaml}]", "[0].name", "not one of"),
        ("[{name: test, config: a.yaml}]", "[0].name", "not one of"),
        ("[{name: real}]", "[0].config", "exactly one of config"),
        ("[{name: real, config: a.yaml, artifact: runs/x}]", "[0].config", "exactly one of config"),
        (
            "[{name: real, config: a.yaml}, {name: real, artifact: b}]",
            "[1].name",
            "not used by an entry before",
        ),
    ],
)
def test_bad_entries_fail_at_load_naming_the_entry(value, key, expected):
    override = f"evaluate.extra_datasets={value}"
    with pytest.raises(ConfigError) as error:
        load_config(SMOKE, [override])
    message = str(error.value)
    assert message.startswith(f"--set {override}: key 'evaluate.extra_datasets{key}'") and expected in message


def test_a_dataset_preset_gives_only_its_ingest_section(tmp_path):
    config = load_config(SMOKE)
    path = _write_preset(tmp_path / "far.yaml", storage_height=72, storage_width=96, synthetic={"seed": 7})
    extra = with_preset_section(config, path, "ingest")
    assert extra.ingest.synthetic.seed == 7 and extra.ingest.fed_splits() == ("test",)
    # the ingest defaults where the preset says nothing, not the run's ingest (smoke: 40 scenes)
    assert extra.ingest.synthetic.num_scenes == IngestConfig().synthetic.num_scenes
    assert dataclasses.replace(extra, ingest=config.ingest) == config  # its train section is not read


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "config file not found"),
        ("train: {coarse_samples: 1}\n", "expected a 'ingest' section"),
        (
            "ingest: {storage_height: 32}\n",
            "key 'model.input_height' expects a value <= ingest.storage_height",
        ),
        ("ingest: {storage_hight: 72}\n", "unknown key 'ingest.storage_hight'"),
    ],
)
def test_preflight_names_the_entry_and_its_file(tmp_path, content, expected):
    path = tmp_path / "far.yaml"
    if content is not None:
        path.write_text(content)
    override = f"evaluate.extra_datasets=[{{name: far, config: {path}}}]"
    config = load_config(SMOKE, [override])
    check_before_run(config, ["train"], tmp_path / "runs", SMOKE, [override])  # evaluate does not run
    with pytest.raises(ConfigError) as error:
        check_before_run(config, ["evaluate"], tmp_path / "runs", SMOKE, [override])
    message = str(error.value)
    assert message.startswith(f"--set {override}: evaluate.extra_datasets[0] (far), config: ")
    assert expected in message and str(path) in message
    assert message.endswith("(--set evaluate.extra_datasets=[] evaluates the test split alone)")


def test_preflight_checks_a_dataset_folder_and_an_artifact_directory(tmp_path):
    preset = tmp_path / "folder.yaml"
    preset.write_text(
        yaml.safe_dump({"ingest": {"source": "folder", "folder": {"root": str(tmp_path / "gone")}}})
    )
    config = _with_datasets(load_config(SMOKE), ExtraDatasetConfig(name="gone", config=str(preset)))
    with pytest.raises(ConfigError, match=r"\(gone\), config .*key 'ingest.folder.root' expects an existing"):
        check_before_run(config, ["evaluate"], tmp_path / "runs", SMOKE, [])

    artifact = tmp_path / "ingested"
    (artifact / "train").mkdir(parents=True)
    config = _with_datasets(load_config(SMOKE), ExtraDatasetConfig(name="done", artifact=str(artifact)))
    with pytest.raises(ConfigError, match=r"extra_datasets\[0\].artifact expects .* \(no test shards "):
        check_before_run(config, ["evaluate"], tmp_path / "runs", SMOKE, [])
    (artifact / TEST_SHARD).parent.mkdir()
    (artifact / TEST_SHARD).write_bytes(b"")
    check_before_run(config, ["evaluate"], tmp_path / "runs", SMOKE, [])


def test_an_artifact_entry_is_fingerprinted_by_its_metadata_or_its_files(tmp_path):
    directory = tmp_path / "ingested"
    (directory / "test").mkdir(parents=True)
    (directory / TEST_SHARD).write_bytes(b"x")
    entry = ExtraDatasetConfig(name="done", artifact=str(directory))
    first = existing_artifact(0, entry)
    (directory / TEST_SHARD).write_bytes(b"xy")
    assert existing_artifact(0, entry).fingerprint != first.fingerprint
    (directory / "metadata.json").write_text(json.dumps({"stage": "ingest", "fingerprint": "0123abcd"}))
    assert existing_artifact(0, entry).fingerprint == "0123abcd"


@pytest.mark.parametrize("path", EXTRA_CONFIGS, ids=lambda path: path.name)
def test_shipped_dataset_presets_are_evaluation_only_ingests(path, real_rgbd_dir):
    assert set(yaml.safe_load(path.read_text())) == {"ingest"}
    default = load_config(None)
    extra = with_preset_section(default, path, "ingest")
    assert extra.ingest.fed_splits() == ("test",)
    # the default preset's storage size: the network input crop covers the same part of the view
    assert (extra.ingest.storage_height, extra.ingest.storage_width) == (
        default.ingest.storage_height,
        default.ingest.storage_width,
    )
    assert Path(extra.ingest.folder.root).resolve().parent == real_rgbd_dir.resolve()


def test_the_default_preset_scores_the_shipped_datasets():
    datasets = load_config(None).evaluate.extra_datasets
    assert [dataset.config for dataset in datasets] == [
        f"configs/extra/{path.name}" for path in EXTRA_CONFIGS
    ]


def _recording_stage(name: str, inputs: tuple[str, ...], calls: list) -> StageDefinition:
    """A stage whose parameters are its ingest's scene count; records (the stage it runs as, named by
    its logger, the scenes of its config's ingest, its input keys)."""

    def run(ctx):
        stage = ctx.log.name.removeprefix("keras_depth.")
        calls.append((stage, ctx.config.ingest.synthetic.num_scenes, sorted(ctx.inputs)))
        (ctx.output_dir / "done").write_text(name)
        return {}

    return StageDefinition(
        name=name,
        inputs=inputs,
        parameters=lambda config: {"scenes": config.ingest.synthetic.num_scenes},
        run=run,
    )


@pytest.fixture
def recorded():
    calls: list = []
    registry = {
        "ingest": _recording_stage("ingest", (), calls),
        "train": _recording_stage("train", ("ingest",), calls),
        "evaluate": _recording_stage("evaluate", ("ingest", "train"), calls),
    }
    return registry, calls


def test_a_dataset_is_ingested_apart_and_only_evaluate_reruns_for_it(tmp_path, recorded):
    registry, calls = recorded
    config = load_config(SMOKE, ["mlflow.enabled=false"])  # 40 scenes
    run_stages(config, STAGES, tmp_path, registry=registry)
    preset = tmp_path / "far.yaml"
    _write_preset(preset, synthetic={"num_scenes": 3})
    with_far = _with_datasets(config, ExtraDatasetConfig(name="far", config=str(preset)))

    calls.clear()
    artifacts = run_stages(with_far, STAGES, tmp_path, registry=registry)
    assert calls == [("extra_ingest", 3, []), ("evaluate", 40, ["dataset:far", "ingest", "train"])]
    far = artifacts["dataset:far"]
    assert far.path.parent == ArtifactStore(tmp_path).root / EXTRA_INGEST_STAGE
    assert artifacts["evaluate"].metadata["inputs"]["dataset:far"]["fingerprint"] == far.fingerprint
    assert ArtifactStore(tmp_path).latest("ingest").fingerprint == artifacts["ingest"].fingerprint

    calls.clear()
    assert run_stages(with_far, STAGES, tmp_path, registry=registry) == artifacts
    assert run_stages(with_far, ["evaluate"], tmp_path, registry=registry) == {
        name: artifacts[name] for name in ("dataset:far", "evaluate")
    }
    run_stages(with_far, ["evaluate"], tmp_path, force=True, registry=registry)
    assert calls == [("evaluate", 40, ["dataset:far", "ingest", "train"])]  # the dataset is reused

    calls.clear()
    _write_preset(preset, synthetic={"num_scenes": 4})
    run_stages(with_far, STAGES, tmp_path, registry=registry)
    assert calls == [("extra_ingest", 4, []), ("evaluate", 40, ["dataset:far", "ingest", "train"])]
