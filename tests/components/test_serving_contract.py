"""The evaluate <-> export <-> serving contract: names, geometry, blessing files, serving root."""

from __future__ import annotations

import dataclasses
import json

import pytest

from components import serving_contract
from components.serving_contract import (
    NOT_BLESSED_FILE,
    Blessing,
    ServingGeometry,
    read_blessing,
    read_geometry,
    resolve_serving_root,
    write_blessing,
)
from pipeline.config import PipelineConfig
from serving import contract as serving_copy


def test_serving_keeps_an_identical_copy_of_the_names():
    copied = {name: getattr(serving_copy, name, None) for name in serving_contract.SIGNATURE_NAMES}
    assert copied == serving_contract.SIGNATURE_NAMES
    serving_names = {name for name in vars(serving_copy) if name.isupper()}
    assert serving_names == set(serving_contract.SIGNATURE_NAMES)  # nothing serving-only that export lacks


def test_signature_names_lists_every_name_constant():
    assert serving_contract.SIGNATURE_NAMES == {
        name: getattr(serving_contract, name) for name in serving_contract.SIGNATURE_NAMES
    }
    assert len(set(serving_contract.SIGNATURE_NAMES.values())) == len(serving_contract.SIGNATURE_NAMES)


def test_geometry_round_trip_through_the_evaluate_metrics(tmp_path):
    geometry = ServingGeometry(frame_height=72, frame_width=96, input_height=64, input_width=80)
    (tmp_path / serving_contract.METRICS_FILE).write_text(
        json.dumps({serving_contract.GEOMETRY_KEY: dataclasses.asdict(geometry), "num_images": 3})
    )
    assert read_geometry(tmp_path) == geometry
    assert geometry.frame_window() == (4, 8)
    assert ServingGeometry(73, 97, 64, 80).frame_window() == (4, 8)  # odd leftover at bottom/right


def test_geometry_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.json"):
        read_geometry(tmp_path)
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(KeyError, match="geometry"):
        read_geometry(tmp_path)
    with pytest.raises(ValueError, match="larger than the stored frame"):
        ServingGeometry(frame_height=60, frame_width=96, input_height=64, input_width=80)


def test_decision_file_round_trip(tmp_path):
    refused = Blessing(blessed=False, reasons=("fails: one", "fails: two"))
    path = write_blessing(tmp_path, refused)
    assert path.name == NOT_BLESSED_FILE
    assert path.read_text() == "fails: one\nfails: two\n"
    assert read_blessing(tmp_path) == refused


def test_read_blessing_errors_name_the_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        read_blessing(tmp_path)
    write_blessing(tmp_path, Blessing(True, ("passes: x",)))
    write_blessing(tmp_path, Blessing(False, ("fails: y",)))
    with pytest.raises(ValueError, match="both"):
        read_blessing(tmp_path)


def test_resolve_serving_root(tmp_path):
    config = PipelineConfig()
    assert resolve_serving_root(config, tmp_path) == tmp_path / "serving"
    config.export.serving_root = "/srv/models"
    assert str(resolve_serving_root(config, tmp_path)) == "/srv/models"
