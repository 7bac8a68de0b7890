"""Versioned atomic pushes to the serving root."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from components.export import push as push_module
from components.export.push import PUSH_SOURCE_FILE, STAGING_PREFIX, push_saved_model, read_push_source
from components.owners import owner_tag, this_host
from components.serving_contract import latest_version_dir, served_versions


@pytest.fixture
def saved_model(tmp_path):
    """A stand-in SavedModel directory (pushing only copies files)."""
    source = tmp_path / "export" / "saved_model"
    (source / "variables").mkdir(parents=True)
    (source / "saved_model.pb").write_bytes(b"graph-1")
    (source / "variables" / "variables.index").write_bytes(b"index-1")
    return source


def test_pushes_next_version_and_never_touches_existing_ones(tmp_path, saved_model, digests):
    model_dir = tmp_path / "serving" / "depth"
    first = push_saved_model(saved_model, model_dir)
    assert (first.version, first.path) == (1, model_dir / "1")
    before = digests(first.path)
    assert before == digests(saved_model)

    (saved_model / "saved_model.pb").write_bytes(b"graph-2")
    second = push_saved_model(saved_model, model_dir)
    assert (second.version, second.path) == (2, model_dir / "2")
    assert digests(first.path) == before
    assert (second.path / "saved_model.pb").read_bytes() == b"graph-2"
    assert sorted(os.listdir(model_dir)) == ["1", "2"]  # no staging directory left behind
    assert latest_version_dir(model_dir) == model_dir / "2"


def test_a_push_of_the_model_the_highest_version_holds_reuses_that_version(tmp_path, saved_model):
    model_dir = tmp_path / "depth"
    model_a, model_b = {"train_fingerprint": "a"}, {"train_fingerprint": "b"}
    first = push_saved_model(saved_model, model_dir, source=model_a)
    assert (first.version, first.reused) == (1, False)
    assert read_push_source(first.path) == model_a
    assert (first.path / PUSH_SOURCE_FILE).is_file()
    again = push_saved_model(saved_model, model_dir, source=model_a)
    assert (again.version, again.path, again.reused) == (1, first.path, True)
    assert sorted(os.listdir(model_dir)) == ["1"]
    assert push_saved_model(saved_model, model_dir, source=model_b).version == 2
    # Model a is served again only by a new version above b.
    assert push_saved_model(saved_model, model_dir, source=model_a).version == 3
    # Without a source a push always adds a version (and records none).
    unnamed = push_saved_model(saved_model, model_dir)
    assert unnamed.version == 4 and read_push_source(unnamed.path) is None


def test_versions_ignore_non_integer_and_staging_directories(tmp_path, saved_model):
    model_dir = tmp_path / "depth"
    for name in ("7", "0", "latest", f"{STAGING_PREFIX}abc"):
        (model_dir / name).mkdir(parents=True)
    (model_dir / "9").write_text("a file, not a version")
    assert served_versions(model_dir) == [7]
    assert served_versions(tmp_path / "missing") == [] and latest_version_dir(tmp_path / "missing") is None
    assert push_saved_model(saved_model, model_dir).version == 8


def test_a_version_claimed_concurrently_is_skipped(tmp_path, saved_model, monkeypatch):
    model_dir = tmp_path / "depth"
    real_rename = os.rename

    def racing_rename(source, target):
        if not os.path.exists(model_dir / "1"):  # another push wins version 1 first
            (model_dir / "1").mkdir()
            (model_dir / "1" / "saved_model.pb").write_bytes(b"other")
        real_rename(source, target)

    monkeypatch.setattr(push_module.os, "rename", racing_rename)
    assert push_saved_model(saved_model, model_dir).version == 2
    assert (model_dir / "1" / "saved_model.pb").read_bytes() == b"other"
    assert sorted(os.listdir(model_dir)) == ["1", "2"]


def test_a_failed_push_leaves_no_version_and_no_staging(tmp_path, saved_model, monkeypatch):
    model_dir = tmp_path / "depth"

    def failing_rename(source, target):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(push_module.os, "rename", failing_rename)
    with pytest.raises(PermissionError):
        push_saved_model(saved_model, model_dir)
    assert os.listdir(model_dir) == []


def test_refuses_a_directory_that_is_not_a_saved_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="saved_model.pb"):
        push_saved_model(tmp_path, tmp_path / "depth")


def test_a_push_removes_the_staging_directories_of_killed_pushes_only(tmp_path, saved_model):
    model_dir = tmp_path / "serving" / "depth"
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    killed = model_dir / f"{STAGING_PREFIX}0123abcd-{exited.pid}@{this_host()}"
    running = model_dir / f"{STAGING_PREFIX}4567ef01-{owner_tag()}"
    other_host = model_dir / f"{STAGING_PREFIX}89abcdef-{exited.pid}@another-host"
    for staging in (killed, running, other_host):
        (staging / "variables").mkdir(parents=True)
    push_saved_model(saved_model, model_dir)
    assert not killed.exists()
    assert running.is_dir() and other_host.is_dir()
    assert served_versions(model_dir) == [1]
