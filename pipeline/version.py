"""The installed package version (part of every fingerprint)."""

from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "keras-depth"


def package_version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0+unknown"
