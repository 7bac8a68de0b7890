"""Where a benchmark ran: the device, the host, the date and the versions of what it ran.

Read without importing TensorFlow (versions come from the installed distributions' metadata), so the
runner stays light; :func:`device_name` asks ``nvidia-smi`` for GPUs.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import shutil
import socket
import subprocess
from importlib import metadata

from pipeline.tracking import git_commit
from pipeline.version import package_version

CPUINFO = "/proc/cpuinfo"
# Distributions whose versions a result records.
DISTRIBUTIONS = ("tensorflow", "keras", "apache-beam", "mlflow")
NVIDIA_SMI_TIMEOUT_S = 10


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else ``platform.processor()``)."""
    try:
        with open(CPUINFO) as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def gpu_names() -> list[str]:
    """Names of the visible NVIDIA GPUs (``nvidia-smi``); empty without one or with ``CUDA_VISIBLE_DEVICES=""``."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") == "" or shutil.which("nvidia-smi") is None:
        return []
    try:
        listed = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=NVIDIA_SMI_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return (
        [line.strip() for line in listed.stdout.splitlines() if line.strip()]
        if listed.returncode == 0
        else []
    )


def device_name(gpus: list[str]) -> str:
    """``"<n> x <GPU name>"`` for the GPUs ``gpus`` (:func:`gpu_names`), else ``"<CPU model> (<n> cores)"``."""
    if gpus:
        return ", ".join(f"{gpus.count(name)} x {name}" for name in sorted(set(gpus)))
    return f"{cpu_model()} ({cpu_cores()} cores)"


def host_name() -> str:
    """This machine's host name, reduced to letters, digits, ``.``, ``_`` and ``-`` (for file names)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", socket.gethostname()).strip("-") or "host"


def versions() -> dict[str, str]:
    """Python, the libraries of :data:`DISTRIBUTIONS`, keras-depth and the git commit."""
    found = {"python": platform.python_version()}
    for distribution in DISTRIBUTIONS:
        try:
            found[distribution] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            found[distribution] = "not installed"
    found["keras-depth"] = package_version()
    found["git_commit"] = git_commit()
    return found


def describe() -> dict:
    """``device``, ``cpu``, ``cpu_cores``, ``gpus``, ``host``, ``date`` (local ISO 8601) and ``versions``."""
    gpus = gpu_names()
    return {
        "device": device_name(gpus),
        "cpu": cpu_model(),
        "cpu_cores": cpu_cores(),
        "gpus": gpus,
        "host": host_name(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "versions": versions(),
    }
