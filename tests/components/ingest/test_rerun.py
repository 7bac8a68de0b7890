"""A `folder` dataset's files are part of the ingest fingerprint: through the real runner, adding
or touching a file reruns the ingest, an unchanged tree is skipped."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
from PIL import Image

from pipeline.runner import run_stages

NUM_RECORDS = 12  # the rgbd_folder fixture: 8 good pairs and 4 bad ones


@pytest.mark.e2e
def test_added_or_touched_files_rerun_ingest_and_unchanged_trees_skip(
    rgbd_folder, small_config, tmp_path, caplog
):
    config = small_config(source="folder", folder=rgbd_folder.source_config(), max_failed_fraction=0.5)
    config.mlflow.enabled = False
    run_dir = tmp_path / "run"

    def ingest():
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="keras_depth.pipeline"):
            artifact = run_stages(config, ["ingest"], run_dir)["ingest"]
        return artifact, "ingest: skipped" in caplog.text

    first, skipped = ingest()
    assert not skipped and first.metadata["counts"]["records_read"] == NUM_RECORDS
    assert first.metadata["parameters"]["manifest"]["files"] == 2 * NUM_RECORDS + 1
    again, skipped = ingest()
    assert skipped and again.fingerprint == first.fingerprint

    rgb = np.zeros((60, 80, 3), np.uint8)
    Image.fromarray(rgb).save(rgbd_folder.root / "rgb_added.png")
    Image.fromarray(np.full((60, 80), 1500, np.uint16)).save(rgbd_folder.root / "depth_added.png")
    added, skipped = ingest()
    assert not skipped and added.fingerprint != first.fingerprint
    assert added.metadata["counts"]["records_read"] == NUM_RECORDS + 1

    touched_file = rgbd_folder.root / "depth_000.png"
    stat = touched_file.stat()
    os.utime(touched_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    touched, skipped = ingest()
    assert not skipped and touched.fingerprint not in (first.fingerprint, added.fingerprint)

    unchanged, skipped = ingest()
    assert skipped and unchanged.fingerprint == touched.fingerprint
