"""The train stage under MultiWorkerMirroredStrategy: two local worker processes joined by ``TF_CONFIG``.

Both workers share the work directory (as on a shared file system) and get output directories of their
own; only the chief (worker 0) keeps files.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_depth.models import COARSE_MODEL_NAME
from pipeline.config import save_config

REPO_ROOT = Path(__file__).resolve().parents[3]
WORKERS = 2
TIMEOUT_S = 300

SCRIPT = """
import json, sys
from pathlib import Path

import keras

from components.base import Artifact, StageContext
from components.train.component import train
from pipeline.config import load_config


class Crash(keras.callbacks.Callback):
    def __init__(self, batches):
        super().__init__()
        self.batches, self.seen = batches, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen >= self.batches:
            raise RuntimeError(f"injected crash after {self.seen} batches")


config_path, ingest_dir, work_dir, output_dir = (Path(arg) for arg in sys.argv[1:5])
crash_fine_after = int(sys.argv[5])
ctx = StageContext(
    config=load_config(config_path),
    output_dir=output_dir,
    work_dir=work_dir,
    inputs={"ingest": Artifact("ingest", "0123456789abcdef", ingest_dir, {})},
    run_root=output_dir.parent,
    fingerprint="multi-worker-test",
)
extra = {"fine": [Crash(crash_fine_after)]} if crash_fine_after else None
print("COUNTS=" + json.dumps(train(ctx, extra_callbacks=extra)))
"""


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on the loopback interface."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def run_workers(config_path: Path, ingest_dir: Path, root: Path, crash_fine_after: int = 0) -> list:
    """Runs the stage on ``WORKERS`` local workers at once; returns their ``CompletedProcess`` by task."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(WORKERS)]
    processes = []
    for index in range(WORKERS):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "CUDA_VISIBLE_DEVICES": ""}
        args = [config_path, ingest_dir, root / "work", root / f"out{index}", crash_fine_after]
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", SCRIPT, *map(str, args)],
                cwd=REPO_ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        outputs = [process.communicate(timeout=TIMEOUT_S) for process in processes]
    finally:
        for process in processes:
            process.kill()
    return [
        subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        for process, (stdout, stderr) in zip(processes, outputs, strict=True)
    ]


@pytest.mark.e2e
def test_two_workers_train_both_phases_resume_exactly_and_only_the_chief_keeps_files(
    tiny, ingest_dir, tmp_path
):
    config = tiny(strategy="multi_worker", checkpoint_every_steps=1)
    save_config(config, tmp_path / "config.yaml")
    for name in ("work", "out0", "out1"):
        (tmp_path / name).mkdir()
    global_batch = config.data.batch_size * WORKERS
    coarse_steps = math.ceil(config.train.coarse_samples / global_batch)  # 3: one epoch
    fine_steps = math.ceil(config.train.fine_samples / global_batch)  # 3: one epoch

    # Both workers crash after fine step 2 (checkpointed: checkpoint_every_steps=1), then rerun.
    crashed = run_workers(tmp_path / "config.yaml", ingest_dir, tmp_path, crash_fine_after=2)
    assert all(result.returncode != 0 for result in crashed)
    assert "injected crash after 2 batches" in crashed[0].stderr, crashed[0].stderr[-4000:]
    assert (tmp_path / "work" / "coarse_done.keras").is_file()
    results = run_workers(tmp_path / "config.yaml", ingest_dir, tmp_path)

    for result in results:
        assert result.returncode == 0, result.stderr[-4000:]
        assert json.loads(result.stdout.split("COUNTS=")[-1]) == {
            "coarse_steps": coarse_steps,
            "fine_steps": fine_steps,
            "replicas": WORKERS,
            "global_batch_size": global_batch,
        }
    assert not list((tmp_path / "out1").iterdir())  # the non-chief worker keeps nothing
    out = tmp_path / "out0"
    summary = json.loads((out / "summary.json").read_text())
    # MultiWorkerMirroredStrategy's class is named CollectiveAllReduceStrategy.
    assert summary["strategy"] == "CollectiveAllReduceStrategy" and summary["replicas"] == WORKERS
    assert summary["phases"]["coarse"]["start_step"] == coarse_steps  # reused, not retrained
    assert summary["phases"]["fine"]["start_step"] == 2
    history = json.loads((out / "history.json").read_text())
    for phase, steps in (("coarse", coarse_steps), ("fine", fine_steps)):
        assert summary["phases"][phase]["steps"] == steps
        assert [(record["epoch"], record["step"]) for record in history[phase]] == [(0, steps)]
        assert {"loss", "val_loss", "val_delta1", "val_abs_rel", "val_rmse", "val_si_log"} <= set(
            history[phase][0]
        )
        assert all(np.isfinite(value) for value in summary["phases"][phase]["final"].values())

    # The coarse net inside fine.keras is the trained coarse.keras, untouched by the fine phase.
    coarse = keras.saving.load_model(out / "coarse.keras")
    fine = keras.saving.load_model(out / "fine.keras")
    assert int(coarse.optimizer.iterations.numpy()) == coarse_steps
    assert int(fine.optimizer.iterations.numpy()) == fine_steps
    for saved, inside_fine in zip(
        coarse.get_weights(), fine.get_layer(COARSE_MODEL_NAME).get_weights(), strict=True
    ):
        np.testing.assert_array_equal(inside_fine, saved)
