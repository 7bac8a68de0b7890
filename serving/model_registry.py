"""Which model versions are loaded: discovery, version policy, hot (un)loading, lookup.

Mirrors TF Serving's file-system source and manager: every ``--file_system_poll_wait_seconds``
each model's base path is scanned, its version policy picks the versions to serve (default: the
highest), new ones are loaded before removed ones are unloaded (availability preserving: a version
the policy no longer selects is served until every selected version has loaded), and versions whose
directories disappear are unloaded.

A version that fails to load -- typically a directory that appeared before its copy finished -- is
retried for as long as its directory exists: at the next poll after its files change (size or
modification time), else after a delay that starts at the poll interval and doubles up to
``MAX_RETRY_DELAY_S``. The failure is logged once as an error (later attempts at DEBUG), and its
message is the version's status until it loads. (TF Serving instead gives up after
``--max_num_load_retries``, so a version copied slowly is never served.) Requests hold a reference to the ``Servable`` they resolved,
so an unload never interrupts a request already running on it; the model is freed when the
last request drops the reference.

Version states follow TF Serving's ``ModelVersionStatus``: ``LOADING`` -> ``AVAILABLE`` -> ``END``
(unloaded, or failed to load with the error in ``status``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from serving.errors import not_found
from serving.model_config import ModelConfig
from serving.servable import Servable, find_versions

LOADING = "LOADING"
AVAILABLE = "AVAILABLE"
END = "END"
# Longest wait between load attempts of a version whose files do not change.
MAX_RETRY_DELAY_S = 60.0
DEFAULT_RETRY_DELAY_S = 1.0

logger = logging.getLogger(__name__)


@dataclass
class VersionState:
    """Lifecycle state of one model version.

    Attributes:
        version: The integer version.
        state: ``LOADING``, ``AVAILABLE`` or ``END``.
        error_code: ``"OK"`` or the canonical code of a failed load.
        error_message: Why the load failed ("" when it did not).
    """

    version: int
    state: str
    error_code: str = "OK"
    error_message: str = ""

    def to_json(self) -> dict:
        """The ``ModelVersionStatus`` JSON TF Serving returns."""
        return {
            "version": str(self.version),
            "state": self.state,
            "status": {"error_code": self.error_code, "error_message": self.error_message},
        }


def _files_of(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """(relative path, size, mtime ns) of every file under ``directory``: changes while it is copied."""
    files = []
    for root, _, names in os.walk(directory):
        for name in names:
            path = Path(root, name)
            try:
                stat = path.stat()
            except OSError:  # removed while scanning
                continue
            files.append((str(path.relative_to(directory)), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(files))


@dataclass
class _FailedLoad:
    """A version that failed to load and when to try it again.

    Attributes:
        attempts: Failed attempts so far.
        retry_at: ``time.monotonic()`` after which the next attempt is due.
        files: The directory's ``_files_of`` at the last attempt; a change makes the next attempt due.
    """

    attempts: int
    retry_at: float
    files: tuple[tuple[str, int, int], ...]

    def due(self, path: Path) -> bool:
        """Whether to try loading ``path`` again now."""
        return time.monotonic() >= self.retry_at or _files_of(path) != self.files


@dataclass
class _Model:
    config: ModelConfig
    servables: dict[int, Servable] = field(default_factory=dict)
    states: dict[int, VersionState] = field(default_factory=dict)
    failed: dict[int, _FailedLoad] = field(default_factory=dict)
    reported_empty: bool = False


class ModelRegistry:
    """The served models and their loaded versions (thread-safe).

    Args:
        configs: The models to serve.
    """

    def __init__(self, configs: Sequence[ModelConfig]):
        self._models = {config.name: _Model(config) for config in configs}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._retry_delay_s = DEFAULT_RETRY_DELAY_S

    def model_names(self) -> list[str]:
        """Names of the configured models."""
        return sorted(self._models)

    def refresh(self) -> None:
        """Scans every base path once and loads/unloads versions to match the version policies."""
        for model in self._models.values():
            self._refresh_model(model)

    def _refresh_model(self, model: _Model) -> None:
        config = model.config
        on_disk = find_versions(config.base_path)
        aspired = config.version_policy.select(on_disk)
        if not aspired and not model.reported_empty:
            logger.warning(
                "No versions of servable %s found under base path %s", config.name, config.base_path
            )
        model.reported_empty = not aspired
        for version in list(model.failed):
            if version not in on_disk:  # a re-created directory gets fresh attempts
                del model.failed[version]
        with self._lock:
            loaded = set(model.servables)
        for version in sorted(aspired - loaded):
            failed = model.failed.get(version)
            if failed is None or failed.due(on_disk[version]):
                self._load(model, version, on_disk[version])
        with self._lock:
            loaded = set(model.servables)
        for version in sorted(loaded - aspired):
            if version in on_disk and not aspired <= loaded:
                continue  # served until every version the policy selects has loaded
            with self._lock:
                del model.servables[version]
                model.states[version] = VersionState(version, END)
            logger.info("Unloaded servable version {name: %s version: %d}", config.name, version)

    def _load(self, model: _Model, version: int, path: Path) -> None:
        name = model.config.name
        with self._lock:
            model.states[version] = VersionState(version, LOADING)
        files = _files_of(path)
        try:
            servable = Servable(name, version, path)
        except Exception as error:  # any load failure is reported in the version status
            previous = model.failed.get(version)
            attempts = previous.attempts + 1 if previous else 1
            delay = min(self._retry_delay_s * 2 ** (attempts - 1), MAX_RETRY_DELAY_S)
            model.failed[version] = _FailedLoad(attempts, time.monotonic() + delay, files)
            message = (
                f"Failed to load {path} (attempt {attempts}; retrying when its files change or in "
                f"{delay:g} s): {error}"
            )
            with self._lock:
                model.states[version] = VersionState(version, END, "UNKNOWN", message)
            logger.log(logging.ERROR if previous is None else logging.DEBUG, "%s", message)
            return
        failed = model.failed.pop(version, None)
        with self._lock:
            model.servables[version] = servable
            model.states[version] = VersionState(version, AVAILABLE)
        logger.info(
            "Successfully loaded servable version {name: %s version: %d} from %s%s",
            name,
            version,
            path,
            f" after {failed.attempts} failed attempts" if failed else "",
        )

    def start_polling(self, interval_s: float) -> None:
        """Re-scans the base paths every ``interval_s`` seconds on a daemon thread (0 disables)."""
        if interval_s <= 0 or self._poller is not None:
            return
        self._retry_delay_s = interval_s
        self._poller = threading.Thread(
            target=self._poll, args=(interval_s,), name="model-poller", daemon=True
        )
        self._poller.start()

    def _poll(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.refresh()
            except Exception:  # keep polling whatever one scan hit
                logger.exception("Model directory poll failed")

    def stop(self) -> None:
        """Stops polling (loaded versions stay usable by running requests)."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join()
            self._poller = None

    def _model(self, name: str, request: str) -> _Model:
        if name not in self._models:
            raise not_found(f"Servable not found for request: {request}")
        return self._models[name]

    def _label_version(self, model: _Model, label: str) -> int:
        labels = model.config.version_labels
        if label not in labels:
            raise not_found(
                f"Unrecognized servable version label: {label} (model {model.config.name} has {sorted(labels)})"
            )
        return labels[label]

    def resolve(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The loaded version a request should use.

        Args:
            name: Model name.
            version: A specific version, or None.
            label: A version label from the model config, or None.

        Returns:
            The requested version, or the highest available one when neither is given.

        Raises:
            ServingError: NOT_FOUND (404) for an unknown model, label or unavailable version.
        """
        with self._lock:
            if label is not None:
                model = self._model(name, f"Label({name}, {label})")
                version = self._label_version(model, label)
            else:
                model = self._model(
                    name, f"Latest({name})" if version is None else f"Specific({name}, {version})"
                )
            if version is None:
                if not model.servables:
                    raise not_found(f"Servable not found for request: Latest({name})")
                return model.servables[max(model.servables)]
            if version not in model.servables:
                raise not_found(f"Servable not found for request: Specific({name}, {version})")
            return model.servables[version]

    def status(self, name: str, version: int | None = None, label: str | None = None) -> list[dict]:
        """``model_version_status`` entries (newest first) for a model, a version or a label.

        Raises:
            ServingError: NOT_FOUND (404) when the model, label or version is unknown.
        """
        with self._lock:
            if name not in self._models or not self._models[name].states:
                raise not_found(f"Could not find any versions of model {name}")
            model = self._models[name]
            if label is not None:
                version = self._label_version(model, label)
            if version is None:
                return [model.states[key].to_json() for key in sorted(model.states, reverse=True)]
            if version not in model.states:
                raise not_found(f"Could not find version {version} of model {name}")
            return [model.states[version].to_json()]
