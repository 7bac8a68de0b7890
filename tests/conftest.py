"""Shared test set-up: quiet TensorFlow, CPU only, and the real RGB-D fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_RGBD_DIR = REPO_ROOT.parent / "shared" / "data" / "real_rgbd"


@pytest.fixture(scope="session")
def real_rgbd_dir() -> Path:
    """``../shared/data/real_rgbd`` (see its README); skips when it is absent."""
    if not REAL_RGBD_DIR.is_dir():
        pytest.skip(f"real RGB-D samples not found at {REAL_RGBD_DIR}")
    return REAL_RGBD_DIR
