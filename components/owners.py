"""Which process left something behind: ``<pid>@<host>`` owner tags, and whether that process is gone.

The runner tags what a killed process would leave (temporary and work directories, open MLflow runs)
with its owner, and so does the export stage's push (its staging directory in the serving directory). A later run removes or closes only what belongs to a process that no longer runs on
this host; anything of a live process, of another host (a shared file system) or with an unreadable
tag is left alone.
"""

from __future__ import annotations

import os
import re
import socket

# Host names go into directory names: keep letters, digits, dots and dashes.
_UNSAFE_HOST_CHARS = re.compile(r"[^A-Za-z0-9.-]")
_TAG = re.compile(r"(?P<pid>\d+)@(?P<host>[A-Za-z0-9._-]+)")


def this_host() -> str:
    """This machine's host name, reduced to ``[A-Za-z0-9.-]``."""
    return _UNSAFE_HOST_CHARS.sub("_", socket.gethostname()) or "localhost"


def owner_tag() -> str:
    """``<pid>@<host>`` of this process."""
    return f"{os.getpid()}@{this_host()}"


def is_gone(tag: str | None) -> bool:
    """True only when ``tag`` names a process of this host that has exited.

    Args:
        tag: An :func:`owner_tag` (or None / anything else: unknown owner).

    Returns:
        False for this process, a running process, another host's process or an unknown owner.
    """
    match = _TAG.fullmatch(tag or "")
    if match is None or match["host"] != this_host():
        return False
    pid = int(match["pid"])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: it runs, as another user
        return False
    return False


def tag_at_end(name: str) -> str | None:
    """The owner tag a name ends with (``.tmp-<fingerprint>-<random>-<pid>@<host>``), or None."""
    match = re.search(r"-(\d+@[A-Za-z0-9._-]+)$", name)
    return match.group(1) if match else None
