"""The export stage: SavedModel in the artifact, pushed only when blessed, versions never overwritten."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest

from components.export import STAGE, parameters
from components.export.push import PUSH_SOURCE_FILE, read_push_source
from components.serving_contract import BYTES_SIGNATURE, SERVING_DEFAULT
from pipeline.config import PipelineConfig


def test_stage_definition():
    config = PipelineConfig()
    assert STAGE.name == "export" and STAGE.inputs == ("train", "evaluate")
    assert parameters(config) == dataclasses.asdict(config.export)


def _served_files(digests, version_dir):
    """Digests of a pushed version without its push record (which the artifact's SavedModel lacks)."""
    return {name: digest for name, digest in digests(version_dir).items() if name != str(PUSH_SOURCE_FILE)}


def test_blessed_model_is_pushed_as_the_next_version(make_context, tmp_path, digests, train_artifact):
    ctx = make_context(blessed=True)
    assert STAGE.run(ctx) == {"pushed": True, "version": 1}
    model_dir = tmp_path / "serving" / "depth"
    version_1 = model_dir / "1"
    assert json.loads((ctx.output_dir / "push.json").read_text()) == {
        "pushed": True,
        "version": 1,
        "path": str(version_1),
        "reused": False,
        "reason": "BLESSED: passes: everything",
    }
    assert _served_files(digests, version_1) == digests(ctx.output_dir / "saved_model")
    assert read_push_source(version_1) == {"train_fingerprint": "trainfp", "upsample_to_input": True}
    signatures = json.loads((ctx.output_dir / "signatures.json").read_text())
    assert {SERVING_DEFAULT, BYTES_SIGNATURE} <= set(signatures)
    assert (ctx.output_dir / "model.tflite").stat().st_size > 0  # export.tflite is on by default
    before = digests(version_1)

    other_model = dataclasses.replace(train_artifact, fingerprint="othertrainfp")
    second = make_context(blessed=True)
    second.inputs["train"] = other_model
    second.inputs["evaluate"] = dataclasses.replace(
        second.inputs["evaluate"], metadata={"inputs": {"train": {"fingerprint": "othertrainfp"}}}
    )
    assert STAGE.run(second) == {"pushed": True, "version": 2}
    assert digests(version_1) == before  # byte-identical
    assert sorted(path.name for path in model_dir.iterdir()) == ["1", "2"]


def test_rerun_after_a_crash_between_push_and_publish_reuses_the_version(make_context, tmp_path, digests):
    """The runner discards the export artifact of a crashed run; the rerun (or --force) must not push a copy."""
    first = make_context(blessed=True)
    assert STAGE.run(first) == {"pushed": True, "version": 1}
    model_dir = tmp_path / "serving" / "depth"
    pushed = digests(model_dir / "1")
    for _ in range(2):  # the rerun after the crash, then a --force rerun
        rerun = make_context(blessed=True)
        assert STAGE.run(rerun) == {"pushed": True, "version": 1}
        assert json.loads((rerun.output_dir / "push.json").read_text())["reused"] is True
    assert sorted(path.name for path in model_dir.iterdir()) == ["1"]
    assert digests(model_dir / "1") == pushed
    # The same model with other serving outputs is another SavedModel: a new version.
    assert STAGE.run(make_context(blessed=True, upsample_to_input=False)) == {"pushed": True, "version": 2}


def test_unblessed_model_is_exported_but_not_pushed(make_context, tmp_path, caplog):
    ctx = make_context(blessed=False, upsample_to_input=False, tflite=False)
    with caplog.at_level(logging.INFO, logger="test.export"):
        assert STAGE.run(ctx) == {"pushed": False, "version": None}
    reason = "NOT_BLESSED: fails: abs_rel 0.5 vs served model 0.2"
    assert f"not pushed: {reason}" in caplog.text
    assert json.loads((ctx.output_dir / "push.json").read_text()) == {
        "pushed": False,
        "version": None,
        "path": None,
        "reused": False,
        "reason": reason,
    }
    assert (ctx.output_dir / "saved_model" / "saved_model.pb").is_file()
    signatures = json.loads((ctx.output_dir / "signatures.json").read_text())
    assert set(signatures[SERVING_DEFAULT]["outputs"]) == {"depth", "log_depth"}
    assert not (tmp_path / "serving").exists()
    assert not (ctx.output_dir / "model.tflite").exists()


def test_refuses_an_evaluation_of_another_model(make_context, evaluate_artifacts):
    ctx = make_context(blessed=True)
    other = dataclasses.replace(
        evaluate_artifacts[True], metadata={"inputs": {"train": {"fingerprint": "someothertrain"}}}
    )
    ctx.inputs["evaluate"] = other
    with pytest.raises(ValueError, match="scored train artifact someothertrain"):
        STAGE.run(ctx)
    ctx.inputs["evaluate"] = dataclasses.replace(
        other, metadata={"inputs": {"train": {"fingerprint": "trainfp"}}}
    )
    assert STAGE.run(ctx)["pushed"] is True
