"""Named crash points for the crash-recovery tests: ``KERAS_DEPTH_FAILPOINT=<name>[@<hit>]``.

A stage calls :func:`failpoint` at the places where a crash is most likely to leave damage behind
(shards half written, a phase between checkpoints, a model pushed but its artifact not yet published).
When the environment variable names that point, the process that reaches it kills itself with SIGKILL,
exactly as an out-of-memory killer or a pre-empted machine would: no ``finally`` block, no atexit hook
and no MLflow ``end_run`` runs. ``@<hit>`` kills at the hit-th time the point is reached in the process
(default 1). Unset (always, outside tests) it costs one dictionary look-up.

Points: ``ingest.encode`` (a record being encoded into its shard), ``train.<phase>.checkpoint_saved``
(``phase`` = ``coarse`` or ``fine``; after a backup was written), ``evaluate.scored`` (after scoring,
before the report), ``export.before_push`` and ``export.after_push``.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

FAILPOINT_ENV = "KERAS_DEPTH_FAILPOINT"

_hits: Counter[str] = Counter()


def failpoint(name: str) -> None:
    """Kills this process with SIGKILL when ``$KERAS_DEPTH_FAILPOINT`` names ``name`` (and its hit count).

    Args:
        name: The point's name, e.g. ``"export.after_push"``.
    """
    wanted = os.environ.get(FAILPOINT_ENV)
    if not wanted:
        return
    point, _, hit = wanted.partition("@")
    if point != name:
        return
    _hits[name] += 1
    if _hits[name] >= int(hit or 1):
        os.kill(os.getpid(), signal.SIGKILL)
