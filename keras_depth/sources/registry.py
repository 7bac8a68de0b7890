"""Source names to source classes: ``make_source("synthetic_rooms", ingest_cfg)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keras_depth.sources.base import DepthSource
from keras_depth.sources.diode import DiodeSource
from keras_depth.sources.folder import FolderSource
from keras_depth.sources.kitti_depth import KittiDepthSource
from keras_depth.sources.nyu_labeled import NyuLabeledSource
from keras_depth.sources.synthetic_rooms import SyntheticRoomsSource
from keras_depth.sources.tfds_source import TfdsSource

# Each factory builds its source from the ingest config section it reads.
_FACTORIES: dict[str, Callable[[Any], DepthSource]] = {
    SyntheticRoomsSource.name: lambda ingest_cfg: SyntheticRoomsSource(ingest_cfg.synthetic),
    FolderSource.name: lambda ingest_cfg: FolderSource(ingest_cfg.folder, ingest_cfg.max_image_pixels),
    NyuLabeledSource.name: lambda ingest_cfg: NyuLabeledSource(
        ingest_cfg.nyu_labeled, ingest_cfg.max_image_pixels
    ),
    KittiDepthSource.name: lambda ingest_cfg: KittiDepthSource(
        ingest_cfg.kitti_depth, ingest_cfg.max_image_pixels
    ),
    DiodeSource.name: lambda ingest_cfg: DiodeSource(ingest_cfg.diode, ingest_cfg.max_image_pixels),
    TfdsSource.name: lambda ingest_cfg: TfdsSource(ingest_cfg.tfds, ingest_cfg.max_image_pixels),
}


def source_names() -> list[str]:
    """Names accepted by :func:`make_source`, sorted."""
    return sorted(_FACTORIES)


def make_source(name: str, ingest_cfg: Any) -> DepthSource:
    """Builds the dataset source called ``name``.

    Args:
        name: Source name (``ingest.source`` in a pipeline config).
        ingest_cfg: The ingest config section; its ``synthetic``, ``folder``,
            ``nyu_labeled``, ``kitti_depth``, ``diode`` and ``tfds`` attributes configure
            the sources, ``max_image_pixels`` their image size limit.

    Returns:
        The source.

    Raises:
        ValueError: when ``name`` is unknown; the message lists the valid names.
    """
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ValueError(f"unknown dataset source {name!r}; valid sources: {', '.join(source_names())}")
    return factory(ingest_cfg)
