"""Several dataset sources read as one (a multi-source ingest, ``ingest.sources``).

Every key starts with its source's name (``<source>/<id>``, the ``DepthSource``
contract), so the keys of different sources never collide and each key names the
source that loads it. Which split each source's records may feed is the ingest's
business (``components.ingest.sources``), not the composite's.
"""

from __future__ import annotations

from collections.abc import Sequence

from keras_depth.sources.base import DepthSource, RawRecord, RecordError

NAME_SEPARATOR = "+"
SKIP_REASON_SEPARATOR = ": "


def key_source_name(key: str) -> str:
    """The name of the source that listed ``key`` (its part before the first ``/``)."""
    return key.partition("/")[0]


class CompositeSource(DepthSource):
    """The records of several sources, listed in the order the sources are given.

    Args:
        sources: Sources with distinct names. Picklable when they all are.

    Raises:
        ValueError: when no source is given or two share a name.
    """

    def __init__(self, sources: Sequence[DepthSource]) -> None:
        names = [source.name for source in sources]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"a composite source needs distinct sources, got {names}")
        self.sources = {source.name: source for source in sources}
        self.name = NAME_SEPARATOR.join(names)

    def _source(self, key: str) -> DepthSource:
        source = self.sources.get(key_source_name(key))
        if source is None:
            raise RecordError(f"{key!r} starts with none of the sources {', '.join(self.sources)}")
        return source

    def list_keys(self) -> list[str]:
        """Every source's keys, source by source.

        Raises:
            ValueError: naming the source when one of its keys does not start with ``<name>/``.
        """
        keys = []
        for name, source in self.sources.items():
            listed = source.list_keys()
            foreign = [key for key in listed if key_source_name(key) != name]
            if foreign:
                raise ValueError(f"source {name!r} lists keys not starting with '{name}/': {foreign[:3]}")
            keys += listed
        return keys

    def source_path(self, key: str) -> str:
        """Where the source of ``key`` reads it from."""
        return self._source(key).source_path(key)

    def manifest(self) -> dict:
        """Each source's manifest under its name."""
        return {name: source.manifest() for name, source in self.sources.items()}

    def skipped_records(self) -> dict[str, int]:
        """Each source's skipped records, the reason prefixed with the source's name (``<name>: <reason>``)."""
        return {
            f"{name}{SKIP_REASON_SEPARATOR}{reason}": count
            for name, source in self.sources.items()
            for reason, count in source.skipped_records().items()
        }

    def load(self, key: str) -> RawRecord:
        """Loads ``key`` with the source it names.

        Raises:
            RecordError: when no source has that name, or the source cannot load it.
        """
        return self._source(key).load(key)
