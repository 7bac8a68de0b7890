"""The export stage: SavedModel in the artifact, pushed only when blessed, versions never overwritten."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest

from components.export import STAGE, parameters
from components.export.signatures import BYTES_SIGNATURE, SERVING_DEFAULT
from pipeline.config import PipelineConfig


def test_stage_definition():
    config = PipelineConfig()
    assert STAGE.name == "export" and STAGE.inputs == ("train", "evaluate")
    assert parameters(config) == dataclasses.asdict(config.export)


def test_blessed_model_is_pushed_as_the_next_version(make_context, tmp_path, digests):
    ctx = make_context(blessed=True)
    assert STAGE.run(ctx) == {"pushed": True, "version": 1}
    model_dir = tmp_path / "serving" / "depth"
    version_1 = model_dir / "1"
    assert json.loads((ctx.output_dir / "push.json").read_text()) == {
        "pushed": True,
        "version": 1,
        "path": str(version_1),
        "reason": "BLESSED: passes: everything",
    }
    assert digests(version_1) == digests(ctx.output_dir / "saved_model")
    signatures = json.loads((ctx.output_dir / "signatures.json").read_text())
    assert {SERVING_DEFAULT, BYTES_SIGNATURE} <= set(signatures)
    before = digests(version_1)

    second = make_context(blessed=True)
    assert STAGE.run(second) == {"pushed": True, "version": 2}
    assert digests(version_1) == before  # byte-identical
    assert sorted(path.name for path in model_dir.iterdir()) == ["1", "2"]


def test_unblessed_model_is_exported_but_not_pushed(make_context, tmp_path, caplog):
    ctx = make_context(blessed=False, upsample_to_input=False)
    with caplog.at_level(logging.INFO, logger="test.export"):
        assert STAGE.run(ctx) == {"pushed": False, "version": None}
    reason = "NOT_BLESSED: fails: abs_rel 0.5 vs served model 0.2"
    assert f"not pushed: {reason}" in caplog.text
    assert json.loads((ctx.output_dir / "push.json").read_text()) == {
        "pushed": False,
        "version": None,
        "path": None,
        "reason": reason,
    }
    assert (ctx.output_dir / "saved_model" / "saved_model.pb").is_file()
    signatures = json.loads((ctx.output_dir / "signatures.json").read_text())
    assert set(signatures[SERVING_DEFAULT]["outputs"]) == {"depth", "log_depth"}
    assert not (tmp_path / "serving").exists()


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
